"""HARs recorded from real Chromium and Firefox runs (issue 10): read back with
`mitmdump -n -r <har> -s addons/cors.py --set cors_report=…`, they give the same blocked count as the live run
they recorded, every request the live run blocked is reported blocked, and nothing it blocked is called allowed.

The HARs and the live runs' summaries are data: `tests/corpus/har/{chromium,firefox}.har` and `*.live.json`,
written by `python -m tests.corpus.har.record` (see its docstring for the page and how each browser wrote its
HAR). No browser is needed here.

The comparison is per URL path: Chromium's HAR has no preflight entries (a PUT whose preflight failed is there as
the failed PUT, not as the OPTIONS the live run blocked), and where a HAR keeps a failed request without its
response, the reason is not on record (null); where the read-back gives a reason, it is one the live run gave for
that path.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness.mitmdump import REPO, read_back
from tests.harness.report import Report, path_of

pytestmark = pytest.mark.e2e

CORPUS = REPO / "tests" / "corpus" / "har"
BROWSERS = [pytest.param("chromium", id="chromium"), pytest.param("firefox", id="firefox")]


@dataclass(frozen=True)
class ReadBack:
    browser: str
    live: dict[str, Any]
    """`<browser>.live.json`: the live run's blocked count and its report lines (method, path, verdict, reason)."""
    lines: list[dict[str, Any]]
    """The read-back's report lines."""
    summary: dict[str, Any]
    """The read-back's exit summary (`.summary.json`)."""
    output: str

    @property
    def live_blocked(self) -> list[dict[str, Any]]:
        return [r for r in self.live["requests"] if r["verdict"] == "blocked"]

    @property
    def blocked(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["verdict"] == "blocked"]

    @property
    def counted_blocked(self) -> list[dict[str, Any]]:
        """Blocked lines but the requests a blocked preflight stopped (the same failure, counted on the preflight)."""
        return [line for line in self.blocked if not line.get("stopped_by_preflight")]

    def evidence(self) -> str:
        live = [f"  {r['method']} {r['path']}: {r['verdict']} {r['reason']}" for r in self.live["requests"]]
        back = [f"  {ln['method']} {path_of(ln)}: {ln['verdict']} {ln['reason']}" for ln in self.lines]
        return "\n".join([f"{self.browser} live run:", *live, "read back from its HAR:", *back, self.output])


@pytest.fixture(scope="module", params=BROWSERS)
def har(request: pytest.FixtureRequest, confdir: Path, tmp_path_factory: pytest.TempPathFactory) -> ReadBack:
    browser: str = request.param
    source = CORPUS / f"{browser}.har"
    live = json.loads((CORPUS / f"{browser}.live.json").read_text(encoding="utf-8"))
    work = tmp_path_factory.mktemp(f"har-{browser}")
    lines, output = read_back(source, work, confdir, browser)
    summary = json.loads(Report(work / f"{browser}.report.jsonl").summary_path.read_text(encoding="utf-8"))
    return ReadBack(browser, live, lines, summary, output)


def test_the_recorded_run_blocked_something(har: ReadBack) -> None:
    """The corpus is what the issue is about: a live run with blocked requests (and allowed ones) in a browser HAR."""
    verdicts = Counter(r["verdict"] for r in har.live["requests"])
    assert verdicts["blocked"] == har.live["blocked"] > 0, har.live
    assert verdicts["allowed"] > 0, har.live
    creator = json.loads((CORPUS / f"{har.browser}.har").read_text(encoding="utf-8"))["log"]["creator"]["name"]
    assert creator == {"chromium": "Playwright", "firefox": "Firefox"}[har.browser]


def test_blocked_count_equals_the_live_run(har: ReadBack) -> None:
    """The read-back's exit summary counts as many blocked requests as the live run's did."""
    assert (har.summary["blocked"], len(har.counted_blocked)) == (har.live["blocked"],) * 2, har.evidence()
    assert f"{har.live['blocked']} blocked" in har.output, har.evidence()


def test_every_live_blocked_path_is_reported_blocked(har: ReadBack) -> None:
    """Each path the live run blocked has a blocked line in the read-back, with the live reason or none."""
    for live in har.live_blocked:
        back = [ln for ln in har.blocked if path_of(ln) == live["path"]]
        assert back, f"{live['method']} {live['path']} was blocked live, not in the HAR's read-back:\n{har.evidence()}"


def test_nothing_the_live_run_blocked_is_called_allowed(har: ReadBack) -> None:
    blocked_paths = {r["path"] for r in har.live_blocked}
    allowed = [ln for ln in har.lines if path_of(ln) in blocked_paths and ln["verdict"] != "blocked"]
    assert not allowed, har.evidence()


def test_nothing_else_is_blocked(har: ReadBack) -> None:
    """A blocked read-back line is about a path the live run blocked."""
    blocked_paths = {r["path"] for r in har.live_blocked}
    extra = [ln for ln in har.blocked if path_of(ln) not in blocked_paths]
    assert not extra, har.evidence()


def test_reasons_agree_where_the_har_carries_them(har: ReadBack) -> None:
    """A reason the read-back gives (it may have none: the HAR kept no response) is one the live run gave for that
    path."""
    live_reasons: dict[str, set[str | None]] = {}
    for r in har.live_blocked:
        live_reasons.setdefault(r["path"], set()).add(r["reason"])
    wrong = [ln for ln in har.blocked if ln["reason"] not in live_reasons.get(path_of(ln), set()) | {None}]
    assert not wrong, har.evidence()


@pytest.mark.parametrize("browser", [pytest.param("firefox", id="firefox")])
def test_stopped_request_links_its_blocked_preflight(browser: str, confdir: Path, tmp_path: Path) -> None:
    """Firefox's HAR keeps the PUT its failed preflight stopped (status 0, with its Origin), written *before* the
    OPTIONS: read back, the PUT is blocked for the preflight's reason, links that preflight, and is counted once,
    on the preflight (`stopped_by_preflight`)."""
    lines, output = read_back(CORPUS / f"{browser}.har", tmp_path, confdir, browser)
    stopped = [ln for ln in lines if ln.get("stopped_by_preflight")]
    assert stopped, output
    by_id = {ln["flow_id"]: ln for ln in lines}
    for line in stopped:
        preflight = by_id[line["preflight_id"]]
        assert (preflight["kind"], preflight["verdict"]) == ("preflight", "blocked")
        assert path_of(preflight) == path_of(line)
        assert (line["verdict"], line["reason"]) == ("blocked", preflight["reason"])
