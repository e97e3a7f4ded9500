"""The `cors_rules` file: read it, validate it, and reload it when it changes, keeping the last good rules."""

from __future__ import annotations

import logging
import os

from mitmproxy import flowfilter

from mitmcors.rules import RuleFileError, RuleSet, parse_rules
from mitmcors.yamlsource import backend_name

logger = logging.getLogger(__name__)

Signature = tuple[int, int, int]


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
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    return parse_rules(text, path, compile_filter)


def _signature(path: str) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class RuleFile:
    """The rules in force and the file they came from."""

    def __init__(self) -> None:
        self.rules: RuleSet | None = None
        self.path = ""
        self._signature: Signature | None = None

    def load(self, spec: str) -> None:
        """Use the rule file `spec` ("" = no rules).

        A bad file is logged as an error (every problem with file:line and its fix) and the last good rules
        stay in force; at startup that error makes mitmdump exit, as it does for any startup error.
        """
        if not spec:
            self.rules, self.path, self._signature = None, "", None
            return
        self.path = os.path.expanduser(spec)
        kept = f"keeping the {len(self.rules.rules)} rule(s) loaded before" if self.rules else "no rules in force"
        self._read(f"Cannot load cors_rules {spec} ({kept}):")

    def check(self) -> None:
        """Reload the file if it changed on disk; an invalid edit keeps the last good rules."""
        if not self.path or _signature(self.path) == self._signature:
            return
        if not os.path.exists(self.path):
            self._signature = None
            count = len(self.rules.rules) if self.rules else 0
            logger.warning(f"cors_rules: {self.path} is gone; keeping the {count} rule(s) loaded")
            return
        self._read(f"cors_rules: {self.path} has errors; keeping the last good rules.")

    def _read(self, failure: str) -> None:
        self._signature = _signature(self.path)
        try:
            rules = read_rules(self.path)
        except (OSError, RuleFileError) as e:
            logger.error(f"{failure}\n{e}")
            return
        self.rules = rules
        for warning in rules.warnings:
            logger.warning(f"cors_rules {self.path}: {warning}")
        logger.info(f"cors_rules: {len(rules.rules)} rule(s) loaded from {self.path} (read with {backend_name()})")
