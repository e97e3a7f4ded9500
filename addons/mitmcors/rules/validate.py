"""Validate a rule file into a `RuleSet`, jub0bs/cors style: one validator per key, every error collected at once,
each with its line, a machine-readable code, the offending value and the fix.

A validator takes its key's YAML node and the `_Scope` of the rule it is in, and returns the parsed value, or
None after recording one error per bad value in the scope (so one bad key never hides another). Checks that
involve several keys (credentials with `*` or `reflect`) run after all keys are read.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from mitmcors import fetchspec
from mitmcors.rules.errors import Code, RuleError, RuleFileError
from mitmcors.rules.model import (
    Filter,
    OriginPattern,
    OriginPatternError,
    Regex,
    Rule,
    RuleSet,
    Wild,
    parse_origin_pattern,
)
from mitmcors.rules.source import MAX_BYTES, Located, YamlError, load, release

TOP_KEYS: Final = ("rules", "dry_run")
LOCAL_HOSTS: Final = ("localhost", "127.0.0.1", "::1", "[::1]")
# Spellings YAML 1.1 reads as booleans and YAML 1.2 as strings (compared lowercased).
_YAML11_BOOLEANS: Final = frozenset({"yes", "no", "on", "off", "y", "n"})
# Whole numbers with a leading zero: octal in YAML 1.1, decimal in YAML 1.2 (the reader leaves them strings).
_LEADING_ZERO: Final = re.compile(r"[-+]?0[0-9]+")
_HOST_GLOB: Final = re.compile(r"[a-z0-9*?\[\]!.\-_:]+")
_METHODS: Final = ("DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT")


@dataclass
class _Scope:
    """The rule (or file) being validated: where its errors go, and what its validators need from outside."""

    where: str
    errors: list[RuleError]
    warnings: list[str]
    compile_filter: Callable[[str], Any]
    key: str = ""
    insecure_ok: bool = False  # dangerously_allow_insecure, read ahead: allow_origins needs it
    errors_before: int = field(init=False)

    def __post_init__(self) -> None:
        self.errors_before = len(self.errors)

    @property
    def failed(self) -> bool:
        """Whether an error was recorded since the scope began."""
        return len(self.errors) > self.errors_before

    def error(self, code: Code, line: int, value: object, problem: str, fix: str = "", key: str = "") -> None:
        self.errors.append(
            RuleError(
                code=code, line=line, where=self.where, key=key or self.key, value=value, problem=problem, fix=fix
            )
        )


Validator = Callable[[Located, _Scope], Any]


# --------------------------------------------------------------------------------------------------
# Building blocks


def _strings(node: Located, s: _Scope, key: str = "") -> list[tuple[str, int]] | None:
    """A string or a non-empty list of strings, each with its line."""
    if isinstance(node.value, str):
        return [(node.value, node.line)]
    if not isinstance(node.value, list):
        s.error(
            Code.NOT_A_STRING,
            node.line,
            node.value,
            f"expected a string or a list of strings, got {node.value!r}",
            key=key,
        )
        return None
    if not node.value:
        s.error(Code.EMPTY_LIST, node.line, [], "the list is empty", "list at least one value or remove the key", key)
        return None
    out = []
    for item in node.value:
        if not isinstance(item.value, str):
            s.error(
                Code.NOT_A_STRING,
                item.line,
                item.value,
                f"expected a string, got {item.value!r}",
                "quote the value",
                key,
            )
            return None
        out.append((item.value, item.line))
    return out


def _tokens(node: Located, s: _Scope, what: str) -> Wild | tuple[str, ...] | None:
    """`*`, `reflect`, or one or more HTTP tokens (methods or header names)."""
    if node.value in ("*", "reflect"):
        return node.value  # type: ignore[no-any-return]
    values = _strings(node, s)
    if values is None:
        return None
    out = []
    for value, line in values:
        v = value.strip()
        if v in ("*", "reflect") and len(values) > 1:
            s.error(
                Code.MIXED_WILDCARD,
                line,
                value,
                f"{v!r} cannot be mixed with names",
                f"write {s.key}: {v!r} on its own",
            )
        elif not fetchspec.is_token(v):
            s.error(
                Code.INVALID_TOKEN, line, value, f"{value!r} is not a valid {what}", f"write one {what} per list item"
            )
        elif what == "method" and v != v.upper() and v.upper() in _METHODS:
            s.error(
                Code.LOWERCASE_METHOD,
                line,
                value,
                f"{value!r} never matches: fetch() upper-cases {v.upper()} (only DELETE, GET, HEAD, OPTIONS, POST "
                "and PUT; 'patch' stays 'patch') and browsers compare methods case-sensitively",
                f"write {v.upper()!r}",
            )
        else:
            out.append(v)
    return tuple(out) if len(out) == len(values) else None


def _origin_patterns(values: list[tuple[str, int]], s: _Scope, *, allow_null: bool) -> tuple[OriginPattern, ...]:
    """Compile origin patterns, reporting each bad one at its own line."""
    patterns = []
    for raw, line in values:
        try:
            patterns.append(parse_origin_pattern(raw, allow_null=allow_null))
        except OriginPatternError as e:
            s.error(e.code, line, raw, f"{raw!r}: {e.problem}", e.fix)
    return tuple(patterns)


def _globs(patterns: Sequence[str], flags: int = 0) -> Regex | None:
    """One regex for several shell-style globs, or None for no glob (no condition)."""
    if not patterns:
        return None
    return Regex.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns), flags)


def _run(mapping: dict[Any, Located], table: Mapping[str, Validator], s: _Scope, prefix: str = "") -> dict[str, Any]:
    """Run the validator of each key present; returns the keys whose value is valid, with the parsed value."""
    parsed: dict[str, Any] = {}
    for key, validate in table.items():
        if key in mapping:
            s.key = prefix + key
            value = validate(mapping[key], s)
            if value is not None:
                parsed[key] = value
    s.key = ""
    return parsed


def _unknown_keys(mapping: dict[Any, Located], known: Sequence[str], s: _Scope, context: str) -> None:
    """Report each key of `mapping` that is not `known`, with a did-you-mean."""
    for key, node in mapping.items():
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"{context} keys are: {', '.join(known)}"
        s.error(Code.UNKNOWN_KEY, node.key_line or node.line, key, f"unknown key {str(key)!r}", fix, str(key))


# --------------------------------------------------------------------------------------------------
# One validator per key


def _boolean(node: Located, s: _Scope) -> bool | None:
    if isinstance(node.value, bool):
        return node.value
    if isinstance(node.value, str) and node.value.lower() in _YAML11_BOOLEANS:
        problem = f"{node.value!r} is a boolean in YAML 1.1 only; rule files are read as YAML 1.2, where it is a string"
    else:
        problem = f"expected true or false, got {node.value!r}"
    s.error(Code.INVALID_BOOLEAN, node.line, node.value, problem, "write true or false")
    return None


def _host(node: Located, s: _Scope) -> tuple[str, ...] | None:
    good = []
    for host, line in _strings(node, s) or []:
        h = host.strip().lower()
        if "://" in h or "/" in h:
            bare = h.split("://", 1)[-1].split("/", 1)[0]
            s.error(Code.HOST_IS_URL, line, host, f"{host!r} is a URL, not a host glob", f"write {bare!r}")
        elif not _HOST_GLOB.fullmatch(h) or (":" in h and not h.startswith("[")):
            s.error(
                Code.INVALID_HOST_GLOB,
                line,
                host,
                f"{host!r} is not a host glob",
                "write a host name with * and ? wildcards, without port (match ports with match.filter)",
            )
        else:
            good.append(h)
    return tuple(good) or None


def _path(node: Located, s: _Scope) -> tuple[str, ...] | None:
    good = []
    for path, line in _strings(node, s) or []:
        if path.startswith(("/", "*")):
            good.append(path)
        else:
            s.error(Code.RELATIVE_PATH, line, path, f"{path!r} does not start with '/'", f"write '/{path}'")
    return tuple(good) or None


def _origin(node: Located, s: _Scope) -> tuple[OriginPattern, ...] | None:
    values = [(raw, line) for raw, line in _strings(node, s) or [] if raw.strip() != "*"]
    return _origin_patterns(values, s, allow_null=True)


def _filter(node: Located, s: _Scope) -> Callable[[Any], bool] | None:
    if not isinstance(node.value, str) or not node.value.strip():
        s.error(Code.NOT_A_STRING, node.line, node.value, f"expected a mitmproxy filter expression, got {node.value!r}")
        return None
    try:
        return s.compile_filter(node.value)  # type: ignore[no-any-return]
    except ValueError as e:
        s.error(
            Code.INVALID_FILTER,
            node.line,
            node.value,
            f"{node.value!r} is not a valid mitmproxy filter expression ({e})",
            "see `mitmproxy --help` / the ~ operators in mitmproxy's docs, e.g. '~m PUT & ~d api.localhost'",
        )
        return None


_MATCH_VALIDATORS: Final[Mapping[str, Validator]] = {"host": _host, "path": _path, "origin": _origin, "filter": _filter}
MATCH_KEYS: Final = tuple(_MATCH_VALIDATORS)


@dataclass(frozen=True, slots=True)
class _Match:
    """A rule's conditions, compiled; `hosts` only serves the credentials check."""

    hosts: tuple[str, ...] = ()
    host_regex: Regex | None = None
    path_regex: Regex | None = None
    origins: tuple[OriginPattern, ...] = ()
    filter: Callable[[Any], bool] | None = None

    @property
    def local_hosts_only(self) -> bool:
        return bool(self.hosts) and all(h in LOCAL_HOSTS or h.endswith(".localhost") for h in self.hosts)


