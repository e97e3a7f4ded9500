"""The browser's CORS decision for one request/response pair, without mitmproxy.

Plain headers in, a frozen `Verdict` out. The order of the checks is Chromium's (CorsURLLoader,
PreflightController, `cors::CheckAccess`); Firefox's reason is computed by its own order
(nsCORSListenerProxy), because the two name the same failure differently. Section names in the comments
are the Fetch standard's (https://fetch.spec.whatwg.org/).
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, Protocol

from mitmcors import fetchspec, redact
from mitmcors.memo import remembered
from mitmcors.reasons import PREFLIGHT_BASE, PREFLIGHT_VARIANT, FirefoxReason, Reason, chromium_text
from mitmcors.redact import redact_error, redact_url

__all__ = [
    "Credentials",
    "HeaderLines",
    "Kind",
    "Outcome",
    "PlainHeaders",
    "PreflightFacts",
    "Request",
    "Response",
    "Verdict",
    "WireHeaders",
    "classify",
    "credentials_mode",
    "evaluate",
    "failed",
    "requested_by_preflight",
]

CHROMIUM_MAX_AGE_CAP = 7200
FIREFOX_MAX_AGE_CAP = 86400
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class HeaderLines(Protocol):
    """What the evaluator needs from a header collection (mitmproxy's `Headers` fits as it is)."""

    def get_all(self, name: str) -> list[str]: ...

    def items(self, multi: bool = ...) -> Iterable[tuple[str, str]]: ...

    def keys(self) -> Iterable[str]:
        """Each header name once, in order of first appearance."""
        ...


class PlainHeaders:
    """An ordered, case-insensitive multi-map of header lines, for tests, HAR files and benchmarks."""

    __slots__ = ("_by_name", "_lines")

    def __init__(self, lines: Iterable[tuple[str, str]] = ()) -> None:
        self._lines = list(lines)
        self._by_name: dict[str, list[str]] = {}
        for name, value in self._lines:
            self._by_name.setdefault(name.lower(), []).append(value)

    def get_all(self, name: str) -> list[str]:
        return self._by_name.get(name.lower(), [])

    def items(self, multi: bool = False) -> Iterator[tuple[str, str]]:
        return iter(self._lines)

    def keys(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self._lines))

    def __repr__(self) -> str:
        return f"PlainHeaders({self._lines!r})"


_value_of = operator.itemgetter(1)  # a header line's value
_name_of = operator.itemgetter(0)  # a header line's name


def _decode(value: bytes) -> str:
    return value.decode("utf-8", "replace")


Layout = dict[str, int | tuple[int, ...]]  # lowercased header name → its line's position (or its lines')


def _layout(names: Iterable[bytes]) -> Layout:
    """Where each name is, by its name lowercased (ASCII letters only, as HTTP names compare) and read as Latin-1
    (one character per byte): one line's position, or the positions of a name sent on several lines (rare: two
    Allow-Origin lines, Set-Cookie, Vary ...)."""
    layout: Layout = {}
    for position, name in enumerate(names):
        key = name.lower().decode("latin-1")
        before = layout.get(key)
        if before is None:
            layout[key] = position
        else:
            layout[key] = (*before, position) if isinstance(before, tuple) else (before, position)
    return layout


_MAX_CACHED_NAMES = 4096  # bytes of header names (or list values) in one response that a cache may keep


# A few hundred layouts (each client request shape and server response shape is one), each of at most about a
# hundred names: a few MB at worst, whatever a hostile peer sends.
@remembered(256, _MAX_CACHED_NAMES, lambda joined, count: len(joined) + 32 * count)
def _remembered_layout(joined: bytes, count: int) -> Layout | None:
    """The layout of `count` names joined by NUL bytes (a client or server sends the same names in the same order
    again and again); None when that join is ambiguous, because a name holds a NUL byte itself."""
    names = joined.split(b"\0")
    return _layout(names) if len(names) == count else None


def _decode_names(names: tuple[bytes, ...]) -> tuple[str, ...]:
    """Each header name once, decoded, in order of first appearance."""
    return tuple(dict.fromkeys([name.decode("utf-8", "replace") for name in names]))


class WireHeaders:
    """Header lines as mitmproxy holds them (`Headers.fields`, bytes), indexed once, decoded only on access.

    The index (`Layout`: where each lowercased name is) depends on the names alone, which a client or server
    sends in the same order again and again: it is remembered by the names joined into one bytes value, so a
    flow usually pays one join and one lookup instead of lowercasing and hashing every name.

    Bytes that are not UTF-8 become U+FFFD, so annotations stay valid JSON (such a value never matches an
    origin anyway).
    """

    __slots__ = ("_fields", "_joined", "_layout")

    def __init__(self, fields: Sequence[tuple[bytes, bytes]]) -> None:
        self._fields = fields
        joined = b"\0".join(map(_name_of, fields))
        layout = _remembered_layout(joined, len(fields)) if fields else None
        if layout is None:  # no names, or a name with a NUL byte in it: the join stands for no one list of names
            self._joined, self._layout = None, _layout(map(_name_of, fields))
        else:
            self._joined, self._layout = joined, layout

    def get_all(self, name: str) -> list[str]:
        at = self._layout.get(name)
        if at is None:
            at = self._layout.get(name.lower())  # asked for as "Origin", say
            if at is None:
                return []
        if isinstance(at, int):
            value = self._fields[at][1]
            try:
                return [value.decode()]  # strict UTF-8 is the faster decoder; what it refuses gets U+FFFD
            except UnicodeDecodeError:
                return [_decode(value)]
        return [_decode(self._fields[position][1]) for position in at]

    def items(self, multi: bool = False) -> list[tuple[str, str]]:
        return [(k.decode("utf-8", "replace"), v.decode("utf-8", "replace")) for k, v in self._fields]

    def keys(self) -> tuple[str, ...]:
        return _decode_names(self.raw_names())

    def raw_names(self) -> tuple[bytes, ...]:
        """Every line's name as sent, in order."""
        return tuple(map(_name_of, self._fields))

    def joined_names(self) -> bytes | None:
        """Every line's name as sent, in order, joined by NUL bytes; None if a name holds a NUL itself."""
        return self._joined

    def name_of_value_with_nul(self) -> str | None:
        """The first header whose value holds a NUL byte (a scan of the raw bytes, no decoding)."""
        if 0 not in b"".join(map(_value_of, self._fields)):  # one memchr over the values: the usual answer
            return None
        for name, value in self._fields:
            if b"\x00" in value:
                return name.decode("utf-8", "replace")
        return None


