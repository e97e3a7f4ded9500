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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from tests.harness.backend import Answer, Route
from tests.harness.browser import (
    SECRET_VALUES,
    CdpRecorder,
    CdpRequest,
    Env,
    Result,
    Scenario,
    line_path,
    open_context,
    open_page,
    play,
    register,
    url_path,
)
from tests.harness.chromium import PREFLIGHT_ERRORS, mismatches
from tests.harness.mitmdump import Mitmdump

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
    actual: Answer,
    *,
    options: Answer | None = None,
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


NOT_FOUND = Answer(status=404, body=b"not found")
NO_CORS = Answer(status=200, body=b"data")

UNREADY = [
    case("options-404", NO_CORS, options=NOT_FOUND, method="PUT"),
    case(
        "options-405",
        NO_CORS,
        options=Answer(status=405, headers=header("Allow", "GET, DELETE"), body=b"method not allowed"),
        method="DELETE",
    ),
    case(
        "options-401-authorization",
        NO_CORS,
        options=Answer(status=401, headers=header("WWW-Authenticate", "Bearer"), body=b"unauthorized"),
        headers={"Authorization": AUTHORIZATION},
    ),
    case("no-allow-origin", NO_CORS),
    case("500-without-headers", Answer(status=500, body=b"boom")),
    case(
        "options-404-with-cors-headers",
        Answer(headers=acao("*")),
        options=Answer(status=404, headers=acao("*") + header("Access-Control-Allow-Methods", "PUT"), body=b"no route"),
        method="PUT",
    ),
    case("options-404-then-404", NOT_FOUND, options=NOT_FOUND, method="PUT"),
    case("options-404-then-500-without-headers", Answer(status=500, body=b"boom"), options=NOT_FOUND, method="PUT"),
    case("duplicate-allow-origin", Answer(headers=acao(APP) + acao(APP))),
    case(
        "duplicate-allow-origin-on-preflight",
        Answer(headers=acao(APP) + acao(APP)),
        options=Answer(
            status=204, headers=acao(APP) + acao(APP) + header("Access-Control-Allow-Methods", "PUT"), body=b""
        ),
        method="PUT",
    ),
    case("custom-header", Answer(headers=acao("*")), options=Answer(headers=acao("*")), headers={"X-Req": "1"}),
    case(
        "authorization-not-in-allow-headers",
        Answer(headers=acao("*")),
        options=Answer(headers=acao("*") + header("Access-Control-Allow-Headers", "Content-Type")),
        headers={"Authorization": AUTHORIZATION},
    ),
    case("cookie-allow-origin-star", Answer(headers=acao("*")), credentials=True),
    case("cookie-options-404", NO_CORS, options=NOT_FOUND, method="PUT", credentials=True),
    case(
        "cookie-custom-header-options-401",
        NO_CORS,
        options=Answer(status=401, body=b"unauthorized"),
        headers={"X-Req": "1"},
        credentials=True,
    ),
]

# A backend that sends correct headers, and a rule that breaks it the way a production server is broken.
GOOD_PREFLIGHT = Answer(
    status=204,
    headers=acao(APP)
    + header("Access-Control-Allow-Methods", "PUT")
    + header("Access-Control-Allow-Headers", "Authorization")
    + header("Vary", "Origin"),
    body=b"",
)
GOOD_ACTUAL = Answer(headers=acao(APP) + header("Vary", "Origin"))
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
        Answer(status=500, headers=acao(APP), body=b"boom"),
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
        Answer(headers=acao(SAPP) + header("Access-Control-Allow-Credentials", "true") + header("Vary", "Origin")),
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
    """One run of a case through one mitmdump."""

    result: Result

    def request(self, sub: str) -> CdpRequest:
        """The page's (non-preflight) request to ``sub``."""
        want = self.result.prefix + sub
        found = [r for r in self.result.cdp if not r.is_preflight and r.hops and url_path(r.hops[0]) == want]
        assert len(found) == 1, f"expected one Chromium request to {sub}, got {len(found)}\n{self.evidence()}"
        return found[0]

    def preflights(self) -> list[CdpRequest]:
        return [r for r in self.result.cdp if r.is_preflight]

    def chromium(self, sub: str) -> Outcome:
        """What Chromium did with the request to ``sub``: ('blocked', corsError) or ('allowed', None)."""
        r = self.request(sub)
        if r.cors_error:
            return "blocked", r.cors_error
        assert not r.failed, f"request failed without a CORS error: {r.describe()}\n{self.evidence()}"
        return "allowed", None

    def line(self, method: str, sub: str) -> dict[str, Any]:
        found = self.result.lines_for(method, sub)
        assert len(found) == 1, f"expected one report line for {method} {sub}, got {len(found)}\n{self.evidence()}"
        return found[0]

    def evidence(self) -> str:
        return self.result.evidence()


class Browsing:
    """A browser context behind one mitmdump, with one page per page origin, reused run after run."""

    def __init__(self, env: Env, proxy_url: str | None) -> None:
        self.env = env
        self.context = open_context(env, [COOKIE_HOST], proxy_url)
        self.pages: dict[str, tuple[Any, CdpRecorder]] = {}
        self.runs: dict[str, Run] = {}

    def close(self) -> None:
        self.context.close()

    def run(self, run_id: str, c: Case) -> Run:
        """Run the case's page JS under ``/s/<run_id>/`` once (later calls return the first run)."""
        if run_id not in self.runs:
            scenario = c.scenario()
            register(self.env.backend, f"/s/{run_id}", scenario.routes)
            if scenario.page not in self.pages:
                self.pages[scenario.page] = open_page(self.context, scenario.page)
            page, recorder = self.pages[scenario.page]
            self.runs[run_id] = Run(play(self.env, page, recorder, run_id, scenario, received=True))
        return self.runs[run_id]


@dataclass
class Proxies:
    plain: Browsing
    ruled: Browsing


@pytest.fixture(scope="module")
def proxies(
    env: Env, mitmdump_factory: Callable[..., Mitmdump], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxies]:
    """Contexts behind the plain mitmdump (no rules; its runs go into the corpus) and behind one started with this
    module's rule file."""
    rules = tmp_path_factory.mktemp("rules") / "rules.yaml"
    rules.write_text(rule_file_text(), encoding="utf-8")
    proxy = mitmdump_factory("--set", f"cors_rules={rules}")
    plain = Browsing(env, None)
    ruled = Browsing(Env(backend=env.backend, proxy_url=proxy.url, report=proxy.report, browser=env.browser), proxy.url)
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
    return p.plain.run(plain_run_id(c), c)


def plain_run_id(c: Case) -> str:
    return f"plain-{c.slug}"


def corpus_ids() -> list[str]:
    """The corpus entries this module records: the plain runs (no rules) of its cases."""
    return [plain_run_id(c) for c in (*UNREADY, *REPRODUCE)]


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
        where = f"{ln.get('method')} {line_path(ln)}"
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
        received = r.received or ""
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
