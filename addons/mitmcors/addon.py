"""The mitmproxy side: adapt flows for the evaluator, link them, annotate them, log and report.

Everything that decides lives in `evaluator` (browser logic), `tracker` (links) and `rules` (rewrites);
this module only moves data between them and mitmproxy.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

from mitmproxy import command, ctx, exceptions, flow, http
from mitmproxy.hooks import UpdateHook

from mitmcors import fetchspec
from mitmcors.evaluator import Kind, Request, Response, Verdict, classify, evaluate
from mitmcors.explain import explain
from mitmcors.redact import redact_url
from mitmcors.report import Report, Summary
from mitmcors.tracker import PreflightEntry, PreflightTracker, RedirectHop, RedirectTracker

logger = logging.getLogger(__name__)

BLOCKED_MARKER = ":no_entry:"
LOG_CHOICES = ("all", "blocked", "off")

F = TypeVar("F", bound=Callable[..., None])


def never_raises(hook: F) -> F:
    """A hook that fails logs the error and leaves the flow alone: the proxy keeps serving."""

    @functools.wraps(hook)
    def wrapper(self: Any, *args: Any) -> None:
        try:
            hook(self, *args)
        except Exception:
            logger.exception("mitmcors: internal error in %s; the flow passes through unchanged", hook.__name__)

    return wrapper  # type: ignore[return-value]


def url_key(scheme: str, host: str, port: int, path: str) -> str:
    """The URL as the browser's caches see it: normalised origin + path + query, no fragment."""
    return fetchspec.serialize_origin(scheme, host, port) + path.split("#", 1)[0]


def absolute_key(base: str, location: str) -> str | None:
    parts = urlsplit(urljoin(base, location))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port or fetchspec.DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return url_key(parts.scheme, parts.hostname, port, path)


def as_request(f: http.HTTPFlow) -> Request:
    r = f.request
    return Request(r.method, r.scheme, r.host, r.port, r.path, r.headers)


