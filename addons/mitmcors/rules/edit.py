"""What a rule puts on the wire: the Access-Control-* header lines for one response, as a `HeaderEdit`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mitmcors import fetchspec
from mitmcors.rules.model import Rule


@dataclass(frozen=True, slots=True)
class HeaderEdit:
    """Header lines to replace (all lines of each name) and names to remove, plus a status override."""

    replace: tuple[tuple[str, tuple[str, ...]], ...]
    status: int | None = None

    def describe(self) -> dict[str, Any]:
        """The edit as JSON-ready data: `{"set": {name: [values]}, "remove": [names], "status": ...}`."""
        out: dict[str, Any] = {
            "set": {k: list(v) for k, v in self.replace if v},
            "remove": [k for k, v in self.replace if not v],
        }
        if self.status is not None:
            out["status"] = self.status
        return out


def _join(values: Iterable[str]) -> str:
    return ", ".join(values)


def _line(name: str, value: str | None) -> tuple[str, tuple[str, ...]]:
    """One header set to `value`, or removed when the value is empty."""
    return (name, (value,) if value else ())


def _allow_origin(rule: Rule, origin: str) -> str | None:
    if rule.allow_origins == "*":
        return "*"
    if rule.allow_origins == "reflect" or any(p.matches(origin) for p in rule.allow_origins):
        return origin
    return None


def _preflight_lines(
    rule: Rule, strict: bool, request_method: str, request_headers: Sequence[str]
) -> list[tuple[str, tuple[str, ...]]]:
    """Allow-Methods, Allow-Headers and Max-Age for a preflight ([F] CORS-preflight fetch)."""
    creds = rule.allow_credentials
    methods = rule.allow_methods
    if methods == "reflect" or (methods == "*" and creds and strict):
        acam = request_method
    else:
        acam = "*" if methods == "*" else _join(methods)
    headers = rule.allow_headers
    if headers == "reflect" or (headers == "*" and creds and strict):
        acah = _join(request_headers)
    elif headers == "*":
        acah = "*" + (", authorization" if "authorization" in request_headers and strict else "")
    else:
        acah = _join(headers)
    lines = [_line("Access-Control-Allow-Methods", acam), _line("Access-Control-Allow-Headers", acah)]
    if rule.max_age is not None:
        lines.append(_line("Access-Control-Max-Age", str(rule.max_age)))
    return lines


def _expose_line(rule: Rule, strict: bool, response_header_names: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """Expose-Headers for an actual response; under credentials `*` is a literal name, so the names are listed."""
    if rule.expose_headers == "*" and rule.allow_credentials and strict:
        aceh = _join(
            n
            for n in dict.fromkeys(response_header_names)
            if n.lower() not in fetchspec.SAFELISTED_RESPONSE_HEADERS
            and n.lower() not in fetchspec.FORBIDDEN_RESPONSE_HEADERS
            and not n.lower().startswith("access-control-")
        )
    else:
        aceh = "*" if rule.expose_headers == "*" else _join(rule.expose_headers or ())
    return _line("Access-Control-Expose-Headers", aceh)


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
        acao = _allow_origin(rule, origin)
        replace.append(_line("Access-Control-Allow-Origin", acao))
        replace.append(_line("Access-Control-Allow-Credentials", "true" if rule.allow_credentials else None))
        if acao != "*" and "origin" not in fetchspec.split_names(vary):
            kept = (line.strip(" \t,") for line in vary)
            replace.append(_line("Vary", _join([*(v for v in kept if v), "Origin"])))
        if preflight:
            replace.extend(_preflight_lines(rule, strict, request_method, request_headers))
            if not answered and not 200 <= status < 300:
                # A non-2xx or redirect answer to a preflight fails it in every browser: preflights only.
                new_status = 204
                replace.append(("Location", ()))
        elif rule.expose_headers is not None:
            replace.append(_expose_line(rule, strict, response_header_names))
    replace.extend((name, ()) for name in rule.strip)
    replace.extend(rule.set_headers)
    return HeaderEdit(tuple(replace), new_status)
