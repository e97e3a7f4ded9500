"""The evaluator, as a specification: one row per browser behaviour, a passing and a failing case per reason."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mitmcors import evaluator
from mitmcors.evaluator import Kind, PlainHeaders, Request, Response, Verdict, WireHeaders, classify, evaluate
from mitmcors.reasons import FirefoxReason, Reason

APP = "http://app.localhost:5173"
API = ("http", "api.localhost", 8000)
CORS = [("Origin", APP), ("Sec-Fetch-Mode", "cors"), ("Sec-Fetch-Site", "cross-site")]


def request(method: str = "GET", headers: list[tuple[str, str]] | None = None, path: str = "/v1/items") -> Request:
    scheme, host, port = API
    return Request(method, scheme, host, port, path, PlainHeaders(CORS if headers is None else headers))


def preflight(method: str = "PUT", acrh: str | None = None, origin: str = APP) -> Request:
    lines = [("Origin", origin), ("Access-Control-Request-Method", method), ("Sec-Fetch-Mode", "cors")]
    if acrh is not None:
        lines.append(("Access-Control-Request-Headers", acrh))
    return request("OPTIONS", lines)


def response(status: int = 200, *lines: tuple[str, str]) -> Response:
    return Response(status, PlainHeaders(lines))


ACAO = "Access-Control-Allow-Origin"
ACAC = "Access-Control-Allow-Credentials"
ACAM = "Access-Control-Allow-Methods"
ACAH = "Access-Control-Allow-Headers"
COOKIE = ("Cookie", "session=s3cr3t")


# --------------------------------------------------------------------------------------------------
# Classification


@pytest.mark.parametrize(
    ("method", "headers", "kind"),
    [
        pytest.param("GET", CORS, Kind.ACTUAL, id="cross-origin fetch"),
        pytest.param("GET", [("Origin", APP)], Kind.ACTUAL, id="GET with Origin and no Sec-Fetch (plain http)"),
        pytest.param(
            "POST", [("Origin", APP), ("Content-Type", "application/json")], Kind.ACTUAL, id="POST without Sec-Fetch"
        ),
        pytest.param(
            "GET",
            [("Origin", "http://api.localhost:8000"), ("Sec-Fetch-Mode", "cors")],
            Kind.SAME_ORIGIN,
            id="same origin GET",
        ),
        pytest.param(
            "POST",
            [("Origin", "http://api.localhost:8000"), ("Sec-Fetch-Site", "same-origin"), ("Sec-Fetch-Mode", "cors")],
            Kind.SAME_ORIGIN,
            id="same-origin POST carries Origin",
        ),
        pytest.param(
            "GET",
            [("Origin", "HTTP://API.localhost:8000")],
            Kind.SAME_ORIGIN,
            id="same origin compared case-insensitively on scheme and host",
        ),
        pytest.param(
            "POST",
            [("Origin", APP), ("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "document")],
            Kind.NOT_CORS,
            id="cross-origin form POST navigation",
        ),
        pytest.param(
            "POST",
            [
                ("Origin", APP),
                ("Upgrade-Insecure-Requests", "1"),
                ("Accept", "text/html,application/xhtml+xml"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Kind.NOT_CORS,
            id="form POST over plain http without Sec-Fetch",
        ),
        pytest.param(
            "GET",
            [("Origin", APP), ("Upgrade", "websocket"), ("Connection", "Upgrade")],
            Kind.NOT_CORS,
            id="WebSocket handshake",
        ),
        pytest.param(
            "GET", [("Origin", APP), ("Sec-Fetch-Mode", "websocket")], Kind.NOT_CORS, id="WebSocket by Sec-Fetch-Mode"
        ),
        pytest.param("POST", [("Origin", APP), ("Sec-Fetch-Mode", "no-cors")], Kind.NOT_CORS, id="no-cors POST"),
        pytest.param(
            "OPTIONS", [("Origin", APP), ("Access-Control-Request-Method", "PUT")], Kind.PREFLIGHT, id="preflight"
        ),
        pytest.param("OPTIONS", [("Origin", APP)], Kind.ACTUAL, id="explicit OPTIONS request is not a preflight"),
        pytest.param(
            "GET", [("Origin", "null"), ("Sec-Fetch-Mode", "cors")], Kind.ACTUAL, id="null origin is never same-origin"
        ),
    ],
)
def test_classify(method: str, headers: list[tuple[str, str]], kind: Kind) -> None:
    """Requests are sorted into preflight, CORS, same-origin and not-CORS as browsers treat them."""
    assert classify(request(method, headers)).kind is kind


@pytest.mark.parametrize(
    "kind_headers",
    [
        pytest.param([("Origin", "http://api.localhost:8000")], id="same-origin"),
        pytest.param([("Origin", APP), ("Sec-Fetch-Mode", "navigate")], id="navigation"),
        pytest.param([("Origin", APP), ("Upgrade", "websocket")], id="websocket"),
        pytest.param([("Origin", APP), ("Sec-Fetch-Mode", "no-cors")], id="no-cors"),
    ],
)
def test_not_cors_is_never_blocked(kind_headers: list[tuple[str, str]]) -> None:
    """A request CORS does not apply to is allowed even when the response has no CORS headers at all."""
    v = evaluate(request("POST", kind_headers), response(200))
    assert v.outcome.verdict == "allowed"
    assert v.outcome.reason is None


# --------------------------------------------------------------------------------------------------
# CORS check on actual responses (Fetch "CORS check"; Chromium cors::CheckAccess; Firefox CheckRequestApproved)

ACTUAL_CASES = [
    # (request headers, response header lines, chromium reason, firefox reason)
    pytest.param(CORS, [(ACAO, "*")], None, None, id="wildcard without credentials"),
    pytest.param(CORS, [(ACAO, APP)], None, None, id="exact origin"),
    pytest.param(CORS, [(ACAO, f"  {APP} ")], None, None, id="surrounding whitespace is trimmed"),
    pytest.param(CORS, [], Reason.MissingAllowOriginHeader, FirefoxReason.CORSMissingAllowOrigin, id="missing ACAO"),
    pytest.param(
        CORS,
        [(ACAO, "http://other.localhost:5173")],
        Reason.AllowOriginMismatch,
        FirefoxReason.CORSAllowOriginNotMatchingOrigin,
        id="other origin",
    ),
    pytest.param(
        CORS,
        [(ACAO, APP + "/")],
        Reason.AllowOriginMismatch,
        FirefoxReason.CORSAllowOriginNotMatchingOrigin,
        id="trailing slash",
    ),
    pytest.param(
        CORS,
        [(ACAO, APP.upper())],
        Reason.AllowOriginMismatch,
        FirefoxReason.CORSAllowOriginNotMatchingOrigin,
        id="upper case",
    ),
    pytest.param(
        CORS,
        [(ACAO, "null")],
        Reason.AllowOriginMismatch,
        FirefoxReason.CORSAllowOriginNotMatchingOrigin,
        id="null for a normal origin",
    ),
    pytest.param(
        CORS,
        [(ACAO, "app.localhost")],
        Reason.InvalidAllowOriginValue,
        FirefoxReason.CORSAllowOriginNotMatchingOrigin,
        id="not a URL",
    ),
    pytest.param(
        CORS,
        [(ACAO, f"{APP}, http://b.test")],
        Reason.MultipleAllowOriginValues,
        FirefoxReason.CORSAllowOriginNotMatchingOrigin,
        id="two values on one line",
    ),
    pytest.param(
        CORS,
        [(ACAO, APP), (ACAO, APP)],
        Reason.MultipleAllowOriginValues,
        FirefoxReason.CORSMultipleAllowOriginNotAllowed,
        id="two identical lines",
    ),
    pytest.param(
        CORS,
        [(ACAO, f"*, {APP}")],
        Reason.MultipleAllowOriginValues,
        FirefoxReason.CORSAllowOriginNotMatchingOrigin,
        id="star and origin",
    ),
    pytest.param(
        [*CORS, COOKIE],
        [(ACAO, "*")],
        Reason.WildcardOriginNotAllowed,
        FirefoxReason.CORSNotSupportingCredentials,
        id="wildcard with a cookie",
    ),
    pytest.param(
        [*CORS, COOKIE],
        [(ACAO, "*"), (ACAC, "true")],
        Reason.WildcardOriginNotAllowed,
        FirefoxReason.CORSNotSupportingCredentials,
        id="wildcard with credentials even with ACAC true",
    ),
    pytest.param(
        [*CORS, COOKIE],
        [(ACAO, APP)],
        Reason.InvalidAllowCredentials,
        FirefoxReason.CORSMissingAllowCredentials,
        id="credentials without ACAC",
    ),
    pytest.param(
        [*CORS, COOKIE],
        [(ACAO, APP), (ACAC, "True")],
        Reason.InvalidAllowCredentials,
        FirefoxReason.CORSMissingAllowCredentials,
        id="ACAC True is not true",
    ),
    pytest.param(
        [*CORS, COOKIE],
        [(ACAO, APP), (ACAC, "true"), (ACAC, "true")],
        Reason.InvalidAllowCredentials,
        FirefoxReason.CORSMissingAllowCredentials,
        id="ACAC on two lines",
    ),
    pytest.param([*CORS, COOKIE], [(ACAO, APP), (ACAC, "true")], None, None, id="credentials allowed"),
    pytest.param(
        [("Origin", "null"), ("Sec-Fetch-Mode", "cors")],
        [(ACAO, "null")],
        None,
        None,
        id="null origin matched by ACAO null",
    ),
    pytest.param(
        [("Origin", "null"), ("Sec-Fetch-Mode", "cors")],
        [(ACAO, "*")],
        None,
        None,
        id="null origin matched by wildcard",
    ),
    pytest.param(
        [("Origin", "null"), ("Sec-Fetch-Mode", "cors")],
        [(ACAO, APP)],
        Reason.AllowOriginMismatch,
        FirefoxReason.CORSAllowOriginNotMatchingOrigin,
        id="null origin after redirect, exact ACAO",
    ),
]


@pytest.mark.parametrize(("req_headers", "resp_lines", "reason", "firefox"), ACTUAL_CASES)
def test_actual_response(
    req_headers: list[tuple[str, str]],
    resp_lines: list[tuple[str, str]],
    reason: Reason | None,
    firefox: FirefoxReason | None,
) -> None:
    """The CORS check gives Chromium's reason and Firefox's key for every failure it can see on the wire."""
    v = evaluate(request("GET", req_headers), response(200, *resp_lines))
    assert v.kind is Kind.ACTUAL
    assert (v.outcome.reason, v.outcome.firefox_reason) == (reason, firefox)
    assert v.outcome.verdict == ("allowed" if reason is None else "blocked")


@pytest.mark.parametrize(
    ("lines", "allowed"),
    [
        pytest.param([], True, id="304 without ACAO: the cached copy decides"),
        pytest.param([(ACAO, "http://other.test")], False, id="304 that sends a wrong ACAO"),
    ],
)
def test_not_modified(lines: list[tuple[str, str]], allowed: bool) -> None:
    """A revalidation 304 is judged by the browser's cached copy unless it carries its own Allow-Origin."""
    assert evaluate(request(), response(304, *lines)).outcome.allowed is allowed


