"""The `cors_report` file: one JSON line per judged flow, and counts for the summary at exit."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any


class Report:
    """Appends JSON lines to a file; `+path` appends to an existing report, like mitmproxy's save_stream_file.

    Every line is strict JSON (no NaN or Infinity: a timestamp that is not a finite number is written as
    null), appended lines never glue onto a cut-off last line, and a report file deleted while the proxy runs
    is created again (`check`, called periodically), with a warning.
    """

    def __init__(self, spec: str) -> None:
        append = spec.startswith("+")
        self.path = Path(os.path.expanduser(spec[1:] if append else spec))
        self._file: IO[str] | None = None
        self._identity: tuple[int, int] | None = None
        self._open("a" if append else "w")

    def _open(self, mode: str) -> None:
        file = self.path.open(mode, encoding="utf-8", errors="replace")
        if mode == "a" and file.tell() > 0:
            with self.path.open("rb") as existing:
                existing.seek(-1, os.SEEK_END)
                if existing.read(1) != b"\n":  # the last run was cut off mid-line: start a fresh line
                    file.write("\n")
        self._file = file
        st = os.fstat(file.fileno())
        self._identity = (st.st_dev, st.st_ino)

    def write(self, line: dict[str, Any]) -> None:
        if self._file is None:
            return
        timestamp = line.get("timestamp")
        if isinstance(timestamp, float) and not math.isfinite(timestamp):
            line = {**line, "timestamp": None}
        self._file.write(json.dumps(line, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n")
        self._file.flush()

    def check(self) -> bool:
        """Re-create the report if its file was deleted or replaced; True when that happened."""
        if self._file is None:
            return False
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._identity:
                return False
        except OSError:
            pass
        self._file.close()
        self._open("a")
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Summary:
    """Counts of what was judged, for the log (and a JSON file beside the report) when the proxy stops."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.blocked: Counter[str] = Counter()
        self.credentials_dependent: Counter[str] = Counter()  # by the reason under `include`
        self.rewritten = 0
        self.findings: dict[str, int] = {}  # finding id -> how many server+route pairs show it

    def add(self, annotation: Mapping[str, Any], sign: int = 1) -> None:
        """Count a judged flow (`sign=-1`: take back an earlier count of it)."""
        self.kinds[annotation["kind"]] += sign
        if annotation["verdict"] == "blocked":
            if not annotation.get("stopped_by_preflight"):  # the same failure as its preflight: counted there
                self.blocked[annotation["reason"] or annotation["firefox_reason"] or "no CORS reason"] += sign
        elif annotation.get("credentials_dependent"):
            alternative = annotation.get("if_credentials") or {}
            self.credentials_dependent[alternative.get("reason") or alternative.get("firefox_reason") or "?"] += sign
        if annotation.get("rule"):
            self.rewritten += sign
        if sign < 0:
            for counter in (self.kinds, self.blocked, self.credentials_dependent):
                for key in [k for k, n in counter.items() if n <= 0]:
                    del counter[key]

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
            "credentials_dependent": sum(self.credentials_dependent.values()),
            "credentials_dependent_by_reason": dict(self.credentials_dependent.most_common()),
            "rewritten": self.rewritten,
            "findings": dict(self.findings),
        }

    def line(self) -> str:
        d = self.as_dict()
        text = (
            f"CORS summary: {d['cross_origin']} cross-origin flows ({self.kinds['preflight']} preflights), "
            f"{d['blocked']} blocked"
        )
        if self.blocked:
            text += ": " + ", ".join(f"{reason} x{n}" for reason, n in self.blocked.most_common())
        if self.credentials_dependent:
            reasons = ", ".join(f"{reason} x{n}" for reason, n in self.credentials_dependent.most_common())
            text += f"; {d['credentials_dependent']} allowed only without credentials ({reasons})"
        if self.rewritten:
            text += f"; {self.rewritten} rewritten by rules"
        if self.findings:
            text += "; security findings: " + ", ".join(f"{id} x{n}" for id, n in sorted(self.findings.items()))
        return text
