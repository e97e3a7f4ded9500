"""Passive security findings: which traffic raises which finding, once per server and route, and never a secret."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mitmcors import findings as fnd
from mitmcors.evaluator import Kind, PlainHeaders, Request, Response
from mitmcors.findings import CATALOG, MAX_EVIDENCE, FindingsTracker, FlowFacts, Severity, facts_of, route_of

H, M, L, INFO = Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO
SERVER = "https://api.example.test"
APP = "https://app.example.test"
_ids = itertools.count()


def flow(
    origin: str = APP,
    acao: str | None = None,
    credentials: bool = False,
    *,
    vary: Sequence[str] = ("origin",),
    kind: str = "actual",
    **kw: object,
) -> FlowFacts:
    """One cross-origin flow's facts; `acao="echo"` answers with the request's own origin. Vary: Origin by
    default, so that only the finding under test shows."""
    allow = (origin if acao == "echo" else acao,) if acao is not None else ()
    fields: dict[str, object] = {
        "flow_id": f"f{next(_ids)}",
        "server": SERVER,
        "route": "/v1/items",
        "origin": origin,
        "method": "OPTIONS" if kind == "preflight" else "GET",
        "kind": kind,
        "allow_origin": allow,
        "allow_credentials": ("true",) if credentials else (),
        "vary": tuple(vary),
    }
    fields.update(kw)
    return FlowFacts(**fields)  # type: ignore[arg-type]


def echo(origin: str, credentials: bool = False, **kw: object) -> FlowFacts:
    return flow(origin, "echo", credentials, **kw)  # type: ignore[arg-type]


def preflight(method: str = "PUT", allow_methods: str = "", headers: str = "", allow_headers: str = "") -> FlowFacts:
    return flow(
        APP,
        "echo",
        kind="preflight",
        requested_method=method,
        requested_headers=tuple(h for h in headers.split(",") if h),
        allow_methods=(allow_methods,) if allow_methods else (),
        allow_headers=(allow_headers,) if allow_headers else (),
    )


def seen(*flows: FlowFacts) -> dict[str, Severity]:
    tracker = FindingsTracker()
    for f in flows:
        tracker.observe(f)
    return {f.id: f.severity for f in tracker.findings()}


SITES = ("https://a.one.test", "https://b.two.test", "https://c.three.test")

CASES = [
    # -- origin reflected --
    pytest.param([echo(APP)], {}, id="reflected: a listed origin echoed once is not reflection"),
    pytest.param([echo(APP)] * 5, {}, id="reflected: the same origin echoed many times is not reflection"),
    pytest.param(
        [echo(f"https://{s}.example.test") for s in ("app", "admin", "www")],
        {},
        id="reflected: three subdomains of one site fit an allow-list",
    ),
    pytest.param(
        [echo(o) for o in ("http://localhost:3000", "http://localhost:5173", "http://127.0.0.1:8080")],
        {},
        id="reflected: loopback dev origins count as one site",
    ),
    pytest.param([echo(o) for o in SITES[:2]], {}, id="reflected: two sites are below the threshold"),
    pytest.param([echo(o) for o in SITES], {"origin-reflected": L}, id="reflected: three sites echoed"),
    pytest.param(
        [echo(o, credentials=True) for o in SITES],
        {"origin-reflected-with-credentials": H},
        id="reflected: three sites echoed with credentials",
    ),
    pytest.param([echo("https://evil.test")], {"origin-reflected": L}, id="reflected: an attacker-named origin once"),
    pytest.param(
        [echo("https://x.invalid", credentials=True)],
        {"origin-reflected-with-credentials": H},
        id="reflected: a .invalid origin echoed with credentials",
    ),
    pytest.param([echo("https://devil.example")], {}, id="reflected: a word that merely contains a canary"),
    pytest.param([flow(APP, "https://other.test")], {}, id="reflected: a fixed other origin is not an echo"),
    pytest.param(
        [echo(o, credentials=True) for o in ("null", "null", "null")],
        {"null-origin-trusted-with-credentials": H},
        id="reflected: null is its own finding, never reflection",
    ),
    # -- null --
    pytest.param([flow("null", "null")], {"null-origin-trusted": L}, id="null: allowed"),
    pytest.param(
        [flow("null", "null", True)], {"null-origin-trusted-with-credentials": H}, id="null: with credentials"
    ),
    pytest.param([flow(APP, "null")], {"null-origin-trusted": L}, id="null: a static null answer to a real origin"),
    pytest.param([flow("null", "*")], {}, id="null: '*' for a null origin is not null trusted"),
    pytest.param([flow("null", None)], {}, id="null: no Allow-Origin"),
    pytest.param([flow("null", None, allow_origin=("null", "null"))], {}, id="null: two Allow-Origin lines fail"),
    # -- http origin trusted by an https API --
    pytest.param([echo("http://app.example.test")], {"http-origin-trusted": L}, id="http: trusted"),
    pytest.param([echo("http://app.example.test", True)], {"http-origin-trusted": M}, id="http: with credentials"),
    pytest.param([echo("http://localhost:3000", True)], {}, id="http: loopback is not reported"),
    pytest.param([echo("http://app.example.test", server="http://api.example.test")], {}, id="http: an http API"),
    pytest.param([echo("https://app.example.test")], {}, id="http: an https origin"),
    # -- Vary --
    pytest.param(
        [echo(APP, vary=()), echo("https://admin.example.test", vary=())],
        {"allow-origin-without-vary": L},
        id="vary: two origins echoed without Vary",
    ),
    pytest.param(
        [echo(APP, vary=()), echo("https://admin.example.test")],
        {"allow-origin-without-vary": L},
        id="vary: one of two echoes without Vary",
    ),
    pytest.param([echo(APP), echo("https://admin.example.test")], {}, id="vary: two origins echoed with Vary: Origin"),
    pytest.param([echo(APP, vary=())] * 3, {}, id="vary: one origin without Vary may be a static answer"),
    pytest.param(
        [echo(APP, vary=("*",)), echo("https://admin.example.test", vary=("*",))], {}, id="vary: Vary: * covers it"
    ),
    pytest.param(
        [echo(o, vary=(), cache_control=("no-store",)) for o in (APP, "https://admin.example.test")],
        {},
        id="vary: never stored",
    ),
    # -- '*' on private-looking responses --
    pytest.param([flow(APP, "*", set_cookie=True)], {"wildcard-on-private-response": L}, id="private: Set-Cookie"),
    pytest.param(
        [flow(APP, "*", authorization=True)], {"wildcard-on-private-response": L}, id="private: Authorization"
    ),
    pytest.param(
        [flow(APP, "*", cache_control=("private", "max-age"))],
        {"wildcard-on-private-response": L},
        id="private: Cache-Control private",
    ),
    pytest.param(
        [flow(APP, "*", kind="preflight", requested_headers=("authorization",))],
        {"wildcard-on-private-response": L},
        id="private: a preflight announcing Authorization",
    ),
    pytest.param([flow(APP, "*")], {}, id="private: a public '*' response"),
    pytest.param([flow(APP, "*", cache_control=("public", "max-age"))], {}, id="private: Cache-Control public"),
    pytest.param([echo(APP, set_cookie=True)], {}, id="private: a listed origin with Set-Cookie"),
    # -- Allow-Credentials on '*' --
    pytest.param([flow(APP, "*", True)], {"wildcard-with-credentials": INFO}, id="wildcard+credentials: broken"),
    pytest.param([flow(APP, "*", allow_credentials=("True",))], {}, id="wildcard+credentials: not 'true'"),
    pytest.param([echo(APP, True)], {}, id="wildcard+credentials: an echoed listed origin with credentials"),
    # -- Allow-Methods / Allow-Headers echoed --
    pytest.param(
        [preflight("PUT", "PUT"), preflight("DELETE", "DELETE")],
        {"methods-reflected": L},
        id="methods: two methods each echoed",
    ),
    pytest.param(
        [preflight("PUT", "PUT, DELETE"), preflight("DELETE", "PUT, DELETE")], {}, id="methods: a static list"
    ),
    pytest.param([preflight("PUT", "PUT")] * 3, {}, id="methods: one method echoed is a list of one"),
    pytest.param([preflight("PUT", "put"), preflight("DELETE", "delete")], {}, id="methods: case differs"),
    pytest.param(
        [preflight(headers="x-a", allow_headers="x-a"), preflight(headers="x-b", allow_headers="X-B")],
        {"headers-reflected": L},
        id="headers: two header sets each echoed",
    ),
    pytest.param(
        [preflight(headers="x-a", allow_headers="x-a, x-b"), preflight(headers="x-b", allow_headers="x-a, x-b")],
        {},
        id="headers: a static list",
    ),
    pytest.param([preflight(headers="x-a", allow_headers="x-a")] * 2, {}, id="headers: one set echoed"),
    # -- Max-Age --
    pytest.param([flow(APP, "echo", max_age="100000")], {"max-age-above-browser-caps": INFO}, id="max-age: above all"),
    pytest.param([flow(APP, "echo", max_age="86400")], {}, id="max-age: Firefox's cap"),
    pytest.param([flow(APP, "echo", max_age="7200")], {}, id="max-age: Chromium's cap"),
    pytest.param([flow(APP, "echo", max_age="9" * 30)], {"max-age-above-browser-caps": INFO}, id="max-age: huge"),
    pytest.param([flow(APP, "echo", max_age="1e9")], {}, id="max-age: not a number"),
    # -- what is not looked at --
    pytest.param([flow("null", "null", True, kind=Kind.SAME_ORIGIN.value)], {}, id="ignored: same-origin"),
    pytest.param([flow("null", "null", True, kind=Kind.NOT_CORS.value)], {}, id="ignored: not CORS"),
]


@pytest.mark.parametrize(("flows", "expected"), CASES)
def test_findings_table(flows: list[FlowFacts], expected: dict[str, Severity]) -> None:
    """Each row: the flows of one server and route, and the findings (id → severity) they raise."""
    assert seen(*flows) == expected


# -- once per server and route, with evidence -------------------------------------------------------------------


def test_one_finding_per_route_with_capped_evidence() -> None:
    """Many flows showing the same thing make one finding: the first flow ids as evidence, all of them counted."""
    tracker = FindingsTracker()
    ids = [f"n{i}" for i in range(MAX_EVIDENCE + 7)]
    for fid in ids:
        tracker.observe(flow("null", "null", flow_id=fid))
    (found,) = tracker.findings()
    assert (found.id, found.evidence, found.count) == ("null-origin-trusted", tuple(ids[:MAX_EVIDENCE]), len(ids))


def test_each_route_has_its_own_finding() -> None:
    """Two routes of one server: two findings, counted per route in the summary."""
    tracker = FindingsTracker()
    tracker.observe(flow("null", "null", route="/a"))
    tracker.observe(flow("null", "null", route="/b"))
    assert sorted(f.route for f in tracker.findings()) == ["/a", "/b"]
    assert tracker.counts() == {"null-origin-trusted": 2}


def test_ids_in_paths_fold_into_one_route() -> None:
    """`/users/1` and `/users/2` are one route: one finding with both flows."""
    tracker = FindingsTracker()
    tracker.observe(flow("null", "null", route=route_of("/users/1"), flow_id="a"))
    tracker.observe(flow("null", "null", route=route_of("/users/2?x=1"), flow_id="b"))
    assert [(f.route, f.evidence) for f in tracker.findings()] == [("/users/{id}", ("a", "b"))]


def test_observe_returns_only_what_the_flow_shows() -> None:
    """A flow that shows nothing gets no findings, even on a route that has some."""
    tracker = FindingsTracker()
    assert [f.id for f in tracker.observe(flow("null", "null"))] == ["null-origin-trusted"]
    assert tracker.observe(flow(APP, "*")) == ()


def test_reflection_evidence_includes_the_echoes_before_it_was_sure() -> None:
    """The third site makes reflection sure: the finding lists all three echoes; the first two flows got nothing."""
    tracker = FindingsTracker()
    returned = [tracker.observe(echo(o, flow_id=f"e{i}")) for i, o in enumerate(SITES)]
    assert [[f.id for f in r] for r in returned] == [[], [], ["origin-reflected"]]
    assert returned[2][0].evidence == ("e0", "e1", "e2")
    assert returned[2][0].count == 3


def test_reflection_proven_on_one_route_reaches_the_others() -> None:
    """Reflection is a server's behaviour: an echo on another route becomes evidence there too."""
    tracker = FindingsTracker()
    tracker.observe(echo(SITES[0], route="/other", flow_id="o1"))
    for i, o in enumerate(SITES[1:]):
        tracker.observe(echo(o, flow_id=f"e{i}"))
    tracker.observe(echo("https://d.four.test", flow_id="e9"))
    other = tracker.findings(SERVER, "/other")
    assert [(f.id, f.evidence) for f in other] == [("origin-reflected", ("o1",))]