def _match(node: Located, s: _Scope) -> _Match | None:
    if not isinstance(node.value, dict):
        s.error(Code.NOT_A_MAPPING, node.line, node.value, f"expected a mapping of conditions, got {node.value!r}")
        return None
    _unknown_keys(node.value, MATCH_KEYS, s, "match")
    parsed = _run(node.value, _MATCH_VALIDATORS, s, "match.")
    hosts = parsed.get("host", ())
    return _Match(
        hosts=hosts,
        host_regex=_globs(hosts, re.IGNORECASE),
        path_regex=_globs(parsed.get("path", ())),
        origins=parsed.get("origin", ()),
        filter=parsed.get("filter"),
    )


def _allow_origins(node: Located, s: _Scope) -> Wild | tuple[OriginPattern, ...] | None:
    if node.value in ("*", "reflect"):
        return node.value  # type: ignore[no-any-return]
    values = []
    for raw, line in _strings(node, s) or []:
        if raw.strip() in ("*", "reflect"):
            s.error(
                Code.MIXED_WILDCARD,
                line,
                raw,
                f"{raw!r} cannot be mixed with origins",
                f"write allow_origins: {raw.strip()!r} on its own",
            )
        else:
            values.append((raw, line))
    return _origin_patterns(values, s, allow_null=s.insecure_ok)


