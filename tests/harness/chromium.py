"""Chromium is the truth: what Chromium did with each flow of a scenario, and one check per property of the
addon's report held against it.

A request is blocked by CORS in Chromium iff it failed with a ``corsErrorStatus`` (CDP ``Network.loadingFailed``);
its ``corsError`` is Chromium's exact ``CorsError`` name. A preflight error is compared with the OPTIONS flow's
line (the actual request never reaches the wire); any other error with the last redirect hop's line. Every other
line (passing preflights, earlier hops, allowed requests) must be allowed. Expected reasons are never written by
hand: they come from the browser.

``expectations`` turns a scenario's observations into what Chromium says about each report line; each
``check_*`` returns the ways one property of the report disagrees (empty: it agrees); ``mismatches`` runs them
all. No mitmproxy or Playwright import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.harness.browser import SECRET_VALUES, CdpRequest, Result, line_path, url_path
from tests.harness.report import REPORT_KEYS

# Chromium CorsError names that fail the preflight: the actual request never reaches the wire, so the error is
# compared with the report line of the OPTIONS flow.
PREFLIGHT_ERRORS = frozenset(
    {
        "PreflightWildcardOriginNotAllowed",
        "PreflightMissingAllowOriginHeader",
        "PreflightMultipleAllowOriginValues",
        "PreflightInvalidAllowOriginValue",
        "PreflightAllowOriginMismatch",
        "PreflightInvalidAllowCredentials",
        "PreflightInvalidStatus",
        "PreflightDisallowedRedirect",
        "InvalidAllowMethodsPreflightResponse",
        "InvalidAllowHeadersPreflightResponse",
        "MethodDisallowedByPreflightResponse",
        "HeaderDisallowedByPreflightResponse",
    }
)

Line = dict[str, Any]


@dataclass(frozen=True)
class Expected:
    """What Chromium's behaviour says one report line must carry."""

    verdict: str
    reason: str | None
    kind: str
    preflight: int | None = None
    """Index (in the scenario's lines) of the OPTIONS flow whose preflight covered this request."""
    cached: bool | None = None
    """Whether that preflight came from Chromium's preflight cache (an earlier request already used it)."""


@dataclass(frozen=True)
class Expectations:
    """Per report line (by index) what Chromium did, and what the harness could not pin on a line."""

    lines: Mapping[int, Expected]
    problems: Sequence[str]


def effective(line: Mapping[str, Any], credentials: bool) -> tuple[str | None, str | None]:
    """The addon's (verdict, reason) for the credentials mode the page used.

    Credentials mode is not on the wire: without a cookie the addon says ``unknown`` and gives the ``include``
    outcome in ``if_credentials`` when it differs, so a page that asked for credentials is judged by that.
    """
    if credentials and line.get("credentials") == "unknown" and line.get("if_credentials"):
        alt = line["if_credentials"]
        return alt.get("verdict"), alt.get("reason")
    return line.get("verdict"), line.get("reason")


def where(line: Mapping[str, Any]) -> str:
    return f"{line.get('method')} {line.get('url')}"


def _blocked_line(lines: Sequence[Line], request: CdpRequest) -> int | None:
    """The index of the line a Chromium CORS error is about: the OPTIONS for a preflight error, else the request
    itself, at the last redirect hop that has a line."""
    want_options = request.cors_error in PREFLIGHT_ERRORS
    for hop in reversed([url_path(u) for u in request.hops]):
        found = [
            i for i, ln in enumerate(lines) if line_path(ln) == hop and (ln.get("method") == "OPTIONS") == want_options
        ]
        if found:
            return found[-1]
    return None


def preflight_links(lines: Sequence[Line]) -> dict[int, tuple[int, bool]]:
    """Per actual request (index) after an OPTIONS to the same URL: (index of the latest such OPTIONS, whether an
    earlier request already used it, i.e. Chromium served it from its preflight cache)."""
    links: dict[int, tuple[int, bool]] = {}
    for i, ln in enumerate(lines):
        if ln.get("method") == "OPTIONS":
            continue
        before = [j for j, p in enumerate(lines[:i]) if p.get("method") == "OPTIONS" and p.get("url") == ln.get("url")]
        if before:
            used = any(link[0] == before[-1] for link in links.values())
            links[i] = (before[-1], used)
    return links


