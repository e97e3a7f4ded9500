"""The opt-in CORS probe's pure parts: which crafted `Origin` values to send, and what the answers prove.

Passive findings (findings.py) suspect; the probe confirms. On a flow the user names (`cors.probe FLOWS`), the
addon replays the request with crafted Origin values and this module judges the answers the way the browsers
would: a variant counts as trusted only when the evaluator says a page at that origin could read the answer
(`Access-Control-Allow-Origin` equal to it byte for byte; "with credentials" only when
`Access-Control-Allow-Credentials: true` makes the credentialed read pass too). Nothing here sends anything or
imports mitmproxy: `plan` says what to send, `classify` says what the replies mean.

What a probe sends, and what it never does:

- **Only to the flow's own server.** Every probe request has the flow's own URL (scheme, host and port
  unchanged; credential-like query parameters and userinfo removed). The addon replays a copy of the flow.
- **Never the user's credentials.** `Cookie`, `Authorization`, `Proxy-Authorization` and every header whose
  name is credential-like (`X-Api-Key`, `X-CSRF-Token` ..., redact.py's words) are removed, and so are
  `Referer` and conditional headers. The probe shows what an attacker's page could read *with* the victim's
  cookies by reading `Access-Control-Allow-Credentials` in the answer, not by sending them: the browser would
  attach the cookies, the server's CORS answer decides whether the page may read the result.
  `send_credentials=True` (the user's explicit flag) keeps them on GET/HEAD replays; preflights never carry
  credentials, as in browsers.
- **Only safe methods.** GET and HEAD are replayed as they are (without a body). Any other method is not
  sent: only its CORS preflight is, an `OPTIONS` with the variant Origin and
  `Access-Control-Request-Method`/`-Headers` of the original request (a preflight the flow already was is
  replayed as a preflight). `replay_unsafe=True` (the user's explicit flag) replays the method and body.
- **Marked and rate-limited by the addon**, so a probe is never judged as the page's own traffic.

The Origin variants, for each origin the server trusts (the flow's own Origin and those seen allowed; e.g.
`https://trusted.example`):

| kind | example | what trusting it shows |
|---|---|---|
| baseline | `https://trusted.example` | the control: the server trusts it under probe conditions |
| unrelated | `https://evil.test` | any origin is reflected |
| null | `null` | the `null` origin (sandboxed iframes of any site) |
| prefix | `https://trusted.example.evil.test` | a starts-with check or unanchored regex |
| suffix | `https://eviltrusted.example` | an ends-with check without a dot |
| unescaped-dot | `https://trustedxexample` | a regex whose `.` matches any character |
| http-scheme | `http://trusted.example` | a check that ignores the scheme |
| sibling-subdomain | `https://evil.trusted.example` | every subdomain is trusted |
| special-char | `https://trusted.example_.evil.test` | a parser or regex (`\\b`, `[^.]`) that stops at `_`, `}` ... |

Special characters: the URL Standard's *forbidden domain code points* are NUL, TAB, LF, CR, space, `#`, `%`,
`/`, `:`, `<`, `>`, `?`, `@`, `[`, `\\`, `]`, `^`, `|`, DEL and C0 controls; everything else may appear in a host.
Chromium's parser (`urlparse.py`, checked against `tests/corpus/url_validity.json`, recorded from Chromium)
accepts ``! $ & ' ( ) + ; = _ ` { } ~`` in hosts as they are (it escapes space and `*`, so those are not
used; `,` and `"` are left out as no server-side origin parser stops at them usefully). So `}` **is**
accepted, like `_`. Serving a page there is another matter: Chromium's DNS client resolves only labels of
letters, digits, `-` and `_` (net/dns `IsValidHostLabelCharacter`), so `_` variants are reachable from any
site, the others only where the name resolves another way; `Variant.reach` says which.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from mitmcors import fetchspec, urlparse
from mitmcors.evaluator import Classification, Kind, PlainHeaders, Request, Response, evaluate
from mitmcors.findings import (
    MAX_EVIDENCE,
    Finding,
    Severity,
    is_loopback,
    make_finding,
    public_suffix,
    route_of,
    site_of,
    sort_key,
)
from mitmcors.redact import is_secret_name, redact_url

__all__ = [
    "ATTACKER_SITE",
    "DEFAULT_SPECIAL_CHARS",
    "SPECIAL_CHARS",
    "OriginCheck",
    "ProbeError",
    "ProbePlan",
    "ProbeRequest",
    "ProbeResult",
    "Reach",
    "Reply",
    "Variant",
    "VariantKind",
    "VariantResult",
    "classify",
    "plan",
    "render_text",
]

ATTACKER_SITE: Final = "evil.test"  # RFC 6761 `.test`: never a real site, and says what it is in server logs
ATTACKER_LABEL: Final = "evil"
# Every character Chromium keeps as it is in a host that the URL Standard allows too (see the docstring), and
# the default subset a probe tries: `_` (a word character DNS resolves) and non-word characters that stop `\b`.
SPECIAL_CHARS: Final = ("_", "}", "{", "`", "!", "~", "$", "&", "'", "(", ")", "+", ";", "=")
DEFAULT_SPECIAL_CHARS: Final = ("_", "}", "{", "`", "!", "~")
# [URL] forbidden host code points, plus (for domains) C0 controls, `%` and DEL: never in a crafted host.
FORBIDDEN_HOST_CODE_POINTS: Final = frozenset("\x00\t\n\r #/:<>?@[\\]^|")
FORBIDDEN_DOMAIN_CODE_POINTS: Final = (
    FORBIDDEN_HOST_CODE_POINTS | frozenset(chr(c) for c in range(0x20)) | frozenset("%\x7f")
)
_ESCAPED_BY_CHROMIUM: Final = frozenset(" *")  # valid, but serialized as %20 / %2A: the Origin would differ
_NOT_USEFUL: Final = frozenset(',"')
# Chromium net/dns IsValidHostLabelCharacter: what its DNS client resolves.
_DNS_LABEL: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
# Request headers a probe never copies: credentials, the Origin it replaces, where the page was, what would
# make the answer a 304 without CORS headers, framing, and the preflight's own headers.
_DROPPED: Final = frozenset(
    {
        "origin",
        "cookie",
        "cookie2",
        "authorization",
        "proxy-authorization",
        "referer",
        "if-none-match",
        "if-modified-since",
        "if-match",
        "if-unmodified-since",
        "if-range",
        "content-length",
        "transfer-encoding",
        "access-control-request-method",
        "access-control-request-headers",
        "sec-fetch-site",
    }
)
_CREDENTIAL_HEADERS: Final = frozenset({"cookie", "cookie2", "authorization"})
_MAX_BASES: Final = 2
_MAX_DOT_VARIANTS: Final = 4


class ProbeError(ValueError):
    """The flow cannot be probed (not an http(s) URL with a host)."""


class VariantKind(enum.StrEnum):
    BASELINE = "baseline"
    UNRELATED = "unrelated"
    NULL = "null"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    UNESCAPED_DOT = "unescaped-dot"
    HTTP_SCHEME = "http-scheme"
    SIBLING = "sibling-subdomain"
    SPECIAL_CHAR = "special-char"


class Reach(enum.StrEnum):
    """Who could run a page at a variant's origin."""

    CONTROL = "control"  # the trusted origin itself
    ANY_SITE = "any-site"  # anyone who registers a domain (or, for null, any page)
    RESOLVER = "resolver-dependent"  # a valid URL host, but Chromium's DNS client will not resolve it
    NETWORK = "network"  # someone who can tamper with plain http on the user's network
    SUBDOMAIN = "subdomain"  # someone with content on a subdomain of the trusted site
    NONE = "none"  # no public page can have it (the check is still wrong)


