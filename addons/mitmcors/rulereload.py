"""Reloading a rule file while the proxy serves flows, without stalling mitmproxy's event loop.

Reading a 10,000-rule file makes about a million short-lived YAML objects. Made in the proxy's process, even in a
worker thread, they cost the event loop dearly: either the cyclic garbage collector traverses them (a full
collection holds the GIL for a second), or it is paused while they exist, and the loop's own garbage of that
time then piles up for one long collection later (0.7 to 1.8 s, measured on Python 3.11 with
`python -m tests.bench.rules`). So a reload reads and validates the file in a child process: the same
interpreter, the same code and `sys.path`. Only the finished rules come back, one pickle per rule, and the loop
unpickles them in steps of at most `STEP_SECONDS`. Each step's objects go straight to the collector's oldest
generation (`gc.freeze` + `gc.unfreeze`), so that they neither make young collections traverse them nor count
towards the next full collection. The rule set is swapped in whole once every rule is in.

Where no child can be started (a frozen standalone mitmproxy binary has no Python to run), the file is read in
a worker thread as before (`_read_in_a_thread`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import mitmcors
from mitmcors.rulefile import parse_bytes, parse_file, read_bytes
from mitmcors.rules import Rule, RuleFileError, RuleSet
from mitmcors.rules.model import HostIndex

logger = logging.getLogger(__name__)

Result = RuleSet | OSError | RuleFileError

STEP_SECONDS = 0.001  # how long the loop installs rules before it serves flows again
SWITCH_INTERVAL = 0.001  # seconds: how often a reloading thread hands the GIL back (Python's default: 0.005)
CHILD_TIMEOUT = 120.0  # seconds; a 16 MiB file (the most a rule file may have) is read in about 15 s
_PROTOCOL = pickle.HIGHEST_PROTOCOL  # parent and child are the same interpreter
_FROZEN_AT_LOAD = gc.get_freeze_count()  # see _straight_to_the_oldest_generation

# Run with `python -I -c`: no environment variable or user site changes what the child imports; it gets the
# parent's sys.path (with the directory the mitmcors package is in) through stdin.
_CHILD_CODE = """\
import pickle, sys
paths, path, data = pickle.load(sys.stdin.buffer)
sys.path[:] = paths
from mitmcors.rulereload import child_main
child_main(path, data)
"""


@dataclass(frozen=True)
class _Sent:
    """What the child sends for a valid file: its warnings and one pickled rule per rule, in order."""

    warnings: tuple[str, ...]
    rules: list[bytes]


async def read_beside_the_loop(path: str) -> Result:
    """Read and validate `path` without stalling the event loop; the expected failures are returned."""
    sent = await asyncio.to_thread(_read_in_a_child, path)
    if sent is None:
        return await asyncio.to_thread(_read_in_a_thread, path)
    if isinstance(sent, _Sent):
        return await _install_in_steps(sent)
    return sent


def child_main(path: str, data: bytes) -> None:
    """The child's side: validate `data`, the bytes of `path`, and write the outcome to stdout as one pickle."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # whatever is printed meanwhile must not mix with the pickle
    gc.disable()  # a million objects live through the parse; the process ends right after it
    if hasattr(os, "nice"):
        os.nice(10)  # the proxy comes first where the machine has fewer free cores than busy threads
    result = parse_bytes(data, path)
    if isinstance(result, RuleSet):
        payload: tuple[object, ...] = ("rules", result.warnings, [pickle.dumps(r, _PROTOCOL) for r in result.rules])
    else:
        payload = ("error", result)
    pickle.dump(payload, out, _PROTOCOL)
    out.flush()


def _can_start_a_child() -> bool:
    # A frozen binary's executable is the program itself; it cannot run `-c`.
    return bool(sys.executable) and not getattr(sys, "frozen", False)