def test_severity_rises_with_the_worst_flow() -> None:
    """An http origin trusted without, then with credentials: one finding, medium."""
    assert seen(echo("http://app.example.test"), echo("http://app.example.test", True)) == {"http-origin-trusted": M}


def test_findings_filter_by_server_and_route() -> None:
    tracker = FindingsTracker()
    tracker.observe(flow("null", "null", server="https://a.test"))
    tracker.observe(flow("null", "null", server="https://b.test", route="/x"))
    assert [f.server for f in tracker.findings("https://b.test")] == ["https://b.test"]
    assert tracker.findings("https://b.test", "/nope") == ()


def test_findings_sorted_most_severe_first() -> None:
    tracker = FindingsTracker()
    tracker.observe(flow(APP, "*", True, max_age="999999"))
    tracker.observe(flow("null", "null", True))
    assert [f.severity for f in tracker.findings()] == [H, INFO, INFO]


def test_trusted_origins_are_the_echoed_ones() -> None:
    """The probe's bases: origins the server allowed by name, not '*' or null."""
    tracker = FindingsTracker()
    for f in (echo(APP), flow("https://x.test", "*"), flow("null", "null"), echo("https://admin.example.test")):
        tracker.observe(f)
    assert tracker.trusted_origins(SERVER) == (APP, "https://admin.example.test")
    assert tracker.trusted_origins("https://unknown.test") == ()