def test_error_status_with_cors_headers_is_allowed() -> None:
    """A 500 that carries CORS headers reaches the page: status is not part of the CORS check."""
    assert evaluate(request(), response(500, (ACAO, "*"))).outcome.allowed


@pytest.mark.parametrize(
    ("resp_lines", "if_reason"),
    [
        pytest.param([(ACAO, "*")], Reason.WildcardOriginNotAllowed, id="wildcard"),
        pytest.param([(ACAO, APP)], Reason.InvalidAllowCredentials, id="no ACAC"),
        pytest.param([(ACAO, APP), (ACAC, "true")], None, id="credentials-ready response"),
    ],
)
def test_unknown_credentials_gives_the_include_outcome(
    resp_lines: list[tuple[str, str]], if_reason: Reason | None
) -> None:
    """Without a Cookie the mode is unknown, and `if_credentials` tells what `include` would change."""
    v = evaluate(request(), response(200, *resp_lines))
    assert v.credentials.value == "unknown"
    assert v.outcome.allowed
    if if_reason is None:
        assert v.if_credentials is None
    else:
        assert v.if_credentials is not None
        assert v.if_credentials.reason is if_reason


def test_cookie_proves_include() -> None:
    """A Cookie on the wire means credentials mode include, and no alternative outcome is given."""
    v = evaluate(request("GET", [*CORS, COOKIE]), response(200, (ACAO, APP), (ACAC, "true")))
    assert v.credentials.value == "include"
    assert v.if_credentials is None