class Kind(enum.StrEnum):
    PREFLIGHT = "preflight"
    ACTUAL = "actual"
    SAME_ORIGIN = "same-origin"
    NOT_CORS = "not-cors"


class Credentials(enum.StrEnum):
    INCLUDE = "include"
    OMIT = "omit"
    UNKNOWN = "unknown"


class Request(NamedTuple):
    """The request as the browser sent it: the URL's parts and the header lines on the wire."""

    method: str
    scheme: str
    host: str
    port: int
    path: str
    headers: HeaderLines

    @property
    def url(self) -> str:
        return fetchspec.serialize_origin(self.scheme, self.host, self.port) + self.path

    @property
    def origin_header(self) -> str | None:
        values = self.headers.get_all("origin")
        return values[0].strip() if values else None


class Response(NamedTuple):
    status: int
    headers: HeaderLines
    reason: str = ""  # the status line's reason phrase


class Outcome(NamedTuple):
    """What the browsers do with one response under one credentials mode: Chromium's reason, Firefox's,
    what happened in words (`text`) and, when blocked, what fixes it (`fix`, its own field)."""

    allowed: bool
    reason: Reason | None = None
    firefox_reason: FirefoxReason | None = None
    text: str = ""
    fix: str = ""

    @property
    def verdict(self) -> str:
        return "allowed" if self.allowed else "blocked"

    @property
    def message(self) -> str:
        """The one-line message of the annotation: what is wrong, then the fix."""
        return f"{self.text} Fix: {self.fix}." if self.fix else self.text


class PreflightFacts(NamedTuple):
    """What a preflight asked for and what its answer lets the browser cache."""

    method: str
    headers: tuple[str, ...]
    allowed_methods: frozenset[str]
    allowed_headers: frozenset[str]  # lowercased
    max_age_chromium: int
    max_age_firefox: int

    @property
    def cache_seconds(self) -> int:
        """How long some browser may reuse this answer without a new OPTIONS."""
        return max(self.max_age_chromium, self.max_age_firefox)

    def covers(self, method: str, header_names: Iterable[str], include: bool) -> bool:
        """Would a cached copy of this (passing) answer let `method` with `header_names` through?"""
        wildcard = not include
        if not (
            method in fetchspec.SAFELISTED_METHODS
            or method in self.allowed_methods
            or (wildcard and "*" in self.allowed_methods)
        ):
            return False
        star = wildcard and "*" in self.allowed_headers
        return all(star or name in self.allowed_headers for name in header_names)


class Verdict(NamedTuple):
    """The whole judgement of one flow; `as_dict()` is the `flow.metadata["cors"]` shape."""

    kind: Kind
    origin: str
    outcome: Outcome
    credentials: Credentials
    if_credentials: Outcome | None = None
    unreadable_headers: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    note: str = ""
    preflight: PreflightFacts | None = None
    redirect: fetchspec.RedirectTarget | None = None  # an allowed redirect's target, which the browser follows

    @property
    def blocked(self) -> bool:
        return not self.outcome.allowed


# --------------------------------------------------------------------------------------------------
# Classification: is this CORS at all? ([F] main fetch; [FM] Sec-Fetch-*; BROWSERS.md §2)


class Classification(NamedTuple):
    kind: Kind
    note: str


def _first(headers: HeaderLines, name: str) -> str | None:
    values = headers.get_all(name)
    return values[0].strip() if values else None


_WEBSOCKET = Classification(Kind.NOT_CORS, "WebSocket handshake: browsers do not apply CORS to WebSockets")
_PREFLIGHT = Classification(Kind.PREFLIGHT, "CORS preflight")
_NAVIGATION = Classification(Kind.NOT_CORS, "navigation (e.g. a form submission): CORS does not apply")
_NO_CORS = Classification(Kind.NOT_CORS, "no-cors request: the page gets an opaque response, never a CORS error")
_SAME_ORIGIN = Classification(Kind.SAME_ORIGIN, "same-origin request: CORS does not apply")
_SAME_ORIGIN_MODE = Classification(Kind.NOT_CORS, "same-origin mode request: the browser refuses it before sending")
_CROSS_ORIGIN = Classification(Kind.ACTUAL, "cross-origin CORS request")


def classify(request: Request, origin: str | None = None) -> Classification:
    """Decide whether a request carrying `Origin` is a preflight, a CORS request, or not CORS at all.

    Sec-Fetch-Mode is used when present but never required: plain-http targets don't get it.
    """
    h = request.headers
    if origin is None:
        origin = request.origin_header or ""
    upgrade = h.get_all("upgrade")
    if upgrade and upgrade[0].strip().lower() == "websocket":
        return _WEBSOCKET
    modes = h.get_all("sec-fetch-mode")
    mode = modes[0].strip().lower() if modes else ""
    if request.method == "OPTIONS" and h.get_all("access-control-request-method"):
        # [F] CORS-preflight fetch: OPTIONS + Origin + Access-Control-Request-Method (a forbidden header
        # name, so no page can send it itself).
        return _PREFLIGHT
    if mode in ("navigate", "nested-navigate"):
        return _NAVIGATION
    if mode == "websocket":
        return _WEBSOCKET
    if mode == "no-cors":
        return _NO_CORS
    if fetchspec.same_origin(origin, request.scheme, request.host, request.port):
        return _SAME_ORIGIN
    if mode == "same-origin":
        return _SAME_ORIGIN_MODE
    if mode == "cors":
        return _CROSS_ORIGIN
    if request.scheme not in ("http", "https"):
        return Classification(Kind.NOT_CORS, f"{request.scheme}: request: not subject to CORS")
    # No Fetch Metadata (plain-http targets): GET/HEAD with Origin is a CORS request (no-cors GETs carry no
    # Origin); a non-GET could be a form navigation, which announces itself like a page load does.
    if request.method not in ("GET", "HEAD"):
        dest = (_first(h, "sec-fetch-dest") or "").lower()
        accept = (_first(h, "accept") or "").lower()
        if dest in ("document", "iframe", "frame") or (
            h.get_all("upgrade-insecure-requests") and accept.startswith("text/html")
        ):
            return _NAVIGATION
    return _CROSS_ORIGIN