def test_memory_is_bounded() -> None:
    """Routes beyond the limit are forgotten, oldest first."""
    tracker = FindingsTracker(max_routes=3, max_servers=2)
    for i in range(50):
        tracker.observe(flow("null", "null", route=f"/r{i}", server=f"https://s{i % 5}.test"))
    assert len(tracker) == 3
    assert len(tracker.findings()) == 3


def test_a_flow_is_cheap_when_nothing_is_wrong() -> None:
    """The common case (a listed origin, Vary: Origin) stores no finding and returns nothing."""
    tracker = FindingsTracker()
    for _ in range(1000):
        assert tracker.observe(echo(APP)) == ()
    assert tracker.findings() == ()


# -- the finding record -----------------------------------------------------------------------------------------


def test_annotation_has_the_fixed_keys() -> None:
    """`metadata["cors"]["findings"]` entries: exactly {id, severity, title, evidence, fix}."""
    (found,) = FindingsTracker().observe(flow("null", "null", flow_id="f1"))
    assert set(found.annotation()) == {"id", "severity", "title", "evidence", "fix"}
    assert found.annotation()["evidence"] == ["f1"]
    assert set(found.as_dict()) == {*found.annotation(), "why", "server", "route", "count", "details"}
    json.dumps(found.as_dict(), allow_nan=False)