def test_message_names_the_fix() -> None:
    """The one-line message names the header and the value that would make the request pass."""
    msg = evaluate(request(), response(200)).outcome.message
    assert "\n" not in msg
    assert f"Access-Control-Allow-Origin: {APP}" in msg


# --------------------------------------------------------------------------------------------------
# Redirects ([F] HTTP-redirect fetch)


@pytest.mark.parametrize(
    ("resp_lines", "reason"),
    [
        pytest.param([(ACAO, "*"), ("Location", "http://b.localhost/x")], None, id="redirect with ACAO"),
        pytest.param(
            [("Location", "http://b.localhost/x")], Reason.MissingAllowOriginHeader, id="redirect without ACAO"
        ),
        pytest.param(
            [(ACAO, "*"), ("Location", "http://user:pw@b.localhost/x")],
            Reason.RedirectContainsCredentials,
            id="redirect to a URL with credentials",
        ),
        pytest.param(
            [(ACAO, "*"), ("Location", "ftp://b.localhost/x")], Reason.CorsDisabledScheme, id="redirect to non-HTTP"
        ),
        pytest.param([(ACAO, "*"), ("Location", "/relative:path")], None, id="relative Location with a colon"),
        # Issue 7.3: the URL standard's "includes credentials" is a non-empty username or password.
        pytest.param([(ACAO, "*"), ("Location", "http://@b.localhost/x")], None, id="empty userinfo"),
        pytest.param([(ACAO, "*"), ("Location", "http://:@b.localhost/x")], None, id="empty user and password"),
        pytest.param(
            [(ACAO, "*"), ("Location", "http://:pw@b.localhost/x")],
            Reason.RedirectContainsCredentials,
            id="password only",
        ),
        pytest.param(
            [(ACAO, "*"), ("Location", "//u@b.localhost/x")],
            Reason.RedirectContainsCredentials,
            id="scheme-relative Location with a username",
        ),
    ],
)
def test_redirect_response_is_cors_checked(resp_lines: list[tuple[str, str]], reason: Reason | None) -> None:
    """Every redirect response in a CORS chain must pass the CORS check itself."""
    v = evaluate(request(), response(302, *resp_lines))
    assert v.outcome.reason is reason


