"""What the addon's report must say about a scenario whichever browser ran it: the report contract, and the
checks that hold one browser's outcome per report line against the report.

A browser module (``chromium``, ``firefox``) turns what its browser did into ``Expectations`` (per report line: the
verdict and the browser's own reason, plus what the wire says: the kind and which preflight covered it) with
``expectations_from``; the checks here compare the properties every browser shares, and each browser module adds
its own verdict and reason checks. No mitmproxy import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tests.harness.browser import SECRET_VALUES, Result, line_path
from tests.harness.report import REPORT_KEYS

Line = dict[str, Any]
R = TypeVar("R", bound=Result)


@dataclass(frozen=True)
class Expected:
    """What a browser's behaviour says one report line must carry."""

    verdict: str
    reason: str | None
    """The browser's own name for the failure: Chromium's CorsError, Firefox's reason key."""
    kind: str
    preflight: int | None = None
    """Index (in the scenario's lines) of the OPTIONS flow whose preflight covered this request."""
    cached: bool | None = None
    """Whether that preflight came from the browser's preflight cache (an earlier request already used it)."""


@dataclass(frozen=True)
class Expectations:
    """Per report line (by index) what the browser did, and what the harness could not pin on a line."""

    lines: Mapping[int, Expected]
    problems: Sequence[str]


def effective(line: Mapping[str, Any], credentials: bool, key: str = "reason") -> tuple[str | None, str | None]:
    """The addon's (verdict, ``key``) for the credentials mode the page used (``key``: ``reason`` for Chromium's
    name, ``firefox_reason`` for Firefox's).

    Credentials mode is not on the wire: without a cookie the addon says ``unknown`` and gives the ``include``
    outcome in ``if_credentials`` when it differs, so a page that asked for credentials is judged by that.
    """
    if credentials and line.get("credentials") == "unknown" and line.get("if_credentials"):
        alt = line["if_credentials"]
        return alt.get("verdict"), alt.get(key)
    return line.get("verdict"), line.get(key)


def where(line: Mapping[str, Any]) -> str:
    return f"{line.get('method')} {line.get('url')}"


def preflight_links(lines: Sequence[Line]) -> dict[int, tuple[int, bool]]:
    """Per actual request (index) after an OPTIONS to the same URL: (index of the latest such OPTIONS, whether an
    earlier request already used it, i.e. the browser served it from its preflight cache)."""
    links: dict[int, tuple[int, bool]] = {}
    for i, ln in enumerate(lines):
        if ln.get("method") == "OPTIONS":
            continue
        before = [j for j, p in enumerate(lines[:i]) if p.get("method") == "OPTIONS" and p.get("url") == ln.get("url")]
        if before:
            used = any(link[0] == before[-1] for link in links.values())
            links[i] = (before[-1], used)
    return links


def expectations_from(result: Result, blocked: Mapping[int, str | None], problems: Sequence[str]) -> Expectations:
    """Every line's expectation: ``blocked`` (line index -> the browser's reason) blocked, every other line allowed;
    kinds from the row, preflight links from the wire order."""
    s, lines = result.scenario, result.lines
    links = preflight_links(lines)

    def expected(i: int) -> Expected:
        kind = s.not_cors or ("preflight" if lines[i].get("method") == "OPTIONS" else "actual")
        preflight, cached = links.get(i, (None, None))
        verdict = "blocked" if i in blocked else "allowed"
        return Expected(verdict, blocked.get(i), kind, preflight, cached)

    return Expectations({i: expected(i) for i in range(len(lines))}, list(problems))


# --- the report contract ------------------------------------------------------------------------------------


def unanswered(result: Result) -> list[dict[str, Any]]:
    """Flows with an Origin header that never reached the backend because the server could not be reached
    (mitmproxy answered them itself)."""
    return [
        f
        for f in result.flows
        if f.get("error")
        and f.get("status") is None
        and any(k.lower() == "origin" for k, _ in f.get("request_headers") or [])
        and not result.wire_for(str(f.get("method", "")), str(f.get("path", "")).split("?")[0][len(result.prefix) :])
    ]


