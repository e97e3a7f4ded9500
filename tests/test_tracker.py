"""Preflight and redirect links: which preflight covered a request, from the wire or the browser's cache."""

from __future__ import annotations

from mitmcors.evaluator import PreflightFacts
from mitmcors.tracker import PreflightEntry, PreflightTracker, RedirectHop, RedirectTracker

ORIGIN = "http://app.localhost:5173"
URL = "http://api.localhost:8000/v1/items"


def facts(method: str = "PUT", max_age: int = 5, headers: frozenset[str] = frozenset()) -> PreflightFacts:
    return PreflightFacts(method, tuple(sorted(headers)), frozenset({method}), headers, max_age, max_age)


def entry(flow_id: str = "pf1", t: float = 100.0, passed: bool = True, **kw: object) -> PreflightEntry[str]:
    """A preflight entry whose owner is its flow id."""
    return PreflightEntry(ORIGIN, URL, facts(**kw), passed, t, owner=flow_id)  # type: ignore[arg-type]


def test_request_links_to_the_preflight_sent_for_it() -> None:
    """The first request after a preflight is linked to it, not as a cache hit."""
    t: PreflightTracker[str] = PreflightTracker()
    t.add(entry())
    link = t.find(ORIGIN, URL, "PUT", (), False, 100.1)
    assert link is not None
    assert (link.entry.owner, link.cached) == ("pf1", False)


def test_failed_preflight_covers_nothing() -> None:
    """After a blocked preflight the browser sends nothing, so a later request is not linked to it."""
    t: PreflightTracker[str] = PreflightTracker()
    t.add(entry(passed=False))
    assert t.find(ORIGIN, URL, "PUT", (), False, 100.1) is None


def test_second_request_within_max_age_is_a_cache_hit() -> None:
    """A later identical request with no new OPTIONS reuses the cached preflight."""
    t: PreflightTracker[str] = PreflightTracker()
    t.add(entry(max_age=60))
    t.find(ORIGIN, URL, "PUT", (), False, 100.1)
    link = t.find(ORIGIN, URL, "PUT", (), False, 130.0)
    assert link is not None
    assert link.cached


def test_expired_preflight_is_not_linked() -> None:
    """After Max-Age the cache entry is gone."""
    t: PreflightTracker[str] = PreflightTracker()
    t.add(entry(max_age=5))
    t.find(ORIGIN, URL, "PUT", (), False, 100.1)
    assert t.find(ORIGIN, URL, "PUT", (), False, 200.0) is None


def test_max_age_zero_is_never_a_cache_hit() -> None:
    """Max-Age 0 means every request needs its own preflight."""
    t: PreflightTracker[str] = PreflightTracker()
    t.add(entry(max_age=0))
    t.find(ORIGIN, URL, "PUT", (), False, 100.1)
    assert t.find(ORIGIN, URL, "PUT", (), False, 100.2) is None


def test_cache_does_not_cover_an_unlisted_header() -> None:
    """A cached answer that does not list a new header does not cover the request."""
    t: PreflightTracker[str] = PreflightTracker()
    t.add(entry(max_age=60))
    t.find(ORIGIN, URL, "PUT", (), False, 100.1)
    assert t.find(ORIGIN, URL, "PUT", ("x-new",), False, 101.0) is None


def test_failed_preflight_is_never_a_cache_hit() -> None:
    """Browsers evict failing preflight results."""
    t: PreflightTracker[str] = PreflightTracker()
    t.add(entry(passed=False, max_age=60))
    t.find(ORIGIN, URL, "PUT", (), False, 100.1)
    assert t.find(ORIGIN, URL, "PUT", (), False, 101.0) is None


def test_simple_request_does_not_use_the_cache() -> None:
    """A simple GET needs no preflight, so it is not linked to a cached one."""
    t: PreflightTracker[str] = PreflightTracker()
    t.add(entry(method="GET", max_age=60))
    t.find(ORIGIN, URL, "GET", (), False, 100.1)
    assert t.find(ORIGIN, URL, "GET", (), False, 101.0) is None


def test_memory_is_bounded() -> None:
    """However many URLs pass, the tracker keeps at most its limit."""
    t: PreflightTracker[str] = PreflightTracker(max_urls=10, per_url=2)
    for i in range(1000):
        e = entry(f"pf{i}")
        e.url = f"{URL}/{i % 50}"
        t.add(e)
    assert len(t) <= 20


def test_redirect_hop_is_found_once_and_expires() -> None:
    """A redirect target is linked to the next request for it, once, within the window."""
    r = RedirectTracker(limit=4)
    r.add("http://b.localhost/x", RedirectHop("r1", ORIGIN, 100.0))
    assert r.find("http://b.localhost/x", 500.0) is None
    r.add("http://b.localhost/x", RedirectHop("r1", ORIGIN, 100.0))
    hop = r.find("http://b.localhost/x", 100.5)
    assert hop is not None and hop.flow_id == "r1"
    assert r.find("http://b.localhost/x", 100.6) is None
