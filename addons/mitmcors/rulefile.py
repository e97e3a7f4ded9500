"""The `cors_rules` file: read it, validate it, and reload it when it changes, keeping the last good rules."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Iterator

from mitmproxy import flowfilter

from mitmcors.rules import MAX_BYTES, RuleFileError, RuleSet, backend_name, parse_rules

logger = logging.getLogger(__name__)

Signature = tuple[int, int, int, int, int]
SWITCH_INTERVAL = 0.001  # seconds: how often a reloading thread hands the GIL back (Python's default: 0.005)


def compile_filter(text: str) -> flowfilter.TFilter:
    """mitmproxy's own filter language; raises ValueError on a bad expression (as mitmproxy ≥ 11 does)."""
    compiled = flowfilter.parse(text)
    if compiled is None:  # older mitmproxy returned None instead of raising
        raise ValueError(f"Invalid filter expression: {text!r}")
    return compiled


def read_rules(path: str) -> RuleSet:
    """Read and validate a rule file.

    Raises:
        RuleFileError: the file is not a valid rule file (every problem, with its line and fix).
        OSError: the file cannot be read.
    """
    with open(path, "rb") as fh:
        data = fh.read(MAX_BYTES + 1)  # a bigger file is refused by its size, without reading all of it
    return parse_rules(data, path, compile_filter)


def _signature(path: str) -> Signature | None:
    """What changes when the file is edited, replaced or has its permissions fixed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode)


class RuleFile:
    """The rules in force and the file they came from.

    An edited file is read once it has stopped changing (the same signature at two checks in a row), so an
    editor's half-written save is never installed. Reloads parse off the event loop (`check_async`); only
    the swap of the finished rule set happens on it.
    """

    def __init__(self) -> None:
        self.rules: RuleSet | None = None
        self.path = ""
        self._signature: Signature | None = None  # of the file as last read
        self._pending: Signature | None = None  # a changed signature, seen once

    def load(self, spec: str) -> None:
        """Use the rule file `spec` ("" = no rules), read at once.

        A bad file is logged as an error (every problem with file:line and its fix) and the last good rules
        stay in force; at startup that error makes mitmdump exit, as it does for any startup error.
        """
        self._pending = None
        if not spec:
            self.rules, self.path, self._signature = None, "", None
            return
        self.path = os.path.expanduser(spec)
        kept = f"keeping the {len(self.rules.rules)} rule(s) loaded before" if self.rules else "no rules in force"
        self._signature = _signature(self.path)
        self._install(_parse(self.path), f"Cannot load cors_rules {spec} ({kept}):")

    def check(self) -> None:
        """Reload the file if it changed on disk and has stopped changing."""
        if self._due():
            self._install(_parse(self.path), self._reload_failure())

    async def check_async(self) -> None:
        """`check`, with the file read and validated in a worker thread, and the rules it replaces freed there."""
        if self._due():
            path, failure = self.path, self._reload_failure()
            result = await asyncio.to_thread(_parse_beside_the_loop, path)
            if path == self.path:  # the option did not change meanwhile
                replaced = [self.rules]
                self._install(result, failure)
                if replaced[0] is not self.rules:
                    await asyncio.to_thread(_free_beside_the_loop, replaced)

    def _due(self) -> bool:
        if not self.path:
            return False
        signature = _signature(self.path)
        if signature == self._signature:
            self._pending = None
            return False
        if signature != self._pending:  # changed since the last check: wait until it stays the same
            self._pending = signature
            return False
        self._pending = None
        self._signature = signature
        if signature is None:
            count = len(self.rules.rules) if self.rules else 0
            logger.warning(f"cors_rules: {self.path} is gone; keeping the {count} rule(s) loaded")
            return False
        return True

    def _reload_failure(self) -> str:
        return f"cors_rules: {self.path} has errors; keeping the last good rules."

    def _install(self, result: RuleSet | Exception, failure: str) -> None:
        if isinstance(result, Exception):
            logger.error(f"{failure}\n{result}")
            return
        self.rules = result
        for warning in result.warnings:
            logger.warning(f"cors_rules {self.path}: {warning}")
        logger.info(f"cors_rules: {len(result.rules)} rule(s) loaded from {self.path} (read with {backend_name()})")


def _parse_beside_the_loop(path: str) -> RuleSet | OSError | RuleFileError:
    """`_parse` in a worker thread while the event loop serves flows, without stalling it (Python 3.11/3.12).

    The GIL passes between the threads every few milliseconds, but not in the middle of one C call, and a
    10,000-rule file makes two long ones: the cyclic garbage collector (a full collection traverses every
    object of the proxy while the file's million transient objects pile up: ~1 s measured) and freeing the
    transient trees at once (`release` frees them a node at a time). So the collector pauses while the file is
    read, and the survivors, the new rules, go to the oldest generation at once (freeze + unfreeze) instead of
    being traversed by a young collection on the event loop's next allocation (~35 ms for 10,000 rules).
    The rules are collected with everything else at the next full collection. And while it reads, the thread
    gives the GIL up every millisecond rather than every five, so the loop waits at most about that long.
    """
    with _sharing_the_gil():
        enabled = gc.isenabled()
        gc.disable()
        try:
            return _parse(path)
        finally:
            gc.freeze()
            gc.unfreeze()
            if enabled:
                gc.enable()


def _free_beside_the_loop(box: list[RuleSet | None]) -> None:
    """Drop the replaced rules a rule at a time in a worker thread (freed at once, 10,000 rules hold the GIL
    for milliseconds)."""
    with _sharing_the_gil():
        old = box.pop()
        rules = old.dismantle() if old is not None else []
        del old
        while rules:
            rules.pop()


@contextlib.contextmanager
def _sharing_the_gil() -> Iterator[None]:
    """While a worker thread works through a big rule file, it hands the GIL back every millisecond."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def _parse(path: str) -> RuleSet | OSError | RuleFileError:
    """`read_rules`, with its expected failures returned rather than raised (it may run in a thread)."""
    try:
        return read_rules(path)
    except (OSError, RuleFileError) as e:
        return e
