"""The complete fix: one answer that names every change a blocked flow needs, and makes it pass at once."""

from __future__ import annotations

import pytest

from mitmcors.evaluator import PlainHeaders, Request, Response, classify, evaluate, failed
from mitmcors.fixes import CompleteFix, ResponseFix, complete_fix, rule_fix
from mitmcors.reasons import Reason

APP = "http://app.localhost:5173"
ACAO, ACAC = "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials"
ACAM, ACAH = "Access-Control-Allow-Methods", "Access-Control-Allow-Headers"


def preflight(method: str = "PUT", headers: str | None = "x-a,x-b", origin: str = APP) -> Request:
    lines = [("Origin", origin), ("Sec-Fetch-Mode", "cors"), ("Access-Control-Request-Method", method)]
    if headers:
        lines.append(("Access-Control-Request-Headers", headers))
    return Request("OPTIONS", "http", "api.localhost", 8000, "/v1/x", PlainHeaders(lines))


def actual(method: str = "GET", *extra: tuple[str, str], origin: str = APP) -> Request:
    lines = [("Origin", origin), ("Sec-Fetch-Mode", "cors"), *extra]
    return Request(method, "http", "api.localhost", 8000, "/v1/x", PlainHeaders(lines))


def response(status: int = 200, *lines: tuple[str, str]) -> Response:
    return Response(status, PlainHeaders(lines))


def fix_of(req: Request, resp: Response, include: bool = False) -> CompleteFix | None:
    return complete_fix(req, resp, evaluate(req, resp), include)


def apply(resp: Response, fix: ResponseFix) -> Response:
    names = {n.lower() for n, _ in fix.set} | {n.lower() for n in fix.remove}
    kept = [(n, v) for n, v in resp.headers.items() if n.lower() not in names]
    return Response(fix.status or resp.status, PlainHeaders([*kept, *fix.set]))


PREFLIGHTS = [
    pytest.param(preflight(), response(404), False, id="404 without any CORS header"),
    pytest.param(preflight(), response(204, (ACAO, APP), (ACAM, "GET")), False, id="method and both headers missing"),
    pytest.param(preflight(), response(204, (ACAO, APP), (ACAM, "PUT"), (ACAH, "x-b")), False, id="one header missing"),
    pytest.param(preflight("patch"), response(204, (ACAO, APP), (ACAM, "PATCH")), False, id="method case differs"),
    pytest.param(preflight(), response(301, ("Location", "/elsewhere")), False, id="redirected preflight"),
    pytest.param(preflight(), response(204, (ACAO, "*"), (ACAM, "*"), (ACAH, "*")), True, id="wildcards, credentials"),
    pytest.param(preflight(), response(204, (ACAO, APP), (ACAM, "PUT, x y")), False, id="unparsable Allow-Methods"),
]


@pytest.mark.parametrize(("req", "resp", "include"), PREFLIGHTS)
def test_preflight_fix_passes_on_the_first_try(req: Request, resp: Response, include: bool) -> None:
    """Applying exactly the preflight part of the fix makes the preflight pass, in the credentials mode asked."""
    fix = fix_of(req, resp, include)
    assert fix is not None and fix.preflight is not None
    v = evaluate(req, apply(resp, fix.preflight))
    outcome = v.if_credentials if include and v.if_credentials is not None else v.outcome
    assert outcome.allowed, outcome.message


def test_one_fix_names_every_missing_piece() -> None:
    """A 404 preflight for PUT with two custom headers: status, Allow-Origin, method and both headers at once."""
    fix = fix_of(preflight(), response(404))
    assert fix is not None and fix.preflight is not None
    changes = dict(fix.preflight.set)
    assert fix.preflight.status == 204
    assert changes[ACAO] == APP
    assert changes[ACAM] == "PUT"
    assert changes[ACAH] == "x-a, x-b"
    assert changes["Vary"] == "Origin"


def test_preflight_fix_includes_the_requests_own_response() -> None:
    """The announced request is judged too: its response needs the same Allow-Origin (and Credentials)."""
    fix = fix_of(preflight(), response(404), include=True)
    assert fix is not None and fix.response is not None
    assert dict(fix.response.set) == {ACAO: APP, ACAC: "true"}


def test_fix_keeps_what_already_works() -> None:
    """Only what fails is changed: a correct Allow-Origin is not repeated, listed names are kept."""
    fix = fix_of(preflight(), response(204, (ACAO, APP), (ACAM, "GET"), (ACAH, "x-b")))
    assert fix is not None and fix.preflight is not None
    changes = dict(fix.preflight.set)
    assert ACAO not in changes
    assert (changes[ACAM], changes[ACAH]) == ("GET, PUT", "x-b, x-a")