# --------------------------------------------------------------------------------------------------
# [F] CORS check, as Chromium's cors::CheckAccess and Firefox's CheckRequestApproved apply it (BROWSERS.md §5).


def _access_chromium(
    acao_lines: list[str], acac_lines: list[str], origin: str, include: bool
) -> tuple[Reason | None, str]:
    """Chromium `CheckAccess` on the comma-joined Allow-Origin value. Returns (reason, failed value)."""
    if not acao_lines:
        return Reason.MissingAllowOriginHeader, ""
    acao = acao_lines[0].strip(" \t") if len(acao_lines) == 1 else ", ".join([v.strip(" \t") for v in acao_lines])
    if acao == "*":
        # BROWSERS.md §5.1 step 3: "*" only for a request whose credentials mode is not "include".
        return (Reason.WildcardOriginNotAllowed, "*") if include else (None, "")
    if acao != origin:
        # §5.1 step 4: byte-for-byte equality with the serialized request origin.
        if " " in acao or "," in acao:
            return Reason.MultipleAllowOriginValues, acao
        if acao != "null" and not fetchspec.is_valid_url(acao):
            return Reason.InvalidAllowOriginValue, acao
        return Reason.AllowOriginMismatch, acao
    if include:
        # §5.1 step 6: Access-Control-Allow-Credentials must be exactly `true`.
        acac = ", ".join([v.strip(" \t") for v in acac_lines])
        if acac != "true":
            return Reason.InvalidAllowCredentials, acac
    return None, ""


def _access_firefox(acao_lines: list[str], acac_lines: list[str], origin: str, include: bool) -> FirefoxReason | None:
    """Firefox `nsCORSListenerProxy::CheckRequestApproved`: it counts header lines, not values."""
    if len(acao_lines) > 1:
        return FirefoxReason.CORSMultipleAllowOriginNotAllowed
    if not acao_lines:
        return FirefoxReason.CORSMissingAllowOrigin
    acao = acao_lines[0].strip(" \t")
    if acao == "*":
        return FirefoxReason.CORSNotSupportingCredentials if include else None
    if acao != origin:
        return FirefoxReason.CORSAllowOriginNotMatchingOrigin
    if include and [v.strip(" \t") for v in acac_lines] != ["true"]:
        return FirefoxReason.CORSMissingAllowCredentials
    return None


def _fix_for_access(reason: Reason, origin: str, value: str, include: bool, preflight: bool) -> str:
    where = "the OPTIONS preflight response" if preflight else "the response"
    exact = f"'Access-Control-Allow-Origin: {origin}'"
    if origin == "null":
        exact = "'Access-Control-Allow-Origin: *'" + (
            "" if not include else " (credentialed requests from origin 'null' need 'null', which is unsafe)"
        )
        exact += " (this request's Origin is 'null', as after a cross-origin redirect)"
    creds = " and 'Access-Control-Allow-Credentials: true'" if include else ""
    base = PREFLIGHT_BASE.get(reason, reason)
    if base is Reason.MissingAllowOriginHeader:
        return f"add {exact}{creds} to {where}" + (" (including error responses)" if not preflight else "")
    if base is Reason.WildcardOriginNotAllowed:
        return (
            f"credentialed requests need the exact origin: {exact} with 'Access-Control-Allow-Credentials: true' "
            "and 'Vary: Origin', not '*'"
        )
    if base is Reason.MultipleAllowOriginValues:
        return (
            f"send a single Access-Control-Allow-Origin line with one value, {exact}; the value "
            f"{value!r} looks like two layers (app and proxy) each adding the header"
        )
    if base is Reason.InvalidAllowOriginValue:
        return f"Access-Control-Allow-Origin must be a whole origin (scheme://host[:port]): {exact}"
    if base is Reason.AllowOriginMismatch:
        return f"send {exact} (compared byte for byte: no trailing '/', lowercase, no default port){creds}"
    if base is Reason.InvalidAllowCredentials:
        return f"send 'Access-Control-Allow-Credentials: true' (exactly, lowercase) with {exact}"
    return ""


def _blocked(reason: Reason, firefox: FirefoxReason | None, value: str, fix: str) -> Outcome:
    return Outcome(False, reason, firefox, chromium_text(reason, value), fix)


_MAX_CACHED_TEXT = 512  # characters of origin and offending value a cached outcome may keep


@remembered(1024, _MAX_CACHED_TEXT, lambda reason, firefox, origin, value, include, preflight: len(origin) + len(value))
def _access_blocked(
    reason: Reason, firefox: FirefoxReason | None, origin: str, value: str, include: bool, preflight: bool
) -> Outcome:
    """A failed CORS check's outcome, text and fix (the same few origins and values again and again)."""
    return _blocked(reason, firefox, value, _fix_for_access(reason, origin, value, include, preflight))


# --------------------------------------------------------------------------------------------------
# Judging an actual (non-preflight) CORS response, including redirect responses
# ([F] HTTP-redirect fetch; BROWSERS.md §5.4).


