"""The recorded browser corpus, ``tests/corpus/chromium.json``: for every browser-suite scenario, each flow as it
crossed mitmdump (method, URL, request and response header lines, relative timestamps) and what Chromium did with
it (CDP ``corsError`` or none, the kind the harness expects, which preflight covered it).

The browser suite records it (``CORS_CORPUS_UPDATE=1`` rewrites the file; otherwise the suite fails when Chromium's
answers drift from it); ``tests/test_corpus.py`` replays it through the addon without a browser.

Volatile values are scrubbed: Chromium's version (kept once at the top), WebSocket keys, cookie values and
authorization credentials, dates, and loopback ports. Formatting is deterministic: scenarios and keys sorted, one
header line per line, timestamps in seconds rounded to the millisecond.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.browser import Result
from tests.harness.chromium import expectations

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "chromium.json"
UPDATE_VARIABLE = "CORS_CORPUS_UPDATE"
FORMAT = 1
ABOUT = (
    "What Chromium did with each browser-suite scenario, recorded through mitmdump by tests/browser "
    f"({UPDATE_VARIABLE}=1 pytest -m browser tests/browser). Replayed through the addon by tests/test_corpus.py."
)

_LOOPBACK_PORT = re.compile(r"\b(127\.0\.0\.1|localhost):\d+")
_VERSIONS = (  # Chromium's version in User-Agent, and the brand versions of Sec-CH-UA
    (re.compile(r"\b(Chrome|HeadlessChrome|Chromium)/[\d.]+"), r"\1/<version>"),
    (re.compile(r'\bv="[\d.]+"'), 'v="<version>"'),
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


def entry(result: Result) -> dict[str, Any]:
    """The corpus entry of one scenario run: its flows in arrival order, each with Chromium's outcome."""
    want = expectations(result)
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
                "chromium": by_flow.get(f["flow_id"]),
            }
        )
    return {"credentials": result.scenario.credentials, "not_cors": result.scenario.not_cors, "flows": recorded}


def outcome(scenario: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """What is compared between runs: per flow its request and Chromium's answer, not the volatile bytes."""
    return [
        (f["method"], f["scheme"], f["host"], f["path"], json.dumps(f["chromium"], sort_keys=True))
        for f in scenario["flows"]
    ]


def load(path: Path = CORPUS) -> dict[str, Any]:
    """The corpus file (an empty corpus when there is none yet)."""
    if not path.exists():
        return {"about": ABOUT, "format": FORMAT, "chromium": "", "scenarios": {}}
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

    def add(self, scenario_id: str, result: Result) -> None:
        self.recorded[scenario_id] = entry(result)

    def finish(self, known: Iterable[str]) -> list[str]:
        """Compare (or, when updating, merge and write); returns the drift found. ``known``: every scenario id the
        suite defines (entries for others are stale)."""
        corpus = load(self.path)
        scenarios: dict[str, Any] = corpus["scenarios"]
        known = set(known)
        if self.update:
            merged = {k: v for k, v in scenarios.items() if k in known} | self.recorded
            corpus.update(about=ABOUT, format=FORMAT, chromium=self.version, scenarios=merged)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(dump(corpus), encoding="utf-8")
            return []
        problems = [f"{sid}: recorded, but the suite has no such scenario" for sid in sorted(set(scenarios) - known)]
        for sid, run in sorted(self.recorded.items()):
            if sid not in scenarios:
                problems.append(f"{sid}: not in the corpus")
            elif outcome(scenarios[sid]) != outcome(run):
                problems.append(
                    f"{sid}: Chromium now answers\n    {outcome(run)}\n  the corpus says\n    "
                    + str(outcome(scenarios[sid]))
                )
        if problems:
            problems.append(
                f"Chromium {self.version} (corpus: {corpus.get('chromium')}). If Chromium's behaviour changed, "
                f"rerun with {UPDATE_VARIABLE}=1 and review the diff of {self.path.name}."
            )
        return problems