@pytest.mark.parametrize(
    ("resp_lines", "firefox"),
    [
        pytest.param([], FirefoxReason.CORSMissingAllowOrigin, id="no Allow-Origin"),
        pytest.param([(ACAO, APP), (ACAO, APP)], FirefoxReason.CORSMultipleAllowOriginNotAllowed, id="two lines"),
        pytest.param([(ACAO, "http://other.test")], FirefoxReason.CORSAllowOriginNotMatchingOrigin, id="mismatch"),
        pytest.param([(ACAO, APP)], FirefoxReason.CORSExternalRedirectNotAllowed, id="matching Allow-Origin"),
        pytest.param([(ACAO, "*")], FirefoxReason.CORSExternalRedirectNotAllowed, id="wildcard"),
    ],
)
def test_redirected_preflight(resp_lines: list[tuple[str, str]], firefox: FirefoxReason) -> None:
    """Chromium refuses a preflight's redirect first; Firefox runs its CORS check on the redirect first (#7.6)."""
    v = evaluate(preflight(), response(307, ("Location", "http://b.localhost/x"), *resp_lines))
    assert (v.outcome.reason, v.outcome.firefox_reason) == (Reason.PreflightDisallowedRedirect, firefox)


@pytest.mark.parametrize(
    ("stored_lines", "not_modified_lines", "reason"),
    [
        pytest.param([("ETag", '"1"')], [("ETag", '"1"')], Reason.MissingAllowOriginHeader, id="blocked stays blocked"),
        pytest.param([(ACAO, APP), ("ETag", '"1"')], [("ETag", '"1"')], None, id="allowed stays allowed"),
        pytest.param([("ETag", '"1"')], [(ACAO, APP)], None, id="the 304 brings Allow-Origin"),
        pytest.param([(ACAO, APP)], [(ACAO, "http://other.test")], Reason.AllowOriginMismatch, id="the 304's wins"),
    ],
)
def test_304_is_judged_with_the_stored_response_it_refreshes(
    stored_lines: list[tuple[str, str]], not_modified_lines: list[tuple[str, str]], reason: Reason | None
) -> None:
    """A revalidation's 304 updates the cached response's headers; the CORS check runs on the result (#7.7)."""
    v = evaluate(request(), response(304, *not_modified_lines), stored=response(200, *stored_lines))
    assert v.outcome.reason is reason


def test_304_without_a_known_stored_response_is_allowed() -> None:
    """Without the cached copy there is nothing to judge a bare 304 by."""
    assert evaluate(request(), response(304)).outcome.allowed


# Responses a browser's HTTP parser refuses before CORS, measured through mitmproxy (#7.4).
@pytest.mark.parametrize(
    ("req", "resp", "expected"),
    [
        pytest.param(
            request(),
            Response(200, PlainHeaders([(ACAO, "*"), ("X-A", "a\x00b")])),
            (False, None, FirefoxReason.CORSDidNotSucceed),
            id="NUL in a header value: both browsers fail the request",
        ),
        pytest.param(
            preflight(),
            Response(204, PlainHeaders([(ACAO, APP), (ACAM, "PUT"), ("X-A", "\x00")])),
            (False, Reason.InvalidResponse, FirefoxReason.CORSDidNotSucceed),
            id="NUL in a preflight response's header value",
        ),
        pytest.param(
            request(),
            Response(200, PlainHeaders([(ACAO, "*")]), "O\x00K"),
            (False, None, None),
            id="NUL in the reason phrase: Chromium fails it, Firefox reads it",
        ),
        pytest.param(
            request(),
            Response(1000, PlainHeaders([(ACAO, "*")])),
            (True, None, FirefoxReason.CORSDidNotSucceed),
            id="status 1000: Chromium reads it, Firefox fails it",
        ),
        pytest.param(
            request(),
            Response(200, PlainHeaders([(ACAO, "*"), ("X-A", "a\x01\x7f\xffb")])),
            (True, None, None),
            id="other control bytes are read",
        ),
        pytest.param(request(), Response(99, PlainHeaders([(ACAO, "*")])), (True, None, None), id="status 99 is read"),
    ],
)
def test_responses_rejected_before_cors(
    req: Request, resp: Response, expected: tuple[bool, Reason | None, FirefoxReason | None]
) -> None:
    """What the browsers' HTTP parsers refuse is a network error with no CORS reason, per browser."""
    o = evaluate(req, resp).outcome
    assert (o.allowed, o.reason, o.firefox_reason) == expected


