"""Reading the addon's ``cors_report`` JSON lines the way a user's tooling does, and how long to wait for them."""

from __future__ import annotations

import datetime
import importlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# How long the suites wait for a report line. It must exceed the addon's REPORT_HOLD (a passing preflight's line
# is held until the request it announced arrives, or that long) plus the interval of the tick that flushes held
# lines, with room for a loaded machine: tests/e2e/test_e2e_report.py asserts the relation against the addon.
REPORT_WAIT = 5.0

# Keys every report line carries: README's metadata["cors"] table plus what the report adds, with their types.
REPORT_KEYS: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "verdict": (str,),
    "reason": (str, type(None)),
    "firefox_reason": (str, type(None)),
    "message": (str,),
    "credentials": (str,),
    "if_credentials": (dict, type(None)),
    "preflight_id": (str, type(None)),
    "request_ids": (list,),
    "unreadable_headers": (list,),
    "warnings": (list,),
    "rule": (str, type(None)),
    "upstream": (dict, type(None)),
    "flow_id": (str,),
    "method": (str,),
    "url": (str,),
    "timestamp": (int, float),
}

# Where the addon keeps its report timing, (module, hold, flush interval): mitmcors.output, earlier mitmcors.addon.
_TIMING_HOMES = (
    ("mitmcors.output", "REPORT_HOLD", "FLUSH_INTERVAL"),
    ("mitmcors.addon", "REPORT_HOLD", "RELOAD_INTERVAL"),
)


def addon_report_timing() -> tuple[float, float]:
    """The addon's (REPORT_HOLD, flush interval) in seconds, from whichever of its modules defines them.

    Imports the addon (and so mitmproxy): call it from a test, never at import time of the harness.

    Raises:
        LookupError: no module of the addon defines them (they moved: add their new home to _TIMING_HOMES).
    """
    for module_name, hold_name, flush_name in _TIMING_HOMES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, hold_name) and hasattr(module, flush_name):
            return float(getattr(module, hold_name)), float(getattr(module, flush_name))
    raise LookupError(f"no report hold and flush interval in any of {[h[0] for h in _TIMING_HOMES]}")


def path_of(line: Mapping[str, Any]) -> str:
    """The URL path of a report line."""
    return urlsplit(str(line.get("url", ""))).path


def line_time(line: Mapping[str, Any]) -> float:
    """A report line's timestamp as seconds (number or ISO 8601 string); unknown sorts first."""
    value = line.get("timestamp")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return 0.0


class Report:
    """A ``cors_report`` file being written by a running mitmdump."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def summary_path(self) -> Path:
        """Where the addon writes the summary at exit."""
        return self.path.with_name(self.path.name + ".summary.json")

    def text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def lines(self, prefix: str = "") -> list[dict[str, Any]]:
        """Complete lines whose URL path starts with ``prefix``, in file order (a partial last line is skipped)."""
        out = []
        for raw in self.text().split("\n")[:-1]:
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError as e:
                raise AssertionError(f"cors_report line is not JSON: {raw!r}: {e}") from e
            if path_of(line).startswith(prefix):
                out.append(line)
        return out

    def wait_lines(self, prefix: str, count: int, timeout: float = REPORT_WAIT) -> list[dict[str, Any]]:
        """The lines under ``prefix``, once there are ``count`` of them or ``timeout`` has passed."""
        deadline = time.monotonic() + timeout
        lines = self.lines(prefix)
        while len(lines) < count and time.monotonic() < deadline:
            time.sleep(0.02)
            lines = self.lines(prefix)
        return lines

    def lines_for(self, path: str, count: int, timeout: float = REPORT_WAIT) -> list[dict[str, Any]]:
        """The lines of flows to exactly ``path``, asserting there are ``count`` of them (waiting for them)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.lines() if path_of(line) == path]
            if len(lines) >= count or time.monotonic() > deadline:
                assert len(lines) == count, f"expected {count} report lines for {path}, got {lines}"
                return lines
            time.sleep(0.02)
