"""`cors.suggest`: the least-privilege CORS policy that makes every observed cross-origin flow pass.

The input is one plain `Observation` per judged flow (a preflight or a cross-origin CORS request), built from a
flow and its `metadata["cors"]` by `observation_from_flow`; everything else here is mitmproxy-free. `suggest`
groups them by server origin and route and computes a `Policy`; `render` writes it as a mitmcors rule file or as
server configuration (`FORMATS`; the writers are in `suggest_formats`).

How the policy is decided (each rendered output repeats what applies to it as comments):

- **Routes.** Paths are compared without query. Paths that share their parent directory become one route
  `parent/*` when at least `min_siblings` (default 2) distinct ones are seen (`/api/items` and `/api/users` give
  `/api/*`; `/items/1` and `/items/2` give `/items/*`); a path or route that lies under another route's prefix
  is merged into it (`/api/*` takes `/api/v1/x`); every other path is its own exact route. One level only:
  `/api/x` and `/auth/login` stay two exact routes, they do not become `/*`; but siblings at the top
  (`/login` and `/logout`) do make `/*`, which then takes every path of that server. `*` in a route is a glob that also
  crosses `/` (`fnmatch`, as the rule file's `match.path`).
- **Origins.** Exactly the origins seen. When `wildcard_subdomains` (default 3) or more distinct subdomains of one
  registrable domain (Public Suffix List; everything under `localhost` counts as one) are seen with the same scheme
  and port, they are replaced by one pattern (`https://*.example.com`), and the output says so. `null` is never
  suggested unless asked for (`allow_null`), and is always warned about; `reflect` and `*` only when asked for
  (`origins=`), never `*` with credentials.
- **Methods.** The methods sent (and asked for by preflights), as sent: browsers compare Allow-Methods
  case-sensitively. GET, HEAD and POST never need listing (`Group.methods` leaves them out); some frameworks check
  a preflight's method against their list, so `Group.methods_seen` keeps every method for them.
- **Request headers.** The names preflights asked for (Access-Control-Request-Headers), plus the CORS-unsafe
  names on requests that had no preflight before them (served from the browser's preflight cache), lowercased and
  sorted. `if-none-match` and `if-modified-since` on such requests are the browser's revalidation, not the page's.
- **Credentials.** Only when some request carried a cookie (`credentials: include`). A request without one may
  still be credentialed (no cookie stored yet): the output then says that the policy is for requests without
  credentials.
- **Expose-Headers.** The names the caller passes (`expose=`), plus the response headers the server sent on
  actual responses that a page may read: not CORS-safelisted (the page reads those anyway), not forbidden
  (Set-Cookie), not `Access-Control-*`, and not transport or infrastructure headers a page has no use for (`Date`,
  `Server`, `Connection`, `Vary`, `ETag`, security policies, CDN headers: `NOT_EXPOSED`; ETag because most servers
  add it to every response: pass it in `expose=` when the page reads it), and `Location` only from non-redirect
  responses (a 201's Location; the browser follows a redirect's itself). The names left out are listed in a
  comment.
- **max_age.** 600 s: Chromium caps at 7200 and Firefox at 86400 (WebKit at 600), so every browser honours it,
  and a changed policy reaches browsers within ten minutes.

Warnings are part of the policy: `null` seen, a method only a blocked preflight asked for (the request was never
sent: nothing is known about its response), one flow only for a route, credentials for many origins, a lowercase
method, no cross-origin flow at all.
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import ipaddress
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from mitmcors import fetchspec, sites

if TYPE_CHECKING:
    from mitmproxy import http

__all__ = [
    "DEFAULT_MAX_AGE",
    "FORMATS",
    "NOT_EXPOSED",
    "Group",
    "Observation",
    "OriginPatternSuggestion",
    "Policy",
    "observation_from_flow",
    "render",
    "suggest",
    "suggest_flows",
]


class Format(enum.StrEnum):
    RULE = "rule"
    STARLETTE = "starlette"
    EXPRESS = "express"
    DJANGO = "django"
    FLASK = "flask"
    NGINX = "nginx"


FORMATS: Final = tuple(f.value for f in Format)
DEFAULT_MAX_AGE: Final = 600
CREDENTIALED_ORIGINS_WARN: Final = 4  # credentials for this many origins or more: each one can act as the user

# Response headers a page has no use for: transport, caching infrastructure, security policy, CDN. Never
# suggested for Access-Control-Expose-Headers unless the caller names them.
NOT_EXPOSED: Final = frozenset(
    {
        # connection and transfer
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-encoding",
        "alt-svc",
        "alt-used",
        # general
        "date",
        "server",
        "via",
        "age",
        "vary",
        "etag",
        "accept-ranges",
        "allow",
        "x-powered-by",
        "x-aspnet-version",
        "x-runtime",
        # security and reporting policies (the browser reads them, the page does not)
        "strict-transport-security",
        "content-security-policy",
        "content-security-policy-report-only",
        "x-content-type-options",
        "x-frame-options",
        "x-xss-protection",
        "referrer-policy",
        "permissions-policy",
        "feature-policy",
        "cross-origin-opener-policy",
        "cross-origin-embedder-policy",
        "cross-origin-resource-policy",
        "origin-agent-cluster",
        "nel",
        "report-to",
        "reporting-endpoints",
        "expect-ct",
        "x-dns-prefetch-control",
        "x-download-options",
        "x-permitted-cross-domain-policies",
        "timing-allow-origin",
        "server-timing",  # governed by Timing-Allow-Origin, not by Expose-Headers
        # caches and CDNs
        "x-cache",
        "x-cache-hits",
        "x-served-by",
        "x-timer",
        "cf-ray",
        "cf-cache-status",
        "x-amz-cf-id",
        "x-amz-cf-pop",
    }
)
# Request headers the browser adds when it revalidates a cached response (Chromium does not count them as the
# page's: BROWSERS.md §3.2): on a request with no preflight before it they are not evidence of a page header.
_REVALIDATION_HEADERS: Final = frozenset({"if-none-match", "if-modified-since"})
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})


# --------------------------------------------------------------------------------------------------
# Input


@dataclass(frozen=True, slots=True)
class Observation:
    """One judged cross-origin flow, as plain values (`observation_from_flow` builds it from a flow).

    `path` has no query. `requested_method`/`requested_headers` are a preflight's Access-Control-Request-Method and
    -Headers (lowercased names); `unsafe_request_headers` the CORS-unsafe names an actual request carried.
    `credentials` is `include` (a cookie was on the wire), `unknown` or `omit`. `status` is None when the flow got
    no response; `response_header_names` are all the names on an actual request's response.
    """

    flow_id: str
    kind: str  # "preflight" or "actual"
    method: str  # as sent
    scheme: str
    host: str
    port: int
    path: str
    origin: str
    requested_method: str = ""
    requested_headers: tuple[str, ...] = ()
    unsafe_request_headers: tuple[str, ...] = ()
    credentials: str = "unknown"
    verdict: str = "allowed"
    reason: str | None = None
    status: int | None = None
    response_header_names: tuple[str, ...] = ()
    preflight_id: str | None = None  # an actual request: the preflight that covered it

    @property
    def server(self) -> str:
        """The server's serialized origin, `scheme://host[:port]`."""
        return fetchspec.serialize_origin(self.scheme, self.host, self.port)

    @property
    def preflight(self) -> bool:
        return self.kind == "preflight"

    @property
    def wanted_method(self) -> str:
        """The method of the request this flow is about: a preflight's requested one, else the one sent."""
        return self.requested_method if self.preflight else self.method

    def wanted_headers(self, preflights_seen: Container[str] = ()) -> tuple[str, ...]:
        """The CORS-unsafe header names the request this flow is about carries (or will carry). A request whose
        preflight is among `preflights_seen` (flow ids) adds none: its preflight's list is the better evidence
        (BROWSERS.md §3.2)."""
        if self.preflight:
            return self.requested_headers
        if self.preflight_id is not None and self.preflight_id in preflights_seen:
            return ()
        return tuple(h for h in self.unsafe_request_headers if h not in _REVALIDATION_HEADERS)

    @classmethod
    def from_flow(cls, flow: http.HTTPFlow) -> Observation | None:
        """`observation_from_flow(flow)`."""
        return observation_from_flow(flow)


