"""The opt-in probe's pure parts: the crafted Origin variants, the requests it would send (own server only, safe
methods only, no credentials), and how the answers of flawed and correct origin checks are classified."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mitmcors import fetchspec, probe, urlparse
from mitmcors.findings import Severity
from mitmcors.probe import (
    DEFAULT_SPECIAL_CHARS,
    FORBIDDEN_DOMAIN_CODE_POINTS,
    SPECIAL_CHARS,
    OriginCheck,
    ProbeError,
    ProbePlan,
    Reach,
    Reply,
    VariantKind,
    classify,
    plan,
)

H, M, L, INFO = Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO
TRUSTED = "https://app.trusted.example"
URL = "https://api.trusted.example/v1/items?page=2"
MARK = "s3cr3tv4lu3"
BROWSER_HEADERS = [
    ("Host", "api.trusted.example"),
    ("Origin", TRUSTED),
    ("Accept", "application/json"),
    ("Sec-Fetch-Mode", "cors"),
    ("Sec-Fetch-Site", "same-site"),
    ("Referer", f"https://app.trusted.example/page?session={MARK}"),
    ("If-None-Match", '"v1"'),
]
CREDENTIALS = [
    ("Cookie", f"sid={MARK}"),
    ("cookie", f"other={MARK}"),
    ("Authorization", f"Bearer {MARK}"),
    ("AUTHORIZATION", f"Basic {MARK}"),
    ("Proxy-Authorization", f"Basic {MARK}"),
    ("Cookie2", MARK),
    ("X-Api-Key", MARK),
    ("X-CSRF-Token", MARK),
    ("X-Auth-Token", MARK),
    ("x-amz-security-token", MARK),
]


def variants_of(p: ProbePlan, kind: VariantKind) -> list[str]:
    return [v.origin for v in p.variants if v.kind is kind]


# -- the variants ------------------------------------------------------------------------------------------------

EXPECTED_VARIANTS = [
    pytest.param(VariantKind.BASELINE, [TRUSTED], id="baseline"),
    pytest.param(VariantKind.UNRELATED, ["https://evil.test"], id="unrelated"),
    pytest.param(VariantKind.NULL, ["null"], id="null"),
    pytest.param(VariantKind.PREFIX, ["https://app.trusted.example.evil.test"], id="prefix"),
    pytest.param(VariantKind.SUFFIX, ["https://eviltrusted.example"], id="suffix"),
    pytest.param(
        VariantKind.UNESCAPED_DOT, ["https://appxtrusted.example", "https://app.trustedxexample"], id="unescaped dot"
    ),
    pytest.param(VariantKind.HTTP_SCHEME, ["http://app.trusted.example"], id="http scheme"),
    pytest.param(VariantKind.SIBLING, ["https://evil.trusted.example"], id="sibling subdomain"),
    pytest.param(
        VariantKind.SPECIAL_CHAR,
        [f"https://app.trusted.example{c}.evil.test" for c in DEFAULT_SPECIAL_CHARS],
        id="special characters",
    ),
]


@pytest.mark.parametrize(("kind", "origins"), EXPECTED_VARIANTS)
def test_variants_of_a_trusted_origin(kind: VariantKind, origins: list[str]) -> None:
    assert variants_of(plan(URL, "GET", BROWSER_HEADERS), kind) == origins


def test_dot_variant_reach() -> None:
    """Replacing a dot left of the registrable domain gives a site anyone can register; a made-up TLD does not."""
    p = plan("https://api.trusted.com/", "GET", [("Origin", "https://app.trusted.com")])
    reach = {v.origin: v.reach for v in p.variants if v.kind is VariantKind.UNESCAPED_DOT}
    assert reach == {"https://appxtrusted.com": Reach.ANY_SITE, "https://app.trustedxcom": Reach.NONE}


def test_single_label_site_dot_variant_is_unreachable() -> None:
    """The issue's example: `https://trustedxexample` for `trusted.example` shows the flaw, but nobody can serve it."""
    p = plan("https://api.other.test/", "GET", [("Origin", "https://trusted.example")])
    (dot,) = [v for v in p.variants if v.kind is VariantKind.UNESCAPED_DOT]
    assert (dot.origin, dot.reach) == ("https://trustedxexample", Reach.NONE)