def _judge_actual(
    request: Request,
    response: Response,
    origin: str,
    include: bool,
    acao: list[str],
    acac: list[str],
    location: str | None,
) -> Outcome:
    """`acao`, `acac`: the Allow-Origin and Allow-Credentials lines; `location`: `_redirect_location(response)`."""
    if response.status == 304 and not acao:
        # A revalidation whose stored response is unknown here (`evaluate` merges it when it is known).
        return Outcome(
            True,
            text="304 Not Modified: the browser checks the CORS headers of its cached copy, which this 304 "
            "updates; nothing to judge on the wire",
        )
    reason, value = _access_chromium(acao, acac, origin, include)
    firefox = _access_firefox(acao, acac, origin, include)
    if reason is not None:
        return _access_blocked(reason, firefox, origin, value, include, False)
    if location is not None:
        target = fetchspec.resolve_redirect(request.url, location)
        if target.scheme not in ("", "http", "https"):
            # BROWSERS.md §5.4(b): a CORS redirect may only go to an HTTP(S) URL.
            return _blocked(
                Reason.CorsDisabledScheme,
                FirefoxReason.CORSRequestNotHttp,
                "",
                f"redirect to an http(s) URL, not {redact_url(location)!r}",
            )
        if target.has_credentials:
            # BROWSERS.md §5.4(c): no credentials (non-empty username or password) in the URL.
            # Firefox has no key of its own for it: the redirect fails as a network error (measured, ESR 153).
            return _blocked(
                Reason.RedirectContainsCredentials,
                firefox or FirefoxReason.CORSDidNotSucceed,
                redact_url(location),
                "redirect to a Location without 'user:password@'",
            )
    if firefox is not None:  # Firefox-only failure: not seen in practice, but say so rather than hide it.
        return Outcome(True, None, firefox, f"Chromium allows this; Firefox blocks it ({firefox.value}).")
    if location is not None:
        return Outcome(
            True,
            text=f"redirect allowed by the CORS check; the browser follows it to {redact_url(location)}",
        )
    return _allowed(None if acao[0].strip() == "*" else origin, include, response.status)


@remembered(1024, _MAX_CACHED_TEXT, lambda origin, include, status: len(origin or ""))
def _allowed(origin: str | None, include: bool, status: int) -> Outcome:
    """The outcome of a response that passes the CORS check, by `origin` (None for `*`): the same few again and
    again."""
    what = "'*' (any origin)" if origin is None else f"{origin!r}"
    cred = " with credentials" if include else ""
    return Outcome(
        True, None, None, f"allowed{cred}: Access-Control-Allow-Origin matches {what}; HTTP {status} reaches the page"
    )


def _redirect_location(response: Response) -> str | None:
    """The Location of a redirect response (None for any other response)."""
    return _first(response.headers, "location") if response.status in REDIRECT_STATUSES else None


def _unreadable(response: Response, include: bool, exposing: list[str]) -> tuple[str, ...]:
    """[F] CORS-filtered response (BROWSERS.md §5.5): names outside the safelist and `exposing` (the
    Access-Control-Expose-Headers lines)."""
    h = response.headers
    if isinstance(h, WireHeaders):
        names = h.joined_names()
        if names is not None:
            return _hidden_on_the_wire(names, tuple(exposing), include)
    return _hidden(tuple(h.keys()), tuple(exposing), include)


@remembered(1024, _MAX_CACHED_NAMES, lambda names, exposing, include: len(names) + sum(map(len, exposing)))
def _hidden_on_the_wire(names: bytes, exposing: tuple[str, ...], include: bool) -> tuple[str, ...]:
    """`_hidden` of the names as `WireHeaders.joined_names` gives them: one bytes value, hashed and compared at C
    speed (a server sends the same names and Expose-Headers again and again)."""
    return _hidden(_decode_names(tuple(names.split(b"\0"))), exposing, include)


def _hidden(names: tuple[str, ...], exposing: tuple[str, ...], include: bool) -> tuple[str, ...]:
    exposed = frozenset(fetchspec.split_names(exposing))
    star = not include and "*" in exposed
    hidden: list[str] = []
    for name in names:
        low = name.lower()
        if low in fetchspec.FORBIDDEN_RESPONSE_HEADERS:
            hidden.append(name)
        elif low in fetchspec.SAFELISTED_RESPONSE_HEADERS or low in exposed or star:
            continue
        else:
            hidden.append(name)
    return tuple(hidden)


def _vary_warning(response: Response, origin: str, acao: list[str]) -> str | None:
    if len(acao) != 1 or acao[0].strip() in ("*", "null") or acao[0].strip() != origin:
        return None
    vary = fetchspec.split_names(response.headers.get_all("vary"))
    if "origin" in vary or "*" in vary:
        return None
    return (
        f"Access-Control-Allow-Origin names this request's origin ({origin}) but the response has no "
        "'Vary: Origin': if the server picks the value per request (reflection or an allow-list), caches may "
        "serve it to other origins. Add 'Vary: Origin'."
    )


# --------------------------------------------------------------------------------------------------
# [F] CORS-preflight fetch, in Chromium's order (PreflightController + PreflightResult; BROWSERS.md §4).


class _AllowList(NamedTuple):
    """An Access-Control-Allow-Methods or -Headers value as the preflight check reads it."""

    items: tuple[str, ...] | None  # None when it does not parse
    bad: str  # the element that does not parse
    as_set: frozenset[str]
    lines: tuple[str, ...]  # as sent


@remembered(1024, _MAX_CACHED_NAMES, lambda lines, lower: sum(map(len, lines)))
def _parse_allow_list(lines: tuple[str, ...], lower: bool) -> _AllowList:
    """The parsed list (a server sends the same lists again and again)."""
    try:
        items = fetchspec.parse_list(lines)
    except fetchspec.ListParseError as e:
        return _AllowList(None, e.element, frozenset(), lines)
    if lower:
        items = [n.lower() for n in items]
    return _AllowList(tuple(items), "", frozenset(items), lines)


