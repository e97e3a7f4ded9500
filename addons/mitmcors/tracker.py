"""Links between flows: which preflight let a request through, and which redirect led to it.

Pure bookkeeping with bounded memory (LRU dictionaries), driven by flow timestamps rather than the wall
clock, so a capture read back with `mitmdump -nr` links the same way as live traffic. Each entry carries an
`owner` (the addon's per-flow state of the preflight), so what a link changes is recorded in one place.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

from mitmcors import fetchspec
from mitmcors.evaluator import PlainHeaders, PreflightFacts, Response

# How long after its preflight the browser sends the request it announced, at the latest.
PENDING_WINDOW = 30.0
# A redirect and the request that follows it.
REDIRECT_WINDOW = 30.0
# Slack for clocks: flow timestamps are taken by the proxy, not by the browser's cache.
CACHE_SLACK = 1.0

K = TypeVar("K")
V = TypeVar("V")
S = TypeVar("S")


class LRU(OrderedDict[K, V], Generic[K, V]):
    """An OrderedDict that forgets its oldest keys beyond `limit`."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: K, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


@dataclass(slots=True)
class PreflightEntry(Generic[S]):
    """One answered preflight, as the browser's preflight cache would remember it."""

    origin: str
    url: str
    facts: PreflightFacts
    passed: bool
    time: float
    owner: S
    consumed: bool = False  # the request it announced has arrived


class PreflightLink(NamedTuple, Generic[S]):
    entry: PreflightEntry[S]
    cached: bool


class PreflightTracker(Generic[S]):
    """Remembers recent preflights per (origin, URL) and finds the one that covered a request."""

    def __init__(self, max_urls: int = 2048, per_url: int = 4) -> None:
        self._entries: LRU[tuple[str, str], list[PreflightEntry[S]]] = LRU(max_urls)
        self._per_url = per_url

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def has(self, origin: str, url: str) -> bool:
        """Is any preflight remembered for this origin and URL? (A cheap test before `find`.)"""
        return (origin, url) in self._entries

    def add(self, entry: PreflightEntry[S]) -> None:
        key = (entry.origin, entry.url)
        entries = self._entries.get(key, [])
        entries.append(entry)
        del entries[: -self._per_url]
        self._entries.put(key, entries)

    def find(
        self, origin: str, url: str, method: str, unsafe_headers: tuple[str, ...], include: bool, now: float
    ) -> PreflightLink[S] | None:
        """The preflight that let this request through: the one just sent for it, else a cached one.

        Only a preflight that passed covers anything: after a failed one the browser sends nothing. A request
        that needed no preflight is only linked to a preflight sent for it (a forced preflight, e.g. an XHR
        upload with progress listeners), never to a cached one.
        """
        entries = self._entries.get((origin, url))
        if not entries:
            return None
        for entry in reversed(entries):
            if (
                entry.passed
                and not entry.consumed
                and entry.facts.method == method
                and 0 <= now - entry.time <= PENDING_WINDOW
            ):
                entry.consumed = True
                return PreflightLink(entry, cached=False)
        if method in fetchspec.SAFELISTED_METHODS and not unsafe_headers:
            return None
        for entry in reversed(entries):
            age = now - entry.time
            if (
                entry.passed
                and entry.facts.cache_seconds > 0
                and -CACHE_SLACK <= age <= entry.facts.cache_seconds + CACHE_SLACK
                and entry.facts.covers(method, unsafe_headers, include)
            ):
                return PreflightLink(entry, cached=True)
        return None


class RedirectHop(NamedTuple):
    flow_id: str
    origin: str
    time: float


class RedirectTracker:
    """Remembers CORS redirects so the request that follows (often with `Origin: null`) is explained."""

    def __init__(self, limit: int = 2048) -> None:
        self._hops: LRU[str, RedirectHop] = LRU(limit)

    def __len__(self) -> int:
        return len(self._hops)

    def add(self, location: str, hop: RedirectHop) -> None:
        self._hops.put(location, hop)

    def find(self, url: str, now: float) -> RedirectHop | None:
        hop = self._hops.get(url)
        if hop is None or not 0 <= now - hop.time <= REDIRECT_WINDOW:
            return None
        del self._hops[url]
        return hop


# What a 304 can change about a stored response's CORS outcome: the headers the CORS check and the
# CORS-filtered response read. Nothing else of a response is kept.
_KEPT_FOR_REVALIDATION = ("access-control-", "vary")


class StoredResponse(NamedTuple):
    flow_id: str
    etag: str | None
    response: Response  # status and the CORS-relevant header lines only


class ResponseCache:
    """The browser's HTTP cache, as far as CORS is concerned: the last response with a validator (ETag or
    Last-Modified) per origin and URL, so that a 304 to a revalidation is judged with the stored response it
    refreshes (BROWSERS.md §5.1)."""

    def __init__(self, limit: int = 2048) -> None:
        self._stored: LRU[tuple[str, str], StoredResponse] = LRU(limit)

    def __len__(self) -> int:
        return len(self._stored)

    def store(self, origin: str, url: str, flow_id: str, response: Response) -> None:
        """Remember `response` if a browser could revalidate it later."""
        if not 200 <= response.status < 300:
            return
        h = response.headers
        etags = h.get_all("etag")
        if not (etags or h.get_all("last-modified")):
            return
        kept = [(n, v) for n, v in h.items() if n.lower().startswith(_KEPT_FOR_REVALIDATION)]
        self._stored.put(
            (origin, url),
            StoredResponse(flow_id, etags[0].strip() if etags else None, Response(response.status, PlainHeaders(kept))),
        )

    def find(self, origin: str, url: str, if_none_match: list[str]) -> StoredResponse | None:
        """The stored response a 304 refreshes: the last one for this origin and URL (with the ETag the
        request asked about, when it asked with one)."""
        stored = self._stored.get((origin, url))
        if stored is None:
            return None
        if if_none_match and stored.etag is not None:
            asked = {t.strip() for line in if_none_match for t in line.split(",")}
            if stored.etag not in asked and "*" not in asked:
                return None
        return stored