def _allow_methods(node: Located, s: _Scope) -> Wild | tuple[str, ...] | None:
    return _tokens(node, s, "method")


def _header_names(node: Located, s: _Scope) -> Wild | tuple[str, ...] | None:
    return _tokens(node, s, "header name")


def _expose_headers(node: Located, s: _Scope) -> Wild | tuple[str, ...] | None:
    value = _header_names(node, s)
    if value == "reflect":
        s.error(
            Code.REFLECT_NOT_ALLOWED, node.line, value, "'reflect' has no meaning here", "list header names, or '*'"
        )
        return None
    return value


def _max_age(node: Located, s: _Scope) -> int | None:
    value = node.value
    if isinstance(value, str) and _LEADING_ZERO.fullmatch(value):
        digits = value.lstrip("+-").lstrip("0") or "0"
        octal = f" or 0o{digits} (octal)" if set(digits) <= set("01234567") else ""
        s.error(
            Code.INVALID_MAX_AGE,
            node.line,
            value,
            f"{value!r} has a leading zero, which makes it octal in YAML 1.1 and decimal in YAML 1.2",
            f"write {int(value)} (decimal){octal}",
        )
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        s.error(
            Code.INVALID_MAX_AGE,
            node.line,
            value,
            f"expected seconds as a whole number ≥ 0, got {value!r}",
            "write e.g. max_age: 600",
        )
        return None
    if value > 7200:
        s.warnings.append(
            f"{s.where}: max_age {value} is above Chromium's cap of 7200 s"
            + (" and Firefox's of 86400 s" if value > 86400 else "")
            + "; browsers cache the preflight for less"
        )
    return value


