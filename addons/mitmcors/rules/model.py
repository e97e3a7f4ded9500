"""Parsed rules: frozen values that carry their compiled globs, origin patterns and mitmproxy filter, so nothing
is compiled per flow (each regex once: at parse time, or at its first use in rules a reload unpickled); and the
first-match lookup over a file's rules.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
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


class Regex:
    """A compiled regex that is pickled as its source and compiled again at its first use.

    A reload reads the rule file in a child process (`mitmcors.rulereload`) and the rules come back pickled:
    compiling 10,000 rules' regexes as they are unpickled would be most of what installing them costs the event
    loop, and most are never used. Built by the validator, the regex is compiled at once (the validator's check
    that it compiles). `match` and `fullmatch` are the compiled pattern's own methods, held in slots: a call costs
    what a call on the pattern does. Until the first one, the slots are empty and `__getattr__` compiles.
    """

    __slots__ = ("flags", "fullmatch", "match", "pattern")

    match: Callable[[str], re.Match[str] | None]
    fullmatch: Callable[[str], re.Match[str] | None]

    def __init__(self, pattern: str, flags: int = 0, compiled: re.Pattern[str] | None = None) -> None:
        self.pattern = pattern
        self.flags = flags
        if compiled is not None:
            self._bind(compiled)

    @classmethod
    def compile(cls, pattern: str, flags: int = 0) -> Regex:
        """Compiled now: raises re.error for a bad pattern."""
        return cls(pattern, flags, re.compile(pattern, flags))

    def _bind(self, compiled: re.Pattern[str]) -> None:
        self.match = compiled.match
        self.fullmatch = compiled.fullmatch

    def __getattr__(self, name: str) -> Any:
        """Only reached for an empty slot: compile at the first `match` or `fullmatch`."""
        if name not in ("match", "fullmatch"):
            raise AttributeError(name)
        self._bind(re.compile(self.pattern, self.flags))
        return getattr(self, name)

    @property
    def compiled(self) -> bool:
        """Whether the pattern has been compiled (without compiling it)."""
        try:
            vars(Regex)["match"].__get__(self, Regex)  # the slot itself: an empty one raises, no __getattr__
        except AttributeError:
            return False
        return True

    def __reduce__(self) -> tuple[Callable[[str, int], Regex], tuple[str, int]]:
        return _shared_regex, (self.pattern, self.flags)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Regex) and (self.pattern, self.flags) == (other.pattern, other.flags)

    def __hash__(self) -> int:
        return hash((self.pattern, self.flags))

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r}, {self.flags!r})"


class Filter:
    """A mitmproxy filter expression and its compiled form. Pickled, it carries both: parsing the expression
    again (mitmproxy's pyparsing grammar) costs far more than unpickling the compiled objects, whose regexes are
    `re`'s cache hits. Unpickled rules share one `Filter` per expression."""

    __slots__ = ("_compiled", "compile_filter", "text")

    def __init__(self, text: str, compile_filter: Callable[[str], Callable[[Any], bool]], compiled: Any = None) -> None:
        self.text = text
        self.compile_filter = compile_filter  # a module-level function: pickled by its name
        self._compiled = compiled

    @classmethod
    def compile(cls, text: str, compile_filter: Callable[[str], Callable[[Any], bool]]) -> Filter:
        """Compiled now: raises ValueError for a bad expression."""
        return cls(text, compile_filter, compile_filter(text))

    def __call__(self, flow: Any) -> bool:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = self.compile_filter(self.text)
        return bool(compiled(flow))

    def __reduce__(self) -> tuple[Callable[..., Filter], tuple[str, Callable[[str], Callable[[Any], bool]], Any]]:
        return _shared_filter, (self.text, self.compile_filter, self._compiled)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filter) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"


# Unpickled, rules share their equal regexes, filters and origin patterns: a file repeats them (a path glob or
# an allowed origin on every rule), and each is an object the garbage collector would traverse.
@functools.lru_cache(maxsize=4096)
def _shared_regex(pattern: str, flags: int) -> Regex:
    return Regex(pattern, flags)


_FILTERS: OrderedDict[str, Filter] = OrderedDict()  # unpickled filters by expression, the latest 4,096


def _shared_filter(text: str, compile_filter: Callable[[str], Callable[[Any], bool]], compiled: Any) -> Filter:
    shared = _FILTERS.get(text)
    if shared is None or shared.compile_filter is not compile_filter:
        shared = _FILTERS[text] = Filter(text, compile_filter, compiled)
        if len(_FILTERS) > 4096:
            _FILTERS.popitem(last=False)
    return shared


