"""cors.suggest (issue 9 point 2): the least-privilege policy for the flows seen, and its six formats.

The policy is checked with tables, one behaviour per test. Each format is then checked in its own world: the rule
file through the rule engine (`cors_edit`) and the evaluator; Starlette, flask-cors and django-cors-headers run
in-process (their test clients), Express `cors` under node and nginx as a user process on loopback, each
configured with exactly the rendered text. Every observed flow (and the request a blocked preflight announced)
must then pass as Chromium and Firefox judge it (`evaluate`), and an origin that was not observed must be refused.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from mitmproxy.test import taddons

from mitmcors.addon import CorsAddon
from mitmcors.evaluator import PlainHeaders, Request, Response, Verdict, evaluate
from mitmcors.rulefile import compile_filter
from mitmcors.rules import RuleSet, cors_edit, parse_rules
from mitmcors.suggest import (
    FORMATS,
    NOT_EXPOSED,
    Observation,
    Policy,
    observation_from_flow,
    registrable_domain,
    render,
    routes_for,
    suggest,
    suggest_flows,
)
from mitmcors.suggest_formats import NGINX_CONTENT_MARKER
from tests.harness.ports import free_port, stop_process, wait_listening
from tests.support import make_flow, run

ROOT = Path(__file__).resolve().parent.parent
SCHEMA: dict[str, Any] = json.loads((ROOT / "rules" / "schema.json").read_text())
EXPRESS_MODULES = ROOT / "tests" / "middleware" / "express" / "node_modules"

APP = "http://app.localhost:5173"
ADMIN = "http://admin.localhost:5173"
OTHER = "https://evil.example.net"  # never observed: must always be refused
SERVER: dict[str, Any] = {"scheme": "http", "host": "api.localhost", "port": 8000}


# --------------------------------------------------------------------------------------------------
# Observations as the addon records them


def pre(
    path: str,
    method: str,
    headers: Sequence[str] = (),
    *,
    origin: str = APP,
    status: int = 204,
    verdict: str = "allowed",
    fid: str = "",
    **server: Any,
) -> Observation:
    """A preflight that asked for `method` and `headers`."""
    return Observation(
        fid or f"pre {method} {path} {origin}",
        "preflight",
        "OPTIONS",
        path=path,
        origin=origin,
        requested_method=method,
        requested_headers=tuple(headers),
        verdict=verdict,
        status=status,
        **{**SERVER, **server},
    )


def act(
    path: str,
    method: str = "GET",
    headers: Sequence[str] = (),
    *,
    origin: str = APP,
    status: int | None = 200,
    cookie: bool = False,
    response: Sequence[str] = (),
    after: str | None = None,
    verdict: str = "allowed",
    **server: Any,
) -> Observation:
    """A cross-origin request (after the preflight `after`, when given), and its response's header names."""
    return Observation(
        f"act {method} {path} {origin}",
        "actual",
        method,
        path=path,
        origin=origin,
        unsafe_request_headers=tuple(headers),
        credentials="include" if cookie else "unknown",
        verdict=verdict,
        status=status,
        response_header_names=("Date", "Server", "Content-Type", *response),
        preflight_id=after,
        **{**SERVER, **server},
    )


def preflighted(path: str, method: str, headers: Sequence[str] = (), **kw: Any) -> list[Observation]:
    """A preflight and the request it announced."""
    p = pre(path, method, headers, origin=kw.get("origin", APP))
    return [p, act(path, method, headers, after=p.flow_id, **kw)]


# Scenarios every format is checked against.
SCENARIOS: dict[str, list[Observation]] = {
    "one method": preflighted("/api/items", "PUT", ["content-type"]),
    "many methods": [
        *preflighted("/api/items", "PUT", ["content-type"]),
        *preflighted("/api/items/1", "DELETE"),
        *preflighted("/api/items/2", "PATCH", ["content-type"]),
        act("/api/items", "GET", response=["X-Total-Count"]),
        act("/api/items", "POST"),
    ],
    "credentials": [
        *preflighted("/api/cart", "PUT", ["content-type", "x-csrf-token"], cookie=True),
        act("/api/cart", cookie=True, response=["X-Total-Count", "Set-Cookie", "ETag"]),
    ],
    "wildcard subdomains": [
        act("/api/items", origin="https://a.shop.example.test"),
        act("/api/items", origin="https://b.shop.example.test"),
        *preflighted("/api/items", "DELETE", origin="https://c.example.test"),
        act("/api/items", origin=APP),
    ],
    "blocked preflight": [
        pre("/api/orders", "PUT", ["authorization", "content-type", "x-request-id"], status=404, verdict="blocked"),
        act("/api/orders", response=["X-Request-Id"], verdict="blocked"),
    ],
    "errors": [
        act("/api/missing", status=404, response=["X-Request-Id"], verdict="blocked"),
        act("/api/broken", status=500, verdict="blocked"),
        *preflighted("/api/items", "PUT", ["x-custom"], status=201, response=["Location"]),
    ],
    "null origin": [
        act("/api/items"),
        act("/api/items", origin="null"),
        *preflighted("/api/items", "PUT", ["x-custom"], origin="null"),
    ],
    "routes": [
        *preflighted("/api/users", "PUT", ["content-type"]),
        act("/api/groups"),
        *preflighted("/auth/login", "POST", ["content-type"], cookie=True),
        act("/health"),
    ],
}