def observation_from_flow(flow: http.HTTPFlow) -> Observation | None:
    """The observation of a flow the addon judged, or None when it is not a preflight or cross-origin CORS
    request (same-origin, navigation, no `metadata["cors"]`)."""
    cors: Mapping[str, Any] | None = flow.metadata.get("cors")
    if not isinstance(cors, Mapping) or cors.get("kind") not in ("preflight", "actual"):
        return None
    request = flow.request
    preflight = cors["kind"] == "preflight"
    headers = request.headers
    origin = str(cors.get("origin") or headers.get("origin", "")).strip()
    response = flow.response
    requested_headers: tuple[str, ...] = ()
    unsafe: tuple[str, ...] = ()
    if preflight:
        requested = cors.get("requested_headers")
        if requested is None:
            requested = fetchspec.split_names(headers.get_all("access-control-request-headers"))
        requested_headers = tuple(sorted({str(h).lower() for h in requested}))
    else:
        lines = [(k.decode("utf-8", "replace"), v.decode("utf-8", "replace")) for k, v in headers.fields]
        unsafe = tuple(fetchspec.cors_unsafe_header_names(lines))
    return Observation(
        flow_id=flow.id,
        kind=str(cors["kind"]),
        method=request.data.method.decode("utf-8", "replace"),
        scheme=request.scheme,
        host=request.host,
        port=request.port,
        path=request.path.split("?", 1)[0].split("#", 1)[0] or "/",
        origin=origin,
        requested_method=str(cors.get("requested_method") or headers.get("access-control-request-method", ""))
        if preflight
        else "",
        requested_headers=requested_headers,
        unsafe_request_headers=unsafe,
        credentials=str(cors.get("credentials") or "unknown"),
        verdict=str(cors.get("verdict") or "allowed"),
        reason=cors.get("reason"),
        status=response.status_code if response is not None else None,
        response_header_names=tuple(dict.fromkeys(n.decode("utf-8", "replace") for n, _ in response.headers.fields))
        if response is not None and not preflight
        else (),
        preflight_id=cors.get("preflight_id"),
    )


