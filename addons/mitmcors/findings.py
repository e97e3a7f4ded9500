"""Security findings from traffic alone: what a server's CORS answers let other sites read.

A verdict (`evaluator`) says whether the browsers let *this page* read a response. A finding says what the
server would let *any* page read: an origin reflected with credentials, `null` trusted, an https API trusting
http origins, per-origin answers cached without `Vary: Origin`, and the like. Findings are never verdicts and
never change one: they live under their own key (`findings`) and are computed from plain facts, here, without
mitmproxy and without sending anything.

How to use it (one tracker per addon):

    tracker = FindingsTracker()
    facts = facts_of(flow_id, request, response, kind)   # evaluator.Request / Response, or build FlowFacts
    new = tracker.observe(facts)       # the findings this flow is evidence of (once per server and route)
    tracker.findings()                 # every finding so far, most severe first; or for one server / route
    tracker.counts()                   # {finding id: number of server+route pairs}, for the summary

Each finding is reported once per server and route (`route_of`: the path without query, ids folded to
`{id}`), with the flow ids that show it (`evidence`, the first `MAX_EVIDENCE`) and how many flows did
(`count`). Some need several flows before they are sure (an origin echoed back is a reflection only once
several unrelated origins were each echoed, or one that no allow-list would contain): `observe` returns them
from the flow that made them sure on, with the earlier flows in their evidence.

What the browsers really do decides each `why` (BROWSERS.md): `Access-Control-Allow-Origin: *` never admits a
credentialed request, so `*` exposes only what an anonymous request gets; a credentialed cross-site request
carries only the cookies the browser sends in a third-party context (`SameSite=None` ones, when third-party
cookies are not blocked: Chromium's default, not Firefox's Total Cookie Protection); `null` is the origin of
any sandboxed iframe, which every site can create; Allow-Credentials on `*` is broken, not a hole.

Secrets (redact.py's policy): a finding holds flow ids, the server's origin, a route passed through
`redact_url`, request origins (validated, redacted) and Access-Control-* values; never a cookie, token or
authorization value. The input record itself only holds *whether* such headers were present.

Cost: `observe` is a few dict lookups per flow; memory is bounded (LRU over servers and routes, capped sets).
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from mitmcors import fetchspec, sites
from mitmcors.evaluator import HeaderLines, Kind, Request, Response
from mitmcors.redact import redact_url

__all__ = [
    "CATALOG",
    "MAX_EVIDENCE",
    "Finding",
    "FindingSpec",
    "FindingsTracker",
    "FlowFacts",
    "Severity",
    "facts_of",
    "is_loopback",
    "make_finding",
    "public_suffix",
    "render_text",
    "route_of",
    "site_of",
    "sort_key",
]

MAX_EVIDENCE: Final = 10  # flow ids kept per finding (the first ones); `count` counts them all
MAX_DETAILS: Final = 5  # values shown per finding (origins echoed, methods echoed ...)
REFLECTION_ORIGINS: Final = 3  # distinct origins echoed on one server ...
REFLECTION_SITES: Final = 2  # ... from at least this many different sites, before it counts as reflection
ECHOES_FOR_LISTS: Final = 2  # distinct requested methods / header sets each echoed back exactly
_MAX_ROUTE: Final = 200
_MAX_ORIGIN: Final = 200
# Words no allow-list contains: an origin whose host has one was made up to test the server (by hand, a
# scanner, or mitmcors' own probe), so a server that echoes it echoes anything.
_CANARY_WORDS: Final = ("evil", "attacker")
_CANARY_TLDS: Final = frozenset({"invalid"})  # RFC 2606: never a real site


class Severity(enum.StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK: Final = {Severity.HIGH: 3, Severity.MEDIUM: 2, Severity.LOW: 1, Severity.INFO: 0}


@dataclass(frozen=True, slots=True)
class FindingSpec:
    """The fixed texts of one finding id: a one-line title, what it lets an attacker's page read, the fix."""

    id: str
    title: str
    why: str
    fix: str


def _spec(id: str, title: str, why: str, fix: str) -> tuple[str, FindingSpec]:
    return id, FindingSpec(id, title, " ".join(why.split()), " ".join(fix.split()))


_EXACT_LIST_FIX = (
    "compare the whole Origin with an exact list of trusted origins (a set lookup on 'scheme://host:port', not "
    "startswith, endswith, substring or an unanchored regex), send Access-Control-Allow-Origin (and "
    "Allow-Credentials) only for those, and add 'Vary: Origin'"
)