def _read_in_a_child(path: str) -> _Sent | OSError | RuleFileError | None:
    """Read `path` in a child process (in a worker thread: this waits for it). None: no child could do it, and
    the caller reads the file itself."""
    if not _can_start_a_child():
        return None
    try:
        # Read here, at once: the child starts a few hundred milliseconds later, and the file it would read then
        # may already be the next, half-written, edit rather than the one the settle check saw.
        data = read_bytes(path)
    except OSError as e:
        return e
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(mitmcors.__file__)))
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _CHILD_CODE],
            input=pickle.dumps(([package_dir, *sys.path], path, data), _PROTOCOL),
            capture_output=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return TimeoutError(f"reading {path} took more than {CHILD_TIMEOUT:g} s; is it a rule file?")
    except OSError as e:
        logger.warning(f"cors_rules: cannot start a process to read {path} ({e}); reading it in a thread instead")
        return None
    if done.returncode != 0:
        # The exception's type only: its message could quote a value of the file (a token in a `set` header).
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        failure = lines[-1].split(":", 1)[0][:100] if lines else f"exit status {done.returncode}"
        logger.warning(f"cors_rules: the process reading {path} failed ({failure}); reading it in a thread instead")
        return None
    try:
        payload = pickle.loads(done.stdout)  # our own child's output
    except Exception as e:  # something else wrote to the child's stdout first
        logger.warning(f"cors_rules: the process reading {path} answered garbage ({e!r}); reading it in a thread")
        return None
    logger.debug(f"cors_rules: {path} read in a child process in {time.perf_counter() - started:.2f} s")
    if payload[0] == "rules":
        return _Sent(tuple(payload[1]), payload[2])
    error: OSError | RuleFileError = payload[1]
    return error


async def _install_in_steps(sent: _Sent) -> RuleSet:
    """Unpickle the child's rules on the event loop, at most `STEP_SECONDS` at a time, indexing each as it
    comes; the rule set is built (and swapped in by the caller) once all are in."""
    rules: list[Rule] = []
    index = HostIndex()

    def installing() -> Iterator[None]:
        for blob in sent.rules:
            rule = pickle.loads(blob)
            index.add(len(rules), rule)
            rules.append(rule)
            yield
        yield from index.sealing()

    await _in_steps(installing(), making=True)
    return RuleSet(tuple(rules), sent.warnings, _index=index)


async def _in_steps(work: Iterator[None], *, making: bool) -> None:
    """Run `work` on the event loop until it is exhausted, handing the loop back after each `STEP_SECONDS`
    (at the first pause of `work` after that). The loop's worst wait is about two steps: the step that runs
    when a timer falls due, and the one before it. `making`: the work makes long-lived objects (rules), which
    go straight to the collector's oldest generation."""
    done = False
    while not done:
        with _straight_to_the_oldest_generation() if making else contextlib.nullcontext():
            deadline = time.perf_counter() + STEP_SECONDS
            done = True
            for _ in work:
                if time.perf_counter() >= deadline:
                    done = False
                    break
        await asyncio.sleep(0)


@contextlib.contextmanager
def _straight_to_the_oldest_generation() -> Iterator[None]:
    """The objects made inside go to the collector's oldest generation when it ends, uncounted.

    Young collections would traverse 10,000 new rules once or twice each and count them towards the next full
    collection, which then traverses the whole proxy (tens of milliseconds). Instead, the young generations
    are collected first (what the collector would do at about this point anyway), so that only this step's
    objects are young when freeze moves every tracked object to the permanent generation and unfreeze moves
    them back to the oldest one. An install step runs on the loop's thread, so nothing else allocates meanwhile.

    Unfreeze also lets go of whatever else is in the permanent generation, which only makes the collector
    traverse it again. Python 3.12 starts with a few hundred constant tuples there, which the first step lets
    go. But objects frozen after this module was loaded were frozen on purpose (gc.freeze before a fork): then
    the steps run with the collector as it is.
    """
    if gc.get_freeze_count() > _FROZEN_AT_LOAD or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        gc.collect(1)
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        gc.enable()


def _read_in_a_thread(path: str) -> Result:
    """Read `path` in this process's worker thread (where no child can be started), stalling the loop little.

    The GIL passes between the threads every few milliseconds, but not in the middle of one C call, and a
    10,000-rule file makes two long ones: the cyclic garbage collector (a full collection traverses every
    object of the proxy while the file's million transient objects pile up: ~1 s measured) and freeing the
    transient trees at once (`release` frees them a node at a time). So the collector pauses while the file is
    read, and the survivors, the new rules, go to the oldest generation at once (freeze + unfreeze) instead of
    being traversed by a young collection on the event loop's next allocation (~35 ms for 10,000 rules).
    Unlike an install step, this runs beside the loop: the flows' garbage of that time goes there too and waits
    for the next full collection, which with a big file under load on Python 3.11 can stall the loop for a
    second (the reason for the child). While it reads, the thread gives the GIL up every millisecond rather than
    every five.
    """
    with _sharing_the_gil(), _straight_to_the_oldest_generation():
        return parse_file(path)


async def free_in_steps(replaced: RuleSet) -> None:
    """Free a replaced rule set on the event loop a piece at a time (`RuleSet.dismantle`), in steps."""
    await _in_steps(replaced.dismantle(), making=False)


@contextlib.contextmanager
def _sharing_the_gil() -> Iterator[None]:
    """While a worker thread works through a big rule file, it hands the GIL back every millisecond."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