def test_redirect_credentials_are_not_echoed() -> None:
    """The password in a redirect Location never reaches the message."""
    v = evaluate(request(), response(302, (ACAO, "*"), ("Location", "http://user:hunter2@b.localhost/x")))
    assert "hunter2" not in v.outcome.message


# --------------------------------------------------------------------------------------------------
# Preflights ([F] CORS-preflight fetch; Chromium PreflightController + PreflightResult)

PREFLIGHT_OK = [(ACAO, APP), (ACAM, "PUT, DELETE"), (ACAH, "x-api-key, content-type")]

PREFLIGHT_CASES = [
    # (requested method, ACRH, status, response lines, chromium reason, firefox reason)
    pytest.param("PUT", "content-type,x-api-key", 204, PREFLIGHT_OK, None, None, id="method and headers listed"),
    pytest.param("PUT", None, 200, [(ACAO, "*"), (ACAM, "*")], None, None, id="wildcards without credentials"),
    pytest.param(
        "PUT",
        None,
        404,
        [],
        Reason.PreflightMissingAllowOriginHeader,
        FirefoxReason.CORSMissingAllowOrigin,
        id="404 without ACAO reports the missing header first",
    ),
    pytest.param(
        "PUT",
        None,
        404,
        [(ACAO, APP), (ACAM, "PUT")],
        Reason.PreflightInvalidStatus,
        FirefoxReason.CORSPreflightDidNotSucceed,
        id="404 with ACAO",
    ),
    pytest.param(
        "PUT",
        None,
        500,
        [(ACAO, "*"), (ACAM, "PUT")],
        Reason.PreflightInvalidStatus,
        FirefoxReason.CORSPreflightDidNotSucceed,
        id="500 with ACAO",
    ),
    pytest.param(
        "PUT",
        None,
        301,
        [(ACAO, "*"), ("Location", "/elsewhere")],
        Reason.PreflightDisallowedRedirect,
        FirefoxReason.CORSExternalRedirectNotAllowed,
        id="redirect",
    ),
    pytest.param(
        "PUT",
        None,
        200,
        [(ACAO, "http://x.test")],
        Reason.PreflightAllowOriginMismatch,
        FirefoxReason.CORSAllowOriginNotMatchingOrigin,
        id="wrong origin",
    ),
    pytest.param(
        "PUT",
        None,
        200,
        [(ACAO, APP), (ACAO, APP), (ACAM, "PUT")],
        Reason.PreflightMultipleAllowOriginValues,
        FirefoxReason.CORSMultipleAllowOriginNotAllowed,
        id="two ACAO lines",
    ),
    pytest.param(
        "PUT",
        None,
        200,
        [(ACAO, "x")],
        Reason.PreflightInvalidAllowOriginValue,
        FirefoxReason.CORSAllowOriginNotMatchingOrigin,
        id="invalid origin value",
    ),
    pytest.param(
        "PUT",
        None,
        200,
        [(ACAO, APP)],
        Reason.MethodDisallowedByPreflightResponse,
        FirefoxReason.CORSMethodNotFound,
        id="no Allow-Methods",
    ),
    pytest.param(
        "PUT",
        None,
        200,
        [(ACAO, APP), (ACAM, "put")],
        Reason.MethodDisallowedByPreflightResponse,
        FirefoxReason.CORSMethodNotFound,
        id="methods compare case-sensitively",
    ),
    pytest.param(
        "patch",
        None,
        200,
        [(ACAO, APP), (ACAM, "PATCH")],
        Reason.MethodDisallowedByPreflightResponse,
        FirefoxReason.CORSMethodNotFound,
        id="lowercase patch is not normalised",
    ),
    pytest.param("PUT", None, 200, [(ACAO, APP), (ACAM, " GET ,  PUT ")], None, None, id="whitespace in list"),
    pytest.param(
        "PUT",
        None,
        200,
        [(ACAO, APP), (ACAM, "PUT DELETE")],
        Reason.InvalidAllowMethodsPreflightResponse,
        FirefoxReason.CORSInvalidAllowMethod,
        id="space-separated methods do not parse",
    ),
    pytest.param(
        "PUT",
        "x-a",
        200,
        [(ACAO, APP), (ACAM, "PUT"), (ACAH, "x-a/b")],
        Reason.InvalidAllowHeadersPreflightResponse,
        FirefoxReason.CORSInvalidAllowHeader,
        id="non-token header name",
    ),
    pytest.param(
        "PUT",
        "x-a,x-b",
        200,
        [(ACAO, APP), (ACAM, "PUT"), (ACAH, "x-a")],
        Reason.HeaderDisallowedByPreflightResponse,
        FirefoxReason.CORSMissingAllowHeaderFromPreflight,
        id="header not listed",
    ),
    pytest.param(
        "PUT",
        "x-a,x-req",
        200,
        [(ACAO, APP), (ACAM, "PUT"), (ACAH, "X-A,,x-req")],
        None,
        None,
        id="header names case-insensitive and empty items skipped",
    ),
    pytest.param(
        "POST",
        "content-type",
        200,
        [(ACAO, APP), (ACAH, "content-type")],
        None,
        None,
        id="safelisted method needs no Allow-Methods",
    ),
    pytest.param(
        "PUT",
        "authorization,x-a",
        200,
        [(ACAO, APP), (ACAM, "PUT"), (ACAH, "*")],
        None,
        None,
        id="Authorization under a wildcard (measured allowed)",
    ),
]


