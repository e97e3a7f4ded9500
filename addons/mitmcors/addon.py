"""The mitmproxy addon: options, hooks and commands, and nothing else.

One response's path: `state.start` (the request as sent) → `tracker` (links) → `rewrite` (rules) →
`evaluator.evaluate` (the browsers' verdict) → `output.publish` (annotation, comment, marker, log, report).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mitmproxy import command, ctx, exceptions, flow, http
from mitmproxy.hooks import UpdateHook

from mitmcors import fetchspec, findings, fixes, rewrite, state, suggest, view
from mitmcors.capture import NeverSent
from mitmcors.evaluator import (
    Credentials,
    Kind,
    Response,
    credentials_mode,
    evaluate,
    failed,
    failed_in_browser,
    revalidated,
)
from mitmcors.explain import explain
from mitmcors.options import OPTIONS, add_options
from mitmcors.output import FLUSH_INTERVAL, Output
from mitmcors.probe import ProbeError
from mitmcors.prober import ProbePacer, Prober
from mitmcors.redact import redact_url
from mitmcors.rulefile import RuleFile
from mitmcors.rules import Rule
from mitmcors.state import FlowState
from mitmcors.tracker import LRU, PreflightEntry, PreflightTracker, RedirectHop, RedirectTracker, ResponseCache

logger = logging.getLogger(__name__)

TOOLS = ("mitmproxy", "mitmdump", "mitmweb")  # the programs whose exit status cors_fail_on sets
# The options the hooks and `done` read, copied by `configure` (reading ctx.options costs a lookup chain).
SETTINGS = frozenset(
    [
        "cors_fail_on",
        "cors_suggest",
        "cors_suggest_format",
        "cors_probe_unsafe",
        "cors_probe_credentials",
        "cors_probe_rate",
    ]
)

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


def _exit_with(status: int) -> None:
    """The process's last act: mitmproxy's `main` returns normally after `done`, so the exit status can only
    be set once everything else has finished. Flush what is buffered, then exit with `status`."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