class _PreflightInput(NamedTuple):
    """A preflight's request and response, read and parsed once for every credentials mode and browser."""

    method: str  # Access-Control-Request-Method
    requested: list[str]  # Access-Control-Request-Headers, lowercased
    allow_methods: _AllowList  # Access-Control-Allow-Methods
    allow_headers: _AllowList  # Access-Control-Allow-Headers, lowercased
    allow_origin: list[str]  # Access-Control-Allow-Origin lines
    allow_credentials: list[str]  # Access-Control-Allow-Credentials lines

    @classmethod
    def read(cls, request: Request, response: Response) -> _PreflightInput:
        h = response.headers
        method, requested = requested_by_preflight(request)
        return cls(
            method=method,
            requested=requested,
            allow_methods=_parse_allow_list(tuple(h.get_all("access-control-allow-methods")), False),
            allow_headers=_parse_allow_list(tuple(h.get_all("access-control-allow-headers")), True),
            allow_origin=h.get_all("access-control-allow-origin"),
            allow_credentials=h.get_all("access-control-allow-credentials"),
        )


def _judge_preflight(
    request: Request, response: Response, origin: str, include: bool, p: _PreflightInput
) -> tuple[Outcome, list[str]]:
    warnings: list[str] = []
    status = response.status
    acao, acac = p.allow_origin, p.allow_credentials
    location = _redirect_location(response)
    if location is not None:
        # A preflight is fetched with redirect mode "error": Chromium fails it before any other check.
        # Firefox runs its CORS check on the redirect response first (BROWSERS.md §4.3; measured, #7.6).
        on_redirect = _access_firefox(acao, acac, origin, include) or FirefoxReason.CORSExternalRedirectNotAllowed
        return (
            _blocked(
                Reason.PreflightDisallowedRedirect,
                on_redirect,
                "",
                f"answer the OPTIONS preflight itself with 2xx and CORS headers instead of redirecting to "
                f"{redact_url(location)} (or let the page call the final URL directly)",
            ),
            warnings,
        )
    # BROWSERS.md §4.2: the CORS check (with the actual request's credentials mode) comes before the status check.
    reason, value = _access_chromium(acao, acac, origin, include)
    firefox = _access_firefox(acao, acac, origin, include)
    if reason is not None:
        pre = PREFLIGHT_VARIANT[reason]
        fix = _fix_for_access(reason, origin, value, include, preflight=True)
        if not 200 <= status < 300:
            fix += f", and answer it with a 2xx status (got {status})"
        return _blocked(pre, firefox, value, fix), warnings
    if not 200 <= status < 300:
        return (
            _blocked(
                Reason.PreflightInvalidStatus,
                firefox or FirefoxReason.CORSPreflightDidNotSucceed,
                "",
                f"answer the OPTIONS preflight with a 2xx status (got {status}), e.g. 204 No Content",
            ),
            warnings,
        )
    method, requested = p.method, p.requested
    methods, allowed = p.allow_methods.items, p.allow_headers.items
    firefox_result = _firefox_preflight_lists(p, include)
    # §4.1 step 1: both lists must parse; a parse failure is a network error.
    if methods is None:
        return (
            _blocked(
                Reason.InvalidAllowMethodsPreflightResponse,
                firefox_result,
                "",
                f"Access-Control-Allow-Methods must be a comma-separated list of method names; "
                f"{p.allow_methods.bad!r} is not one",
            ),
            warnings,
        )
    if allowed is None:
        return (
            _blocked(
                Reason.InvalidAllowHeadersPreflightResponse,
                firefox_result,
                "",
                f"Access-Control-Allow-Headers must be a comma-separated list of header names; "
                f"{p.allow_headers.bad!r} is not one",
            ),
            warnings,
        )
    # §4.1 step 3: methods are compared case-sensitively; "*" is a literal under credentials "include".
    if not (method in fetchspec.SAFELISTED_METHODS or method in methods or (not include and "*" in methods)):
        fix = f"add {method} to 'Access-Control-Allow-Methods'"
        near = [m for m in methods if m.upper() == method.upper()]
        if near:
            fix += f" (it lists {near[0]!r}; method names are compared case-sensitively)"
        elif include and "*" in methods:
            fix += " ('*' is a literal name, not a wildcard, for credentialed requests)"
        return _blocked(Reason.MethodDisallowedByPreflightResponse, firefox_result, method, fix), warnings
    # §4.1 step 5: every CORS-unsafe request-header name must be listed (case-insensitively), or "*" when the
    # request is not credentialed.
    star = not include and "*" in allowed
    allowed_set = p.allow_headers.as_set
    for name in requested:
        if name in allowed_set:
            continue
        if star:
            if name == "authorization":
                # §4.1 step 4: "*" never covers Authorization; measured Chromium 156 / Firefox 153 allow it (§7).
                warnings.append(
                    "Authorization is covered only by 'Access-Control-Allow-Headers: *': Chromium 156 and "
                    "Firefox allow it today, but the Fetch standard (and future browsers) block it. List "
                    "'Authorization' explicitly."
                )
            continue
        fix = f"add {name} to 'Access-Control-Allow-Headers'"
        if include and "*" in allowed:
            fix += " ('*' is a literal name, not a wildcard, for credentialed requests)"
        return _blocked(Reason.HeaderDisallowedByPreflightResponse, firefox_result, name, fix), warnings
    cred = " with credentials" if include else ""
    return (
        Outcome(
            True,
            None,
            firefox_result,
            f"preflight passed{cred}: the browser may now send {method} {redact_url(request.path)}"
            + (f" with {', '.join(requested)}" if requested else ""),
        ),
        warnings,
    )


