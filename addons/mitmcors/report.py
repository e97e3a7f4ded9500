"""The `cors_report` file: one JSON line per judged flow, and counts for the summary at exit."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any


class Report:
    """Appends JSON lines to a file; `+path` appends to an existing report, like mitmproxy's save_stream_file."""

    def __init__(self, spec: str) -> None:
        append = spec.startswith("+")
        self.path = Path(os.path.expanduser(spec[1:] if append else spec))
        self._file: IO[str] | None = self.path.open("a" if append else "w", encoding="utf-8", errors="replace")

    def write(self, line: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Summary:
    """Counts of what was judged, for the log (and a JSON file beside the report) when the proxy stops."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.blocked: Counter[str] = Counter()
        self.rewritten = 0

    def add(self, annotation: Mapping[str, Any]) -> None:
        self.kinds[annotation["kind"]] += 1
        if annotation["verdict"] == "blocked":
            self.blocked[annotation["reason"] or annotation["firefox_reason"] or "no response"] += 1
        if annotation.get("rule"):
            self.rewritten += 1

    @property
    def cross_origin(self) -> int:
        return self.kinds["preflight"] + self.kinds["actual"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "flows": sum(self.kinds.values()),
            "cross_origin": self.cross_origin,
            "by_kind": dict(self.kinds),
            "blocked": sum(self.blocked.values()),
            "blocked_by_reason": dict(self.blocked.most_common()),
            "rewritten": self.rewritten,
        }

    def line(self) -> str:
        d = self.as_dict()
        text = (
            f"CORS summary: {d['cross_origin']} cross-origin flows ({self.kinds['preflight']} preflights), "
            f"{d['blocked']} blocked"
        )
        if self.blocked:
            text += ": " + ", ".join(f"{reason} x{n}" for reason, n in self.blocked.most_common())
        if self.rewritten:
            text += f"; {self.rewritten} rewritten by rules"
        return text