# --------------------------------------------------------------------------------------------------
# Output


@dataclass(frozen=True, slots=True)
class OriginPatternSuggestion:
    """`https://*.example.com`, suggested for the subdomains seen (`covers`); `regex` is the same pattern as an
    anchored regular expression (the rule engine's: any subdomain depth, not the bare domain)."""

    pattern: str
    regex: str
    domain: str
    covers: tuple[str, ...]

    def matches(self, origin: str) -> bool:
        return re.fullmatch(self.regex, origin) is not None


@dataclass(frozen=True, slots=True)
class Group:
    """The policy for one route of one server (`Policy.groups`), or for all routes of one server together
    (`Policy.servers`: for frameworks whose CORS middleware is configured once per app)."""

    scheme: str
    host: str
    port: int
    routes: tuple[str, ...]  # path globs; one for a route group
    paths: tuple[str, ...]  # the paths seen
    observations: tuple[Observation, ...]
    origins: tuple[str, ...]  # exact origins to allow, sorted ("null" only when asked for)
    patterns: tuple[OriginPatternSuggestion, ...]
    any_origin: Literal["*", "reflect"] | None  # only when asked for
    methods: tuple[str, ...]  # the methods that need listing (not GET/HEAD/POST), as sent
    methods_seen: tuple[str, ...]  # every method sent or asked for, as sent
    headers: tuple[str, ...]  # request header names, lowercased
    credentials: bool
    expose: tuple[str, ...]
    not_exposed: tuple[str, ...]  # response headers seen and left out of Expose-Headers
    max_age: int
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    null_seen: int = 0

    @property
    def server(self) -> str:
        return fetchspec.serialize_origin(self.scheme, self.host, self.port)

    @property
    def route(self) -> str:
        return self.routes[0] if len(self.routes) == 1 else "{" + ",".join(self.routes) + "}"

    @property
    def preflights(self) -> int:
        return sum(o.preflight for o in self.observations)

    @property
    def statuses(self) -> tuple[int, ...]:
        return tuple(sorted({o.status for o in self.observations if o.status is not None}))

    @property
    def listed_methods(self) -> tuple[str, ...]:
        """Allow-Methods for a server that only sends the header: the methods that need it, or (when none does)
        the safelisted ones seen, which grant nothing more."""
        return self.methods or self.methods_seen

    def allows_origin(self, origin: str) -> bool:
        """Whether the policy lets `origin` read the responses."""
        if self.any_origin is not None:
            return True
        return origin in self.origins or any(p.matches(origin) for p in self.patterns)

    def covers_path(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, r) for r in self.routes)


