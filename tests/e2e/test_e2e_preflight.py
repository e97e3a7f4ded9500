"""Preflights through a live mitmdump: linking actual requests to the preflight that let them through (also from
the browser's preflight cache), and naming the request a failed preflight stopped."""

from __future__ import annotations

import pytest

from tests.harness.backend import Answer, Backend
from tests.harness.client import PAGE_ORIGIN, cors_headers, preflight_headers
from tests.harness.mitmdump import Mitmdump

pytestmark = pytest.mark.e2e

ACAO = "Access-Control-Allow-Origin"
JSON = [("Content-Type", "application/json")]


def passing_preflight(*extra: tuple[str, str]) -> Answer:
    return Answer(
        204,
        [
            (ACAO, PAGE_ORIGIN),
            ("Access-Control-Allow-Methods", "GET, PUT, DELETE"),
            ("Access-Control-Allow-Headers", "Content-Type"),
            ("Vary", "Origin"),
            *extra,
        ],
        b"",
    )


def put(proxy: Mitmdump, url: str) -> None:
    reply = proxy.send("PUT", url, [*cors_headers(), *JSON], b'{"done": true}')
    assert reply.status == 200


def test_actual_request_links_to_its_preflight(proxy: Mitmdump, backend: Backend) -> None:
    """OPTIONS then PUT: the PUT's preflight_id is the OPTIONS flow's id, and it is not a cached link."""
    path = backend.route(
        "/preflight/link", OPTIONS=passing_preflight(), PUT=Answer(200, [(ACAO, PAGE_ORIGIN), ("Vary", "Origin")])
    )
    url = backend.a + path
    proxy.send("OPTIONS", url, preflight_headers("PUT", "content-type"))
    put(proxy, url)
    options, actual = proxy.lines_for(path, 2)
    assert (options["method"], options["kind"], options["verdict"]) == ("OPTIONS", "preflight", "allowed")
    assert (actual["method"], actual["kind"], actual["verdict"]) == ("PUT", "actual", "allowed")
    assert actual["preflight_id"] == options["flow_id"]
    assert actual.get("preflight_cached") is False


def test_preflight_report_line_lists_the_request_it_announced(proxy: Mitmdump, backend: Backend) -> None:
    """A passing preflight's report line waits for the request it announces, so both lines point at each other."""
    path = backend.route("/preflight/order", OPTIONS=passing_preflight(), PUT=Answer(200, [(ACAO, PAGE_ORIGIN)]))
    url = backend.a + path
    proxy.send("OPTIONS", url, preflight_headers("PUT", "content-type"))
    put(proxy, url)
    lines = proxy.lines_for(path, 2)
    options = next(line for line in lines if line["kind"] == "preflight")
    actual = next(line for line in lines if line["kind"] == "actual")
    assert options["request_ids"] == [actual["flow_id"]]
    assert actual["preflight_id"] == options["flow_id"]


@pytest.mark.parametrize(
    ("name", "max_age", "cached"),
    [
        pytest.param("60", [("Access-Control-Max-Age", "60")], True, id="Max-Age 60: second PUT from the cache"),
        pytest.param("absent", [], True, id="no Max-Age: browsers cache for 5 s"),
        pytest.param("0", [("Access-Control-Max-Age", "0")], False, id="Max-Age 0: nothing cached"),
    ],
)
def test_second_request_without_preflight_links_to_cached_preflight(
    proxy: Mitmdump, backend: Backend, name: str, max_age: list[tuple[str, str]], cached: bool
) -> None:
    """A second PUT sent without a new OPTIONS links to the first preflight (preflight_cached: true) only while the
    browser's preflight cache still holds it."""
    path = backend.route(
        f"/preflight/cache/{name}",
        OPTIONS=passing_preflight(*max_age),
        PUT=Answer(200, [(ACAO, PAGE_ORIGIN), ("Vary", "Origin")]),
    )
    url = backend.a + path
    proxy.send("OPTIONS", url, preflight_headers("PUT", "content-type"))
    put(proxy, url)
    put(proxy, url)
    options, first, second = proxy.lines_for(path, 3)
    assert first["preflight_id"] == options["flow_id"]
    assert first.get("preflight_cached") is False
    if cached:
        assert second["preflight_id"] == options["flow_id"]
        assert second.get("preflight_cached") is True
    else:
        assert second["preflight_id"] is None
        assert not second.get("preflight_cached")


