"""What a user of `mitmdump -s addons/cors.py` sees in the terminal, and what never leaks: the recorded session
(see recording.py), stopped with SIGINT; plus a short session stopped with SIGTERM."""

from __future__ import annotations

import re
import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.recording import SECRETS, Recording
from tests.harness.backend import Answer, Backend
from tests.harness.client import cors_headers
from tests.harness.mitmdump import Mitmdump

pytestmark = pytest.mark.e2e

LOG_LINE = re.compile(r"CORS (BLOCKED|allowed) (\S+) (\S+) from (\S+)")
SUMMARY = re.compile(r"CORS summary: (\d+) cross-origin flows \((\d+) preflights\), (\d+) blocked(.*)")
CROSS_ORIGIN = ("preflight", "actual")


def log_lines(stdout: str) -> Counter[tuple[str, str, str, str]]:
    return Counter((m[1], m[2], m[3], m[4].rstrip(":")) for m in LOG_LINE.finditer(stdout))


def test_one_log_line_per_cross_origin_flow(recording: Recording) -> None:
    """Each preflight and cross-origin request gets exactly one "CORS BLOCKED ..." or "CORS allowed ..." line
    naming the request (preflight or method), its URL and the Origin."""
    expected = Counter(
        (
            "BLOCKED" if line["verdict"] == "blocked" else "allowed",
            "preflight" if line["kind"] == "preflight" else line["method"],
            line["url"],
            line["origin"],
        )
        for line in recording.report
        if line["kind"] in CROSS_ORIGIN
    )
    assert sum(expected.values()) >= 8, recording.report  # the recording really has cross-origin flows
    assert log_lines(recording.stdout) == expected


@pytest.mark.parametrize("step", ["same-origin", "navigation"])
def test_no_log_line_for_flows_cors_does_not_apply_to(recording: Recording, step: str) -> None:
    """A same-origin request and a form navigation carry an Origin but are not CORS: reported, never logged."""
    line = recording.line(step)
    assert line["kind"] in ("same-origin", "not-cors")
    assert line["verdict"] != "blocked"
    assert not [key for key in log_lines(recording.stdout) if key[2] == line["url"]]


def test_blocked_log_line_names_both_browsers_reasons(recording: Recording) -> None:
    """The BLOCKED line of the GET without Allow-Origin names Chromium's and Firefox's reasons."""
    url = recording.urls["simple-blocked"]
    (text,) = [t for t in recording.stdout.splitlines() if "CORS BLOCKED" in t and f" {url} " in t]
    assert "MissingAllowOriginHeader" in text
    assert "CORSMissingAllowOrigin2" in text


def test_summary_line_at_exit_counts_the_session(recording: Recording) -> None:
    """Stopping mitmdump with SIGINT prints one "CORS summary" line whose counts match the report."""
    assert recording.exit_code == 0, recording.stdout + recording.stderr
    summaries = SUMMARY.findall(recording.stdout)
    assert len(summaries) == 1, recording.stdout[-3000:]
    cross, preflights, blocked, rest = summaries[0]
    cors = [line for line in recording.report if line["kind"] in CROSS_ORIGIN]
    blocked_lines = [line for line in cors if line["verdict"] == "blocked"]
    assert int(cross) == len(cors)
    assert int(preflights) == sum(line["kind"] == "preflight" for line in cors)
    assert int(blocked) == len(blocked_lines) > 0
    for reason, n in Counter(line["reason"] for line in blocked_lines).items():
        assert f"{reason} x{n}" in rest


def test_summary_line_after_sigterm(backend: Backend, confdir: Path, tmp_path: Path) -> None:
    """SIGTERM (how service managers and CI stop a proxy) also ends with the summary line."""
    path = backend.route("/session/sigterm", Answer(200))
    proxy = Mitmdump(tmp_path, name="sigterm", confdir=confdir).start()
    try:
        proxy.send("GET", backend.a + path, cors_headers())
    finally:
        proxy.stop(signal.SIGTERM)
    (line,) = proxy.report.lines()
    assert line["reason"] == "MissingAllowOriginHeader"
    assert SUMMARY.findall(proxy.stdout()) == [("1", "0", "1", ": MissingAllowOriginHeader x1")]


def test_secrets_reached_the_backend(recording: Recording, backend: Backend) -> None:
    """The secret-carrying requests really were on the wire (so the next test is not vacuous)."""
    seen = backend.requests_to("/rec/secret")
    wire = repr(seen)
    assert [s.method for s in seen] == ["OPTIONS", "GET"]
    for secret in ("SECRET1", "SECRET2", "SECRET3"):
        assert secret in wire
    assert recording.line("secret-get")["reason"] == "RedirectContainsCredentials"
    assert recording.line("secret-get")["credentials"] == "include"


@pytest.mark.parametrize("secret", sorted(SECRETS))
@pytest.mark.parametrize("where", ["report", "summary file", "stdout", "stderr"])
def test_secrets_never_written(recording: Recording, secret: str, where: str) -> None:
    """No cookie, bearer token, access_token value or redirect password in the report, the summary or the log."""
    if where == "report":
        text = recording.report_path.read_text(encoding="utf-8")
        assert recording.line("secret-get")  # the secret flows are in the report
    elif where == "summary file":
        assert recording.summary_path.exists(), "the addon wrote no summary file beside the report"
        text = recording.summary_path.read_text(encoding="utf-8")
    elif where == "stdout":
        text = recording.stdout
        assert "/rec/secret" in text  # the secret flows were logged
    else:
        text = recording.stderr
    assert secret not in text, f"{SECRETS[secret]} leaked into the {where}"