@pytest.mark.parametrize(
    ("char", "reach"), [pytest.param(c, Reach.ANY_SITE if c == "_" else Reach.RESOLVER, id=c) for c in SPECIAL_CHARS]
)
def test_special_char_reach(char: str, reach: Reach) -> None:
    """`_` resolves through Chromium's DNS client; the others are valid hosts whose names it will not resolve."""
    p = plan(URL, "GET", BROWSER_HEADERS, special_chars=[char])
    (v,) = [v for v in p.variants if v.kind is VariantKind.SPECIAL_CHAR]
    assert (v.char, v.reach) == (char, reach)


def test_every_special_char_was_measured_valid_in_chromium() -> None:
    """Each character is in a host Chromium accepted (`tests/corpus/url_validity.json`, recorded from Chromium)."""
    corpus = json.loads((Path(__file__).parent / "corpus" / "url_validity.json").read_text(encoding="utf-8"))
    assert all(corpus["values"][f"http://1.2.3.4{c}"] is True for c in SPECIAL_CHARS)


@pytest.mark.parametrize("char", sorted(FORBIDDEN_DOMAIN_CODE_POINTS | set(' *,"') | {"ab", ""}), ids=repr)
def test_characters_browsers_refuse_or_rewrite_are_never_used(char: str) -> None:
    """Forbidden domain code points (URL Standard), what Chromium escapes (space, `*`), junk: never a variant."""
    p = plan(URL, "GET", BROWSER_HEADERS, special_chars=[char])
    assert variants_of(p, VariantKind.SPECIAL_CHAR) == []


def test_every_variant_is_an_origin_a_browser_sends() -> None:
    """Each crafted Origin is a valid URL to Chromium and already in its serialized form."""
    p = plan(URL, "GET", BROWSER_HEADERS, ["https://admin.trusted.example:8443"], special_chars=SPECIAL_CHARS)
    for v in p.variants:
        if v.kind is VariantKind.NULL:
            continue
        host = v.origin.partition("://")[2].rsplit(":", 1)[0]
        assert urlparse.is_valid_url(v.origin), v
        assert fetchspec.normalize_origin(v.origin) == v.origin, v
        assert not set(host) & FORBIDDEN_DOMAIN_CODE_POINTS, v


def test_variants_are_unique_and_never_the_server() -> None:
    p = plan(
        "https://trusted.example/", "GET", [("Origin", "https://www.trusted.example")], ["https://trusted.example"]
    )
    origins = [v.origin for v in p.variants]
    assert len(origins) == len(set(origins))
    assert "https://trusted.example" not in origins


def test_bases_are_the_flows_origin_then_the_trusted_ones_capped() -> None:
    extra = ["https://a.trusted.example", "null", "not an origin", TRUSTED, "https://api.trusted.example"]
    p = plan(URL, "GET", BROWSER_HEADERS, extra)
    assert p.bases == (TRUSTED, "https://a.trusted.example")


def test_port_is_kept() -> None:
    p = plan("http://api.localhost:8000/x", "GET", [("Origin", "http://app.localhost:5173")])
    assert variants_of(p, VariantKind.PREFIX) == ["http://app.localhost.evil.test:5173"]


def test_loopback_origin_gets_no_internet_only_variants() -> None:
    """Suffix, dot, sibling and http variants mean nothing for a loopback origin."""
    p = plan("http://api.localhost:8000/x", "GET", [("Origin", "http://localhost:3000")])
    kinds = {v.kind for v in p.variants}
    assert not kinds & {VariantKind.SUFFIX, VariantKind.UNESCAPED_DOT, VariantKind.SIBLING, VariantKind.HTTP_SCHEME}


def test_ipv6_origin_gets_only_the_general_variants() -> None:
    p = plan("http://[::1]:8000/x", "GET", [("Origin", "http://[::2]:3000")])
    assert [v.kind for v in p.variants] == [VariantKind.BASELINE, VariantKind.UNRELATED, VariantKind.NULL]


