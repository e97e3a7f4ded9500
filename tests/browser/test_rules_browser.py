"""Rule files, with Chromium as the truth: a rule makes an unready backend work and a reproduce rule breaks a good one.

Every page JS runs twice against the same backend answer: through the plain mitmdump (no rules: Chromium fails,
and the addon agrees with Chromium's CDP ``corsError``) and through a second mitmdump started with
``--set cors_rules=<file>`` (Chromium succeeds, the page sees the status the backend sent, and every flow's
``upstream`` says what the plain run's Chromium did with the server's own answer). Each scenario has its own path
(``/s/<run id>/``), and the rule file picks rules by path, so one ruled mitmdump serves every scenario.

A preflight hides the actual request's own answer from Chromium (the request is never sent when the preflight
fails), so preflighted scenarios also fetch ``/probe``, which answers exactly like the actual request but needs
no preflight: its plain-run outcome is Chromium's verdict on the server's own actual answer.

Speed: one browser context per mitmdump, with one page per page origin, is reused by every run. That keeps runs
independent because each run uses fresh URLs (the preflight cache is per URL) and the only cookie, ``sid`` for
``api.example.test``, is wanted by every credentialed scenario.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cors_backend import Reply, Route
from cors_harness import (
    PAGE_HELPERS,
    PREFLIGHT_ERRORS,
    SECRET_VALUES,
    CdpRecorder,
    CdpRequest,
    Env,
    Report,
    Result,
    Scenario,
    _line_time,
    _path,
    _settle,
    _with_prefix,
    live_metadata,
    mismatches,
)

pytestmark = pytest.mark.browser

APP = "http://app.localhost"
API = "http://api.localhost"
# Credentialed scenarios: a same-site https pair (Chromium drops third-party cookies in fresh contexts).
SAPP = "https://app.example.test"
SAPI = "https://api.example.test"
COOKIE_HOST = "api.example.test"
R = "/r"
PROBE = "/probe"
AUTHORIZATION = f"Bearer {SECRET_VALUES[1]}"

Headers = list[tuple[str, str]]
Outcome = tuple[str | None, str | None]  # (verdict, reason) as the addon spells it; (None, None): not asked


def header(name: str, value: str) -> Headers:
    return [(name, value)]


def acao(value: str) -> Headers:
    return header("Access-Control-Allow-Origin", value)


# --- the rule file -----------------------------------------------------------------------------------------

MODES = ("answer", "forward")
# Rules that make an unready backend work: one per (credentials, preflight mode), each on its own run-id prefix.
FIX_RULES: dict[tuple[bool, str], dict[str, Any]] = {
    (False, "answer"): {
        "name": "unready API, preflights answered",
        "match": {"path": "/s/ua-*"},
        "allow_origins": "reflect",
        "allow_methods": "*",
        "allow_headers": "*",  # the addon adds 'authorization' by name: the Fetch standard's '*' never covers it
        "preflight": "answer",
    },
    (False, "forward"): {
        "name": "unready API, preflights forwarded",
        "match": {"path": "/s/uf-*"},
        "allow_origins": [APP],
        "allow_methods": ["GET", "PUT", "DELETE"],
        "allow_headers": ["X-Req", "Authorization"],
        "preflight": "forward",
    },
    (True, "answer"): {
        "name": "unready cookie API, preflights answered",
        "match": {"host": COOKIE_HOST, "path": "/s/ca-*"},
        "allow_origins": [SAPP],
        "allow_credentials": True,
        "preflight": "answer",
    },
    (True, "forward"): {
        "name": "unready cookie API, preflights forwarded",
        "match": {"host": COOKIE_HOST, "path": "/s/cf-*"},
        "allow_origins": ["https://*.example.test"],
        "allow_credentials": True,
        "allow_headers": "*",  # with credentials the addon echoes the request's headers instead of '*'
        "preflight": "forward",
    },
}


def fix_run_id(credentials: bool, mode: str, slug: str) -> str:
    return f"{'c' if credentials else 'u'}{mode[0]}-{slug}"


# --- scenarios -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One page JS against one backend answer; ``rule`` (reproduce and dry-run cases) is that case's own rule."""

    slug: str
    page: str
    base: str
    routes: Mapping[str, Route]
    steps: Sequence[tuple[str, Mapping[str, Any]]]  # (path, fetch init), run one after the other
    statuses: Sequence[int]  # what the backend answers each step
    credentials: bool = False
    rule: Mapping[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        """The method of the fetch of ``/r``."""
        return str(self.steps[0][1]["method"])

    @property
    def preflighted(self) -> bool:
        return "OPTIONS" in self.routes[R].replies

    def scenario(self) -> Scenario:
        calls = ", ".join(
            f'await F("{self.base}" + P + "{path}", {json.dumps(dict(init))})' for path, init in self.steps
        )
        return Scenario(
            page=self.page + "/",
            routes=self.routes,
            js=f"return [{calls}];",
            credentials=self.credentials,
            cookies=[COOKIE_HOST] if self.credentials else [],
        )


def case(
    slug: str,
    actual: Reply,
    *,
    options: Reply | None = None,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    credentials: bool = False,
    rule: Mapping[str, Any] | None = None,
) -> Case:
    """A fetch of ``/r`` (``options`` answers its preflight); a preflighted one also fetches ``/probe``."""
    mode = "include" if credentials else "same-origin"
    init: dict[str, Any] = {"method": method, "credentials": mode}
    if headers:
        init["headers"] = dict(headers)
    routes = {R: Route({"*": actual} if options is None else {"OPTIONS": options, "*": actual})}
    steps: list[tuple[str, Mapping[str, Any]]] = [(R, init)]
    if options is not None:
        routes[PROBE] = Route({"*": actual})
        steps.append((PROBE, {"credentials": mode}))
    return Case(
        slug=slug,
        page=SAPP if credentials else APP,
        base=SAPI if credentials else API,
        routes=routes,
        steps=steps,
        statuses=[actual.status] * len(steps),
        credentials=credentials,
        rule=dict(rule or {}),
    )


NOT_FOUND = Reply(status=404, body=b"not found")
NO_CORS = Reply(status=200, body=b"data")

UNREADY = [
    case("options-404", NO_CORS, options=NOT_FOUND, method="PUT"),
    case(
        "options-405",
        NO_CORS,
        options=Reply(status=405, headers=header("Allow", "GET, DELETE"), body=b"method not allowed"),
        method="DELETE",
    ),
    case(
        "options-401-authorization",
        NO_CORS,
        options=Reply(status=401, headers=header("WWW-Authenticate", "Bearer"), body=b"unauthorized"),
        headers={"Authorization": AUTHORIZATION},
    ),
    case("no-allow-origin", NO_CORS),
    case("500-without-headers", Reply(status=500, body=b"boom")),
    case(
        "options-404-with-cors-headers",
        Reply(headers=acao("*")),
        options=Reply(status=404, headers=acao("*") + header("Access-Control-Allow-Methods", "PUT"), body=b"no route"),
        method="PUT",
    ),
    case("options-404-then-404", NOT_FOUND, options=NOT_FOUND, method="PUT"),
    case("options-404-then-500-without-headers", Reply(status=500, body=b"boom"), options=NOT_FOUND, method="PUT"),
    case("duplicate-allow-origin", Reply(headers=acao(APP) + acao(APP))),
    case(
        "duplicate-allow-origin-on-preflight",
        Reply(headers=acao(APP) + acao(APP)),
        options=Reply(
            status=204, headers=acao(APP) + acao(APP) + header("Access-Control-Allow-Methods", "PUT"), body=b""
        ),
        method="PUT",
    ),
    case("custom-header", Reply(headers=acao("*")), options=Reply(headers=acao("*")), headers={"X-Req": "1"}),
    case(
        "authorization-not-in-allow-headers",
        Reply(headers=acao("*")),
        options=Reply(headers=acao("*") + header("Access-Control-Allow-Headers", "Content-Type")),
        headers={"Authorization": AUTHORIZATION},
    ),
    case("cookie-allow-origin-star", Reply(headers=acao("*")), credentials=True),
    case("cookie-options-404", NO_CORS, options=NOT_FOUND, method="PUT", credentials=True),
    case(
        "cookie-custom-header-options-401",
        NO_CORS,
        options=Reply(status=401, body=b"unauthorized"),
        headers={"X-Req": "1"},
        credentials=True,
    ),
]

# A backend that sends correct headers, and a rule that breaks it the way a production server is broken.
GOOD_PREFLIGHT = Reply(
    status=204,
    headers=acao(APP)
    + header("Access-Control-Allow-Methods", "PUT")
    + header("Access-Control-Allow-Headers", "Authorization")
    + header("Vary", "Origin"),
    body=b"",
)
GOOD_ACTUAL = Reply(headers=acao(APP) + header("Vary", "Origin"))
REPRODUCE = [
    case("strip-allow-origin", GOOD_ACTUAL, rule={"strip": ["Access-Control-Allow-Origin"]}),
    case(
        "strip-allow-origin-on-preflight",
        GOOD_ACTUAL,
        options=GOOD_PREFLIGHT,
        method="PUT",
        rule={"match": {"filter": "~m OPTIONS"}, "strip": ["Access-Control-Allow-Origin"]},
    ),
    case("two-allow-origin-lines", GOOD_ACTUAL, rule={"set": {"Access-Control-Allow-Origin": [APP, APP]}}),
    case(
        "error-loses-allow-origin",
        Reply(status=500, headers=acao(APP), body=b"boom"),
        rule={"match": {"filter": "~c 500"}, "strip": ["Access-Control-Allow-Origin"]},
    ),
    case(
        "preflight-without-authorization",
        GOOD_ACTUAL,
        options=GOOD_PREFLIGHT,
        headers={"Authorization": AUTHORIZATION},
        rule={"allow_origins": "reflect", "allow_methods": ["GET", "PUT"], "allow_headers": ["Content-Type"]},
    ),
    case(
        "star-with-credentials",
        Reply(headers=acao(SAPP) + header("Access-Control-Allow-Credentials", "true") + header("Vary", "Origin")),
        credentials=True,
        rule={"allow_origins": "*", "allow_credentials": True, "dangerously_allow_invalid": True},
    ),
]

# A rule that would fix the backend, in dry-run: it only annotates.
DRY_RUN = [
    case("no-allow-origin", NO_CORS, rule={"allow_origins": "reflect", "dry_run": True}),
    case(
        "options-404-answered",
        NO_CORS,
        options=NOT_FOUND,
        method="PUT",
        rule={"allow_origins": "reflect", "preflight": "answer", "dry_run": True},
    ),
    case(
        "options-404-forwarded",
        NO_CORS,
        options=NOT_FOUND,
        method="PUT",
        rule={"allow_origins": "reflect", "preflight": "forward", "dry_run": True},
    ),
]


def own_rule_name(prefix: str, c: Case) -> str:
    return f"{prefix} {c.slug}"


def own_rules(prefix: str, cases: Sequence[Case]) -> list[dict[str, Any]]:
    """Each case's rule, named after it and matched on its run id's path (plus the case's own conditions)."""
    out = []
    for c in cases:
        rule = dict(c.rule)
        rule["match"] = {**rule.get("match", {}), "path": f"/s/{prefix}-{c.slug}/*"}
        out.append({"name": own_rule_name(prefix, c), **rule})
    return out


def rule_file_text() -> str:
    rules = list(FIX_RULES.values()) + own_rules("rp", REPRODUCE) + own_rules("dry", DRY_RUN)
    return yaml.safe_dump({"rules": rules}, sort_keys=False)


# --- running pages in long-lived contexts ----------------------------------------------------------------------


@dataclass
class Run:
    """One run of a case: the harness's Result plus the response headers Chromium received, per CDP request."""

    result: Result
    received: dict[str, str]

    def request(self, path: str) -> CdpRequest:
        """The page's (non-preflight) request to ``path``."""
        want = self.result.prefix + path
        found = [r for r in self.result.cdp if not r.is_preflight and r.hops and _path(r.hops[0]) == want]
        assert len(found) == 1, f"expected one Chromium request to {path}, got {len(found)}\n{self.evidence()}"
        return found[0]

    def preflights(self) -> list[CdpRequest]:
        return [r for r in self.result.cdp if r.is_preflight]

    def chromium(self, path: str) -> Outcome:
        """What Chromium did with the request to ``path``: ('blocked', corsError) or ('allowed', None)."""
        r = self.request(path)
        if r.cors_error:
            return "blocked", r.cors_error
        assert not r.failed, f"request failed without a CORS error: {r.describe()}\n{self.evidence()}"
        return "allowed", None

    def line(self, method: str, path: str) -> dict[str, Any]:
        found = self.result.lines_for(method, path)
        assert len(found) == 1, f"expected one report line for {method} {path}, got {len(found)}\n{self.evidence()}"
        return found[0]

    def evidence(self) -> str:
        out = [self.result.evidence(), "response headers Chromium received:"]
        for r in self.result.cdp:
            out.append(f"  {r.method} {r.hops[-1] if r.hops else '?'}: {self.received.get(r.request_id, '(none)')}")
        return "\n".join(out)


class Browsing:
    """A browser context behind one mitmdump, with one page per page origin, reused run after run."""

    def __init__(self, env: Env, proxy_url: str | None) -> None:
        self.env = env
        options: dict[str, Any] = {"ignore_https_errors": True}
        if proxy_url is not None:
            options["proxy"] = {"server": proxy_url}
        self.context = env.browser.new_context(**options)
        self.context.add_cookies(
            [
                {
                    "name": "sid",
                    "value": SECRET_VALUES[0],
                    "domain": COOKIE_HOST,
                    "path": "/",
                    "secure": True,
                    "sameSite": "None",
                    "httpOnly": False,
                }
            ]
        )
        self.context.add_init_script(PAGE_HELPERS)
        self.pages: dict[str, tuple[Any, CdpRecorder, dict[str, str]]] = {}
        self.runs: dict[str, Run] = {}

    def close(self) -> None:
        self.context.close()

    def _page(self, url: str) -> tuple[Any, CdpRecorder, dict[str, str]]:
        if url not in self.pages:
            page = self.context.new_page()
            recorder = CdpRecorder(self.context, page)
            received: dict[str, str] = {}

            def on_headers(p: dict[str, Any]) -> None:
                received[p["requestId"]] = p.get("headersText") or json.dumps(p.get("headers") or {})

            recorder.cdp.on("Network.responseReceivedExtraInfo", on_headers)
            page.goto(url, wait_until="load")
            self.pages[url] = (page, recorder, received)
        return self.pages[url]

    def run(self, run_id: str, c: Case) -> Run:
        """Run the case's page JS under ``/s/<run_id>/`` once (later calls return the first run)."""
        if run_id in self.runs:
            return self.runs[run_id]
        env, scenario = self.env, c.scenario()
        prefix = f"/s/{run_id}/"
        base = prefix.rstrip("/")
        for sub, route in scenario.routes.items():
            env.backend.route(base + sub, _with_prefix(route, base))
        page, recorder, received = self._page(scenario.page)
        js = page.evaluate(f"async (P) => {{ {scenario.js} }}", base)
        _settle(page, recorder, prefix)
        cdp = recorder.under(prefix)
        # Raw response headers (Network.responseReceivedExtraInfo) may trail the request's end by a moment.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and any(
            r.request_id not in received for r in cdp if r.is_preflight or r.status is not None
        ):
            page.wait_for_timeout(20)
        wire = env.backend.requests(prefix)
        # A line per preflight Chromium sent (answered in the proxy or not) and per other request that reached
        # the server with an Origin.
        expected = sum(1 for r in cdp if r.is_preflight) + sum(
            1 for s in wire if s.method != "OPTIONS" and s.header("origin") is not None
        )
        report: Report = self.env.report
        lines = sorted(report.wait_lines(prefix, expected), key=_line_time)
        live = live_metadata(env.proxy_url, prefix) if any(ln.get("method") == "OPTIONS" for ln in lines) else []
        console = [m for m in recorder.console if base in m]
        result = Result(scenario, base, js, cdp, console, lines, live, wire, report.text())
        run = Run(result, {r.request_id: received.get(r.request_id, "(none)") for r in cdp})
        self.runs[run_id] = run
        return run


