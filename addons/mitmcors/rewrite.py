"""Apply a rule to a flow: answer a preflight in the proxy, or fix the server's answer.

The headers come from the rule engine (`rules.cors_edit`); this module only puts them on mitmproxy's
objects and records in the flow's state what changed and what the server alone would have got. A flow that
is not live (read back from a file) or already failed is never changed: the rule is shown as a dry run.
"""

from __future__ import annotations

from mitmproxy import http

from mitmcors.evaluator import Response, WireHeaders, evaluate, requested_by_preflight
from mitmcors.rules import HeaderEdit, Rule, cors_edit
from mitmcors.state import DryRun, FlowState, as_response


def may_change(f: http.HTTPFlow, rule: Rule) -> bool:
    """Rules change live flows only, and not when they only say what they would do."""
    return f.live and f.error is None and not rule.dry_run


def _apply(headers: http.Headers, edit: HeaderEdit) -> None:
    """`headers.set_all(name, values)` for every header of the edit, in one pass over the lines (set_all makes
    one per header): a replaced header keeps its lines' places and names while it has values for them, the
    values left over go at the end, a removed header (no values) loses its lines."""
    if not edit.replace:
        return
    if len({name.lower() for name, _ in edit.replace}) != len(edit.replace):  # a name twice: in turn, as set_all
        for name, values in edit.replace:
            headers.set_all(name, list(values))
        return
    pending = {
        name.lower().encode("utf-8", "surrogateescape"): (
            name.encode("utf-8", "surrogateescape"),
            [v.encode("utf-8", "surrogateescape") for v in values],
        )
        for name, values in edit.replace
    }
    fields: list[tuple[bytes, bytes]] = []
    for field in headers.fields:
        replaced = pending.get(field[0].lower())
        if replaced is None:
            fields.append(field)
        elif replaced[1]:
            fields.append((field[0], replaced[1].pop(0)))
    for raw_name, left_over in pending.values():
        fields.extend((raw_name, value) for value in left_over)
    headers.fields = tuple(fields)


def _preflight_edit(rule: Rule, state: FlowState, server: Response | None) -> HeaderEdit:
    method, headers = requested_by_preflight(state.request)
    return cors_edit(
        rule,
        preflight=True,
        origin=state.request.origin_header or "",
        request_method=method,
        request_headers=headers,
        vary=server.headers.get_all("vary") if server is not None else [],
        status=server.status if server is not None else 204,
        answered=server is None,
    )


def answer_preflight(f: http.HTTPFlow, state: FlowState, rule: Rule) -> None:
    """`preflight: answer`: reply 204 from the proxy, so the server never sees the OPTIONS."""
    edit = _preflight_edit(rule, state, None)
    headers = http.Headers()
    _apply(headers, edit)
    if not may_change(f, rule):
        simulated = evaluate(state.request, Response(204, WireHeaders(headers.fields)), state.classification)
        state.dry_run = DryRun(rule.name, edit.describe(), simulated.outcome, answer=True)
        return
    headers["Content-Length"] = "0"
    f.response = http.Response.make(204, b"", headers)
    state.rule, state.answered = rule.name, True


def fix_preflight(f: http.HTTPFlow, state: FlowState, rule: Rule) -> None:
    """`preflight: forward`: the server answered the preflight; put the rule's headers (and a 2xx) on it."""
    assert f.response is not None
    server = as_response(f.response)
    _fix(f, f.response, server, state, rule, _preflight_edit(rule, state, server))


def fix_actual(f: http.HTTPFlow, state: FlowState, rule: Rule) -> None:
    """Put the rule's headers on the response to a cross-origin request, whatever its status."""
    response = f.response
    assert response is not None
    server = as_response(response)
    edit = cors_edit(
        rule,
        preflight=False,
        origin=state.request.origin_header or "",
        # Read only by `expose_headers: "*"` with credentials: decoded then.
        response_header_names=(name.decode("utf-8", "replace") for name, _ in response.headers.fields),
        vary=server.headers.get_all("vary"),
        status=server.status,
    )
    _fix(f, response, server, state, rule, edit)


def _fix(
    f: http.HTTPFlow, response: http.Response, server: Response, state: FlowState, rule: Rule, edit: HeaderEdit
) -> None:
    """`server`: `response` as the server sent it, for the evaluator."""
    if not may_change(f, rule):
        headers = response.headers.copy()
        _apply(headers, edit)
        simulated = evaluate(
            state.request,
            Response(edit.status or response.status_code, WireHeaders(headers.fields)),
            state.classification,
        )
        state.dry_run = DryRun(rule.name, edit.describe(), simulated.outcome)
        return
    state.server_response = server
    state.upstream = evaluate(state.request, server, state.classification)
    if edit.status is not None:
        response.status_code = edit.status
        response.reason = "No Content" if edit.status == 204 else response.reason
        if response.raw_content:
            response.content = b""
        response.headers.pop("content-type", None)
    _apply(response.headers, edit)
    state.rule = rule.name