@pytest.mark.parametrize(("method", "acrh", "status", "lines", "reason", "firefox"), PREFLIGHT_CASES)
def test_preflight(
    method: str,
    acrh: str | None,
    status: int,
    lines: list[tuple[str, str]],
    reason: Reason | None,
    firefox: FirefoxReason | None,
) -> None:
    """The preflight check gives Chromium's reason in Chromium's order, and Firefox's key in Firefox's."""
    v = evaluate(preflight(method, acrh), response(status, *lines))
    assert v.kind is Kind.PREFLIGHT
    assert (v.outcome.reason, v.outcome.firefox_reason) == (reason, firefox)


@pytest.mark.parametrize(
    ("lines", "if_reason"),
    [
        pytest.param([(ACAO, "*"), (ACAM, "PUT")], Reason.PreflightWildcardOriginNotAllowed, id="wildcard origin"),
        pytest.param([(ACAO, APP), (ACAM, "PUT")], Reason.PreflightInvalidAllowCredentials, id="no ACAC"),
        pytest.param(
            [(ACAO, APP), (ACAC, "true"), (ACAM, "*")],
            Reason.MethodDisallowedByPreflightResponse,
            id="star method is literal with credentials",
        ),
    ],
)
def test_preflight_if_credentials(lines: list[tuple[str, str]], if_reason: Reason) -> None:
    """Preflights carry no cookies, so the include outcome is always given when it differs."""
    v = evaluate(preflight("PUT"), response(204, *lines))
    assert v.credentials.value == "unknown"
    assert v.if_credentials is not None
    assert v.if_credentials.reason is if_reason


def test_star_header_is_literal_with_credentials() -> None:
    """Under credentials include, `Access-Control-Allow-Headers: *` does not cover x-a."""
    v = evaluate(preflight("PUT", "x-a"), response(204, (ACAO, APP), (ACAC, "true"), (ACAM, "PUT"), (ACAH, "*")))
    assert v.outcome.allowed
    assert v.if_credentials is not None
    assert v.if_credentials.reason is Reason.HeaderDisallowedByPreflightResponse


def test_failed_preflight_says_what_was_never_sent() -> None:
    """A failed preflight's message names the request the browser then did not send."""
    v = evaluate(preflight("DELETE"), response(404))
    assert "did not send the DELETE request" in v.outcome.message


@pytest.mark.parametrize(
    ("max_age", "chromium", "firefox", "warns"),
    [
        pytest.param(None, 5, 5, False, id="absent: 5 s"),
        pytest.param("60", 60, 60, False, id="60"),
        pytest.param("0", 0, 0, False, id="zero"),
        pytest.param("-1", 0, 0, False, id="negative"),
        pytest.param("abc", 5, 0, False, id="invalid"),
        pytest.param("10000", 7200, 10000, True, id="above Chromium cap"),
        pytest.param("100000", 7200, 86400, True, id="above both caps"),
    ],
)
def test_max_age(max_age: str | None, chromium: int, firefox: int, warns: bool) -> None:
    """Max-Age is parsed per browser, capped, and a value above a cap warns."""
    lines = [(ACAO, APP), (ACAM, "PUT")]
    if max_age is not None:
        lines.append(("Access-Control-Max-Age", max_age))
    v = evaluate(preflight(), response(204, *lines))
    assert v.preflight is not None
    assert (v.preflight.max_age_chromium, v.preflight.max_age_firefox) == (chromium, firefox)
    assert any("Max-Age" in w for w in v.warnings) is warns


# --------------------------------------------------------------------------------------------------
# Readability and warnings