def _firefox_preflight_lists(p: _PreflightInput, include: bool) -> FirefoxReason | None:
    """Firefox `CheckPreflightRequestApproved`: methods parsed and checked, then headers."""
    methods, headers = p.allow_methods, p.allow_headers
    if methods.items is None:
        return FirefoxReason.CORSInvalidAllowMethod
    wildcard = not include
    if not (
        p.method in fetchspec.SAFELISTED_METHODS or p.method in methods.as_set or (wildcard and "*" in methods.as_set)
    ):
        return FirefoxReason.CORSMethodNotFound
    if headers.items is None:
        return FirefoxReason.CORSInvalidAllowHeader
    star = wildcard and "*" in headers.as_set
    if not star and not headers.as_set.issuperset(p.requested):
        return FirefoxReason.CORSMissingAllowHeaderFromPreflight
    return None


def _preflight_facts_and_warnings(response: Response, p: _PreflightInput) -> tuple[PreflightFacts, list[str]]:
    """What the answer lets the browsers cache, and the warnings about Access-Control-Max-Age."""
    chromium, firefox, warnings = _max_age(_first(response.headers, "access-control-max-age"))
    facts = PreflightFacts(  # method, headers, allowed methods and headers, max-age in Chromium and Firefox
        p.method, tuple(p.requested), p.allow_methods.as_set, p.allow_headers.as_set, chromium, firefox
    )
    return facts, list(warnings)


@remembered(256, _MAX_CACHED_TEXT, lambda value: len(value or ""))
def _max_age(value: str | None) -> tuple[int, int, tuple[str, ...]]:
    """Access-Control-Max-Age as Chromium and Firefox read it, and the warnings about it (a server sends the same
    value again and again)."""
    chromium, chromium_capped = fetchspec.parse_max_age_chromium(value)
    firefox, firefox_capped = fetchspec.parse_max_age_firefox(value)
    return chromium, firefox, _max_age_warnings(value, chromium_capped, firefox_capped)


def _max_age_warnings(value: str | None, chromium_capped: bool, firefox_capped: bool) -> tuple[str, ...]:
    if value is None:
        return ()
    if firefox_capped:
        return (
            f"Access-Control-Max-Age {value} is above every browser's cap: Chromium caches preflights for at "
            f"most {CHROMIUM_MAX_AGE_CAP} s, Firefox {FIREFOX_MAX_AGE_CAP} s",
        )
    if chromium_capped:
        return (
            f"Access-Control-Max-Age {value} is above Chromium's cap: it caches preflights for at most "
            f"{CHROMIUM_MAX_AGE_CAP} s (Firefox: {FIREFOX_MAX_AGE_CAP} s)",
        )
    return ()


# --------------------------------------------------------------------------------------------------


def _include_may_differ(acao: list[str], acac: list[str], origin: str, listed: Iterable[str]) -> bool:
    """Can credentials mode "include" change the outcome? Only through `*` (a wildcard without credentials, a
    literal with them: in Allow-Origin, or in one of the `listed` lines, a preflight's Allow-Methods and
    Allow-Headers or a response's Expose-Headers) or an Allow-Origin that matches but lacks
    `Allow-Credentials: true`."""
    if len(acao) != 1:
        return False
    value = acao[0].strip(" \t")
    if value == "*":
        return True
    if value != origin:
        return False
    if [v.strip(" \t") for v in acac] != ["true"]:
        return True
    return any("*" in v for v in listed)


def _same(a: Outcome, b: Outcome) -> bool:
    return a.allowed == b.allowed and a.reason == b.reason and a.firefox_reason == b.firefox_reason


def credentials_mode(headers: HeaderLines) -> Credentials:
    """[F] credentials mode is not on the wire (BROWSERS.md §2.7): a `Cookie` proves "include"; its absence
    proves nothing (no cookie stored, or third-party cookies blocked), so the mode is then unknown."""
    return Credentials.INCLUDE if headers.get_all("cookie") else Credentials.UNKNOWN


def requested_by_preflight(request: Request) -> tuple[str, list[str]]:
    """[F] CORS-preflight fetch (BROWSERS.md §3.4): the method (Access-Control-Request-Method) and the
    lowercased header names (Access-Control-Request-Headers) a preflight asks for."""
    return (
        _first(request.headers, "access-control-request-method") or "",
        fetchspec.split_names(request.headers.get_all("access-control-request-headers")),
    )


def failed(
    request: Request, classification: Classification, error: str, *, proxy_status: int | None, abandoned: bool
) -> Verdict:
    """A request the server did not answer (whole): what reached the page instead.

    - `abandoned`: the browser gave up itself (the page cancelled the request or navigated away): not a
      CORS failure, and not the server's.
    - `proxy_status`: the proxy answered with an error page of its own (mitmproxy's 502 when the server is
      unreachable). The browser judges that page like any response: it has no CORS headers, so Chromium
      reports `MissingAllowOriginHeader` and Firefox `CORSMissingAllowOrigin2`.
    - otherwise the connection broke after the response started: a network error (Chromium `net::ERR_*`,
      DevTools shows a failed preflight as `InvalidResponse`; Firefox `CORSDidNotSucceed2`).

    Same-origin and not-CORS requests fail too, but never for CORS reasons. `error` is the proxy's error
    text; only its gist is kept (it may quote bytes from the wire).
    """
    origin = request.origin_header or ""
    credentials = credentials_mode(request.headers)
    c = classification
    gist = redact_error(error)
    if c.kind in (Kind.SAME_ORIGIN, Kind.NOT_CORS):
        return Verdict(c.kind, origin, Outcome(True, text=f"{c.note}; no response ({gist})"), credentials, note=c.note)
    if abandoned:
        text = (
            f"The browser abandoned the request before the response arrived ({gist}): the page cancelled it or "
            "navigated away. Not a CORS failure and not the server's."
        )
        return Verdict(c.kind, origin, Outcome(True, text=text), credentials, note=c.note)
    if proxy_status is not None:
        v = evaluate(request, Response(proxy_status, _PROXY_ERROR_HEADERS), c)
        text = (
            f"The server did not answer ({gist}); the proxy answered {proxy_status} itself, without CORS "
            f"headers, so the page sees a CORS error instead of the {proxy_status}: {v.outcome.text}"
        )
        fix = "make the server reachable (a rule cannot add headers to the proxy's own error page)"
        return v._replace(outcome=v.outcome._replace(text=text, fix=fix), if_credentials=None, unreadable_headers=())
    outcome = Outcome(
        False,
        Reason.InvalidResponse if c.kind is Kind.PREFLIGHT else None,
        FirefoxReason.CORSDidNotSucceed,
        f"No response ({gist}): Chromium reports a network error (net::ERR_*), Firefox 'CORS request did not succeed'.",
        "make the server reachable; CORS headers cannot help",
    )
    return Verdict(c.kind, origin, outcome, credentials, note=c.note)