def test_without_a_trusted_origin_only_general_variants() -> None:
    p = plan(URL, "GET", [("Origin", "null")])
    assert [v.kind for v in p.variants] == [VariantKind.UNRELATED, VariantKind.NULL]


@pytest.mark.parametrize("url", ["ftp://a.test/x", "file:///etc/passwd", "https:///nohost", "http://a.test:99999/"])
def test_only_http_urls_with_a_host_are_probed(url: str) -> None:
    with pytest.raises(ProbeError):
        plan(url, "GET", [("Origin", TRUSTED)])


# -- the requests ------------------------------------------------------------------------------------------------

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "patch", "OPTIONS"]


def flow_headers(method: str) -> list[tuple[str, str]]:
    headers = [*BROWSER_HEADERS, *CREDENTIALS, ("Content-Type", "application/json"), ("X-Trace", "1")]
    if method == "OPTIONS":  # the flow is itself a preflight
        headers += [("Access-Control-Request-Method", "PUT"), ("Access-Control-Request-Headers", "x-trace")]
    return headers


@pytest.mark.parametrize("method", METHODS)
def test_probe_requests_go_only_to_the_flows_own_server(method: str) -> None:
    """Scheme, host and port of every probe request are the flow's own; the Host header is not changed."""
    p = plan(URL, method, flow_headers(method), special_chars=SPECIAL_CHARS)
    for r in p.requests:
        sent, own = urlsplit(r.url), urlsplit(URL)
        assert (sent.scheme, sent.hostname, sent.port) == (own.scheme, own.hostname, own.port)
        assert [v for n, v in r.headers if n.lower() == "host"] == ["api.trusted.example"]
    assert p.server == "https://api.trusted.example"


@pytest.mark.parametrize("method", METHODS)
def test_probe_requests_never_carry_credentials(method: str) -> None:
    """No cookie, authorization, API key or CSRF token, in any spelling; no secret reaches any header or URL."""
    p = plan(f"https://{MARK}@api.trusted.example/v1?access_token={MARK}&page=2", method, flow_headers(method))
    for r in p.requests:
        names = {n.lower() for n, _ in r.headers}
        assert not names & {n.lower() for n, _ in CREDENTIALS}
        assert MARK not in repr(r.headers) + r.url + r.path


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_safe_methods_are_replayed_as_they_are(method: str) -> None:
    p = plan(URL, method, flow_headers(method))
    assert {(r.method, r.keep_body) for r in p.requests} == {(method, False)}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "patch"])
def test_unsafe_methods_send_only_a_preflight(method: str) -> None:
    """The method is never sent: only its OPTIONS preflight, announcing it and the page's unsafe header names (not
    the browser's conditional ones), with no body and no credentials (names only, as a browser's preflight)."""
    p = plan(URL, method, flow_headers(method))
    for r in p.requests:
        headers = dict(r.headers)
        assert (r.method, r.keep_body) == ("OPTIONS", False)
        assert headers["Access-Control-Request-Method"] == method
        assert headers["Access-Control-Request-Headers"] == (
            "authorization,content-type,x-amz-security-token,x-api-key,x-auth-token,x-csrf-token,x-trace"
        )


def test_a_preflight_is_replayed_as_the_same_preflight() -> None:
    p = plan(URL, "OPTIONS", flow_headers("OPTIONS"))
    for r in p.requests:
        headers = dict(r.headers)
        assert r.method == "OPTIONS"
        assert (headers["Access-Control-Request-Method"], headers["Access-Control-Request-Headers"]) == (
            "PUT",
            "x-trace",
        )


@pytest.mark.parametrize("method", METHODS)
def test_each_request_carries_exactly_its_variant_origin(method: str) -> None:
    p = plan(URL, method, flow_headers(method))
    for r in p.requests:
        assert [v for n, v in r.headers if n.lower() == "origin"] == [r.variant.origin]


def test_no_conditional_or_referer_headers() -> None:
    """A 304 carries no CORS headers, and the Referer would name the user's page: neither is copied."""
    for r in plan(URL, "GET", flow_headers("GET")).requests:
        assert not {n.lower() for n, _ in r.headers} & {"if-none-match", "referer"}


