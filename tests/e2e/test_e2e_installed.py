"""The installed package runs mitmproxy's tools with the addon, without a checkout's addons/cors.py (#10)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mitmproxy import io

from tests.harness.mitmdump import REPO
from tests.hostile import HostileFlow

pytestmark = pytest.mark.e2e


def test_python_m_mitmcors_runs_mitmdump_with_the_addon(tmp_path: Path, confdir: Path) -> None:
    """`python -m mitmcors mitmdump -nr capture …` judges the capture: the script comes from the package."""
    capture = tmp_path / "one.mitm"
    blocked = HostileFlow(
        b"GET",
        b"http://app.localhost:5173",
        ((b"Sec-Fetch-Mode", b"cors"),),
        200,
        (),
        b"OK",
        None,
        1.0,
        b"/x",
        True,
        False,
    )
    with capture.open("wb") as f:
        io.FlowWriter(f).add(blocked.build())
    report = tmp_path / "report.jsonl"
    args = [sys.executable, "-m", "mitmcors", "mitmdump", "-n", "-r", str(capture)]
    args += ["--set", f"confdir={confdir}", "--set", f"cors_report={report}"]
    done = subprocess.run(args, capture_output=True, cwd=tmp_path, timeout=60, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = [json.loads(x) for x in report.read_text().splitlines()]
    assert (line["verdict"], line["reason"]) == ("blocked", "MissingAllowOriginHeader")


def test_script_path_is_printed() -> None:
    """`python -m mitmcors --script` prints the addon script inside the package, for mitmproxy's -s."""
    out = subprocess.run([sys.executable, "-m", "mitmcors", "--script"], capture_output=True, text=True, cwd=REPO)
    path = Path(out.stdout.strip())
    assert path.name == "script.py" and path.exists()
    assert "addons = [CorsAddon()]" in path.read_text()