def expectations(result: Result) -> Expectations:
    """What Chromium did with each of the scenario's report lines."""
    s, lines = result.scenario, result.lines
    problems: list[str] = []
    links = preflight_links(lines)

    def kind_of(ln: Line) -> str:
        if s.not_cors is not None:
            return s.not_cors
        return "preflight" if ln.get("method") == "OPTIONS" else "actual"

    def expected(i: int, verdict: str, reason: str | None) -> Expected:
        preflight, cached = links.get(i, (None, None))
        return Expected(verdict, reason, kind_of(lines[i]), preflight, cached)

    judged: dict[int, Expected] = {}
    requests = [r for r in result.cdp if not r.is_preflight]
    if not requests and s.not_cors is None:
        problems.append("harness: Chromium made no request under the scenario prefix")
    for r in requests:
        if s.not_cors is not None and r.cors_error:
            problems.append(f"harness: Chromium blocked a not-CORS scenario: {r.describe()}")
        if r.failed and not r.cors_error:
            problems.append(f"harness: request failed without a CORS error: {r.describe()}")
            continue
        if r.cors_error:
            index = _blocked_line(lines, r)
            if index is None:
                what = "OPTIONS" if r.cors_error in PREFLIGHT_ERRORS else r.method
                problems.append(f"no report line for the {what} flow Chromium blocked: {r.describe()}")
                continue
            judged[index] = expected(index, "blocked", r.cors_error)
            if r.cors_error in PREFLIGHT_ERRORS and result.wire_for(
                r.method, url_path(r.hops[-1])[len(result.prefix) :]
            ):
                problems.append(f"harness: Chromium reported {r.cors_error} but the actual request reached the server")
        elif s.not_cors is None and not any(
            line_path(ln) == url_path(r.hops[-1]) and ln.get("method") != "OPTIONS" for ln in lines
        ):
            problems.append(f"no report line for the request Chromium completed: {r.describe()}")
    every = {i: judged.get(i) or expected(i, "allowed", None) for i in range(len(lines))}
    return Expectations(every, problems)


# --- the report contract ------------------------------------------------------------------------------------


def check_one_line_per_origin_request(result: Result) -> list[str]:
    """One report line per request that reached the server with an Origin header, with distinct flow ids."""
    problems = []
    with_origin = [w for w in result.wire if w.header("origin") is not None]
    if len(result.lines) != len(with_origin):
        problems.append(
            f"{len(with_origin)} requests with Origin reached the server, report has {len(result.lines)} lines"
        )
    for w in with_origin:
        if not result.lines_for(w.method, w.path[len(result.prefix) :]):
            problems.append(f"no report line for {w.method} {w.scheme}://{w.host}{w.path}")
    ids = [ln.get("flow_id") for ln in result.lines]
    if len(set(ids)) != len(ids):
        problems.append(f"duplicate flow_id in report lines: {ids}")
    return problems


def check_report_keys(result: Result) -> list[str]:
    """Every line has the documented keys."""
    problems = []
    for ln in result.lines:
        missing = [k for k in REPORT_KEYS if k not in ln]
        if missing:
            problems.append(f"{where(ln)}: report line lacks keys {missing}")
    return problems


def check_no_secrets(result: Result) -> list[str]:
    """No cookie or token value the pages sent appears in the report."""
    return [f"the report contains the secret value {v!r}" for v in SECRET_VALUES if v in result.report_text]


def check_credentials(result: Result) -> list[str]:
    """A Cookie on the wire proves credentials ``include``; no cookie proves nothing, so it must not say include."""
    problems = []
    for ln in result.lines:
        if ln.get("method") == "OPTIONS":
            continue
        sent = result.wire_for(str(ln.get("method", "")), line_path(ln)[len(result.prefix) :])
        has_cookie = any(w.header("cookie") for w in sent)
        if has_cookie and ln.get("credentials") != "include":
            problems.append(f"{where(ln)}: Cookie on the wire but credentials={ln.get('credentials')!r}")
        if not has_cookie and ln.get("credentials") == "include":
            problems.append(f"{where(ln)}: no Cookie on the wire but credentials='include'")
    return problems