@dataclass(frozen=True, slots=True)
class Variant:
    kind: VariantKind
    origin: str
    base: str = ""  # the trusted origin it is made from ("" for unrelated and null)
    reach: Reach = Reach.ANY_SITE
    char: str = ""  # special-char: the character


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """One request to send: a copy of the flow with this method, path (+ query) and exactly these headers.
    `url` is the flow's own URL (same scheme, host and port); `keep_body` only for an unsafe replay."""

    variant: Variant
    method: str
    url: str
    path: str
    headers: tuple[tuple[str, str], ...]
    keep_body: bool = False

    def __repr__(self) -> str:
        shown = tuple((n, "[redacted]" if _is_credential(n) else v) for n, v in self.headers)
        return f"ProbeRequest({self.variant.kind.value}, {self.method} {redact_url(self.url)}, {shown!r})"


@dataclass(frozen=True, slots=True)
class ProbePlan:
    server: str  # the flow's server origin: the only one a probe talks to
    route: str
    url: str
    method: str  # the flow's method
    bases: tuple[str, ...]  # the trusted origins the variants are made from
    requests: tuple[ProbeRequest, ...]

    @property
    def variants(self) -> tuple[Variant, ...]:
        return tuple(r.variant for r in self.requests)


def _is_credential(name: str) -> bool:
    lower = name.lower()
    return lower in _CREDENTIAL_HEADERS or lower == "proxy-authorization" or is_secret_name(lower)