def _preflight(node: Located, s: _Scope) -> str | None:
    if node.value in ("answer", "forward"):
        return node.value  # type: ignore[no-any-return]
    s.error(
        Code.INVALID_PREFLIGHT,
        node.line,
        node.value,
        f"expected 'answer' or 'forward', got {node.value!r}",
        "answer: the proxy replies 204 itself; forward: the server's answer is fixed",
    )
    return None


def _strip(node: Located, s: _Scope) -> tuple[str, ...] | None:
    names = _header_names(node, s)
    if isinstance(names, str):
        s.error(Code.INVALID_TOKEN, node.line, names, f"{names!r} is not a header name", "list header names")
        return None
    return tuple(n.lower() for n in names) if names is not None else None


def _set(node: Located, s: _Scope) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
    if not isinstance(node.value, dict):
        s.error(Code.NOT_A_MAPPING, node.line, node.value, f"expected a mapping of header: value, got {node.value!r}")
        return None
    pairs: list[tuple[str, tuple[str, ...]]] = []
    for name, value in node.value.items():
        if not isinstance(name, str) or not fetchspec.is_token(name):
            s.error(Code.INVALID_TOKEN, value.key_line, name, f"{name!r} is not a header name")
        elif value.value is None:
            pairs.append((name, ()))
        elif isinstance(value.value, int) and not isinstance(value.value, bool):
            pairs.append((name, (str(value.value),)))
        elif (lines := _strings(value, s, f"set.{name}")) is not None:
            bad = [(v, line) for v, line in lines if _FORBIDDEN_IN_VALUE.search(v)]
            for v, line in bad:
                s.error(
                    Code.INVALID_HEADER_VALUE,
                    line,
                    v,
                    f"{v!r} contains a line break or NUL, which would put extra header lines on the wire",
                    "write the value on one line; set each header under its own name",
                    f"set.{name}",
                )
            if not bad:
                pairs.append((name, tuple(v for v, _ in lines)))
    return tuple(pairs)


# [RFC 9110 §5.5] field values never hold CR, LF or NUL (header injection).
_FORBIDDEN_IN_VALUE: Final = re.compile(r"[\r\n\x00]")


# Keys that make a rule rewrite CORS headers; a rule with only strip/set reproduces a broken server instead.
_CORS_VALIDATORS: Final[Mapping[str, Validator]] = {
    "allow_origins": _allow_origins,
    "allow_credentials": _boolean,
    "allow_methods": _allow_methods,
    "allow_headers": _header_names,
    "expose_headers": _expose_headers,
    "max_age": _max_age,
    "preflight": _preflight,
}
_RULE_VALIDATORS: Final[Mapping[str, Validator]] = {
    "match": _match,
    **_CORS_VALIDATORS,
    "strip": _strip,
    "set": _set,
    "dry_run": _boolean,
    "enabled": _boolean,
    "dangerously_allow_invalid": _boolean,
    "dangerously_allow_insecure": _boolean,
}
CORS_KEYS: Final = tuple(_CORS_VALIDATORS)
RULE_KEYS: Final = ("name", *_RULE_VALIDATORS)


# --------------------------------------------------------------------------------------------------
# Rules and the file


