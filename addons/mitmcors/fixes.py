"""The complete fix for a blocked flow: every change, on every response, that makes it pass in both browsers.

A browser reports only the first check that failed (`Outcome.fix` says how to pass that one), so fixing a
404 preflight by its messages takes several rounds: Allow-Origin and the status, then the method, then each
header, then Allow-Origin on the request's own response. `complete_fix` computes all of it at once: it
builds the fixed response, judges it again with the evaluator, and keeps only what had to change. Pure, like
the evaluator: plain headers in, a frozen value out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from mitmcors import fetchspec
from mitmcors.evaluator import (
    REDIRECT_STATUSES,
    HeaderLines,
    Kind,
    PlainHeaders,
    Request,
    Response,
    Verdict,
    judge,
    requested_by_preflight,
)
from mitmcors.reasons import PREFLIGHT_BASE, Reason

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
ALLOW_CREDENTIALS = "Access-Control-Allow-Credentials"
ALLOW_METHODS = "Access-Control-Allow-Methods"
ALLOW_HEADERS = "Access-Control-Allow-Headers"


class ResponseFix(NamedTuple):
    """What to change on one response: header lines to set (replacing every line of that name), an ok status."""

    set: tuple[tuple[str, str], ...] = ()
    status: int | None = None
    remove: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"set": dict(self.set)}
        if self.status is not None:
            d["status"] = self.status
        if self.remove:
            d["remove"] = list(self.remove)
        return d

    def describe(self) -> str:
        parts = [f"status {self.status}"] if self.status is not None else []
        parts += [f"{name}: {value}" for name, value in self.set]
        parts += [f"no {name}" for name in self.remove]
        return ", ".join(parts)


class CompleteFix(NamedTuple):
    """`preflight`: the OPTIONS response; `response`: the request's own response; `notes`: what headers cannot fix."""

    preflight: ResponseFix | None
    response: ResponseFix | None
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "preflight": self.preflight.as_dict() if self.preflight else None,
            "response": self.response.as_dict() if self.response else None,
            "notes": list(self.notes),
        }

    def describe(self) -> str:
        """One line naming every change once, for the log."""
        parts = []
        if self.preflight:
            parts.append(f"on the preflight response {self.preflight.describe()}")
        if self.response:
            parts.append(f"on the response {self.response.describe()}")
        return "; ".join(parts + list(self.notes))


class RuleFix(NamedTuple):
    """A failure a rule produced is fixed in the rule file, not on the server."""

    rule: str
    key: str

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "key": self.key}

    def describe(self) -> str:
        return f"change {self.key!r} of rule {self.rule!r} in the rule file"


# The rule key that decides each check a rule's output can fail.
_RULE_KEY: dict[Reason, str] = {
    Reason.MissingAllowOriginHeader: "allow_origins",
    Reason.AllowOriginMismatch: "allow_origins",
    Reason.InvalidAllowOriginValue: "allow_origins",
    Reason.MultipleAllowOriginValues: "allow_origins",
    Reason.WildcardOriginNotAllowed: "allow_origins",
    Reason.InvalidAllowCredentials: "allow_credentials",
    Reason.MethodDisallowedByPreflightResponse: "allow_methods",
    Reason.InvalidAllowMethodsPreflightResponse: "allow_methods",
    Reason.HeaderDisallowedByPreflightResponse: "allow_headers",
    Reason.InvalidAllowHeadersPreflightResponse: "allow_headers",
    Reason.PreflightInvalidStatus: "preflight",
}


def rule_fix(rule: str, verdict: Verdict) -> RuleFix:
    """The rule key to change when `rule` rewrote the flow and the browsers still block it."""
    reason = verdict.outcome.reason
    base = PREFLIGHT_BASE.get(reason, reason) if reason is not None else None
    return RuleFix(rule, _RULE_KEY.get(base, "strip") if base is not None else "strip")


def _tokens(lines: Iterable[str], drop_star: bool) -> list[str]:
    """The valid list elements of an Allow-Methods/-Headers value (a `*` is dropped when it is a literal)."""
    out = []
    for line in lines:
        for element in line.split(","):
            element = element.strip(" \t")
            if element and fetchspec.is_token(element) and not (drop_star and element == "*"):
                out.append(element)
    return out


def _parses(lines: list[str]) -> bool:
    try:
        fetchspec.parse_list(lines)
    except fetchspec.ListParseError:
        return False
    return True


def _merged(current: list[str], needed: Iterable[str], *, case_sensitive: bool) -> list[str]:
    seen = set(current if case_sensitive else (c.lower() for c in current))
    out = list(current)
    for name in needed:
        key = name if case_sensitive else name.lower()
        if key not in seen:
            seen.add(key)
            out.append(name)
    return out


def _allow_origin(origin: str, include: bool) -> str:
    # A 'null' origin (sandboxed frames, after a cross-origin redirect) is matched by '*' without credentials;
    # with credentials only 'null' itself matches, which any sandboxed frame can send: see the note.
    return "*" if origin == "null" and not include else origin


