"""The rule file: parse and validate it (every error at once, with file:line, a code and the fix), match flows,
and compute the Access-Control-* headers a rule wants on a response.

Parsing is pure and raises `RuleFileError`; the addon wraps it once. Parsed rules are frozen and carry their
compiled globs, patterns and mitmproxy filter (rules a reload brings from its child process compile each regex at
its first use), so nothing is compiled per flow. The modules behind this surface:
`source` (YAML with lines, PyYAML or ruamel.yaml), `validate` (one validator per key), `model` (rules, origin
patterns, matching), `edit` (the header lines a rule produces), `errors` (codes and errors).
"""

from mitmcors.rules.edit import HeaderEdit, cors_edit
from mitmcors.rules.errors import Code, RuleError, RuleFileError
from mitmcors.rules.model import OriginPattern, Rule, RuleSet, parse_origin_pattern
from mitmcors.rules.source import MAX_BYTES, backend_name
from mitmcors.rules.validate import CORS_KEYS, MATCH_KEYS, RULE_KEYS, parse_rules

__all__ = [
    "CORS_KEYS",
    "MATCH_KEYS",
    "MAX_BYTES",
    "RULE_KEYS",
    "Code",
    "HeaderEdit",
    "OriginPattern",
    "Rule",
    "RuleError",
    "RuleFileError",
    "RuleSet",
    "backend_name",
    "cors_edit",
    "parse_origin_pattern",
    "parse_rules",
]