def _name(d: dict[Any, Located], index: int, line: int, s: _Scope, names: dict[str, int]) -> str:
    """The rule's name (or `#index`); also sets where its errors are reported: "rule 2 ('api')"."""
    node = d.get("name")
    if node is None or not isinstance(node.value, str) or not node.value.strip():
        s.error(
            Code.MISSING_NAME,
            line,
            None if node is None else node.value,
            "every rule needs a name",
            "add e.g. name: 'local API'",
            "name",
        )
        return f"#{index}"
    name: str = node.value.strip()
    s.where = f"rule {index} ({name!r})"
    if name in names:
        s.error(
            Code.DUPLICATE_NAME,
            node.line,
            name,
            f"duplicate name {name!r} (also on line {names[name]})",
            "give each rule its own name",
            "name",
        )
    names[name] = node.line
    return name


def _combinations(d: dict[Any, Located], parsed: dict[str, Any], line: int, s: _Scope) -> None:
    """Refuse what browsers always refuse, and insecure setups, unless the rule opts in (as jub0bs/cors does)."""
    if not parsed.get("allow_credentials"):
        return
    origins = parsed.get("allow_origins", "reflect")
    line = d["allow_origins"].line if "allow_origins" in d else line
    if origins == "*" and not parsed.get("dangerously_allow_invalid"):
        s.error(
            Code.CREDENTIALS_WITH_WILDCARD,
            line,
            origins,
            "browsers refuse 'Access-Control-Allow-Origin: *' together with credentials",
            "use allow_origins: reflect or a list of origins (or set 'dangerously_allow_invalid: true' to "
            "reproduce the bug on purpose)",
            "allow_origins",
        )
    match: _Match = parsed.get("match", _Match())
    if origins == "reflect" and not s.insecure_ok and not match.local_hosts_only:
        s.error(
            Code.INSECURE_REFLECT_WITH_CREDENTIALS,
            line,
            origins,
            "reflecting any origin with credentials lets every website read this API as the logged-in user"
            + ("" if match.hosts else " (the rule matches every host)"),
            "list the frontend origins (e.g. ['http://localhost:*']), restrict match.host to local hosts, "
            "or set 'dangerously_allow_insecure: true'",
            "allow_origins",
        )


def _rule(index: int, node: Located, file: _Scope, names: dict[str, int], dry_run: bool) -> Rule | None:
    """One validated rule, or None when it has errors (recorded) or is disabled."""
    s = _Scope(f"rule {index}", file.errors, file.warnings, file.compile_filter)
    if not isinstance(node.value, dict):
        s.error(
            Code.NOT_A_MAPPING,
            node.line,
            node.value,
            f"expected a mapping with name, match, allow_origins ..., got {node.value!r}",
        )
        return None
    d: dict[Any, Located] = node.value
    name = _name(d, index, node.line, s, names)
    s.insecure_ok = d.get("dangerously_allow_insecure", Located(False, 0)).value is True
    _unknown_keys(d, RULE_KEYS, s, "rule")
    parsed = _run(d, _RULE_VALIDATORS, s)
    _combinations(d, parsed, node.line, s)
    if s.failed or not parsed.get("enabled", True):
        return None
    match: _Match = parsed.get("match", _Match())
    return Rule(
        name=name,
        hosts=tuple(h.lower() for h in match.hosts),
        host_regex=match.host_regex,
        path_regex=match.path_regex,
        origins=match.origins,
        filter=match.filter,
        rewrites_cors=any(k in d for k in CORS_KEYS),
        allow_origins=parsed.get("allow_origins", "reflect"),
        allow_credentials=parsed.get("allow_credentials", False),
        allow_methods=parsed.get("allow_methods", "reflect"),
        allow_headers=parsed.get("allow_headers", "reflect"),
        expose_headers=parsed.get("expose_headers"),
        max_age=parsed.get("max_age"),
        preflight=parsed.get("preflight", "forward"),
        strip=parsed.get("strip", ()),
        set_headers=parsed.get("set", ()),
        dry_run=parsed.get("dry_run", False) or dry_run,
        dangerously_allow_invalid=parsed.get("dangerously_allow_invalid", False),
    )


