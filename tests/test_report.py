"""The cors_report file: strict JSON lines, appends that never glue lines together, a deleted file re-created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mitmcors.report import Report


@pytest.mark.parametrize("timestamp", [float("nan"), float("inf"), float("-inf")])
def test_timestamp_that_is_not_a_number_is_null(tmp_path: Path, timestamp: float) -> None:
    """A NaN or infinite timestamp is written as null, so strict JSON parsers read every line."""
    report = Report(str(tmp_path / "r.jsonl"))
    report.write({"flow_id": "1", "timestamp": timestamp})
    report.close()
    text = (tmp_path / "r.jsonl").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}")) == {
        "flow_id": "1",
        "timestamp": None,
    }


def test_append_after_a_cut_off_line_starts_a_new_line(tmp_path: Path) -> None:
    """`+path` after a run that died mid-line does not glue the first new line onto the broken one."""
    path = tmp_path / "r.jsonl"
    path.write_text('{"flow_id":"old"}\n{"flow_id":"cut')
    report = Report(f"+{path}")
    report.write({"flow_id": "new"})
    report.close()
    assert path.read_text().splitlines()[-1] == '{"flow_id":"new"}'


def test_deleted_report_file_is_created_again(tmp_path: Path) -> None:
    """A report file removed while the proxy runs is re-created at the next check, and lines keep coming."""
    path = tmp_path / "r.jsonl"
    report = Report(str(path))
    report.write({"flow_id": "1"})
    path.unlink()
    assert report.check() is True
    report.write({"flow_id": "2"})
    report.close()
    assert [json.loads(x)["flow_id"] for x in path.read_text().splitlines()] == ["2"]


def test_untouched_report_file_is_kept(tmp_path: Path) -> None:
    """The periodic check does nothing while the file is in place."""
    report = Report(str(tmp_path / "r.jsonl"))
    assert report.check() is False
    report.close()
