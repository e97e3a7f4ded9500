"""The `cors_report` JSON lines of a live mitmdump: their shape, and the verdicts they carry for simple requests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness.backend import Answer, Backend
from tests.harness.client import PAGE_ORIGIN, cors_headers, preflight_headers
from tests.harness.mitmdump import Mitmdump
from tests.harness.report import REPORT_KEYS, REPORT_WAIT, addon_report_timing

pytestmark = pytest.mark.e2e

ACAO = "Access-Control-Allow-Origin"

KINDS = {"preflight", "actual", "same-origin", "not-cors"}


@pytest.mark.parametrize(
    ("name", "method", "headers", "answer", "kind"),
    [
        pytest.param(
            "allowed-get", "GET", cors_headers(), Answer(200, [(ACAO, PAGE_ORIGIN)]), "actual", id="allowed GET"
        ),
        pytest.param("blocked-get", "GET", cors_headers(), Answer(200), "actual", id="blocked GET"),
        pytest.param(
            "preflight",
            "OPTIONS",
            preflight_headers("PATCH", "x-requested-with"),
            Answer(204, [(ACAO, PAGE_ORIGIN), ("Access-Control-Allow-Methods", "PATCH")], b""),
            "preflight",
            id="preflight",
        ),
        pytest.param(
            "same-origin",
            "POST",
            [("Sec-Fetch-Mode", "cors"), ("Sec-Fetch-Site", "same-origin")],
            Answer(200),
            "same-origin",
            id="same-origin POST",
        ),
        pytest.param(
            "no-cors",
            "POST",
            cors_headers(mode="no-cors"),
            Answer(200),
            "not-cors",
            id="no-cors POST",
        ),
    ],
)
def test_report_line_has_the_public_keys(
    proxy: Mitmdump,
    backend: Backend,
    name: str,
    method: str,
    headers: list[tuple[str, str]],
    answer: Answer,
    kind: str,
) -> None:
    """Every flow with an Origin gets one report line: product.md's keys with their types, plus flow id, method,
    URL and timestamp."""
    path = backend.route(f"/report/keys/{name}", answer)
    if kind == "same-origin":
        headers = [("Origin", backend.a), *headers]
    proxy.send(method, backend.a + path, headers, b"x" if method == "POST" else None)
    (line,) = proxy.lines_for(path, 1)
    wrong = {k: line.get(k, "<missing>") for k, types in REPORT_KEYS.items() if not isinstance(line.get(k), types)}
    assert not wrong, f"keys missing or of the wrong type: {wrong}"
    assert line["kind"] == kind
    assert line["verdict"] in ("allowed", "blocked")
    assert line["credentials"] in ("include", "omit", "unknown")
    assert line["method"] == method
    assert line["url"] == backend.a + path
    assert all(isinstance(h, str) for h in line["unreadable_headers"])
    assert all(isinstance(w, str) for w in line["warnings"])
    if line["if_credentials"] is not None:
        assert set(line["if_credentials"]) >= {"verdict", "reason", "firefox_reason"}


def test_report_lines_have_distinct_flow_ids(proxy: Mitmdump, backend: Backend) -> None:
    """Two identical requests are two flows: the report tells them apart by flow_id, in time order."""
    path = backend.route("/report/ids", Answer(200, [(ACAO, "*")]))
    for _ in range(2):
        proxy.send("GET", backend.a + path, cors_headers())
    first, second = proxy.lines_for(path, 2)
    assert first["flow_id"] != second["flow_id"]
    assert first["timestamp"] <= second["timestamp"]


@pytest.mark.parametrize(
    ("name", "response_headers", "extra_request_headers", "expected"),
    [
        pytest.param(
            "no-acao",
            [("Content-Type", "application/json")],
            [],
            {
                "verdict": "blocked",
                "reason": "MissingAllowOriginHeader",
                "firefox_reason": "CORSMissingAllowOrigin2",
                "credentials": "unknown",
            },
            id="no Allow-Origin: blocked",
        ),
        pytest.param(
            "exact",
            [(ACAO, PAGE_ORIGIN), ("Vary", "Origin")],
            [],
            {"verdict": "allowed", "reason": None, "firefox_reason": None, "credentials": "unknown"},
            id="exact origin: allowed",
        ),
        pytest.param(
            "star",
            [(ACAO, "*")],
            [],
            {
                "verdict": "allowed",
                "reason": None,
                "credentials": "unknown",
                "if_credentials": {
                    "verdict": "blocked",
                    "reason": "WildcardOriginNotAllowed",
                    "firefox_reason": "CORSNotSupportingCredentials",
                },
            },
            id="star without cookie: allowed, blocked if credentialed",
        ),
        pytest.param(
            "star-cookie",
            [(ACAO, "*")],
            [("Cookie", "theme=dark")],
            {
                "verdict": "blocked",
                "reason": "WildcardOriginNotAllowed",
                "firefox_reason": "CORSNotSupportingCredentials",
                "credentials": "include",
            },
            id="star with cookie: blocked",
        ),
        pytest.param(
            "credentialed",
            [(ACAO, PAGE_ORIGIN), ("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")],
            [("Cookie", "theme=dark")],
            {"verdict": "allowed", "reason": None, "credentials": "include"},
            id="exact origin and credentials with cookie: allowed",
        ),
        pytest.param(
            "two-lines",
            [(ACAO, PAGE_ORIGIN), (ACAO, PAGE_ORIGIN)],
            [],
            {
                "verdict": "blocked",
                "reason": "MultipleAllowOriginValues",
                "firefox_reason": "CORSMultipleAllowOriginNotAllowed",
            },
            id="Allow-Origin sent twice (app and proxy): blocked",
        ),
        pytest.param(
            "mismatch",
            [(ACAO, "http://localhost:3000")],
            [],
            {
                "verdict": "blocked",
                "reason": "AllowOriginMismatch",
                "firefox_reason": "CORSAllowOriginNotMatchingOrigin",
            },
            id="another origin: blocked",
        ),
    ],
)
def test_simple_get_verdict(
    proxy: Mitmdump,
    backend: Backend,
    name: str,
    response_headers: list[tuple[str, str]],
    extra_request_headers: list[tuple[str, str]],
    expected: dict[str, Any],
) -> None:
    """A simple cross-origin GET is judged from the response's CORS headers and the Cookie on the wire."""
    path = backend.route(f"/report/simple/{name}", Answer(200, response_headers))
    proxy.send("GET", backend.a + path, [*cors_headers(), *extra_request_headers])
    (line,) = proxy.lines_for(path, 1)
    assert line["kind"] == "actual"
    assert {k: line[k] for k in expected} == expected