@dataclass(frozen=True, slots=True)
class OriginPattern:
    """An origin or a jub0bs/cors-style pattern: `https://*.example.com` (any subdomain depth),
    `http://localhost:*` (any port). Compiled once (after a reload, at its first use); `matches` compares
    serialized origins."""

    raw: str
    regex: Regex

    def matches(self, origin: str) -> bool:
        return self.regex.fullmatch(origin) is not None

    def __reduce__(self) -> tuple[Callable[[str, Regex], OriginPattern], tuple[str, Regex]]:
        return _shared_origin_pattern, (self.raw, self.regex)


@functools.lru_cache(maxsize=4096)
def _shared_origin_pattern(raw: str, regex: Regex) -> OriginPattern:
    return OriginPattern(raw, regex)


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
        return OriginPattern(raw, Regex.compile(r"null"))
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
    return OriginPattern(raw, Regex.compile(f"{scheme}://{host_re}{port_re}"))


@dataclass(frozen=True, slots=True)
class Rule:
    """One validated rule. Value objects only; no per-flow state."""

    name: str
    hosts: tuple[str, ...] = ()  # match.host's globs, lowercased (the index of RuleSet); host_regex matches them
    host_regex: Regex | None = None
    path_regex: Regex | None = None
    origins: tuple[OriginPattern, ...] = ()
    filter: Callable[[Any], bool] | None = None  # a `Filter` when read from a file
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

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self._exact: dict[str, list[int] | tuple[int, ...]] = {}
        self._suffix: dict[str, list[int] | tuple[int, ...]] = {}  # "example.test" for "*.example.test"
        self._other: list[tuple[int, Regex]] = []
        self._any: list[int] = []  # no host condition
        for i, rule in enumerate(rules):
            self.add(i, rule)
        self.seal()

    def add(self, i: int, rule: Rule) -> None:
        """Index `rule` as the file's rule number `i` (rules are added in order, then the index is sealed)."""
        if rule.host_regex is None:
            self._any.append(i)
            return
        if not rule.hosts:  # a rule built without its globs: only its regex can tell
            self._other.append((i, rule.host_regex))
            return
        for glob in rule.hosts:
            rest = glob[2:]
            if not _GLOB_CHARS.intersection(glob):
                _append(self._exact, glob, i)
            elif glob.startswith("*.") and rest and not _GLOB_CHARS.intersection(rest):
                _append(self._suffix, rest, i)
            elif not self._other or self._other[-1][0] != i:  # once per rule (the rules come in order)
                self._other.append((i, rule.host_regex))

    def seal(self) -> None:
        """Turn the lists of rule numbers into tuples: of numbers only, the garbage collector stops tracking
        them (and then the tables), where 10,000 lists would be traversed at every full collection."""
        for _ in self.sealing():
            pass

    def sealing(self) -> Iterator[None]:
        """`seal`, pausing (yielding) every few hundred entries."""
        for table in (self._exact, self._suffix):
            for n, key in enumerate(list(table)):
                table[key] = tuple(table[key])
                if n % 256 == 255:
                    yield

    @property
    def empty(self) -> bool:
        return not (self._exact or self._suffix or self._other or self._any)

    def clearing(self) -> Iterator[None]:
        """Empty the index an entry at a time, pausing (yielding) every few hundred (see `RuleSet.dismantle`)."""
        for table in (self._exact, self._suffix):
            while table:
                table.popitem()
                if len(table) % 256 == 0:
                    yield
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


def _append(table: dict[str, list[int] | tuple[int, ...]], key: str, number: int) -> None:
    numbers = table.setdefault(key, [])
    if not isinstance(numbers, list):
        raise RuntimeError("HostIndex.add after seal")
    numbers.append(number)


@dataclass(frozen=True)
class RuleSet:
    """The rules of one file, in order: the first rule that matches a flow wins."""

    rules: tuple[Rule, ...]
    warnings: tuple[str, ...] = ()
    _by_host: OrderedDict[str, tuple[Rule, ...]] = field(default_factory=OrderedDict, compare=False, repr=False)
    # Built from `rules` unless given (a reload builds it a rule at a time, as it installs them).
    _index: HostIndex = field(default_factory=HostIndex, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.rules and self._index.empty:
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

    def dismantle(self) -> Iterator[None]:
        """Take this (replaced) rule set apart a piece at a time, pausing (yielding) between pieces: the index and
        the per-host cache an entry at a time, then the rules one by one. Freed at once, 10,000 rules are one
        cascade of deallocations that holds the GIL for milliseconds."""
        yield from self._index.clearing()
        while self._by_host:
            self._by_host.popitem()
            if len(self._by_host) % 256 == 0:
                yield
        rules = list(self.rules)
        object.__setattr__(self, "rules", ())
        while rules:
            rules.pop()
            yield

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
