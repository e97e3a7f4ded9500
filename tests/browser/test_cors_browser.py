"""Chromium and Firefox are the truth: for every scenario the addon's verdict and reason must equal what Chromium
did, and its firefox_reason what Firefox did.

Each row registers backend routes under ``/s/<id>/``, loads a blank page from the row's origin in a fresh browser
context, runs the row's JS and then compares, flow by flow, Chromium's ``corsErrorStatus.corsError`` (CDP
``Network.loadingFailed``) with the addon's ``cors_report`` line (see tests/harness/chromium.py). The same row runs
in Firefox under ``/s/firefox/<id>/`` (Firefox reset in between), where the category of Firefox's CORS console
message is compared with ``firefox_reason`` (tests/harness/firefox.py). Expected reasons are never written here:
they come from the browsers. Every row is recorded in the corpora (tests/corpus).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from tests.harness import firefox
from tests.harness.backend import Answer, Responder, Route, Seen
from tests.harness.browser import PAGE_HTML, PNG_1PX, SECRET_VALUES, Env, Result, Scenario, run, slug
from tests.harness.chromium import assert_matches

pytestmark = pytest.mark.browser

# Origins. *.localhost is a secure context and gets Sec-Fetch-*; app.localhost -> api.localhost is cross-site.
APP = "http://app.localhost"
API = "http://api.localhost"
API2 = "http://api2.localhost"
# Credentialed rows: a same-site https pair, because Chromium blocks third-party cookies in fresh contexts
# (app.localhost -> api.localhost is cross-site; the cookie is dropped with blockedReasons ['UserPreferences']).
SAPP = "https://app.example.test"
SAPI = "https://api.example.test"
# Plain http, not localhost: not potentially trustworthy, so no Sec-Fetch-* headers reach the server.
TAPP = "http://app.example.test"
TAPI = "http://api.example.test"
# harness_addon resolves down.* to a port nobody listens on: the server is down.
DOWN = "http://down.localhost"

Headers = list[tuple[str, str]]


def acao(value: str) -> Headers:
    return [("Access-Control-Allow-Origin", value)]


def acac(value: str = "true") -> Headers:
    return [("Access-Control-Allow-Credentials", value)]


def acam(value: str) -> Headers:
    return [("Access-Control-Allow-Methods", value)]


def acah(value: str) -> Headers:
    return [("Access-Control-Allow-Headers", value)]


def max_age(value: str) -> Headers:
    return [("Access-Control-Max-Age", value)]


def expose(value: str) -> Headers:
    return [("Access-Control-Expose-Headers", value)]


def location(url: str) -> Headers:
    """A Location header; ``{P}`` in it becomes the scenario's path prefix."""
    return [("Location", url)]


def header(name: str, value: str) -> Headers:
    return [(name, value)]


def answer(headers: Sequence[tuple[str, str]] = (), status: int = 200, **kw: Any) -> Route:
    """The same answer for every method; ``kw`` as for Answer (``body``, ``content_type``)."""
    return Route({"*": Answer(status, list(headers), **kw)})


def preflighted(options: Headers, actual: Headers, options_status: int = 204, actual_status: int = 200) -> Route:
    """OPTIONS gets ``options``; every other method gets ``actual``."""
    return Route(
        {
            "OPTIONS": Answer(options_status, list(options), b""),
            "*": Answer(actual_status, list(actual)),
        }
    )


def fetch(base: str, path: str = "/r", init: Mapping[str, Any] | None = None, read: Sequence[str] = ()) -> str:
    return f'await F("{base}" + P + "{path}", {json.dumps(dict(init or {}))}, {json.dumps(list(read))})'


def xhr(
    method: str,
    base: str,
    path: str = "/r",
    credentials: bool = False,
    headers: Mapping[str, str] | None = None,
    read: Sequence[str] = (),
) -> str:
    opts = {"withCredentials": credentials, "headers": dict(headers or {}), "read": list(read)}
    return f'await X("{method}", "{base}" + P + "{path}", {json.dumps(opts)})'


def img(base: str, path: str = "/r", cross_origin: str | None = None) -> str:
    arg = "" if cross_origin is None else f", {json.dumps(cross_origin)}"
    return f'await IMG("{base}" + P + "{path}"{arg})'


def module(base: str, path: str = "/r") -> str:
    return f'await MOD("{base}" + P + "{path}")'


def websocket(base: str, path: str = "/r") -> str:
    return f'await WS("{base.replace("http", "ws", 1)}" + P + "{path}")'


def form(base: str, path: str = "/r") -> str:
    return f'FORM("{base}" + P + "{path}", {{"q": "1"}})'


def after_ms(ms: int, step: str) -> str:
    """`step`, run `ms` milliseconds after the one before it (one outcome, as `step` alone)."""
    return f"(await new Promise((done) => setTimeout(done, {ms})), {step})"


def js(*steps: str) -> str:
    """Run the steps one after the other; the page returns the list of their outcomes."""
    return "return [" + ", ".join(steps) + "];"


# --- extra checks, on top of the generic Chromium-vs-addon comparison ------------------------------------


def wire_count(method: str, path: str, count: int) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        seen = len(r.wire_for(method, path))
        assert seen == count, f"expected {count} {method} {path} on the wire, the server saw {seen}"

    return check