def test_cached_preflight_does_not_cover_another_method(proxy: Mitmdump, backend: Backend) -> None:
    """A DELETE after a cached preflight that allowed only PUT is not linked to it."""
    preflight = Answer(
        204,
        [
            (ACAO, PAGE_ORIGIN),
            ("Access-Control-Allow-Methods", "PUT"),
            ("Access-Control-Allow-Headers", "Content-Type"),
            ("Access-Control-Max-Age", "60"),
        ],
        b"",
    )
    path = backend.route("/preflight/other-method", OPTIONS=preflight, answer=Answer(200, [(ACAO, PAGE_ORIGIN)]))
    url = backend.a + path
    proxy.send("OPTIONS", url, preflight_headers("PUT", "content-type"))
    put(proxy, url)
    proxy.send("DELETE", url, cors_headers())
    options, put_line, delete = proxy.lines_for(path, 3)
    assert put_line["preflight_id"] == options["flow_id"]  # the preflight was there to link to
    assert delete["method"] == "DELETE"
    assert delete["preflight_id"] is None


@pytest.mark.parametrize(
    ("name", "answer", "reason"),
    [
        pytest.param(
            "404",
            Answer(404, [("Content-Type", "text/plain")], b"no route"),
            "PreflightMissingAllowOriginHeader",
            id="404 without CORS headers",
        ),
        pytest.param(
            "405",
            Answer(405, [(ACAO, PAGE_ORIGIN), ("Allow", "GET")], b""),
            "PreflightInvalidStatus",
            id="405 with Allow-Origin",
        ),
        pytest.param(
            "method",
            Answer(
                204,
                [
                    (ACAO, PAGE_ORIGIN),
                    ("Access-Control-Allow-Methods", "GET, POST"),
                    ("Access-Control-Allow-Headers", "*"),
                ],
                b"",
            ),
            "MethodDisallowedByPreflightResponse",
            id="method not allowed",
        ),
        pytest.param(
            "header",
            Answer(204, [(ACAO, PAGE_ORIGIN), ("Access-Control-Allow-Methods", "PUT")], b""),
            "HeaderDisallowedByPreflightResponse",
            id="header not allowed",
        ),
        pytest.param(
            "redirect",
            Answer(301, [(ACAO, PAGE_ORIGIN), ("Location", "/elsewhere")], b""),
            "PreflightDisallowedRedirect",
            id="redirected preflight",
        ),
    ],
)
def test_failed_preflight_names_the_blocked_request(
    proxy: Mitmdump, backend: Backend, name: str, answer: Answer, reason: str
) -> None:
    """A failed preflight is blocked and says which request the browser then never sent: blocked_request."""
    path = backend.route(f"/preflight/failed/{name}", OPTIONS=answer)
    url = backend.a + path + "?v=1"
    proxy.send("OPTIONS", url, preflight_headers("PUT", "content-type,x-trace-id"))
    (line,) = proxy.lines_for(path, 1)
    assert (line["kind"], line["verdict"], line["reason"]) == ("preflight", "blocked", reason)
    assert line["firefox_reason"]
    assert line["blocked_request"] == {"method": "PUT", "url": url, "headers": ["content-type", "x-trace-id"]}


def test_passing_preflight_has_no_blocked_request(proxy: Mitmdump, backend: Backend) -> None:
    """blocked_request appears only on failed preflights."""
    path = backend.route("/preflight/passing", OPTIONS=passing_preflight())
    proxy.send("OPTIONS", backend.a + path, preflight_headers("PUT", "content-type"))
    (line,) = proxy.lines_for(path, 1)
    assert line["verdict"] == "allowed"
    assert line.get("blocked_request") is None