@pytest.mark.parametrize("id", sorted(CATALOG))
def test_catalog_entry_is_complete(id: str) -> None:
    """Every finding id is a stable slug with a title, a why and a fix."""
    spec = CATALOG[id]
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", id)
    assert spec.id == id
    assert spec.title and spec.why and spec.fix


def test_unknown_ids_are_refused() -> None:
    with pytest.raises(KeyError):
        fnd.make_finding("no-such-finding", Severity.LOW, ())


def test_render_text_lists_every_finding() -> None:
    tracker = FindingsTracker()
    tracker.observe(flow("null", "null", True, flow_id="n1"))
    tracker.observe(flow(APP, "*", True, flow_id="w1"))
    text = fnd.render_text(tracker.findings())
    assert text.index("null-origin-trusted-with-credentials") < text.index("wildcard-with-credentials")
    assert "n1" in text and "w1" in text
    assert fnd.render_text(()) == "no CORS findings"


# -- reading the facts off a flow --------------------------------------------------------------------------------


def test_facts_of_reads_the_flow() -> None:
    request = Request(
        "OPTIONS",
        "https",
        "api.example.test",
        443,
        "/v1/items/42?page=2",
        PlainHeaders(
            [
                ("Origin", APP),
                ("Cookie", "sid=1"),
                ("Access-Control-Request-Method", "PUT"),
                ("Access-Control-Request-Headers", "X-A,Authorization"),
            ]
        ),
    )
    response = Response(
        204,
        PlainHeaders(
            [
                ("Access-Control-Allow-Origin", APP),
                ("Access-Control-Allow-Credentials", "true"),
                ("Vary", "Accept, Origin"),
                ("Cache-Control", "private, max-age=60"),
                ("Set-Cookie", "a=b"),
                ("Access-Control-Max-Age", "600"),
            ]
        ),
    )
    f = facts_of("f1", request, response, Kind.PREFLIGHT)
    assert f == FlowFacts(
        flow_id="f1",
        server=SERVER,
        route="/v1/items/{id}",
        origin=APP,
        method="OPTIONS",
        kind="preflight",
        cookie=True,
        authorization=False,
        requested_method="PUT",
        requested_headers=("x-a", "authorization"),
        status=204,
        allow_origin=(APP,),
        allow_credentials=("true",),
        max_age="600",
        vary=("accept", "origin"),
        cache_control=("private", "max-age"),
        set_cookie=True,
    )