def check_page_agrees_with_cdp(result: Result) -> list[str]:
    """Harness sanity: a CORS error always reaches the page as a failure. The page's requests run one after the
    other, so the n-th outcome for a URL is the n-th CDP request to it."""
    problems = []
    seen: dict[str, int] = {}
    for out in result.js if isinstance(result.js, list) else []:
        if not isinstance(out, dict) or "url" not in out:
            continue
        n = seen[out["url"]] = seen.get(out["url"], -1) + 1
        same = [r for r in result.cdp if not r.is_preflight and r.hops and r.hops[0] == out["url"]]
        if n < len(same) and same[n].cors_error and out.get("ok"):
            problems.append(f"harness: CDP reports {same[n].cors_error} but the page saw success: {out}")
    return problems


# --- Chromium's outcome, property by property -------------------------------------------------------------------


def _judged(result: Result, want: Expectations) -> Iterator[tuple[Line, Expected, tuple[str | None, str | None]]]:
    """Each line, what Chromium did with it, and the addon's (verdict, reason) for the page's credentials mode."""
    for i, ln in enumerate(result.lines):
        yield ln, want.lines[i], effective(ln, result.scenario.credentials)


def check_verdicts(result: Result, want: Expectations) -> list[str]:
    """Each line is blocked iff Chromium blocked that flow (judged for the credentials mode the page used)."""
    return [
        f"{where(ln)}: Chromium: {_chromium(e)}; addon verdict={got[0]!r}"
        for ln, e, got in _judged(result, want)
        if got[0] != e.verdict
    ]


def check_reasons(result: Result, want: Expectations) -> list[str]:
    """A blocked line names Chromium's corsError; an allowed one names none."""
    return [
        f"{where(ln)}: Chromium: {_chromium(e)}; addon reason={got[1]!r}"
        + (" (from if_credentials)" if got != (ln.get("verdict"), ln.get("reason")) else "")
        for ln, e, got in _judged(result, want)
        if got[1] != e.reason
    ]


def check_firefox_reasons(result: Result) -> list[str]:
    """A Firefox reason, when a line gives one, is a Firefox reason key on a blocked line."""
    problems = []
    for ln in result.lines:
        firefox = ln.get("firefox_reason")
        if firefox is None:
            continue
        if not (isinstance(firefox, str) and firefox.startswith("CORS")):
            problems.append(f"{where(ln)}: firefox_reason={firefox!r} is not a Firefox reason key")
        if ln.get("verdict") != "blocked":
            problems.append(f"{where(ln)}: allowed, but firefox_reason={firefox!r}")
    return problems


def check_kinds(result: Result, want: Expectations) -> list[str]:
    """OPTIONS flows are preflights, other CORS flows actual requests; not-CORS flows have the row's kind."""
    return [
        f"{where(ln)}: kind={ln.get('kind')!r}, expected {want.lines[i].kind!r}"
        for i, ln in enumerate(result.lines)
        if ln.get("kind") != want.lines[i].kind
    ]


def check_messages(result: Result) -> list[str]:
    """A blocked line explains itself."""
    return [
        f"{where(ln)}: blocked but message={ln.get('message')!r}"
        for ln in result.lines
        if ln.get("verdict") == "blocked" and not ln.get("message")
    ]


def check_preflight_links(result: Result, want: Expectations) -> list[str]:
    """An actual request after an OPTIONS to the same URL names the latest of them as its ``preflight_id``
    (whether Chromium sent a new OPTIONS or used its preflight cache); any other request names none."""
    problems = []
    for i, ln in enumerate(result.lines):
        index = want.lines[i].preflight
        got = ln.get("preflight_id")
        if index is None:
            if got and ln.get("method") != "OPTIONS":
                problems.append(f"{where(ln)}: no preflight, but preflight_id={got!r}")
            continue
        if got != result.lines[index].get("flow_id"):
            problems.append(
                f"{where(ln)}: preflight_id={got!r}, expected the OPTIONS flow {result.lines[index].get('flow_id')!r}"
            )
    return problems