def policy_of(name: str, **options: Any) -> Policy:
    return suggest(SCENARIOS[name], **options)


def only_group(observations: Sequence[Observation], **options: Any) -> Any:
    policy = suggest(observations, **options)
    assert len(policy.groups) == 1, [g.routes for g in policy.groups]
    return policy.groups[0]


# --------------------------------------------------------------------------------------------------
# The policy, table by table


@pytest.mark.parametrize(
    ("observations", "methods", "seen"),
    [
        pytest.param(preflighted("/a", "PUT"), ("PUT",), ("PUT",), id="one method"),
        pytest.param(
            [*preflighted("/a", "PUT"), *preflighted("/a", "DELETE"), act("/a", "GET"), act("/a", "POST")],
            ("DELETE", "PUT"),
            ("DELETE", "GET", "POST", "PUT"),
            id="many methods, safelisted ones not needed",
        ),
        pytest.param([act("/a"), act("/a", "HEAD")], (), ("GET", "HEAD"), id="only safelisted methods"),
        pytest.param(
            preflighted("/a", "POST", ["content-type"]), (), ("POST",), id="a preflighted POST needs no method"
        ),
        pytest.param(preflighted("/a", "patch"), ("patch",), ("patch",), id="lowercase method kept as sent"),
        pytest.param(
            [pre("/a", "PUT", status=404, verdict="blocked")], ("PUT",), ("PUT",), id="method of a blocked preflight"
        ),
    ],
)
def test_methods_are_the_ones_sent(observations: list[Observation], methods: tuple[str, ...], seen: tuple[str, ...]):
    g = only_group(observations)
    assert (g.methods, g.methods_seen) == (methods, seen)


@pytest.mark.parametrize(
    ("observations", "headers"),
    [
        pytest.param(preflighted("/a", "PUT"), (), id="none"),
        pytest.param(
            [*preflighted("/a", "PUT", ["x-b", "content-type"]), *preflighted("/a", "DELETE", ["x-a"])],
            ("content-type", "x-a", "x-b"),
            id="union of preflights, sorted",
        ),
        pytest.param([act("/a", "PUT", ["x-cached"])], ("x-cached",), id="a request served from the preflight cache"),
        pytest.param(
            [act("/a", "GET", ["if-none-match"])], (), id="revalidation headers are the browser's, not the page's"
        ),
        pytest.param(
            [pre("/a", "PUT", ["x-a"], fid="p"), act("/a", "PUT", ["x-a", "x-added-by-proxy"], after="p")],
            ("x-a",),
            id="a preflighted request: its preflight's list",
        ),
        pytest.param(
            [act("/a", "PUT", ["x-a"], after="not given")],
            ("x-a",),
            id="a preflighted request whose preflight is not among the flows given: its own headers",
        ),
    ],
)
def test_request_headers_are_the_ones_sent(observations: list[Observation], headers: tuple[str, ...]):
    assert only_group(observations).headers == headers


@pytest.mark.parametrize(
    ("observations", "credentials", "note"),
    [
        pytest.param(preflighted("/a", "PUT", cookie=True), True, False, id="a cookie: credentials"),
        pytest.param([act("/a"), act("/a", cookie=True)], True, False, id="one cookie is enough"),
        pytest.param(preflighted("/a", "PUT"), False, True, id="no cookie: none, and said so"),
    ],
)
def test_credentials_only_if_used(observations: list[Observation], credentials: bool, note: bool):
    g = only_group(observations)
    assert g.credentials is credentials
    assert any("this policy is for requests without credentials" in n for n in g.notes) is note


def _subdomains(*hosts: str, scheme: str = "https", port: str = "") -> list[Observation]:
    return [act("/a", origin=f"{scheme}://{h}{port}") for h in hosts]


@pytest.mark.parametrize(
    ("observations", "options", "origins", "patterns"),
    [
        pytest.param([act("/a"), act("/a", origin=ADMIN)], {}, (ADMIN, APP), (), id="exact origins, sorted"),
        pytest.param(
            _subdomains("a.example.com", "b.example.com", "c.d.example.com"),
            {},
            (),
            ("https://*.example.com",),
            id="3 subdomains: a pattern",
        ),
        pytest.param(
            _subdomains("a.example.com", "b.example.com"),
            {},
            ("https://a.example.com", "https://b.example.com"),
            (),
            id="2 subdomains: below the threshold",
        ),
        pytest.param(
            _subdomains("a.example.com", "b.example.com"),
            {"wildcard_subdomains": 2},
            (),
            ("https://*.example.com",),
            id="threshold lowered",
        ),
        pytest.param(
            _subdomains("a.example.com", "b.example.com", "c.example.com"),
            {"wildcard_subdomains": None},
            ("https://a.example.com", "https://b.example.com", "https://c.example.com"),
            (),
            id="patterns turned off",
        ),
        pytest.param(
            [*_subdomains("a.example.com", "b.example.com"), *_subdomains("c.example.com", scheme="http")],
            {},
            ("http://c.example.com", "https://a.example.com", "https://b.example.com"),
            (),
            id="schemes are not mixed",
        ),
        pytest.param(
            _subdomains("a.example.com", "b.example.com", "c.example.com", port=":8443"),
            {},
            (),
            ("https://*.example.com:8443",),
            id="a port is kept",
        ),
        pytest.param(
            _subdomains("a.github.io", "b.github.io", "c.github.io"),
            {},
            ("https://a.github.io", "https://b.github.io", "https://c.github.io"),
            (),
            id="a public suffix: each is its own site",
        ),
        pytest.param(
            _subdomains("a.co.uk", "b.example.co.uk", "c.example.co.uk", "d.example.co.uk"),
            {},
            ("https://a.co.uk",),
            ("https://*.example.co.uk",),
            id="registrable domain under a two-label suffix",
        ),
        pytest.param(
            _subdomains("10.0.0.1", "10.0.0.2", "10.0.0.3", scheme="http"),
            {},
            ("http://10.0.0.1", "http://10.0.0.2", "http://10.0.0.3"),
            (),
            id="IP addresses: never a pattern",
        ),
        pytest.param(
            _subdomains("example.com", "a.example.com", "b.example.com"),
            {},
            ("https://example.com", "https://a.example.com", "https://b.example.com"),
            (),
            id="the bare domain is not a subdomain",
        ),
    ],
)
def test_origins_seen_and_wildcard_subdomains(observations, options, origins, patterns):
    g = only_group(observations, **options)
    assert (g.origins, tuple(p.pattern for p in g.patterns)) == (tuple(sorted(origins)), patterns)
    for p in g.patterns:
        assert any(p.pattern in n and "also admits every other subdomain" in n for n in g.notes)
        assert all(p.matches(o) for o in p.covers)