def check_one_line_per_origin_request(result: Result) -> list[str]:
    """One report line per request that reached the server with an Origin header (or that the proxy answered
    itself, the server being down), with distinct flow ids."""
    problems = []
    with_origin = [w for w in result.wire if w.header("origin") is not None]
    proxied = unanswered(result)
    if len(result.lines) != len(with_origin) + len(proxied):
        problems.append(
            f"{len(with_origin)} requests with Origin reached the server and {len(proxied)} got no answer from it, "
            f"report has {len(result.lines)} lines"
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


def check_firefox_reasons(result: Result) -> list[str]:
    """A Firefox reason, when a line gives one, is a Firefox reason key (on an allowed line it says that Firefox
    alone blocks the flow, e.g. a status above 999; the Firefox run checks that it does)."""
    return [
        f"{where(ln)}: firefox_reason={ln.get('firefox_reason')!r} is not a Firefox reason key"
        for ln in result.lines
        if ln.get("firefox_reason") is not None
        and not (isinstance(ln.get("firefox_reason"), str) and str(ln.get("firefox_reason")).startswith("CORS"))
    ]


def check_messages(result: Result) -> list[str]:
    """A blocked line explains itself."""
    return [
        f"{where(ln)}: blocked but message={ln.get('message')!r}"
        for ln in result.lines
        if ln.get("verdict") == "blocked" and not ln.get("message")
    ]


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


CONTRACT: Sequence[Callable[[Result], list[str]]] = (
    check_one_line_per_origin_request,
    check_report_keys,
    check_no_secrets,
    check_credentials,
    check_firefox_reasons,
    check_messages,
    check_unreadable_headers,
)


# --- what the wire says, whichever browser sent it -------------------------------------------------------------


def check_kinds(result: Result, want: Expectations) -> list[str]:
    """OPTIONS flows are preflights, other CORS flows actual requests; not-CORS flows have the row's kind."""
    return [
        f"{where(ln)}: kind={ln.get('kind')!r}, expected {want.lines[i].kind!r}"
        for i, ln in enumerate(result.lines)
        if ln.get("kind") != want.lines[i].kind
    ]


def check_preflight_links(result: Result, want: Expectations) -> list[str]:
    """An actual request after an OPTIONS to the same URL names the latest of them as its ``preflight_id``
    (whether the browser sent a new OPTIONS or used its preflight cache); any other request names none."""
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
    """``preflight_cached`` is true iff the browser re-used the preflight (an earlier request already used it)."""
    return [
        f"{where(ln)}: preflight_cached={ln.get('preflight_cached')!r}, the browser's cache: {want.lines[i].cached}"
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


WIRE: Sequence[Callable[[Result, Expectations], list[str]]] = (
    check_kinds,
    check_preflight_links,
    check_cache_links,
    check_request_ids,
)


def all_mismatches(
    result: R,
    want: Expectations,
    own: Sequence[Callable[[R], list[str]]] = (),
    against: Sequence[Callable[[R, Expectations], list[str]]] = (),
) -> list[str]:
    """The harness problems, the report contract, the browser's ``own`` checks, then every check against what the
    browser did (``against``, then the wire checks)."""
    problems = list(want.problems)
    for contract in (*CONTRACT, *own):
        problems += contract(result)
    for check in (*against, *WIRE):
        problems += check(result, want)
    return problems


def raise_problems(result: Result, problems: list[str], browser: str, check: Callable[[Result], None] | None) -> None:
    """Raise with every problem (and what the row's ``check`` finds) and the evidence, if there is any."""
    if check is not None:
        try:
            check(result)
        except AssertionError as e:
            problems = [*problems, f"scenario check: {e}"]
    if problems:
        raise AssertionError(
            f"addon disagrees with {browser}:\n- " + "\n- ".join(problems) + "\n\n" + result.evidence()
        )