class CorsAddon:
    """Judges every flow that carries an `Origin` header the way Chromium and Firefox would."""

    def __init__(self) -> None:
        self.rule_file = RuleFile()
        self.output = Output()
        self.preflights: PreflightTracker[FlowState] = PreflightTracker()
        self.redirects = RedirectTracker()
        self.responses = ResponseCache()
        self.findings = findings.FindingsTracker()
        self.prober = Prober()
        self.view = view.CorsView()
        self._observed: LRU[str, suggest.Observation] = LRU(100_000)  # for cors_suggest at exit
        self._inflight: LRU[str, FlowState] = LRU(10_000)  # from request to response
        self.never_sent = NeverSent()  # a browser's HAR: requests its blocked preflights stopped
        self._ticker: asyncio.Task[None] | None = None
        self._has_ui = False  # mitmproxy console / mitmweb: tell them when a linked preflight changes
        self.responseheaders: Callable[[http.HTTPFlow], None] | None = None  # the hook, while there are rules
        self.exit_status = 0  # 1 when cors_fail_on fails the run
        # Joins mitmproxy's addon chain at the first cors.probe only: an addon in the chain costs every event of
        # every flow a lookup, and nothing but a probe replay needs it.
        self._pacer = ProbePacer()
        self._pacer_in: Any = None  # the addon manager the pacer was added to
        self._settings: dict[str, Any] = {o.name: o.default for o in OPTIONS if o.name in SETTINGS}

    # -- options ---------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        view.register(self.view)
        add_options(loader)

    def configure(self, updated: set[str]) -> None:
        if "termlog_verbosity" in updated or "console_eventlog_verbosity" in updated:
            self.output.log_level = self._visible_log_level()
        for o in OPTIONS:
            if o.choices is None or o.name not in updated:
                continue
            value = getattr(ctx.options, o.name)
            if value not in o.choices:  # mitmproxy does not check --set
                # Logged, not raised: a script's OptionsError prints a traceback. At startup mitmdump then exits.
                logger.error(f"{o.name} must be one of {', '.join(repr(c) for c in o.choices)}, not {value!r}")
                return
        if "cors_log" in updated:
            self.output.log_mode = ctx.options.cors_log
        for name in SETTINGS & updated:
            self._settings[name] = getattr(ctx.options, name)
        if "cors_rules" in updated:
            self.rule_file.load(ctx.options.cors_rules)
            # mitmproxy looks a hook up on the addon at every event, and every hook an addon has costs every
            # flow a dispatch: the responseheaders hook is there only while there are rules to apply.
            self.responseheaders = self._responseheaders if self.rule_file.path else None
        if "cors_report" in updated:
            try:
                self.output.open_report(ctx.options.cors_report)
            except OSError as e:
                logger.error(
                    f"Cannot open cors_report {ctx.options.cors_report!r}: {e.strerror}. Fix: create its directory, "
                    "or choose a path you can write to. No report is written."
                )
        if "cors_rules" in updated or "cors_report" in updated:
            self._start_ticker()

    def running(self) -> None:
        self._start_ticker()
        self._has_ui = ctx.master.addons.get("view") is not None  # type: ignore[no-untyped-call]
        self.output.log_level = self._visible_log_level()

    def done(self) -> None:
        self._stop_ticker()
        if self._pacer_in is not None:
            with contextlib.suppress(ValueError, exceptions.AddonManagerError):
                self._pacer_in.remove(self._pacer)
            self._pacer_in = None
        view.unregister(self.view)
        self.output.done(self.findings.counts())
        self._write_suggestion()
        fail_on = self._settings["cors_fail_on"]
        failing = self.output.failing(fail_on)
        if failing:
            logger.error(f"cors_fail_on={fail_on}: {failing} flow(s) fail the run; exiting with status 1")
            self.exit_status = 1
            if os.path.basename(sys.argv[0]) in TOOLS:  # mitmproxy's own process, not an addon test
                atexit.register(_exit_with, 1)

    def _write_suggestion(self) -> None:
        path = self._settings["cors_suggest"]
        if not path:
            return
        text = suggest.render(suggest.suggest(list(self._observed.values())), self._settings["cors_suggest_format"])
        try:
            with open(os.path.expanduser(path), "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            logger.error(f"Cannot write cors_suggest {path!r}: {e}")
            return
        logger.info(f"cors_suggest: the configuration for {len(self._observed)} cross-origin flow(s) is in {path}")

    def _visible_log_level(self) -> int:
        """The lowest level anyone displays: no point formatting info lines for `mitmdump -q`."""
        levels = {"error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO, "alert": logging.INFO}
        shown = [logging.DEBUG] if self._has_ui else []
        for option in ("termlog_verbosity", "console_eventlog_verbosity"):
            if option in ctx.options:
                shown.append(levels.get(str(getattr(ctx.options, option)), logging.DEBUG))
        return min(shown) if shown else logging.INFO

    def _start_ticker(self) -> None:
        """Run the ticker while there is a rule file to watch or a report to keep; otherwise there is nothing to
        do, and no wake-ups to pay for."""
        if not (self.rule_file.path or self.output.report is not None):
            self._stop_ticker()
            return
        if self._ticker is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not running yet: `running()` starts it
        self._ticker = loop.create_task(self._tick(), name="mitmcors rule file and report ticker")

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    async def _tick(self) -> None:
        """Every FLUSH_INTERVAL: reload the rule file if it changed, write report lines whose hold is over."""
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self.rule_file.check_async()
                self.output.tick(time.monotonic())
            except Exception:  # never let the ticker die
                logger.exception("mitmcors: periodic check failed")

    def _rule_for(self, f: http.HTTPFlow, s: FlowState) -> Rule | None:
        rules = self.rule_file.rules
        if rules is None or not rules.rules:
            return None
        return rules.match(f.request.host, f.request.path, s.request.origin_header or "", f)

    # -- hooks -----------------------------------------------------------------------------------

    @never_raises
    def request(self, f: http.HTTPFlow) -> None:
        """Classify the request and link it to its preflight and redirect at the moment the browser sends it."""
        if self.prober.is_probe(f):
            return
        s = state.start(f)
        if s is None:
            return
        self._inflight.put(f.id, s)
        kind = s.classification.kind
        if kind is Kind.ACTUAL:
            self._link(f, s)
        elif kind is Kind.PREFLIGHT and f.response is None:
            rule = self._rule_for(f, s)
            if rule is not None and rule.rewrites_cors and rule.preflight == "answer":
                rewrite.answer_preflight(f, s, rule)

    def _link(self, f: http.HTTPFlow, s: FlowState) -> None:
        now = s.timestamp
        key = s.url_key
        hop = self.redirects.find(key, now)
        if hop is not None:
            s.redirected_from = hop.flow_id
        origin = s.request.origin_header or ""
        if not self.preflights.has(origin, key):
            return
        headers = s.request.headers
        unsafe = tuple(fetchspec.cors_unsafe_header_names(headers.items()))
        include = credentials_mode(headers) is Credentials.INCLUDE
        link = self.preflights.find(origin, key, s.request.method, unsafe, include, now)
        if link is None:
            return
        s.preflight = link
        preflight = link.entry.owner
        learnt = include and not link.cached and not preflight.credentials_learnt
        if learnt:
            preflight.credentials_learnt = True  # the request it announced carries a cookie: mode "include"
        self.output.covered(preflight, f.id, judged_anew=learnt)
        if self._has_ui:
            view = ctx.master.addons.get("view")  # type: ignore[no-untyped-call]
            linked = view.get_by_id(preflight.flow_id) if view is not None else None
            if linked is not None:
                ctx.master.addons.trigger(UpdateHook([linked]))

    @never_raises
    def _responseheaders(self, f: http.HTTPFlow) -> None:
        """Rewrite an actual CORS response's headers before they are sent on (works for streamed bodies)."""
        if f.response is None or self.rule_file.rules is None or self.prober.is_probe(f):
            return
        s = self._inflight.get(f.id)
        if s is None or s.classification.kind is not Kind.ACTUAL or s.ruled:
            return
        rule = self._rule_for(f, s)
        if rule is not None:
            rewrite.fix_actual(f, s, rule)

    def _take(self, f: http.HTTPFlow) -> FlowState | None:
        """What the request hook kept for this flow, or (if it never saw it, e.g. the addon was loaded
        mid-flow) the same computed now; None for flows without an Origin header."""
        s = self._inflight.pop(f.id, None)
        return s if s is not None else state.start(f)

    @never_raises
    def response(self, f: http.HTTPFlow) -> None:
        if f.response is None:
            return
        if self.prober.is_probe(f):
            self.prober.answer(f)
            return
        s = self._take(f)
        if s is None:
            return
        kind = s.classification.kind
        if kind is Kind.PREFLIGHT and not s.ruled:
            rule = self._rule_for(f, s)
            if rule is not None:
                rewrite.fix_preflight(f, s, rule)
        stored = None
        if kind is Kind.PREFLIGHT or kind is Kind.ACTUAL:
            response = state.as_response(f.response)
            if kind is Kind.ACTUAL:
                stored = self._revalidation(s, response)
        else:  # same-origin / not CORS: the response headers play no part
            response = Response(f.response.status_code, state.NO_HEADERS)
        if s.browser_failed:
            origin_from_referer = not state.has_origin(f.request.headers)
            s.verdict = v = failed_in_browser(s.request, s.classification, f.response.status_code, origin_from_referer)
            if kind is Kind.ACTUAL:
                self.never_sent.request(f, s)
        else:
            s.verdict = v = evaluate(s.request, response, s.classification, stored)
        if not s.answered and not s.browser_failed and (kind is Kind.PREFLIGHT or kind is Kind.ACTUAL):
            # Findings judge the server: its own answer, before any rule changed it.
            server = s.server_response or response
            if findings.may_show_findings(s.request, server.headers, kind):
                facts = findings.facts_of(s.flow_id, s.request, server, kind)
                s.findings = tuple(x.annotation() for x in self.findings.observe(facts))
        if v.blocked:
            include = v.credentials is Credentials.INCLUDE
            s.fix = fixes.rule_fix(s.rule, v) if s.rule else fixes.complete_fix(s.request, response, v, include)
        done = f.response.timestamp_end or s.timestamp
        if v.preflight is not None:
            self.preflights.add(PreflightEntry(v.origin, s.url_key, v.preflight, not v.blocked, done, s))
        elif v.redirect is not None and v.redirect.key is not None:
            self.redirects.add(v.redirect.key, RedirectHop(f.id, v.origin, done))
        self.output.publish(f, s, time.monotonic())
        if kind is Kind.PREFLIGHT and v.blocked and v.preflight is not None and not f.live:
            stopped = self.never_sent.blocked_preflight(s, v.preflight.method)
            if stopped is not None:
                self.output.publish(*stopped, time.monotonic(), again=True)
        if self._settings["cors_suggest"] and (kind is Kind.PREFLIGHT or kind is Kind.ACTUAL):
            observed = suggest.observation_from_flow(f)
            if observed is not None:
                self._observed.put(f.id, observed)

    def _revalidation(self, s: FlowState, response: Response) -> Response | None:
        """Keep what the browser's HTTP cache keeps of this response; for a 304, the response it refreshes."""
        origin = s.request.origin_header or ""
        stored = None
        if response.status == 304:
            found = self.responses.find(origin, s.url_key, s.request.headers.get_all("if-none-match"))
            if found is not None:
                stored, s.revalidates = found.response, found.flow_id
                response = revalidated(stored, response)
        self.responses.store(origin, s.url_key, s.revalidates or s.flow_id, response)
        return stored

    @never_raises
    def error(self, f: http.HTTPFlow) -> None:
        """A request that got no (whole) response fails in the page too (net::ERR_* in Chromium)."""
        if self.prober.is_probe(f):
            self.prober.answer(f)
            return
        if f.response is not None and "cors" in f.metadata and f.id not in self._inflight:
            return  # judged at its response; the error came later
        s = self._take(f)
        if s is None:
            return
        s.error = f.error.msg if f.error else "no response"
        s.verdict = failed(
            s.request, s.classification, s.error, proxy_status=state.proxy_error_status(f), abandoned=state.abandoned(f)
        )
        self.output.publish(f, s, time.monotonic())

    # -- commands --------------------------------------------------------------------------------

    @command.command("cors.findings")  # type: ignore[untyped-decorator]
    def findings_command(self, flows: Sequence[flow.Flow]) -> str:
        """Security findings on the servers and routes of these flows (seen passively, nothing is sent)."""
        found = self._findings_of(flows, "cors.findings")
        text = findings.render_text(found) if found else "No security findings on these servers and routes."
        logger.info(text)
        return text

    @command.command("cors.findings.json")  # type: ignore[untyped-decorator]
    def findings_json_command(self, flows: Sequence[flow.Flow]) -> str:
        """The same findings as JSON: a list of {id, severity, title, evidence, fix, why, server, route, ...}."""
        return json.dumps([x.as_dict() for x in self._findings_of(flows, "cors.findings.json")], indent=2)

    def _findings_of(self, flows: Sequence[flow.Flow], command_name: str) -> list[findings.Finding]:
        wanted = {
            (fetchspec.serialize_origin(r.scheme, r.host, r.port), findings.route_of(r.path))
            for r in (f.request for f in flows if isinstance(f, http.HTTPFlow))
        }
        if not wanted:
            raise exceptions.CommandError(f"{command_name}: no HTTP flows given")
        return [x for server, route in sorted(wanted) for x in self.findings.findings(server, route)]

    @command.command("cors.probe")  # type: ignore[untyped-decorator]
    def probe_command(self, flows: Sequence[flow.Flow]) -> str:
        """Replay these flows' requests with crafted Origins (an unrelated site, null, prefix and suffix
        look-alikes, http, a sibling subdomain ...) to prove how the server checks origins. Opt-in: it sends
        requests, without the user's cookies or Authorization, and only OPTIONS for unsafe methods."""
        replays: list[http.HTTPFlow] = []
        out = []
        for f in flows:
            if not isinstance(f, http.HTTPFlow) or self.prober.is_probe(f):
                continue
            trusted = self.findings.trusted_origins(Prober.server_of(f))
            try:
                made = self.prober.replays(
                    f,
                    trusted,
                    unsafe=self._settings["cors_probe_unsafe"],
                    credentials=self._settings["cors_probe_credentials"],
                )
            except ProbeError as e:
                out.append(f"{redact_url(f.request.url)}: {e}")
                continue
            replays += made
            out.append(f"{redact_url(f.request.url)}: {len(made)} probe request(s) sent; the result is logged")
        if not replays:
            raise exceptions.CommandError("cors.probe: no HTTP flow to probe" + (f" ({'; '.join(out)})" if out else ""))
        if view := ctx.master.addons.get("view"):  # type: ignore[no-untyped-call]
            view.add(replays)
        if self._pacer_in is None:
            self._pacer_in = ctx.master.addons
            self._pacer_in.add(self._pacer)
        ctx.master.commands.call("replay.client", replays)  # sent one at a time, paced by ProbePacer
        text = "\n".join(out)
        logger.info(text)
        return text

    @command.command("cors.suggest")  # type: ignore[untyped-decorator]
    def suggest_command(self, flows: Sequence[flow.Flow], format: str) -> str:
        """The least-privilege CORS configuration that makes these flows pass: FORMAT is rule, starlette,
        express, django, flask or nginx."""
        if format not in suggest.FORMATS:
            raise exceptions.CommandError(f"cors.suggest: FORMAT must be one of {', '.join(suggest.FORMATS)}")
        text = suggest.suggest_flows([f for f in flows if isinstance(f, http.HTTPFlow)], format)
        logger.info(text)
        return text

    @command.command("cors.explain")  # type: ignore[untyped-decorator]
    def explain_command(self, flows: Sequence[flow.Flow]) -> Sequence[str]:
        """Explain, step by step, how the browsers judge the CORS of these flows: a list of lines (the console's
        data viewer shows one per row; mitmweb's command bar shows any result as JSON, so the lines also go to
        the event log, which shows them as lines)."""
        out = []
        for f in flows:
            if not isinstance(f, http.HTTPFlow):
                continue
            if f.response is None or not state.has_origin(f.request.headers):
                out.append(
                    f"{f.request.method} {redact_url(f.request.url)}: no Origin or no response, nothing to judge"
                )
                continue
            out.append(explain(state.as_request(f), state.as_response(f.response), f.metadata.get("cors")))
        if not out:
            raise exceptions.CommandError("cors.explain: no HTTP flows given")
        text = "\n\n".join(out)
        logger.info(text)
        return text.splitlines()
