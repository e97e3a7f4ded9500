"""The addon never drops or changes a flow in inspect-only mode, whatever the server sends, and keeps judging."""

from __future__ import annotations

import pytest

from tests.harness.backend import Answer, Backend, HeaderLines, as_bytes
from tests.harness.client import PAGE_ORIGIN, cors_headers, preflight_headers
from tests.harness.mitmdump import Mitmdump
from tests.harness.ports import free_port

pytestmark = pytest.mark.e2e

ACAO = b"Access-Control-Allow-Origin"
ACAM = b"Access-Control-Allow-Methods"
ACAH = b"Access-Control-Allow-Headers"
HUGE = 60_000  # one header line stays below http.client's 64 KiB line limit (the client, not the proxy)

GARBAGE: list[tuple[str, str, int, HeaderLines]] = [
    ("non-token-methods", "OPTIONS", 200, [(ACAO, b"*"), (ACAM, b'P(U)T, GET, "DELETE"')]),
    ("non-token-headers", "OPTIONS", 200, [(ACAO, b"*"), (ACAM, b"PUT"), (ACAH, b"X-Ok, bad header, (x)")]),
    ("utf8-origin", "GET", 200, [(ACAO, "http://lö.example".encode())]),
    ("latin1-origin", "GET", 200, [(ACAO, b"http://l\xf6\xff")]),
    ("utf8-methods", "OPTIONS", 200, [(ACAO, b"*"), (ACAM, "PÜT".encode())]),
    ("huge-origin", "GET", 200, [(ACAO, b"http://" + b"a" * HUGE)]),
    ("huge-methods", "OPTIONS", 200, [(ACAO, b"*"), (ACAM, b", ".join([b"PUT"] * (HUGE // 5)))]),
    ("huge-expose", "GET", 200, [(ACAO, b"*"), (b"Access-Control-Expose-Headers", b"X-A," * (HUGE // 4))]),
    ("max-age-negative", "OPTIONS", 200, [(ACAO, b"*"), (ACAM, b"PUT"), (b"Access-Control-Max-Age", b"-1")]),
    ("max-age-huge", "OPTIONS", 200, [(ACAO, b"*"), (ACAM, b"PUT"), (b"Access-Control-Max-Age", b"9" * 400)]),
    ("max-age-text", "OPTIONS", 200, [(ACAO, b"*"), (ACAM, b"PUT"), (b"Access-Control-Max-Age", b"1e9 days")]),
    ("empty-origin", "GET", 200, [(ACAO, b"")]),
    ("many-origins", "GET", 200, [(ACAO, PAGE_ORIGIN.encode())] * 20),
    ("credentials-garbage", "GET", 200, [(ACAO, b"*"), (b"Access-Control-Allow-Credentials", b"\x01\xfe yes")]),
    ("location-garbage", "GET", 302, [(ACAO, b"*"), (b"Location", b"http://[::1/\xff%zz")]),
    ("vary-garbage", "GET", 500, [(ACAO, PAGE_ORIGIN.encode()), (b"Vary", b",,,\xc3\x28,*,")]),
    ("unknown-status", "GET", 599, [(ACAO, PAGE_ORIGIN.encode())]),
]


def request_headers(method: str) -> list[tuple[str, str]]:
    if method == "OPTIONS":
        return preflight_headers("PUT", "content-type")
    return cors_headers()


def assert_no_addon_error(proxy: Mitmdump, mark: tuple[int, int]) -> None:
    out = proxy.output_since(mark)
    for marker in ("internal error", "Traceback", "Addon error"):
        assert marker not in out, f"mitmdump reported {marker!r}:\n{out[-4000:]}"


@pytest.mark.parametrize(("name", "method", "status", "headers"), [pytest.param(*g, id=g[0]) for g in GARBAGE])
def test_garbage_cors_headers_reach_the_client_unchanged(
    proxy: Mitmdump, backend: Backend, name: str, method: str, status: int, headers: HeaderLines
) -> None:
    """A response with malformed CORS headers reaches the client with its status, body and header lines intact,
    still gets a report line, and the addon logs no internal error."""
    body = f"body of {name}".encode()
    path = backend.route(f"/garbage/{name}", Answer(status, headers, body))
    mark = proxy.mark()
    reply = proxy.send(method, backend.a + path, request_headers(method))
    assert (reply.status, reply.body) == (status, body)
    sent = [(as_bytes(n).decode("latin-1").lower(), as_bytes(v)) for n, v in headers]
    received = [(n.lower(), v.encode("latin-1")) for n, v in reply.headers if n.lower().startswith("access-control")]
    assert received == [(n, v) for n, v in sent if n.startswith("access-control")]
    assert_no_addon_error(proxy, mark)
    (line,) = proxy.lines_for(path, 1)
    assert line["verdict"] in ("allowed", "blocked")


def test_proxy_keeps_serving_after_garbage(proxy: Mitmdump, backend: Backend) -> None:
    """After every malformed response above, an ordinary CORS request still goes through and is judged."""
    for name, method, status, headers in GARBAGE:
        backend_path = f"/garbage-again/{name}"
        backend.route(backend_path, Answer(status, headers))
        proxy.send(method, backend.a + backend_path, request_headers(method))
    path = backend.route("/garbage-again/after", Answer(200, [(ACAO.decode(), PAGE_ORIGIN)], b"fine"))
    reply = proxy.send("GET", backend.a + path, cors_headers())
    assert (reply.status, reply.body) == (200, b"fine")
    (line,) = proxy.lines_for(path, 1)
    assert (line["verdict"], line["reason"]) == ("allowed", None)


def test_inspect_only_does_not_touch_the_response(proxy: Mitmdump, backend: Backend) -> None:
    """Without rules a blocked response is passed on as the server sent it: no CORS header is added."""
    path = backend.route("/garbage/untouched", Answer(500, [("Content-Type", "text/plain")], b"stack trace"))
    reply = proxy.send("GET", backend.a + path, cors_headers())
    assert (reply.status, reply.body) == (500, b"stack trace")
    assert not [n for n, _ in reply.headers if n.lower().startswith("access-control")]
    (line,) = proxy.lines_for(path, 1)
    assert line["verdict"] == "blocked"


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param("refused", id="connection refused"),
        pytest.param("cut-short", id="upstream closes in the middle of the body"),
    ],
)
def test_request_without_a_usable_response_is_reported_blocked(proxy: Mitmdump, backend: Backend, failure: str) -> None:
    """A CORS request the upstream never answers properly fails in the page as well: it gets a blocked report line."""
    if failure == "refused":
        path = "/garbage/refused"
        url = f"http://127.0.0.1:{free_port()}{path}"
    else:
        path = backend.route("/garbage/cut-short", Answer(200, [(ACAO.decode(), "*")], b"partial", cut_short=True))
        url = backend.a + path
    reply = proxy.send("GET", url, cors_headers())
    assert reply.status == 502  # mitmproxy's own error page
    (line,) = proxy.lines_for(path, 1)
    assert (line["kind"], line["verdict"]) == ("actual", "blocked")