@pytest.mark.parametrize(
    ("path", "route"),
    [
        pytest.param("/v1/items?page=2#top", "/v1/items", id="query and fragment"),
        pytest.param("/users/42/orders", "/users/{id}/orders", id="number"),
        pytest.param("/o/123e4567-e89b-12d3-a456-426614174000", "/o/{id}", id="uuid"),
        pytest.param("/blob/deadbeefcafe1234", "/blob/{id}", id="hex"),
        pytest.param("/reset/aB3dE5gH7jK9mN1pQ", "/reset/{id}", id="opaque token"),
        pytest.param("/a;jsessionid=abc/b", "/a;jsessionid=[redacted]/b", id="session path parameter"),
        pytest.param("/api/v2/users", "/api/v2/users", id="words stay"),
        pytest.param("", "/", id="empty"),
    ],
)
def test_route_of(path: str, route: str) -> None:
    assert route_of(path) == route


def test_route_is_bounded() -> None:
    assert len(route_of("/" + "a/" * 500)) <= 200


@pytest.mark.parametrize(
    ("host", "site"),
    [
        ("app.example.co.uk", "example.co.uk"),
        ("a.b.trusted.example", "trusted.example"),
        ("foo.github.io", "foo.github.io"),
        ("app.localhost", "localhost"),
        ("127.0.0.2", "localhost"),
        ("[::1]", "localhost"),
        ("10.0.0.1", "10.0.0.1"),
        ("com", "com"),
    ],
)
def test_site_of(host: str, site: str) -> None:
    assert fnd.site_of(host) == site


# -- secrets ----------------------------------------------------------------------------------------------------

MARK = "s3cr3tv4lu3"
HOSTILE_PATHS = [
    f"/v1/items?access_token={MARK}&page=2",
    f"/v1/items;jsessionid={MARK}",
    f"/v1/items#id_token={MARK}",
    f"/reset/{MARK}{MARK}",
    f"/cb?SAMLResponse={MARK}&code={MARK}",
]
HOSTILE_ORIGINS = [
    f"https://{MARK}@evil.test",
    f"https://user:{MARK}@evil.test",
    f"https://evil.test/?token={MARK}",
    f"null{MARK}",
    f"https://a.test, https://{MARK}.test?sig={MARK}",
]


