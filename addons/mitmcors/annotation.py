"""The public `flow.metadata["cors"]` contract (README, "The annotation") and the one function that writes it."""

from typing import Any, NotRequired, TypedDict

from mitmcors.evaluator import Credentials, Kind, Outcome
from mitmcors.redact import redact_url
from mitmcors.state import FlowState

MAX_REQUEST_IDS = 100  # a preflight served from the cache for hours lists its first 100 requests, and counts all


class OutcomeDict(TypedDict):
    verdict: str | None
    reason: str | None
    firefox_reason: str | None


class UpstreamDict(OutcomeDict):
    message: str
    credentials: str | None
    if_credentials: OutcomeDict | None


class DryRunDict(OutcomeDict):
    rule: str
    changes: dict[str, Any]
    answer: NotRequired[bool]


class BlockedRequest(TypedDict):
    method: str
    url: str
    headers: list[str]


class MaxAge(TypedDict):
    chromium: int
    firefox: int


class CorsAnnotation(TypedDict):
    """`flow.metadata["cors"]`: the README's table, key for key."""

    kind: str
    verdict: str
    reason: str | None
    firefox_reason: str | None
    message: str
    credentials: str
    if_credentials: OutcomeDict | None
    preflight_id: str | None
    request_ids: list[str]
    unreadable_headers: list[str]
    warnings: list[str]
    rule: str | None
    upstream: UpstreamDict | None
    origin: str
    note: str
    fix: dict[str, Any] | None
    credentials_dependent: bool
    findings: list[dict[str, Any]]
    preflight_cached: NotRequired[bool]
    stopped_by_preflight: NotRequired[bool]
    redirected_from: NotRequired[str]
    revalidates: NotRequired[str]
    dry_run: NotRequired[DryRunDict]
    blocked_request: NotRequired[BlockedRequest]
    requested_method: NotRequired[str]
    requested_headers: NotRequired[list[str]]
    max_age: NotRequired[MaxAge]
    requests_covered: NotRequired[int]


def outcome_dict(o: Outcome) -> OutcomeDict:
    return {
        "verdict": o.verdict,
        "reason": o.reason.value if o.reason else None,
        "firefox_reason": o.firefox_reason.value if o.firefox_reason else None,
    }


ANSWERED_UPSTREAM: UpstreamDict = {
    "verdict": None,
    "reason": None,
    "firefox_reason": None,
    "message": "answered by the proxy (preflight: answer): the server never saw this preflight",
    "credentials": None,
    "if_credentials": None,
}


def _upstream(state: FlowState) -> UpstreamDict | None:
    if state.answered:
        return dict(ANSWERED_UPSTREAM)  # type: ignore[return-value]
    up = state.upstream
    if up is None:
        return None
    outcome, credentials, if_credentials = up.outcome, up.credentials, up.if_credentials
    if state.credentials_learnt and credentials is Credentials.UNKNOWN:
        # The server's answer under the mode the browser really used.
        outcome, credentials, if_credentials = if_credentials or outcome, Credentials.INCLUDE, None
    return {
        **outcome_dict(outcome),
        "message": outcome.message,
        "credentials": credentials.value,
        "if_credentials": outcome_dict(if_credentials) if if_credentials else None,
    }


def render(state: FlowState) -> CorsAnnotation:
    """The annotation of a judged flow (`state.verdict` set)."""
    v = state.verdict
    assert v is not None, "render() needs a judged flow"
    credentials = v.credentials
    if state.credentials_learnt and v.if_credentials is None:
        credentials = Credentials.INCLUDE  # the outcome is the same, and now the mode is known
    a: CorsAnnotation = {
        "kind": v.kind.value,
        "verdict": v.outcome.verdict,
        "reason": v.outcome.reason.value if v.outcome.reason else None,
        "firefox_reason": v.outcome.firefox_reason.value if v.outcome.firefox_reason else None,
        "message": v.outcome.message,
        "credentials": credentials.value,
        "if_credentials": outcome_dict(v.if_credentials) if v.if_credentials else None,
        "preflight_id": None,
        "request_ids": [],
        "unreadable_headers": list(v.unreadable_headers),
        "warnings": list(v.warnings),
        "rule": None if state.error else state.rule,
        "upstream": None if state.error else _upstream(state),
        "origin": v.origin,
        "note": v.note,
        "fix": state.fix.as_dict() if state.fix is not None else None,
        # The wire cannot show the credentials mode, and `include` changes the outcome.
        "credentials_dependent": credentials is Credentials.UNKNOWN and v.if_credentials is not None,
        "findings": list(state.findings),
    }
    if state.preflight is not None:
        a["preflight_id"] = state.preflight.entry.owner.flow_id
        a["preflight_cached"] = state.preflight.cached
    if state.stopped_by is not None:  # a HAR's never-sent request: the blocked preflight is the one counted
        a["preflight_id"] = state.stopped_by.flow_id
        a["stopped_by_preflight"] = True
    if state.redirected_from is not None:
        a["redirected_from"] = state.redirected_from
        if v.origin == "null":
            a["note"] += "; Origin is 'null' because an earlier redirect crossed origins"
    if state.revalidates is not None:
        a["revalidates"] = state.revalidates
    if state.dry_run is not None:
        d = state.dry_run
        dry: DryRunDict = {"rule": d.rule, "changes": d.changes, **outcome_dict(d.outcome)}  # type: ignore[typeddict-item]
        if d.answer:
            dry["answer"] = True
        a["dry_run"] = dry
    if v.kind is Kind.PREFLIGHT and v.preflight is not None:
        a["request_ids"] = list(state.request_ids)
        if state.requests_covered:
            a["requests_covered"] = state.requests_covered
        a["requested_method"] = v.preflight.method
        a["requested_headers"] = list(v.preflight.headers)
        a["max_age"] = {"chromium": v.preflight.max_age_chromium, "firefox": v.preflight.max_age_firefox}
        if v.blocked:
            a["blocked_request"] = {
                "method": v.preflight.method,
                "url": redact_url(state.url),
                "headers": list(v.preflight.headers),
            }
    return a