def failed_in_browser(
    request: Request, classification: Classification, status: int, origin_from_referer: bool = True
) -> Verdict:
    """A request a browser's HAR records as failed: status 0 or -1 and no response. Chromium (DevTools' "Save
    all as HAR", Playwright's `record_har_path`) writes a CORS-blocked request this way, without its Origin,
    its preflight or the server's answer; Firefox writes a request it never sent this way (with its Origin; its
    failed preflight is an entry of its own: `stopped_by_preflight`). So it is blocked, and why is not on record."""
    origin = request.origin_header or ""
    c = classification
    if c.kind in (Kind.SAME_ORIGIN, Kind.NOT_CORS):
        return Verdict(c.kind, origin, Outcome(True, text=c.note), Credentials.UNKNOWN, note=c.note)
    where = (
        f"the page's origin {origin} comes from the Referer"
        if origin_from_referer
        else "no preflight for it is on record either"
    )
    text = (
        f"The browser failed this cross-origin request: the HAR records status {status} and no response, which is "
        "how browsers save a request that CORS (or the network) stopped; it keeps neither the browser's reason nor "
        f"the server's answer ({where})."
    )
    fix = "record the page through mitmproxy with this addon to see which check fails and what fixes it"
    return Verdict(c.kind, origin, Outcome(False, None, None, text, fix), Credentials.UNKNOWN, note=c.note)


def stopped_by_preflight(request_verdict: Verdict, preflight: Verdict, preflight_id: str) -> Verdict:
    """A HAR's never-sent request (`failed_in_browser`) whose blocked preflight is on record: blocked for the
    preflight's reasons, which is also how Chromium's console names a request its preflight stopped."""
    p = preflight.outcome
    text = f"The browser never sent this request: its preflight {preflight_id} was blocked. {p.text}"
    outcome = Outcome(False, p.reason, p.firefox_reason, text, p.fix)
    return request_verdict._replace(outcome=outcome)


# What mitmproxy's own error page carries (mitmproxy/proxy/layers/http/_http1.py make_error_response).
_PROXY_ERROR_HEADERS = PlainHeaders([("Server", "mitmproxy"), ("Connection", "close"), ("Content-Type", "text/html")])


def _name_of_value_with_nul(headers: HeaderLines) -> str | None:
    return next((name for name, value in headers.items() if "\x00" in value), None)


def _rejected_before_cors(response: Response, kind: Kind) -> Outcome | None:
    """Responses a browser's HTTP parser refuses before any CORS check (measured through mitmproxy; #7.4):

    - a NUL byte in a header value: Chromium `net::ERR_INVALID_HTTP_RESPONSE`, Firefox `CORSDidNotSucceed2`;
    - a NUL byte in the reason phrase: Chromium only (Firefox reads the response);
    - a status above 999: Firefox only (`CORSDidNotSucceed2`; Chromium reads the response), which the CORS
      check's outcome then carries as its Firefox reason.

    A network error has no CorsError name; DevTools reports a preflight's as `InvalidResponse`.
    Returns None when Chromium parses the response (what Firefox alone refuses: `_firefox_rejects_status`).
    """
    chromium_error = Reason.InvalidResponse if kind is Kind.PREFLIGHT else None
    h = response.headers
    name = h.name_of_value_with_nul() if isinstance(h, WireHeaders) else _name_of_value_with_nul(h)
    if name is not None:
        return Outcome(
            False,
            chromium_error,
            FirefoxReason.CORSDidNotSucceed,
            f"The response's {name!r} header holds a NUL byte: Chromium rejects the response before any CORS "
            "check (net::ERR_INVALID_HTTP_RESPONSE), Firefox too ('CORS request did not succeed').",
            f"remove the NUL byte from the {name!r} header; CORS headers cannot help",
        )
    if "\x00" in response.reason:
        return Outcome(
            False,
            chromium_error,
            None,
            "The status line's reason phrase holds a NUL byte: Chromium rejects the response before any CORS "
            "check (net::ERR_INVALID_HTTP_RESPONSE); Firefox reads it.",
            "remove the NUL byte from the status line's reason phrase",
        )
    return None


def _firefox_rejects_status(outcome: Outcome, status: int) -> Outcome:
    """Firefox refuses a status above 999 as a network error; Chromium reads such a response (#7.4)."""
    if status <= 999 or outcome.firefox_reason is FirefoxReason.CORSDidNotSucceed:
        return outcome
    text = f"{outcome.text} Firefox rejects status {status} (above 999) as a network error."
    return outcome._replace(firefox_reason=FirefoxReason.CORSDidNotSucceed, text=text)


def revalidated(stored: Response, not_modified: Response) -> Response:
    """[F] HTTP-network-or-cache fetch: a 304 to a revalidation updates the stored response's headers (a
    header the 304 carries replaces the stored one), and the CORS check runs on the result, in both browsers
    (BROWSERS.md §5.1; #7.7), whichever way the stored response was judged."""
    fresh = {name.lower() for name, _ in not_modified.headers.items()}
    kept = [(n, v) for n, v in stored.headers.items() if n.lower() not in fresh]
    return Response(stored.status, PlainHeaders([*kept, *not_modified.headers.items()]))


