"""The mitmproxy side: adapt flows for the evaluator, link them, annotate them, log and report.

Everything that decides lives in `evaluator` (browser logic), `tracker` (links) and `rules` (rewrites);
this module only moves data between them and mitmproxy.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urljoin, urlsplit

from mitmproxy import command, ctx, exceptions, flow, flowfilter, http
from mitmproxy.hooks import UpdateHook

from mitmcors import fetchspec
from mitmcors.evaluator import (
    Classification,
    Credentials,
    Kind,
    Outcome,
    PlainHeaders,
    Request,
    Response,
    Verdict,
    WireHeaders,
    classify,
    evaluate,
)
from mitmcors.explain import explain
from mitmcors.reasons import FirefoxReason, Reason
from mitmcors.redact import redact_url
from mitmcors.report import Report, Summary
from mitmcors.rules import HeaderEdit, Rule, RuleFileError, RuleSet, cors_edit, parse_rules
from mitmcors.tracker import LRU, PreflightEntry, PreflightTracker, RedirectHop, RedirectTracker
from mitmcors.yamlsource import backend_name

logger = logging.getLogger(__name__)

BLOCKED_MARKER = ":no_entry:"
LOG_CHOICES = ("all", "blocked", "off")
MAX_REQUEST_IDS = 100  # a preflight served from the cache for hours lists its first 100 requests, and counts all
RELOAD_INTERVAL = 0.5  # seconds between checks of the rule file (and flushes of held report lines)
# A passing preflight's report line waits this long for the request it announces, so that the line can
# carry `request_ids` (browsers send that request within milliseconds).
REPORT_HOLD = 1.5

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
    """The URL key of a redirect target, or None when the Location is not a usable http(s) URL."""
    try:
        parts = urlsplit(urljoin(base, location))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        port = parts.port or fetchspec.DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return url_key(parts.scheme, parts.hostname, port, path)


def as_request(f: http.HTTPFlow) -> Request:
    """The request for the evaluator, with its headers indexed once (mitmproxy's get_all is a linear scan)."""
    r = f.request
    return Request(wire_method(f), r.scheme, r.host, r.port, r.path, WireHeaders(r.headers.fields))


def wire_method(f: http.HTTPFlow) -> str:
    """The method as sent: mitmproxy's `request.method` upper-cases it, but `fetch(..., {method: 'patch'})`
    sends `patch`, which browsers compare case-sensitively with Access-Control-Allow-Methods."""
    return f.request.data.method.decode("utf-8", "replace")


def has_origin(headers: http.Headers) -> bool:
    """Cheaper than `"origin" in headers` (which decodes every name): most flows have no Origin."""
    for name, _ in headers.fields:  # noqa: SIM110 - a plain loop: any() over a generator costs more here
        if len(name) == 6 and name.lower() == b"origin":
            return True
    return False


class InFlight(NamedTuple):
    """What the request hook learnt about a flow, kept until its response (the request as the browser sent
    it, before other addons edit it)."""

    request: Request
    classification: Classification


NO_HEADERS = PlainHeaders()


def as_response(resp: http.Response) -> Response:
    return Response(resp.status_code, WireHeaders(resp.headers.fields))


def compile_filter(text: str) -> flowfilter.TFilter:
    """mitmproxy's own filter language; raises ValueError on a bad expression (as mitmproxy ≥ 11 does)."""
    compiled = flowfilter.parse(text)
    if compiled is None:  # older mitmproxy returned None instead of raising
        raise ValueError(f"Invalid filter expression: {text!r}")
    return compiled


def apply_edit(headers: http.Headers, edit: HeaderEdit) -> None:
    for name, values in edit.replace:
        headers.set_all(name, list(values))


def preflight_edit(
    rule: Rule, req: Request, *, answered: bool = False, vary: list[str] | None = None, status: int = 204
) -> HeaderEdit:
    """What `rule` puts on the answer to the preflight `req` (answered by the proxy, or the server's fixed)."""
    return cors_edit(
        rule,
        preflight=True,
        origin=req.origin_header or "",
        request_method=(req.headers.get_all("access-control-request-method") or [""])[0].strip(),
        request_headers=fetchspec.split_names(req.headers.get_all("access-control-request-headers")),
        vary=vary or [],
        status=status,
        answered=answered,
    )


def file_signature(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def read_rules(path: str) -> RuleSet:
    """Read and validate a rule file. Raises RuleFileError or OSError."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    return parse_rules(text, path, compile_filter)


class CorsAddon:
    """Judges every flow that carries an `Origin` header the way Chromium and Firefox would."""

    def __init__(self) -> None:
        self.preflights = PreflightTracker()
        self.redirects = RedirectTracker()
        self.report: Report | None = None
        self.summary = Summary()
        self.rules: RuleSet | None = None
        self._rules_path = ""
        self._rules_signature: tuple[int, int, int] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._held: dict[str, tuple[float, dict[str, Any]]] = {}
        self._inflight: LRU[str, InFlight] = LRU(10_000)
        self._has_ui = False  # mitmproxy console / mitmweb: tell them when a linked preflight changes
        self._log_level = logging.INFO
        self._log_mode = "all"

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
        if "termlog_verbosity" in updated or "console_eventlog_verbosity" in updated:
            self._log_level = self._visible_log_level()
        if "cors_log" in updated:
            self._log_mode = ctx.options.cors_log
        if "cors_rules" in updated:
            self._configure_rules(ctx.options.cors_rules)
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

    def running(self) -> None:
        self._start_watcher()
        self._has_ui = ctx.master.addons.get("view") is not None  # type: ignore[no-untyped-call]
        self._log_level = self._visible_log_level()

    def _visible_log_level(self) -> int:
        """The lowest level anyone displays: no point formatting info lines for `mitmdump -q`."""
        levels = {"error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO, "alert": logging.INFO}
        shown = [logging.DEBUG] if self._has_ui else []
        for option in ("termlog_verbosity", "console_eventlog_verbosity"):
            if option in ctx.options:
                shown.append(levels.get(str(getattr(ctx.options, option)), logging.DEBUG))
        return min(shown) if shown else logging.INFO

    def done(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        self._flush_held(None)
        if self.summary.kinds:
            logger.info(self.summary.line())
        if self.report is not None:
            summary_path = self.report.path.with_name(self.report.path.name + ".summary.json")
            try:
                summary_path.write_text(json.dumps(self.summary.as_dict(), indent=2) + "\n")
            except OSError as e:
                logger.warning("mitmcors: cannot write the summary %s: %s", summary_path, e)
        self._close_report()

    # -- rule file -------------------------------------------------------------------------------

    def _configure_rules(self, spec: str) -> None:
        """Load the rule file named by the option.

        A bad file is logged as an error (every problem with file:line and its fix) and the last good rules
        stay in force; at startup that error makes mitmdump exit, as it does for any startup error.
        """
        if not spec:
            self.rules, self._rules_path, self._rules_signature = None, "", None
            return
        path = os.path.expanduser(spec)
        self._rules_path = path
        self._rules_signature = file_signature(path)
        self._start_watcher()
        try:
            rules = read_rules(path)
        except (OSError, RuleFileError) as e:
            kept = f"keeping the {len(self.rules.rules)} rule(s) loaded before" if self.rules else "no rules in force"
            logger.error(f"Cannot load cors_rules {spec} ({kept}):\n{e}")
            return
        self._install(path, rules)

    def _install(self, path: str, rules: RuleSet) -> None:
        self.rules, self._rules_path, self._rules_signature = rules, path, file_signature(path)
        for warning in rules.warnings:
            logger.warning(f"cors_rules {path}: {warning}")
        logger.info(f"cors_rules: {len(rules.rules)} rule(s) loaded from {path} (read with {backend_name()})")

    def check_rules_file(self) -> None:
        """Reload the rule file if it changed on disk; an invalid edit keeps the last good rules."""
        path = self._rules_path
        if not path:
            return
        signature = file_signature(path)
        if signature == self._rules_signature:
            return
        self._rules_signature = signature
        if signature is None:
            logger.warning(
                f"cors_rules: {path} is gone; keeping the {len(self.rules.rules if self.rules else ())} rule(s) loaded"
            )
            return
        try:
            rules = read_rules(path)
        except (OSError, RuleFileError) as e:
            logger.error(f"cors_rules: {path} has errors; keeping the last good rules.\n{e}")
            return
        self._install(path, rules)
        self._rules_signature = signature

    def _start_watcher(self) -> None:
        if self._watcher is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not running yet: `running()` starts it
        self._watcher = loop.create_task(self._watch(), name="mitmcors rule file watcher")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            try:
                self.check_rules_file()
                self._flush_held(time.monotonic())
            except Exception:  # never let the watcher die
                logger.exception("mitmcors: periodic check failed")

    def _rule_for(self, f: http.HTTPFlow, origin: str) -> Rule | None:
        if self.rules is None or not self.rules.rules:
            return None
        return self.rules.match(f.request.host, f.request.path, origin, f)

    def _close_report(self) -> None:
        if self.report is not None:
            self.report.close()
            self.report = None

    # -- hooks -----------------------------------------------------------------------------------

    @never_raises
    def request(self, f: http.HTTPFlow) -> None:
        """Classify the request and link it to its preflight and redirect at the moment the browser sends it."""
        if not has_origin(f.request.headers):
            return
        req = as_request(f)
        c = classify(req)
        self._inflight.put(f.id, InFlight(req, c))
        pending: dict[str, Any] = {"kind": c.kind.value}
        if c.kind is Kind.ACTUAL:
            self._link(f, req, pending)
        f.metadata["cors"] = pending
        if c.kind is Kind.PREFLIGHT and f.response is None and self.rules is not None:
            rule = self._rule_for(f, req.origin_header or "")
            if rule is not None and rule.rewrites_cors and rule.preflight == "answer":
                self._answer_preflight(f, req, rule, pending)

    def _link(self, f: http.HTTPFlow, req: Request, pending: dict[str, Any]) -> None:
        now = f.request.timestamp_start
        key = url_key(req.scheme, req.host, req.port, req.path)
        hop = self.redirects.find(key, now)
        if hop is not None:
            pending["redirected_from"] = hop.flow_id
        origin = req.origin_header or ""
        if not self.preflights.has(origin, key):
            return
        unsafe = tuple(fetchspec.cors_unsafe_header_names(req.headers.items(multi=True)))
        include = bool(req.headers.get_all("cookie"))
        link = self.preflights.find(origin, key, req.method, unsafe, include, now)
        if link is None:
            return
        entry = link.entry
        pending["preflight_id"] = entry.flow_id
        pending["preflight_cached"] = link.cached
        announced_with_cookie = include and not link.cached and entry.annotation.get("credentials") == "unknown"
        if announced_with_cookie and entry.annotation.get("if_credentials") is None:
            # The request the preflight announced carries a cookie: its credentials mode was "include".
            entry.annotation["credentials"] = "include"
            held = self._held.get(entry.flow_id)
            if held is not None:
                held[1]["credentials"] = "include"
        count = entry.annotation.get("requests_covered", 0) + 1
        entry.annotation["requests_covered"] = count
        if count <= MAX_REQUEST_IDS:
            entry.request_ids.append(f.id)
            entry.annotation["request_ids"] = entry.request_ids
        self._release_held(entry.flow_id, list(entry.request_ids))
        if self._has_ui and entry.flow is not None:
            ctx.master.addons.trigger(UpdateHook([entry.flow]))

    def _answer_preflight(self, f: http.HTTPFlow, req: Request, rule: Rule, pending: dict[str, Any]) -> None:
        """`preflight: answer`: reply 204 from the proxy; the server never sees the OPTIONS."""
        edit = preflight_edit(rule, req, answered=True)
        headers = http.Headers()
        apply_edit(headers, edit)
        if rule.dry_run:
            simulated = evaluate(req, Response(204, WireHeaders(headers.fields)))
            pending["dry_run"] = {
                "rule": rule.name,
                "answer": True,
                "changes": edit.describe(),
                **simulated.outcome.as_dict(),
            }
            return
        headers["Content-Length"] = "0"
        f.response = http.Response.make(204, b"", headers)
        pending["rule"] = rule.name
        pending["upstream"] = {
            "verdict": None,
            "reason": None,
            "firefox_reason": None,
            "message": "answered by the proxy (preflight: answer): the server never saw this preflight",
        }

    @never_raises
    def responseheaders(self, f: http.HTTPFlow) -> None:
        """Rewrite an actual CORS response's headers before they are sent on (works for streamed bodies)."""
        if self.rules is None or f.response is None:
            return
        inflight = self._inflight.get(f.id)
        if inflight is None or inflight.classification.kind is not Kind.ACTUAL:
            return
        pending = f.metadata.get("cors") or {}
        if "rule" in pending or "dry_run" in pending:
            return
        req = inflight.request
        rule = self._rule_for(f, req.origin_header or "")
        if rule is None:
            return
        upstream = evaluate(req, as_response(f.response), inflight.classification)
        edit = cors_edit(
            rule,
            preflight=False,
            origin=req.origin_header or "",
            response_header_names=list(f.response.headers.keys()),
            vary=f.response.headers.get_all("vary"),
            status=f.response.status_code,
        )
        self._apply(f, req, rule, edit, upstream, pending)

    def _apply(
        self, f: http.HTTPFlow, req: Request, rule: Rule, edit: HeaderEdit, upstream: Verdict, pending: dict[str, Any]
    ) -> None:
        assert f.response is not None
        if rule.dry_run:
            headers = f.response.headers.copy()
            apply_edit(headers, edit)
            simulated = evaluate(req, Response(edit.status or f.response.status_code, WireHeaders(headers.fields)))
            pending["dry_run"] = {"rule": rule.name, "changes": edit.describe(), **simulated.outcome.as_dict()}
            return
        if edit.status is not None:
            f.response.status_code = edit.status
            f.response.reason = "No Content" if edit.status == 204 else f.response.reason
            if f.response.raw_content:
                f.response.content = b""
            f.response.headers.pop("content-type", None)
        apply_edit(f.response.headers, edit)
        pending["rule"] = rule.name
        pending["upstream"] = {**upstream.outcome.as_dict(), "message": upstream.outcome.message}

    def _take_inflight(self, f: http.HTTPFlow) -> InFlight | None:
        """What the request hook kept for this flow, or (if it never saw it, e.g. the addon was loaded
        mid-flow) the same computed now; None for flows without an Origin header."""
        inflight = self._inflight.pop(f.id, None)
        if inflight is None and has_origin(f.request.headers):
            req = as_request(f)
            inflight = InFlight(req, classify(req))
        return inflight

    @never_raises
    def response(self, f: http.HTTPFlow) -> None:
        if f.response is None:
            return
        inflight = self._take_inflight(f)
        if inflight is None:
            return
        req, c = inflight.request, inflight.classification
        pending = f.metadata.get("cors") or {}
        if c.kind is Kind.PREFLIGHT and self.rules is not None and "rule" not in pending and "dry_run" not in pending:
            rule = self._rule_for(f, req.origin_header or "")
            if rule is not None:
                upstream = evaluate(req, as_response(f.response), c)
                edit = preflight_edit(rule, req, vary=f.response.headers.get_all("vary"), status=f.response.status_code)
                self._apply(f, req, rule, edit, upstream, pending)
        if c.kind is Kind.PREFLIGHT or c.kind is Kind.ACTUAL:
            response = as_response(f.response)
        else:  # same-origin / not CORS: the response headers play no part
            response = Response(f.response.status_code, NO_HEADERS)
        verdict = evaluate(req, response, c)
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
                    RedirectHop(
                        f.id, redact_url(f.request.url), verdict.origin, f.response.timestamp_end or time.time()
                    ),
                )
        self._publish(f, annotation)

    @never_raises
    def error(self, f: http.HTTPFlow) -> None:
        """A CORS request that got no (whole) response fails in the page too (net::ERR_* in Chromium)."""
        inflight = self._take_inflight(f)
        if inflight is None:
            return
        if f.response is not None and "verdict" in (f.metadata.get("cors") or {}):
            return  # judged at its response; the error came later
        req, c = inflight.request, inflight.classification
        if c.kind not in (Kind.PREFLIGHT, Kind.ACTUAL):
            return
        err = f.error.msg if f.error else "no response"
        outcome = Outcome(
            False,
            Reason.InvalidResponse if c.kind is Kind.PREFLIGHT else None,
            FirefoxReason.CORSDidNotSucceed,
            f"No response ({err}): Chromium reports a network error (net::ERR_*), Firefox 'CORS request did not "
            "succeed'. Fix: make the server reachable; CORS headers cannot help.",
        )
        include = bool(req.headers.get_all("cookie"))
        verdict = Verdict(
            c.kind,
            req.origin_header or "",
            outcome,
            Credentials.INCLUDE if include else Credentials.UNKNOWN,
            note=c.note,
        )
        annotation = self._annotate(f, verdict)
        annotation.update(rule=None, upstream=None)  # no response reached the page, so no rewrite did either
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
                    as_response(f.response),
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
        for key in ("preflight_id", "preflight_cached", "redirected_from", "rule", "upstream", "dry_run"):
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
                "method": wire_method(f),
                "url": redact_url(f.request.url),
                "timestamp": f.request.timestamp_start,
                **annotation,
            }
            line["request_ids"] = list(annotation.get("request_ids") or [])
            now = time.monotonic()
            self._flush_held(now)
            if kind == "preflight" and annotation["verdict"] == "allowed":
                self._held[f.id] = (now + REPORT_HOLD, line)
            else:
                self._write_line(line)

    def _write_line(self, line: dict[str, Any]) -> None:
        if self.report is None:
            return
        try:
            self.report.write(line)
        except (OSError, ValueError) as e:
            logger.warning("mitmcors: cannot write to cors_report: %s", e)

    def _release_held(self, flow_id: str, request_ids: list[str]) -> None:
        held = self._held.pop(flow_id, None)
        if held is not None:
            held[1]["request_ids"] = request_ids
            self._write_line(held[1])

    def _flush_held(self, now: float | None) -> None:
        """Write held preflight lines whose wait is over (all of them when `now` is None)."""
        if not self._held:
            return
        for flow_id, (deadline, line) in list(self._held.items()):
            if now is None or deadline <= now:
                del self._held[flow_id]
                self._write_line(line)

    def _log(self, f: http.HTTPFlow, a: dict[str, Any]) -> None:
        blocked = a["verdict"] == "blocked"
        if (logging.WARNING if blocked else logging.INFO) < self._log_level:
            return  # nobody would see it (e.g. mitmdump -q): skip the formatting and the log fan-out
        mode = self._log_mode
        if mode == "off" or (mode == "blocked" and not blocked):
            return
        what = "preflight" if a["kind"] == "preflight" else wire_method(f)
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
                up = a.get("upstream") or {}
                server = up.get("reason") or up.get("verdict") or "not asked"
                extra.append(f"rule {a['rule']!r}; the server alone: {server}")
            if a["warnings"]:
                extra.append(f"{len(a['warnings'])} warning(s)")
            logger.info(head + (f" ({'; '.join(extra)})" if extra else ""))
