"""Drive one scenario through Chromium + mitmdump and compare Chromium's verdict with the addon's report.

The truth side is Chromium: ``Network.loadingFailed`` events carry ``corsErrorStatus.corsError``, Chromium's exact
``CorsError`` name. A request is blocked by CORS in Chromium iff it failed with a ``corsErrorStatus``.
The addon side is the ``cors_report`` JSON-lines file (one line per flow carrying ``Origin``), plus the live
``flow.metadata["cors"]`` read from harness_addon's control endpoint (for ``request_ids``, which a preflight's
report line cannot know yet when it is written).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from cors_backend import Backend, Route, Seen

# Chromium CorsError names that fail the preflight: the actual request never reaches the wire, so the error is
# compared with the report line of the OPTIONS flow.
PREFLIGHT_ERRORS = frozenset(
    {
        "PreflightWildcardOriginNotAllowed",
        "PreflightMissingAllowOriginHeader",
        "PreflightMultipleAllowOriginValues",
        "PreflightInvalidAllowOriginValue",
        "PreflightAllowOriginMismatch",
        "PreflightInvalidAllowCredentials",
        "PreflightInvalidStatus",
        "PreflightDisallowedRedirect",
        "InvalidAllowMethodsPreflightResponse",
        "InvalidAllowHeadersPreflightResponse",
        "MethodDisallowedByPreflightResponse",
        "HeaderDisallowedByPreflightResponse",
    }
)
REPORT_KEYS = (
    "kind",
    "verdict",
    "reason",
    "firefox_reason",
    "message",
    "credentials",
    "flow_id",
    "method",
    "url",
    "timestamp",
)
SECRET_VALUES = ("s3cr3t-cookie-value", "s3cr3t-token-value")

# Page-side helpers, installed in every page of a scenario context. Each returns a plain outcome object.
PAGE_HELPERS = r"""
window.F = async (url, init = {}, read = []) => {
  try {
    const r = await fetch(url, init);
    const headers = {};
    for (const n of read) headers[n] = r.headers.get(n);
    let body = null;
    try { body = await r.text(); } catch (e) { body = "<" + e + ">"; }
    return {api: "fetch", url, ok: true, status: r.status, type: r.type, headers, body};
  } catch (e) {
    return {api: "fetch", url, ok: false, error: String(e)};
  }
};
window.X = (method, url, opts = {}) => new Promise((resolve) => {
  const x = new XMLHttpRequest();
  x.open(method, url);
  if (opts.withCredentials) x.withCredentials = true;
  for (const [k, v] of Object.entries(opts.headers || {})) x.setRequestHeader(k, v);
  x.onload = () => resolve({api: "xhr", url, ok: true, status: x.status,
    headers: Object.fromEntries((opts.read || []).map((n) => [n, x.getResponseHeader(n)]))});
  x.onerror = () => resolve({api: "xhr", url, ok: false, error: "error event"});
  x.send(opts.body === undefined ? null : opts.body);
});
window.IMG = (url, crossOrigin) => new Promise((resolve) => {
  const i = new Image();
  if (crossOrigin !== undefined) i.crossOrigin = crossOrigin;
  i.onload = () => resolve({api: "img", url, ok: true});
  i.onerror = () => resolve({api: "img", url, ok: false, error: "error event"});
  i.src = url;
  document.body.appendChild(i);
});
window.MOD = (url) => new Promise((resolve) => {
  const s = document.createElement("script");
  s.type = "module";
  s.onload = () => resolve({api: "module", url, ok: true});
  s.onerror = () => resolve({api: "module", url, ok: false, error: "error event"});
  s.src = url;
  document.head.appendChild(s);
});
window.WS = (url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  const timer = setTimeout(() => resolve({api: "ws", url, ok: false, error: "timeout"}), 5000);
  ws.onmessage = (m) => { clearTimeout(timer); ws.close(); resolve({api: "ws", url, ok: true, data: m.data}); };
  ws.onerror = () => { clearTimeout(timer); resolve({api: "ws", url, ok: false, error: "error event"}); };
});
window.FORM = (url, fields = {}) => {
  const f = document.createElement("form");
  f.method = "POST";
  f.action = url;
  for (const [k, v] of Object.entries(fields)) {
    const i = document.createElement("input");
    i.name = k; i.value = v; f.appendChild(i);
  }
  document.body.appendChild(f);
  setTimeout(() => f.submit(), 0);
  return {api: "form", url, ok: true};
};
"""


@dataclass(frozen=True)
class Scenario:
    """One row of the table: what the backend answers, what the page does, what kind of request it is."""

    page: str
    routes: Mapping[str, Route]
    js: str
    credentials: bool = False
    """The page asked for credentials (fetch ``include``, ``withCredentials``, ``crossorigin=use-credentials``)."""
    cookies: Sequence[str] = ()
    """Hosts that get a ``SameSite=None; Secure`` cookie before the page loads (https only)."""
    not_cors: str | None = None
    """For requests that are not CORS: the ``kind`` the addon must give them; they are never blocked."""
    navigates: bool = False
    check: Callable[[Result], None] | None = None


@dataclass
class CdpRequest:
    request_id: str
    method: str
    hops: list[str] = field(default_factory=list)
    resource_type: str | None = None
    status: int | None = None
    finished: bool = False
    failed: bool = False
    error_text: str | None = None
    cors_error: str | None = None
    failed_parameter: str | None = None
    wire_headers: dict[str, str] = field(default_factory=dict)

    @property
    def is_preflight(self) -> bool:
        return self.method == "OPTIONS"

    @property
    def settled(self) -> bool:
        # A no-cors (opaque) fetch gets no loadingFinished while its body stream is untouched; a response
        # reaching the renderer has passed the CORS check, so a status is as good as done.
        return self.finished or self.failed or self.status is not None

    def describe(self) -> str:
        chain = " -> ".join(self.hops)
        if self.cors_error:
            return (
                f"{self.method} {chain}: blocked, CDP corsError={self.cors_error!r} "
                f"failedParameter={self.failed_parameter!r} ({self.error_text})"
            )
        if self.failed:
            return f"{self.method} {chain}: failed without corsErrorStatus ({self.error_text})"
        return f"{self.method} {chain}: allowed, status {self.status}"


class CdpRecorder:
    """Records Network.* events of one page through a CDP session."""

    def __init__(self, context: Any, page: Any) -> None:
        self.requests: dict[str, CdpRequest] = {}
        self.console: list[str] = []
        self.websockets: list[dict[str, Any]] = []
        self.cdp = context.new_cdp_session(page)
        self.cdp.on("Network.requestWillBeSent", self._will_be_sent)
        self.cdp.on("Network.requestWillBeSentExtraInfo", self._extra_info)
        self.cdp.on("Network.responseReceived", self._response)
        self.cdp.on("Network.loadingFinished", self._finished)
        self.cdp.on("Network.loadingFailed", self._failed)
        self.cdp.on("Network.webSocketHandshakeResponseReceived", self._websocket)
        self.cdp.send("Network.enable")
        page.on("console", lambda m: self.console.append(m.text))

    def _websocket(self, p: dict[str, Any]) -> None:
        self.websockets.append(p)

    def _get(self, request_id: str) -> CdpRequest:
        return self.requests.setdefault(request_id, CdpRequest(request_id, ""))

    def _will_be_sent(self, p: dict[str, Any]) -> None:
        r = self._get(p["requestId"])
        r.method = p["request"]["method"]
        r.hops.append(p["request"]["url"])
        r.resource_type = p.get("type") or r.resource_type

    def _extra_info(self, p: dict[str, Any]) -> None:
        self._get(p["requestId"]).wire_headers = dict(p.get("headers") or {})

    def _response(self, p: dict[str, Any]) -> None:
        r = self._get(p["requestId"])
        r.status = p["response"]["status"]
        r.resource_type = p.get("type") or r.resource_type

    def _finished(self, p: dict[str, Any]) -> None:
        self._get(p["requestId"]).finished = True

    def _failed(self, p: dict[str, Any]) -> None:
        r = self._get(p["requestId"])
        r.failed = True
        r.error_text = p.get("errorText")
        status = p.get("corsErrorStatus")
        if status:
            r.cors_error = status.get("corsError")
            r.failed_parameter = status.get("failedParameter")

    def under(self, prefix: str) -> list[CdpRequest]:
        return [
            r for r in self.requests.values() if r.hops and any(urlsplit(u).path.startswith(prefix) for u in r.hops)
        ]


@dataclass
class Result:
    """Everything observed for one scenario."""

    scenario: Scenario
    prefix: str
    js: Any
    cdp: list[CdpRequest]
    console: list[str]
    lines: list[dict[str, Any]]
    live: list[dict[str, Any]]
    wire: list[Seen]
    report_text: str

    def lines_for(self, method: str, path: str) -> list[dict[str, Any]]:
        return [
            ln
            for ln in self.lines
            if str(ln.get("method", "")).upper() == method.upper() and _path(ln.get("url", "")) == self.prefix + path
        ]

    def wire_for(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.wire if s.method.upper() == method.upper() and s.path == self.prefix + path]

    def live_for(self, flow_id: str) -> dict[str, Any] | None:
        for entry in self.live:
            if entry["flow_id"] == flow_id:
                return entry.get("cors")
        return None

    def evidence(self) -> str:
        out = ["Chromium:"]
        out += ["  " + r.describe() for r in self.cdp]
        out += ["  console: " + c for c in self.console if "CORS" in c or "Access to" in c]
        out.append(f"  page JS: {json.dumps(self.js)}")
        out.append("wire (backend saw):")
        out += [f"  {s.method} {s.scheme}://{s.host}{s.path} Origin={s.header('origin')!r}" for s in self.wire]
        out.append("addon report lines:")
        out += ["  " + json.dumps(_short(ln), sort_keys=True) for ln in self.lines]
        return "\n".join(out)


def _path(url: str) -> str:
    return urlsplit(url).path


def _short(line: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "method",
        "url",
        "kind",
        "verdict",
        "reason",
        "credentials",
        "if_credentials",
        "preflight_id",
        "flow_id",
        "request_ids",
        "unreadable_headers",
        "warnings",
    )
    return {k: line.get(k) for k in keep if k in line}


class Report:
    """Reads the addon's JSON-lines report."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def lines(self, prefix: str) -> list[dict[str, Any]]:
        """Complete lines whose URL path starts with ``prefix``, in file order (a partial last line is skipped)."""
        out = []
        text = self.text()
        for raw in text.split("\n")[:-1]:
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError as e:
                raise AssertionError(f"cors_report line is not JSON: {raw!r}: {e}") from e
            if _path(str(line.get("url", ""))).startswith(prefix):
                out.append(line)
        return out

    def wait_lines(self, prefix: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        lines = self.lines(prefix)
        while len(lines) < count and time.monotonic() < deadline:
            time.sleep(0.05)
            lines = self.lines(prefix)
        return lines


def live_metadata(proxy_url: str, prefix: str) -> list[dict[str, Any]]:
    """Current ``flow.metadata["cors"]`` of the flows under ``prefix``, from harness_addon's control endpoint."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy_url}))
    with opener.open(f"http://harness.control/metadata?prefix={quote(prefix)}", timeout=10) as response:
        data: list[dict[str, Any]] = json.loads(response.read())
    return data


@dataclass
class Env:
    """The session's shared pieces: backend, mitmdump (its URL and report) and the launched browser."""

    backend: Backend
    proxy_url: str
    report: Report
    browser: Any


def run(env: Env, scenario_id: str, scenario: Scenario) -> Result:
    """Register the routes, run the page's JS in a fresh browser context, collect both sides."""
    prefix = f"/s/{scenario_id}/"
    base = prefix.rstrip("/")
    for sub, route in scenario.routes.items():
        env.backend.route(base + sub, _with_prefix(route, base))
    context = env.browser.new_context(ignore_https_errors=True)
    try:
        if scenario.cookies:
            context.add_cookies(
                [
                    {
                        "name": "sid",
                        "value": SECRET_VALUES[0],
                        "domain": host,
                        "path": "/",
                        "secure": True,
                        "sameSite": "None",
                        "httpOnly": False,
                    }
                    for host in scenario.cookies
                ]
            )
        context.add_init_script(PAGE_HELPERS)
        page = context.new_page()
        recorder = CdpRecorder(context, page)
        page.goto(scenario.page, wait_until="load")
        js = page.evaluate(f"async (P) => {{ {scenario.js} }}", base)
        if scenario.navigates:
            page.wait_for_url(lambda u: _path(u).startswith(prefix), timeout=10_000)
            page.wait_for_load_state("load")
        _settle(page, recorder, prefix)
        cdp = recorder.under(prefix)
        console = list(recorder.console)
    finally:
        context.close()
    wire = env.backend.requests(prefix)
    expected = sum(1 for s in wire if s.header("origin") is not None)
    # Wire order, not file order: the addon may hold a passing preflight's line until its request arrives.
    lines = sorted(env.report.wait_lines(prefix, expected), key=_line_time)
    # The control endpoint is only needed for request_ids, i.e. when a preflight went over the wire.
    live = live_metadata(env.proxy_url, prefix) if any(ln.get("method") == "OPTIONS" for ln in lines) else []
    return Result(scenario, base, js, cdp, console, lines, live, wire, env.report.text())


def _line_time(line: dict[str, Any]) -> float:
    """A report line's timestamp as seconds (number or ISO 8601 string); unknown sorts first, keeping file order."""
    value = line.get("timestamp")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return 0.0


def _with_prefix(route: Route, base: str) -> Route:
    """The route with ``{P}`` in header values (e.g. a Location) replaced by the scenario's path prefix."""
    replies = {
        method: dataclasses.replace(reply, headers=[(k, v.replace("{P}", base)) for k, v in reply.headers])
        for method, reply in route.replies.items()
    }
    return dataclasses.replace(route, replies=replies)


def _settle(page: Any, recorder: CdpRecorder, prefix: str, timeout: float = 10.0) -> None:
    """Pump Playwright's event loop until every recorded request under ``prefix`` finished or failed."""
    deadline = time.monotonic() + timeout
    page.wait_for_timeout(30)
    while time.monotonic() < deadline:
        pending = [r for r in recorder.under(prefix) if not r.settled and r.resource_type != "Document"]
        if not pending:
            return
        page.wait_for_timeout(30)


# --- the comparison ----------------------------------------------------------------------------------------


def effective(line: dict[str, Any], credentials: bool) -> tuple[str | None, str | None]:
    """The addon's (verdict, reason) for the credentials mode the page used.

    Credentials mode is not on the wire: without a cookie the addon says ``unknown`` and gives the ``include``
    outcome in ``if_credentials`` when it differs, so a page that asked for credentials is judged by that.
    """
    if credentials and line.get("credentials") == "unknown" and line.get("if_credentials"):
        alt = line["if_credentials"]
        return alt.get("verdict"), alt.get("reason")
    return line.get("verdict"), line.get("reason")


def mismatches(result: Result) -> list[str]:
    """Every way the addon's report disagrees with Chromium (or with the report contract) for this scenario."""
    s = result.scenario
    problems: list[str] = []
    lines = result.lines

    # The contract: one line per flow carrying Origin, with the documented keys.
    with_origin = [w for w in result.wire if w.header("origin") is not None]
    if len(lines) != len(with_origin):
        problems.append(f"{len(with_origin)} requests with Origin reached the server, report has {len(lines)} lines")
    for w in with_origin:
        if not result.lines_for(w.method, w.path[len(result.prefix) :]):
            problems.append(f"no report line for {w.method} {w.scheme}://{w.host}{w.path}")
    ids = [ln.get("flow_id") for ln in lines]
    if len(set(ids)) != len(ids):
        problems.append(f"duplicate flow_id in report lines: {ids}")
    for ln in lines:
        missing = [k for k in REPORT_KEYS if k not in ln]
        if missing:
            problems.append(f"{ln.get('method')} {ln.get('url')}: report line lacks keys {missing}")
    for secret in SECRET_VALUES:
        if secret in result.report_text:
            problems.append(f"the report contains the secret value {secret!r}")

    # Credentials: a Cookie on the wire proves include; no cookie proves nothing.
    for ln in lines:
        if ln.get("method") == "OPTIONS":
            continue
        sent = [w for w in result.wire_for(ln.get("method", ""), _path(ln.get("url", ""))[len(result.prefix) :])]
        has_cookie = any(w.header("cookie") for w in sent)
        if has_cookie and ln.get("credentials") != "include":
            problems.append(f"{ln['method']} {ln['url']}: Cookie on the wire but credentials={ln.get('credentials')!r}")
        if not has_cookie and ln.get("credentials") == "include":
            problems.append(f"{ln['method']} {ln['url']}: no Cookie on the wire but credentials='include'")

    # Harness sanity: the page's own view agrees with CDP (a CORS error always reaches the page as a failure).
    # The page's requests run one after the other, so the n-th outcome for a URL is the n-th CDP request to it.
    outcomes = result.js if isinstance(result.js, list) else []
    seen: dict[str, int] = {}
    for out in outcomes:
        if not isinstance(out, dict) or "url" not in out:
            continue
        n = seen[out["url"]] = seen.get(out["url"], -1) + 1
        same = [r for r in result.cdp if not r.is_preflight and r.hops and r.hops[0] == out["url"]]
        if n < len(same) and same[n].cors_error and out.get("ok"):
            problems.append(f"harness: CDP reports {same[n].cors_error} but the page saw success: {out}")

    if s.not_cors is not None:
        for r in result.cdp:
            if r.cors_error:
                problems.append(f"harness: Chromium blocked a not-CORS scenario: {r.describe()}")
        for ln in lines:
            if ln.get("kind") != s.not_cors:
                problems.append(f"{ln['method']} {ln['url']}: kind={ln.get('kind')!r}, expected {s.not_cors!r}")
            if ln.get("verdict") == "blocked" or ln.get("reason") is not None:
                problems.append(
                    f"{ln['method']} {ln['url']}: not CORS but verdict={ln.get('verdict')!r} "
                    f"reason={ln.get('reason')!r}"
                )
        return problems

    judged: set[int] = set()
    requests = [r for r in result.cdp if not r.is_preflight]
    if not requests:
        problems.append("harness: Chromium made no request under the scenario prefix")
    for r in requests:
        hop_paths = [_path(u) for u in r.hops]
        if r.failed and not r.cors_error:
            problems.append(f"harness: request failed without a CORS error: {r.describe()}")
            continue
        if r.cors_error:
            want_options = r.cors_error in PREFLIGHT_ERRORS
            line = None
            for path in reversed(hop_paths):
                candidates = [
                    (i, ln)
                    for i, ln in enumerate(lines)
                    if _path(ln.get("url", "")) == path and (ln.get("method") == "OPTIONS") == want_options
                ]
                if candidates:
                    line = candidates[-1]
                    break
            if line is None:
                what = "OPTIONS" if want_options else r.method
                problems.append(f"no report line for the {what} flow Chromium blocked: {r.describe()}")
                continue
            index, ln = line
            judged.add(index)
            verdict, reason = effective(ln, s.credentials)
            if verdict != "blocked" or reason != r.cors_error:
                problems.append(
                    f"{ln['method']} {ln['url']}: Chromium blocked with corsError={r.cors_error!r} "
                    f"(failedParameter={r.failed_parameter!r}); addon verdict={verdict!r} reason={reason!r}"
                    + (" (from if_credentials)" if (verdict, reason) != (ln.get("verdict"), ln.get("reason")) else "")
                )
            want_kind = "preflight" if want_options else "actual"
            if ln.get("kind") != want_kind:
                problems.append(f"{ln['method']} {ln['url']}: kind={ln.get('kind')!r}, expected {want_kind!r}")
            if not ln.get("message"):
                problems.append(f"{ln['method']} {ln['url']}: blocked but message={ln.get('message')!r}")
            if want_options and result.wire_for(r.method, hop_paths[-1][len(result.prefix) :]):
                problems.append(f"harness: Chromium reported {r.cors_error} but the actual request reached the server")
        elif not any(_path(ln.get("url", "")) == hop_paths[-1] and ln.get("method") != "OPTIONS" for ln in lines):
            problems.append(f"no report line for the request Chromium completed: {r.describe()}")

    # Every other line (passing preflights, earlier redirect hops, allowed requests) must be allowed.
    for i, ln in enumerate(lines):
        if i in judged:
            continue
        verdict, reason = effective(ln, s.credentials)
        if verdict != "allowed" or reason is not None:
            problems.append(
                f"{ln['method']} {ln['url']}: Chromium let this flow pass; addon verdict={verdict!r} reason={reason!r}"
            )
        want_kind = "preflight" if ln.get("method") == "OPTIONS" else "actual"
        if ln.get("kind") != want_kind:
            problems.append(f"{ln['method']} {ln['url']}: kind={ln.get('kind')!r}, expected {want_kind!r}")

    # Preflight linkage: an actual request after an OPTIONS to the same URL was covered by the latest of them,
    # whether Chromium sent a new OPTIONS or used its preflight cache.
    for i, ln in enumerate(lines):
        if ln.get("method") == "OPTIONS":
            continue
        before = [p for p in lines[:i] if p.get("method") == "OPTIONS" and p.get("url") == ln.get("url")]
        if before:
            want = before[-1]["flow_id"]
            if ln.get("preflight_id") != want:
                problems.append(
                    f"{ln['method']} {ln['url']}: preflight_id={ln.get('preflight_id')!r}, "
                    f"expected the OPTIONS flow {want!r}"
                )
            meta = result.live_for(want) or {}
            if ln.get("flow_id") not in (meta.get("request_ids") or []):
                problems.append(
                    f"OPTIONS {ln['url']} ({want}): live request_ids={meta.get('request_ids')!r} "
                    f"lacks the request it covered {ln.get('flow_id')!r}"
                )
        elif ln.get("preflight_id"):
            problems.append(f"{ln['method']} {ln['url']}: no preflight, but preflight_id={ln.get('preflight_id')!r}")
    # What a preflight's line says it covered must be requests that name it as their preflight.
    by_id = {ln.get("flow_id"): ln for ln in lines}
    for ln in lines:
        if ln.get("method") != "OPTIONS":
            continue
        for rid in ln.get("request_ids") or []:
            covered = by_id.get(rid)
            if covered is None or covered.get("preflight_id") != ln.get("flow_id"):
                problems.append(
                    f"OPTIONS {ln['url']} ({ln.get('flow_id')}): request_ids lists {rid!r}, which is not a request "
                    "of this scenario linked to it"
                )
    return problems


def assert_matches(result: Result) -> None:
    problems = mismatches(result)
    if result.scenario.check is not None:
        try:
            result.scenario.check(result)
        except AssertionError as e:
            problems.append(f"scenario check: {e}")
    if problems:
        raise AssertionError("addon disagrees with Chromium:\n- " + "\n- ".join(problems) + "\n\n" + result.evidence())
