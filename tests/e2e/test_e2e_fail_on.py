"""`cors_fail_on`: a pipeline fails when the flows it proxied were blocked (or blocked if credentialed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mitmproxy import io

from tests.harness.mitmdump import ADDON, REPO, mitmdump_args
from tests.hostile import HostileFlow

pytestmark = pytest.mark.e2e

APP = b"http://app.localhost:5173"
CORS = ((b"Sec-Fetch-Mode", b"cors"),)


def flow(*response_headers: tuple[bytes, bytes]) -> HostileFlow:
    return HostileFlow(b"GET", APP, CORS, 200, response_headers, b"OK", None, 1000.0, b"/v1/x", True, False)


CAPTURES = {
    "blocked": [flow(), flow((b"Access-Control-Allow-Origin", APP))],
    "ambiguous": [flow((b"Access-Control-Allow-Origin", b"*"))],
    "clean": [flow((b"Access-Control-Allow-Origin", APP), (b"Access-Control-Allow-Credentials", b"true"))],
}


@pytest.mark.parametrize(
    ("capture", "fail_on", "status"),
    [
        pytest.param("blocked", "blocked", 1, id="a blocked flow fails fail_on=blocked"),
        pytest.param("blocked", "", 0, id="off by default"),
        pytest.param("ambiguous", "blocked", 0, id="blocked only if credentialed: passes fail_on=blocked"),
        pytest.param("ambiguous", "ambiguous", 1, id="...and fails fail_on=ambiguous"),
        pytest.param("clean", "ambiguous", 0, id="nothing to complain about"),
    ],
)
def test_exit_status(tmp_path: Path, confdir: Path, capture: str, fail_on: str, status: int) -> None:
    """`mitmdump -nr capture -s addons/cors.py --set cors_fail_on=…` exits 1 exactly when flows fail the run."""
    path = tmp_path / f"{capture}.mitm"
    with path.open("wb") as f:
        writer = io.FlowWriter(f)
        for hostile in CAPTURES[capture]:
            writer.add(hostile.build())
    extra = ["--set", f"cors_fail_on={fail_on}"] if fail_on else []
    args = mitmdump_args(tmp_path, confdir, (ADDON,), ["-n", "-r", str(path), *extra])
    done = subprocess.run(args, capture_output=True, cwd=REPO, timeout=60, stdin=subprocess.DEVNULL, check=False)
    output = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
    assert done.returncode == status, output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("option", "named"),
    [
        pytest.param("cors_log=bogus", b"cors_log must be one of", id="a choice mitmproxy does not check for --set"),
        pytest.param("cors_report=/nonexistent/dir/r.jsonl", b"create its directory", id="report in a missing dir"),
    ],
)
def test_bad_option_is_a_clean_startup_error(tmp_path: Path, confdir: Path, option: str, named: bytes) -> None:
    """A bad cors_* option stops mitmdump at startup with one line that says what to do, not a traceback (#10)."""
    args = mitmdump_args(tmp_path, confdir, (ADDON,), ["-n", "--set", option])
    done = subprocess.run(args, capture_output=True, cwd=REPO, timeout=60, stdin=subprocess.DEVNULL, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert named in output
    assert b"Traceback" not in output