@dataclass(frozen=True, slots=True)
class Policy:
    """What `suggest` found: one group per server and route, the union per server, and global warnings."""

    groups: tuple[Group, ...]
    servers: tuple[Group, ...]
    flows: int  # observations used
    skipped: int = 0  # observations that were not a preflight or a cross-origin request
    warnings: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)

    def group_for(self, server: str, path: str) -> Group | None:
        """The route group that covers `path` on `server` (as a rule file's first match would pick it)."""
        return next((g for g in self.groups if g.server == server and g.covers_path(path)), None)


# --------------------------------------------------------------------------------------------------
# Grouping


def _parent(path: str) -> str:
    return path[: path.rfind("/") + 1] or "/"


def routes_for(paths: Iterable[str], min_siblings: int = 2) -> dict[str, str]:
    """Each path's route: `parent/*` for paths with `min_siblings` or more distinct siblings, the path itself
    otherwise; a path or route under another route's prefix joins that route (see the module docstring)."""
    distinct = sorted(set(paths))
    by_parent: dict[str, list[str]] = {}
    for p in distinct:
        by_parent.setdefault(_parent(p), []).append(p)
    prefixes = sorted(
        (parent for parent, children in by_parent.items() if len(children) >= max(min_siblings, 2)), key=len
    )
    # A prefix under a shorter prefix joins it.
    kept: list[str] = []
    for prefix in prefixes:
        if not any(prefix.startswith(k) for k in kept):
            kept.append(prefix)
    out: dict[str, str] = {}
    for p in distinct:
        under = next((k for k in kept if p.startswith(k)), None)
        out[p] = under + "*" if under is not None else p
    return out


# --------------------------------------------------------------------------------------------------
# Origins


def registrable_domain(host: str) -> str | None:
    """The registrable domain of `host` (`app.example.co.uk` → `example.co.uk`); `localhost` for every name
    under it; None for IP addresses and for a host that is itself a public suffix."""
    host = host.lower().strip("[]")
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost"):
        return "localhost"
    suffix: str | None = sites.public_suffix_list().get_tld(host)
    if not suffix or suffix == host:
        return None
    labels = host[: -len(suffix) - 1].split(".")
    return f"{labels[-1]}.{suffix}"


def _split_origin(origin: str) -> tuple[str, str, int] | None:
    m = re.fullmatch(r"(https?)://([^/:\[\]]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?", origin)
    if m is None:
        return None
    scheme, host = m.group(1), m.group(2)
    return scheme, host, int(m.group(3)) if m.group(3) else fetchspec.DEFAULT_PORTS[scheme]


def pattern_regex(scheme: str, domain: str, port: int) -> str:
    """The anchored regex of `scheme://*.domain[:port]`, as the rule engine compiles it (any depth)."""
    port_part = "" if fetchspec.DEFAULT_PORTS[scheme] == port else f":{port}"
    return f"^{scheme}://(?:[a-z0-9\\-_]+\\.)+{re.escape(domain)}{re.escape(port_part)}$"