def test_fetch_metadata_names_the_variants_site() -> None:
    """`Sec-Fetch-Site` is what a page at the variant's origin would send: same-site only for a subdomain."""
    p = plan(URL, "GET", BROWSER_HEADERS)
    site = {r.variant.kind: dict(r.headers)["Sec-Fetch-Site"] for r in p.requests}
    assert site[VariantKind.SIBLING] == "same-site"
    assert site[VariantKind.UNRELATED] == site[VariantKind.PREFIX] == "cross-site"


def test_flag_replay_unsafe_keeps_the_method_and_body_but_not_credentials() -> None:
    p = plan(URL, "PUT", flow_headers("PUT"), replay_unsafe=True)
    assert {(r.method, r.keep_body) for r in p.requests} == {("PUT", True)}
    assert all("Cookie" not in dict(r.headers) for r in p.requests)


def test_flag_send_credentials_keeps_them_on_replays_never_on_preflights() -> None:
    get = plan(URL + f"&token={MARK}", "GET", flow_headers("GET"), send_credentials=True)
    assert all(dict(r.headers).get("Cookie") == f"sid={MARK}" for r in get.requests)
    assert all(f"token={MARK}" in r.path for r in get.requests)
    assert all(MARK not in repr(r) for r in get.requests)  # a probe request never prints its credentials
    put = plan(URL, "PUT", flow_headers("PUT"), send_credentials=True)
    assert all(MARK not in repr(r.headers) for r in put.requests)


# -- classifying the answers: real-world origin checks, flawed and correct ----------------------------------------

Check = Callable[[str], bool]


def lax_host(pattern: str) -> Check:
    """A hand-written check that parses the host with a too-narrow character class and compares it."""

    def check(origin: str) -> bool:
        m = re.match(pattern, origin)
        return m is not None and m.group(1) == "app.trusted.example"

    return check


SERVERS: dict[str, Check] = {
    "exact list": lambda o: o in {TRUSTED, "https://admin.trusted.example"},
    "reflect any (Express cors origin: true)": lambda o: True,
    "startswith": lambda o: o.startswith(TRUSTED),
    "django regex without anchors (re.match)": lambda o: re.match(r"https://app\.trusted\.example", o) is not None,
    "endswith without a dot": lambda o: o.endswith("trusted.example"),
    "regex with unescaped dots": lambda o: re.fullmatch(r"https://app.trusted.example", o) is not None,
    "starlette allow_origin_regex '.*.'": lambda o: re.fullmatch(r"https://.*.trusted.example", o) is not None,
    "any subdomain": lambda o: re.fullmatch(r"https://[a-z0-9.-]+\.trusted\.example", o) is not None,
    "host parsed up to a non-word char": lambda o: lax_host(r"https://([\w.-]+)")(o),
    "host parsed up to a non-alnum char": lambda o: lax_host(r"https://([a-z0-9.-]+)")(o),
    "null allowed for file: pages": lambda o: o in {TRUSTED, "null"},
    "scheme ignored": lambda o: o.partition("://")[2] == "app.trusted.example",
    "no CORS at all": lambda o: False,
}


def respond(check: Check, credentials: bool, wildcard: bool = False) -> Callable[[probe.ProbeRequest], Reply]:
    def answer(r: probe.ProbeRequest) -> Reply:
        headers = dict(r.headers)
        origin = headers["Origin"]
        out: list[tuple[str, str]] = [("Vary", "Origin"), ("Set-Cookie", f"sid={MARK}")]
        if wildcard:
            out.append(("Access-Control-Allow-Origin", "*"))
        elif check(origin):
            out.append(("Access-Control-Allow-Origin", origin))
            if credentials:
                out.append(("Access-Control-Allow-Credentials", "true"))
            if r.method == "OPTIONS":
                out.append(("Access-Control-Allow-Methods", headers["Access-Control-Request-Method"]))
                if "Access-Control-Request-Headers" in headers:
                    out.append(("Access-Control-Allow-Headers", headers["Access-Control-Request-Headers"]))
        return Reply(origin, 204 if r.method == "OPTIONS" else 200, out, flow_id=f"replay-{r.variant.origin}")

    return answer


