"""Reloading a rule file beside the event loop (`mitmcors.rulereload`): read in a child process, installed on the
loop a few milliseconds at a time, with the same rules, errors and matches as reading it in-process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import pickle
import subprocess
import sys
import weakref
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mitmcors import rulereload
from mitmcors.rulefile import compile_filter, parse_file
from mitmcors.rules import RuleFileError, RuleSet, parse_rules
from mitmcors.rules.model import Filter, Regex

T = TypeVar("T")

RULES = """\
rules:
  - name: exact host
    match: {host: api.localhost}
    allow_origins: [http://localhost:5173]
    allow_methods: [GET, PUT]
  - name: glob host, path and origins
    match:
      host: ["*.svc.test", "api-?.test"]
      path: /v1/*
      origin: ["http://localhost:*", "https://*.app.test"]
    allow_origins: ["https://*.app.test"]
    allow_credentials: true
  - name: filtered
    match: {host: api.localhost, filter: "~m PUT | ~m PATCH"}
    preflight: answer
    max_age: 600
  - name: filtered too
    match: {host: other.localhost, filter: "~m PUT | ~m PATCH"}
    set: {X-Debug: "1"}
  - name: everything else
    strip: [x-powered-by]
"""

# host, path, origin: which rule `RuleSet.match` picks (without a flow, filters do not match).
MATCHES = [
    pytest.param("api.localhost", "/x", "http://localhost:5173", id="exact host"),
    pytest.param("a.b.svc.test", "/v1/items?q=1", "https://x.app.test", id="suffix glob, path, origin pattern"),
    pytest.param("api-7.test", "/v1/", "http://localhost:8080", id="other glob, any port"),
    pytest.param("api-7.test", "/v2/", "http://localhost:8080", id="path not matched"),
    pytest.param("nowhere.test", "/", "", id="only the catch-all"),
]


def run(coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """asyncio.run in a thread of its own (the session's Playwright may run an event loop in this one)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine())).result()


@pytest.fixture
def rules_path(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


@pytest.fixture
def no_thread_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading in this process fails the test: what comes back must have come from the child."""

    def forbidden(path: str) -> Any:
        raise AssertionError("read in a thread, not in a child process")

    monkeypatch.setattr(rulereload, "_read_in_a_thread", forbidden)


@pytest.mark.usefixtures("no_thread_fallback")
def test_the_child_reads_the_rules_the_process_would(rules_path: Path) -> None:
    reloaded = run(lambda: rulereload.read_beside_the_loop(str(rules_path)))
    assert isinstance(reloaded, RuleSet)
    assert reloaded == parse_file(str(rules_path))


@pytest.mark.usefixtures("no_thread_fallback")
@pytest.mark.parametrize(("host", "path", "origin"), MATCHES)
def test_rules_from_the_child_match_as_the_processs_own(rules_path: Path, host: str, path: str, origin: str) -> None:
    local = parse_file(str(rules_path))
    reloaded = run(lambda: rulereload.read_beside_the_loop(str(rules_path)))
    assert isinstance(local, RuleSet) and isinstance(reloaded, RuleSet)
    expected = local.match(host, path, origin)
    found = reloaded.match(host, path, origin)
    assert (found.name if found else None) == (expected.name if expected else None)


@pytest.mark.usefixtures("no_thread_fallback")
def test_the_child_reads_the_file_as_it_was_when_the_reload_began(
    rules_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child starts a few hundred milliseconds after the settle check; by then the editor may be writing the
    next edit. What it validates is the file as the check saw it (found by benchmark 7, the soak)."""
    real_run = subprocess.run

    def next_edit_half_written_then_run(*args: Any, **kwargs: Any) -> Any:
        rules_path.write_text("rules:\n  - name: half\n")
        return real_run(*args, **kwargs)

    monkeypatch.setattr(subprocess, "run", next_edit_half_written_then_run)
    reloaded = run(lambda: rulereload.read_beside_the_loop(str(rules_path)))
    assert isinstance(reloaded, RuleSet)
    assert [r.name for r in reloaded.rules] == [r.name for r in parse_rules(RULES, "r.yaml", compile_filter).rules]


@pytest.mark.usefixtures("no_thread_fallback")
def test_a_broken_file_comes_back_as_the_same_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("rules:\n  - name: x\n    preflight: sometimes\n")
    error = run(lambda: rulereload.read_beside_the_loop(str(path)))
    assert isinstance(error, RuleFileError)
    assert str(error) == str(parse_file(str(path)))
    assert f"{path}:3:" in str(error)


@pytest.mark.usefixtures("no_thread_fallback")
def test_a_missing_file_comes_back_as_os_error(tmp_path: Path) -> None:
    error = run(lambda: rulereload.read_beside_the_loop(str(tmp_path / "gone.yaml")))
    assert isinstance(error, FileNotFoundError)


@pytest.mark.parametrize(
    "break_the_child",
    [
        pytest.param(lambda mp: mp.setattr(sys, "executable", "/bin/false"), id="child fails"),
        pytest.param(lambda mp: mp.setattr(sys, "executable", "/nonexistent/python"), id="child cannot start"),
        pytest.param(lambda mp: mp.setattr(sys, "frozen", True, raising=False), id="frozen binary"),
        pytest.param(
            lambda mp: mp.setattr(rulereload, "_CHILD_CODE", "print('hello from sitecustomize')"),
            id="child answers garbage",
        ),
    ],
)
def test_without_a_child_the_file_is_read_in_a_thread(
    rules_path: Path, monkeypatch: pytest.MonkeyPatch, break_the_child: Callable[[pytest.MonkeyPatch], None]
) -> None:
    break_the_child(monkeypatch)
    interval, enabled = sys.getswitchinterval(), gc.isenabled()
    reloaded = run(lambda: rulereload.read_beside_the_loop(str(rules_path)))
    assert reloaded == parse_file(str(rules_path))
    # The thread shortened the GIL's switch interval and paused the collector while it read; both are back.
    assert (sys.getswitchinterval(), gc.isenabled()) == (interval, enabled)


def test_a_crashing_child_is_logged_without_its_message(
    rules_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The last line of a child's traceback names the exception; its message could quote the file's values."""
    caplog.set_level(logging.WARNING, logger="mitmcors")
    monkeypatch.setattr(rulereload, "_CHILD_CODE", "raise RuntimeError('Bearer s3cr3t-token')")
    reloaded = run(lambda: rulereload.read_beside_the_loop(str(rules_path)))
    assert isinstance(reloaded, RuleSet)  # read in a thread instead
    assert "(RuntimeError)" in caplog.text
    assert "s3cr3t" not in caplog.text


def test_a_failing_child_is_logged(
    rules_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mitmcors")
    monkeypatch.setattr(sys, "executable", "/bin/false")
    run(lambda: rulereload.read_beside_the_loop(str(rules_path)))
    assert "reading it in a thread instead" in caplog.text


def test_unpickled_regexes_compile_at_first_use() -> None:
    original = Regex.compile(r"(?:api-.\.test)\Z", 2)
    copy = pickle.loads(pickle.dumps(original))
    assert copy == original and not copy.compiled
    assert copy.match("API-7.test") is not None and copy.match("api-77.test") is None
    assert copy.compiled


def test_unpickled_filters_keep_their_compiled_form_and_are_shared() -> None:
    """mitmproxy's filter parser is not run again: the compiled filter comes with the pickle, once per text."""
    ruleset = parse_rules(RULES, "r.yaml", compile_filter)
    first, second = (pickle.loads(pickle.dumps(r)) for r in ruleset.rules[2:4])
    assert isinstance(first.filter, Filter) and first.filter._compiled is not None
    assert first.filter is second.filter


def test_installing_hands_the_loop_back_between_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """With steps of (nearly) no time, every rule is its own step: the loop runs other tasks in between."""
    monkeypatch.setattr(rulereload, "STEP_SECONDS", 0.0)
    ruleset = parse_rules(RULES, "r.yaml", compile_filter)
    sent = rulereload._Sent(ruleset.warnings, [pickle.dumps(r) for r in ruleset.rules])

    async def install_while_counting() -> tuple[RuleSet, int]:
        turns = 0

        async def other_task() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        counting = asyncio.create_task(other_task())
        installed = await rulereload._install_in_steps(sent)
        counting.cancel()
        return installed, turns

    installed, turns = run(install_while_counting)
    assert installed == ruleset
    assert turns >= len(ruleset.rules)


class _Node:
    """A cyclic object: only the cyclic garbage collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_a_step_puts_what_it_makes_in_the_oldest_generation() -> None:
    """Also where the interpreter starts with objects of its own in the permanent generation (Python 3.12)."""
    with rulereload._straight_to_the_oldest_generation():
        made = _Node()
    assert any(o is made for o in gc.get_objects(generation=2))


def test_a_step_collects_the_young_garbage_before_it_starts() -> None:
    """Young garbage is collected first, not moved with the step's objects where only a full collection sees it."""
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage
    with rulereload._straight_to_the_oldest_generation():
        pass
    assert gone() is None


def test_a_step_leaves_objects_someone_else_froze_frozen() -> None:
    """With objects frozen since mitmcors was loaded, a step does not freeze and unfreeze (that would unfreeze
    them)."""
    theirs = _Node()
    gc.freeze()
    try:
        with rulereload._straight_to_the_oldest_generation():
            _Node()
        assert not any(o is theirs for o in gc.get_objects())  # still in the permanent generation
    finally:
        gc.unfreeze()
        del theirs
    assert gc.isenabled()