def check_cache_links(result: Result, want: Expectations) -> list[str]:
    """``preflight_cached`` is true iff Chromium re-used the preflight (an earlier request already used it)."""
    return [
        f"{where(ln)}: preflight_cached={ln.get('preflight_cached')!r}, Chromium's cache: {want.lines[i].cached}"
        for i, ln in enumerate(result.lines)
        if want.lines[i].preflight is not None and ln.get("preflight_cached") is not want.lines[i].cached
    ]


def check_request_ids(result: Result, want: Expectations) -> list[str]:
    """A preflight lists the requests it covered: live (a report line can be written before the requests it
    covers exist), and in its line only requests of this scenario that name it as their preflight."""
    problems = []
    for i, ln in enumerate(result.lines):
        index = want.lines[i].preflight
        if index is None:
            continue
        options = result.lines[index].get("flow_id")
        live = (result.live_for(str(options)) or {}).get("request_ids") or []
        if ln.get("flow_id") not in live:
            problems.append(f"OPTIONS {ln['url']} ({options}): live request_ids={live!r} lacks {ln.get('flow_id')!r}")
    by_id = {ln.get("flow_id"): ln for ln in result.lines}
    for ln in result.lines:
        if ln.get("method") != "OPTIONS":
            continue
        for rid in ln.get("request_ids") or []:
            covered = by_id.get(rid)
            if covered is None or covered.get("preflight_id") != ln.get("flow_id"):
                problems.append(f"{where(ln)}: request_ids lists {rid!r}, not a request of this scenario linked to it")
    return problems


def check_unreadable_headers(result: Result) -> list[str]:
    """What the page could read agrees with ``unreadable_headers``: a header the page read is not listed, and a
    listed header read as null by the page."""
    problems = []
    for out in result.js if isinstance(result.js, list) else []:
        if not isinstance(out, dict) or not out.get("ok") or not out.get("headers"):
            continue
        found = [ln for ln in result.lines if ln.get("url") == out["url"] and ln.get("method") != "OPTIONS"]
        if not found:
            continue
        listed = {str(h).lower() for h in found[-1].get("unreadable_headers") or []}
        for name, value in out["headers"].items():
            if value is not None and name.lower() in listed:
                problems.append(f"{where(found[-1])}: the page read {name}={value!r}, the addon lists it unreadable")
            if value is None and name.lower() not in listed and _sent(found[-1], name, result):
                problems.append(f"{where(found[-1])}: the page could not read {name}, the addon does not list it")
    return problems


def _sent(line: Mapping[str, Any], name: str, result: Result) -> bool:
    """The server sent header ``name`` in the response of the line's flow (as mitmdump saw it)."""
    for flow in result.flows:
        if flow["flow_id"] == line.get("flow_id"):
            return any(k.lower() == name.lower() for k, _ in flow.get("response_headers") or [])
    return False


def _chromium(e: Expected) -> str:
    return f"blocked with corsError={e.reason!r}" if e.verdict == "blocked" else "let this flow pass"


CONTRACT: Sequence[Callable[[Result], list[str]]] = (
    check_one_line_per_origin_request,
    check_report_keys,
    check_no_secrets,
    check_credentials,
    check_page_agrees_with_cdp,
    check_firefox_reasons,
    check_messages,
    check_unreadable_headers,
)
AGAINST_CHROMIUM: Sequence[Callable[[Result, Expectations], list[str]]] = (
    check_verdicts,
    check_reasons,
    check_kinds,
    check_preflight_links,
    check_cache_links,
    check_request_ids,
)


def mismatches(result: Result) -> list[str]:
    """Every way the addon's report disagrees with Chromium (or with the report contract) for this scenario."""
    want = expectations(result)
    problems = list(want.problems)
    for contract in CONTRACT:
        problems += contract(result)
    for check in AGAINST_CHROMIUM:
        problems += check(result, want)
    return problems


def assert_matches(result: Result) -> None:
    """Raise with every mismatch (and the scenario's own check) and the evidence, if there is any."""
    problems = mismatches(result)
    if result.scenario.check is not None:
        try:
            result.scenario.check(result)
        except AssertionError as e:
            problems.append(f"scenario check: {e}")
    if problems:
        raise AssertionError("addon disagrees with Chromium:\n- " + "\n- ".join(problems) + "\n\n" + result.evidence())