def run(check: Check, credentials: bool, method: str = "GET", **kw: object) -> probe.ProbeResult:
    p = plan(URL, method, flow_headers(method), **kw)  # type: ignore[arg-type]
    answer = respond(check, credentials)
    return classify(p, [answer(r) for r in p.requests], flow_id="probed")


CLASSIFIED = [
    pytest.param("exact list", True, OriginCheck.EXACT, {}, id="exact list: nothing"),
    pytest.param(
        "reflect any (Express cors origin: true)",
        True,
        OriginCheck.REFLECT_ANY,
        {"origin-reflected-with-credentials": H},
        id="reflect any with credentials",
    ),
    pytest.param(
        "reflect any (Express cors origin: true)",
        False,
        OriginCheck.REFLECT_ANY,
        {"origin-reflected": L},
        id="reflect any without credentials",
    ),
    pytest.param(
        "startswith", True, OriginCheck.FLAWED, {"origin-check-prefix-match": H}, id="startswith: prefix match"
    ),
    pytest.param(
        "django regex without anchors (re.match)",
        True,
        OriginCheck.FLAWED,
        {"origin-check-prefix-match": H},
        id="re.match without $: prefix match",
    ),
    pytest.param(
        "endswith without a dot",
        True,
        OriginCheck.FLAWED,
        {"origin-check-suffix-match": H, "http-origin-trusted": M},
        id="endswith: suffix match, and any scheme (its dot and sibling variants are no extra finding)",
    ),
    pytest.param(
        "regex with unescaped dots",
        True,
        OriginCheck.FLAWED,
        {"origin-regex-unescaped-dot": H},
        id="unescaped dots: a registrable look-alike",
    ),
    pytest.param(
        "starlette allow_origin_regex '.*.'",
        True,
        OriginCheck.FLAWED,
        {"origin-check-suffix-match": H, "origin-regex-unescaped-dot": L},
        id="starlette '.*.' regex: suffix match, and the unescaped dot in the domain",
    ),
    pytest.param(
        "any subdomain", True, OriginCheck.FLAWED, {"any-subdomain-trusted": L}, id="any subdomain (with credentials)"
    ),
    pytest.param(
        "any subdomain", False, OriginCheck.FLAWED, {"any-subdomain-trusted": INFO}, id="any subdomain (no credentials)"
    ),
    pytest.param(
        "host parsed up to a non-word char",
        True,
        OriginCheck.FLAWED,
        {"origin-check-special-chars": M},
        id="stops at non-word chars: only resolver-dependent hosts",
    ),
    pytest.param(
        "host parsed up to a non-alnum char",
        True,
        OriginCheck.FLAWED,
        {"origin-check-special-chars": H},
        id="stops at '_' too: reachable from any site",
    ),
    pytest.param(
        "null allowed for file: pages",
        True,
        OriginCheck.FLAWED,
        {"null-origin-trusted-with-credentials": H},
        id="null in the list, with credentials",
    ),
    pytest.param(
        "null allowed for file: pages", False, OriginCheck.FLAWED, {"null-origin-trusted": L}, id="null in the list"
    ),
    pytest.param("scheme ignored", True, OriginCheck.FLAWED, {"http-origin-trusted": M}, id="scheme ignored"),
    pytest.param("no CORS at all", True, OriginCheck.INCONCLUSIVE, {}, id="no CORS: inconclusive"),
]


@pytest.mark.parametrize(("server", "credentials", "check", "expected"), CLASSIFIED)
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_origin_checks_are_classified(
    server: str, credentials: bool, check: OriginCheck, expected: dict[str, Severity], method: str
) -> None:
    """Each origin check, probed by replays (GET) or by preflights (PUT): its class and its findings."""
    result = run(SERVERS[server], credentials, method)
    assert result.check is check
    assert {f.id: f.severity for f in result.findings} == expected


def test_wildcard_server_is_public_not_flawed() -> None:
    p = plan(URL, "GET", BROWSER_HEADERS)
    answer = respond(SERVERS["exact list"], False, wildcard=True)
    result = classify(p, [answer(r) for r in p.requests])
    assert (result.check, result.findings) == (OriginCheck.WILDCARD, ())