@pytest.mark.parametrize(
    ("options", "allowed", "loud"),
    [
        pytest.param({}, False, "is NOT in this policy", id="not suggested, warned"),
        pytest.param(
            {"allow_null": True}, True, "is ALLOWED because it was asked for", id="asked for: allowed, warned"
        ),
    ],
)
def test_null_origin_is_never_suggested_without_a_warning(options: dict[str, Any], allowed: bool, loud: str):
    g = only_group([act("/a"), act("/a", origin="null")], **options)
    assert ("null" in g.origins) is allowed
    assert g.null_seen == 1
    assert any("Origin 'null'" in w and loud in w for w in g.warnings)
    for fmt in FORMATS:
        assert loud in render(suggest([act("/a"), act("/a", origin="null")], **options), fmt).replace("\n", " ")


@pytest.mark.parametrize(
    ("paths", "routes"),
    [
        pytest.param(["/api/items"], {"/api/items": "/api/items"}, id="one path: exact"),
        pytest.param(
            ["/api/items", "/api/users"], {"/api/items": "/api/*", "/api/users": "/api/*"}, id="siblings: dir/*"
        ),
        pytest.param(
            ["/items/1", "/items/2", "/users"],
            {"/items/1": "/items/*", "/items/2": "/items/*", "/users": "/users"},
            id="ids",
        ),
        pytest.param(
            ["/api/a", "/api/b", "/api/v1/c", "/api/v1/d"],
            {p: "/api/*" for p in ("/api/a", "/api/b", "/api/v1/c", "/api/v1/d")},
            id="a nested route joins its parent route",
        ),
        pytest.param(
            ["/api/x", "/auth/login"], {"/api/x": "/api/x", "/auth/login": "/auth/login"}, id="cousins stay apart"
        ),
        pytest.param(
            ["/api/items", "/api/items/1"],
            {"/api/items": "/api/items", "/api/items/1": "/api/items/1"},
            id="a path and its child: not siblings",
        ),
    ],
)
def test_routes_group_sibling_paths(paths: list[str], routes: dict[str, str]):
    assert routes_for(paths) == routes


def test_groups_are_per_server_and_route_in_first_match_order():
    p = policy_of("routes")
    assert [(g.server, g.routes) for g in p.groups] == [
        ("http://api.localhost:8000", ("/auth/login",)),
        ("http://api.localhost:8000", ("/health",)),
        ("http://api.localhost:8000", ("/api/*",)),
    ]
    assert p.servers[0].routes == ("/auth/login", "/health", "/api/*")
    assert [g.credentials for g in p.groups] == [True, False, False]


def test_servers_are_grouped_by_scheme_host_and_port():
    p = suggest([act("/a"), act("/a", port=8001), act("/a", scheme="https", port=443)])
    assert [g.server for g in p.groups] == [
        "http://api.localhost:8000",
        "http://api.localhost:8001",
        "https://api.localhost",
    ]


@pytest.mark.parametrize(
    ("observations", "expose", "exposed", "left_out"),
    [
        pytest.param([act("/a", response=["X-Total-Count"])], (), ("X-Total-Count",), ("Date", "Server"), id="custom"),
        pytest.param(
            [act("/a", response=["Set-Cookie", "ETag", "Connection", "Vary", "Strict-Transport-Security"])],
            (),
            (),
            ("Connection", "Date", "ETag", "Server", "Set-Cookie", "Strict-Transport-Security", "Vary"),
            id="transport, infrastructure and forbidden names",
        ),
        pytest.param(
            [act("/a", response=["Cache-Control", "Content-Length", "Access-Control-Allow-Origin"])],
            (),
            (),
            ("Date", "Server"),
            id="safelisted and CORS names need nothing",
        ),
        pytest.param(
            [act("/a", response=["ETag"])], ("ETag",), ("ETag",), ("Date", "Server"), id="named by the caller"
        ),
        pytest.param([act("/a")], ("X-Page-Reads",), ("X-Page-Reads",), ("Date", "Server"), id="named, never seen"),
        pytest.param(
            [act("/a", "PUT", status=201, response=["Location"]), act("/b", status=302, response=["Location"])],
            (),
            ("Location",),
            ("Date", "Server"),
            id="Location of a 201, not of a redirect",
        ),
        pytest.param(
            [act("/a", response=["x-total-count"]), act("/a", response=["X-Total-Count"])],
            (),
            ("x-total-count",),
            ("Date", "Server"),
            id="case-insensitively unique",
        ),
        pytest.param([pre("/a", "PUT")], (), (), (), id="preflight responses are never read by the page"),
    ],
)
def test_expose_headers(observations, expose, exposed, left_out):
    g = suggest(observations, expose=expose).servers[0]
    assert (g.expose, g.not_exposed) == (exposed, left_out)


