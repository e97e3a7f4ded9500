"""The recorded browser corpora, ``tests/corpus/chromium.json`` and ``tests/corpus/firefox.json``: for every
browser-suite scenario, each flow as it crossed mitmdump (method, URL, request and response header lines, relative
timestamps) and what the browser did with it (Chromium: CDP ``corsError`` or none; Firefox: the reason key of its
console message or none; the kind the harness expects, which preflight covered it).

The browser suite records them (``CORS_CORPUS_UPDATE=1`` rewrites the files; otherwise the suite fails when a
browser's answers drift from its file); ``tests/test_corpus.py`` and ``tests/test_corpus_firefox.py`` replay them
through the addon without a browser.

Volatile values are scrubbed: the browser's version (kept once at the top), WebSocket keys, cookie values and
authorization credentials, dates, and loopback ports. Formatting is deterministic: scenarios and keys sorted, one
header line per line, timestamps in seconds rounded to the millisecond.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness import chromium, firefox
from tests.harness.browser import Result
from tests.harness.checks import Expectations

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "chromium.json"
FIREFOX_CORPUS = CORPUS.with_name("firefox.json")
UPDATE_VARIABLE = "CORS_CORPUS_UPDATE"
FORMAT = 1
NAMES = {"chromium": "Chromium", "firefox": "Firefox"}
REPLAYS = {"chromium": "tests/test_corpus.py", "firefox": "tests/test_corpus_firefox.py"}
# What each browser did with a scenario's report lines.
JUDGES: dict[str, Callable[[Any], Expectations]] = {
    "chromium": chromium.expectations,
    "firefox": firefox.expectations,
}


def about(browser: str) -> str:
    return (
        f"What {NAMES[browser]} did with each browser-suite scenario, recorded through mitmdump by tests/browser "
        f"({UPDATE_VARIABLE}=1 pytest -m browser tests/browser). Replayed through the addon by {REPLAYS[browser]}."
    )


_LOOPBACK_PORT = re.compile(r"\b(127\.0\.0\.1|localhost):\d+")
_VERSIONS = (  # Chromium's version in User-Agent and the brand versions of Sec-CH-UA; Firefox's in User-Agent
    (re.compile(r"\b(Chrome|HeadlessChrome|Chromium|Firefox)/[\d.]+"), r"\1/<version>"),
    (re.compile(r'\bv="[\d.]+"'), 'v="<version>"'),
    (re.compile(r"\brv:[\d.]+"), "rv:<version>"),
)
_SCRUBBED = {
    "sec-websocket-key": "<random>",
    "sec-websocket-accept": "<random>",
    "date": "<date>",
    "authorization": "<credentials>",
}


def updating() -> bool:
    """The suite rewrites the corpus instead of comparing with it."""
    return os.environ.get(UPDATE_VARIABLE, "") not in ("", "0")


def header_line(name: str, value: str) -> str:
    return f"{name}: {value}"


def split_line(line: str) -> tuple[str, str]:
    """A recorded ``Name: value`` line back into its name and value (values keep their own spaces)."""
    name, _, value = line.partition(": ")
    return name, value


def scrub(name: str, value: str) -> str:
    """The header value with what differs from run to run (or machine to machine) replaced by a placeholder."""
    low = name.lower()
    if low in _SCRUBBED:
        return _SCRUBBED[low]
    if low == "cookie":
        return "; ".join(f"{pair.split('=', 1)[0]}=<cookie>" for pair in value.split("; "))
    if low == "set-cookie":
        first, sep, attributes = value.partition(";")
        return f"{first.split('=', 1)[0]}=<cookie>{sep}{attributes}"
    for pattern, placeholder in _VERSIONS:
        value = pattern.sub(placeholder, value)
    return _LOOPBACK_PORT.sub(r"\1:<port>", value)


def _ms(value: float | None, start: float) -> float | None:
    return None if value is None else round((value - start) * 1000) / 1000


def entry(result: Result, browser: str = "chromium") -> dict[str, Any]:
    """The corpus entry of one scenario run: its flows in arrival order, each with the browser's outcome (under the
    browser's name). Firefox's entries also say whether the engines differ (the verdict then follows Chromium) and
    where the addon is known to disagree with Firefox (``xfail``)."""
    want = JUDGES[browser](result)
    flows = sorted(result.flows, key=lambda f: f["request_start"] or 0.0)
    start = flows[0]["request_start"] if flows else 0.0
    index = {f["flow_id"]: i for i, f in enumerate(flows)}
    by_flow: dict[str, dict[str, Any]] = {}
    for i, line in enumerate(result.lines):
        e = want.lines[i]
        preflight = None if e.preflight is None else index.get(result.lines[e.preflight]["flow_id"])
        by_flow[line["flow_id"]] = {
            "verdict": e.verdict,
            "reason": e.reason,
            "kind": e.kind,
            "preflight": preflight,
            "cached": e.cached,
        }
    recorded = []
    for f in flows:
        recorded.append(
            {
                "method": f["method"],
                "scheme": f["scheme"],
                "host": f["host"],
                "port": f["port"],
                "path": f["path"],
                "http_version": f["http_version"],
                "request": [header_line(k, scrub(k, v)) for k, v in f["request_headers"]],
                "status": f["status"],
                "response": None
                if f["response_headers"] is None
                else [header_line(k, scrub(k, v)) for k, v in f["response_headers"]],
                "times": [_ms(f[k], start) for k in ("request_start", "request_end", "response_start", "response_end")],
                "error": f["error"],
                browser: by_flow.get(f["flow_id"]),
            }
        )
    s = result.scenario
    out = {"credentials": s.credentials, "not_cors": s.not_cors, "flows": recorded}
    if browser == "firefox":
        out.update(engines_differ=s.engines_differ is not None, xfail=s.firefox_xfail)
    return out


def outcome(scenario: Mapping[str, Any], browser: str = "chromium") -> list[tuple[Any, ...]]:
    """What is compared between runs: per flow its request and the browser's answer, not the volatile bytes."""
    return [
        (f["method"], f["scheme"], f["host"], f["path"], json.dumps(f[browser], sort_keys=True))
        for f in scenario["flows"]
    ]