def _valid_variant(origin: str) -> bool:
    """Would a browser send exactly this Origin? A host Chromium parses, serialized as it is, with no forbidden
    domain code point (nor one Chromium escapes)."""
    host = _split_origin(origin)[1]
    return (
        urlparse.is_valid_url(origin)
        and fetchspec.normalize_origin(origin) == origin
        and not any(c in FORBIDDEN_DOMAIN_CODE_POINTS or c in _ESCAPED_BY_CHROMIUM for c in host)
    )


def _split_origin(origin: str) -> tuple[str, str, str]:
    """(scheme, host, ":port" or "") of a serialized origin."""
    scheme, _, rest = origin.partition("://")
    if rest.startswith("["):
        end = rest.find("]") + 1
        return scheme, rest[:end], rest[end:]
    host, colon, port = rest.partition(":")
    return scheme, host, colon + port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _registrable_elsewhere(host: str, base_host: str) -> bool:
    """Can someone other than the trusted site's owner register `host`'s site? Judged conservatively: under
    the trusted host's own public suffix (`appxtrusted.com` for `app.trusted.com`), not under a made-up one
    (`app.trustedxcom`, `trustedxexample`)."""
    suffix = public_suffix(host)
    return host.endswith("." + suffix) and suffix == public_suffix(base_host) and site_of(host) != site_of(base_host)


def _variants(bases: Sequence[str], server: str, attacker: str, special_chars: Iterable[str]) -> list[Variant]:
    out = [
        *(Variant(VariantKind.BASELINE, b, b, Reach.CONTROL) for b in bases),
        Variant(VariantKind.UNRELATED, f"https://{attacker}"),
        Variant(VariantKind.NULL, "null"),
    ]
    chars = [c for c in dict.fromkeys(special_chars) if len(c) == 1 and c not in _NOT_USEFUL]
    for base in bases:
        scheme, host, port = _split_origin(base)
        if host.startswith("["):
            continue  # an IPv6 literal has no labels to play with
        named = not (is_loopback(host) or _is_ip(host))  # a domain name of the internet
        out.append(Variant(VariantKind.PREFIX, f"{scheme}://{host}.{attacker}{port}", base))
        if named:
            out.append(Variant(VariantKind.SUFFIX, f"{scheme}://{ATTACKER_LABEL}{site_of(host)}{port}", base))
            for i in [i for i, c in enumerate(host) if c == "."][:_MAX_DOT_VARIANTS]:
                crafted = host[:i] + "x" + host[i + 1 :]
                reach = Reach.ANY_SITE if _registrable_elsewhere(crafted, host) else Reach.NONE
                out.append(Variant(VariantKind.UNESCAPED_DOT, f"{scheme}://{crafted}{port}", base, reach))
        if scheme == "https" and not is_loopback(host):
            out.append(Variant(VariantKind.HTTP_SCHEME, f"http://{host}{port}", base, Reach.NETWORK))
        if named:
            parent = host.split(".", 1)[1] if host != site_of(host) else host
            sibling = f"{scheme}://{ATTACKER_LABEL}.{parent}{port}"
            out.append(Variant(VariantKind.SIBLING, sibling, base, Reach.SUBDOMAIN))
        for c in chars:
            reach = Reach.ANY_SITE if c in _DNS_LABEL else Reach.RESOLVER
            out.append(Variant(VariantKind.SPECIAL_CHAR, f"{scheme}://{host}{c}.{attacker}{port}", base, reach, c))
    seen = {server}
    kept = []
    for v in out:
        if v.origin in seen:
            continue
        if v.kind not in (VariantKind.NULL, VariantKind.BASELINE) and not _valid_variant(v.origin):
            continue
        if v.kind is not VariantKind.BASELINE and v.origin in bases:
            continue
        seen.add(v.origin)
        kept.append(v)
    return kept


def _send_url(url: str, strip_secrets: bool) -> tuple[str, str]:
    """The URL to send and its path + query: never a fragment; unless the user asked for credentials, no
    userinfo and no credential-like query parameter."""
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if strip_secrets:
        netloc = netloc.rpartition("@")[2]
        query = "&".join(p for p in query.split("&") if p and not is_secret_name(p.partition("=")[0]))
    path = parts.path or "/"
    return urlunsplit((parts.scheme, netloc, path, query, "")), path + (f"?{query}" if query else "")


