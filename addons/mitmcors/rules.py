"""The rule file: parse and validate it (every error at once, with file:line and the fix), match flows, and
compute the Access-Control-* headers a rule wants on a response.

Parsing is pure and raises `RuleFileError`; the addon wraps it once. Parsed rules are frozen and carry
their compiled globs, patterns and mitmproxy filter, so nothing is compiled per flow.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from mitmcors import fetchspec
from mitmcors.yamlsource import Located, YamlError, load

# Keys that make a rule rewrite CORS headers; a rule with only strip/set reproduces a broken server instead.
CORS_KEYS: Final = (
    "allow_origins",
    "allow_credentials",
    "allow_methods",
    "allow_headers",
    "expose_headers",
    "max_age",
    "preflight",
)
RULE_KEYS: Final = (
    "name",
    "match",
    *CORS_KEYS,
    "strip",
    "set",
    "dry_run",
    "enabled",
    "dangerously_allow_invalid",
    "dangerously_allow_insecure",
)
MATCH_KEYS: Final = ("host", "path", "origin", "filter")
TOP_KEYS: Final = ("rules", "dry_run")
LOCAL_HOSTS: Final = ("localhost", "127.0.0.1", "::1", "[::1]")

Wild = Literal["*", "reflect"]


# --------------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True, slots=True)
class RuleError:
    """One problem in a rule file: where, what, and how to fix it."""

    line: int
    where: str  # "rule 2 ('api')" or "" for file-level problems
    key: str
    problem: str
    fix: str

    def format(self, path: str) -> str:
        where = f" {self.where}:" if self.where else ""
        key = f" {self.key}:" if self.key else ""
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{path}:{self.line}:{where}{key} {self.problem}.{fix}"


class RuleFileError(ValueError):
    """A rule file with one or more errors; str() lists them all, one per line."""

    def __init__(self, path: str, errors: Sequence[RuleError]) -> None:
        self.path = path
        self.errors = tuple(sorted(errors, key=lambda e: e.line))
        super().__init__("\n".join(e.format(path) for e in self.errors))


# --------------------------------------------------------------------------------------------------
# Patterns


_HOST_GLOB: Final = re.compile(r"[a-z0-9*?\[\]!.\-_:]+")
_ORIGIN_PATTERN: Final = re.compile(r"(https?)://([a-z0-9*.\-_]+|\[[0-9a-f:.]+\])(?::(\*|[0-9]{1,5}))?")


@dataclass(frozen=True, slots=True)
class OriginPattern:
    """An origin or a jub0bs/cors-style pattern: `https://*.example.com` (any subdomain depth),
    `http://localhost:*` (any port). Compiled once; `matches` compares serialized origins."""

    raw: str
    regex: re.Pattern[str]

    def matches(self, origin: str) -> bool:
        return self.regex.fullmatch(origin) is not None


@functools.lru_cache(maxsize=4096)
def parse_origin_pattern(raw: str, *, allow_null: bool) -> OriginPattern:
    """Compile one origin pattern.

    Raises:
        ValueError: the pattern is not `scheme://host[:port]` with at most a leading `*.` and a `:*` port.
    """
    value = raw.strip()
    if value == "null":
        if not allow_null:
            raise ValueError(
                "the 'null' origin is sent by sandboxed iframes, file: pages and redirected requests, so "
                "allowing it lets any of those read responses|remove it, or set 'dangerously_allow_insecure: "
                "true' to reproduce such a server on purpose"
            )
        return OriginPattern(raw, re.compile(r"null"))
    if value != value.lower():
        raise ValueError(f"origins are lowercase on the wire|write {value.lower()!r}")
    if value.endswith("/") or value.count("/") > 2:
        stripped = "/".join(value.split("/")[:3])
        raise ValueError(f"an origin has no path or trailing '/'|write {stripped!r}")
    m = _ORIGIN_PATTERN.fullmatch(value)
    if m is None:
        raise ValueError(
            "not an origin pattern|write scheme://host[:port], e.g. 'http://localhost:5173', "
            "'https://*.example.com' or 'http://localhost:*'"
        )
    scheme, host, port = m.group(1), m.group(2), m.group(3)
    if "*" in host:
        if not host.startswith("*.") or "*" in host[2:]:
            raise ValueError("a '*' is only allowed as the first label|write e.g. 'https://*.example.com'")
        if "." not in host[2:] and host[2:] != "localhost":
            raise ValueError(
                f"'*.{host[2:]}' would match every site under a public suffix|name the site: "
                f"'{scheme}://*.example.{host[2:]}'"
            )
    host_re = re.escape(host).replace(r"\*\.", r"(?:[a-z0-9\-_]+\.)+")
    default = fetchspec.DEFAULT_PORTS[scheme]
    if port == "*":
        port_re = r"(?::[0-9]{1,5})?"
    elif port is None or int(port) == default:
        port_re = ""
    else:
        port_re = f":{port}"
    return OriginPattern(raw, re.compile(f"{scheme}://{host_re}{port_re}"))


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


def _is_local_glob(pattern: str) -> bool:
    return pattern in LOCAL_HOSTS or pattern.endswith(".localhost")


# --------------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True, slots=True)
class Rule:
    """One validated rule. Value objects only; no per-flow state."""

    name: str
    line: int
    hosts: tuple[str, ...] = ()
    host_regex: re.Pattern[str] | None = None
    path_regex: re.Pattern[str] | None = None
    origins: tuple[OriginPattern, ...] = ()
    filter_text: str = ""
    filter: Callable[[Any], bool] | None = None
    rewrites_cors: bool = False
    allow_origins: Wild | tuple[OriginPattern, ...] = "reflect"
    allow_credentials: bool = False
    allow_methods: Wild | tuple[str, ...] = "reflect"
    allow_headers: Wild | tuple[str, ...] = "reflect"
    expose_headers: Literal["*"] | tuple[str, ...] | None = None
    max_age: int | None = None
    preflight: Literal["answer", "forward"] = "forward"
    strip: tuple[str, ...] = ()
    set_headers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dry_run: bool = False
    dangerously_allow_invalid: bool = False

    def matches_request(self, host: str, path: str, origin: str) -> bool:
        """Host, path and origin conditions (the filter needs the flow: see `RuleSet.match`)."""
        if self.host_regex is not None and not self.host_regex.match(host):
            return False
        if self.path_regex is not None and not self.path_regex.match(path.split("?", 1)[0]):
            return False
        return not self.origins or any(p.matches(origin) for p in self.origins)


@dataclass(frozen=True)
class RuleSet:
    """The rules of one file, in order: the first rule that matches a flow wins."""

    path: str
    rules: tuple[Rule, ...]
    warnings: tuple[str, ...] = ()
    _by_host: OrderedDict[str, tuple[Rule, ...]] = field(default_factory=OrderedDict, compare=False, repr=False)

    def candidates(self, host: str) -> tuple[Rule, ...]:
        """Rules whose host condition admits `host`, computed once per host (bounded cache)."""
        host = host.lower()
        cached = self._by_host.get(host)
        if cached is not None:
            return cached
        found = tuple(r for r in self.rules if r.host_regex is None or r.host_regex.match(host))
        self._by_host[host] = found
        if len(self._by_host) > 4096:
            self._by_host.popitem(last=False)
        return found

    def match(self, host: str, path: str, origin: str, flow: Any = None) -> Rule | None:
        """The first rule whose every condition holds for this request."""
        path = path.split("?", 1)[0]
        for rule in self.candidates(host):
            if rule.path_regex is not None and not rule.path_regex.match(path):
                continue
            if rule.origins and not any(p.matches(origin) for p in rule.origins):
                continue
            if rule.filter is not None and (flow is None or not rule.filter(flow)):
                continue
            return rule
        return None


# --------------------------------------------------------------------------------------------------
# Parsing


class _Collector:
    def __init__(self) -> None:
        self.errors: list[RuleError] = []
        self.warnings: list[str] = []

    def error(self, line: int, where: str, key: str, problem: str, fix: str = "") -> None:
        self.errors.append(RuleError(line, where, key, problem, fix))

    def origin_patterns(
        self, values: list[tuple[str, int]], where: str, key: str, *, allow_null: bool
    ) -> tuple[OriginPattern, ...]:
        """Compile origin patterns, reporting each bad one at its line (messages are 'problem|fix')."""
        patterns = []
        for raw, line in values:
            try:
                patterns.append(parse_origin_pattern(raw, allow_null=allow_null))
            except ValueError as e:
                problem, _, fix = str(e).partition("|")
                self.error(line, where, key, f"{raw!r}: {problem}", fix)
        return tuple(patterns)


def _strings(node: Located, c: _Collector, where: str, key: str) -> list[tuple[str, int]] | None:
    """A string or a list of strings, each with its line."""
    if isinstance(node.value, str):
        return [(node.value, node.line)]
    if isinstance(node.value, list):
        out = []
        for item in node.value:
            if not isinstance(item.value, str):
                c.error(item.line, where, key, f"expected a string, got {item.value!r}", "quote the value")
                return None
            out.append((item.value, item.line))
        if not out:
            c.error(node.line, where, key, "the list is empty", "list at least one value or remove the key")
            return None
        return out
    c.error(node.line, where, key, f"expected a string or a list of strings, got {node.value!r}")
    return None


def _tokens(node: Located, c: _Collector, where: str, key: str, what: str) -> Wild | tuple[str, ...] | None:
    if isinstance(node.value, str) and node.value in ("*", "reflect"):
        return node.value  # type: ignore[return-value]
    values = _strings(node, c, where, key)
    if values is None:
        return None
    out = []
    ok = True
    for value, line in values:
        v = value.strip()
        if v in ("*", "reflect") and len(values) > 1:
            c.error(line, where, key, f"{v!r} cannot be mixed with names", f"write {key}: {v!r} on its own")
            ok = False
        elif not fetchspec._TOKEN.fullmatch(v):
            c.error(line, where, key, f"{value!r} is not a valid {what}", f"write one {what} per list item")
            ok = False
        elif what == "method" and v != v.upper() and v.upper() in ("DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"):
            c.error(
                line,
                where,
                key,
                f"{value!r} never matches: browsers send this method upper-cased and compare case-sensitively",
                f"write {v.upper()!r}",
            )
            ok = False
        else:
            out.append(v)
    if not ok:
        return None
    return tuple(out)


def _bool(node: Located, c: _Collector, where: str, key: str) -> bool | None:
    if isinstance(node.value, bool):
        return node.value
    c.error(node.line, where, key, f"expected true or false, got {node.value!r}")
    return None


def _unknown_key(c: _Collector, node: Located, where: str, key: Any, known: Sequence[str], context: str) -> None:
    close = difflib.get_close_matches(str(key), known, n=1)
    fix = f"did you mean {close[0]!r}?" if close else f"{context} keys are: {', '.join(known)}"
    c.error(node.key_line or node.line, where, str(key), f"unknown key {str(key)!r}", fix)


def _parse_match(node: Located, c: _Collector, where: str, compile_filter: Callable[[str], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(node.value, dict):
        c.error(node.line, where, "match", f"expected a mapping of conditions, got {node.value!r}")
        return out
    for key, sub in node.value.items():
        if key not in MATCH_KEYS:
            _unknown_key(c, sub, where, key, MATCH_KEYS, "match")
    if "host" in node.value:
        sub = node.value["host"]
        hosts = _strings(sub, c, where, "match.host")
        good = []
        for host, line in hosts or []:
            h = host.strip().lower()
            if "://" in h or "/" in h:
                bare = h.split("://", 1)[-1].split("/", 1)[0]
                c.error(line, where, "match.host", f"{host!r} is a URL, not a host glob", f"write {bare!r}")
            elif not _HOST_GLOB.fullmatch(h) or (":" in h and not h.startswith("[")):
                c.error(
                    line,
                    where,
                    "match.host",
                    f"{host!r} is not a host glob",
                    "write a host name with * and ? wildcards, without port (match ports with match.filter)",
                )
            else:
                good.append(h)
        if good:
            out["hosts"] = tuple(good)
            out["host_regex"] = re.compile("|".join(f"(?:{fnmatch.translate(h)})" for h in good), re.IGNORECASE)
    if "path" in node.value:
        sub = node.value["path"]
        paths = _strings(sub, c, where, "match.path")
        good_paths = []
        for path, line in paths or []:
            if not path.startswith(("/", "*")):
                c.error(line, where, "match.path", f"{path!r} does not start with '/'", f"write '/{path}'")
            else:
                good_paths.append(path)
        if good_paths:
            out["path_regex"] = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in good_paths))
    if "origin" in node.value:
        sub = node.value["origin"]
        values = [(raw, line) for raw, line in _strings(sub, c, where, "match.origin") or [] if raw.strip() != "*"]
        out["origins"] = c.origin_patterns(values, where, "match.origin", allow_null=True)
    if "filter" in node.value:
        sub = node.value["filter"]
        if not isinstance(sub.value, str) or not sub.value.strip():
            c.error(sub.line, where, "match.filter", f"expected a mitmproxy filter expression, got {sub.value!r}")
        else:
            try:
                out["filter"] = compile_filter(sub.value)
                out["filter_text"] = sub.value
            except ValueError as e:
                c.error(
                    sub.line,
                    where,
                    "match.filter",
                    f"{sub.value!r} is not a valid mitmproxy filter expression ({e})",
                    "see `mitmproxy --help` / the ~ operators in mitmproxy's docs, e.g. '~m PUT & ~d api.localhost'",
                )
    return out


def _parse_rule(
    index: int, node: Located, c: _Collector, names: dict[str, int], compile_filter: Callable[[str], Any], dry: bool
) -> Rule | None:
    where = f"rule {index}"
    if not isinstance(node.value, dict):
        c.error(node.line, where, "", f"expected a mapping with name, match, allow_origins ..., got {node.value!r}")
        return None
    d: dict[Any, Located] = node.value
    name_node = d.get("name")
    if name_node is None or not isinstance(name_node.value, str) or not name_node.value.strip():
        c.error(node.line, where, "name", "every rule needs a name", "add e.g. name: 'local API'")
        name = f"#{index}"
    else:
        name = name_node.value.strip()
        where = f"rule {index} ({name!r})"
        if name in names:
            c.error(
                name_node.line,
                where,
                "name",
                f"duplicate name {name!r} (also on line {names[name]})",
                "give each rule its own name",
            )
        names[name] = name_node.line
    for key, sub in d.items():
        if key not in RULE_KEYS:
            _unknown_key(c, sub, where, key, RULE_KEYS, "rule")
    errors_before = len(c.errors)
    kw: dict[str, Any] = {"name": name, "line": node.line}

    def flag(key: str) -> bool:
        if key not in d:
            return False
        return bool(_bool(d[key], c, where, key))

    enabled = flag("enabled") if "enabled" in d else True
    invalid_ok = flag("dangerously_allow_invalid")
    insecure_ok = flag("dangerously_allow_insecure")
    kw["dangerously_allow_invalid"] = invalid_ok
    kw["dry_run"] = flag("dry_run") or dry
    if "match" in d:
        kw.update(_parse_match(d["match"], c, where, compile_filter))
    kw["rewrites_cors"] = any(k in d for k in CORS_KEYS)
    if "allow_credentials" in d:
        kw["allow_credentials"] = bool(_bool(d["allow_credentials"], c, where, "allow_credentials"))
    if "allow_origins" in d:
        sub = d["allow_origins"]
        if isinstance(sub.value, str) and sub.value in ("*", "reflect"):
            kw["allow_origins"] = sub.value
        else:
            values = []
            for raw, line in _strings(sub, c, where, "allow_origins") or []:
                if raw.strip() in ("*", "reflect"):
                    c.error(
                        line,
                        where,
                        "allow_origins",
                        f"{raw!r} cannot be mixed with origins",
                        f"write allow_origins: {raw.strip()!r} on its own",
                    )
                else:
                    values.append((raw, line))
            kw["allow_origins"] = c.origin_patterns(values, where, "allow_origins", allow_null=insecure_ok)
    for key, what in (("allow_methods", "method"), ("allow_headers", "header name")):
        if key in d:
            value = _tokens(d[key], c, where, key, what)
            if value is not None:
                kw[key] = value
    if "expose_headers" in d:
        value = _tokens(d["expose_headers"], c, where, "expose_headers", "header name")
        if value == "reflect":
            c.error(
                d["expose_headers"].line,
                where,
                "expose_headers",
                "'reflect' has no meaning here",
                "list header names, or '*'",
            )
        elif value is not None:
            kw["expose_headers"] = value
    if "max_age" in d:
        sub = d["max_age"]
        if not isinstance(sub.value, int) or isinstance(sub.value, bool) or sub.value < 0:
            c.error(
                sub.line,
                where,
                "max_age",
                f"expected seconds as a whole number ≥ 0, got {sub.value!r}",
                "write e.g. max_age: 600",
            )
        else:
            kw["max_age"] = sub.value
            if sub.value > 7200:
                c.warnings.append(
                    f"{where}: max_age {sub.value} is above Chromium's cap of 7200 s"
                    + (" and Firefox's of 86400 s" if sub.value > 86400 else "")
                    + "; browsers cache the preflight for less"
                )
    if "preflight" in d:
        sub = d["preflight"]
        if sub.value not in ("answer", "forward"):
            c.error(
                sub.line,
                where,
                "preflight",
                f"expected 'answer' or 'forward', got {sub.value!r}",
                "answer: the proxy replies 204 itself; forward: the server's answer is fixed",
            )
        else:
            kw["preflight"] = sub.value
    if "strip" in d:
        names_ = _tokens(d["strip"], c, where, "strip", "header name")
        if isinstance(names_, tuple):
            kw["strip"] = tuple(n.lower() for n in names_)
        elif names_ is not None:
            c.error(d["strip"].line, where, "strip", f"{names_!r} is not a header name", "list header names")
    if "set" in d:
        sub = d["set"]
        if not isinstance(sub.value, dict):
            c.error(sub.line, where, "set", f"expected a mapping of header: value, got {sub.value!r}")
        else:
            pairs: list[tuple[str, tuple[str, ...]]] = []
            for hname, hval in sub.value.items():
                if not isinstance(hname, str) or not fetchspec._TOKEN.fullmatch(hname):
                    c.error(hval.key_line, where, "set", f"{hname!r} is not a header name")
                    continue
                if hval.value is None:
                    pairs.append((hname, ()))
                    continue
                if isinstance(hval.value, (int, bool)) and not isinstance(hval.value, bool):
                    pairs.append((hname, (str(hval.value),)))
                    continue
                vals = _strings(hval, c, where, f"set.{hname}")
                if vals is not None:
                    pairs.append((hname, tuple(v for v, _ in vals)))
            kw["set_headers"] = tuple(pairs)
    # Combinations browsers always refuse, and insecure ones (jub0bs/cors refuses them up front).
    origins = kw.get("allow_origins", "reflect")
    if kw.get("allow_credentials") and origins == "*" and not invalid_ok:
        line = d["allow_origins"].line if "allow_origins" in d else node.line
        c.error(
            line,
            where,
            "allow_origins",
            "browsers refuse 'Access-Control-Allow-Origin: *' together with credentials",
            "use allow_origins: reflect or a list of origins (or set 'dangerously_allow_invalid: true' to "
            "reproduce the bug on purpose)",
        )
    if kw.get("allow_credentials") and origins == "reflect" and not insecure_ok:
        hosts = kw.get("hosts", ())
        if not hosts or not all(_is_local_glob(h) for h in hosts):
            line = d["allow_origins"].line if "allow_origins" in d else node.line
            c.error(
                line,
                where,
                "allow_origins",
                "reflecting any origin with credentials lets every website read this API as the logged-in user"
                + ("" if hosts else " (the rule matches every host)"),
                "list the frontend origins (e.g. ['http://localhost:*']), restrict match.host to local hosts, "
                "or set 'dangerously_allow_insecure: true'",
            )
    if not enabled or len(c.errors) > errors_before:
        return None
    return Rule(**kw)


def parse_rules(text: str, path: str, compile_filter: Callable[[str], Any]) -> RuleSet:
    """Parse and validate a rule file; all problems are reported together.

    Raises:
        RuleFileError: with every error found, each with its line and fix.
    """
    c = _Collector()
    compile_filter = functools.lru_cache(maxsize=None)(compile_filter)  # big files repeat their filters
    try:
        root, duplicates = load(text)
    except YamlError as e:
        raise RuleFileError(path, [RuleError(e.line, "", "", str(e), "fix the YAML syntax")]) from e
    for key, first, second in duplicates:
        c.error(second, "", key, f"duplicate key {key!r} (first on line {first})", "keep one of them")
    if root is None:
        return RuleSet(path, ())
    if not isinstance(root.value, dict) or "rules" not in root.value:
        raise RuleFileError(
            path,
            [RuleError(root.line, "", "", "a rule file is a mapping with a 'rules' list", "start with 'rules:'")],
        )
    for key, sub in root.value.items():
        if key not in TOP_KEYS:
            _unknown_key(c, sub, "", key, TOP_KEYS, "top-level")
    dry = False
    if "dry_run" in root.value:
        dry = bool(_bool(root.value["dry_run"], c, "", "dry_run"))
    rules_node = root.value["rules"]
    if rules_node.value is None:
        rules_node = Located([], rules_node.line)
    if not isinstance(rules_node.value, list):
        c.error(
            rules_node.line,
            "",
            "rules",
            f"expected a list of rules, got {rules_node.value!r}",
            "write each rule as '- name: ...'",
        )
        raise RuleFileError(path, c.errors)
    names: dict[str, int] = {}
    rules: list[Rule] = []
    for i, node in enumerate(rules_node.value, start=1):
        rule = _parse_rule(i, node, c, names, compile_filter, dry)
        if rule is not None:
            rules.append(rule)
    for i, rule in enumerate(rules[:-1]):
        if rule.host_regex is None and rule.path_regex is None and not rule.origins and rule.filter is None:
            c.warnings.append(
                f"rule {rule.name!r} matches every flow, so the {len(rules) - i - 1} rule(s) after it never apply"
            )
            break
    if c.errors:
        raise RuleFileError(path, c.errors)
    return RuleSet(path, tuple(rules), tuple(c.warnings))


# --------------------------------------------------------------------------------------------------
# What a rule puts on the wire


@dataclass(frozen=True, slots=True)
class HeaderEdit:
    """Header lines to replace (all lines of each name) and names to remove, plus a status override."""

    replace: tuple[tuple[str, tuple[str, ...]], ...]
    status: int | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "set": {k: list(v) for k, v in self.replace if v},
            "remove": [k for k, v in self.replace if not v],
        }
        if self.status is not None:
            out["status"] = self.status
        return out


def _join(values: Iterable[str]) -> str:
    return ", ".join(values)


def cors_edit(
    rule: Rule,
    *,
    preflight: bool,
    origin: str,
    request_method: str = "",
    request_headers: Sequence[str] = (),
    response_header_names: Iterable[str] = (),
    vary: Sequence[str] = (),
    status: int = 200,
    answered: bool = False,
) -> HeaderEdit:
    """The header lines `rule` puts on a preflight or actual response for a request from `origin`.

    Keeps the output something browsers accept unless the rule opts out with dangerously_allow_invalid:
    never `*` with credentials (methods, headers and exposed names are echoed instead), a single
    Allow-Origin, `Vary: Origin` whenever the value depends on the request, `Authorization` listed
    explicitly (the Fetch standard never lets `*` cover it).
    """
    replace: list[tuple[str, tuple[str, ...]]] = []
    new_status: int | None = None
    if rule.rewrites_cors:
        strict = not rule.dangerously_allow_invalid
        creds = rule.allow_credentials
        if rule.allow_origins == "*":
            acao: str | None = "*"
        elif rule.allow_origins == "reflect":
            acao = origin
        else:
            acao = origin if any(p.matches(origin) for p in rule.allow_origins) else None
        replace.append(("Access-Control-Allow-Origin", (acao,) if acao else ()))
        replace.append(("Access-Control-Allow-Credentials", ("true",) if creds else ()))
        if acao != "*" and not any(v.lower() == "origin" for v in fetchspec.split_names(vary)):
            merged = [v for line in vary for v in (x.strip() for x in line.split(",")) if v]
            replace.append(("Vary", (_join([*merged, "Origin"]),)))
        if preflight:
            methods = rule.allow_methods
            if methods == "reflect" or (methods == "*" and creds and strict):
                acam = request_method
            elif methods == "*":
                acam = "*"
            else:
                acam = _join(methods)
            replace.append(("Access-Control-Allow-Methods", (acam,) if acam else ()))
            headers = rule.allow_headers
            if headers == "reflect" or (headers == "*" and creds and strict):
                acah = _join(request_headers)
            elif headers == "*":
                acah = "*" + (", authorization" if "authorization" in request_headers and strict else "")
            else:
                acah = _join(headers)
            replace.append(("Access-Control-Allow-Headers", (acah,) if acah else ()))
            if rule.max_age is not None:
                replace.append(("Access-Control-Max-Age", (str(rule.max_age),)))
            if not answered and not 200 <= status < 300:
                # A non-2xx or redirect answer to a preflight fails it in every browser: preflights only.
                new_status = 204
                replace.append(("Location", ()))
        elif rule.expose_headers is not None:
            if rule.expose_headers == "*" and creds and strict:
                names = [
                    n
                    for n in dict.fromkeys(response_header_names)
                    if n.lower() not in fetchspec.SAFELISTED_RESPONSE_HEADERS
                    and n.lower() not in fetchspec.FORBIDDEN_RESPONSE_HEADERS
                    and not n.lower().startswith("access-control-")
                ]
                aceh = _join(names)
            elif rule.expose_headers == "*":
                aceh = "*"
            else:
                aceh = _join(rule.expose_headers)
            replace.append(("Access-Control-Expose-Headers", (aceh,) if aceh else ()))
    for name in rule.strip:
        replace.append((name, ()))
    replace.extend(rule.set_headers)
    return HeaderEdit(tuple(replace), new_status)
