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

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tests.harness.browser import CdpRequest, Result, line_path, url_path
from tests.harness.checks import (
    Expectations,
    Expected,
    Line,
    all_mismatches,
    effective,
    expectations_from,
    raise_problems,
    where,
)

CHROMIUM = Path("/usr/bin/chromium")  # Debian's chromium package: Playwright's own browser download does not work


def launch_args(proxy_url: str | None = None) -> list[str]:
    """The flags every suite starts Chromium with; with `proxy_url`, everything (loopback too) goes through it."""
    proxy = [f"--proxy-server={proxy_url}", "--proxy-bypass-list=<-loopback>"] if proxy_url else []
    return [
        *proxy,
        "--ignore-certificate-errors",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
    ]


__all__ = ["PREFLIGHT_ERRORS", "Expectations", "Expected", "assert_matches", "effective", "expectations", "mismatches"]

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


def _blocked_line(lines: Sequence[Line], request: CdpRequest, earlier: Sequence[CdpRequest]) -> int | None:
    """The index of the line a Chromium CORS error is about: the latest OPTIONS for a preflight error, else the
    request itself at the last redirect hop that has a line: the page's requests run one after the other, so the
    n-th request to a URL (``earlier``: the requests before it) is the n-th line for it."""
    want_options = request.cors_error in PREFLIGHT_ERRORS
    for hop in reversed([url_path(u) for u in request.hops]):
        found = [
            i for i, ln in enumerate(lines) if line_path(ln) == hop and (ln.get("method") == "OPTIONS") == want_options
        ]
        if found and want_options:
            return found[-1]
        if found:
            n = sum(url_path(u) == hop for r in earlier for u in r.hops)
            return found[min(n, len(found) - 1)]
    return None


def expectations(result: Result) -> Expectations:
    """What Chromium did with each of the scenario's report lines."""
    s, lines = result.scenario, result.lines
    problems: list[str] = []
    blocked: dict[int, str | None] = {}
    requests = [r for r in result.cdp if not r.is_preflight]
    if not requests and s.not_cors is None:
        problems.append("harness: Chromium made no request under the scenario prefix")
    for n, r in enumerate(requests):
        if s.not_cors is not None and r.cors_error:
            problems.append(f"harness: Chromium blocked a not-CORS scenario: {r.describe()}")
        if r.failed and not r.cors_error and not s.network_error:
            problems.append(f"harness: request failed without a CORS error: {r.describe()}")
            continue
        if r.cors_error or r.failed:
            index = _blocked_line(lines, r, requests[:n])
            if index is None:
                what = "OPTIONS" if r.cors_error in PREFLIGHT_ERRORS else r.method
                problems.append(f"no report line for the {what} flow Chromium blocked: {r.describe()}")
                continue
            blocked[index] = r.cors_error
            if r.cors_error in PREFLIGHT_ERRORS and result.wire_for(
                r.method, url_path(r.hops[-1])[len(result.prefix) :]
            ):
                problems.append(f"harness: Chromium reported {r.cors_error} but the actual request reached the server")
        elif s.not_cors is None and not any(
            line_path(ln) == url_path(r.hops[-1]) and ln.get("method") != "OPTIONS" for ln in lines
        ):
            problems.append(f"no report line for the request Chromium completed: {r.describe()}")
    return expectations_from(result, blocked, problems)


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


def _chromium(e: Expected) -> str:
    return f"blocked with corsError={e.reason!r}" if e.verdict == "blocked" else "let this flow pass"


AGAINST_CHROMIUM: Sequence[Callable[[Result, Expectations], list[str]]] = (check_verdicts, check_reasons)


def mismatches(result: Result) -> list[str]:
    """Every way the addon's report disagrees with Chromium (or with the report contract) for this scenario."""
    return all_mismatches(result, expectations(result), (check_page_agrees_with_cdp,), AGAINST_CHROMIUM)


def assert_matches(result: Result) -> None:
    """Raise with every mismatch (and the scenario's own check) and the evidence, if there is any."""
    raise_problems(result, mismatches(result), "Chromium", result.scenario.check)