@dataclass
class Proxies:
    plain: Browsing
    ruled: Browsing


@pytest.fixture(scope="module")
def proxies(
    env: Env,
    mitmdump_factory: Callable[..., tuple[str, Report, Path]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Proxies]:
    """Contexts behind the plain mitmdump (no rules) and behind one started with this module's rule file."""
    rules = tmp_path_factory.mktemp("rules") / "rules.yaml"
    rules.write_text(rule_file_text(), encoding="utf-8")
    url, report, _log = mitmdump_factory("--set", f"cors_rules={rules}")
    plain = Browsing(env, None)
    ruled = Browsing(Env(backend=env.backend, proxy_url=url, report=report, browser=env.browser), url)
    try:
        yield Proxies(plain, ruled)
    finally:
        ruled.close()
        plain.close()


def params(cases: Sequence[Case]) -> list[Any]:
    return [pytest.param(c, id=c.slug) for c in cases]


def params_by_mode(cases: Sequence[Case]) -> list[Any]:
    return [pytest.param(c, mode, id=f"{c.slug}-{mode}") for c in cases for mode in MODES]


def fixed(p: Proxies, c: Case, mode: str) -> Run:
    return p.ruled.run(fix_run_id(c.credentials, mode, c.slug), c)


def unfixed(p: Proxies, c: Case) -> Run:
    return p.plain.run(f"plain-{c.slug}", c)


def fail(run: Run, problems: Sequence[str]) -> None:
    if problems:
        raise AssertionError("\n- ".join(["", *problems]) + "\n\n" + run.evidence())


def upstream_of(line: dict[str, Any]) -> Outcome:
    up = line.get("upstream")
    assert isinstance(up, dict), f"{line.get('method')} {line.get('url')}: upstream={up!r}, want a dict"
    return up.get("verdict"), up.get("reason")


# --- an unready backend: fails without rules, works with them ---------------------------------------------------


@pytest.mark.parametrize("c", params(UNREADY))
def test_unready_backend_fails_without_rules(proxies: Proxies, c: Case) -> None:
    """Through the plain mitmdump Chromium blocks the request, and the addon names the same corsError."""
    run = unfixed(proxies, c)
    problems = mismatches(run.result)
    verdict, reason = run.chromium(R)
    if verdict != "blocked":
        problems.append(f"the backend is not unready: Chromium let the request through ({reason})")
    if run.result.js[0]["ok"]:
        problems.append(f"the page's fetch resolved without rules: {run.result.js[0]}")
    fail(run, problems)


@pytest.mark.parametrize(("c", "mode"), params_by_mode(UNREADY))
def test_rule_makes_unready_backend_work(proxies: Proxies, c: Case, mode: str) -> None:
    """Through the ruled mitmdump the same JS succeeds with the backend's status; every flow is allowed by the rule."""
    run = fixed(proxies, c, mode)
    result, name = run.result, FIX_RULES[(c.credentials, mode)]["name"]
    problems: list[str] = []
    for r in result.cdp:
        if r.failed:
            problems.append(f"Chromium still fails: {r.describe()}")
    for (path, _), status, out in zip(c.steps, c.statuses, result.js, strict=True):
        if not out.get("ok") or out.get("status") != status:
            problems.append(f"page fetch of {path}: {out}, want it to resolve with the backend's status {status}")
    want_lines = len(c.steps) + (1 if c.preflighted else 0)
    if len(result.lines) != want_lines:
        problems.append(f"{len(result.lines)} report lines, want {want_lines}")
    for ln in result.lines:
        where = f"{ln.get('method')} {_path(ln.get('url', ''))}"
        if (ln.get("verdict"), ln.get("reason")) != ("allowed", None):
            problems.append(f"{where}: verdict={ln.get('verdict')!r} reason={ln.get('reason')!r}, want allowed")
        if ln.get("rule") != name:
            problems.append(f"{where}: rule={ln.get('rule')!r}, want {name!r}")
    if c.preflighted and len(result.lines) == want_lines:
        options, actual = run.line("OPTIONS", R), run.line(c.method, R)
        if actual.get("preflight_id") != options.get("flow_id"):
            problems.append(f"preflight_id={actual.get('preflight_id')!r}, want the OPTIONS {options.get('flow_id')!r}")
    if c.credentials:
        for path, init in c.steps:
            sent = [w.header("cookie") for w in result.wire_for(init.get("method", "GET"), path)]
            if not sent or not all(sent):
                problems.append(f"{path}: Cookie on the wire {sent}, want the stored cookie sent")
            for ln in result.lines_for(init.get("method", "GET"), path):
                if ln.get("credentials") != "include":
                    problems.append(f"{path}: credentials={ln.get('credentials')!r} with a Cookie on the wire")
    for secret in SECRET_VALUES:
        if secret in result.report_text:
            problems.append(f"the ruled report contains the secret value {secret!r}")
    fail(run, problems)


@pytest.mark.parametrize(("c", "mode"), params_by_mode(UNREADY))
def test_rule_reports_what_chromium_did_with_the_server_answer(proxies: Proxies, c: Case, mode: str) -> None:
    """Each rewritten flow's ``upstream`` equals Chromium's outcome for the server's own answer (plain run); an
    answered preflight's is null: the server never saw it."""
    plain, run = unfixed(proxies, c), fixed(proxies, c, mode)
    main = plain.chromium(R)
    hidden = main[1] in PREFLIGHT_ERRORS  # the plain run never sent the actual request: /probe stands in
    want: list[tuple[str, str, Outcome]] = []
    if c.preflighted:
        preflight: Outcome = (None, None) if mode == "answer" else main if hidden else ("allowed", None)
        want.append(("OPTIONS", R, preflight))
    want.append((c.method, R, plain.chromium(PROBE) if hidden else main))
    if c.preflighted:
        want.append(("GET", PROBE, plain.chromium(PROBE)))
    problems = []
    for method, path, outcome in want:
        got = upstream_of(run.line(method, path))
        if got != outcome:
            problems.append(f"{method} {path}: upstream (verdict, reason)={got}, Chromium without rules: {outcome}")
    fail(run, problems)


@pytest.mark.parametrize(("c", "mode"), params_by_mode([c for c in UNREADY if c.preflighted]))
def test_preflight_reaches_server_only_when_forwarded(proxies: Proxies, c: Case, mode: str) -> None:
    """``preflight: answer`` replies in the proxy (the server sees no OPTIONS); ``forward`` sends it upstream."""
    run = fixed(proxies, c, mode)
    seen = len(run.result.wire_for("OPTIONS", R))
    sent = len(run.preflights())
    want = 0 if mode == "answer" else 1
    assert (sent, seen) == (1, want), (
        f"Chromium sent {sent} preflight(s), the server saw {seen}, want 1 and {want}\n{run.evidence()}"
    )


# --- a reproduce rule breaks a good backend the way Chromium predicts -------------------------------------------


@pytest.mark.parametrize("c", params(REPRODUCE))
def test_good_backend_works_without_rules(proxies: Proxies, c: Case) -> None:
    """The backend of each reproduce scenario is correct: through the plain mitmdump Chromium lets it through."""
    run = unfixed(proxies, c)
    problems = mismatches(run.result)
    problems += [f"Chromium failed: {r.describe()}" for r in run.result.cdp if r.failed]
    fail(run, problems)


@pytest.mark.parametrize("c", params(REPRODUCE))
def test_reproduce_rule_fails_like_chromium(proxies: Proxies, c: Case) -> None:
    """Through the ruled mitmdump Chromium fails, and the addon's verdict and reason equal Chromium's corsError."""
    run = proxies.ruled.run(f"rp-{c.slug}", c)
    problems = mismatches(run.result)
    verdict, _ = run.chromium(R)
    if verdict != "blocked":
        problems.append("the rule did not make Chromium fail")
    blocked = [ln for ln in run.result.lines if ln.get("verdict") == "blocked"]
    name = own_rule_name("rp", c)
    problems += [
        f"{ln['method']} {ln['url']}: rule={ln.get('rule')!r}, want {name!r}"
        for ln in blocked
        if ln.get("rule") != name
    ]
    fail(run, problems)


@pytest.mark.parametrize("c", params(REPRODUCE))
def test_reproduce_rule_reports_the_server_as_allowed(proxies: Proxies, c: Case) -> None:
    """Every flow the reproduce rule changed says upstream 'allowed', which is what Chromium did without the rule."""
    control, run = unfixed(proxies, c), proxies.ruled.run(f"rp-{c.slug}", c)
    name = own_rule_name("rp", c)
    problems = [
        f"without the rule Chromium got {control.chromium(path)}"
        for path, _ in c.steps
        if control.chromium(path) != ("allowed", None)
    ]
    changed = [ln for ln in run.result.lines if ln.get("rule") == name]
    if not changed:
        problems.append(f"no report line names the rule {name!r}")
    for ln in changed:
        got = upstream_of(ln)
        if got != ("allowed", None):
            problems.append(f"{ln['method']} {ln['url']}: upstream={got}, want ('allowed', None)")
    fail(run, problems)


# --- a dry-run rule only annotates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("c", params(DRY_RUN))
def test_dry_run_rule_leaves_chromium_failing(proxies: Proxies, c: Case) -> None:
    """Nothing is rewritten: Chromium still fails, the addon agrees with it, and no line claims the rule."""
    run = proxies.ruled.run(f"dry-{c.slug}", c)
    problems = mismatches(run.result)
    if run.chromium(R)[0] != "blocked":
        problems.append("Chromium let the request through: the dry-run rule rewrote something")
    if c.preflighted and not run.result.wire_for("OPTIONS", R):
        problems.append("the OPTIONS never reached the server: the dry-run rule answered it")
    for r in run.result.cdp:
        received = run.received.get(r.request_id, "")
        if "access-control-" in received.lower():
            problems.append(
                f"{r.method} {r.hops[-1]}: Chromium received Access-Control-* headers the server never sent"
            )
        if r.is_preflight and not received.startswith(f"HTTP/1.1 {c.routes[R].replies['OPTIONS'].status} "):
            problems.append(f"{r.method} {r.hops[-1]}: Chromium did not receive the server's own status")
    problems += [
        f"{ln['method']} {ln['url']}: rule={ln.get('rule')!r}, want null"
        for ln in run.result.lines
        if ln.get("rule") is not None
    ]
    fail(run, problems)


@pytest.mark.parametrize("c", params(DRY_RUN))
def test_dry_run_rule_annotates_the_would_be_verdict(proxies: Proxies, c: Case) -> None:
    """The blocked flow's line carries ``dry_run`` with the rule's name and the verdict the rule would give."""
    run = proxies.ruled.run(f"dry-{c.slug}", c)
    method = "OPTIONS" if c.preflighted else c.method
    dry = run.line(method, R).get("dry_run")
    name = own_rule_name("dry", c)
    problems = []
    if not isinstance(dry, dict) or dry.get("rule") != name or dry.get("verdict") != "allowed":
        problems.append(f"{method} {R}: dry_run={dry!r}, want rule {name!r} and verdict 'allowed'")
    fail(run, problems)
