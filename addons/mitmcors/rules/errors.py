"""What can be wrong in a rule file: a machine-readable code per kind of problem, and the error that carries it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Code(StrEnum):
    """The kind of a rule file problem; tests and tools match on it, people read `problem` and `fix`."""

    YAML_SYNTAX = "yaml_syntax"
    NOT_A_RULE_FILE = "not_a_rule_file"  # the document is not a mapping with a 'rules' key
    NOT_A_LIST = "not_a_list"
    NOT_A_MAPPING = "not_a_mapping"
    NOT_A_STRING = "not_a_string"
    EMPTY_LIST = "empty_list"
    UNKNOWN_KEY = "unknown_key"
    DUPLICATE_KEY = "duplicate_key"
    MISSING_NAME = "missing_name"
    DUPLICATE_NAME = "duplicate_name"
    INVALID_BOOLEAN = "invalid_boolean"
    INVALID_MAX_AGE = "invalid_max_age"
    INVALID_PREFLIGHT = "invalid_preflight"
    HOST_IS_URL = "host_is_url"
    INVALID_HOST_GLOB = "invalid_host_glob"
    RELATIVE_PATH = "relative_path"
    INVALID_FILTER = "invalid_filter"
    INVALID_ORIGIN_PATTERN = "invalid_origin_pattern"
    ORIGIN_NOT_LOWERCASE = "origin_not_lowercase"
    ORIGIN_WITH_PATH = "origin_with_path"
    PUBLIC_SUFFIX_WILDCARD = "public_suffix_wildcard"
    NULL_ORIGIN = "null_origin"
    INVALID_TOKEN = "invalid_token"
    LOWERCASE_METHOD = "lowercase_method"
    MIXED_WILDCARD = "mixed_wildcard"  # '*' or 'reflect' in a list of names or origins
    REFLECT_NOT_ALLOWED = "reflect_not_allowed"
    CREDENTIALS_WITH_WILDCARD = "credentials_with_wildcard"
    INSECURE_REFLECT_WITH_CREDENTIALS = "insecure_reflect_with_credentials"
    INVALID_HEADER_VALUE = "invalid_header_value"  # CR, LF or NUL in a `set` value
    NOT_UTF8 = "not_utf8"
    TOO_LARGE = "too_large"  # the file, or what its aliases expand to


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleError:
    """One problem in a rule file: where (line, rule, key), the offending value, what is wrong and the fix."""

    code: Code
    line: int
    where: str = ""  # "rule 2 ('api')", or "" for file-level problems
    key: str = ""
    value: object = None
    problem: str
    fix: str = ""

    def format(self, path: str) -> str:
        """`path:line: rule N ('name'): key: problem. Fix: fix`, leaving out the parts that are empty."""
        where = f" {self.where}:" if self.where else ""
        key = f" {self.key}:" if self.key else ""
        fix = f" Fix: {self.fix}" if self.fix else ""
        problem = self.problem if len(self.problem) <= _MAX_PROBLEM else self.problem[:_MAX_PROBLEM] + "…"
        return f"{path}:{self.line}:{where}{key} {problem}.{fix}"


_MAX_PROBLEM = 300  # a problem quotes the bad value: a 5,000-character value is cut, not logged whole


class RuleFileError(ValueError):
    """A rule file with one or more errors; str() lists them all, one per line, sorted by line."""

    def __init__(self, path: str, errors: Sequence[RuleError]) -> None:
        self.path = path
        self.errors = tuple(sorted(errors, key=lambda e: e.line))
        super().__init__("\n".join(e.format(path) for e in self.errors))

    def __reduce__(self) -> tuple[type[RuleFileError], tuple[str, tuple[RuleError, ...]]]:
        """Pickled by its path and errors (a reload reads the file in a child process and sends this back)."""
        return RuleFileError, (self.path, self.errors)