def test_not_exposed_names_are_lowercase():
    assert all(n == n.lower() for n in NOT_EXPOSED)


@pytest.mark.parametrize(
    ("observations", "options", "warning"),
    [
        pytest.param([act("/a")], {}, "only one flow was seen", id="one flow"),
        pytest.param(
            [act("/a", cookie=True, origin=f"https://{n}.example.com") for n in "abcd"],
            {"wildcard_subdomains": None},
            "credentials are allowed for 4 origins",
            id="credentials with many origins",
        ),
        pytest.param(
            [pre("/a", "PUT", ["x-a"], status=404, verdict="blocked"), act("/a")],
            {},
            "PUT /a with x-a was only announced by a blocked preflight: the browser never sent it",
            id="method seen only in a blocked preflight",
        ),
        pytest.param(preflighted("/a", "patch"), {}, "in lower case", id="lowercase method"),
        pytest.param([act("/a"), act("/a")], {"origins": "reflect"}, "every origin is allowed", id="reflect asked"),
        pytest.param(
            [act("/a", cookie=True), act("/a")], {"origins": "*"}, "'*' was asked for", id="* refused with cookies"
        ),
    ],
)
def test_warnings(observations, options, warning):
    assert any(warning in w for g in suggest(observations, **options).groups for w in g.warnings)


def test_no_warning_for_a_well_observed_route():
    assert [g.warnings for g in policy_of("many methods").groups] == [(), ()]


def test_no_cross_origin_flow_says_so_in_every_format():
    policy = suggest([replace(act("/a"), kind="same-origin")])
    assert policy.skipped == 1
    for fmt in FORMATS:
        assert "no cross-origin flow" in render(policy, fmt)
    assert parse_rules(render(policy, "rule"), "s.yaml", compile_filter).rules == ()


def test_blocked_preflight_with_several_missing_pieces_names_all_of_them():
    """A 404 preflight for PUT with three headers: one policy allows the method, every header and the origin,
    and says that the PUT itself was never seen."""
    g = policy_of("blocked preflight").groups[0]
    assert (g.origins, g.methods, g.headers) == ((APP,), ("PUT",), ("authorization", "content-type", "x-request-id"))
    assert any("never sent it" in w for w in g.warnings)
    assert any("answered preflights with 404" in n for n in g.notes)


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("app.example.com", "example.com"),
        ("a.b.example.co.uk", "example.co.uk"),
        ("example.com", "example.com"),
        ("app.localhost", "localhost"),
        ("x.github.io", "x.github.io"),
        ("github.io", None),
        ("127.0.0.1", None),
        ("::1", None),
    ],
)
def test_registrable_domain(host: str, domain: str | None):
    assert registrable_domain(host) == domain


@pytest.mark.parametrize(
    ("options", "error"),
    [({"max_age": 86400}, "max_age"), ({"origins": "all"}, "origins")],
    ids=["max_age above Chromium's cap", "unknown origins mode"],
)
def test_options_are_checked(options: dict[str, Any], error: str):
    with pytest.raises(ValueError, match=error):
        suggest([], **options)


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="rule, starlette, express, django, flask, nginx"):
        render(suggest([]), "caddy")


# --------------------------------------------------------------------------------------------------
# From flows: the builder and the one-call form


@pytest.fixture
def addon() -> Iterator[CorsAddon]:
    a = CorsAddon()
    with taddons.context(a):
        yield a


