"""Hostile input, as properties (issue 8): whatever arrives, no hook raises, every flow with an Origin is
annotated, every annotation and report line is strict JSON, and no secret is written anywhere."""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mitmcors.addon import CorsAddon
from mitmcors.evaluator import PlainHeaders, Request, Response, evaluate
from mitmcors.rulefile import compile_filter
from mitmcors.rules import RuleFileError, parse_rules
from tests import hostile

# Raw header lines: the tables' names and values, or arbitrary bytes.
header_line = st.one_of(
    st.tuples(st.sampled_from(hostile.NAMES), st.sampled_from(hostile.VALUES)),
    st.sampled_from(hostile.SECRET_LINES),
    st.tuples(st.sampled_from(hostile.NAMES), st.binary(max_size=40)),
)
hostile_flow = st.builds(
    hostile.HostileFlow,
    method=st.one_of(st.sampled_from(hostile.METHODS), st.binary(max_size=8)),
    origin=st.one_of(st.none(), st.sampled_from(hostile.ORIGINS), st.binary(max_size=40)),
    request_headers=st.lists(header_line, max_size=6).map(tuple),
    status=st.one_of(st.none(), st.sampled_from(hostile.STATUSES)),
    response_headers=st.lists(header_line, max_size=8).map(tuple),
    reason=st.sampled_from((b"OK", b"", b"O\x00K", b"\xff")),
    error=st.one_of(st.none(), st.sampled_from(hostile.ERRORS)),
    timestamp=st.sampled_from(hostile.TIMES),
    path=st.sampled_from(hostile.PATHS),
    live=st.booleans(),
    streamed=st.booleans(),
)


class Errors(logging.Handler):
    """Collects the addon's error records (an internal error in a hook is logged at ERROR)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flows=st.lists(hostile_flow, min_size=1, max_size=6))
def test_hostile_flows_are_always_judged_and_never_leak(flows: list[hostile.HostileFlow]) -> None:
    """A sequence of hostile flows (an interleaving: preflights, requests, errors) never makes a hook raise;
    each flow with an Origin gets a verdict; every annotation and report line is strict JSON without secrets."""
    errors = Errors()
    logging.getLogger("mitmcors").addHandler(errors)
    log = logging.getLogger("mitmcors")
    lines: list[str] = []
    messages = logging.Handler()
    messages.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    log.addHandler(messages)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "cors.jsonl"
            addon = CorsAddon()  # the hooks need no running master; options are set directly
            addon.output.open_report(str(report))
            built = [f.build() for f in flows]
            for f in built:
                hostile.run_hooks(addon, f)
            addon.done()
            report_lines = report.read_text(encoding="utf-8").splitlines()
    finally:
        log.removeHandler(errors)
        log.removeHandler(messages)
    assert not errors.records, [r.getMessage() for r in errors.records]
    judged = [f for f in built if hostile.has_origin(f)]
    for f in judged:
        meta = f.metadata.get("cors")
        assert meta is not None and meta["verdict"] in ("allowed", "blocked"), (f, meta)
        text = json.dumps(meta, allow_nan=False)
        assert "SECRET" not in text
        assert "SECRET" not in f.comment
    assert len(report_lines) == len(judged)
    for line in report_lines:
        parsed = json.loads(line, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
        assert parsed["timestamp"] is None or math.isfinite(parsed["timestamp"])
        assert "SECRET" not in line
    assert not [m for m in lines if "SECRET" in m]
    # One log line per record: nothing from the wire forges another line or floods the log.
    assert not [m for m in lines if "\n" in m or "\x00" in m or len(m) > 2000]


@settings(max_examples=300, deadline=None)
@given(
    request_lines=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=60)), max_size=8),
    response_lines=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=60)), max_size=8),
    method=st.text(max_size=8),
    status=st.integers(min_value=0, max_value=100_000),
)
def test_evaluator_never_raises(
    request_lines: list[tuple[str, str]], response_lines: list[tuple[str, str]], method: str, status: int
) -> None:
    """The evaluator judges any header lines, any method and any status without raising."""
    req = Request(
        method, "http", "api.localhost", 8000, "/x", PlainHeaders([("Origin", "http://a.test"), *request_lines])
    )
    v = evaluate(req, Response(status, PlainHeaders(response_lines)))
    assert v.outcome.verdict in ("allowed", "blocked")


_YAML_PIECES = [
    "rules:",
    "\n",
    "  - ",
    "name: a",
    "match:",
    "{",
    "}",
    "[",
    "]",
    ": ",
    "*",
    "&a ",
    "*a",
    "max_age: ",
    "9" * 30,
    "0x_",
    "yes",
    "set:",
    "X-A: ",
    '"\\r\\n"',
    "allow_origins: ",
    "'*'",
    "#",
    "\t",
    "\x00",
    "é",
]


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(st.text(max_size=200), st.lists(st.sampled_from(_YAML_PIECES), max_size=40).map("".join)))
def test_rule_reader_only_raises_rule_file_errors(text: str) -> None:
    """Any text is either a rule set or a RuleFileError whose every line is `file:line: ...`."""
    try:
        parse_rules(text, "rules.yaml", compile_filter)
    except RuleFileError as e:
        assert e.errors
        assert all(line.startswith("rules.yaml:") for line in str(e).splitlines())


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_rule_reader_refuses_any_bytes_cleanly(data: bytes) -> None:
    """Any bytes read from disk are a rule set or a RuleFileError, never another exception."""
    try:
        parse_rules(data, "rules.yaml", compile_filter)
    except RuleFileError as e:
        assert e.errors