def _fetch_site(variant: Variant, server_scheme: str, server_host: str) -> str:
    """`Sec-Fetch-Site` for a page at the variant's origin: same-site (schemeful) or cross-site."""
    if variant.kind is VariantKind.NULL:
        return "cross-site"
    scheme, host, _ = _split_origin(variant.origin)
    return "same-site" if scheme == server_scheme and site_of(host) == site_of(server_host) else "cross-site"


def plan(
    url: str,
    method: str,
    headers: Iterable[tuple[str, str]],
    trusted: Iterable[str] = (),
    *,
    attacker: str = ATTACKER_SITE,
    special_chars: Iterable[str] = DEFAULT_SPECIAL_CHARS,
    replay_unsafe: bool = False,
    send_credentials: bool = False,
    max_bases: int = _MAX_BASES,
) -> ProbePlan:
    """The requests that probe one flow: its URL, method (as sent) and request headers, and the origins its
    server is known to trust (e.g. `FindingsTracker.trusted_origins`). The flow's own Origin comes first.

    Raises:
        ProbeError: the URL is not http(s) with a host.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError as e:
        raise ProbeError(f"cannot probe {redact_url(url)}: {e}") from None
    if scheme not in ("http", "https") or not parts.hostname:
        raise ProbeError(f"cannot probe {redact_url(url)}: only http(s) URLs with a host")
    host = parts.hostname
    server = fetchspec.serialize_origin(scheme, host, port or fetchspec.DEFAULT_PORTS[scheme])
    lines = [(n, v) for n, v in headers]
    lower = {n.lower(): v for n, v in reversed(lines)}  # the first value of each name
    own = (lower.get("origin") or "").strip()
    bases: list[str] = []
    for candidate in (own, *trusted):
        if (
            candidate
            and candidate != "null"
            and fetchspec.normalize_origin(candidate) == candidate
            and candidate != server
            and candidate not in bases
        ):
            bases.append(candidate)
    variants = _variants(bases[:max_bases], server, attacker, special_chars)

    send_url, path = _send_url(url, strip_secrets=not send_credentials)
    preflight = method.upper() == "OPTIONS" and "access-control-request-method" in lower
    safe = method.upper() in _SAFE_METHODS
    if preflight:
        requested_method = lower["access-control-request-method"].strip()
        requested_headers = fetchspec.split_names([lower.get("access-control-request-headers", "")])
    else:
        requested_method = method
        # The page's unsafe header names (names only, as a browser's preflight sends them), not the
        # conditional ones the browser's cache adds.
        requested_headers = [n for n in fetchspec.cors_unsafe_header_names(lines) if not n.startswith("if-")]
    fetch_metadata = "sec-fetch-mode" in lower

    requests = []
    for v in variants:
        site = _fetch_site(v, scheme, host)
        if preflight or not (safe or replay_unsafe):
            out = [(n, lower[n.lower()]) for n in ("Host", "User-Agent") if n.lower() in lower]
            out += [("Accept", "*/*"), ("Origin", v.origin), ("Access-Control-Request-Method", requested_method)]
            if requested_headers:
                out.append(("Access-Control-Request-Headers", ",".join(requested_headers)))
            if fetch_metadata:
                out += [("Sec-Fetch-Mode", "cors"), ("Sec-Fetch-Site", site), ("Sec-Fetch-Dest", "empty")]
            requests.append(ProbeRequest(v, "OPTIONS", send_url, path, tuple(out)))
            continue
        out = []
        for name, value in lines:
            key = name.lower()
            if key in _DROPPED and not (send_credentials and key in _CREDENTIAL_HEADERS):
                continue
            if not send_credentials and is_secret_name(key):
                continue
            out.append((name, value))
        out.append(("Origin", v.origin))
        if "sec-fetch-site" in lower:
            out.append(("Sec-Fetch-Site", site))
        requests.append(ProbeRequest(v, method, send_url, path, tuple(out), keep_body=not safe))
    return ProbePlan(server, route_of(parts.path or "/"), send_url, method, tuple(bases[:max_bases]), tuple(requests))


# --------------------------------------------------------------------------------------------------------------
# Classifying the answers


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one probe request: its variant's origin, the status and header lines; `flow_id` of the
    replay (evidence); `error` when it got no response."""

    origin: str
    status: int = 0
    headers: Sequence[tuple[str, str]] = ()
    flow_id: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class VariantResult:
    variant: Variant
    answered: bool
    allowed: bool  # a page at the variant's origin could read the answer (without credentials)
    exact: bool  # Access-Control-Allow-Origin names the variant (not '*')
    with_credentials: bool  # a credentialed read passes too
    reason: str | None  # Chromium's CorsError when not allowed
    flow_id: str = ""

    @property
    def trusted(self) -> bool:
        """The server's origin check let this origin through by name."""
        return self.allowed and self.exact

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.variant.kind.value,
            "origin": self.variant.origin,
            "reach": self.variant.reach.value,
            "trusted": self.trusted,
            "with_credentials": self.with_credentials,
            "allowed": self.allowed,
            "reason": self.reason,
            "flow_id": self.flow_id or None,
        }


