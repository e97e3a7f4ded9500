"""Captures: what `-w` saves of the addon's annotations, and reading a capture back with
`mitmdump -n -r <file> -s addons/cors.py` (a saved mitmproxy capture, and a HAR file as DevTools exports it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import http, io

from tests.e2e.recording import Recording
from tests.harness.client import PAGE_ORIGIN
from tests.harness.mitmdump import read_back
from tests.harness.report import path_of

pytestmark = pytest.mark.e2e

REPORT_ONLY_KEYS = ("flow_id", "method", "url", "timestamp")
LINK_KEYS = ("kind", "verdict", "reason", "firefox_reason", "credentials", "preflight_id", "redirected_from")


def saved_flows(path: Path) -> dict[str, http.HTTPFlow]:
    with path.open("rb") as f:
        return {fl.id: fl for fl in io.FlowReader(f).stream() if isinstance(fl, http.HTTPFlow)}


@pytest.fixture(scope="module")
def saved(recording: Recording) -> dict[str, http.HTTPFlow]:
    return saved_flows(recording.flows_path)


# --------------------------------------------------------------------------------------------------
# The saved capture (-w)


def test_saved_flows_carry_the_report_verdicts(recording: Recording, saved: dict[str, http.HTTPFlow]) -> None:
    """Each reported flow is in the capture, its metadata["cors"] equal to its report line (without the
    report's own flow_id/method/url/timestamp)."""
    assert len(recording.report) == len(recording.by_step)  # one line per step, every step reported
    for line in recording.report:
        f = saved[line["flow_id"]]
        # A preflight learns more once the request it announced arrives (its ids, and "include" when that request
        # carries a cookie); mitmproxy saved it before that, the report line waited for it.
        learnt_later = ("request_ids", "requests_covered", "credentials")
        expected = {k: v for k, v in line.items() if k not in (*REPORT_ONLY_KEYS, *learnt_later)}
        saved_meta = json.loads(json.dumps(f.metadata["cors"]))
        saved_ids = saved_meta.pop("request_ids")
        saved_meta.pop("requests_covered", None)
        assert saved_meta.pop("credentials") in (line["credentials"], "unknown")
        assert saved_meta == expected, f.request.url
        # mitmproxy writes a flow at its response, before the requests a preflight covers arrive: the capture
        # holds the links known then, the report (which waits for the announced request) at least as many.
        assert line["request_ids"][: len(saved_ids)] == saved_ids


def test_saved_blocked_flows_are_marked_and_commented(recording: Recording, saved: dict[str, http.HTTPFlow]) -> None:
    """A blocked flow is marked (emoji string) and commented with its message, so ~marked/~comment filters work."""
    for step in ("simple-blocked", "preflight-failed"):
        line = recording.line(step)
        f = saved[line["flow_id"]]
        assert line["verdict"] == "blocked"
        assert isinstance(f.marked, str)
        assert f.marked
        assert f.comment == line["message"]
    line = recording.line("simple-allowed")
    allowed = saved[line["flow_id"]]
    # Allowed flows are unmarked, unless credentials (invisible on the wire) would block them: then a warning.
    assert allowed.marked == (":warning:" if line["credentials_dependent"] else "")
    assert allowed.comment == line["message"]


def test_saved_actual_requests_carry_their_preflight_id(recording: Recording, saved: dict[str, http.HTTPFlow]) -> None:
    """The PUTs in the capture name the preflight that covered them (the second from the preflight cache)."""
    preflight_id = recording.line("preflight")["flow_id"]
    put = saved[recording.line("put")["flow_id"]].metadata["cors"]
    cached = saved[recording.line("put-cached")["flow_id"]].metadata["cors"]
    assert (put["preflight_id"], put["preflight_cached"]) == (preflight_id, False)
    assert (cached["preflight_id"], cached["preflight_cached"]) == (preflight_id, True)


# --------------------------------------------------------------------------------------------------
# Reading the capture back


@pytest.fixture(scope="module")
def readback(recording: Recording, confdir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    lines, _ = read_back(recording.flows_path, tmp_path_factory.mktemp("readback"), confdir, "readback")
    return lines


def test_readback_reports_every_flow_again(recording: Recording, readback: list[dict[str, Any]]) -> None:
    """`mitmdump -nr capture -s addons/cors.py` reports the same flows (same ids) as the live session."""
    assert sorted(line["flow_id"] for line in readback) == sorted(line["flow_id"] for line in recording.report)


def test_readback_reproduces_verdicts_and_links(recording: Recording, readback: list[dict[str, Any]]) -> None:
    """Read back, each flow gets the live verdict, reasons, preflight link (cached or not) and redirect link."""
    live = {line["flow_id"]: line for line in recording.report}
    for line in readback:
        before = live[line["flow_id"]]
        for key in (*LINK_KEYS, "preflight_cached", "unreadable_headers", "blocked_request"):
            assert line.get(key) == before.get(key), f"{key} of {before['method']} {before['url']}"
    # The links are really there (not None on both sides).
    by_id = {line["flow_id"]: line for line in readback}
    assert by_id[recording.line("put-cached")["flow_id"]]["preflight_id"] == recording.line("preflight")["flow_id"]
    assert (
        by_id[recording.line("redirect-final")["flow_id"]]["redirected_from"] == recording.line("redirect")["flow_id"]
    )


# --------------------------------------------------------------------------------------------------
# A HAR file, as exported from the browser's DevTools

T0 = datetime(2025, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)
API = "https://api.example.test/v1/items/7"


def har_entry(
    at: float,
    method: str,
    url: str,
    request_headers: list[tuple[str, str]],
    status: int,
    response_headers: list[tuple[str, str]],
    body: str = "",
) -> dict[str, Any]:
    return {
        "startedDateTime": (T0 + timedelta(seconds=at)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "time": 20.5,
        "request": {
            "method": method,
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": n, "value": v} for n, v in [("Host", "api.example.test"), *request_headers]],
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": status,
            "statusText": "",
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": n, "value": v} for n, v in response_headers],
            "cookies": [],
            "content": {"size": len(body), "mimeType": "application/json", "text": body},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(body),
        },
        "cache": {},
        "timings": {"send": 0.5, "wait": 19.5, "receive": 0.5},
    }


CORS = [("Origin", PAGE_ORIGIN), ("Sec-Fetch-Mode", "cors"), ("Sec-Fetch-Site", "cross-site")]
ALLOWED = [("Access-Control-Allow-Origin", PAGE_ORIGIN), ("Vary", "Origin"), ("Content-Type", "application/json")]
HAR_ENTRIES = [
    # (step name, entry)
    (
        "preflight",
        har_entry(
            0,
            "OPTIONS",
            API,
            [*CORS, ("Access-Control-Request-Method", "PUT"), ("Access-Control-Request-Headers", "content-type")],
            204,
            [
                ("Access-Control-Allow-Origin", PAGE_ORIGIN),
                ("Access-Control-Allow-Methods", "GET, PUT"),
                ("Access-Control-Allow-Headers", "Content-Type"),
                ("Access-Control-Max-Age", "600"),
            ],
        ),
    ),
    ("put", har_entry(0.1, "PUT", API, [*CORS, ("Content-Type", "application/json")], 200, ALLOWED, "{}")),
    # 30 s later: past the default 5 s, within Max-Age 600, so the browser used its preflight cache.
    ("put-cached", har_entry(30, "PUT", API, [*CORS, ("Content-Type", "application/json")], 200, ALLOWED, "{}")),
    ("blocked", har_entry(31, "GET", "https://api.example.test/v1/me", CORS, 200, [("Content-Type", "text/plain")])),
]


@pytest.fixture(scope="module")
def har_report(confdir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    work = tmp_path_factory.mktemp("har")
    har = work / "devtools.har"
    har.write_text(
        json.dumps(
            {
                "log": {
                    "version": "1.2",
                    "creator": {"name": "WebInspector", "version": "537.36"},
                    "pages": [],
                    "entries": [entry for _, entry in HAR_ENTRIES],
                }
            }
        ),
        encoding="utf-8",
    )
    lines, output = read_back(har, work, confdir, "har")
    assert len(lines) == len(HAR_ENTRIES), output
    return {name: line for (name, _), line in zip(HAR_ENTRIES, lines, strict=True)}


def test_har_readback_reports_each_entry(har_report: dict[str, dict[str, Any]]) -> None:
    """Every HAR entry with an Origin gets a report line, with its method, URL and startedDateTime."""
    for name, entry in HAR_ENTRIES:
        line = har_report[name]
        assert (line["method"], line["url"]) == (entry["request"]["method"], entry["request"]["url"])
        started = datetime.fromisoformat(entry["startedDateTime"].replace("Z", "+00:00")).timestamp()
        assert line["timestamp"] == pytest.approx(started)


def test_har_readback_links_preflight_and_cache(har_report: dict[str, dict[str, Any]]) -> None:
    """In a HAR, the PUT links to the OPTIONS before it, and the PUT 30 s later to the same preflight, cached."""
    preflight = har_report["preflight"]
    assert (preflight["kind"], preflight["verdict"]) == ("preflight", "allowed")
    assert (har_report["put"]["preflight_id"], har_report["put"]["preflight_cached"]) == (preflight["flow_id"], False)
    cached = har_report["put-cached"]
    assert (cached["preflight_id"], cached["preflight_cached"]) == (preflight["flow_id"], True)


def test_har_readback_verdicts(har_report: dict[str, dict[str, Any]]) -> None:
    """HAR entries are judged like live traffic: the GET without Allow-Origin is blocked."""
    assert har_report["put"]["verdict"] == "allowed"
    blocked = har_report["blocked"]
    assert (blocked["verdict"], blocked["reason"], blocked["firefox_reason"]) == (
        "blocked",
        "MissingAllowOriginHeader",
        "CORSMissingAllowOrigin2",
    )
    assert path_of(blocked) == "/v1/me"


# A HAR recorded by Chromium (Playwright's record_har_path, DevTools' "Save all as HAR") keeps a CORS-blocked
# fetch as status -1 with no response and only the provisional request headers: no Origin, no preflight.
PROVISIONAL = [("Referer", f"{PAGE_ORIGIN}/"), ("User-Agent", "Mozilla/5.0"), ("sec-ch-ua-mobile", "?0")]
BROWSER_HAR = [
    ("blocked-get", har_entry(0, "GET", "https://api.example.test/v1/me", PROVISIONAL, -1, [])),
    ("blocked-put", har_entry(1, "PUT", "https://api.example.test/v1/items/7", PROVISIONAL, 0, [])),
    ("allowed", har_entry(2, "GET", "https://api.example.test/v1/ok", [*CORS, *PROVISIONAL], 200, ALLOWED)),
    ("same-origin", har_entry(3, "GET", f"{PAGE_ORIGIN}/app.js", PROVISIONAL, -1, [])),
]


def test_har_from_a_browser_reports_its_blocked_requests(confdir: Path, tmp_path: Path) -> None:
    """A browser-recorded HAR's failed cross-origin requests are reported blocked (the origin from the Referer,
    the reason not on record), counted in the summary; a failed same-origin request is not called a CORS block."""
    har = tmp_path / "chromium.har"
    entries = [entry for _, entry in BROWSER_HAR]
    har.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "Playwright"}, "entries": entries}}))
    lines, output = read_back(har, tmp_path, confdir, "browser-har")
    by_path = {path_of(line): line for line in lines}
    assert set(by_path) == {"/v1/me", "/v1/items/7", "/v1/ok"}
    for path in ("/v1/me", "/v1/items/7"):
        line = by_path[path]
        assert (line["kind"], line["verdict"], line["reason"], line["origin"]) == (
            "actual",
            "blocked",
            None,
            PAGE_ORIGIN,
        )
    assert by_path["/v1/ok"]["verdict"] == "allowed"
    assert "2 blocked" in output


def test_suggestion_written_at_exit_of_a_read_back(recording: Recording, confdir: Path, tmp_path: Path) -> None:
    """`mitmdump -nr capture -s addons/cors.py --set cors_suggest=…` writes a rule file for the flows it read (#9)."""
    out = tmp_path / "suggested.yaml"
    read_back(recording.flows_path, tmp_path, confdir, "suggest", ["--set", f"cors_suggest={out}"])
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# mitmcors rule file")
    assert PAGE_ORIGIN in text