def test_credentials_need_allow_credentials_exactly_true() -> None:
    """`Allow-Credentials: True` does not let a credentialed read through: the finding is the low one."""
    p = plan(URL, "GET", BROWSER_HEADERS)
    replies = [
        Reply(
            r.variant.origin,
            200,
            [("Access-Control-Allow-Origin", r.variant.origin), ("Access-Control-Allow-Credentials", "True")],
        )
        for r in p.requests
    ]
    assert [(f.id, f.severity) for f in classify(p, replies).findings] == [("origin-reflected", L)]


def test_a_server_that_answers_cors_only_with_cookies_is_inconclusive() -> None:
    """No cookie is sent, so a server that adds CORS headers only for logged-in users shows nothing."""

    def answer(r: probe.ProbeRequest) -> Reply:
        logged_in = any(n.lower() == "cookie" for n, _ in r.headers)
        acao = [("Access-Control-Allow-Origin", r.variant.origin)] if logged_in else []
        return Reply(r.variant.origin, 200, acao)

    p = plan(URL, "GET", flow_headers("GET"))
    assert classify(p, [answer(r) for r in p.requests]).check is OriginCheck.INCONCLUSIVE


def test_a_preflight_that_refuses_the_method_does_not_count_as_trusted() -> None:
    """Trusted means the browser would go on: a preflight naming the origin but not the method fails."""
    p = plan(URL, "PUT", flow_headers("PUT"))
    replies = [Reply(r.variant.origin, 204, [("Access-Control-Allow-Origin", r.variant.origin)]) for r in p.requests]
    result = classify(p, replies)
    assert (result.check, result.findings) == (OriginCheck.INCONCLUSIVE, ())
    assert {r.reason for r in result.results} == {"MethodDisallowedByPreflightResponse"}


def test_missing_and_failed_replies_are_not_trusted() -> None:
    p = plan(URL, "GET", BROWSER_HEADERS)
    replies = [Reply(p.requests[0].variant.origin, error="connection refused")]
    result = classify(p, replies)
    assert result.check is OriginCheck.INCONCLUSIVE
    assert not any(r.answered or r.trusted for r in result.results)


def test_evidence_is_the_probed_flow_then_the_replays() -> None:
    result = run(SERVERS["startswith"], True)
    (finding,) = result.findings
    assert finding.evidence == ("probed", "replay-https://app.trusted.example.evil.test")
    assert finding.details == ("https://app.trusted.example.evil.test",)
    assert (finding.server, finding.route) == ("https://api.trusted.example", "/v1/items")


def test_result_is_json_and_holds_no_secret() -> None:
    """Cookies set by the replies and the flow's credentials never reach the result or its text."""
    for server in SERVERS.values():
        result = run(server, True)
        dumped = json.dumps(result.as_dict(), allow_nan=False) + probe.render_text(result)
        assert MARK not in dumped


def test_render_text_names_the_check_and_each_variant() -> None:
    result = run(SERVERS["startswith"], True)
    text = probe.render_text(result)
    assert "flawed" in text.splitlines()[0]
    assert len(text.splitlines()) == 1 + len(result.results) + len(result.findings)


def test_pacer_holds_probe_replays_to_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """At cors_probe_rate=5, the second and third probe replays wait 0.2 s and 0.4 s; other flows never wait."""
    import asyncio
    import concurrent.futures

    from mitmproxy.test import taddons, tflow

    from mitmcors.addon import CorsAddon
    from mitmcors.prober import PROBE_KEY, ProbePacer

    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(round(seconds, 2))

    monkeypatch.setattr("mitmcors.prober.asyncio.sleep", fake_sleep)
    pacer = ProbePacer()

    async def three_probes_and_a_page_flow() -> None:
        clock = asyncio.get_running_loop().time()
        monkeypatch.setattr(asyncio.get_running_loop(), "time", lambda: clock)  # the clock stands still
        for i in range(4):
            f = tflow.tflow()
            if i < 3:
                f.metadata[PROBE_KEY] = {"probe": "p"}
            await pacer.request(f)

    a = CorsAddon()
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_probe_rate=5)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a loop of its own, whatever else runs here
            pool.submit(asyncio.run, three_probes_and_a_page_flow()).result()
    assert waits == [0.2, 0.4]
