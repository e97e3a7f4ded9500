"""Small pieces of the Fetch standard, implemented once and tested on their own.

Nothing here knows about mitmproxy: values in, values out. Section names refer to
https://fetch.spec.whatwg.org/; the tags ([F], [CrC], [FxC] ...) are listed in BROWSERS.md §1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, NamedTuple
from urllib.parse import urljoin, urlsplit

from mitmcors.memo import remembered

DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}

# [F] "CORS-safelisted method".
SAFELISTED_METHODS: Final = frozenset({"GET", "HEAD", "POST"})

# [F] "CORS-safelisted response-header name" (Chromium also counts Content-Length: BROWSERS.md §8).
SAFELISTED_RESPONSE_HEADERS: Final = frozenset(
    {
        "cache-control",
        "content-language",
        "content-length",
        "content-type",
        "expires",
        "last-modified",
        "pragma",
    }
)
# [F] "forbidden response-header name": never readable, whatever Expose-Headers says.
FORBIDDEN_RESPONSE_HEADERS: Final = frozenset({"set-cookie", "set-cookie2"})

# [F] "forbidden request-header": set by the browser, never by the page, so never a reason to preflight.
FORBIDDEN_REQUEST_HEADERS: Final = frozenset(
    {
        "accept-charset",
        "accept-encoding",
        "access-control-request-headers",
        "access-control-request-method",
        "connection",
        "content-length",
        "cookie",
        "cookie2",
        "date",
        "dnt",
        "expect",
        "host",
        "keep-alive",
        "origin",
        "referer",
        "set-cookie",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
        # Chromium still forbids User-Agent ([Net], crbug 571722) and adds these itself:
        "user-agent",
        "priority",
        "x-client-data",
        "upgrade-insecure-requests",
        "purpose",
    }
)
_FORBIDDEN_PREFIXES: Final = ("proxy-", "sec-")

# Chromium's own safelisted client-hint style headers ([CrC] IsCorsSafelistedHeader).
_CHROMIUM_SAFELISTED: Final = frozenset(
    {"device-memory", "dpr", "width", "viewport-width", "rtt", "downlink", "ect", "intervention", "save-data"}
)

# RFC 9110 token: 1*tchar.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CORS_UNSAFE_BYTES: Final = frozenset('"():<>?@[\\]{}\x7f') | frozenset(chr(c) for c in range(0x20) if c != 0x09)
_LANGUAGE_OK: Final = re.compile(r"[0-9A-Za-z *,\-.;=]*")
_SAFE_CONTENT_TYPES: Final = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
_RANGE: Final = re.compile(r"bytes=([0-9]+)-([0-9]*)")
_MIME_TYPE: Final = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)/([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*(;.*)?", re.S)


# An int64 has at most 19 digits: Chromium's StringToInt64 fails on anything longer (and Python's int()
# refuses 4,300+ digit strings), so no longer run of digits is ever converted.
_MAX_DIGITS: Final = 18


def is_ascii_digits(value: str) -> bool:
    """Browsers parse numbers from ASCII digits only: `str.isdigit()` also accepts '²' and Arabic-Indic digits."""
    return value.isascii() and value.isdigit()


class ListParseError(ValueError):
    """A `#method` / `#field-name` list element that is not a token."""

    def __init__(self, element: str) -> None:
        super().__init__(f"{element!r} is not an HTTP token")
        self.element = element


_MAX_CACHED = 2048  # characters of the arguments a cache below may keep: hostile values are computed afresh


@remembered(1024, _MAX_CACHED, lambda scheme, host, port: len(host))  # a handful of servers and pages, every flow
def serialize_origin(scheme: str, host: str, port: int) -> str:
    """[HTML] ASCII serialization of a tuple origin: default ports dropped, IPv6 bracketed, lowercase."""
    scheme = scheme.lower()
    host = host.lower()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


@remembered(1024, _MAX_CACHED, lambda origin, scheme, host, port: len(origin) + len(host))
def same_origin(origin: str, scheme: str, host: str, port: int) -> bool:
    """Is the `Origin` header value `origin` the origin of scheme://host:port? ([HTML] same origin: equal
    serializations; `null` and values that are not a tuple origin never are.)"""
    return normalize_origin(origin) == serialize_origin(scheme, host, port)


def url_key(scheme: str, host: str, port: int, path: str) -> str:
    """A URL as the browser's caches key it: serialized origin + path + query, without the fragment."""
    return serialize_origin(scheme, host, port) + path.split("#", 1)[0]


class RedirectTarget(NamedTuple):
    """A redirect's `Location`, resolved against the URL that answered with it ([F] HTTP-redirect fetch)."""

    scheme: str  # lowercased; "" when the Location cannot be parsed as a URL at all
    has_credentials: bool  # [URL] "includes credentials": a non-empty username or password
    key: str | None  # `url_key` of an http(s) target with a host, else None


# The CORS check and the redirect link resolve the same pair, one after the other.
@remembered(256, _MAX_CACHED, lambda base, location: len(base) + len(location))
def resolve_redirect(base: str, location: str) -> RedirectTarget:
    """Resolve `location` against `base` the way the URL parser does (relative references included)."""
    try:
        parts = urlsplit(urljoin(base, location.strip()))
        scheme = parts.scheme.lower()
        credentials = bool(parts.username or parts.password)
        port = parts.port
    except ValueError:  # a bad port or IPv6 literal: judged by its scheme alone, never linked
        head, colon, _ = location.partition(":")
        valid = colon and head[:1].isalpha() and all(c.isalnum() or c in "+-." for c in head)
        return RedirectTarget(head.lower() if valid else "", False, None)
    key = None
    if scheme in ("http", "https") and parts.hostname:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        key = url_key(scheme, parts.hostname, port or DEFAULT_PORTS[scheme], path)
    return RedirectTarget(scheme, credentials, key)