def _access_fix(headers: HeaderLines, origin: str, include: bool) -> list[tuple[str, str]]:
    """Allow-Origin (+ Allow-Credentials, Vary) lines that make the CORS check pass, where it fails."""
    changes: list[tuple[str, str]] = []
    acao = [v.strip(" \t") for v in headers.get_all("access-control-allow-origin")]
    wanted = _allow_origin(origin, include)
    if acao != [wanted] and not (acao == ["*"] and not include):
        changes.append((ALLOW_ORIGIN, wanted))
        if wanted != "*":
            vary = fetchspec.split_names(headers.get_all("vary"))
            if "origin" not in vary and "*" not in vary:
                changes.append(("Vary", ", ".join([*(v for v in headers.get_all("vary") if v.strip()), "Origin"])))
    if include and [v.strip(" \t") for v in headers.get_all("access-control-allow-credentials")] != ["true"]:
        changes.append((ALLOW_CREDENTIALS, "true"))
    return changes


def _applied(response: Response, fix: ResponseFix) -> Response:
    names = {n.lower() for n, _ in fix.set} | {n.lower() for n in fix.remove}
    kept = [(n, v) for n, v in response.headers.items() if n.lower() not in names]
    return Response(fix.status or response.status, PlainHeaders([*kept, *fix.set]))


def complete_fix(request: Request, response: Response, verdict: Verdict, include: bool) -> CompleteFix | None:
    """Everything that makes this blocked flow pass under credentials mode `include`; None when it passes, or
    when the failure is not CORS's (a network error, a response the browsers cannot parse)."""
    outcome = verdict.if_credentials if include and verdict.if_credentials is not None else verdict.outcome
    if outcome.allowed or verdict.kind not in (Kind.PREFLIGHT, Kind.ACTUAL):
        return None
    if outcome.reason in (None, Reason.InvalidResponse):  # a network error: no header helps
        return None
    headers = response.headers
    origin = verdict.origin
    notes: list[str] = []
    if origin == "null" and include:
        notes.append(
            "a credentialed request from the 'null' origin needs 'Access-Control-Allow-Origin: null', which any "
            "sandboxed iframe can send: avoid the cross-origin redirect or sandbox that makes the origin 'null'"
        )
    if verdict.kind is Kind.PREFLIGHT:
        fix = _preflight_fix(request, response, headers, origin, include)
        # The request it announces is judged too: its response needs the same Allow-Origin (+ Credentials).
        needed = [(ALLOW_ORIGIN, _allow_origin(origin, include))] + ([(ALLOW_CREDENTIALS, "true")] if include else [])
        after = ResponseFix(tuple(needed))
        fixed = _applied(response, fix)
    else:
        fix = None
        after = ResponseFix(tuple(_access_fix(headers, origin, include)))
        location = headers.get_all("location")
        if response.status in REDIRECT_STATUSES and location:
            target = fetchspec.resolve_redirect(request.url, location[0])
            if target.scheme not in ("", "http", "https"):
                notes.append("redirect to an http(s) URL: a CORS request cannot follow any other scheme")
            if target.has_credentials:
                notes.append("redirect to a Location without 'user:password@'")
        fixed = _applied(response, after)
    if _still_blocked(request, verdict.kind, fixed, include):
        notes.append("headers alone cannot make it pass: see the message")
    return CompleteFix(fix if fix and (fix.set or fix.status) else None, after if after.set else None, tuple(notes))


def _preflight_fix(
    request: Request, response: Response, headers: HeaderLines, origin: str, include: bool
) -> ResponseFix:
    method, requested = requested_by_preflight(request)
    changes = _access_fix(headers, origin, include)
    method_lines = headers.get_all("access-control-allow-methods")
    methods = _tokens(method_lines, drop_star=include)
    covered = method in fetchspec.SAFELISTED_METHODS or method in methods or ("*" in methods and not include)
    if not covered or not _parses(method_lines):
        changes.append((ALLOW_METHODS, ", ".join(_merged(methods, [method], case_sensitive=True)) or method))
    header_lines = headers.get_all("access-control-allow-headers")
    allowed = _tokens(header_lines, drop_star=include)
    star = "*" in allowed and not include
    missing = [h for h in requested if h not in {a.lower() for a in allowed} and not star]
    if missing or not _parses(header_lines):
        changes.append((ALLOW_HEADERS, ", ".join(_merged(allowed, missing, case_sensitive=False))))
    redirect = response.status in REDIRECT_STATUSES and bool(headers.get_all("location"))
    ok_status = 200 <= response.status < 300 and not redirect
    return ResponseFix(tuple(changes), None if ok_status else 204, ("Location",) if redirect else ())


def _still_blocked(request: Request, kind: Kind, fixed: Response, include: bool) -> bool:
    """Would the fixed response still be blocked under credentials mode `include`?"""
    return not judge(request, fixed, kind, include).allowed
