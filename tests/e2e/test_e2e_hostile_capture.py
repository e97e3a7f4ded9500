"""Hostile flows saved in a capture and read back with `mitmdump -nr … -s addons/cors.py` (issue 8)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from mitmproxy import io

from tests import hostile
from tests.harness.mitmdump import read_back

pytestmark = pytest.mark.e2e

FLOWS = 300


def test_hostile_capture_reads_back_cleanly(tmp_path: Path, confdir: Path) -> None:
    """Every hostile flow with an Origin gets one strict-JSON report line; no internal error, no traceback, and no
    secret in the report or in the addon's log lines (mitmproxy's own flow lines are turned off: they are not the
    addon's to redact)."""
    rng = random.Random(8)
    flows = [hostile.random_flow(rng).build() for _ in range(FLOWS)]
    capture = tmp_path / "hostile.mitm"
    with capture.open("wb") as f:
        writer = io.FlowWriter(f)
        for fl in flows:
            writer.add(fl)
    with_origin = sum(hostile.has_origin(fl) for fl in flows)
    raw = tmp_path / "hostile.report.jsonl"
    _, output = read_back(capture, tmp_path, confdir, "hostile", ["--set", "flow_detail=0"])
    text = raw.read_text(encoding="utf-8")
    lines = [json.loads(x, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}")) for x in text.splitlines()]
    assert len(lines) == with_origin
    assert all(line["verdict"] in ("allowed", "blocked") for line in lines)
    for marker in ("internal error", "Traceback", "Addon error"):
        assert marker not in output
    assert "SECRET" not in text
    assert "SECRET" not in output