class OriginCheck(enum.StrEnum):
    """What the answers say about the server's origin check."""

    EXACT = "exact"  # the trusted origin passes, no crafted one does
    REFLECT_ANY = "reflect-any"  # an unrelated origin passes by name
    FLAWED = "flawed"  # some crafted origin passes (prefix, suffix, regex, null, scheme, subdomain ...)
    WILDCARD = "wildcard"  # '*' for an unrelated origin: public, no per-origin check to fool
    INCONCLUSIVE = "inconclusive"  # not even the trusted origin passed under probe conditions


@dataclass(frozen=True, slots=True)
class ProbeResult:
    server: str
    route: str
    flow_id: str
    check: OriginCheck
    results: tuple[VariantResult, ...]
    findings: tuple[Finding, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "flow_id": self.flow_id,
            "server": self.server,
            "route": self.route,
            "check": self.check.value,
            "variants": [r.as_dict() for r in self.results],
            "findings": [f.as_dict() for f in self.findings],
        }


def _judge(plan_: ProbePlan, request: ProbeRequest, reply: Reply | None) -> VariantResult:
    v = request.variant
    if reply is None or reply.error:
        return VariantResult(v, False, False, False, False, None, reply.flow_id if reply else "")
    parts = urlsplit(plan_.url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    port = parts.port or fetchspec.DEFAULT_PORTS[scheme]
    # Judged as the browser would judge a page at the variant's origin, without cookies: the outcome is the
    # non-credentialed one, `if_credentials` the credentialed one.
    lines = [(n, val) for n, val in request.headers if n.lower() not in ("cookie", "cookie2")]
    preflight = request.method == "OPTIONS"
    classification = Classification(Kind.PREFLIGHT if preflight else Kind.ACTUAL, "probe")
    verdict = evaluate(
        Request(request.method, scheme, host, port, request.path, PlainHeaders(lines)),
        Response(reply.status, PlainHeaders(reply.headers)),
        classification,
    )
    acao = [val.strip(" \t") for n, val in reply.headers if n.lower() == "access-control-allow-origin"]
    exact = acao == [v.origin]
    allowed = verdict.outcome.allowed
    credentialed = (verdict.if_credentials or verdict.outcome).allowed
    reason = verdict.outcome.reason.value if verdict.outcome.reason else None
    return VariantResult(v, True, allowed, exact, exact and allowed and credentialed, reason, reply.flow_id)


# Finding id per variant kind, and the severity by reach: (with credentials, without).
_FINDING_OF: Final = {
    VariantKind.NULL: "null-origin-trusted",
    VariantKind.PREFIX: "origin-check-prefix-match",
    VariantKind.SUFFIX: "origin-check-suffix-match",
    VariantKind.UNESCAPED_DOT: "origin-regex-unescaped-dot",
    VariantKind.HTTP_SCHEME: "http-origin-trusted",
    VariantKind.SIBLING: "any-subdomain-trusted",
    VariantKind.SPECIAL_CHAR: "origin-check-special-chars",
}
_SEVERITY: Final = {
    Reach.ANY_SITE: (Severity.HIGH, Severity.LOW),
    Reach.RESOLVER: (Severity.MEDIUM, Severity.LOW),
    Reach.NETWORK: (Severity.MEDIUM, Severity.LOW),
    Reach.SUBDOMAIN: (Severity.LOW, Severity.INFO),
    Reach.NONE: (Severity.LOW, Severity.INFO),
    Reach.CONTROL: (Severity.INFO, Severity.INFO),
}


def _severity(r: VariantResult) -> Severity:
    with_credentials, without = _SEVERITY[r.variant.reach]
    return with_credentials if r.with_credentials else without


def _explained(r: VariantResult, trusted: list[VariantResult]) -> bool:
    """Is this trusted variant only a consequence of a simpler flaw found for the same base?"""
    v = r.variant
    same_base = {t.variant.kind for t in trusted if t.variant.base == v.base}
    if v.kind is VariantKind.SPECIAL_CHAR:
        return VariantKind.PREFIX in same_base  # trusted.example_.evil.test starts with trusted.example too
    if v.kind in (VariantKind.UNESCAPED_DOT, VariantKind.SIBLING):
        base_site = site_of(_split_origin(v.base)[1])
        # A suffix flaw found for any trusted origin of the same site (two trusted origins of one site share
        # their suffix variant, which the plan sends once): an ends-with check admits this one as well.
        suffix_on_site = any(
            t.variant.kind is VariantKind.SUFFIX and site_of(_split_origin(t.variant.base)[1]) == base_site
            for t in trusted
        )
        return suffix_on_site and _split_origin(v.origin)[1].endswith(base_site)
    return False


def classify(plan_: ProbePlan, replies: Iterable[Reply], flow_id: str = "") -> ProbeResult:
    """Judge each reply as the browsers would, classify the server's origin check, and name the findings.

    A variant counts as trusted only when a page at its origin could read the answer with Allow-Origin naming
    it; findings take the most severe variant: an origin anyone can register trusted with credentials is high.
    Under reflect-any only `origin-reflected[-with-credentials]` is reported (the one fix covers the rest).
    """
    by_origin = {r.origin: r for r in replies}
    results = tuple(_judge(plan_, req, by_origin.get(req.variant.origin)) for req in plan_.requests)
    control = [r for r in results if r.variant.kind is VariantKind.BASELINE]
    unrelated = next((r for r in results if r.variant.kind is VariantKind.UNRELATED), None)
    crafted = [r for r in results if r.variant.kind not in (VariantKind.BASELINE, VariantKind.UNRELATED)]
    trusted = [r for r in crafted if r.trusted]

    evidence_base = [flow_id] if flow_id else []
    findings: list[Finding] = []
    if unrelated is not None and unrelated.trusted:
        check = OriginCheck.REFLECT_ANY
        id = "origin-reflected-with-credentials" if unrelated.with_credentials else "origin-reflected"
        severity = Severity.HIGH if unrelated.with_credentials else Severity.LOW
        findings.append(_finding(id, severity, [unrelated], evidence_base, plan_))
    elif trusted:
        check = OriginCheck.FLAWED
        grouped: dict[str, list[VariantResult]] = {}
        for r in trusted:
            if not _explained(r, trusted):
                id = _FINDING_OF[r.variant.kind]
                if r.variant.kind is VariantKind.NULL and r.with_credentials:
                    id = "null-origin-trusted-with-credentials"
                grouped.setdefault(id, []).append(r)
        for id, rs in grouped.items():
            severity = max((_severity(r) for r in rs), key=lambda s: s.rank)
            findings.append(_finding(id, severity, rs, evidence_base, plan_))
    elif unrelated is not None and unrelated.allowed:
        check = OriginCheck.WILDCARD
    elif any(r.trusted for r in control):
        check = OriginCheck.EXACT
    else:
        check = OriginCheck.INCONCLUSIVE
    return ProbeResult(plan_.server, plan_.route, flow_id, check, results, tuple(sorted(findings, key=sort_key)))


def _finding(id: str, severity: Severity, rs: list[VariantResult], evidence: list[str], plan_: ProbePlan) -> Finding:
    flows = [*evidence, *(r.flow_id for r in rs if r.flow_id)]
    return make_finding(
        id,
        severity,
        flows[:MAX_EVIDENCE],
        server=plan_.server,
        route=plan_.route,
        count=len(rs),
        details=[redact_url(r.variant.origin) for r in rs],
    )


def render_text(result: ProbeResult) -> str:
    """`cors.probe` as text: the server's origin check, each variant's answer, the findings."""
    lines = [f"probe of {result.server}{result.route} (flow {result.flow_id or '?'}): origin check {result.check}"]
    for r in result.results:
        if not r.answered:
            state = "no answer"
        elif r.trusted:
            state = "TRUSTED with credentials" if r.with_credentials else "TRUSTED"
        elif r.allowed:
            state = "allowed via '*'"
        else:
            state = f"refused ({r.reason})"
        lines.append(f"  {r.variant.kind.value:<17} {r.variant.origin}: {state}")
    for f in result.findings:
        lines.append(f"  [{f.severity.value.upper()}] {f.id}: {f.title}. Fix: {f.fix}")
    return "\n".join(lines)
