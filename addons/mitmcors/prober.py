"""`cors.probe`'s mitmproxy side: turn a probe plan (`probe.plan`) into replay flows, and collect their answers.

The replays carry `metadata["cors_probe"]`; the addon's hooks hand them here and otherwise leave them alone (no
verdict, no rule, no finding: a crafted Origin would make any server look like it reflects everything). When
every request of a plan has its answer, `probe.classify` judges them and the result is logged and kept.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import ctx, http

from mitmcors import fetchspec, probe
from mitmcors.tracker import LRU

logger = logging.getLogger(__name__)

PROBE_KEY = "cors_probe"


@dataclass
class _Pending:
    plan: probe.ProbePlan
    flow_id: str
    replies: list[probe.Reply] = field(default_factory=list)


def _lines(headers: http.Headers) -> list[tuple[str, str]]:
    return [(n.decode("utf-8", "replace"), v.decode("utf-8", "replace")) for n, v in headers.fields]


class Prober:
    """The probes in flight and the results of finished ones (bounded)."""

    def __init__(self) -> None:
        self._pending: LRU[str, _Pending] = LRU(256)
        self.results: LRU[str, dict[str, Any]] = LRU(256)  # by the probed flow's id

    @staticmethod
    def is_probe(f: http.HTTPFlow) -> bool:
        return PROBE_KEY in f.metadata

    def replays(
        self, f: http.HTTPFlow, trusted: tuple[str, ...], *, unsafe: bool = False, credentials: bool = False
    ) -> list[http.HTTPFlow]:
        """The replay flows that probe `f`'s server with crafted Origins (`unsafe`: replay a POST/PUT/DELETE as
        it is, not only its preflight; `credentials`: keep the user's cookies).

        Raises:
            probe.ProbeError: the flow cannot be probed (not http(s)).
        """
        method = f.request.data.method.decode("utf-8", "replace")
        plan = probe.plan(
            f.request.url,
            method,
            _lines(f.request.headers),
            trusted,
            replay_unsafe=unsafe,
            send_credentials=credentials,
        )
        key = str(uuid.uuid4())
        self._pending.put(key, _Pending(plan, f.id))
        out = []
        for request in plan.requests:
            r = f.copy()  # type: ignore[no-untyped-call]
            r.id = str(uuid.uuid4())
            r.response, r.error, r.marked = None, None, ""
            r.request.method = request.method
            r.request.url = request.url
            r.request.headers = http.Headers([(n.encode(), v.encode()) for n, v in request.headers])
            if not request.keep_body:
                r.request.content = b""
            r.metadata = {PROBE_KEY: {"probe": key, "origin": request.variant.origin, "of": f.id}}
            r.comment = f"cors.probe {request.variant.kind.value}: Origin {request.variant.origin}"
            out.append(r)
        return out

    def answer(self, f: http.HTTPFlow) -> None:
        """A probe replay got its answer (or failed); when its plan is complete, classify and log it."""
        meta = f.metadata.get(PROBE_KEY) or {}
        pending = self._pending.get(meta.get("probe", ""))
        if pending is None:
            return
        response = f.response
        pending.replies.append(
            probe.Reply(
                meta.get("origin", ""),
                response.status_code if response is not None else 0,
                _lines(response.headers) if response is not None else (),
                f.id,
                f.error.msg if f.error is not None and response is None else "",
            )
        )
        if len(pending.replies) < len(pending.plan.requests):
            return
        del self._pending[meta["probe"]]
        result = probe.classify(pending.plan, pending.replies, pending.flow_id)
        self.results.put(pending.flow_id, result.as_dict())
        logger.log(logging.WARNING if result.findings else logging.INFO, probe.render_text(result))

    @staticmethod
    def server_of(f: http.HTTPFlow) -> str:
        return fetchspec.serialize_origin(f.request.scheme, f.request.host, f.request.port)


class ProbePacer:
    """Holds each cors.probe replay back so that at most `cors_probe_rate` go out per second. An async request
    hook of its own (mitmproxy awaits it before sending the replay), so the addon's hooks stay synchronous."""

    def __init__(self) -> None:
        self._next = 0.0  # when the next replay may go, on the event loop's clock

    async def request(self, f: http.HTTPFlow) -> None:
        if PROBE_KEY not in f.metadata or f.response is not None or f.error is not None:
            return  # not a probe, or one read back from a capture (it has its answer already)
        rate = int(ctx.options.cors_probe_rate) if "cors_probe_rate" in ctx.options else 5
        loop = asyncio.get_running_loop()
        wait = self._next - loop.time()
        self._next = max(loop.time(), self._next) + 1 / max(rate, 1)
        if wait > 0:
            await asyncio.sleep(wait)