def wire_origin(method: str, path: str, origin: str) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        got = [w.header("origin") for w in r.wire_for(method, path)]
        assert got and all(o == origin for o in got), f"{method} {path}: Origin on the wire {got}, want {origin!r}"

    return check


def cookie_on_wire(method: str, path: str, sent: bool) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        got = [w.header("cookie") for w in r.wire_for(method, path)]
        assert got, f"{method} {path} never reached the server"
        assert all(bool(c) == sent for c in got), f"{method} {path}: Cookie on the wire {got}, want sent={sent}"

    return check


def js_outcome(index: int, ok: bool, status: int | None = None) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        out = r.js[index]
        assert out["ok"] == ok, f"page JS outcome {out}, want ok={ok}"
        if status is not None:
            assert out.get("status") == status, f"page JS outcome {out}, want status {status}"

    return check


def readable(name: str, is_readable: bool, path: str = "/r") -> Callable[[Result], None]:
    """The page could (not) read header ``name``; the addon lists it in unreadable_headers iff not."""

    def check(r: Result) -> None:
        value = r.js[0]["headers"][name.lower()]
        assert r.js[0]["ok"], f"request failed: {r.js[0]}"
        assert (value is not None) == is_readable, f"page JS read {name}={value!r}, want readable={is_readable}"
        lines = [ln for ln in r.lines_for("GET", path)]
        assert lines, f"no report line for GET {path}"
        listed = [h.lower() for h in (lines[-1].get("unreadable_headers") or [])]
        assert (name.lower() in listed) == (not is_readable), (
            f"addon unreadable_headers={lines[-1].get('unreadable_headers')!r}; page read {name}={value!r}"
        )

    return check


def warns(word: str) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        warnings = [w for ln in r.lines for w in (ln.get("warnings") or [])]
        assert any(word.lower() in str(w).lower() for w in warnings), f"no warning mentioning {word!r}: {warnings}"

    return check


def firefox_warned(category: str) -> Callable[[Result], None]:
    """Firefox logged the console warning ``category`` (a warning, not a reason the request failed)."""

    def check(r: Result) -> None:
        logged = [m.category for m in getattr(r, "messages", []) if m.warning]
        assert category in logged, f"Firefox did not warn {category}: {logged}"

    return check


def revalidation(path: str = "/r", revalidated: bool = True) -> Callable[[Result], None]:
    """The second GET revalidated the first (If-None-Match on the wire, and its line names the first flow in
    ``revalidates``), or with ``revalidated=False`` fetched it again in full."""

    def check(r: Result) -> None:
        sent = [w.header("if-none-match") for w in r.wire_for("GET", path)]
        want = [None, ETAG if revalidated else None]
        assert sent == want, f"GET {path}: If-None-Match on the wire {sent}, want {want}"
        first, second = r.lines_for("GET", path)
        got, want_id = second.get("revalidates"), first["flow_id"] if revalidated else None
        assert got == want_id, f"the second GET's line says revalidates={got!r}, want {want_id!r}"

    return check


def all_of(*checks: Callable[[Result], None]) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        errors = []
        for c in checks:
            try:
                c(r)
            except AssertionError as e:
                errors.append(str(e))
        assert not errors, "; ".join(errors)

    return check


class StatusLine(int):
    """A status code written with its own reason phrase: the backend writes ``HTTP/1.1 {status} {phrase}``, so
    this status formats as ``<code> <reason>`` (and the backend's phrase follows it)."""

    reason: str

    def __new__(cls, code: int, reason: str) -> StatusLine:
        status = super().__new__(cls, code)
        status.reason = reason
        return status

    def __format__(self, spec: str) -> str:
        return f"{int(self)} {self.reason}"


ETAG = '"v1"'


def revalidated_by_bare_304(headers: Headers) -> Responder:
    """A 200 with ``headers`` and an ETag, stored but revalidated on every use (``no-cache``); a request carrying
    its ETag in If-None-Match gets a 304 with no CORS header."""

    def respond(seen: Seen) -> Answer:
        if seen.header("if-none-match") == ETAG:
            return Answer(304, [("ETag", ETAG)], b"")
        return Answer(200, [*headers, ("ETag", ETAG), ("Cache-Control", "no-cache")])

    return respond


def row(id: str, **kw: Any) -> Any:
    kw.setdefault("page", APP + "/")
    return pytest.param(Scenario(**kw), id=id)