@pytest.mark.parametrize(
    ("req_headers", "lines", "unreadable"),
    [
        pytest.param(
            CORS,
            [(ACAO, "*"), ("Content-Type", "text/plain"), ("X-Total-Count", "3")],
            ["X-Total-Count"],
            id="custom header hidden",
        ),
        pytest.param(
            CORS,
            [(ACAO, "*"), ("X-Total-Count", "3"), ("Access-Control-Expose-Headers", "x-total-count")],
            [],
            id="exposed header readable",
        ),
        pytest.param(
            CORS,
            [(ACAO, "*"), ("X-Total-Count", "3"), ("Access-Control-Expose-Headers", "*")],
            [],
            id="star exposes all without credentials",
        ),
        pytest.param(
            [*CORS, COOKIE],
            [(ACAO, APP), (ACAC, "true"), ("X-Total-Count", "3"), ("Access-Control-Expose-Headers", "*")],
            ["X-Total-Count"],
            id="star is literal with credentials",
        ),
        pytest.param(
            CORS,
            [(ACAO, "*"), ("Set-Cookie", "a=b"), ("Access-Control-Expose-Headers", "*")],
            ["Set-Cookie"],
            id="Set-Cookie never readable",
        ),
    ],
)
def test_unreadable_headers(
    req_headers: list[tuple[str, str]], lines: list[tuple[str, str]], unreadable: list[str]
) -> None:
    """Headers outside the safelist and Expose-Headers are reported as unreadable by the page's script."""
    v = evaluate(request("GET", req_headers), response(200, *lines))
    assert [h for h in v.unreadable_headers if not h.lower().startswith("access-control-")] == unreadable


@pytest.mark.parametrize(
    ("lines", "warns"),
    [
        pytest.param([(ACAO, APP)], True, id="specific origin without Vary"),
        pytest.param([(ACAO, APP), ("Vary", "Accept-Encoding, Origin")], False, id="with Vary Origin"),
        pytest.param([(ACAO, "*")], False, id="wildcard needs no Vary"),
    ],
)
def test_vary_origin_warning(lines: list[tuple[str, str]], warns: bool) -> None:
    """A per-origin Allow-Origin without `Vary: Origin` warns about shared caches."""
    v = evaluate(request(), response(200, *lines))
    assert any("Vary: Origin" in w for w in v.warnings) is warns


def test_authorization_under_wildcard_warns() -> None:
    """Authorization covered only by `Allow-Headers: *` is allowed today but warned about."""
    v = evaluate(preflight("PUT", "authorization"), response(204, (ACAO, APP), (ACAM, "PUT"), (ACAH, "*")))
    assert v.outcome.allowed
    assert any("Authorization" in w for w in v.warnings)


def test_verdict_is_frozen() -> None:
    """Verdicts are immutable values."""
    v = evaluate(request(), response(200))
    with pytest.raises(AttributeError):
        v.kind = Kind.NOT_CORS  # type: ignore[misc]


@pytest.mark.parametrize(
    ("headers", "warns"),
    [
        pytest.param([("Origin", APP), ("Content-Type", "text/plain")], True, id="simple POST without Sec-Fetch"),
        pytest.param([("Origin", APP), ("Content-Type", "application/json")], False, id="needs a preflight: CORS"),
        pytest.param([*CORS, ("Content-Type", "text/plain")], False, id="Sec-Fetch-Mode says cors"),
    ],
)
def test_possible_no_cors_post_is_flagged(headers: list[tuple[str, str]], warns: bool) -> None:
    """A blocked simple POST that could have been a no-cors request says so."""
    v = evaluate(request("POST", headers), response(200))
    assert v.blocked
    assert any("no-cors" in w for w in v.warnings) is warns


# --- what the evaluator remembers between flows --------------------------------------------------------------------

BIG = "x" * 5000


def _wire(lines: list[tuple[str, str]]) -> WireHeaders:
    return WireHeaders(tuple((name.encode(), value.encode()) for name, value in lines))


def _judge_on_the_wire(
    method: str, request_lines: list[tuple[str, str]], response_lines: list[tuple[str, str]]
) -> Verdict:
    scheme, host, port = API
    return evaluate(
        Request(method, scheme, host, port, "/v1/items", _wire(request_lines)), Response(200, _wire(response_lines))
    )