class CorsAddon:
    """Judges every flow that carries an `Origin` header the way Chromium and Firefox would."""

    def __init__(self) -> None:
        self.preflights = PreflightTracker()
        self.redirects = RedirectTracker()
        self.report: Report | None = None
        self.summary = Summary()

    # -- options ---------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option(
            "cors_rules",
            str,
            "",
            "Path of a YAML rule file that rewrites or injects Access-Control-* headers (see rules/). Empty: "
            "inspect only. The file is reloaded when it changes; an invalid edit keeps the last good rules.",
        )
        loader.add_option(
            "cors_report",
            str,
            "",
            "Path of a JSON-lines report: one line per flow that carries an Origin header (its "
            "metadata['cors'] plus flow_id, method, url, timestamp). Prefix with + to append. Empty: no report.",
        )
        loader.add_option(
            "cors_log",
            str,
            "all",
            "Which cross-origin flows get a log line: all, blocked, or off.",
            choices=LOG_CHOICES,
        )

    def configure(self, updated: set[str]) -> None:
        if "cors_report" in updated:
            self._close_report()
            spec = ctx.options.cors_report
            if spec:
                try:
                    self.report = Report(spec)
                except OSError as e:
                    raise exceptions.OptionsError(  # type: ignore[no-untyped-call]
                        f"Cannot open cors_report {spec!r}: {e}"
                    ) from e

    def done(self) -> None:
        if self.summary.kinds:
            logger.info(self.summary.line())
        if self.report is not None:
            summary_path = self.report.path.with_name(self.report.path.name + ".summary.json")
            try:
                summary_path.write_text(json.dumps(self.summary.as_dict(), indent=2) + "\n")
            except OSError as e:
                logger.warning("mitmcors: cannot write the summary %s: %s", summary_path, e)
        self._close_report()

    def _close_report(self) -> None:
        if self.report is not None:
            self.report.close()
            self.report = None

    # -- hooks -----------------------------------------------------------------------------------

    @never_raises
    def request(self, f: http.HTTPFlow) -> None:
        """Link a CORS request to its preflight and redirect at the moment the browser sends it."""
        if "origin" not in f.request.headers:
            return
        req = as_request(f)
        c = classify(req)
        pending: dict[str, Any] = {"kind": c.kind.value}
        if c.kind is Kind.ACTUAL:
            now = f.request.timestamp_start
            key = url_key(req.scheme, req.host, req.port, req.path)
            hop = self.redirects.find(key, now)
            if hop is not None:
                pending["redirected_from"] = hop.flow_id
            origin = req.origin_header or ""
            unsafe = tuple(fetchspec.cors_unsafe_header_names(req.headers.items(multi=True)))
            include = "cookie" in f.request.headers
            link = self.preflights.find(origin, key, req.method, unsafe, include, now)
            if link is not None:
                pending["preflight_id"] = link.entry.flow_id
                pending["preflight_cached"] = link.cached
                link.entry.request_ids.append(f.id)
                link.entry.annotation["request_ids"] = list(link.entry.request_ids)
                if link.entry.flow is not None:
                    ctx.master.addons.trigger(UpdateHook([link.entry.flow]))
        f.metadata["cors"] = pending

    @never_raises
    def response(self, f: http.HTTPFlow) -> None:
        if f.response is None or "origin" not in f.request.headers:
            return
        req = as_request(f)
        verdict = evaluate(req, Response(f.response.status_code, f.response.headers))
        annotation = self._annotate(f, verdict)
        if verdict.kind is Kind.PREFLIGHT and verdict.preflight is not None:
            self.preflights.add(
                PreflightEntry(
                    flow_id=f.id,
                    origin=verdict.origin,
                    url=url_key(req.scheme, req.host, req.port, req.path),
                    facts=verdict.preflight,
                    passed=not verdict.blocked,
                    time=f.response.timestamp_end or f.request.timestamp_start,
                    annotation=annotation,
                    flow=f,
                )
            )
        elif verdict.kind is Kind.ACTUAL and verdict.redirect_location and not verdict.blocked:
            target = absolute_key(f.request.url, verdict.redirect_location)
            if target is not None:
                self.redirects.add(
                    target,
                    RedirectHop(f.id, f.request.url, verdict.origin, f.response.timestamp_end or time.time()),
                )
        self._publish(f, annotation)

    @never_raises
    def error(self, f: http.HTTPFlow) -> None:
        """A CORS request that got no response at all fails in the page too (net::ERR_* in Chromium)."""
        if f.response is not None or "origin" not in f.request.headers:
            return
        c = classify(as_request(f))
        if c.kind not in (Kind.PREFLIGHT, Kind.ACTUAL):
            return
        annotation = dict(f.metadata.get("cors") or {})
        err = f.error.msg if f.error else "no response"
        annotation.update(
            kind=c.kind.value,
            verdict="blocked",
            reason="InvalidResponse" if c.kind is Kind.PREFLIGHT else None,
            firefox_reason="CORSDidNotSucceed2",
            message=f"No response ({err}): Chromium reports a network error (net::ERR_*), Firefox "
            "'CORS request did not succeed'. Fix: make the server reachable; CORS headers cannot help.",
            credentials="include" if "cookie" in f.request.headers else "unknown",
            if_credentials=None,
            request_ids=annotation.get("request_ids", []),
            preflight_id=annotation.get("preflight_id"),
            unreadable_headers=[],
            warnings=[],
            rule=None,
            upstream=None,
        )
        self._publish(f, annotation)

    # -- commands --------------------------------------------------------------------------------

    @command.command("cors.explain")  # type: ignore[untyped-decorator]
    def explain_command(self, flows: Sequence[flow.Flow]) -> str:
        """Explain, step by step, how the browsers judge the CORS of these flows."""
        out = []
        for f in flows:
            if not isinstance(f, http.HTTPFlow):
                continue
            if f.response is None or "origin" not in f.request.headers:
                out.append(
                    f"{f.request.method} {redact_url(f.request.url)}: no Origin or no response, nothing to judge"
                )
                continue
            out.append(
                explain(
                    as_request(f),
                    Response(f.response.status_code, f.response.headers),
                    f.metadata.get("cors"),
                )
            )
        if not out:
            raise exceptions.CommandError("cors.explain: no HTTP flows given")
        text = "\n\n".join(out)
        logger.info(text)
        return text

    # -- annotation ------------------------------------------------------------------------------

    def _annotate(self, f: http.HTTPFlow, verdict: Verdict) -> dict[str, Any]:
        pending = f.metadata.get("cors") or {}
        annotation = verdict.as_dict()
        for key in ("preflight_id", "preflight_cached", "redirected_from"):
            if key in pending:
                annotation[key] = pending[key]
        if verdict.kind is Kind.PREFLIGHT:
            # A preflight may already have been linked to requests (a replayed preflight); keep them.
            annotation["request_ids"] = list(pending.get("request_ids", []))
            if verdict.blocked and verdict.preflight is not None:
                annotation["blocked_request"] = {
                    "method": verdict.preflight.method,
                    "url": redact_url(f.request.url),
                    "headers": list(verdict.preflight.headers),
                }
        if annotation.get("redirected_from") and verdict.origin == "null":
            annotation["note"] += "; Origin is 'null' because an earlier redirect crossed origins"
        return annotation

    def _publish(self, f: http.HTTPFlow, annotation: dict[str, Any]) -> None:
        previous = f.metadata.get("cors") or {}
        f.metadata["cors"] = annotation
        kind = annotation["kind"]
        cross_origin = kind in ("preflight", "actual")
        if cross_origin and (not f.comment or f.comment == previous.get("message")):
            f.comment = annotation["message"]
        if annotation["verdict"] == "blocked":
            f.marked = BLOCKED_MARKER
        elif f.marked == BLOCKED_MARKER:
            f.marked = ""
        self.summary.add(annotation)
        if cross_origin:
            self._log(f, annotation)
        if self.report is not None:
            line = {
                "flow_id": f.id,
                "method": f.request.method,
                "url": redact_url(f.request.url),
                "timestamp": f.request.timestamp_start,
                **annotation,
            }
            try:
                self.report.write(line)
            except OSError as e:
                logger.warning("mitmcors: cannot write to cors_report: %s", e)

    def _log(self, f: http.HTTPFlow, a: dict[str, Any]) -> None:
        mode = ctx.options.cors_log
        blocked = a["verdict"] == "blocked"
        if mode == "off" or (mode == "blocked" and not blocked):
            return
        what = "preflight" if a["kind"] == "preflight" else f.request.method
        head = f"CORS {'BLOCKED' if blocked else 'allowed'} {what} {redact_url(f.request.url)} from {a['origin']}"
        if blocked:
            fix = a["message"].split(" Fix: ", 1)
            detail = f"{a['reason'] or 'no response'} (Firefox: {a['firefox_reason']})" + (
                f" — fix: {fix[1]}" if len(fix) == 2 else ""
            )
            logger.warning(f"{head}: {detail}")
        else:
            extra = []
            if a.get("preflight_id"):
                extra.append("cached preflight" if a.get("preflight_cached") else "after preflight")
            if a.get("if_credentials"):
                extra.append(f"would be {a['if_credentials']['reason']} with credentials")
            if a.get("rule"):
                extra.append(f"rule {a['rule']!r}")
            if a["warnings"]:
                extra.append(f"{len(a['warnings'])} warning(s)")
            logger.info(head + (f" ({'; '.join(extra)})" if extra else ""))