def test_observation_from_a_judged_preflight_and_request(addon: CorsAddon):
    headers = {"Origin": APP, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-b,x-a"}
    preflight = make_flow("OPTIONS", headers, 404, path="/v1/items?token=1", t=1000.0)
    request = make_flow(
        "PUT",
        {"Origin": APP, "Sec-Fetch-Mode": "cors", "X-A": "1", "X-B": "2", "Cookie": "sid=1"},
        200,
        [("X-Total-Count", "3"), ("Date", "today")],
        t=1000.1,
    )
    run(addon, preflight)
    run(addon, request)
    p, a = observation_from_flow(preflight), observation_from_flow(request)
    assert p is not None and a is not None
    assert (p.kind, p.method, p.path, p.origin) == ("preflight", "OPTIONS", "/v1/items", APP)
    assert (p.requested_method, p.requested_headers, p.verdict, p.status) == ("PUT", ("x-a", "x-b"), "blocked", 404)
    assert (a.kind, a.method, a.server, a.credentials) == ("actual", "PUT", "http://api.localhost:8000", "include")
    assert (a.unsafe_request_headers, a.response_header_names) == (("x-a", "x-b"), ("X-Total-Count", "Date"))
    assert Observation.from_flow(request) == a


def test_flows_that_are_not_cross_origin_give_no_observation(addon: CorsAddon):
    same = make_flow("GET", {"Origin": "http://api.localhost:8000"})
    run(addon, same)
    plain = make_flow("GET", {})
    assert observation_from_flow(same) is None
    assert observation_from_flow(plain) is None


def test_suggest_flows_in_one_call(addon: CorsAddon):
    flows = [make_flow("GET", t=1000.0), make_flow("GET", {"Origin": "http://api.localhost:8000"}, t=1000.1)]
    for f in flows:
        run(addon, f)
    text = suggest_flows(flows, "rule")
    assert "1 other flow skipped" in " ".join(text.replace("#", "").split())
    assert parse_rules(text, "s.yaml", compile_filter).rules[0].name == "suggested http://api.localhost:8000/v1/items"


# --------------------------------------------------------------------------------------------------
# Replaying the observed requests against a configured server


Send = Callable[[str, str, list[tuple[str, str]]], tuple[int, list[tuple[str, str]]]]
SAMPLE_VALUES = {"content-type": "application/json", "authorization": "Bearer t0k3n"}
NOT_REPLAYED = {
    "content-length",
    "transfer-encoding",
    "connection",
    "date",
    "server",
    "content-type",
    "vary",
    "keep-alive",
}


def announced(policy: Policy) -> list[Observation]:
    """The requests blocked preflights announced and the browser never sent: the fix must make them pass too."""
    out = []
    for g in policy.groups:
        sent = {(o.method, o.path) for o in g.observations if not o.preflight}
        for o in g.observations:
            if o.preflight and o.verdict == "blocked" and (o.requested_method, o.path) not in sent:
                out.append(
                    replace(o, kind="actual", method=o.requested_method, unsafe_request_headers=o.requested_headers)
                )
    return out


def request_lines(o: Observation, origin: str) -> list[tuple[str, str]]:
    lines = [("Origin", origin), ("Sec-Fetch-Mode", "cors")]
    if o.preflight:
        lines.append(("Access-Control-Request-Method", o.requested_method))
        if o.requested_headers:
            lines.append(("Access-Control-Request-Headers", ",".join(o.requested_headers)))
        return lines
    lines += [(h, SAMPLE_VALUES.get(h, "1")) for h in o.unsafe_request_headers]
    if o.credentials == "include":
        lines.append(("Cookie", "sid=1"))
    return lines


def passes(v: Verdict, include: bool) -> bool:
    """Allowed by Chromium and by Firefox's model in the request's credentials mode (a preflight is judged for the
    request it announces)."""
    outcome = v.if_credentials if include and v.if_credentials is not None else v.outcome
    return outcome.allowed and outcome.firefox_reason is None


def replay(policy: Policy, send: Send, other_allowed: bool = False) -> list[str]:
    """Every observed flow must pass from its origin when the policy allows that origin (`null` is refused unless
    asked for), and be refused from OTHER (unless every origin was asked for). Returns the failures."""
    problems = []
    for g in policy.groups:
        for o in [*g.observations, *announced(replace(policy, groups=(g,)))]:
            include = o.credentials == "include" or any(
                x.credentials == "include" and x.path == o.path and x.method == o.requested_method
                for x in g.observations
            )
            for origin, want in ((o.origin, g.allows_origin(o.origin)), (OTHER, other_allowed)):
                lines = request_lines(o, origin)
                status, response = send(o.method, o.path, lines)
                request = Request(o.method, o.scheme, o.host, o.port, o.path, PlainHeaders(lines))
                v = evaluate(request, Response(status, PlainHeaders(response)))
                if passes(v, include) is not want:
                    problems.append(
                        f"{o.kind} {o.method} {o.path} from {origin}: {v.outcome.verdict} {v.outcome.reason} "
                        f"(if credentials: {v.if_credentials}); status {status}, headers {response}"
                    )
    return problems


@dataclass(frozen=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]


def answers(policy: Policy) -> dict[tuple[str, str], Answer]:
    """What the test servers answer per (method, path): the observed status and (custom) response headers."""
    out: dict[tuple[str, str], Answer] = {}
    for g in policy.groups:
        for o in g.observations:
            if o.preflight or o.status is None:
                continue
            names = [n for n in o.response_header_names if n.lower() not in NOT_REPLAYED]
            values = tuple((n, "a=1" if n.lower() == "set-cookie" else "v") for n in names)
            out[(o.method, o.path)] = Answer(o.status, values)
    return out


def answer_for(table: dict[tuple[str, str], Answer], method: str, path: str) -> Answer:
    return table.get((method, path), Answer(200, ()))


# --------------------------------------------------------------------------------------------------
# rule


def rule_send(rules: RuleSet, table: dict[tuple[str, str], Answer]) -> Send:
    """The proxy's world: the server answers without any CORS header (a preflight: 404), the rule fixes it."""

    def send(method: str, path: str, lines: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
        h = PlainHeaders(lines)
        origin = h.get_all("origin")[0]
        preflight = method == "OPTIONS"
        rule = rules.match(SERVER["host"], path, origin)
        a = Answer(404, ()) if preflight else answer_for(table, method, path)
        headers = list(a.headers)
        if rule is None:
            return a.status, headers
        requested = h.get_all("access-control-request-method")
        edit = cors_edit(
            rule,
            preflight=preflight,
            origin=origin,
            request_method=requested[0] if requested else "",
            request_headers=[n for v in h.get_all("access-control-request-headers") for n in v.split(",") if n],
            response_header_names=[n for n, _ in headers],
            status=a.status,
        )
        for name, values in edit.replace:
            headers = [(n, v) for n, v in headers if n.lower() != name.lower()] + [(name, v) for v in values]
        return edit.status or a.status, headers

    return send


@pytest.mark.parametrize("name", SCENARIOS)
def test_rule_loads_without_errors_or_warnings(name: str):
    text = render(policy_of(name), "rule")
    rules = parse_rules(text, "suggested.yaml", compile_filter)
    assert rules.warnings == ()
    assert rules.rules
    jsonschema.validate(yaml.safe_load(text), SCHEMA)


@pytest.mark.parametrize("name", SCENARIOS)
def test_rule_makes_every_flow_pass_and_refuses_other_origins(name: str):
    policy = policy_of(name)
    rules = parse_rules(render(policy, "rule"), "suggested.yaml", compile_filter)
    assert replay(policy, rule_send(rules, answers(policy))) == []


@pytest.mark.parametrize(
    ("observations", "options"),
    [
        pytest.param([act("/a"), act("/a", origin="null")], {"allow_null": True}, id="null asked for"),
        pytest.param([act("/a", cookie=True)], {"origins": "reflect"}, id="reflect with credentials asked for"),
        pytest.param([act("/a")], {"origins": "*"}, id="* asked for"),
        pytest.param([act("/a"), act("/a", port=8001)], {}, id="one host, two ports: a filter tells them apart"),
        pytest.param([act("/a", origin="null")], {}, id="only null seen: no rule"),
        pytest.param([act("/a", host="::1")], {}, id="IPv6 server"),
    ],
)
def test_rule_loads_for_unusual_policies(observations: list[Observation], options: dict[str, Any]):
    text = render(suggest(observations, **options), "rule")
    assert parse_rules(text, "suggested.yaml", compile_filter).warnings == ()
    jsonschema.validate(yaml.safe_load(text), SCHEMA)


def test_rule_filter_picks_the_port():
    """Two servers on one host: each rule applies to its own port only."""
    rules = parse_rules(render(suggest([act("/a"), act("/a", port=8001)]), "rule"), "s.yaml", compile_filter)
    for port in (8000, 8001):
        f = make_flow()
        f.request.port = port
        f.request.path = "/a"
        f.request.headers["Host"] = f"api.localhost:{port}"
        rule = rules.match("api.localhost", "/a", APP, f)
        assert rule is not None and rule.name.endswith(f":{port}/a")


# --------------------------------------------------------------------------------------------------
# Starlette / FastAPI


def starlette_app(policy: Policy, fail: bool = False) -> Any:
    pytest.importorskip("starlette", reason="Starlette is a test dependency (the test extra)")
    from starlette.applications import Starlette
    from starlette.requests import Request as StarletteRequest
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    table = answers(policy)

    async def endpoint(request: StarletteRequest) -> PlainTextResponse:
        if fail:
            raise RuntimeError("the view failed")
        a = answer_for(table, request.method, request.url.path)
        return PlainTextResponse("ok", a.status, dict(a.headers))

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "patch"]
    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])
    exec(render(policy, "starlette"), {"app": app})
    return app