def evaluate(
    request: Request,
    response: Response,
    classification: Classification | None = None,
    stored: Response | None = None,
) -> Verdict:
    """Judge `response` to `request` as Chromium and Firefox would.

    The request must carry an `Origin` header. Credentials mode is not on the wire: a `Cookie` proves
    "include"; otherwise the verdict is for a non-credentialed request and `if_credentials` says what changes
    under `credentials: 'include'`. `stored` is the browser's cached copy that a 304 revalidates, when known.
    """
    if stored is not None and response.status == 304:
        response = revalidated(stored, response)
    origin = request.origin_header or ""
    c = classification or classify(request, origin)
    if c.kind in (Kind.SAME_ORIGIN, Kind.NOT_CORS):
        return Verdict(c.kind, origin, Outcome(True, text=c.note), Credentials.UNKNOWN, note=c.note)

    unparsable = _rejected_before_cors(response, c.kind)
    if unparsable is not None:
        return Verdict(c.kind, origin, unparsable, credentials_mode(request.headers), note=c.note)

    if c.kind is Kind.PREFLIGHT:
        # Preflights never carry credentials; the actual request's mode decides, and it is not known yet.
        parsed = _PreflightInput.read(request, response)
        plain, warnings = _judge_preflight(request, response, origin, False, parsed)
        creds = (
            _judge_preflight(request, response, origin, True, parsed)[0]
            if _include_may_differ(
                parsed.allow_origin,
                parsed.allow_credentials,
                origin,
                (*parsed.allow_methods.lines, *parsed.allow_headers.lines),
            )
            else plain
        )
        facts, max_age_warnings = _preflight_facts_and_warnings(response, parsed)
        warnings += max_age_warnings
        if not plain.allowed:
            text = f"{plain.text} The browser did not send the {facts.method} request."
            plain = Outcome(False, plain.reason, plain.firefox_reason, text, plain.fix)
        plain = _firefox_rejects_status(plain, response.status)
        return Verdict(  # positional, as in the actual request's below
            Kind.PREFLIGHT,
            origin,
            plain,
            Credentials.UNKNOWN,
            None if _same(plain, creds) else creds,
            (),  # unreadable headers: the page never reads a preflight's
            tuple(warnings),
            c.note,
            facts,
            None,  # redirect
        )

    credentials = credentials_mode(request.headers)
    include = credentials is Credentials.INCLUDE
    h = response.headers
    acao, acac = h.get_all("access-control-allow-origin"), h.get_all("access-control-allow-credentials")
    location = _redirect_location(response)
    outcome = _firefox_rejects_status(
        _judge_actual(request, response, origin, include, acao, acac, location), response.status
    )
    if_credentials = None
    exposing = h.get_all("access-control-expose-headers")
    if not include and _include_may_differ(acao, acac, origin, exposing):
        with_credentials = _judge_actual(request, response, origin, True, acao, acac, location)
        if not _same(outcome, with_credentials):
            if_credentials = with_credentials
    actual_warnings: list[str] = []
    vary = _vary_warning(response, origin, acao)
    if vary:
        actual_warnings.append(vary)
    if not outcome.allowed and _could_be_no_cors(request):
        actual_warnings.append(
            "This request carries no Sec-Fetch-Mode (plain-http targets never get it), so a no-cors request "
            "(mode: 'no-cors', navigator.sendBeacon) looks exactly like it: if the page sent it that way, the "
            "browser did not block it, the page just cannot read the response."
        )
    redirect = None
    if not outcome.allowed:
        unreadable = tuple(response.headers.keys())
    elif location is None:
        unreadable = _unreadable(response, include, exposing)
    else:  # a redirect the browser follows: the page never reads this response
        unreadable = ()
        redirect = fetchspec.resolve_redirect(request.url, location)
    return Verdict(  # positional, as every flow builds one: a NamedTuple built with keywords costs more
        Kind.ACTUAL,
        origin,
        outcome,
        credentials,
        if_credentials,
        unreadable,
        tuple(actual_warnings),
        c.note,
        None,  # preflight
        redirect,
    )


def judge(request: Request, response: Response, kind: Kind, include: bool) -> Outcome:
    """The outcome alone, under one credentials mode, of a preflight or CORS request: what `evaluate` decides for
    that mode (its `outcome`, or `if_credentials` for `include`), without the warnings, unreadable headers,
    cache facts and redirect target `evaluate` works out beside it. For checking a changed response (the
    complete fix) cheaply."""
    origin = request.origin_header or ""
    unparsable = _rejected_before_cors(response, kind)
    if unparsable is not None:
        return unparsable
    if kind is Kind.PREFLIGHT:
        return _judge_preflight(request, response, origin, include, _PreflightInput.read(request, response))[0]
    h = response.headers
    acao, acac = h.get_all("access-control-allow-origin"), h.get_all("access-control-allow-credentials")
    return _judge_actual(request, response, origin, include, acao, acac, _redirect_location(response))


def _could_be_no_cors(request: Request) -> bool:
    """A simple POST without Fetch Metadata: byte-for-byte the same as a no-cors POST."""
    return (
        request.method == "POST"
        and not request.headers.get_all("sec-fetch-mode")
        and not fetchspec.cors_unsafe_header_names(request.headers.items(multi=True))
    )


def forget() -> None:
    """Clear what judging remembers between flows (names, lists, texts, origins, redactions): the next flow is
    judged as if its server and page had never been seen. For benchmarks and tests; judgements do not change."""
    for cache in (
        _hidden_on_the_wire,
        _parse_allow_list,
        _access_blocked,
        _allowed,
        _max_age,
        fetchspec.serialize_origin,
        fetchspec.normalize_origin,
        fetchspec.same_origin,
        fetchspec.resolve_redirect,
        redact.redact_url,
        redact._is_secret_name,
    ):
        cache.cache_clear()
