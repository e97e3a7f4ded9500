"""Read YAML into values that remember their line, with PyYAML or (standalone mitmproxy builds) ruamel.yaml.

mitmproxy's standalone binaries bundle ruamel.yaml but not PyYAML, so neither is imported until a rule
file is loaded, and either will do: both compose the same node tree (ruamel.yaml is a fork of PyYAML).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Located:
    """A YAML value and the 1-based line it starts on. Mappings hold `dict[str, Located]` (keys located too)."""

    value: Any
    line: int
    key_line: int = 0

    def __repr__(self) -> str:
        return f"Located({self.value!r}, line={self.line})"


class YamlError(ValueError):
    """The text is not valid YAML (or not one document); `line` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


_TRUE = {"true", "yes", "on", "y"}
_FALSE = {"false", "no", "off", "n"}


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
    return _backend()[0]


def _compose(text: str) -> Any:
    name, mod = _backend()
    if name == "PyYAML":
        # libyaml's C parser when PyYAML was built with it (the wheels are): ~10x faster on big files.
        loader = getattr(mod, "CSafeLoader", mod.SafeLoader)
        try:
            return mod.compose(text, Loader=loader)
        except mod.YAMLError as e:
            mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
            raise YamlError(_yaml_message(e), (mark.line + 1) if mark else 0) from e
    y = mod.YAML(typ="safe", pure=True)
    try:
        return y.compose(text)
    except mod.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        raise YamlError(_yaml_message(e), (mark.line + 1) if mark else 0) from e


def _yaml_message(e: Exception) -> str:
    problem = getattr(e, "problem", None)
    context = getattr(e, "context", None)
    parts = [p for p in (context, problem) if p]
    return "invalid YAML: " + ("; ".join(parts) if parts else str(e).splitlines()[0])


_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|0o?[0-7_]+)")


def _scalar(node: Any) -> Any:
    tag: str = node.tag or ""
    value: str = node.value
    if tag.endswith(":null"):
        return None
    if tag.endswith(":bool"):
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    if tag.endswith(":int") and _INT.fullmatch(value):
        v = value.replace("_", "")
        sign = -1 if v.startswith("-") else 1
        v = v.lstrip("+-")
        if v.startswith("0x"):
            return sign * int(v, 16)
        if v.startswith("0o") or (len(v) > 1 and v.startswith("0")):
            return sign * int(v.lstrip("0o") or "0", 8)
        return sign * int(v)
    if tag.endswith(":float"):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return value
    return value


def _convert(node: Any, duplicates: list[tuple[str, int, int]]) -> Located:
    line = node.start_mark.line + 1
    kind = type(node).__name__
    if kind == "ScalarNode":
        return Located(_scalar(node), line)
    if kind == "SequenceNode":
        return Located([_convert(item, duplicates) for item in node.value], line)
    if kind == "MappingNode":
        out: dict[Any, Located] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node) if type(key_node).__name__ == "ScalarNode" else repr(key_node.value)
            key_line = key_node.start_mark.line + 1
            if key in out:
                duplicates.append((str(key), out[key].key_line, key_line))
            converted = _convert(value_node, duplicates)
            out[key] = Located(converted.value, converted.line, key_line)
        return Located(out, line)
    return Located(None, line)


def load(text: str) -> tuple[Located | None, list[tuple[str, int, int]]]:
    """Compose `text` into located values. Returns (root or None when empty, duplicate keys seen).

    Raises:
        YamlError: the text is not YAML.
    """
    node = _compose(text)
    if node is None:
        return None, []
    duplicates: list[tuple[str, int, int]] = []
    return _convert(node, duplicates), duplicates
