"""One flow's CORS state, from the request the browser sent to the verdict on what came back.

A `FlowState` is created at the request, completed at the response (or error), and is the only place the
flow's CORS facts live: its link to a preflight, the rule that changed it, the server's own verdict, a
dry-run's result and, for a preflight, the requests it covered. `annotation.render` turns it into the
public `flow.metadata["cors"]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mitmproxy import http
from mitmproxy.net.http import url as mitmproxy_url

from mitmcors import fetchspec
from mitmcors.evaluator import (
    Classification,
    Outcome,
    PlainHeaders,
    Request,
    Response,
    Verdict,
    WireHeaders,
    classify,
)
from mitmcors.fixes import CompleteFix, RuleFix
from mitmcors.tracker import PreflightLink

NO_HEADERS = PlainHeaders()  # the response headers of a flow CORS does not apply to: never looked at


@dataclass(frozen=True, slots=True)
class DryRun:
    """What a rule would have done (`dry_run: true`, or any rule on a flow read back from a file)."""

    rule: str
    changes: dict[str, Any]
    outcome: Outcome
    answer: bool = False  # the proxy would have answered the preflight itself


@dataclass(slots=True)
class FlowState:
    flow_id: str
    request: Request  # as the browser sent it, before other addons or rules touch the flow
    classification: Classification
    timestamp: float
    metadata: dict[str, Any]  # the flow's `metadata`, where the annotation is published
    # Links.
    preflight: PreflightLink[FlowState] | None = None
    redirected_from: str | None = None
    revalidates: str | None = None  # a 304: the flow whose stored response it refreshes
    # Rules.
    rule: str | None = None  # the rule that changed this flow
    upstream: Verdict | None = None  # the server's own answer's verdict, when a rule changed it
    server_response: Response | None = None  # the server's own answer, when a rule changed it
    answered: bool = False  # the proxy answered this preflight; the server never saw it
    dry_run: DryRun | None = None
    # The outcome.
    verdict: Verdict | None = None
    fix: CompleteFix | RuleFix | None = None  # a blocked flow's complete fix
    findings: tuple[dict[str, Any], ...] = ()  # security findings this flow is evidence of
    error: str | None = None  # the flow got no (whole) response
    browser_failed: bool = False  # a HAR's failed request (status 0/-1): the browser's reason is not recorded
    stopped_by: FlowState | None = None  # a HAR's never-sent request: the blocked preflight that stopped it
    # A preflight's links, kept here and nowhere else.
    request_ids: list[str] = field(default_factory=list)
    requests_covered: int = 0
    credentials_learnt: bool = False  # the request it announced carried a cookie: its mode was "include"
    _url: str | None = None  # `url`, once built

    @property
    def url(self) -> str:
        """The request URL as sent (unredacted: redacted wherever it is written out), built from `request` the
        first time it is needed, the way mitmproxy's `Request.url` builds it: most flows never write it out."""
        if self._url is None:
            r = self.request
            self._url = mitmproxy_url.unparse(r.scheme, r.host, r.port, "" if r.path == "*" else r.path)
        return self._url

    @property
    def url_key(self) -> str:
        r = self.request
        return fetchspec.url_key(r.scheme, r.host, r.port, r.path)

    @property
    def ruled(self) -> bool:
        """A rule already changed (or dry-ran on) this flow."""
        return self.rule is not None or self.dry_run is not None


def has_origin(headers: http.Headers) -> bool:
    """Cheaper than `"origin" in headers` (which decodes every name): most flows have no Origin."""
    for name, _ in headers.fields:  # noqa: SIM110 - a plain loop: any() over a generator costs more here
        if len(name) == 6 and name.lower() == b"origin":
            return True
    return False


def wire_method(f: http.HTTPFlow) -> str:
    """The method as sent: mitmproxy's `request.method` upper-cases it, but `fetch(..., {method: 'patch'})`
    sends `patch`, which browsers compare case-sensitively with Access-Control-Allow-Methods."""
    return f.request.data.method.decode("utf-8", "replace")


def as_request(f: http.HTTPFlow) -> Request:
    """The request for the evaluator, with its headers indexed once (mitmproxy's get_all is a linear scan)."""
    r = f.request
    return Request(wire_method(f), r.scheme, r.host, r.port, r.path, WireHeaders(r.headers.fields))


def as_response(resp: http.Response) -> Response:
    return Response(resp.status_code, WireHeaders(resp.headers.fields), resp.reason)


def abandoned(f: http.HTTPFlow) -> bool:
    """The client went away before the response (the page cancelled the request, or navigated away)."""
    return f.error is not None and "client disconnected" in f.error.msg.lower()


def proxy_error_status(f: http.HTTPFlow) -> int | None:
    """The status of the error page mitmproxy sent the client itself when the server failed, or None when
    the client got none: it went away, the flow was killed, or the response was streamed and its headers had
    already gone out (mitmproxy/proxy/layers/http/_events.py `ErrorCode.http_status_code`)."""
    message = f.error.msg.lower() if f.error else ""
    if abandoned(f) or "killed" in message or (f.response is not None and f.response.stream):
        return None
    return 413 if "request body exceeds" in message else 502


def failed_in_browser(f: http.HTTPFlow) -> bool:
    """A request a browser's HAR records as failed: status 0 or -1 and no response headers. Chromium writes a
    CORS-blocked fetch this way, with only its provisional request headers (no Origin) and no preflight; Firefox
    writes a request its failed preflight stopped this way, with its Origin, and the preflight beside it."""
    return not f.live and f.response is not None and f.response.status_code <= 0 and not f.response.headers


def _page_origin(f: http.HTTPFlow) -> str | None:
    """The origin of the page that sent a request, from its Referer, when it differs from the request's own."""
    referer = f.request.headers.get("referer", "")
    try:
        parts = urlsplit(referer)
        port = parts.port or fetchspec.DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        return None
    origin = fetchspec.serialize_origin(parts.scheme, parts.hostname, port)
    return origin if origin != fetchspec.serialize_origin(f.request.scheme, f.request.host, f.request.port) else None


def start(f: http.HTTPFlow) -> FlowState | None:
    """The state of a flow that carries an `Origin` header, as its request was sent; None for the others.

    A cross-origin request a browser's HAR records as failed carries no Origin (the browser never sent it for
    real): its page's origin comes from the Referer, and `browser_failed` says so.
    """
    browser_failed = False
    if has_origin(f.request.headers):
        request = as_request(f)
        # Firefox's HAR keeps the Origin of a request it never sent (its preflight failed): status 0, no response.
        browser_failed = failed_in_browser(f)
    else:
        page = _page_origin(f) if failed_in_browser(f) else None
        if page is None:
            return None
        # The evaluator's copy of the request gets the Origin the browser would have sent; the flow is untouched.
        fields = (*f.request.headers.fields, (b"Origin", page.encode()))
        request, browser_failed = as_request(f)._replace(headers=WireHeaders(fields)), True
    return FlowState(
        browser_failed=browser_failed,
        flow_id=f.id,
        request=request,
        classification=classify(request),
        _url=f.request.url if f.request.method == "CONNECT" else None,  # authority form: host:port
        timestamp=f.request.timestamp_start,
        metadata=f.metadata,
    )
