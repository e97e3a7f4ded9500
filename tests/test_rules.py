"""The rule file: validation (by error code, key and line), both YAML readers, origin patterns, matching, and the
headers a rule produces."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mitmcors.rulefile import compile_filter
from mitmcors.rules import (
    MATCH_KEYS,
    MAX_BYTES,
    RULE_KEYS,
    OriginPattern,
    Rule,
    RuleFileError,
    RuleSet,
    backend_name,
    cors_edit,
    parse_origin_pattern,
    parse_rules,
)
from mitmcors.rules.model import Regex

ROOT = Path(__file__).resolve().parent.parent
# A rule named 'a' on line 2; the keys added after it start on line 3.
RULE = "rules:\n  - name: a\n"
BOOLEAN_KEYS = ("allow_credentials", "dry_run", "enabled", "dangerously_allow_invalid", "dangerously_allow_insecure")


def parse(text: str) -> RuleSet:
    return parse_rules(textwrap.dedent(text), "rules.yaml", compile_filter)


def in_rule(body: str) -> str:
    """A file whose rule 'a' (line 2) has these keys, written unindented: the first is on line 3."""
    return RULE + textwrap.indent(body, "    ")


def rule_of(body: str) -> Rule:
    """The parsed rule 'a' with these keys (written unindented)."""
    return parse(in_rule(body)).rules[0]


def errors_of(text: str) -> RuleFileError:
    with pytest.raises(RuleFileError) as e:
        parse(text)
    return e.value


def codes_of(text: str) -> list[tuple[str, str, int]]:
    """(code, key, line) of every error in the file."""
    return [(e.code, e.key, e.line) for e in errors_of(text).errors]


@pytest.fixture(params=["PyYAML", "ruamel.yaml"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test with PyYAML, then as in mitmproxy's standalone builds, which only have ruamel.yaml."""
    if request.param == "ruamel.yaml":
        monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` raise ImportError
    assert backend_name() == request.param
    yield request.param


# --------------------------------------------------------------------------------------------------
# Validation: every mistake has a code, the key it is under and its own line.


def invalid(body: str, code: str, key: str, line: int, why: str) -> Any:
    """A row of INVALID for a mistake inside rule 'a'."""
    return pytest.param(in_rule(body), code, key, line, id=why)


INVALID = [
    # The file
    pytest.param("rules: [\n", "yaml_syntax", "", 2, id="broken YAML"),
    pytest.param("- name: a\n", "not_a_rule_file", "", 1, id="no rules key"),
    pytest.param("rules: 3\n", "not_a_list", "rules", 1, id="rules not a list"),
    pytest.param("rules: []\nrulez: []\n", "unknown_key", "rulez", 2, id="unknown top-level key"),
    pytest.param("rules: []\ndry_run: maybe\n", "invalid_boolean", "dry_run", 2, id="top-level dry_run not a boolean"),
    pytest.param("rules:\n  - just a string\n", "not_a_mapping", "", 2, id="rule not a mapping"),
    invalid("name: b\n", "duplicate_key", "name", 3, "duplicate key"),
    # name, and keys that do not exist
    pytest.param("rules:\n  - match: {host: a}\n", "missing_name", "name", 2, id="missing name"),
    pytest.param("rules:\n  - name: 3\n", "missing_name", "name", 2, id="name not a string"),
    pytest.param(RULE + "  - name: a\n", "duplicate_name", "name", 3, id="duplicate name"),
    invalid("colour: red\n", "unknown_key", "colour", 3, "unknown key"),
    # match
    invalid("match: [a]\n", "not_a_mapping", "match", 3, "match not a mapping"),
    invalid("match:\n  hots: a\n", "unknown_key", "hots", 4, "unknown match key"),
    invalid("match: {host: 'http://api.localhost/'}\n", "host_is_url", "match.host", 3, "URL as host"),
    invalid("match: {host: 'localhost:8080'}\n", "invalid_host_glob", "match.host", 3, "host with port"),
    invalid("match: {host: []}\n", "empty_list", "match.host", 3, "empty host list"),
    invalid("match:\n  host:\n    - a\n    - 5\n", "not_a_string", "match.host", 6, "number as host"),
    invalid("match: {path: v1/*}\n", "relative_path", "match.path", 3, "relative path glob"),
    invalid("match: {origin: 'https://*.com'}\n", "public_suffix_wildcard", "match.origin", 3, "origin over a TLD"),
    invalid("match: {filter: '(~m PUT'}\n", "invalid_filter", "match.filter", 3, "bad filter"),
    invalid("match: {filter: ''}\n", "not_a_string", "match.filter", 3, "empty filter"),
    # allow_origins
    invalid("allow_origins: ['https://*.com']\n", "public_suffix_wildcard", "allow_origins", 3, "*.com"),
    invalid("allow_origins: ['https://*.co.uk']\n", "public_suffix_wildcard", "allow_origins", 3, "*.co.uk"),
    invalid("allow_origins: ['https://*.github.io']\n", "public_suffix_wildcard", "allow_origins", 3, "*.github.io"),
    invalid("allow_origins: ['https://*.test']\n", "public_suffix_wildcard", "allow_origins", 3, "unlisted TLD"),
    invalid("allow_origins: ['http://localhost:5173/']\n", "origin_with_path", "allow_origins", 3, "trailing slash"),
    invalid("allow_origins: ['HTTP://App.test']\n", "origin_not_lowercase", "allow_origins", 3, "upper-case origin"),
    invalid("allow_origins: [localhost:5173]\n", "invalid_origin_pattern", "allow_origins", 3, "no scheme"),
    invalid("allow_origins: ['https://a.*.b.com']\n", "invalid_origin_pattern", "allow_origins", 3, "star inside"),
    invalid("allow_origins: ['null']\n", "null_origin", "allow_origins", 3, "null origin"),
    invalid("allow_origins: ['*', 'http://a.test']\n", "mixed_wildcard", "allow_origins", 3, "star and origins"),
    invalid("allow_origins: 5\n", "not_a_string", "allow_origins", 3, "number as origins"),
    invalid(
        "allow_origins:\n  - http://a.test\n  - 'https://*.com'\n",
        "public_suffix_wildcard",
        "allow_origins",
        5,
        "list item on its own line",
    ),
    invalid(
        "allow_origins: '*'\nallow_credentials: true\n",
        "credentials_with_wildcard",
        "allow_origins",
        3,
        "wildcard with credentials",
    ),
    invalid(
        "allow_origins: reflect\nallow_credentials: true\n",
        "insecure_reflect_with_credentials",
        "allow_origins",
        3,
        "reflect with credentials on any host",
    ),
    invalid(
        "match: {host: [localhost, api.example.com]}\nallow_credentials: true\n",
        "insecure_reflect_with_credentials",
        "allow_origins",
        2,
        "default reflect on a public host",
    ),
    invalid(
        "match: {host: localhost}\nallow_credentials: true\ndangerously_allow_insecure: true\n"
        "dangerously_allow_invalid: maybe\n",
        "invalid_boolean",
        "dangerously_allow_invalid",
        6,
        "credentials on purpose, bad flag",
    ),
    # allow_credentials, allow_methods, allow_headers, expose_headers
    invalid("allow_credentials: 'yes please'\n", "invalid_boolean", "allow_credentials", 3, "credentials not a bool"),
    invalid("allow_methods: [put]\n", "lowercase_method", "allow_methods", 3, "lower-case method"),
    invalid("allow_methods: ['GET POST']\n", "invalid_token", "allow_methods", 3, "two methods in one item"),
    invalid("allow_methods: ['*', GET]\n", "mixed_wildcard", "allow_methods", 3, "star mixed with methods"),
    invalid("allow_headers: ['X-A X-B']\n", "invalid_token", "allow_headers", 3, "space in header name"),
    invalid("allow_headers: []\n", "empty_list", "allow_headers", 3, "empty header list"),
    invalid("expose_headers: reflect\n", "reflect_not_allowed", "expose_headers", 3, "reflect exposes nothing"),
    invalid("expose_headers: ['X A']\n", "invalid_token", "expose_headers", 3, "bad exposed name"),
    # max_age, preflight, strip, set
    invalid("max_age: ten\n", "invalid_max_age", "max_age", 3, "max_age not a number"),
    invalid("max_age: -1\n", "invalid_max_age", "max_age", 3, "negative max_age"),
    invalid("preflight: answr\n", "invalid_preflight", "preflight", 3, "bad preflight mode"),
    invalid("strip: '*'\n", "invalid_token", "strip", 3, "strip everything"),
    invalid("strip: ['X A']\n", "invalid_token", "strip", 3, "bad stripped name"),
    invalid("set: [X-A]\n", "not_a_mapping", "set", 3, "set not a mapping"),
    invalid("set: {'X A': b}\n", "invalid_token", "set", 3, "bad set name"),
    invalid("set:\n  X-A: true\n", "not_a_string", "set.X-A", 4, "boolean header value"),
    # The flags
    invalid("dry_run: maybe\n", "invalid_boolean", "dry_run", 3, "dry_run not a boolean"),
    invalid("enabled: 1\n", "invalid_boolean", "enabled", 3, "enabled not a boolean"),
    invalid("dangerously_allow_invalid: 'true'\n", "invalid_boolean", "dangerously_allow_invalid", 3, "quoted true"),
    invalid("dangerously_allow_insecure: []\n", "invalid_boolean", "dangerously_allow_insecure", 3, "a list"),
]


@pytest.mark.parametrize(("text", "code", "key", "line"), INVALID)
def test_invalid_rule_file(reader: str, text: str, code: str, key: str, line: int) -> None:
    """Each kind of mistake is reported once, with its code, key and line, by either YAML reader."""
    assert codes_of(text) == [(code, key, line)]


def test_all_errors_are_reported_at_once() -> None:
    """Errors in several rules and keys come back together, sorted by line."""
    text = RULE + "    colour: red\n    max_age: -1\n  - name: b\n    preflight: maybe\n"
    assert codes_of(text) == [
        ("unknown_key", "colour", 3),
        ("invalid_max_age", "max_age", 4),
        ("invalid_preflight", "preflight", 6),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            in_rule("allow_origin: '*'\n"),
            "rules.yaml:3: rule 1 ('a'): allow_origin: unknown key 'allow_origin'. Fix: did you mean 'allow_origins'?",
            id="typo with a suggestion",
        ),
        pytest.param(
            in_rule("enabled: yes\n"),
            "rules.yaml:3: rule 1 ('a'): enabled: 'yes' is a boolean in YAML 1.1 only; rule files are read as "
            "YAML 1.2, where it is a string. Fix: write true or false",
            id="YAML 1.1 boolean",
        ),
        pytest.param(
            in_rule("allow_origins: ['https://*.co.uk']\n"),
            "rules.yaml:3: rule 1 ('a'): allow_origins: 'https://*.co.uk': '*.co.uk' would match every site under "
            "a public suffix. Fix: name the site: 'https://*.example.co.uk'",
            id="public suffix",
        ),
        pytest.param(
            "rules: []\nrules: []\n",
            "rules.yaml:2: rules: duplicate key 'rules' (first on line 1). Fix: keep one of them",
            id="file-level error",
        ),
    ],
)
def test_error_line_format(text: str, expected: str) -> None:
    """An error reads `file:line: rule N ('name'): key: problem. Fix: fix`, quoting the bad value."""
    assert str(errors_of(text)) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param(in_rule("colour: red\n"), "colour", id="unknown key"),
        pytest.param(in_rule("allow_origins: ['https://*.com']\n"), "https://*.com", id="origin pattern"),
        pytest.param(in_rule("max_age: ten\n"), "ten", id="max_age"),
        pytest.param(in_rule("allow_methods: [GET, put]\n"), "put", id="one item of a list"),
    ],
)
def test_errors_carry_the_offending_value(text: str, value: object) -> None:
    """Tools get the bad value itself, not only a message quoting it."""
    assert [e.value for e in errors_of(text).errors] == [value]


# --------------------------------------------------------------------------------------------------
# What each key accepts


def plain(value: Any) -> Any:
    """A Rule attribute in comparable form: patterns by their text, compiled conditions as True."""
    if isinstance(value, tuple) and value and isinstance(value[0], OriginPattern):
        return tuple(p.raw for p in value)
    if isinstance(value, Regex) or callable(value):
        return True
    return value


VALID = [
    pytest.param("name", "", "name", "a", id="name"),
    pytest.param("match", "match: {}", "host_regex", None, id="empty match"),
    pytest.param("match.host", "match: {host: ['API.localhost', '*.example.test']}", "host_regex", True, id="host"),
    pytest.param("match.path", "match: {path: /v1/*}", "path_regex", True, id="path"),
    pytest.param(
        "match.origin", "match: {origin: 'http://localhost:*'}", "origins", ("http://localhost:*",), id="origin"
    ),
    pytest.param("match.origin", "match: {origin: '*'}", "origins", (), id="any origin"),
    pytest.param("match.filter", "match: {filter: '~m PUT'}", "filter", True, id="filter"),
    pytest.param("allow_origins", "allow_origins: '*'", "allow_origins", "*", id="any origin allowed"),
    pytest.param("allow_origins", "allow_origins: reflect", "allow_origins", "reflect", id="reflect"),
    pytest.param(
        "allow_origins",
        "allow_origins: ['https://*.example.com', 'https://*.example.co.uk', 'https://*.example.github.io',"
        " 'http://*.localhost:*']",
        "allow_origins",
        ("https://*.example.com", "https://*.example.co.uk", "https://*.example.github.io", "http://*.localhost:*"),
        id="patterns under a public suffix",
    ),
    pytest.param("allow_origins", "allow_origins: http://a.test", "allow_origins", ("http://a.test",), id="one origin"),
    pytest.param(
        "allow_credentials",
        "match: {host: ['localhost', '*.localhost']}\nallow_credentials: true",
        "allow_credentials",
        True,
        id="credentials with reflect on local hosts",
    ),
    pytest.param("allow_methods", "allow_methods: [GET, PATCH]", "allow_methods", ("GET", "PATCH"), id="methods"),
    pytest.param("allow_methods", "allow_methods: '*'", "allow_methods", "*", id="any method"),
    pytest.param("allow_headers", "allow_headers: [Content-Type]", "allow_headers", ("Content-Type",), id="headers"),
    pytest.param("allow_headers", "allow_headers: reflect", "allow_headers", "reflect", id="reflect headers"),
    pytest.param("expose_headers", "expose_headers: [X-Total-Count]", "expose_headers", ("X-Total-Count",), id="exp"),
    pytest.param("expose_headers", "expose_headers: '*'", "expose_headers", "*", id="expose everything"),
    pytest.param("max_age", "max_age: 600", "max_age", 600, id="max_age"),
    pytest.param("preflight", "preflight: answer", "preflight", "answer", id="answer preflights"),
    pytest.param("preflight", "preflight: forward", "preflight", "forward", id="forward preflights"),
    pytest.param("strip", "strip: [X-Powered-By]", "strip", ("x-powered-by",), id="strip"),
    pytest.param(
        "set",
        "set: {X-A: '1', X-B: [a, b], X-C: 2, X-D: null}",
        "set_headers",
        (("X-A", ("1",)), ("X-B", ("a", "b")), ("X-C", ("2",)), ("X-D", ())),
        id="set",
    ),
    pytest.param("dry_run", "dry_run: true", "dry_run", True, id="dry_run"),
    pytest.param("enabled", "enabled: true", "name", "a", id="enabled"),
    pytest.param(
        "dangerously_allow_invalid",
        "allow_origins: '*'\nallow_credentials: true\ndangerously_allow_invalid: true",
        "dangerously_allow_invalid",
        True,
        id="wildcard with credentials on purpose",
    ),
    pytest.param(
        "dangerously_allow_insecure",
        "allow_origins: ['null']\ndangerously_allow_insecure: true",
        "allow_origins",
        ("null",),
        id="null origin on purpose",
    ),
    pytest.param(
        "dangerously_allow_insecure",
        "allow_origins: reflect\nallow_credentials: true\ndangerously_allow_insecure: true",
        "allow_credentials",
        True,
        id="reflect with credentials on any host on purpose",
    ),
]


@pytest.mark.parametrize(("key", "body", "attribute", "expected"), VALID)
def test_valid_value(reader: str, key: str, body: str, attribute: str, expected: Any) -> None:
    """A valid value of each key ends up in the parsed rule, by either YAML reader."""
    assert plain(getattr(rule_of(body), attribute)) == expected


def test_every_key_has_a_pass_and_a_fail_case() -> None:
    """The two tables above cover every rule key and every match key."""
    keys = {*RULE_KEYS, *(f"match.{k}" for k in MATCH_KEYS)}
    assert keys <= {p.values[0] for p in VALID}
    assert keys <= {p.values[2] for p in INVALID}


@pytest.mark.parametrize(
    ("max_age", "warnings"),
    [pytest.param(7200, 0, id="at Chromium's cap"), pytest.param(7201, 1, id="above Chromium's cap")],
)
def test_max_age_above_cap_warns(max_age: int, warnings: int) -> None:
    """A max_age above Chromium's cap is accepted, with a warning."""
    assert len(parse(in_rule(f"max_age: {max_age}\n")).warnings) == warnings


@pytest.mark.parametrize(
    ("first", "warnings"),
    [
        pytest.param("allow_origins: '*'", 1, id="catch-all first"),
        pytest.param("match: {path: /a/*}", 0, id="conditional first"),
    ],
)
def test_rule_after_catch_all_warns(first: str, warnings: int) -> None:
    """A rule that can never apply, behind a rule without conditions, is pointed out."""
    rs = parse(f"rules:\n  - name: first\n    {first}\n  - name: second\n    allow_origins: '*'\n")
    assert len(rs.warnings) == warnings


def test_disabled_rule_is_skipped() -> None:
    """enabled: false keeps a rule in the file but out of use."""
    rs = parse("rules:\n  - name: a\n    enabled: false\n  - name: b\n")
    assert [r.name for r in rs.rules] == ["b"]


def test_top_level_dry_run_applies_to_every_rule() -> None:
    """dry_run at the top of the file makes every rule a dry run."""
    rs = parse("dry_run: true\nrules:\n  - name: a\n  - name: b\n")
    assert [r.dry_run for r in rs.rules] == [True, True]


def test_empty_rules_list_turns_every_rule_off() -> None:
    """`rules: []` is how a file says on purpose that no rule applies."""
    assert parse("rules: []\n").rules == ()


# Issue 8: files an editor leaves half-written, and hostile files, are refused with file:line and a code,
# never with a traceback or a frozen proxy.
_ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdef", "bcdefg", strict=True)
)
HOSTILE = [
    pytest.param("", "not_a_rule_file", "", 1, id="empty file"),
    pytest.param("rules:\n", "not_a_list", "rules", 1, id="rules key with no list"),
    pytest.param(_ALIAS_BOMB + "rules: []\n", "too_large", "", 1, id="alias bomb"),
    pytest.param("rules: &a [*a]\n", "too_large", "", 1, id="alias of itself"),
    pytest.param("rules:\n" + "".join("  " * i + "-\n" for i in range(1, 100)), "too_large", "", 66, id="deep nesting"),
    pytest.param(in_rule("max_age: " + "9" * 5000), "invalid_max_age", "max_age", 3, id="5000-digit integer"),
    pytest.param(in_rule("max_age: 0x_"), "invalid_max_age", "max_age", 3, id="0x_"),
    pytest.param(in_rule('set:\n  X-A: "a\\r\\nSet-Cookie: x"'), "invalid_header_value", "set.X-A", 4, id="CRLF"),
    pytest.param(in_rule('set:\n  X-A: "a\\nb"'), "invalid_header_value", "set.X-A", 4, id="LF"),
    pytest.param(in_rule('set:\n  X-A: "a\\0b"'), "invalid_header_value", "set.X-A", 4, id="NUL"),
]


@pytest.mark.parametrize(("text", "code", "key", "line"), HOSTILE)
def test_hostile_file_is_refused(reader: str, text: str, code: str, key: str, line: int) -> None:
    """Each hostile or half-written file is refused with its code, key and line, under both readers."""
    assert codes_of(text)[0] == (code, key, line)


@pytest.mark.parametrize(
    ("data", "line"),
    [
        pytest.param(b"rules:\n  - name: \xff\n", 2, id="Latin-1 byte"),
        pytest.param(b"\xfe\xff", 1, id="UTF-16 BOM"),
        pytest.param(b"rules: []\n# " + b"\xe2\x82", 2, id="cut mid-character"),
    ],
)
def test_bytes_that_are_not_utf8_are_refused(data: bytes, line: int) -> None:
    """A rule file read from disk that is not UTF-8 is refused with the line of the first bad byte."""
    with pytest.raises(RuleFileError) as e:
        parse_rules(data, "rules.yaml", compile_filter)
    assert [(x.code, x.line) for x in e.value.errors] == [("not_utf8", line)]


def test_oversized_file_is_refused_before_it_is_decoded() -> None:
    """More bytes than a rule file may have is refused by size alone."""
    with pytest.raises(RuleFileError) as e:
        parse_rules(b"#" * (MAX_BYTES + 1), "rules.yaml", compile_filter)
    assert [x.code for x in e.value.errors] == ["too_large"]


@pytest.mark.parametrize("path", sorted((ROOT / "rules").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_rule_files_are_valid(reader: str, path: Path) -> None:
    """Every rule file in rules/ loads without errors, by either YAML reader."""
    assert parse_rules(path.read_text(), str(path), compile_filter).rules


def test_nothing_is_loaded_before_a_file_is_parsed() -> None:
    """Importing the rules package loads neither YAML library nor the Public Suffix List (startup cost)."""
    code = "import sys, mitmcors.rules; print(sorted({'yaml', 'ruamel', 'publicsuffix2'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT / "addons")
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------------
# One file means the same under PyYAML (YAML 1.1) and ruamel.yaml (YAML 1.2)


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("spelling", [str.lower, str.title, str.upper], ids=["lower", "title", "upper"])
def test_yaml_1_2_booleans_are_booleans(reader: str, spelling: Callable[[str], str], value: bool) -> None:
    """true and false, in the three cases YAML 1.2 allows (true, True, TRUE), are booleans under both readers."""
    assert rule_of(f"dry_run: {spelling(str(value))}").dry_run is value


@pytest.mark.parametrize("key", BOOLEAN_KEYS)
@pytest.mark.parametrize("spelling", ["yes", "no", "on", "off", "y", "n", "Yes", "ON", "N"])
def test_yaml_1_1_booleans_are_refused(reader: str, key: str, spelling: str) -> None:
    """yes/no/on/off/y/n are booleans in YAML 1.1 only, so both readers refuse them where a boolean is expected."""
    assert codes_of(in_rule(f"{key}: {spelling}\n")) == [("invalid_boolean", key, 3)]


@pytest.mark.parametrize(
    ("spelling", "value"),
    [
        pytest.param("600", 600, id="decimal"),
        pytest.param("0", 0, id="zero"),
        pytest.param("+5", 5, id="plus sign"),
        pytest.param("0o17", 15, id="YAML 1.2 octal"),
        pytest.param("0x1F", 31, id="hexadecimal"),
        pytest.param("0x1f", 31, id="lower-case hexadecimal"),
    ],
)
def test_yaml_1_2_integers_are_integers(reader: str, spelling: str, value: int) -> None:
    """Decimal, 0o octal and 0x hexadecimal integers mean the same under both readers."""
    assert rule_of(f"max_age: {spelling}").max_age == value


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param("017", id="leading zero: octal 15 in YAML 1.1, decimal 17 in YAML 1.2"),
        pytest.param("00", id="double zero"),
        pytest.param("019", id="leading zero, not octal"),
        pytest.param("1_000", id="YAML 1.1 digit separator"),
        pytest.param("0b11", id="YAML 1.1 binary"),
        pytest.param("1:30", id="YAML 1.1 sexagesimal"),
        pytest.param("1e3", id="YAML 1.2 float"),
        pytest.param("1.5", id="fraction"),
        pytest.param(".inf", id="infinity"),
        pytest.param("'600'", id="quoted"),
        pytest.param("true", id="boolean"),
    ],
)
def test_other_numbers_are_refused_as_max_age(reader: str, spelling: str) -> None:
    """Whatever is not a YAML 1.2 integer in both readers is refused, never read differently by one of them."""
    assert codes_of(in_rule(f"max_age: {spelling}\n")) == [("invalid_max_age", "max_age", 3)]


@pytest.mark.parametrize(
    ("spelling", "value"),
    [
        pytest.param("017", "017", id="leading zero kept as written"),
        pytest.param("0x1F", "31", id="hexadecimal"),
        pytest.param("yes", "yes", id="YAML 1.1 boolean is a string"),
    ],
)
def test_header_values_read_alike(reader: str, spelling: str, value: str) -> None:
    """A `set` value is the same header line under both readers."""
    assert rule_of(f"set: {{X-A: {spelling}}}").set_headers == (("X-A", (value,)),)


# --------------------------------------------------------------------------------------------------
# Origin patterns (jub0bs/cors style)


@pytest.mark.parametrize(
    ("pattern", "origin", "matches"),
    [
        pytest.param("http://localhost:5173", "http://localhost:5173", True, id="exact"),
        pytest.param("http://localhost:5173", "http://localhost:5174", False, id="other port"),
        pytest.param("http://localhost:*", "http://localhost:3000", True, id="any port"),
        pytest.param("http://localhost:*", "http://localhost", True, id="any port includes default"),
        pytest.param("http://localhost:*", "https://localhost:3000", False, id="scheme matters"),
        pytest.param("https://*.example.com", "https://app.example.com", True, id="subdomain"),
        pytest.param("https://*.example.com", "https://a.b.example.com", True, id="deep subdomain"),
        pytest.param("https://*.example.com", "https://example.com", False, id="apex not included"),
        pytest.param("https://*.example.com", "https://evilexample.com", False, id="no suffix confusion"),
        pytest.param("https://example.com:443", "https://example.com", True, id="default port normalised"),
        pytest.param("null", "null", True, id="null when allowed"),
    ],
)
def test_origin_pattern(pattern: str, origin: str, matches: bool) -> None:
    """Origin patterns match serialized origins the way jub0bs/cors patterns do."""
    assert parse_origin_pattern(pattern, allow_null=True).matches(origin) is matches


# --------------------------------------------------------------------------------------------------
# Matching


MATCHING = """\
rules:
  - name: puts
    match: {host: api.localhost, filter: "~m PUT"}
  - name: v1 from localhost
    match: {host: ["api.localhost", "*.example.test"], path: /v1/*, origin: "http://localhost:*"}
  - name: rest of example.test
    match: {host: "*.example.test"}
"""


@pytest.mark.parametrize(
    ("host", "path", "origin", "rule"),
    [
        pytest.param("api.localhost", "/v1/items?x=1", "http://localhost:5173", "v1 from localhost", id="all match"),
        pytest.param("API.localhost", "/v1/items", "http://localhost:5173", "v1 from localhost", id="host case"),
        pytest.param("api.localhost", "/v2/items", "http://localhost:5173", None, id="path mismatch"),
        pytest.param("api.localhost", "/v1/items", "http://evil.test", None, id="origin mismatch"),
        pytest.param("a.example.test", "/v1/x", "http://evil.test", "rest of example.test", id="falls through"),
        pytest.param("example.test", "/v1/x", "http://localhost:1", None, id="glob needs a subdomain"),
    ],
)
def test_first_matching_rule_wins(host: str, path: str, origin: str, rule: str | None) -> None:
    """All of a rule's conditions must hold; the first such rule applies."""
    found = parse(MATCHING).match(host, path, origin)
    assert (found.name if found else None) == rule


def test_filter_condition_uses_the_flow() -> None:
    """A mitmproxy filter expression is evaluated against the flow."""
    from mitmproxy.test import tflow

    f = tflow.tflow()
    f.request.method = "PUT"
    rule = parse(MATCHING).match("api.localhost", "/v1/items", "http://localhost:5173", f)
    assert rule is not None and rule.name == "puts"


# --------------------------------------------------------------------------------------------------
# What a rule puts on the wire


def edit_of(body: str, **kw: Any) -> dict[str, list[str]]:
    kw.setdefault("origin", "http://localhost:5173")
    return {k: list(v) for k, v in cors_edit(rule_of(body), **kw).replace}


@pytest.mark.parametrize(
    ("vary", "expected"),
    [
        pytest.param([], ["Origin"], id="no Vary"),
        pytest.param(["Accept-Encoding"], ["Accept-Encoding, Origin"], id="merged, spelling kept"),
        pytest.param(["Accept-Encoding,", "Cookie"], ["Accept-Encoding, Cookie, Origin"], id="several lines"),
    ],
)
def test_reflect_adds_vary_origin(vary: list[str], expected: list[str]) -> None:
    """reflect makes the response depend on Origin, so Origin joins the response's Vary."""
    assert edit_of("allow_origins: reflect\n", preflight=False, vary=vary)["Vary"] == expected


def test_vary_origin_already_present_is_kept() -> None:
    """A Vary that already names Origin (in any case) is left alone."""
    assert "Vary" not in edit_of("allow_origins: reflect\n", preflight=False, vary=["accept-encoding, ORIGIN"])


def test_reflect_echoes_origin() -> None:
    """reflect echoes the request's Origin."""
    h = edit_of("allow_origins: reflect\n", preflight=False)
    assert h["Access-Control-Allow-Origin"] == ["http://localhost:5173"]


def test_origin_not_in_list_gets_no_allow_origin() -> None:
    """An origin the rule does not list gets no Access-Control-Allow-Origin (the browser blocks it)."""
    h = edit_of("allow_origins: ['http://localhost:3000']\n", preflight=False)
    assert h["Access-Control-Allow-Origin"] == []


def test_star_methods_and_headers_are_echoed_with_credentials() -> None:
    """'*' would be a literal under credentials, so the requested method and headers are echoed."""
    h = edit_of(
        "match: {host: localhost}\nallow_origins: reflect\nallow_credentials: true\n"
        "allow_methods: '*'\nallow_headers: '*'\n",
        preflight=True,
        request_method="PATCH",
        request_headers=["x-a"],
    )
    assert (h["Access-Control-Allow-Methods"], h["Access-Control-Allow-Headers"]) == (["PATCH"], ["x-a"])


def test_authorization_listed_explicitly_under_star() -> None:
    """The Fetch standard never lets '*' cover Authorization, so it is listed by name."""
    h = edit_of("allow_headers: '*'\n", preflight=True, request_method="GET", request_headers=["authorization"])
    assert h["Access-Control-Allow-Headers"] == ["*, authorization"]


def test_max_age_goes_on_preflights() -> None:
    """max_age becomes the preflight's Access-Control-Max-Age."""
    assert edit_of("max_age: 600\n", preflight=True, request_method="PUT")["Access-Control-Max-Age"] == ["600"]


@pytest.mark.parametrize(
    ("preflight", "status"),
    [pytest.param(True, 204, id="preflight 404 becomes 204"), pytest.param(False, None, id="actual 404 stays")],
)
def test_only_a_failing_preflight_status_is_replaced(preflight: bool, status: int | None) -> None:
    """A non-2xx answer to a forwarded preflight becomes 204; a real 404 of an actual request stays a 404."""
    edit = cors_edit(rule_of("allow_origins: '*'\n"), preflight=preflight, origin="http://a.test", status=404)
    assert edit.status == status


def test_expose_star_with_credentials_lists_names() -> None:
    """With credentials, expose_headers '*' becomes the response's own header names."""
    h = edit_of(
        "match: {host: localhost}\nallow_credentials: true\nexpose_headers: '*'\n",
        preflight=False,
        response_header_names=["Content-Type", "X-Total-Count", "Set-Cookie"],
    )
    assert h["Access-Control-Expose-Headers"] == ["X-Total-Count"]


def test_strip_and_set_reproduce_a_broken_server() -> None:
    """strip removes headers and set overrides them, after the CORS keys."""
    h = edit_of(
        "strip: [Access-Control-Allow-Origin]\nset: {X-Debug: '1', Access-Control-Allow-Credentials: 'True'}\n",
        preflight=False,
    )
    assert h == {"access-control-allow-origin": [], "X-Debug": ["1"], "Access-Control-Allow-Credentials": ["True"]}


def test_describe_lists_set_and_removed_headers() -> None:
    """HeaderEdit.describe gives the changes as JSON-ready data, for dry runs."""
    edit = cors_edit(rule_of("strip: [X-A]\nset: {X-B: '1'}\n"), preflight=False, origin="http://a.test")
    assert edit.describe() == {"set": {"X-B": ["1"]}, "remove": ["x-a"]}


def test_readme_port_example_matches_only_that_port() -> None:
    """The README's example for matching a port (match.host takes no port) loads and matches only port 8000."""
    from tests.support import make_flow

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("to match a port, use a mitmproxy filter:", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    rules = parse("rules:\n" + block)
    flow = make_flow()  # api.localhost:8000
    assert rules.match("api.localhost", "/v1/items", "http://localhost:5173", flow) is not None
    flow.request.port = 9000
    assert rules.match("api.localhost", "/v1/items", "http://localhost:5173", flow) is None


# -- the host index -----------------------------------------------------------------------------------------------

_LABELS = st.sampled_from(["a", "api", "b", "example", "test", "localhost", "svc1", "x-1"])
_HOSTS = st.lists(_LABELS, min_size=1, max_size=4).map(".".join)
_GLOBS = st.one_of(
    _HOSTS,  # exact
    _HOSTS.map(lambda h: "*." + h),  # suffix
    _HOSTS.map(lambda h: h.replace("a", "*", 1)),  # a '*' elsewhere
    _HOSTS.map(lambda h: h.replace("b", "?", 1)),
    _HOSTS.map(lambda h: "[ab]" + h),
    st.just("*"),
)


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(st.one_of(st.none(), st.lists(_GLOBS, min_size=1, max_size=3)), min_size=1, max_size=12), host=_HOSTS
)
def test_host_index_finds_exactly_what_trying_every_rule_finds(rules: list[list[str] | None], host: str) -> None:
    """The index (exact names and `*.suffix` globs by lookup, other globs tried) admits the same rules, in the same
    order, as matching every rule's host globs with fnmatch, as the rules are documented to."""
    import fnmatch

    lines = ["rules:"]
    for i, globs in enumerate(rules):
        lines += [f"  - name: r{i}", "    strip: [x-a]", "    match:", "      path: /*"]
        if globs is not None:
            lines.append(f"      host: {json.dumps(globs)}")
    ruleset = parse_rules("\n".join(lines) + "\n", "index.yaml", compile_filter)
    expected = [
        r.name
        for r, globs in zip(ruleset.rules, rules, strict=True)
        if globs is None or any(fnmatch.fnmatchcase(host, g) for g in globs)
    ]
    assert [r.name for r in ruleset._candidates(host)] == expected


def test_a_reload_leaves_the_collector_and_the_switch_interval_as_it_found_them(tmp_path: Path) -> None:
    """A reload pauses the garbage collector and shortens the GIL's switch interval while its worker thread reads
    the file (so the event loop is not stalled); afterwards both are as they were, and the new rules are in."""
    import asyncio
    import concurrent.futures
    import gc
    import os
    import time

    from mitmcors.rulefile import RuleFile

    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: old\n    strip: [x-a]\n")
    os.utime(path, (time.time() - 10, time.time() - 10))
    rule_file = RuleFile()
    rule_file.load(str(path))
    path.write_text("rules:\n  - name: new\n    strip: [x-a]\n")

    async def reload() -> None:
        for _ in range(3):  # the settle check wants the same file twice
            await rule_file.check_async()

    interval, enabled = sys.getswitchinterval(), gc.isenabled()
    # A thread of its own: the session's Playwright (tests/conftest.py) may run an event loop in this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(reload())).result()
    assert rule_file.rules is not None and [r.name for r in rule_file.rules.rules] == ["new"]
    assert (sys.getswitchinterval(), gc.isenabled()) == (interval, enabled)


def test_a_replaced_rule_set_is_dismantled_piece_by_piece() -> None:
    """The rules a reload replaced are freed a piece at a time: `dismantle` empties the index and the per-host
    cache and drops the rules one by one, pausing in between (each pause lets the event loop serve flows)."""
    text = "rules:\n" + "".join(
        f"  - name: r{i}\n    strip: [x-a]\n    match:\n      host: [a{i}.test, '*.b.test']\n" for i in range(3)
    )
    ruleset = parse_rules(text, "r.yaml", compile_filter)
    assert [r.name for r in ruleset._candidates("x.b.test")] == ["r0", "r1", "r2"]
    ruleset._by_host.clear()
    assert sum(1 for _ in ruleset.dismantle()) >= 3  # a pause per rule at least
    assert ruleset.rules == ()
    assert ruleset._candidates("a0.test") == ()  # the index is empty now