@remembered(1024, _MAX_CACHED, len)  # a handful of pages send every request
def normalize_origin(value: str) -> str | None:
    """Parse an `Origin` header value into its serialization; None when it is not a tuple origin.

    `null` (opaque origins, redirect-tainted requests) returns None: it is never same-origin with anything.
    """
    value = value.strip()
    scheme, sep, rest = value.partition("://")
    if not sep or not rest or "/" in rest:
        return None
    scheme = scheme.lower()
    host, port = rest, DEFAULT_PORTS.get(scheme)
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            return None
        host, tail = rest[1:end], rest[end + 1 :]
        if tail:
            if not tail.startswith(":") or not is_ascii_digits(tail[1:]) or len(tail) > 6:
                return None
            port = int(tail[1:])
    elif ":" in rest:
        host, _, p = rest.rpartition(":")
        if not is_ascii_digits(p) or len(p) > 5:
            return None
        port = int(p)
    if port is None or not host:
        return None
    return serialize_origin(scheme, host, port)


def is_valid_url(value: str) -> bool:
    """GURL::is_valid for an Access-Control-Allow-Origin value: Chromium's URL parser (`mitmcors.urlparse`)."""
    from mitmcors import urlparse

    return urlparse.is_valid_url(value)


def is_token(value: str) -> bool:
    """RFC 9110 `token` (1*tchar): what a method or a header name must be."""
    return _TOKEN.fullmatch(value) is not None


def parse_list(value_lines: Iterable[str]) -> list[str]:
    """Parse a `#token` list header ([F] Allow-Methods / Allow-Headers); empty elements are skipped.

    Raises:
        ListParseError: an element is not a token (contains a space, `/`, quotes, ...).
    """
    items: list[str] = []
    for line in value_lines:
        for raw in line.split(","):
            element = raw.strip(" \t")
            if not element:
                continue
            if not _TOKEN.fullmatch(element):
                raise ListParseError(element)
            items.append(element)
    return items


def split_names(value_lines: Iterable[str]) -> list[str]:
    """Lenient comma-list split (Expose-Headers, Vary, Access-Control-Request-Headers), lowercased."""
    return [e.strip(" \t").lower() for line in value_lines for e in line.split(",") if e.strip(" \t")]


def is_safelisted_request_header(name: str, value: str) -> bool:
    """[F] CORS-safelisted request-header (name lowercased), with Chromium's extra client hints."""
    if len(value.encode("utf-8", "surrogateescape")) > 128:
        return False
    if name == "accept":
        return not any(c in _CORS_UNSAFE_BYTES for c in value)
    if name in ("accept-language", "content-language"):
        return _LANGUAGE_OK.fullmatch(value) is not None
    if name == "content-type":
        if any(c in _CORS_UNSAFE_BYTES for c in value):
            return False
        m = _MIME_TYPE.fullmatch(value.strip(" \t\r\n"))
        return m is not None and f"{m[1]}/{m[2]}".lower() in _SAFE_CONTENT_TYPES
    if name == "range":
        r = _RANGE.fullmatch(value)
        return r is not None and (not r[2] or int(r[1]) <= int(r[2]))
    return name in _CHROMIUM_SAFELISTED


def is_forbidden_request_header(name: str) -> bool:
    """[F] forbidden request-header name (lowercased), plus the headers Chromium adds itself."""
    return name in FORBIDDEN_REQUEST_HEADERS or name.startswith(_FORBIDDEN_PREFIXES)


def cors_unsafe_header_names(headers: Iterable[tuple[str, str]]) -> list[str]:
    """[F] CORS-unsafe request-header names of a request seen on the wire: sorted, lowercased, unique.

    Headers the browser adds itself (forbidden names, `sec-*`, `proxy-*`) are skipped, as Chromium's
    CorsUnsafeNotForbiddenRequestHeaderNames does; so is the `no-cache` pair Chromium's network stack adds
    for `cache: 'no-store'`/reloads. When the safelisted values together exceed 1024 bytes, they all count.
    """
    unsafe: set[str] = set()
    safelisted: list[str] = []
    total = 0
    for raw_name, value in headers:
        name = raw_name.lower()
        if is_forbidden_request_header(name):
            continue
        if name in ("cache-control", "pragma") and value.strip().lower() == "no-cache":
            continue
        if is_safelisted_request_header(name, value):
            safelisted.append(name)
            total += len(value)
        else:
            unsafe.add(name)
    if total > 1024:
        unsafe.update(safelisted)
    return sorted(unsafe)


def parse_max_age_chromium(value: str | None) -> tuple[int, bool]:
    """Chromium's preflight cache lifetime ([CrP]; BROWSERS.md §4.4): absent/non-integer → 5 s,
    negative → 0, cap 7200 s.

    Returns (seconds, capped).
    """
    if value is None:
        return 5, False
    v = value.strip()
    digits = v[1:] if v.startswith("-") else v
    if not is_ascii_digits(digits) or len(digits) > _MAX_DIGITS:
        return 5, False
    seconds = int(v)
    if seconds < 0:
        return 0, False
    if seconds > 7200:
        return 7200, True
    return seconds, False


def parse_max_age_firefox(value: str | None) -> tuple[int, bool]:
    """Firefox's lifetime ([FxC]; BROWSERS.md §4.4): absent → 5 s, any non-digit → not cached, cap 86400 s."""
    if value is None:
        return 5, False
    v = value.strip()
    if not is_ascii_digits(v):
        return 0, False
    # Firefox caps while it accumulates digits, so any run of digits is a number.
    seconds = int(v) if len(v) <= _MAX_DIGITS else 86400 + 1
    if seconds > 86400:
        return 86400, True
    return seconds, False