R = "/r"
JSON_POST = {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": "{}"}
SET_COOKIE = [("Set-Cookie", f"sid={SECRET_VALUES[0]}; Path=/; Secure; SameSite=None")]
AUTH = {"Authorization": f"Bearer {SECRET_VALUES[1]}"}
PNG: dict[str, Any] = {"content_type": "image/png", "body": PNG_1PX}
JS_MODULE: dict[str, Any] = {"content_type": "text/javascript", "body": b"export default 1;"}
HTML: dict[str, Any] = {"content_type": "text/html; charset=utf-8", "body": PAGE_HTML}

SCENARIOS = [
    # --- simple GET: the CORS check on Access-Control-Allow-Origin ---------------------------------------
    row("get acao star", routes={R: answer(acao("*"))}, js=js(fetch(API))),
    row("get acao exact origin", routes={R: answer(acao(APP))}, js=js(fetch(API)), check=warns("vary")),
    row("get acao exact origin with vary", routes={R: answer(acao(APP) + header("Vary", "Origin"))}, js=js(fetch(API))),
    row("get acao missing", routes={R: answer()}, js=js(fetch(API))),
    row("get acao other origin", routes={R: answer(acao("http://other.localhost"))}, js=js(fetch(API))),
    row("get acao trailing slash", routes={R: answer(acao(APP + "/"))}, js=js(fetch(API))),
    row("get acao upper-case host", routes={R: answer(acao("http://APP.localhost"))}, js=js(fetch(API))),
    row("get acao explicit default port", routes={R: answer(acao("http://app.localhost:80"))}, js=js(fetch(API))),
    row("get acao null", routes={R: answer(acao("null"))}, js=js(fetch(API))),
    row("get acao invalid value example.com", routes={R: answer(acao("example.com"))}, js=js(fetch(API))),
    row("get acao two lines", routes={R: answer(acao(APP) + acao(APP))}, js=js(fetch(API))),
    row(
        "get acao two values on one line", routes={R: answer(acao(f"{APP}, http://other.localhost"))}, js=js(fetch(API))
    ),
    row("get acao star and origin", routes={R: answer(acao(f"*, {APP}"))}, js=js(fetch(API))),
    row("get acao surrounding spaces", routes={R: answer(acao(f"   {APP}   "))}, js=js(fetch(API))),
    row("get 500 without acao", routes={R: answer(status=500)}, js=js(fetch(API))),
    row(
        "get 404 with acao star",
        routes={R: answer(acao("*"), status=404)},
        js=js(fetch(API)),
        check=js_outcome(0, ok=True, status=404),
    ),
    # --- simple POST: no preflight ---------------------------------------------------------------------
    row(
        "post text/plain simple allowed",
        routes={R: answer(acao("*"))},
        js=js(fetch(API, init={"method": "POST", "headers": {"Content-Type": "text/plain"}, "body": "x"})),
        check=wire_count("OPTIONS", R, 0),
    ),
    row(
        "post form-urlencoded simple missing acao",
        routes={R: answer()},
        js=js(
            fetch(
                API,
                init={
                    "method": "POST",
                    "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                    "body": "a=1",
                },
            )
        ),
        check=wire_count("OPTIONS", R, 0),
    ),
    # --- preflighted requests -----------------------------------------------------------------------------
    row(
        "post json preflight allowed",
        routes={R: preflighted(acao("*") + acah("content-type"), acao("*"))},
        js=js(fetch(API, init=JSON_POST)),
    ),
    row(
        "post json preflight without allow-headers",
        routes={R: preflighted(acao("*"), acao("*"))},
        js=js(fetch(API, init=JSON_POST)),
    ),
    row(
        "put allowed",
        routes={R: preflighted(acao(APP) + acam("PUT"), acao(APP))},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "put not in allow-methods",
        routes={R: preflighted(acao(APP) + acam("GET, POST"), acao(APP))},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "put vs lower-case put in allow-methods",
        routes={R: preflighted(acao("*") + acam("put"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "delete allowed",
        routes={R: preflighted(acao("*") + acam("DELETE"), acao("*"))},
        js=js(fetch(API, init={"method": "DELETE"})),
    ),
    row(
        "delete under allow-methods star",
        routes={R: preflighted(acao("*") + acam("*"), acao("*"))},
        js=js(fetch(API, init={"method": "DELETE"})),
    ),
    row(
        "PATCH vs PATCH allowed",
        routes={R: preflighted(acao("*") + acam("PATCH"), acao("*"))},
        js=js(fetch(API, init={"method": "PATCH"})),
    ),
    row(
        "patch lower-case vs PATCH blocked",
        routes={R: preflighted(acao("*") + acam("PATCH"), acao("*"))},
        js=js(fetch(API, init={"method": "patch"})),
    ),
    row(
        "patch lower-case vs patch allowed",
        routes={R: preflighted(acao("*") + acam("patch"), acao("*"))},
        js=js(fetch(API, init={"method": "patch"})),
    ),
    row(
        "allow-methods with odd spacing",
        routes={R: preflighted(acao("*") + acam(" GET ,  PUT "), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "custom header allowed",
        routes={R: preflighted(acao("*") + acah("x-req"), acao("*"))},
        js=js(fetch(API, init={"headers": {"X-Req": "1"}})),
    ),
    row(
        "custom header allowed case-insensitively",
        routes={R: preflighted(acao("*") + acah("X-REQ"), acao("*"))},
        js=js(fetch(API, init={"headers": {"X-Req": "1"}})),
    ),
    row(
        "custom header not listed",
        routes={R: preflighted(acao("*") + acah("x-other"), acao("*"))},
        js=js(fetch(API, init={"headers": {"X-Req": "1"}})),
    ),
    row(
        "custom header without allow-headers",
        routes={R: preflighted(acao("*") + acam("GET"), acao("*"))},
        js=js(fetch(API, init={"headers": {"X-Req": "1"}})),
    ),
    row(
        "allow-headers with empty items",
        routes={R: preflighted(acao("*") + acah("x-a,,x-req"), acao("*"))},
        js=js(fetch(API, init={"headers": {"X-Req": "1"}})),
    ),
    row(
        "allow-headers star covers custom header",
        routes={R: preflighted(acao("*") + acah("*"), acao("*"))},
        js=js(fetch(API, init={"headers": {"X-Req": "1", "X-Other": "2"}})),
    ),
    row(
        "authorization under allow-headers star",
        routes={R: preflighted(acao("*") + acah("*"), acao("*"))},
        js=js(fetch(API, init={"headers": AUTH})),
        check=warns("authorization"),
        firefox_check=all_of(warns("authorization"), firefox_warned("CORSAllowHeaderFromPreflightDeprecation")),
    ),
    row(
        "authorization listed in allow-headers",
        routes={R: preflighted(acao("*") + acah("Authorization"), acao("*"))},
        js=js(fetch(API, init={"headers": AUTH})),
    ),
    row(
        "preflight 404 without acao",
        routes={R: preflighted([], acao("*"), options_status=404)},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "preflight 404 with acao",
        routes={R: preflighted(acao("*") + acam("PUT"), acao("*"), options_status=404)},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "preflight 500 with acao",
        routes={R: preflighted(acao(APP) + acam("PUT"), acao(APP), options_status=500)},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "preflight 500 without acao",
        routes={R: preflighted([], acao("*"), options_status=500)},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "preflight 204 without acao",
        routes={R: preflighted(acam("PUT"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "preflight acao null",
        routes={R: preflighted(acao("null") + acam("PUT"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "preflight acao invalid value",
        routes={R: preflighted(acao("example.com") + acam("PUT"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "preflight acao two values on one line",
        routes={R: preflighted(acao(f"{APP}, http://other.localhost") + acam("PUT"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "preflight acao mismatch",
        routes={R: preflighted(acao("http://other.localhost") + acam("PUT"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "preflight two acao lines",
        routes={R: preflighted(acao(APP) + acao(APP) + acam("PUT"), acao(APP))},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "preflight 302 redirect with acao",
        routes={R: preflighted(acao("*") + acam("PUT") + location("{P}/other"), acao("*"), options_status=302)},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "preflight 307 redirect without acao",
        routes={R: preflighted(location("{P}/other"), acao("*"), options_status=307)},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "allow-methods invalid token",
        routes={R: preflighted(acao("*") + acam("PUT, GET POST"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "allow-headers invalid token",
        routes={R: preflighted(acao("*") + acah("x-req, x/y"), acao("*"))},
        js=js(fetch(API, init={"headers": {"X-Req": "1"}})),
    ),
    row(
        "preflight ok then actual missing acao",
        routes={R: preflighted(acao(APP) + acam("PUT"), [])},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "preflight ok then actual acao mismatch",
        routes={R: preflighted(acao("*") + acam("PUT"), acao("http://other.localhost"))},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    # --- the preflight cache ---------------------------------------------------------------------------------
    row(
        "preflight cache max-age 60 covers second request",
        routes={R: preflighted(acao("*") + acam("PUT") + max_age("60"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"}), fetch(API, init={"method": "PUT"})),
        check=all_of(wire_count("OPTIONS", R, 1), wire_count("PUT", R, 2)),
    ),
    row(
        "preflight cache default 5s covers second request",
        routes={R: preflighted(acao("*") + acam("PUT"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"}), fetch(API, init={"method": "PUT"})),
        check=all_of(wire_count("OPTIONS", R, 1), wire_count("PUT", R, 2)),
    ),
    row(
        "preflight cache max-age 0 preflights twice",
        routes={R: preflighted(acao("*") + acam("PUT") + max_age("0"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"}), fetch(API, init={"method": "PUT"})),
        check=all_of(wire_count("OPTIONS", R, 2), wire_count("PUT", R, 2)),
    ),
    row(
        "preflight cache skipped for cache no-store",
        routes={R: preflighted(acao("*") + acam("PUT") + max_age("60"), acao("*"))},
        js=js(
            fetch(API, init={"method": "PUT", "cache": "no-store"}),
            fetch(API, init={"method": "PUT", "cache": "no-store"}),
        ),
        check=all_of(wire_count("OPTIONS", R, 2), wire_count("PUT", R, 2)),
    ),
    row(
        "preflight cache entry covers another listed method",
        routes={R: preflighted(acao("*") + acam("PUT, DELETE") + max_age("60"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"}), fetch(API, init={"method": "DELETE"})),
        check=all_of(wire_count("OPTIONS", R, 1), wire_count("DELETE", R, 1)),
    ),
    row(
        "preflight cache entry does not cover an unlisted method",
        routes={R: preflighted(acao("*") + acam("PUT") + max_age("60"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"}), fetch(API, init={"method": "DELETE"})),
        check=all_of(wire_count("OPTIONS", R, 2), wire_count("DELETE", R, 0)),
    ),
    row(
        "preflight cache entry covers another listed header",
        routes={R: preflighted(acao("*") + acah("x-a, x-b") + max_age("60"), acao("*"))},
        js=js(fetch(API, init={"headers": {"X-A": "1"}}), fetch(API, init={"headers": {"X-B": "1"}})),
        check=all_of(wire_count("OPTIONS", R, 1), wire_count("GET", R, 2)),
    ),
    row(
        "max-age above chromium cap",
        routes={R: preflighted(acao("*") + acam("PUT") + max_age("86400"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"})),
        check=warns("max-age"),
    ),
    row(
        "range header is safelisted",
        routes={R: answer(acao("*"), status=206)},
        js=js(fetch(API, init={"headers": {"Range": "bytes=0-1"}})),
        check=wire_count("OPTIONS", R, 0),
    ),
    row(
        "suffix range header needs a preflight",
        routes={R: preflighted(acao("*") + acah("range"), acao("*"), actual_status=206)},
        js=js(fetch(API, init={"headers": {"Range": "bytes=-5"}})),
        check=wire_count("OPTIONS", R, 1),
    ),
    # --- credentials: a real cookie is stored for api.example.test and goes out with include ---------------
    row(
        "credentialed acao star with cookie",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: answer(acao("*"))},
        js=js(fetch(SAPI, init={"credentials": "include"})),
        check=cookie_on_wire("GET", R, True),
    ),
    row(
        "credentialed acao star and acac true with cookie",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: answer(acao("*") + acac())},
        js=js(fetch(SAPI, init={"credentials": "include"})),
        check=cookie_on_wire("GET", R, True),
    ),
    row(
        "credentialed exact origin without acac",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: answer(acao(SAPP))},
        js=js(fetch(SAPI, init={"credentials": "include"})),
        check=cookie_on_wire("GET", R, True),
    ),
    row(
        "credentialed acac capital True",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: answer(acao(SAPP) + acac("True"))},
        js=js(fetch(SAPI, init={"credentials": "include"})),
        check=cookie_on_wire("GET", R, True),
    ),
    row(
        "credentialed acac on two lines",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: answer(acao(SAPP) + acac() + acac())},
        js=js(fetch(SAPI, init={"credentials": "include"})),
        check=cookie_on_wire("GET", R, True),
    ),
    row(
        "credentialed allowed",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: answer(acao(SAPP) + acac())},
        js=js(fetch(SAPI, init={"credentials": "include"})),
        check=cookie_on_wire("GET", R, True),
    ),
    row(
        "credentialed without stored cookie acao star",
        page=SAPP + "/",
        credentials=True,
        routes={R: answer(acao("*"))},
        js=js(fetch(SAPI, init={"credentials": "include"})),
        check=cookie_on_wire("GET", R, False),
    ),
    row(
        "credentialed without stored cookie no acac",
        page=SAPP + "/",
        credentials=True,
        routes={R: answer(acao(SAPP))},
        js=js(fetch(SAPI, init={"credentials": "include"})),
        check=cookie_on_wire("GET", R, False),
    ),
    row(
        "cookie stored but fetch credentials default",
        page=SAPP + "/",
        cookies=["api.example.test"],
        routes={R: answer(acao("*"))},
        js=js(fetch(SAPI)),
        check=cookie_on_wire("GET", R, False),
    ),
    row(
        "set-cookie from a response then credentialed request without acac",
        page=SAPP + "/",
        credentials=True,
        routes={
            "/login": answer(acao(SAPP) + acac() + SET_COOKIE),
            R: answer(acao(SAPP)),
        },
        js=js(fetch(SAPI, "/login", init={"credentials": "include"}), fetch(SAPI, init={"credentials": "include"})),
        check=all_of(cookie_on_wire("GET", "/login", False), cookie_on_wire("GET", R, True)),
    ),
    row(
        "credentialed preflighted put allowed",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: preflighted(acao(SAPP) + acac() + acam("PUT"), acao(SAPP) + acac())},
        js=js(fetch(SAPI, init={"method": "PUT", "credentials": "include"})),
        check=cookie_on_wire("PUT", R, True),
    ),
    row(
        "credentialed preflight allow-methods star is literal",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: preflighted(acao(SAPP) + acac() + acam("*"), acao(SAPP) + acac())},
        js=js(fetch(SAPI, init={"method": "PUT", "credentials": "include"})),
    ),
    row(
        "credentialed preflight allow-headers star is literal",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: preflighted(acao(SAPP) + acac() + acah("*"), acao(SAPP) + acac())},
        js=js(fetch(SAPI, init={"headers": {"X-Req": "1"}, "credentials": "include"})),
    ),
    row(
        "credentialed preflight without acac",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: preflighted(acao(SAPP) + acam("PUT"), acao(SAPP) + acac())},
        js=js(fetch(SAPI, init={"method": "PUT", "credentials": "include"})),
    ),
    row(
        "credentialed preflight acao star",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: preflighted(acao("*") + acac() + acam("PUT"), acao(SAPP) + acac())},
        js=js(fetch(SAPI, init={"method": "PUT", "credentials": "include"})),
    ),
    # --- XMLHttpRequest ------------------------------------------------------------------------------------
    row("xhr simple acao star", routes={R: answer(acao("*"))}, js=js(xhr("GET", API))),
    row("xhr missing acao", routes={R: answer()}, js=js(xhr("GET", API))),
    row(
        "xhr withCredentials acao star with cookie",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: answer(acao("*"))},
        js=js(xhr("GET", SAPI, credentials=True)),
        check=cookie_on_wire("GET", R, True),
    ),
    row(
        "xhr withCredentials allowed",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: answer(acao(SAPP) + acac())},
        js=js(xhr("GET", SAPI, credentials=True)),
        check=cookie_on_wire("GET", R, True),
    ),
    row(
        "xhr without withCredentials cookie stored acao star",
        page=SAPP + "/",
        cookies=["api.example.test"],
        routes={R: answer(acao("*"))},
        js=js(xhr("GET", SAPI)),
        check=cookie_on_wire("GET", R, False),
    ),
    row(
        "xhr withCredentials without stored cookie no acac",
        page=SAPP + "/",
        credentials=True,
        routes={R: answer(acao(SAPP))},
        js=js(xhr("GET", SAPI, credentials=True)),
    ),
    row(
        "xhr put with custom header preflighted",
        routes={R: preflighted(acao(APP) + acam("PUT") + acah("x-req"), acao(APP))},
        js=js(xhr("PUT", API, headers={"X-Req": "1"})),
    ),
    # --- redirects -----------------------------------------------------------------------------------------
    row(
        "redirect cross-origin then acao null",
        routes={
            R: answer(acao(APP) + location(API2 + "{P}/final"), status=302),
            "/final": answer(acao("null")),
        },
        js=js(fetch(API)),
        check=wire_origin("GET", "/final", "null"),
    ),
    row(
        "redirect cross-origin then acao star",
        routes={
            R: answer(acao("*") + location(API2 + "{P}/final"), status=302),
            "/final": answer(acao("*")),
        },
        js=js(fetch(API)),
    ),
    row(
        "redirect cross-origin then acao exact origin",
        routes={
            R: answer(acao(APP) + location(API2 + "{P}/final"), status=302),
            "/final": answer(acao(APP)),
        },
        js=js(fetch(API)),
        check=wire_origin("GET", "/final", "null"),
    ),
    row(
        "redirect response without acao",
        routes={R: answer(location(API2 + "{P}/final"), status=302), "/final": answer(acao("*"))},
        js=js(fetch(API)),
        check=wire_count("GET", "/final", 0),
    ),
    row(
        "redirect same-origin hop keeps origin",
        routes={R: answer(acao(APP) + location(API + "{P}/final"), status=307), "/final": answer(acao(APP))},
        js=js(fetch(API)),
        check=wire_origin("GET", "/final", APP),
    ),
    row(
        "redirect to url with userinfo",
        routes={
            R: answer(acao("*") + location("http://user:pw@api.localhost{P}/final"), status=302),
            "/final": answer(acao("*")),
        },
        js=js(fetch(API)),
    ),
    row(
        "redirect to url with userinfo without acao",
        routes={
            R: answer(location("http://user:pw@api.localhost{P}/final"), status=302),
            "/final": answer(acao("*")),
        },
        js=js(fetch(API)),
    ),
    row(
        "redirect 307 of a preflighted put to another origin",
        routes={
            R: preflighted(acao(APP) + acam("PUT"), acao(APP) + location(API2 + "{P}/final"), actual_status=307),
            "/final": preflighted(acao("null") + acam("PUT"), acao("null")),
        },
        js=js(fetch(API, init={"method": "PUT"})),
        check=all_of(wire_origin("OPTIONS", "/final", "null"), wire_origin("PUT", "/final", "null")),
        # Firefox keeps the page's Origin on the new preflight, so Allow-Origin: null fails it there.
        firefox_check=all_of(wire_origin("OPTIONS", "/final", APP), wire_count("PUT", "/final", 0)),
    ),
    # --- not CORS: never reported blocked ------------------------------------------------------------------
    row(
        "not cors same-origin get",
        not_cors="same-origin",
        routes={R: answer()},
        js=js(fetch(APP)),
        check=js_outcome(0, ok=True, status=200),
    ),
    row(
        "not cors same-origin post",
        not_cors="same-origin",
        routes={R: answer()},
        js=js(fetch(APP, init={"method": "POST", "body": "x"})),
        check=all_of(js_outcome(0, ok=True, status=200), wire_origin("POST", R, APP)),
    ),
    row(
        "not cors same-origin put with custom header",
        not_cors="same-origin",
        routes={R: answer()},
        js=js(fetch(APP, init={"method": "PUT", "headers": {"X-Req": "1"}})),
        check=all_of(js_outcome(0, ok=True, status=200), wire_count("OPTIONS", R, 0)),
    ),
    row(
        "not cors cross-origin form post navigation",
        not_cors="not-cors",
        navigates=True,
        routes={R: answer(**HTML)},
        js=js(form(API)),
        check=wire_origin("POST", R, APP),
    ),
    row(
        "not cors websocket handshake",
        not_cors="not-cors",
        routes={R: Route({}, websocket=True)},
        js=js(websocket(API)),
        check=all_of(js_outcome(0, ok=True), wire_origin("GET", R, APP)),
    ),
    row(
        "not cors no-cors get",
        not_cors="not-cors",
        routes={R: answer(**PNG)},
        js=js(fetch(API, init={"mode": "no-cors"})),
        check=all_of(js_outcome(0, ok=True, status=0), wire_count("GET", R, 1)),
    ),
    row(
        "not cors no-cors post",
        not_cors="not-cors",
        routes={R: answer()},
        js=js(fetch(API, init={"mode": "no-cors", "method": "POST", "body": "x"})),
        check=all_of(js_outcome(0, ok=True, status=0), wire_origin("POST", R, APP)),
    ),
    row(
        "not cors img without crossorigin",
        not_cors="not-cors",
        routes={R: answer(**PNG)},
        js=js(img(API)),
        check=all_of(js_outcome(0, ok=True), wire_count("GET", R, 1)),
    ),
    # --- CORS-mode elements ----------------------------------------------------------------------------------
    row("img crossorigin missing acao", routes={R: answer(**PNG)}, js=js(img(API, cross_origin="anonymous"))),
    row("img crossorigin acao star", routes={R: answer(acao("*"), **PNG)}, js=js(img(API, cross_origin="anonymous"))),
    row(
        "img use-credentials acao star with cookie",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: answer(acao("*"), **PNG)},
        js=js(img(SAPI, cross_origin="use-credentials")),
        check=cookie_on_wire("GET", R, True),
    ),
    row("module script missing acao", routes={R: answer(**JS_MODULE)}, js=js(module(API))),
    row("module script acao star", routes={R: answer(acao("*"), **JS_MODULE)}, js=js(module(API))),
    # --- plain http, not localhost: no Sec-Fetch-* on the wire ----------------------------------------------
    row("plain http get allowed", page=TAPP + "/", routes={R: answer(acao(TAPP))}, js=js(fetch(TAPI))),
    row("plain http get missing acao", page=TAPP + "/", routes={R: answer()}, js=js(fetch(TAPI))),
    row("plain http get acao mismatch", page=TAPP + "/", routes={R: answer(acao(APP))}, js=js(fetch(TAPI))),
    row(
        "plain http put not in allow-methods",
        page=TAPP + "/",
        routes={R: preflighted(acao(TAPP) + acam("POST"), acao(TAPP))},
        js=js(fetch(TAPI, init={"method": "PUT"})),
    ),
    row(
        "plain http preflight 404 with acao",
        page=TAPP + "/",
        routes={R: preflighted(acao(TAPP) + acam("PUT"), acao(TAPP), options_status=404)},
        js=js(fetch(TAPI, init={"method": "PUT"})),
    ),
    row(
        "plain http redirect then acao null",
        page=TAPP + "/",
        routes={
            R: answer(acao(TAPP) + location("http://api2.example.test{P}/final"), status=302),
            "/final": answer(acao("null")),
        },
        js=js(fetch(TAPI)),
    ),
    row(
        "plain http same-origin post",
        page=TAPP + "/",
        not_cors="same-origin",
        routes={R: answer()},
        js=js(fetch(TAPP, init={"method": "POST", "body": "x"})),
        check=wire_origin("POST", R, TAPP),
    ),
    row(
        "plain http cross-origin form post navigation",
        page=TAPP + "/",
        not_cors="not-cors",
        navigates=True,
        routes={R: answer(**HTML)},
        js=js(form(TAPI)),
        check=wire_origin("POST", R, TAPP),
    ),
    row(
        "plain http websocket handshake",
        page=TAPP + "/",
        not_cors="not-cors",
        routes={R: Route({}, websocket=True)},
        js=js(websocket(TAPI)),
        check=all_of(js_outcome(0, ok=True), wire_origin("GET", R, TAPP)),
    ),
    # --- readable response headers ------------------------------------------------------------------------
    row(
        "x-total-count without expose-headers is unreadable",
        routes={R: answer(acao("*") + header("X-Total-Count", "42"))},
        js=js(fetch(API, read=["x-total-count"])),
        check=readable("X-Total-Count", False),
    ),
    row(
        "x-total-count with expose-headers is readable",
        routes={R: answer(acao("*") + header("X-Total-Count", "42") + expose("X-Total-Count"))},
        js=js(fetch(API, read=["x-total-count"])),
        check=readable("X-Total-Count", True),
    ),
    row(
        "expose-headers star non-credentialed",
        routes={R: answer(acao("*") + header("X-Total-Count", "42") + expose("*"))},
        js=js(fetch(API, read=["x-total-count"])),
        check=readable("X-Total-Count", True),
    ),
    row(
        "expose-headers star is literal with credentials",
        page=SAPP + "/",
        cookies=["api.example.test"],
        credentials=True,
        routes={R: answer(acao(SAPP) + acac() + header("X-Total-Count", "42") + expose("*"))},
        js=js(fetch(SAPI, init={"credentials": "include"}, read=["x-total-count"])),
        check=all_of(readable("X-Total-Count", False), cookie_on_wire("GET", R, True)),
    ),
    # --- Firefox's own order, revalidation, responses a parser refuses, a server that is down (#7) -------------
    # Chromium refuses every redirected preflight first (PreflightDisallowedRedirect); Firefox runs its CORS check
    # on the redirect before refusing it (see also "preflight 307 redirect without acao", "… 302 … with acao").
    row(
        "preflight 307 redirect with two acao lines",
        routes={R: preflighted(acao(APP) + acao(APP) + acam("PUT") + location("{P}/other"), acao("*"), 307)},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    row(
        "preflight 307 redirect with matching acao",
        routes={R: preflighted(acao(APP) + acam("PUT") + location("{P}/other"), acao("*"), 307)},
        js=js(fetch(API, init={"method": "PUT"})),
    ),
    # A stored response is revalidated (cache: 'no-cache' sends If-None-Match); the browser CORS-checks the stored
    # response as the 304 updates it, and the 304 carries no CORS header of its own. The second fetch waits a
    # little: a fetch that failed its CORS check rejects before Firefox has finished storing the response, and
    # a fetch at once then finds nothing to revalidate (seen once in CI: no If-None-Match).
    row(
        "revalidation 304 of a blocked response",
        routes={R: revalidated_by_bare_304([])},
        js=js(fetch(API), after_ms(300, fetch(API, init={"cache": "no-cache"}))),
        # Chromium does not revalidate a response that failed its CORS check: it fetches it again in full.
        check=revalidation(revalidated=False),
        firefox_check=revalidation(),
    ),
    row(
        "revalidation 304 of an allowed response",
        routes={R: revalidated_by_bare_304(acao("*"))},
        js=js(fetch(API), after_ms(300, fetch(API, init={"cache": "no-cache"}))),
        check=all_of(revalidation(), js_outcome(1, ok=True, status=200)),
    ),
    # Responses a browser's HTTP parser refuses before any CORS check: a network error, not a CORS reason.
    row(
        "nul byte in a header value",
        routes={R: Route({"*": Answer(200, [*acao("*"), (b"X-A", b"a\x00b")])})},
        js=js(fetch(API)),
        network_error=True,
    ),
    row(
        "nul byte in the reason phrase",
        routes={R: answer(acao("*"), status=StatusLine(200, "O\x00K"))},
        js=js(fetch(API)),
        network_error=True,
        engines_differ="Chromium refuses a NUL in the reason phrase (net::ERR_INVALID_HTTP_RESPONSE), Firefox reads it",
        not_recorded="the corpus does not record reason phrases",
    ),
    row(
        "status 1000",
        routes={R: answer(acao("*"), status=1000)},
        js=js(fetch(API)),
        engines_differ="Chromium reads a status above 999, Firefox refuses it (CORSDidNotSucceed2)",
    ),
    # The server is down (harness_addon: down.localhost refuses connections): mitmproxy answers 502 itself, without
    # CORS headers, and the browsers judge that.
    row("server down get", routes={}, js=js(fetch(DOWN))),
    row("server down preflighted put", routes={}, js=js(fetch(DOWN, init={"method": "PUT"}))),
    # Empty userinfo is no credential ([URL] "includes credentials"): both browsers follow.
    *[
        row(
            f"redirect to url with {name}",
            routes={
                R: answer(acao("*") + location(f"http://{at}api.localhost{{P}}/final"), 302),
                "/final": answer(acao("*")),
            },
            js=js(fetch(API)),
            check=all_of(js_outcome(0, ok=True, status=200), wire_count("GET", "/final", 1)),
        )
        for name, at in (("empty userinfo", "@"), ("empty user and password", ":@"))
    ],
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_addon_agrees_with_chromium(env: Env, scenario: Scenario, request: pytest.FixtureRequest) -> None:
    """The addon's verdict and reason for every flow equal Chromium's outcome and CDP corsError."""
    scenario_id = slug(request.node.callspec.id)
    result = run(env, scenario_id, scenario)
    assert_matches(result)


def in_firefox(param: Any) -> Any:
    """The row for Firefox: skipped or expected to fail (strictly) where its ``firefox_skip``/``firefox_xfail`` say
    so."""
    scenario: Scenario = param.values[0]
    marks = []
    if scenario.firefox_skip is not None:
        marks.append(pytest.mark.skip(reason=f"Firefox: {scenario.firefox_skip}"))
    if scenario.firefox_xfail is not None:
        marks.append(pytest.mark.xfail(reason=f"addon disagrees with Firefox: {scenario.firefox_xfail}", strict=True))
    return pytest.param(scenario, id=param.id, marks=marks)


@pytest.mark.parametrize("scenario", [in_firefox(p) for p in SCENARIOS])
def test_addon_agrees_with_firefox(firefox_env: Env, scenario: Scenario, request: pytest.FixtureRequest) -> None:
    """Each flow's firefox_reason is the reason key Firefox logged for it (null where Firefox let it through), and
    the verdict is Firefox's outcome (unless the row says Chromium measurably differs)."""
    result = firefox.run(firefox_env, slug(request.node.callspec.id), scenario)
    firefox.assert_matches(result)


def test_preflight_cache_is_per_browser_context(env: Env) -> None:
    """Two fresh contexts each preflight the same PUT; each PUT is linked to its own context's OPTIONS."""
    env = dataclasses.replace(env, record=None)  # one scenario run twice: not a corpus entry
    scenario = Scenario(
        page=APP + "/",
        routes={R: preflighted(acao("*") + acam("PUT") + max_age("60"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"})),
    )
    run(env, "preflight-cache-per-context", scenario)
    result = run(env, "preflight-cache-per-context", scenario)
    assert len(result.wire_for("OPTIONS", R)) == 2, "Chromium shared its preflight cache between contexts"
    assert len(result.wire_for("PUT", R)) == 2
    assert_matches(result)


def corpus_ids() -> list[str]:
    """The corpus entries this module records: one per row."""
    return [slug(str(p.id)) for p in SCENARIOS]


def test_firefox_reset_clears_the_preflight_cache(firefox_env: Env) -> None:
    """Firefox is reset between rows: the same PUT run twice (Max-Age 60) preflights twice, each PUT linked to the
    OPTIONS of its own run."""
    env = dataclasses.replace(firefox_env, record=None)  # one scenario run twice: not a corpus entry
    scenario = Scenario(
        page=APP + "/",
        routes={R: preflighted(acao("*") + acam("PUT") + max_age("60"), acao("*"))},
        js=js(fetch(API, init={"method": "PUT"})),
    )
    firefox.run(env, "reset-clears-the-preflight-cache", scenario)
    result = firefox.run(env, "reset-clears-the-preflight-cache", scenario)
    assert len(result.wire_for("OPTIONS", R)) == 2, "Firefox kept its preflight cache across the reset"
    assert len(result.wire_for("PUT", R)) == 2
    firefox.assert_matches(result)