def _origin_patterns(origins: Sequence[str], threshold: int | None) -> list[OriginPatternSuggestion]:
    if threshold is None:
        return []
    by_site: dict[tuple[str, str, int], list[str]] = {}
    for origin in origins:
        parts = _split_origin(origin)
        if parts is None:
            continue
        scheme, host, port = parts
        domain = registrable_domain(host)
        if domain is None or host == domain:
            continue
        by_site.setdefault((scheme, domain, port), []).append(origin)
    out = []
    for (scheme, domain, port), covered in sorted(by_site.items()):
        if len(covered) < max(threshold, 2):
            continue
        port_part = "" if fetchspec.DEFAULT_PORTS[scheme] == port else f":{port}"
        out.append(
            OriginPatternSuggestion(
                f"{scheme}://*.{domain}{port_part}", pattern_regex(scheme, domain, port), domain, tuple(covered)
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# One group


@dataclass(frozen=True, slots=True)
class _Options:
    expose: tuple[str, ...]
    max_age: int
    wildcard_subdomains: int | None
    origins: Literal["list", "reflect", "*"]
    allow_null: bool
    min_siblings: int


def _expose(observations: Sequence[Observation], explicit: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(Expose-Headers, names seen and left out), case-insensitively unique, first spelling kept."""
    exposed: dict[str, str] = {}
    left_out: dict[str, str] = {}
    for name in explicit:
        exposed.setdefault(name.lower(), name)
    for o in observations:
        if o.preflight:
            continue
        redirect = o.status in _REDIRECT_STATUSES
        for name in o.response_header_names:
            low = name.lower()
            if (
                low in fetchspec.SAFELISTED_RESPONSE_HEADERS
                or low.startswith("access-control-")
                or low in exposed
                or not fetchspec.is_token(name)
            ):
                continue
            if low in fetchspec.FORBIDDEN_RESPONSE_HEADERS or low in NOT_EXPOSED or (low == "location" and redirect):
                left_out.setdefault(low, name)
            else:
                exposed[low] = name
    for low in exposed:
        left_out.pop(low, None)
    return (
        tuple(sorted(exposed.values(), key=str.lower)),
        tuple(sorted(left_out.values(), key=str.lower)),
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _thin_evidence(observations: Sequence[Observation]) -> list[str]:
    """Requests only a blocked preflight announced: the browser never sent them."""
    sent = {o.method for o in observations if not o.preflight}
    out = []
    seen: set[tuple[str, str]] = set()
    for o in observations:
        if not o.preflight or o.verdict != "blocked" or o.requested_method in sent:
            continue
        if (o.requested_method, o.path) in seen:
            continue
        seen.add((o.requested_method, o.path))
        headers = f" with {', '.join(o.requested_headers)}" if o.requested_headers else ""
        out.append(
            f"{o.requested_method} {o.path}{headers} was only announced by a blocked preflight: the browser never "
            "sent it, so its response (status, headers to expose, whether it needs credentials) is unknown. "
            "Apply this policy and run the page again to see it."
        )
    return out


def _build(
    scheme: str,
    host: str,
    port: int,
    routes: Sequence[str],
    observations: Sequence[Observation],
    opts: _Options,
) -> Group:
    warnings: list[str] = []
    notes: list[str] = []
    seen_origins = sorted({o.origin for o in observations if o.origin and o.origin != "null"})
    null_seen = sum(o.origin == "null" for o in observations)
    methods_seen = sorted({o.wanted_method for o in observations if o.wanted_method})
    methods = [m for m in methods_seen if m not in fetchspec.SAFELISTED_METHODS]
    preflights_seen = {o.flow_id for o in observations if o.preflight}
    headers = sorted({h.lower() for o in observations for h in o.wanted_headers(preflights_seen)})
    credentials = any(o.credentials == "include" for o in observations)
    expose, not_exposed = _expose(observations, opts.expose)

    any_origin: Literal["*", "reflect"] | None = None
    if opts.origins == "*" and credentials:
        warnings.append(
            "'*' was asked for, but requests here carry cookies and browsers refuse 'Access-Control-Allow-Origin: *' "
            "with credentials: the origins seen are listed instead."
        )
    elif opts.origins != "list":
        any_origin = opts.origins
        warnings.append(
            f"every origin is allowed ({opts.origins!r} was asked for): any website can read these responses"
            + (" as the logged-in user, with its cookies." if credentials else ".")
        )
    patterns = _origin_patterns(seen_origins, opts.wildcard_subdomains) if any_origin is None else []
    covered = {origin for p in patterns for origin in p.covers}
    origins = [origin for origin in seen_origins if origin not in covered]
    for p in patterns:
        notes.append(
            f"{p.pattern} stands for the {len(p.covers)} subdomains of {p.domain} seen ({', '.join(p.covers)}): "
            f"it also admits every other subdomain of {p.domain}; list the origins instead if some of them are "
            "not yours (wildcard_subdomains=None)."
        )
    if null_seen:
        if opts.allow_null and any_origin is None:
            origins.append("null")
            warnings.append(
                f"Origin 'null' is ALLOWED because it was asked for ({_plural(null_seen, 'flow')} sent it): any "
                "sandboxed iframe, file: page or data: document, on any site, can then read these responses."
            )
        else:
            warnings.append(
                f"Origin 'null' was seen on {_plural(null_seen, 'flow')} and is NOT in this policy: it is sent by "
                "sandboxed iframes, file: pages and requests after a cross-origin redirect, and allowing it lets "
                "any of those, on any site, read these responses. Serve the page from a real origin (or avoid the "
                "cross-origin redirect) instead."
            )
    if credentials and len(origins) + len(patterns) >= CREDENTIALED_ORIGINS_WARN:
        warnings.append(
            f"credentials are allowed for {len(origins) + len(patterns)} origins: each of them can read these "
            "responses as the logged-in user. Keep only your own frontends."
        )
    warnings.extend(_thin_evidence(observations))
    if len(observations) == 1:
        warnings.append("only one flow was seen for this route: the policy covers exactly that request.")
    for m in methods:
        if m != m.upper():
            warnings.append(
                f"the page sends the method {m!r} in lower case and browsers compare Allow-Methods case-sensitively, "
                f"so it is listed as sent; most servers only route {m.upper()!r}: write method: {m.upper()!r} in "
                "the page."
            )
    if not credentials:
        notes.append(
            "no request carried a cookie: this policy is for requests without credentials. If the page uses "
            "credentials: 'include' (or withCredentials) with no cookie stored yet, it looks the same on the "
            "wire: allow credentials too."
        )
    bad_preflights = sorted({o.status for o in observations if o.preflight and o.status and o.status >= 300})
    if bad_preflights:
        notes.append(
            f"the server answered preflights with {', '.join(map(str, bad_preflights))}: the CORS layer must answer "
            "OPTIONS itself, with a 2xx, before routing and authentication."
        )
    errors = sorted({o.status for o in observations if not o.preflight and o.status and o.status >= 400})
    if errors:
        notes.append(
            f"error responses were seen ({', '.join(map(str, errors))}): they need the CORS headers too, or the page "
            "sees a CORS error instead of the status."
        )
    if any(not o.preflight and o.status in _REDIRECT_STATUSES for o in observations):
        notes.append(
            "a redirect was seen: the redirect response needs these CORS headers too, and after a cross-origin hop "
            "the next request's Origin is 'null'."
        )
    if any(o.status is None for o in observations):
        notes.append("some requests got no response from the server: what they need could not be seen.")
    return Group(
        scheme=scheme,
        host=host,
        port=port,
        routes=tuple(routes),
        paths=tuple(sorted({o.path for o in observations})),
        observations=tuple(observations),
        origins=tuple(origins),
        patterns=tuple(patterns),
        any_origin=any_origin,
        methods=tuple(methods),
        methods_seen=tuple(methods_seen),
        headers=tuple(headers),
        credentials=credentials,
        expose=expose,
        not_exposed=not_exposed,
        max_age=opts.max_age,
        warnings=tuple(dict.fromkeys(warnings)),
        notes=tuple(dict.fromkeys(notes)),
        null_seen=null_seen,
    )


# --------------------------------------------------------------------------------------------------
# Public API


def suggest(
    observations: Iterable[Observation],
    *,
    expose: Iterable[str] = (),
    max_age: int = DEFAULT_MAX_AGE,
    wildcard_subdomains: int | None = 3,
    origins: Literal["list", "reflect", "*"] = "list",
    allow_null: bool = False,
    min_siblings: int = 2,
) -> Policy:
    """The least-privilege CORS policy that makes every observed flow pass (see the module docstring).

    Args:
        observations: one per judged flow; others than preflights and cross-origin requests are skipped.
        expose: response header names the page reads, always added to Expose-Headers.
        max_age: the preflight cache lifetime to suggest, in seconds.
        wildcard_subdomains: suggest `scheme://*.domain` once this many distinct subdomains of one registrable
            domain are seen; None never does.
        origins: "list" (the origins seen), or "reflect"/"*" to allow every origin (a warning says so; "*" is
            refused with credentials).
        allow_null: list the `null` origin when seen (with a warning); otherwise it is left out (with a warning).
        min_siblings: distinct paths under one directory that make it a `dir/*` route.

    Raises:
        ValueError: an option out of range.
    """
    if not 0 <= max_age <= 7200:
        raise ValueError(f"max_age {max_age} is not between 0 and Chromium's cap of 7200 s")
    if origins not in ("list", "reflect", "*"):
        raise ValueError(f"origins must be 'list', 'reflect' or '*', not {origins!r}")
    opts = _Options(tuple(expose), max_age, wildcard_subdomains, origins, allow_null, min_siblings)
    used: list[Observation] = []
    skipped = 0
    for o in observations:
        if o.kind in ("preflight", "actual"):
            used.append(o)
        else:
            skipped += 1
    by_server: dict[tuple[str, str, int], list[Observation]] = {}
    for o in used:
        by_server.setdefault((o.scheme.lower(), o.host.lower(), o.port), []).append(o)
    groups: list[Group] = []
    servers: list[Group] = []
    for (scheme, host, port), server_obs in sorted(by_server.items()):
        route_of = routes_for((o.path for o in server_obs), min_siblings)
        by_route: dict[str, list[Observation]] = {}
        for o in server_obs:
            by_route.setdefault(route_of[o.path], []).append(o)
        # Exact routes before globs, longer before shorter: the order a first-match rule file needs.
        ordered = sorted(by_route, key=lambda r: (r.endswith("*"), -len(r), r))
        for route in ordered:
            groups.append(_build(scheme, host, port, (route,), by_route[route], opts))
        server = _build(scheme, host, port, tuple(ordered), server_obs, opts)
        servers.append(server)
    warnings: list[str] = []
    if not used:
        warnings.append(
            "no cross-origin flow (preflight or CORS request) among the flows given: there is nothing to allow."
        )
    return Policy(
        tuple(groups),
        tuple(servers),
        len(used),
        skipped,
        tuple(warnings),
        {
            "expose": opts.expose,
            "max_age": max_age,
            "wildcard_subdomains": wildcard_subdomains,
            "origins": origins,
            "allow_null": allow_null,
            "min_siblings": min_siblings,
        },
    )


def render(policy: Policy, format: str) -> str:
    """The policy as text in `format` (one of `FORMATS`).

    Raises:
        ValueError: an unknown format.
    """
    from mitmcors.suggest_formats import WRITERS

    try:
        fmt = Format(format.strip().lower())
    except ValueError:
        raise ValueError(f"unknown format {format!r}: choose one of {', '.join(FORMATS)}") from None
    return WRITERS[fmt.value](policy)


def suggest_flows(flows: Iterable[http.HTTPFlow], format: str = "rule", **options: Any) -> str:
    """`cors.suggest FLOWS FORMAT` in one call: observe each flow, suggest, render."""
    flows = list(flows)
    observations = [o for f in flows if (o := observation_from_flow(f)) is not None]
    policy = suggest(observations, **options)
    return render(dataclasses.replace(policy, skipped=policy.skipped + len(flows) - len(observations)), format)
