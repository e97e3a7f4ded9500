"""CORS redirects through a live mitmdump: the request that follows a redirect (with `Origin: null` after a
cross-origin hop) names the redirect it came from."""

from __future__ import annotations

import pytest

from tests.harness.backend import Answer, Backend
from tests.harness.client import PAGE_ORIGIN, cors_headers
from tests.harness.mitmdump import Mitmdump

pytestmark = pytest.mark.e2e

ACAO = "Access-Control-Allow-Origin"


def test_follow_up_after_cors_redirect_names_the_redirect(proxy: Mitmdump, backend: Backend) -> None:
    """GET answered 302 (with Allow-Origin) to another origin, then the follow-up with `Origin: null`:
    the follow-up's redirected_from is the 302 flow's id."""
    final = backend.route("/redirect/ok/final", Answer(200, [(ACAO, "*")]))
    start = backend.route(
        "/redirect/ok/start", Answer(302, [("Location", backend.b + final), (ACAO, PAGE_ORIGIN), ("Vary", "Origin")])
    )
    reply = proxy.send("GET", backend.a + start, cors_headers())
    assert reply.status == 302
    proxy.send("GET", backend.b + final, cors_headers(origin="null"))
    (hop,) = proxy.lines_for(start, 1)
    (follow,) = proxy.lines_for(final, 1)
    assert (hop["kind"], hop["verdict"]) == ("actual", "allowed")
    assert follow["redirected_from"] == hop["flow_id"]
    assert (follow["origin"], follow["verdict"]) == ("null", "allowed")


def test_relative_location_is_resolved_for_the_link(proxy: Mitmdump, backend: Backend) -> None:
    """A same-origin redirect with a relative Location links the follow-up (which keeps its Origin) too."""
    final = backend.route("/redirect/relative/final", Answer(200, [(ACAO, PAGE_ORIGIN)]))
    start = backend.route("/redirect/relative/start", Answer(307, [("Location", "final"), (ACAO, PAGE_ORIGIN)]))
    proxy.send("GET", backend.a + start, cors_headers())
    proxy.send("GET", backend.a + final, cors_headers())
    (hop,) = proxy.lines_for(start, 1)
    (follow,) = proxy.lines_for(final, 1)
    assert follow["redirected_from"] == hop["flow_id"]


def test_blocked_redirect_is_not_linked(proxy: Mitmdump, backend: Backend) -> None:
    """A 302 without Allow-Origin is blocked (the browser stops there), so a later request to its Location is
    not presented as its follow-up."""
    final = backend.route("/redirect/blocked/final", Answer(200, [(ACAO, "*")]))
    start = backend.route("/redirect/blocked/start", Answer(302, [("Location", backend.b + final)]))
    proxy.send("GET", backend.a + start, cors_headers())
    proxy.send("GET", backend.b + final, cors_headers(origin="null"))
    (hop,) = proxy.lines_for(start, 1)
    (follow,) = proxy.lines_for(final, 1)
    assert (hop["verdict"], hop["reason"]) == ("blocked", "MissingAllowOriginHeader")
    assert follow.get("redirected_from") is None