def asgi_send(app: Any) -> Send:
    """One HTTP request through the ASGI app, as a server calls it (Starlette's TestClient would need httpx2,
    which mitmproxy 11's h11 pin excludes)."""

    async def call(method: str, path: str, lines: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(n.lower().encode(), v.encode()) for n, v in lines],
            "server": ("api.localhost", 8000),
            "client": ("127.0.0.1", 50000),
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        with contextlib.suppress(RuntimeError):  # ServerErrorMiddleware re-raises after sending its 500
            await app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        return start["status"], [(n.decode(), v.decode()) for n, v in start["headers"]]

    def send(method: str, path: str, lines: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
        # A loop of its own in a thread of its own: the browser suite's Playwright keeps a loop running in this one.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, call(method, path, lines)).result()

    return send


@pytest.mark.parametrize("name", SCENARIOS)
def test_starlette_makes_every_flow_pass_and_refuses_other_origins(name: str):
    policy = policy_of(name)
    assert replay(policy, asgi_send(starlette_app(policy))) == []


def test_starlette_unhandled_exception_has_no_cors_headers_as_the_snippet_says():
    policy = policy_of("one method")
    assert "ServerErrorMiddleware's 500" in render(policy, "starlette")
    status, headers = asgi_send(starlette_app(policy, fail=True))("GET", "/api/items", [("Origin", APP)])
    assert status == 500
    assert "access-control-allow-origin" not in {n.lower() for n, _ in headers}


# --------------------------------------------------------------------------------------------------
# flask-cors


def flask_app(policy: Policy, fail: bool = False) -> Any:
    pytest.importorskip("flask_cors", reason="flask-cors is a test dependency (the test extra)")
    from flask import Flask
    from flask import Response as FlaskResponse
    from flask import request as flask_request

    table = answers(policy)
    app = Flask(__name__)

    @app.route("/<path:path>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
    def endpoint(path: str) -> FlaskResponse:
        if fail:
            raise RuntimeError("the view failed")
        a = answer_for(table, flask_request.method, flask_request.path)
        return FlaskResponse("ok", a.status, list(a.headers))

    exec(render(policy, "flask"), {"app": app})
    return app


def werkzeug_send(client: Any) -> Send:
    def send(method: str, path: str, lines: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
        r = client.open(path, method=method, headers=lines)
        return r.status_code, list(r.headers.items())

    return send


@pytest.mark.parametrize("name", SCENARIOS)
def test_flask_makes_every_flow_pass_and_refuses_other_origins(name: str):
    policy = policy_of(name)
    assert replay(policy, werkzeug_send(flask_app(policy).test_client())) == []


def test_flask_unhandled_exception_keeps_cors_headers_as_the_snippet_says():
    policy = policy_of("one method")
    assert "intercept_exceptions" in render(policy, "flask")
    r = flask_app(policy, fail=True).test_client().get("/api/items", headers={"Origin": APP})
    assert (r.status_code, r.headers.get("Access-Control-Allow-Origin")) == (500, APP)


# --------------------------------------------------------------------------------------------------
# django-cors-headers

DJANGO_TABLE: dict[tuple[str, str], Answer] = {}


def django_view(request: Any) -> Any:
    from django.http import HttpResponse

    if request.path == "/boom":
        raise RuntimeError("the view failed")
    a = answer_for(DJANGO_TABLE, request.method, request.path)
    return HttpResponse("ok", status=a.status, headers=dict(a.headers))


def django_urls() -> list[Any]:
    from django.urls import re_path
    from django.views.decorators.csrf import csrf_exempt

    return [re_path(r"^.*$", csrf_exempt(django_view))]


urlpatterns: list[Any] = []  # ROOT_URLCONF is this module: filled on first use


@pytest.fixture
def django_settings() -> Iterator[Callable[[Policy], Any]]:
    """Django configured once per process (its settings are global); each policy's snippet applied with
    override_settings over a project with CommonMiddleware, CsrfViewMiddleware and the corsheaders app."""
    pytest.importorskip("corsheaders", reason="django-cors-headers is a test dependency (the test extra)")
    import django
    from django.conf import settings
    from django.test.utils import override_settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=["django.contrib.contenttypes", "corsheaders"],
            MIDDLEWARE=["django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware"],
            DATABASES={},
            LOGGING_CONFIG=None,
        )
        django.setup()
    if not urlpatterns:
        urlpatterns.extend(django_urls())
    stack = contextlib.ExitStack()

    def apply(policy: Policy) -> Any:
        from django.test import Client

        namespace: dict[str, Any] = {
            "INSTALLED_APPS": ["django.contrib.contenttypes"],
            "MIDDLEWARE": list(settings.MIDDLEWARE),
        }
        exec(render(policy, "django"), namespace)
        assert "corsheaders" in namespace["INSTALLED_APPS"]
        assert namespace["MIDDLEWARE"][0] == "corsheaders.middleware.CorsMiddleware"
        values = {k: v for k, v in namespace.items() if k.isupper() and k != "INSTALLED_APPS"}
        stack.enter_context(override_settings(**values))
        DJANGO_TABLE.clear()
        DJANGO_TABLE.update(answers(policy))
        return Client(raise_request_exception=False)

    with stack:
        yield apply


def django_send(client: Any) -> Send:
    def send(method: str, path: str, lines: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
        r = client.generic(method, path, headers=dict(lines))
        return r.status_code, list(r.headers.items())

    return send


@pytest.mark.parametrize("name", SCENARIOS)
def test_django_makes_every_flow_pass_and_refuses_other_origins(name: str, django_settings):
    policy = policy_of(name)
    assert replay(policy, django_send(django_settings(policy))) == []


def test_django_unhandled_exception_keeps_cors_headers_as_the_snippet_says(django_settings):
    policy = suggest([act("/boom"), act("/boom")])
    assert "404s and 500s included" in render(policy, "django")
    r = django_settings(policy).get("/boom", headers={"Origin": APP})
    assert (r.status_code, r.headers.get("Access-Control-Allow-Origin")) == (500, APP)


# --------------------------------------------------------------------------------------------------
# Express cors, under node


def http_send(port: int, host: str) -> Send:
    def send(method: str, path: str, lines: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host)
            for name, value in lines:
                conn.putheader(name, value)
            conn.putheader("Content-Length", "0")
            conn.endheaders()
            r = conn.getresponse()
            r.read()
            return r.status, r.getheaders()
        finally:
            conn.close()

    return send


@contextlib.contextmanager
def started(command: list[str], port: int, cwd: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    log = (cwd / "server.log").open("wb")
    proc = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        try:
            wait_listening(port, proc, what=command[0], timeout=20)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n{(cwd / 'server.log').read_text(errors='replace')}") from None
        yield
    finally:
        stop_process(proc)
        log.close()


EXPRESS_APP = """\
const express = require("express");
const app = express();

{snippet}

const answers = {answers};
app.get("/boom", () => {{ throw new Error("the view failed"); }});
app.use((req, res) => {{
  const a = answers[req.method + " " + req.path] || [200, []];
  for (const [name, value] of a[1]) res.append(name, value);
  res.status(a[0]).send("ok");
}});
app.listen({port}, "127.0.0.1");
"""


def express_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (EXPRESS_MODULES / "express").is_dir() or not (EXPRESS_MODULES / "cors").is_dir():
        return "express and cors are not installed: run 'npm ci' in tests/middleware/express (tests/run does)"
    return None


@contextlib.contextmanager
def express_server(policy: Policy, tmp_path: Path) -> Iterator[Send]:
    missing = express_missing()
    if missing:
        pytest.skip(missing)
    port = free_port()
    table = {f"{m} {p}": [a.status, [list(h) for h in a.headers]] for (m, p), a in answers(policy).items()}
    app = EXPRESS_APP.format(snippet=render(policy, "express"), answers=json.dumps(table), port=port)
    (tmp_path / "app.js").write_text(app)
    env = {**os.environ, "NODE_PATH": str(EXPRESS_MODULES)}
    with started(["node", str(tmp_path / "app.js")], port, tmp_path, env):
        yield http_send(port, f"api.localhost:{port}")


@pytest.mark.parametrize("name", SCENARIOS)
def test_express_makes_every_flow_pass_and_refuses_other_origins(name: str, tmp_path: Path):
    policy = policy_of(name)
    with express_server(policy, tmp_path) as send:
        assert replay(policy, send) == []


def test_express_error_response_keeps_cors_headers_as_the_snippet_says(tmp_path: Path):
    policy = suggest([act("/boom"), act("/boom")])
    assert "stay on the app's 404s and on Express's error responses" in " ".join(
        render(policy, "express").replace("//  ", "").split()
    )
    with express_server(policy, tmp_path) as send:
        status, headers = send("GET", "/boom", [("Origin", APP)])
    assert (status, dict((n.lower(), v) for n, v in headers).get("access-control-allow-origin")) == (500, APP)


# --------------------------------------------------------------------------------------------------
# nginx, as a user process on loopback, in front of a backend that sends its own (wrong) CORS header

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{snippet}
}}
"""


class Backend(ThreadingHTTPServer):
    table: dict[tuple[str, str], Answer]


class BackendHandler(BaseHTTPRequestHandler):
    server: Backend

    def answer(self) -> None:
        a = answer_for(self.server.table, self.command, self.path.split("?", 1)[0])
        self.send_response(a.status)
        for name, value in a.headers:
            self.send_header(name, value)
        self.send_header("Access-Control-Allow-Origin", "*")  # nginx must hide it: one Allow-Origin
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


@pytest.mark.parametrize("name", SCENARIOS)
def test_nginx_makes_every_flow_pass_and_refuses_other_origins(name: str, tmp_path: Path):
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    port = free_port()
    observations = [replace(o, port=port) for o in SCENARIOS[name]]
    policy = suggest(observations)
    backend = Backend(("127.0.0.1", 0), BackendHandler)
    backend.table = answers(policy)
    thread = threading.Thread(target=backend.serve_forever, daemon=True)
    thread.start()
    try:
        snippet = render(policy, "nginx")
        assert f"listen {port};" in snippet
        snippet = snippet.replace(f"listen {port};", f"listen 127.0.0.1:{port};").replace(
            NGINX_CONTENT_MARKER, f"proxy_pass http://127.0.0.1:{backend.server_address[1]};"
        )
        conf = tmp_path / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp_path, snippet=snippet))
        checked = subprocess.run([binary, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        with started([binary, "-p", str(tmp_path), "-c", str(conf)], port, tmp_path):
            assert replay(policy, http_send(port, f"api.localhost:{port}")) == []
    finally:
        backend.shutdown()
        backend.server_close()


# --------------------------------------------------------------------------------------------------
# What only a caller can ask for: every origin, or the null origin

ASKED = [
    pytest.param({"origins": "reflect"}, True, id="reflect"),
    pytest.param({"origins": "*"}, True, id="*"),
    pytest.param({"allow_null": True}, False, id="null"),
]


def in_process_send(fmt: str, policy: Policy, tmp_path: Path, django_settings: Any) -> Send:
    if fmt == "rule":
        return rule_send(parse_rules(render(policy, "rule"), "s.yaml", compile_filter), answers(policy))
    if fmt == "starlette":
        return asgi_send(starlette_app(policy))
    if fmt == "flask":
        return werkzeug_send(flask_app(policy).test_client())
    return django_send(django_settings(policy))


@pytest.mark.parametrize(("options", "any_origin"), ASKED)
@pytest.mark.parametrize("fmt", ["rule", "starlette", "flask", "django"])
def test_what_was_asked_for_is_what_is_allowed(fmt, options, any_origin, tmp_path, django_settings):
    """Reflect and `*` (asked for) let any origin in, `null` (asked for) lets null in, in each framework too."""
    observations = [*SCENARIOS["null origin"], *SCENARIOS["one method"]]
    policy = suggest(observations, **options)
    assert replay(policy, in_process_send(fmt, policy, tmp_path, django_settings), other_allowed=any_origin) == []


# --------------------------------------------------------------------------------------------------
# Every format, every scenario: well-formed text


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_every_format_carries_the_warnings_and_the_evidence(fmt: str, name: str):
    policy = policy_of(name)
    text = render(policy, fmt)
    flat = " ".join(" ".join(line.lstrip("#/ ") for line in text.splitlines()).split())
    for g in policy.groups:
        for w in g.warnings:
            assert " ".join(w.split()) in flat
    if fmt in ("starlette", "flask", "django"):
        compile(text, f"<{fmt}>", "exec")
    assert sys.getsizeof(text) < 100_000