# Every finding id, passive (this module) and from the probe (probe.py). Ids are stable: scripts rely on them.
CATALOG: Final[Mapping[str, FindingSpec]] = dict(
    [
        _spec(
            "origin-reflected-with-credentials",
            "Any origin is allowed, with credentials: Access-Control-Allow-Origin echoes the request's Origin",
            """The server copies whatever Origin it receives into Access-Control-Allow-Origin and sends
            'Access-Control-Allow-Credentials: true'. Any site the user visits can call this API with
            fetch(url, {credentials: 'include'}) and read the answers made with the user's cookies (those the
            browser sends cross-site: SameSite=None cookies while third-party cookies are allowed, Chromium's
            default) or HTTP authentication; after a passing preflight it can also send PUT, DELETE or JSON
            requests as the user and read the results.""",
            _EXACT_LIST_FIX,
        ),
        _spec(
            "origin-reflected",
            "Any origin is allowed: Access-Control-Allow-Origin echoes the request's Origin",
            """The server copies whatever Origin it receives into Access-Control-Allow-Origin, without
            'Access-Control-Allow-Credentials: true'. Any site can read these responses, but only as an
            anonymous request gets them: browsers refuse a credentialed request unless Allow-Credentials is
            'true', so no cookies and no HTTP authentication. That is what '*' allows too; it matters when the
            server answers anonymous requests with private data because of where they come from (an intranet,
            a VPN, localhost, an IP allow-list), and it hides the policy from caches and reviewers.""",
            "if the data is public, send 'Access-Control-Allow-Origin: *'; otherwise " + _EXACT_LIST_FIX,
        ),
        _spec(
            "null-origin-trusted-with-credentials",
            "The 'null' origin is allowed, with credentials",
            """'Access-Control-Allow-Origin: null' with 'Allow-Credentials: true' admits every request whose
            Origin is 'null', and any site can send one: a sandboxed iframe (<iframe sandbox="allow-scripts">)
            has an opaque origin, and so do data: documents, file: pages and requests after a cross-origin
            redirect. Such a page reads the answers made with the user's cookies wherever the browser sends
            them cross-site (SameSite=None cookies while third-party cookies are allowed).""",
            "never allow 'null': remove it from the allowed origins (it usually comes from a list that admits "
            "'null' for file: pages or sandboxed frames during development)",
        ),
        _spec(
            "null-origin-trusted",
            "The 'null' origin is allowed",
            """'Access-Control-Allow-Origin: null' admits every request whose Origin is 'null', which any site
            can send from a sandboxed iframe (also data: documents, file: pages and requests after a
            cross-origin redirect). Without 'Allow-Credentials: true' such a page reads only what an anonymous
            request gets, as with '*'; with it, it would read the user's data.""",
            "remove 'null' from the allowed origins; use '*' if the data is public",
        ),
        _spec(
            "http-origin-trusted",
            "An https API trusts a plain-http origin",
            """The server lets an http:// origin read its https responses. Anyone on the user's network path
            (public Wi-Fi, a hostile router or ISP) can inject a script into any page of that plain-http origin
            and read this API as that origin (with the user's cookies when Allow-Credentials is 'true'), which
            undoes what TLS protects. http://localhost and other loopback origins are not reported.""",
            "trust only https origins in production (keep http://localhost for development builds)",
        ),
        _spec(
            "allow-origin-without-vary",
            "Per-origin Access-Control-Allow-Origin without 'Vary: Origin'",
            """The server answers different origins with different CORS headers, but without 'Vary: Origin'.
            The browser's HTTP cache and shared caches (a CDN, a reverse proxy) may then hand one origin's answer
            to another: a legitimate page gets a CORS error it cannot explain, or a cached answer naming one
            origin reaches requests from another (cache poisoning). It does not by itself let a page read data
            it could not read anyway.""",
            "add 'Vary: Origin' to every response whose CORS headers depend on the Origin, including those "
            "without Access-Control-Allow-Origin",
        ),
        _spec(
            "wildcard-on-private-response",
            "'Access-Control-Allow-Origin: *' on a response that looks private",
            """'*' lets every site read this response, but browsers never send cookies or HTTP authentication
            with such a read (a credentialed request fails against '*'): an attacker's page gets what an
            anonymous request from the user's browser gets. This response looks private (it sets a cookie, is
            'Cache-Control: private', or answers a request with an Authorization header). A bearer token the
            page adds itself is not available to other sites; private data served without one (by network
            position, client IP, or a token in the URL) is readable by every site.""",
            "send '*' only on public responses; for private ones return the checked origin (exact list) with "
            "'Vary: Origin'",
        ),
        _spec(
            "methods-reflected",
            "Access-Control-Allow-Methods echoes whatever method the preflight asks for",
            """Different preflights on this route each got exactly the method they asked for. The preflight is
            the server's chance to refuse methods that change data; echoing approves every method (DELETE,
            PUT, PATCH ...) for every origin the server trusts, so any flaw in the origin check reaches them
            too.""",
            "list the methods the route supports, e.g. 'Access-Control-Allow-Methods: GET, POST, PUT'",
        ),
        _spec(
            "headers-reflected",
            "Access-Control-Allow-Headers echoes whatever headers the preflight asks for",
            """Different preflights on this route each got exactly the request headers they asked for: the server
            approves any header for any origin it trusts, so headers it never meant to accept cross-origin
            (X-HTTP-Method-Override, internal routing or debug headers) are approved too.""",
            "list the request headers the API accepts, e.g. 'Access-Control-Allow-Headers: Content-Type, "
            "Authorization'",
        ),
        _spec(
            "max-age-above-browser-caps",
            "Access-Control-Max-Age above every browser's cap",
            """Browsers cap how long they cache a preflight answer: Chromium 7200 s, Firefox 86400 s (WebKit
            600 s). A larger value is cut to those caps, so it does not make preflights any rarer; and while an
            answer is cached, a change to the server's CORS policy (an origin removed) takes that long to reach
            users.""",
            "send 'Access-Control-Max-Age: 7200' or less",
        ),
        _spec(
            "wildcard-with-credentials",
            "'Access-Control-Allow-Credentials: true' with 'Access-Control-Allow-Origin: *' (broken, not a hole)",
            """Browsers refuse every credentialed request against '*' (Chromium WildcardOriginNotAllowed, Firefox
            CORSNotSupportingCredentials) and ignore Allow-Credentials on the others: no page can read a
            response with the user's cookies this way. It is not a vulnerability; it breaks the pages that need
            credentials.""",
            "for credentialed requests return the checked origin (exact list) with 'Allow-Credentials: true' and "
            "'Vary: Origin'; for public data drop Allow-Credentials",
        ),
        # -- confirmed by the probe (probe.py) --------------------------------------------------------------
        _spec(
            "origin-check-prefix-match",
            "The origin check accepts any origin that starts with a trusted one",
            """The server trusted a host made by appending a domain to a trusted origin's host
            (https://trusted.example.evil.test), which whoever owns that domain can serve. The check tests
            that the Origin starts with a trusted value (startswith, an unanchored regex, indexOf == 0), so
            any site can pass it and read what the response allows (with the user's cookies when
            Allow-Credentials is 'true').""",
            _EXACT_LIST_FIX,
        ),
        _spec(
            "origin-check-suffix-match",
            "The origin check accepts any origin that ends with a trusted domain",
            """The server trusted a host made by prefixing a trusted registrable domain with letters
            (https://eviltrusted.example), a different site anyone can register. The check tests that the
            Origin ends with a trusted domain without a leading dot (endswith, a regex without '\\.' before the
            domain), so such sites pass it and read what the response allows.""",
            _EXACT_LIST_FIX,
        ),
        _spec(
            "origin-regex-unescaped-dot",
            "The origin check is a regular expression with an unescaped dot",
            """The server trusted a trusted origin with one of its dots replaced by a letter
            (https://appxtrusted.example for https://app.trusted.example): the dot in its regular expression
            matches any character. When the replaced dot is left of the registrable domain, the result is a
            different site anyone can register.""",
            "escape the dots ('^https://app\\.trusted\\.example$') and anchor both ends, or better compare with "
            "an exact list",
        ),
        _spec(
            "origin-check-special-chars",
            "The origin check stops at a special character browsers accept in host names",
            """The server trusted a trusted host followed by a character such as '_' or '}' and another domain
            (https://trusted.example_.evil.test). Browsers accept these characters in host names (the URL
            Standard forbids only a few; Chromium's parser was measured), so the page at that origin belongs to
            whoever owns the trailing domain; the server's parser or regex ('\\b', '[^.]') stopped early.
            '_' also resolves through Chromium's DNS client; the others need a resolver that allows them.""",
            _EXACT_LIST_FIX,
        ),
        _spec(
            "any-subdomain-trusted",
            "Every subdomain of a trusted site is trusted",
            """The server trusted a subdomain nobody uses (https://evil.trusted.example): it trusts every
            subdomain. Any subdomain that serves someone else's content (an XSS, a user-content host, a dangling
            DNS record taken over) can then read these responses, and being same-site it even gets the user's
            SameSite=Lax cookies.""",
            "list the exact subdomains that need access instead of a '*.trusted.example' pattern",
        ),
    ]
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding for one server and route. `evidence`: the first flow ids that show it; `count`: all of them;
    `details`: the values involved (origins echoed, methods, Max-Age ...), capped."""

    id: str
    severity: Severity
    title: str
    evidence: tuple[str, ...]
    fix: str
    why: str
    server: str = ""
    route: str = ""
    count: int = 0
    details: tuple[str, ...] = ()

    def annotation(self) -> dict[str, Any]:
        """The `findings` entry of a flow's annotation: `{id, severity, title, evidence, fix}`."""
        return {
            "id": self.id,
            "severity": self.severity.value,
            "title": self.title,
            "evidence": list(self.evidence),
            "fix": self.fix,
        }

    def as_dict(self) -> dict[str, Any]:
        """Everything, for the report and `cors.findings` as JSON."""
        return {
            **self.annotation(),
            "why": self.why,
            "server": self.server,
            "route": self.route,
            "count": self.count,
            "details": list(self.details),
        }


def make_finding(
    id: str,
    severity: Severity,
    evidence: Iterable[str],
    *,
    server: str = "",
    route: str = "",
    count: int | None = None,
    details: Iterable[str] = (),
) -> Finding:
    """A finding with its catalogue texts (KeyError for an unknown id)."""
    spec = CATALOG[id]
    ev = tuple(dict.fromkeys(evidence))[:MAX_EVIDENCE]
    return Finding(
        id,
        severity,
        spec.title,
        ev,
        spec.fix,
        spec.why,
        server,
        route,
        len(ev) if count is None else count,
        tuple(dict.fromkeys(details))[:MAX_DETAILS],
    )


def sort_key(f: Finding) -> tuple[int, str, str, str]:
    return (-f.severity.rank, f.id, f.server, f.route)


# --------------------------------------------------------------------------------------------------------------
# The input record


class FlowFacts(NamedTuple):
    """The plain facts of one cross-origin flow that findings look at (`facts_of` reads them off a flow).

    `server` is the target's serialized origin (`https://api.example`), `route` is `route_of(path)`, `origin`
    the request's Origin header. Credentials are booleans only: whether a Cookie (credentials mode "include") or
    an Authorization header was on the request, whether the response set a cookie. Access-Control-* values are
    the raw header lines; `vary` and `cache_control` hold lowercased names / directive names.
    """

    flow_id: str
    server: str
    route: str
    origin: str
    method: str
    kind: str  # evaluator.Kind value: only "preflight" and "actual" are looked at
    cookie: bool = False
    authorization: bool = False
    requested_method: str = ""  # a preflight's Access-Control-Request-Method
    requested_headers: tuple[str, ...] = ()  # a preflight's Access-Control-Request-Headers, lowercased
    status: int = 0
    allow_origin: tuple[str, ...] = ()
    allow_credentials: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    max_age: str | None = None
    vary: tuple[str, ...] = ()
    cache_control: tuple[str, ...] = ()
    set_cookie: bool = False


def _first(headers: HeaderLines, name: str) -> str | None:
    values = headers.get_all(name)
    return values[0].strip() if values else None


# Every finding is about one of these response headers (FindingsTracker._judge): a response with none of them
# is no evidence of anything, and its flow is not looked at.
_EVIDENCE: Final = (
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
)


def may_show_findings(request: Request, response_headers: HeaderLines, kind: str) -> bool:
    """Whether a flow can be evidence of a finding, decided from a few header lookups before its `FlowFacts` are
    read (FindingsTracker._judge, branch by branch). Most flows cannot: a blocked response carries none of the
    headers findings are about, and a public API's plain `Access-Control-Allow-Origin: *` is a finding only with
    credentials, a cookie being set, a private response or an Authorization header."""
    r = response_headers
    if not any(r.get_all(name) for name in _EVIDENCE):
        return False
    if kind == Kind.PREFLIGHT.value or r.get_all("access-control-max-age"):
        return True  # the allow lists are judged on every preflight; Max-Age on every response
    allow_origin = r.get_all("access-control-allow-origin")
    if len(allow_origin) != 1:
        return False  # only a single Allow-Origin line is judged
    value = allow_origin[0].strip(" \t")
    if value == "*":
        credentials = r.get_all("access-control-allow-credentials")
        private = "private" in _cache_directives(r)
        return bool(credentials or r.get_all("set-cookie") or private or request.headers.get_all("authorization"))
    return value == "null" or value == (request.origin_header or "")  # null, or the request's own origin


def _cache_directives(response_headers: HeaderLines) -> tuple[str, ...]:
    """Cache-Control's directive names, lowercased (`private`, `no-store`, `max-age` ...)."""
    return tuple(d.split("=", 1)[0].strip() for d in fetchspec.split_names(response_headers.get_all("cache-control")))


def facts_of(flow_id: str, request: Request, response: Response, kind: str) -> FlowFacts:
    """Read a flow's facts off the evaluator's request and response (about a dozen header lookups)."""
    q, r = request.headers, response.headers
    preflight = kind == Kind.PREFLIGHT.value
    return FlowFacts(
        flow_id=flow_id,
        server=fetchspec.serialize_origin(request.scheme, request.host, request.port),
        route=route_of(request.path),
        origin=request.origin_header or "",
        method=request.method,
        kind=str(kind),
        cookie=bool(q.get_all("cookie")),
        authorization=bool(q.get_all("authorization")),
        requested_method=(_first(q, "access-control-request-method") or "") if preflight else "",
        requested_headers=tuple(fetchspec.split_names(q.get_all("access-control-request-headers")))
        if preflight
        else (),
        status=response.status,
        allow_origin=tuple(r.get_all("access-control-allow-origin")),
        allow_credentials=tuple(r.get_all("access-control-allow-credentials")),
        allow_methods=tuple(r.get_all("access-control-allow-methods")) if preflight else (),
        allow_headers=tuple(r.get_all("access-control-allow-headers")) if preflight else (),
        max_age=_first(r, "access-control-max-age"),
        vary=tuple(fetchspec.split_names(r.get_all("vary"))),
        cache_control=_cache_directives(r),
        set_cookie=bool(r.get_all("set-cookie")),
    )


# --------------------------------------------------------------------------------------------------------------
# Routes, origins, sites

_ID_SEGMENT: Final = re.compile(
    r"[0-9]+|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}|[0-9a-fA-F]{12,}"
)


def _looks_like_id(segment: str) -> bool:
    if not segment:
        return False
    if _ID_SEGMENT.fullmatch(segment):
        return True
    # A long opaque value (a hash, a token, a slug with an id): letters and digits mixed.
    return len(segment) >= 16 and any(c.isdigit() for c in segment) and any(c.isalpha() for c in segment)


@functools.lru_cache(maxsize=4096)
def route_of(path: str) -> str:
    """A path as findings group it: no query or fragment, ids and opaque segments folded to `{id}`
    (`/users/42/orders?page=2` → `/users/{id}/orders`), secret path parameters redacted, at most 200 chars."""
    path = path.split("#", 1)[0].split("?", 1)[0]
    segments = []
    for segment in path.split("/"):
        name, semicolon, params = segment.partition(";")
        segments.append(("{id}" if _looks_like_id(name) else name) + semicolon + params)
    route = redact_url("/".join(segments)) or "/"
    return route if len(route) <= _MAX_ROUTE else route[: _MAX_ROUTE - 1] + "…"


def _host_of(origin: str) -> tuple[str, str] | None:
    """(scheme, host) of a serialized tuple origin, else None. IPv6 hosts keep their brackets."""
    scheme, sep, rest = origin.partition("://")
    if not sep:
        return None
    if rest.startswith("["):
        return scheme, rest[: rest.find("]") + 1]
    return scheme, rest.rsplit(":", 1)[0] if ":" in rest else rest


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """`localhost`, `*.localhost` (RFC 6761), 127.0.0.0/8 and ::1: this machine."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = _ip(host)
    return ip is not None and ip.is_loopback


public_suffix = sites.public_suffix


@functools.lru_cache(maxsize=4096)
def site_of(host: str) -> str:
    """The host's site: its registrable domain (`app.example.co.uk` → `example.co.uk`), the address for an IP,
    and `localhost` for every loopback name or address."""
    host = host.lower().rstrip(".")
    if is_loopback(host):
        return "localhost"
    if _ip(host) is not None:
        return host
    suffix = public_suffix(host)
    if suffix == host or not host.endswith("." + suffix):
        return host
    rest = host[: -len(suffix) - 1]
    return f"{rest.rsplit('.', 1)[-1]}.{suffix}"


def _is_canary(host: str) -> bool:
    """A host whose label (or a `-` part of one) starts with a canary word, or under `.invalid`: `evil.test`,
    `eviltrusted.example`, `my-attacker.test`; not `devil.example`."""
    host = host.lower()
    parts = host.replace("-", ".").split(".")
    return host.rsplit(".", 1)[-1] in _CANARY_TLDS or any(p.startswith(_CANARY_WORDS) for p in parts)


@functools.lru_cache(maxsize=1024)
def _writable_origin(origin: str) -> str | None:
    """A request origin as findings may write it: a valid serialized tuple origin, redacted; else None."""
    if len(origin) > _MAX_ORIGIN or fetchspec.normalize_origin(origin) != origin:
        return None
    return redact_url(origin)


def _single(lines: tuple[str, ...]) -> str | None:
    """The one value of a header sent once, stripped as browsers strip it; None when absent or repeated."""
    return lines[0].strip(" \t") if len(lines) == 1 else None


# --------------------------------------------------------------------------------------------------------------
# The tracker


@dataclass(slots=True)
class _Found:
    """One finding's evidence so far (or, pending, the evidence for a finding not yet sure)."""

    severity: Severity
    evidence: list[str] = field(default_factory=list)
    count: int = 0
    details: list[str] = field(default_factory=list)

    def add(self, flow_id: str, severity: Severity, detail: str | None) -> None:
        if severity.rank > self.severity.rank:
            self.severity = severity
        if len(self.evidence) < MAX_EVIDENCE and flow_id not in self.evidence:
            self.evidence.append(flow_id)
        self.count += 1
        if detail is not None and len(self.details) < MAX_DETAILS and detail not in self.details:
            self.details.append(detail)

    def merge(self, other: _Found) -> None:
        if other.severity.rank > self.severity.rank:
            self.severity = other.severity
        for flow_id in other.evidence:
            if len(self.evidence) < MAX_EVIDENCE and flow_id not in self.evidence:
                self.evidence.append(flow_id)
        self.count += other.count
        for detail in other.details:
            if len(self.details) < MAX_DETAILS and detail not in self.details:
                self.details.append(detail)


@dataclass(slots=True)
class _Server:
    echoed: dict[str, str] = field(default_factory=dict)  # origin echoed in Allow-Origin → its site (capped)
    canary: bool = False  # an origin no list contains was echoed

    @property
    def reflects(self) -> bool:
        return self.canary or (
            len(self.echoed) >= REFLECTION_ORIGINS and len(set(self.echoed.values())) >= REFLECTION_SITES
        )


_REFLECTED: Final = ("origin-reflected", "origin-reflected-with-credentials")


@dataclass(slots=True)
class _Route:
    server: str
    route: str
    found: dict[str, _Found] = field(default_factory=dict)
    pending: dict[str, _Found] = field(default_factory=dict)  # evidence of findings that are not sure yet
    echoed: set[str] = field(default_factory=set)  # origins echoed on this route (capped)
    methods: set[str] = field(default_factory=set)  # requested methods echoed back exactly (capped)
    headers: set[str] = field(default_factory=set)  # requested header sets echoed back exactly (capped)

    def note(self, id: str, flow_id: str, severity: Severity, detail: str | None, sure: bool) -> bool:
        """Record one flow's evidence for `id`: into the finding when `sure` (with what was pending), else
        pending. True when the finding exists now."""
        if not sure:
            self.pending.setdefault(id, _Found(severity)).add(flow_id, severity, detail)
            return False
        found = self.found.get(id)
        if found is None:
            found = self.found[id] = _Found(severity)
        self.promote(id)
        found.add(flow_id, severity, detail)
        return True

    def promote(self, id: str) -> None:
        """A finding became sure: what was pending for it is its evidence now."""
        pending = self.pending.pop(id, None)
        if pending is not None:
            self.found.setdefault(id, _Found(pending.severity)).merge(pending)


class _LRU(OrderedDict[Any, Any]):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def get_or_add(self, key: Any, make: Any) -> Any:
        value = self.get(key)
        if value is None:
            value = self[key] = make()
            while len(self) > self.limit:
                self.popitem(last=False)
        else:
            self.move_to_end(key)
        return value


_CORS_KINDS: Final = frozenset({Kind.PREFLIGHT.value, Kind.ACTUAL.value})
_MAX_SEEN: Final = 16  # distinct values remembered per route and per set


class FindingsTracker:
    """Passive findings per server and route, from each cross-origin flow's `FlowFacts`. Bounded memory."""

    def __init__(self, max_routes: int = 4096, max_servers: int = 1024) -> None:
        self._routes: _LRU = _LRU(max_routes)  # (server, route) → _Route
        self._servers: _LRU = _LRU(max_servers)  # server → _Server

    def __len__(self) -> int:
        """How many server+route pairs are remembered."""
        return len(self._routes)

    def observe(self, facts: FlowFacts) -> tuple[Finding, ...]:
        """Take one flow's facts; return the findings (of its server and route) this flow is evidence of."""
        if facts.kind not in _CORS_KINDS:
            return ()
        rs: _Route = self._routes.get_or_add((facts.server, facts.route), lambda: _Route(facts.server, facts.route))
        ss: _Server = self._servers.get_or_add(facts.server, _Server)
        hits = self._judge(facts, rs, ss)
        self._catch_up(rs, ss)
        if not hits:
            return ()
        return tuple(sorted((self._finding(rs, id) for id in hits), key=sort_key))

    def findings(self, server: str | None = None, route: str | None = None) -> tuple[Finding, ...]:
        """Every finding remembered, or those of one server (and route), most severe first."""
        out: list[Finding] = []
        for (s, r), rs in list(self._routes.items()):
            if (server is not None and s != server) or (route is not None and r != route):
                continue
            ss = self._servers.get(s)
            if ss is not None:
                self._catch_up(rs, ss)
            out.extend(self._finding(rs, id) for id in rs.found)
        return tuple(sorted(out, key=sort_key))

    def counts(self) -> dict[str, int]:
        """For the summary: finding id → number of server+route pairs that have it."""
        counts: dict[str, int] = {}
        for f in self.findings():
            counts[f.id] = counts.get(f.id, 0) + 1
        return dict(sorted(counts.items()))

    def trusted_origins(self, server: str) -> tuple[str, ...]:
        """The origins this server was seen to allow by name (echoed in Allow-Origin): the probe's bases."""
        ss = self._servers.get(server)
        return tuple(ss.echoed) if ss is not None else ()

    # -- rules ------------------------------------------------------------------------------------------------

    @staticmethod
    def _catch_up(rs: _Route, ss: _Server) -> None:
        """A reflection proven on another route of the server makes this route's echoes evidence too."""
        if ss.reflects and rs.pending:
            for id in (*_REFLECTED, "allow-origin-without-vary"):
                rs.promote(id)

    def _judge(self, f: FlowFacts, rs: _Route, ss: _Server) -> set[str]:
        hits: set[str] = set()
        fid = f.flow_id
        acao = _single(f.allow_origin)
        credentials = [v.strip(" \t") for v in f.allow_credentials] == ["true"]

        if acao == "*":
            if credentials:
                rs.note("wildcard-with-credentials", fid, Severity.INFO, None, sure=True)
                hits.add("wildcard-with-credentials")
            page_token = f.authorization or "authorization" in f.requested_headers
            if f.set_cookie or "private" in f.cache_control or page_token:
                rs.note("wildcard-on-private-response", fid, Severity.LOW, None, sure=True)
                hits.add("wildcard-on-private-response")
        elif acao == "null":
            id = "null-origin-trusted-with-credentials" if credentials else "null-origin-trusted"
            rs.note(id, fid, Severity.HIGH if credentials else Severity.LOW, "null", sure=True)
            hits.add(id)
        elif acao is not None and acao == f.origin:
            hits.update(self._echo(f, rs, ss, credentials))

        if f.kind == Kind.PREFLIGHT.value:
            hits.update(self._lists(f, rs))
        if f.max_age is not None and fetchspec.parse_max_age_firefox(f.max_age)[1]:
            value = f.max_age.strip()
            rs.note("max-age-above-browser-caps", fid, Severity.INFO, value if len(value) <= 20 else ">86400", True)
            hits.add("max-age-above-browser-caps")
        return hits

    def _echo(self, f: FlowFacts, rs: _Route, ss: _Server, credentials: bool) -> set[str]:
        """Allow-Origin names the request's own origin: reflection, http origins, Vary."""
        hits: set[str] = set()
        written = _writable_origin(f.origin)
        parts = _host_of(f.origin) if written is not None else None
        if parts is None:
            return hits
        scheme, host = parts
        if f.origin not in ss.echoed and len(ss.echoed) < 4 * _MAX_SEEN:
            ss.echoed[f.origin] = site_of(host)
            ss.canary = ss.canary or _is_canary(host)
        if len(rs.echoed) < _MAX_SEEN:
            rs.echoed.add(f.origin)

        id = _REFLECTED[credentials]
        if rs.note(id, f.flow_id, Severity.HIGH if credentials else Severity.LOW, written, sure=ss.reflects):
            hits.add(id)

        if f.server.startswith("https://") and scheme == "http" and not is_loopback(host):
            rs.note("http-origin-trusted", f.flow_id, Severity.MEDIUM if credentials else Severity.LOW, written, True)
            hits.add("http-origin-trusted")

        # Per-origin answers: two origins echoed here (or a reflecting server). Each echo without Vary is
        # evidence; once per-origin is sure, so are the earlier ones.
        per_origin = len(rs.echoed) >= 2 or ss.reflects
        vary = "origin" in f.vary or "*" in f.vary or "no-store" in f.cache_control
        if not vary:
            if rs.note("allow-origin-without-vary", f.flow_id, Severity.LOW, None, per_origin):
                hits.add("allow-origin-without-vary")
        elif per_origin:
            rs.promote("allow-origin-without-vary")
        return hits

    def _lists(self, f: FlowFacts, rs: _Route) -> set[str]:
        """A preflight whose Allow-Methods / Allow-Headers is exactly what it asked for: once different
        requests each got their own request back, no static list explains it."""
        hits: set[str] = set()
        methods = [m.strip(" \t") for line in f.allow_methods for m in line.split(",") if m.strip(" \t")]
        if f.requested_method and methods == [f.requested_method]:
            value = f.requested_method
            if len(rs.methods) < _MAX_SEEN:
                rs.methods.add(value)
            detail = value if fetchspec.is_token(value) and len(value) <= 40 else None
            sure = len(rs.methods) >= ECHOES_FOR_LISTS
            if rs.note("methods-reflected", f.flow_id, Severity.LOW, detail, sure):
                hits.add("methods-reflected")
        if f.requested_headers:
            requested = sorted(set(f.requested_headers))
            if sorted(set(fetchspec.split_names(f.allow_headers))) == requested:
                value = ",".join(requested)
                if len(rs.headers) < _MAX_SEEN:
                    rs.headers.add(value)
                tokens = all(fetchspec.is_token(name) for name in requested)
                detail = value if tokens and len(value) <= 80 else None
                sure = len(rs.headers) >= ECHOES_FOR_LISTS
                if rs.note("headers-reflected", f.flow_id, Severity.LOW, detail, sure):
                    hits.add("headers-reflected")
        return hits

    @staticmethod
    def _finding(rs: _Route, id: str) -> Finding:
        found = rs.found[id]
        return make_finding(
            id,
            found.severity,
            found.evidence,
            server=rs.server,
            route=rs.route,
            count=max(found.count, len(found.evidence)),
            details=found.details,
        )


def render_text(findings: Iterable[Finding]) -> str:
    """`cors.findings` as text: one block per finding, most severe first."""
    blocks = []
    for f in sorted(findings, key=sort_key):
        more = f" (+{f.count - len(f.evidence)} more)" if f.count > len(f.evidence) else ""
        lines = [
            f"[{f.severity.value.upper()}] {f.id}: {f.server}{f.route}",
            f"  {f.title}",
            f"  why: {f.why}",
            f"  fix: {f.fix}",
            f"  flows: {', '.join(f.evidence)}{more}",
        ]
        if f.details:
            lines.insert(2, f"  seen: {', '.join(f.details)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "no CORS findings"
