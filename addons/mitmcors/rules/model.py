"""Parsed rules: frozen values that carry their compiled globs, origin patterns and mitmproxy filter, so nothing
is compiled per flow; and the first-match lookup over a file's rules.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from mitmcors import fetchspec, sites
from mitmcors.rules.errors import Code

Wild = Literal["*", "reflect"]

_ORIGIN_PATTERN: Final = re.compile(r"(https?)://([a-z0-9*.\-_]+|\[[0-9a-f:.]+\])(?::(\*|[0-9]{1,5}))?")


class OriginPatternError(ValueError):
    """An origin pattern that cannot be used: the kind of problem, what is wrong, and the fix."""

    def __init__(self, code: Code, problem: str, fix: str) -> None:
        super().__init__(f"{problem}. Fix: {fix}")
        self.code = code
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True, slots=True)
class OriginPattern:
    """An origin or a jub0bs/cors-style pattern: `https://*.example.com` (any subdomain depth),
    `http://localhost:*` (any port). Compiled once; `matches` compares serialized origins."""

    raw: str
    regex: re.Pattern[str]

    def matches(self, origin: str) -> bool:
        return self.regex.fullmatch(origin) is not None


def _is_public_suffix(domain: str) -> bool:
    """Whether `domain` is a public suffix (`com`, `co.uk`, `github.io`), under which anyone can register a site.

    The list's algorithm counts an unknown top-level label as a suffix too (its implicit `*` rule); `localhost`
    is the exception, as everything under it is this machine (RFC 6761).
    """
    if domain == "localhost":
        return False
    suffix: str | None = sites.public_suffix_list().get_tld(domain)
    return suffix == domain


@functools.lru_cache(maxsize=4096)
def parse_origin_pattern(raw: str, *, allow_null: bool) -> OriginPattern:
    """Compile one origin pattern.

    Raises:
        OriginPatternError: the pattern is not `scheme://host[:port]` with at most a leading `*.` and a `:*`
            port, or would admit the `null` origin or every site under a public suffix.
    """
    value = raw.strip()
    if value == "null":
        if not allow_null:
            raise OriginPatternError(
                Code.NULL_ORIGIN,
                "the 'null' origin is sent by sandboxed iframes, file: pages and redirected requests, so allowing "
                "it lets any of those read responses",
                "remove it, or set 'dangerously_allow_insecure: true' to reproduce such a server on purpose",
            )
        return OriginPattern(raw, re.compile(r"null"))
    if value != value.lower():
        raise OriginPatternError(
            Code.ORIGIN_NOT_LOWERCASE, "origins are lowercase on the wire", f"write {value.lower()!r}"
        )
    if value.endswith("/") or value.count("/") > 2:
        stripped = "/".join(value.split("/")[:3])
        raise OriginPatternError(Code.ORIGIN_WITH_PATH, "an origin has no path or trailing '/'", f"write {stripped!r}")
    m = _ORIGIN_PATTERN.fullmatch(value)
    if m is None:
        raise OriginPatternError(
            Code.INVALID_ORIGIN_PATTERN,
            "not an origin pattern",
            "write scheme://host[:port], e.g. 'http://localhost:5173', 'https://*.example.com' or 'http://localhost:*'",
        )
    scheme, host, port = m.group(1), m.group(2), m.group(3)
    if "*" in host:
        if not host.startswith("*.") or "*" in host[2:]:
            raise OriginPatternError(
                Code.INVALID_ORIGIN_PATTERN,
                "a '*' is only allowed as the first label",
                "write e.g. 'https://*.example.com'",
            )
        if _is_public_suffix(host[2:]):
            raise OriginPatternError(
                Code.PUBLIC_SUFFIX_WILDCARD,
                f"'*.{host[2:]}' would match every site under a public suffix",
                f"name the site: '{scheme}://*.example.{host[2:]}'",
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


@dataclass(frozen=True, slots=True)
class Rule:
    """One validated rule. Value objects only; no per-flow state."""

    name: str
    hosts: tuple[str, ...] = ()  # match.host's globs, lowercased (the index of RuleSet); host_regex matches them
    host_regex: re.Pattern[str] | None = None
    path_regex: re.Pattern[str] | None = None
    origins: tuple[OriginPattern, ...] = ()
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

    @property
    def matches_everything(self) -> bool:
        """Whether the rule has no condition, so that no rule after it ever applies."""
        return self.host_regex is None and self.path_regex is None and not self.origins and self.filter is None


_GLOB_CHARS: Final = frozenset("*?[")


class HostIndex:
    """Which rules' `match.host` admits a host, without trying every rule: exact names and `*.suffix` globs are
    dictionary lookups (one per label of the host); only other globs (`api-*.test`, `[ab].test`) are tried one
    by one. Built with the rule set (in the reload's worker thread), read-only afterwards."""

    __slots__ = ("_any", "_exact", "_other", "_suffix")

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._exact: dict[str, list[int]] = {}
        self._suffix: dict[str, list[int]] = {}  # "example.test" for "*.example.test"
        self._other: list[tuple[int, re.Pattern[str]]] = []
        self._any: list[int] = []  # no host condition
        for i, rule in enumerate(rules):
            if rule.host_regex is None:
                self._any.append(i)
                continue
            if not rule.hosts:  # a rule built without its globs: only its regex can tell
                self._other.append((i, rule.host_regex))
                continue
            for glob in rule.hosts:
                rest = glob[2:]
                if not _GLOB_CHARS.intersection(glob):
                    self._exact.setdefault(glob, []).append(i)
                elif glob.startswith("*.") and rest and not _GLOB_CHARS.intersection(rest):
                    self._suffix.setdefault(rest, []).append(i)
                elif not self._other or self._other[-1][0] != i:  # once per rule (the rules come in order)
                    self._other.append((i, rule.host_regex))

    def clear(self) -> None:
        """Empty the index an entry at a time (see `RuleSet.dismantle`)."""
        for table in (self._exact, self._suffix):
            while table:
                table.popitem()
        self._other.clear()
        self._any.clear()

    def lookup(self, host: str) -> list[int]:
        """The indices, in rule order, of the rules whose host condition admits `host` (lowercase)."""
        found = set(self._any)
        found.update(self._exact.get(host, ()))
        if self._suffix:
            # "*.example.test" (fnmatch: '*' spans dots) admits every host ending in ".example.test".
            dot = host.find(".")
            while dot >= 0:
                found.update(self._suffix.get(host[dot + 1 :], ()))
                dot = host.find(".", dot + 1)
        for i, regex in self._other:
            if i not in found and regex.match(host):
                found.add(i)
        return sorted(found)


@dataclass(frozen=True)
class RuleSet:
    """The rules of one file, in order: the first rule that matches a flow wins."""

    rules: tuple[Rule, ...]
    warnings: tuple[str, ...] = ()
    _by_host: OrderedDict[str, tuple[Rule, ...]] = field(default_factory=OrderedDict, compare=False, repr=False)
    _index: HostIndex = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", HostIndex(self.rules))

    def _candidates(self, host: str) -> tuple[Rule, ...]:
        """Rules whose host condition admits `host`, from the index, once per host (bounded cache)."""
        host = host.lower()
        cached = self._by_host.get(host)
        if cached is not None:
            return cached
        rules = self.rules
        found = tuple(rules[i] for i in self._index.lookup(host))
        self._by_host[host] = found
        if len(self._by_host) > 4096:
            self._by_host.popitem(last=False)
        return found

    def dismantle(self) -> list[Rule]:
        """Empty this (replaced) rule set's index and cache an entry at a time and hand back its rules for the
        caller to drop one by one: a worker thread frees 10,000 rules so without holding the GIL for long."""
        self._index.clear()
        while self._by_host:
            self._by_host.popitem()
        return list(self.rules)

    def match(self, host: str, path: str, origin: str, flow: Any = None) -> Rule | None:
        """The first rule whose every condition holds for this request (the filter only when given a flow)."""
        path = path.split("?", 1)[0]
        for rule in self._candidates(host):
            if rule.path_regex is not None and not rule.path_regex.match(path):
                continue
            if rule.origins and not any(p.matches(origin) for p in rule.origins):
                continue
            if rule.filter is not None and (flow is None or not rule.filter(flow)):
                continue
            return rule
        return None