def _decode(data: bytes, path: str) -> str:
    if len(data) > MAX_BYTES:  # checked before decoding: the reader may have cut the file mid-character
        raise RuleFileError(
            path,
            [
                RuleError(
                    code=Code.TOO_LARGE,
                    line=1,
                    problem=f"the file is larger than the {MAX_BYTES:,} bytes a rule file may have",
                    fix="split it, or match more flows per rule",
                )
            ],
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RuleFileError(
            path,
            [
                RuleError(
                    code=Code.NOT_UTF8,
                    line=data.count(b"\n", 0, e.start) + 1,
                    value=data[e.start : e.start + 1],
                    problem=f"byte 0x{data[e.start]:02x} is not UTF-8",
                    fix="save the file as UTF-8",
                )
            ],
        ) from None


def parse_rules(text: str | bytes, path: str, compile_filter: Callable[[str], Any]) -> RuleSet:
    """Parse and validate a rule file (its text, or its bytes as read from disk); all problems are reported
    together.

    Raises:
        RuleFileError: with every error found, each with its code, line and fix.
    """
    try:
        root, duplicates = load(_decode(text, path) if isinstance(text, bytes) else text)
    except YamlError as e:
        raise RuleFileError(path, [RuleError(code=Code(e.code), line=e.line, problem=str(e), fix=e.fix)]) from e
    try:
        return _validate(root, duplicates, path, compile_filter)
    finally:
        if root is not None:
            release(root)  # a node at a time: see `release`


def _validate(
    root: Located | None, duplicates: list[tuple[str, int, int]], path: str, compile_filter: Callable[[str], Any]
) -> RuleSet:

    @functools.cache  # big files repeat their filters
    def compile_once(text: str) -> Filter:
        return Filter.compile(text, compile_filter)

    file = _Scope("", [], [], compile_once)
    for key, first, second in duplicates:
        file.error(
            Code.DUPLICATE_KEY, second, key, f"duplicate key {key!r} (first on line {first})", "keep one of them", key
        )
    if root is None:
        raise RuleFileError(
            path,
            [
                RuleError(
                    code=Code.NOT_A_RULE_FILE,
                    line=1,
                    problem="the file is empty (an editor's save caught half-way looks like this too)",
                    fix="to turn every rule off on purpose, write 'rules: []'",
                )
            ],
        )
    if not isinstance(root.value, dict) or "rules" not in root.value:
        raise RuleFileError(
            path,
            [
                RuleError(
                    code=Code.NOT_A_RULE_FILE,
                    line=root.line,
                    value=root.value,
                    problem="a rule file is a mapping with a 'rules' list",
                    fix="start with 'rules:' (to turn every rule off on purpose, write 'rules: []')",
                )
            ],
        )
    _unknown_keys(root.value, TOP_KEYS, file, "top-level")
    dry_run = _run(root.value, {"dry_run": _boolean}, file).get("dry_run", False)
    rules_node: Located = root.value["rules"]
    if rules_node.value is None:
        file.error(
            Code.NOT_A_LIST,
            rules_node.key_line or rules_node.line,
            None,
            "'rules' has no list (an editor's save caught half-way looks like this too)",
            "write each rule as '- name: ...', or 'rules: []' to turn every rule off on purpose",
            "rules",
        )
        raise RuleFileError(path, file.errors)
    if not isinstance(rules_node.value, list):
        file.error(
            Code.NOT_A_LIST,
            rules_node.line,
            rules_node.value,
            f"expected a list of rules, got {rules_node.value!r}",
            "write each rule as '- name: ...'",
            "rules",
        )
        raise RuleFileError(path, file.errors)
    names: dict[str, int] = {}
    rules = [
        rule
        for i, node in enumerate(rules_node.value, start=1)
        if (rule := _rule(i, node, file, names, dry_run)) is not None
    ]
    for i, rule in enumerate(rules[:-1]):
        if rule.matches_everything:
            file.warnings.append(
                f"rule {rule.name!r} matches every flow, so the {len(rules) - i - 1} rule(s) after it never apply"
            )
            break
    if file.errors:
        raise RuleFileError(path, file.errors)
    return RuleSet(tuple(rules), tuple(file.warnings))
