"""Read YAML into values that remember their line, with PyYAML or (standalone mitmproxy builds) ruamel.yaml.

mitmproxy's standalone binaries bundle ruamel.yaml but not PyYAML, so neither is imported until a rule
file is loaded, and either will do: both compose the same node tree (ruamel.yaml is a fork of PyYAML).

The two disagree on what a plain scalar is: PyYAML follows YAML 1.1 (`yes` and `on` are booleans, `017` is
octal, `0o17` a string), ruamel.yaml YAML 1.2. So both get the same resolver, YAML 1.2's core schema
(https://yaml.org/spec/1.2.2/#1032-tag-resolution), and one file means the same thing under either: booleans
are only `true`/`false` (also `True`, `TRUE`, ...), integers are `17`, `0o17`, `0x1F`. A number with a leading
zero (`017`: octal 15 in YAML 1.1, decimal 17 in YAML 1.2) stays a string, so that the keys that need a number
refuse it instead of guessing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Located:
    """A YAML value and the 1-based line it starts on. Mappings hold `dict[str, Located]` (keys located too)."""

    value: Any
    line: int
    key_line: int = 0

    def __repr__(self) -> str:
        return f"Located({self.value!r}, line={self.line})"


class YamlError(ValueError):
    """The text is not valid YAML (or not one document), or too big to read; `line` is 1-based."""

    def __init__(self, message: str, line: int, code: str = "yaml_syntax", fix: str = "fix the YAML syntax") -> None:
        super().__init__(message)
        self.line = line
        self.code = code
        self.fix = fix


# Bounds that keep a hostile file from freezing the proxy: its size, how deep values nest, and how many
# values it holds once aliases are expanded (an alias "bomb" of a few hundred bytes can name billions).
MAX_BYTES: Final = 16 * 1024 * 1024
MAX_DEPTH: Final = 64
_MAX_DIGITS: Final = 18  # a longer integer is no number any key needs (and int() refuses 4,300+ digits)


# YAML 1.2 core schema, except that a leading zero is not a number (see the module docstring).
_INT_SPELLINGS: Final = r"[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+"
_CORE_SCHEMA: Final = re.compile(
    r"(?P<null>~|null|Null|NULL|)|(?P<bool>true|True|TRUE|false|False|FALSE)"
    f"|(?P<int>{_INT_SPELLINGS})"
    r"|(?P<float>[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))"
)
_INT: Final = re.compile(_INT_SPELLINGS)
_BOOLEANS: Final = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
# A spelling that resolves to the same tag in YAML 1.1 and 1.2, per type of the core schema.
_CANONICAL: Final = {"null": "~", "bool": "true", "int": "0", "float": "0.5", None: "a"}


@functools.cache
def _with_core_schema(base: type[Any]) -> type[Any]:
    """`base` (a PyYAML loader or a ruamel.yaml resolver) resolving plain scalars with the core schema.

    The backend still builds the tag, from a spelling both YAML versions agree on, so that it comes back in
    the backend's own type (a str in PyYAML, a `Tag` in ruamel.yaml ≥ 0.18).
    """

    def resolve(self: Any, kind: type, value: str, implicit: tuple[bool, bool]) -> Any:
        if kind.__name__ == "ScalarNode" and implicit[0]:
            core = _CORE_SCHEMA.fullmatch(value)
            value = _CANONICAL[core.lastgroup if core else None]
        return base.resolve(self, kind, value, implicit)

    return type(f"CoreSchema{base.__name__}", (base,), {"resolve": resolve})


def _backend() -> tuple[str, Any]:
    try:
        import yaml

        return "PyYAML", yaml
    except ImportError:
        pass
    try:
        from ruamel import yaml as ruamel_yaml

        return "ruamel.yaml", ruamel_yaml
    except ImportError as e:  # pragma: no cover - mitmproxy itself depends on ruamel.yaml
        raise YamlError("cannot read YAML: neither PyYAML nor ruamel.yaml is installed (pip install PyYAML)", 0) from e


def backend_name() -> str:
    """The YAML library rule files are read with: "PyYAML", or "ruamel.yaml" where PyYAML is missing."""
    return _backend()[0]


def _compose(text: str) -> Any:
    name, mod = _backend()
    try:
        if name == "PyYAML":
            # libyaml's C parser when PyYAML was built with it (the wheels are): ~10x faster on big files.
            return mod.compose(text, Loader=_with_core_schema(getattr(mod, "CSafeLoader", mod.SafeLoader)))
        reader = mod.YAML(typ="safe", pure=True)
        reader.Resolver = _with_core_schema(mod.resolver.VersionedResolver)
        return reader.compose(text)
    except mod.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        raise YamlError(_yaml_message(e), (mark.line + 1) if mark else 0) from e


def _yaml_message(e: Exception) -> str:
    problem = getattr(e, "problem", None)
    context = getattr(e, "context", None)
    parts = [p for p in (context, problem) if p]
    return "invalid YAML: " + ("; ".join(parts) if parts else str(e).splitlines()[0])


def _scalar(node: Any) -> Any:
    """The value of a scalar node by its tag; a tagged spelling outside the core schema stays a string."""
    tag = str(node.tag or "")
    value: str = node.value
    if tag.endswith(":null"):
        return None
    if tag.endswith(":bool"):
        return _BOOLEANS.get(value, value)
    if tag.endswith(":int") and _INT.fullmatch(value) and len(value) <= _MAX_DIGITS:
        sign, digits = (-1, value[1:]) if value.startswith("-") else (1, value.lstrip("+"))
        base = {"0o": 8, "0x": 16}.get(digits[:2], 10)
        return sign * int(digits[2:] if base != 10 else digits, base)
    if tag.endswith(":float"):
        special = value.lower().lstrip("+-") in (".inf", ".nan")
        try:
            return float(value.replace(".", "", 1) if special else value)
        except ValueError:
            return value
    return value


class _Budget:
    """How many more values `_convert` may produce: without aliases a file cannot hold more values than it
    has characters, so expanding beyond that is an alias bomb."""

    def __init__(self, text: str) -> None:
        self.left = len(text) + 1000

    def spend(self, node: Any, depth: int) -> None:
        self.left -= 1
        if self.left < 0:
            raise YamlError(
                "aliases (*name) expand to more values than the file has characters",
                node.start_mark.line + 1,
                "too_large",
                "write the values out instead of nesting aliases",
            )
        if depth > MAX_DEPTH:
            raise YamlError(
                f"values nest more than {MAX_DEPTH} levels deep",
                node.start_mark.line + 1,
                "too_large",
                "a rule file needs a few levels: rules, a rule, match, a list",
            )


def _convert(node: Any, duplicates: list[tuple[str, int, int]], budget: _Budget, depth: int = 0) -> Located:
    budget.spend(node, depth)
    line = node.start_mark.line + 1
    kind = type(node).__name__
    if kind == "ScalarNode":
        return Located(_scalar(node), line)
    if kind == "SequenceNode":
        return Located([_convert(item, duplicates, budget, depth + 1) for item in node.value], line)
    if kind == "MappingNode":
        out: dict[Any, Located] = {}
        for key_node, value_node in node.value:
            budget.spend(key_node, depth + 1)
            key = _scalar(key_node) if type(key_node).__name__ == "ScalarNode" else repr(key_node.value)[:80]
            key_line = key_node.start_mark.line + 1
            if key in out:
                duplicates.append((str(key), out[key].key_line, key_line))
            converted = _convert(value_node, duplicates, budget, depth + 1)
            out[key] = Located(converted.value, converted.line, key_line)
        return Located(out, line)
    return Located(None, line)


def release(root: Any) -> None:
    """Free a tree of YAML nodes or `Located` values a node at a time, children before their parent.

    A big rule file is a million small objects. Dropped at once, they are freed in one cascade of C calls that
    holds the GIL for tens of milliseconds: the event loop stalls even though the file was read in a worker
    thread. Freed here, in a Python loop, the loop gets the GIL back every switch interval.

    Each node's value is taken when it is visited, so a node reached again through an alias (`&a [*a]` makes a
    node its own child) has nothing left to walk: the walk is as long as the file, not as its expansion.
    """
    order = [root]
    i = 0
    while i < len(order):
        node = order[i]
        value = node.value
        object.__setattr__(node, "value", None)  # Located is frozen; its children stay alive in `order`
        if isinstance(value, dict):
            order.extend(value.values())
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, tuple):  # a YAML mapping node's (key, value) pairs
                    order.extend(item)
                else:
                    order.append(item)
        i += 1
    while order:
        order.pop()  # the last reached first: each frees itself alone (and a node's marks)


def load(text: str) -> tuple[Located | None, list[tuple[str, int, int]]]:
    """Compose `text` into located values. Returns (root or None when empty, duplicate keys seen).

    Raises:
        YamlError: the text is not YAML, or exceeds the bounds above.
    """
    if len(text) > MAX_BYTES:
        raise YamlError(
            f"the file has {len(text):,} characters, more than the {MAX_BYTES:,} a rule file may have",
            1,
            "too_large",
            "split it, or match more flows per rule",
        )
    try:
        node = _compose(text)
        if node is None:
            return None, []
        duplicates: list[tuple[str, int, int]] = []
        try:
            return _convert(node, duplicates, _Budget(text)), duplicates
        finally:
            release(node)
    except RecursionError:
        raise YamlError(
            "values nest too deeply to read", 1, "too_large", "a rule file needs a few levels of nesting"
        ) from None