def hostile_flows(path: str, origin: str) -> list[tuple[Request, Response, Kind]]:
    """Every finding's trigger, with credentials and marked values wherever the wire could carry them."""
    secret_request = [
        ("Origin", origin),
        ("Cookie", f"sid={MARK}"),
        ("Authorization", f"Bearer {MARK}"),
        ("X-Api-Key", MARK),
    ]
    answers: list[list[tuple[str, str]]] = [
        [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true")],
        [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Credentials", "true")],
        [("Access-Control-Allow-Origin", "null"), ("Access-Control-Allow-Credentials", "true")],
        [("Access-Control-Allow-Origin", "*"), ("Set-Cookie", f"sid={MARK}"), ("Cache-Control", "private")],
        [("Access-Control-Allow-Origin", origin), ("Access-Control-Max-Age", "99999999"), ("ETag", MARK)],
        [("Location", f"https://x.test/?token={MARK}"), ("WWW-Authenticate", f"Bearer realm={MARK}")],
    ]
    out = []
    for origin_value in (origin, *SITES, "https://evil.test", "http://app.example.test"):
        request = Request("GET", "https", "api.example.test", 443, path, PlainHeaders(secret_request))
        request = request._replace(headers=PlainHeaders([("Origin", origin_value), *secret_request[1:]]))
        for answer in answers:
            answer = [(n, origin_value if v == origin else v) for n, v in answer]
            out.append((request, Response(200, PlainHeaders(answer)), Kind.ACTUAL))
    preflight_headers = [
        ("Origin", origin),
        ("Access-Control-Request-Method", "PUT"),
        ("Access-Control-Request-Headers", "authorization,x-api-key"),
    ]
    for method in ("PUT", "DELETE"):
        headers = [(n, method if n == "Access-Control-Request-Method" else v) for n, v in preflight_headers]
        request = Request("OPTIONS", "https", "api.example.test", 443, path, PlainHeaders(headers))
        answer = [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Methods", method),
            ("Access-Control-Allow-Headers", "authorization,x-api-key"),
        ]
        out.append((request, Response(204, PlainHeaders(answer)), Kind.PREFLIGHT))
    return out


@pytest.mark.parametrize("origin", HOSTILE_ORIGINS)
@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_no_secret_in_any_finding(path: str, origin: str) -> None:
    """Cookies, tokens, authorization and secret URL parameters never reach a finding, its text or its JSON."""
    tracker = FindingsTracker()
    returned: list[fnd.Finding] = []
    for i, (request, response, kind) in enumerate(hostile_flows(path, origin)):
        returned.extend(tracker.observe(facts_of(f"f{i}", request, response, kind)))
    everything = [*tracker.findings(), *returned]
    assert len({f.id for f in everything}) >= 6  # the hostile traffic does raise findings
    dumped = json.dumps([f.as_dict() for f in everything]) + fnd.render_text(everything)
    assert MARK not in dumped


def test_facts_hold_no_credential_values() -> None:
    """The input record keeps only whether Cookie / Authorization / Set-Cookie were present."""
    request, response, kind = hostile_flows(HOSTILE_PATHS[0], HOSTILE_ORIGINS[0])[3]
    facts = facts_of("f", request, response, kind)
    assert MARK not in repr(facts._replace(origin="", route=""))
    assert (facts.cookie, facts.authorization, facts.set_cookie) == (True, True, True)


@pytest.mark.parametrize(
    ("kind", "request_lines", "response_lines"),
    [
        pytest.param(Kind.ACTUAL, [("Cookie", "s=1")], [("Access-Control-Allow-Credentials", "true")], id="ACAC only"),
        pytest.param(
            Kind.ACTUAL, [], [("Vary", "Origin"), ("Set-Cookie", "a=1"), ("Cache-Control", "private")], id="no CORS"
        ),
        pytest.param(
            Kind.PREFLIGHT,
            [("Access-Control-Request-Method", "PUT"), ("Access-Control-Request-Headers", "x-a")],
            [("Access-Control-Expose-Headers", "x-a")],
            id="preflight without allow lists",
        ),
        pytest.param(
            Kind.ACTUAL,
            [("Cookie", "s=1")],
            [("Access-Control-Allow-Origin", "*"), ("Vary", "Origin"), ("Cache-Control", "public, max-age=60")],
            id="a public API's plain wildcard",
        ),
        pytest.param(
            Kind.ACTUAL, [], [("Access-Control-Allow-Origin", "https://other.example")], id="another origin allowed"
        ),
        pytest.param(
            Kind.ACTUAL,
            [],
            [
                ("Access-Control-Allow-Origin", "https://a.example"),
                ("Access-Control-Allow-Origin", "https://a.example"),
            ],
            id="two Allow-Origin lines",
        ),
    ],
)
def test_a_response_without_evidence_headers_is_skipped_and_shows_nothing(
    kind: Kind, request_lines: list[tuple[str, str]], response_lines: list[tuple[str, str]]
) -> None:
    """The addon looks only at responses that carry a header some finding is about (`may_show_findings`); the
    others, judged anyway, show no finding, however often they are seen."""
    method = "OPTIONS" if kind is Kind.PREFLIGHT else "GET"
    request = Request(
        method,
        "https",
        "api.example.com",
        443,
        "/v1/x",
        PlainHeaders([("Origin", "https://a.example"), *request_lines]),
    )
    response = Response(200, PlainHeaders(response_lines))
    assert not fnd.may_show_findings(request, response.headers, kind.value)
    tracker = FindingsTracker()
    for i in range(5):
        assert tracker.observe(facts_of(f"f{i}", request, response, kind.value)) == ()
    assert tracker.findings() == ()


_ORIGIN = "https://a.example"
_OPTIONAL_LINES = st.lists(
    st.sampled_from(
        [
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Origin", " * "),
            ("Access-Control-Allow-Origin", _ORIGIN),
            ("Access-Control-Allow-Origin", "null"),
            ("Access-Control-Allow-Origin", "https://other.example"),
            ("Access-Control-Allow-Origin", "https://b.example"),
            ("Access-Control-Allow-Credentials", "true"),
            ("Access-Control-Allow-Methods", "PUT"),
            ("Access-Control-Allow-Headers", "x-a"),
            ("Access-Control-Max-Age", "600"),
            ("Access-Control-Max-Age", "100000"),
            ("Set-Cookie", "s=1"),
            ("Cache-Control", "private"),
            ("Cache-Control", "no-store"),
            ("Vary", "Origin"),
        ]
    ),
    max_size=5,
)


_ECHO = [("Access-Control-Allow-Origin", _ORIGIN)]
_ECHO_B = ("https://b.example", [("Access-Control-Allow-Origin", "https://b.example")])
_WILDCARD_WITH_CREDENTIALS = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Credentials", "true")]


@settings(max_examples=400, deadline=None)
@example(kind=Kind.ACTUAL, authorization=False, cookie=False, response_lines=_ECHO, seen_before=[_ECHO_B])
@example(kind=Kind.ACTUAL, authorization=False, cookie=True, response_lines=_WILDCARD_WITH_CREDENTIALS, seen_before=[])
@example(
    kind=Kind.ACTUAL,
    authorization=True,
    cookie=False,
    response_lines=[("Access-Control-Allow-Origin", "*")],
    seen_before=[],
)
@given(
    kind=st.sampled_from([Kind.ACTUAL, Kind.PREFLIGHT]),
    authorization=st.booleans(),
    cookie=st.booleans(),
    response_lines=_OPTIONAL_LINES,
    seen_before=st.lists(st.tuples(st.sampled_from([_ORIGIN, "https://b.example"]), _OPTIONAL_LINES), max_size=3),
)
def test_a_flow_the_gate_skips_would_show_no_finding(
    kind: Kind,
    authorization: bool,
    cookie: bool,
    response_lines: list[tuple[str, str]],
    seen_before: list[tuple[str, list[tuple[str, str]]]],
) -> None:
    """`may_show_findings` is exact in one direction: a flow it skips, looked at anyway (after other flows to the
    same route), is evidence of no finding and changes none."""
    method = "OPTIONS" if kind is Kind.PREFLIGHT else "GET"
    lines = [("Access-Control-Request-Method", "PUT"), ("Access-Control-Request-Headers", "x-a")] * (
        kind is Kind.PREFLIGHT
    )
    lines += [("Authorization", "Bearer t")] * authorization + [("Cookie", "s=1")] * cookie

    def request_from(origin: str) -> Request:
        return Request(method, "https", "api.example.com", 443, "/v1/x", PlainHeaders([("Origin", origin), *lines]))

    request = request_from(_ORIGIN)
    response = Response(200, PlainHeaders(response_lines))
    tracker = FindingsTracker()
    for i, (origin, earlier) in enumerate(seen_before):
        tracker.observe(facts_of(f"e{i}", request_from(origin), Response(200, PlainHeaders(earlier)), kind.value))
    if fnd.may_show_findings(request, response.headers, kind.value):
        return
    before = tracker.findings()
    assert tracker.observe(facts_of("f", request, response, kind.value)) == ()
    assert tracker.findings() == before