@pytest.mark.parametrize(
    ("cache", "method", "request_lines", "response_lines"),
    [
        pytest.param(
            evaluator._hidden_on_the_wire,
            "GET",
            CORS,
            [("Access-Control-Allow-Origin", "*"), (f"X-{BIG}", "1")],
            id="a huge header name",
        ),
        pytest.param(
            evaluator._access_blocked,
            "GET",
            CORS,
            [("Access-Control-Allow-Origin", f"https://{BIG}.example")],
            id="a huge Allow-Origin value",
        ),
        pytest.param(
            evaluator._parse_allow_list,
            "OPTIONS",
            [("Origin", APP), ("Access-Control-Request-Method", "PUT")],
            [("Access-Control-Allow-Origin", APP), ("Access-Control-Allow-Methods", f"PUT, {BIG}")],
            id="a huge Allow-Methods list",
        ),
    ],
)
def test_a_huge_value_is_judged_but_not_remembered(
    cache: Any, method: str, request_lines: list[tuple[str, str]], response_lines: list[tuple[str, str]]
) -> None:
    """A server sends the same names, values and lists again and again, so the evaluator remembers what it read of
    them; a hostile one could fill that memory with huge ones, so those are judged afresh every time."""
    cache.cache_clear()
    small = [(n.replace(BIG, "x"), v.replace(BIG, "x")) for n, v in response_lines]
    other = [(n.replace(BIG, "y"), v.replace(BIG, "y")) for n, v in response_lines]
    verdict = _judge_on_the_wire(method, request_lines, small).outcome.verdict
    remembered = cache.cache_info().currsize
    _judge_on_the_wire(method, request_lines, other)
    assert cache.cache_info().currsize == remembered + 1  # a small new value is remembered
    assert _judge_on_the_wire(method, request_lines, response_lines).outcome.verdict == verdict
    assert cache.cache_info().currsize == remembered + 1  # the huge one is not


# --- the header index the addon reads mitmproxy's raw fields through ------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        pytest.param(((b"Origin", b"https://app.example"),), "origin", id="one line, asked in lowercase"),
        pytest.param(((b"origin", b"https://app.example"),), "Origin", id="sent in lowercase, asked capitalized"),
        pytest.param(((b"ORIGIN", b"https://app.example"),), "ORIGIN", id="sent and asked in capitals"),
        pytest.param(((b"Vary", b"Accept"),), "origin", id="absent"),
        pytest.param(((b"Vary", b"Accept"),), "Origin", id="absent, asked capitalized"),
        pytest.param(((b"Vary", b"Origin"), (b"X-A", b"1"), (b"VARY", b"Accept")), "vary", id="two lines, two casings"),
        pytest.param(((b"X-A", b"a\xffb"),), "x-a", id="not UTF-8: U+FFFD"),
        pytest.param(((b"X-A", b"\xe2\x82"), (b"x-a", b"ok")), "X-A", id="two lines, one not UTF-8"),
        pytest.param(((b"X-A", b""),), "x-a", id="an empty value"),
    ],
)
def test_wire_headers_read_like_mitmproxys_headers(fields: tuple[tuple[bytes, bytes], ...], name: str) -> None:
    """`WireHeaders` indexes `Headers.fields` once per flow; it answers what mitmproxy's `Headers` answers, except that
    bytes that are not UTF-8 become U+FFFD (mitmproxy keeps them as surrogates, which JSON cannot carry)."""
    from mitmproxy import http

    expected = [
        v.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for v in http.Headers(fields).get_all(name)
    ]
    assert WireHeaders(fields).get_all(name) == expected


_NAMES = [
    "Origin",
    "Cookie",
    "Sec-Fetch-Mode",
    "Upgrade",
    "Access-Control-Request-Method",
    "Access-Control-Request-Headers",
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Expose-Headers",
    "Access-Control-Max-Age",
    "Vary",
    "Location",
    "Content-Type",
    "ETag",
    "X-A",
]
_VALUES = [
    APP,
    "*",
    "null",
    "true",
    "PUT",
    "x-a, content-type",
    "*, x-a",
    "600",
    "Origin",
    "/next",
    "websocket",
    "cors",
]
_lines = st.lists(
    st.tuples(
        st.sampled_from(_NAMES).map(str.lower) | st.sampled_from(_NAMES) | st.text(max_size=6),
        st.sampled_from(_VALUES) | st.text(max_size=8),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "OPTIONS"]),
    status=st.sampled_from([200, 204, 302, 304, 403, 1000]),
    request_lines=_lines,
    response_lines=_lines,
)
def test_wire_headers_judge_like_plain_headers(
    method: str, status: int, request_lines: list[tuple[str, str]], response_lines: list[tuple[str, str]]
) -> None:
    """The addon's header index and its shortcuts (the NUL scan, the remembered names) change no verdict."""
    scheme, host, port = API
    plain = evaluate(
        Request(method, scheme, host, port, "/v1/items", PlainHeaders([("Origin", APP), *request_lines])),
        Response(status, PlainHeaders(response_lines)),
    )
    on_the_wire = evaluate(
        Request(method, scheme, host, port, "/v1/items", _wire([("Origin", APP), *request_lines])),
        Response(status, _wire(response_lines)),
    )
    assert on_the_wire == plain