@pytest.mark.parametrize(
    ("req", "resp", "include", "expected"),
    [
        pytest.param(actual(), response(200), False, {ACAO: APP, "Vary": "Origin"}, id="no Allow-Origin"),
        pytest.param(
            actual("GET", ("Cookie", "sid=1")),
            response(200, (ACAO, "*")),
            True,
            {ACAO: APP, "Vary": "Origin", ACAC: "true"},
            id="wildcard with credentials",
        ),
        pytest.param(
            actual(), response(200, (ACAO, APP), (ACAO, APP), ("Vary", "Origin")), False, {ACAO: APP}, id="two lines"
        ),
        pytest.param(
            actual("GET", origin="null"), response(200, (ACAO, APP)), False, {ACAO: "*"}, id="null origin: '*'"
        ),
    ],
)
def test_actual_response_fix(req: Request, resp: Response, include: bool, expected: dict[str, str]) -> None:
    """A blocked response's fix sets exactly what the CORS check needs, and then it passes."""
    fix = fix_of(req, resp, include)
    assert fix is not None and fix.response is not None and fix.preflight is None
    assert dict(fix.response.set) == expected
    assert evaluate(req, apply(resp, fix.response)).outcome.allowed


@pytest.mark.parametrize(
    ("req", "resp"),
    [
        pytest.param(actual(), response(200, (ACAO, "*")), id="allowed"),
        pytest.param(actual(), response(200, (ACAO, "*"), ("X-A", "\x00")), id="unparsable response"),
    ],
)
def test_no_fix_where_headers_are_not_the_problem(req: Request, resp: Response) -> None:
    """An allowed flow, or one the browsers cannot even parse, gets no header fix."""
    assert fix_of(req, resp) is None


def test_network_error_has_no_header_fix() -> None:
    """A request whose response broke off cannot be fixed with CORS headers."""
    req = actual()
    v = failed(req, classify(req), "Server disconnected", proxy_status=None, abandoned=False)
    assert v.blocked
    assert complete_fix(req, response(200), v, include=False) is None


@pytest.mark.parametrize(
    ("location", "note"),
    [
        pytest.param("http://u:p@b.localhost/x", "user:password", id="credentials in the Location"),
        pytest.param("ftp://b.localhost/x", "http(s)", id="a non-HTTP scheme"),
    ],
)
def test_redirect_problems_are_notes(location: str, note: str) -> None:
    """What headers cannot fix (where a redirect points) is said in a note."""
    fix = fix_of(actual(), response(302, (ACAO, APP), ("Location", location)))
    assert fix is not None
    assert any(note in n for n in fix.notes)


@pytest.mark.parametrize(
    ("resp", "key"),
    [
        pytest.param(response(200), "allow_origins", id="no Allow-Origin: allow_origins"),
        pytest.param(response(200, (ACAO, "http://other.test")), "allow_origins", id="mismatch: allow_origins"),
    ],
)
def test_rule_failure_is_fixed_in_the_rule(resp: Response, key: str) -> None:
    """When a rule produced the failure, the fix names the rule and its key, not a response header."""
    fix = rule_fix("api", evaluate(actual(), resp))
    assert (fix.rule, fix.key) == ("api", key)


def test_rule_key_for_a_disallowed_method() -> None:
    """A method the rule's output does not allow points at allow_methods."""
    v = evaluate(preflight(), response(204, (ACAO, APP), (ACAM, "GET"), (ACAH, "x-a, x-b")))
    assert v.outcome.reason is Reason.MethodDisallowedByPreflightResponse
    assert rule_fix("api", v).key == "allow_methods"


def _corpus_pairs() -> list[tuple[str, Request, Response]]:
    """Every cross-origin request/response pair of the recorded Chromium corpus (tests/corpus/chromium.json)."""
    from mitmcors import state
    from tests.test_corpus import SCENARIOS, build

    pairs = []
    for name, scenario in SCENARIOS.items():
        for i, recorded in enumerate(scenario["flows"]):
            f = build(recorded)
            if f.response is None or not state.has_origin(f.request.headers):
                continue
            pairs.append((f"{name}#{i}", state.as_request(f), state.as_response(f.response)))
    return pairs


@pytest.mark.parametrize("include", [False, True], ids=["omit", "include"])
def test_judge_decides_as_evaluate_does_on_every_recorded_pair(include: bool) -> None:
    """The complete fix checks a fixed response with `judge` (the outcome alone); on every cross-origin pair the
    browsers were recorded on, it decides what `evaluate` decides for the same credentials mode."""
    from mitmcors.evaluator import Credentials, Kind, judge

    checked = 0
    for where, request, response in _corpus_pairs():
        c = classify(request)
        if c.kind not in (Kind.PREFLIGHT, Kind.ACTUAL):
            continue
        v = evaluate(request, response, c)
        if include and v.credentials is not Credentials.INCLUDE:
            expected = v.if_credentials or v.outcome
        elif not include and v.credentials is Credentials.INCLUDE:
            continue  # a cookie on the wire: the flow has no 'omit' outcome to compare
        else:
            expected = v.outcome
        got = judge(request, response, c.kind, include)
        assert (got.allowed, got.reason) == (expected.allowed, expected.reason), where
        checked += 1
    assert checked > 100
