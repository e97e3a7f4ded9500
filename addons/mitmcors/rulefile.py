"""The `cors_rules` file: read it, validate it, and reload it when it changes, keeping the last good rules."""

from __future__ import annotations

import logging
import os

from mitmproxy import flowfilter

from mitmcors.rules import MAX_BYTES, RuleFileError, RuleSet, backend_name, parse_rules

logger = logging.getLogger(__name__)

Signature = tuple[int, int, int, int, int]


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
    return parse_rules(read_bytes(path), path, compile_filter)


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
        self._install(parse_file(self.path), f"Cannot load cors_rules {spec} ({kept}):")

    def check(self) -> None:
        """Reload the file if it changed on disk and has stopped changing."""
        if self._due():
            self._install(parse_file(self.path), self._reload_failure())

    async def check_async(self) -> None:
        """`check`, with the file read and validated beside the event loop (`rulereload`: in a child process)
        and the rules it replaces freed a few at a time."""
        from mitmcors import rulereload  # here: rulereload reads files with this module's functions

        if self._due():
            path, failure = self.path, self._reload_failure()
            result = await rulereload.read_beside_the_loop(path)
            if path == self.path:  # the option did not change meanwhile
                replaced = self.rules
                self._install(result, failure)
                if replaced is not None and replaced is not self.rules:
                    await rulereload.free_in_steps(replaced)

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


def parse_file(path: str) -> RuleSet | OSError | RuleFileError:
    """`read_rules`, with its expected failures returned rather than raised (it may run in a thread)."""
    try:
        return read_rules(path)
    except (OSError, RuleFileError) as e:
        return e


def read_bytes(path: str) -> bytes:
    """What `read_rules` reads of the file (a bigger file is refused by its size, without reading all of it)."""
    with open(path, "rb") as fh:
        return fh.read(MAX_BYTES + 1)


def parse_bytes(data: bytes, path: str) -> RuleSet | RuleFileError:
    """`parse_rules` on a file's bytes read before, with a bad file returned rather than raised."""
    try:
        return parse_rules(data, path, compile_filter)
    except RuleFileError as e:
        return e