def load(path: Path = CORPUS, browser: str = "chromium") -> dict[str, Any]:
    """The corpus file (an empty corpus when there is none yet)."""
    if not path.exists():
        return {"about": about(browser), "format": FORMAT, browser: "", "scenarios": {}}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def dump(corpus: Mapping[str, Any]) -> str:
    """Deterministic text: keys sorted, one-space indent, one header line per line."""
    return json.dumps(corpus, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass
class CorpusSession:
    """Collects the scenarios a browser-suite session ran; at its end, compares them with the file or rewrites it."""

    version: str
    path: Path = CORPUS
    update: bool = field(default_factory=updating)
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)
    browser: str = "chromium"

    def add(self, scenario_id: str, result: Result) -> None:
        self.recorded[scenario_id] = entry(result, self.browser)

    def finish(self, known: Iterable[str]) -> list[str]:
        """Compare (or, when updating, merge and write); returns the drift found. ``known``: every scenario id the
        suite defines (entries for others are stale)."""
        corpus = load(self.path, self.browser)
        scenarios: dict[str, Any] = corpus["scenarios"]
        known = set(known)
        name = NAMES[self.browser]
        if self.update:
            merged = {k: v for k, v in scenarios.items() if k in known} | self.recorded
            corpus.update({"about": about(self.browser), "format": FORMAT, self.browser: self.version})
            corpus["scenarios"] = merged
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(dump(corpus), encoding="utf-8")
            return []
        problems = [f"{sid}: recorded, but the suite has no such scenario" for sid in sorted(set(scenarios) - known)]
        for sid, run in sorted(self.recorded.items()):
            if sid not in scenarios:
                problems.append(f"{sid}: not in the corpus")
            elif outcome(scenarios[sid], self.browser) != outcome(run, self.browser):
                problems.append(
                    f"{sid}: {name} now answers\n    {outcome(run, self.browser)}\n  the corpus says\n    "
                    + str(outcome(scenarios[sid], self.browser))
                )
        if problems:
            problems.append(
                f"{name} {self.version} (corpus: {corpus.get(self.browser)}). If {name}'s behaviour changed, "
                f"rerun with {UPDATE_VARIABLE}=1 and review the diff of {self.path.name}."
            )
        return problems