def test_blocked_message_names_the_header_that_fixes_it(proxy: Mitmdump, backend: Backend) -> None:
    """The one-line message of a blocked GET names the missing header with the value that would fix it."""
    path = backend.route("/report/message", Answer(404, [("Content-Type", "text/plain")], b"not here"))
    proxy.send("GET", backend.a + path, cors_headers())
    (line,) = proxy.lines_for(path, 1)
    assert line["verdict"] == "blocked"
    assert f"Access-Control-Allow-Origin: {PAGE_ORIGIN}" in line["message"]


@pytest.mark.parametrize(
    ("name", "response_headers", "cookie", "unreadable", "readable"),
    [
        pytest.param(
            "listed",
            [(ACAO, "*"), ("Access-Control-Expose-Headers", "X-Total-Count")],
            False,
            {"X-Request-Id"},
            {"X-Total-Count", "Content-Type", "Cache-Control"},
            id="Expose-Headers lists one header",
        ),
        pytest.param(
            "none",
            [(ACAO, "*")],
            False,
            {"X-Request-Id", "X-Total-Count"},
            {"Content-Type", "Cache-Control"},
            id="no Expose-Headers: only the safelist is readable",
        ),
        pytest.param(
            "star",
            [(ACAO, "*"), ("Access-Control-Expose-Headers", "*")],
            False,
            set(),
            {"X-Request-Id", "X-Total-Count", "Content-Type"},
            id="Expose-Headers star without credentials",
        ),
        pytest.param(
            "star-credentialed",
            [
                (ACAO, PAGE_ORIGIN),
                ("Access-Control-Allow-Credentials", "true"),
                ("Vary", "Origin"),
                ("Access-Control-Expose-Headers", "*"),
            ],
            True,
            {"X-Request-Id", "X-Total-Count"},
            {"Content-Type"},
            id="Expose-Headers star is literal with credentials",
        ),
        pytest.param(
            "set-cookie",
            [(ACAO, "*"), ("Access-Control-Expose-Headers", "Set-Cookie, X-Request-Id"), ("Set-Cookie", "a=b")],
            False,
            {"Set-Cookie"},
            {"X-Request-Id"},
            id="Set-Cookie is never readable",
        ),
    ],
)
def test_unreadable_headers(
    proxy: Mitmdump,
    backend: Backend,
    name: str,
    response_headers: list[tuple[str, str]],
    cookie: bool,
    unreadable: set[str],
    readable: set[str],
) -> None:
    """`unreadable_headers` lists the response headers the page's script cannot read (Expose-Headers, safelist)."""
    headers = [
        *response_headers,
        ("Content-Type", "application/json"),
        ("Cache-Control", "no-store"),
        ("X-Total-Count", "42"),
        ("X-Request-Id", "abc"),
    ]
    path = backend.route(f"/report/unreadable/{name}", Answer(200, headers, b"[]"))
    request_headers = [*cors_headers(), *([("Cookie", "theme=dark")] if cookie else [])]
    proxy.send("GET", backend.a + path, request_headers)
    (line,) = proxy.lines_for(path, 1)
    assert line["verdict"] == "allowed", line["message"]
    hidden = {h.lower() for h in line["unreadable_headers"]}
    assert {h.lower() for h in unreadable} <= hidden
    assert not {h.lower() for h in readable} & hidden


def test_report_wait_outlasts_the_addons_hold() -> None:
    """The suites wait REPORT_WAIT for a report line: longer than the addon holds a passing preflight's line plus
    the interval of the tick that flushes it, with at least a second to spare."""
    hold, flush = addon_report_timing()
    assert hold + flush + 1.0 <= REPORT_WAIT, (hold, flush, REPORT_WAIT)
