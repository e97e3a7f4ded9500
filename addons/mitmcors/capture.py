"""Requests a browser's HAR records as never sent, paired with the blocked preflight that stopped them.

Firefox writes a request its failed preflight stopped as an entry of its own (status 0, its Origin, no response),
1 ms *before* the OPTIONS; another HAR may have them the other way round. Whichever comes first waits here for
the other, so that the request is judged as stopped by its preflight and counted once, on the preflight.
"""

from __future__ import annotations

from mitmproxy import http

from mitmcors.evaluator import stopped_by_preflight
from mitmcors.state import FlowState
from mitmcors.tracker import LRU

Key = tuple[str, str, str]  # (origin, URL, method)


def stop(unsent: FlowState, preflight: FlowState) -> bool:
    """Judge a never-sent request as stopped by its blocked preflight; False if either is not judged."""
    if unsent.verdict is None or preflight.verdict is None:
        return False
    unsent.stopped_by = preflight
    unsent.verdict = stopped_by_preflight(unsent.verdict, preflight.verdict, preflight.flow_id)
    return True


class NeverSent:
    """Never-sent requests and blocked preflights of a capture, each kept until its partner turns up."""

    def __init__(self, limit: int = 1_000) -> None:
        self._requests: LRU[Key, tuple[http.HTTPFlow, FlowState]] = LRU(limit)
        self._blocked_preflights: LRU[Key, FlowState] = LRU(limit)

    def request(self, f: http.HTTPFlow, s: FlowState) -> None:
        """A never-sent request: stopped by its blocked preflight if that is on record already, else kept until
        the preflight turns up."""
        key = (s.request.origin_header or "", s.url_key, s.request.method)
        preflight = self._blocked_preflights.get(key)
        if preflight is None:
            self._requests.put(key, (f, s))
        else:
            stop(s, preflight)

    def blocked_preflight(self, preflight: FlowState, method: str) -> tuple[http.HTTPFlow, FlowState] | None:
        """A blocked preflight for `method`: the never-sent request it stopped, if already seen, judged anew as
        stopped by it (to be published again); else the preflight is kept for the request to come."""
        key = (preflight.request.origin_header or "", preflight.url_key, method)
        unsent = self._requests.pop(key, None)
        if unsent is None:
            self._blocked_preflights.put(key, preflight)
            return None
        return unsent if stop(unsent[1], preflight) else None
