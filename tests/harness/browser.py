"""One browser-suite scenario in headless Chromium behind a real mitmdump, and everything observed about it.

Chromium's side: a CDP recorder per page (``Network.*`` events: each request, its redirect hops, its status, its
``corsErrorStatus``, the raw response headers it received) and what the page's JS saw. The wire: the requests that
reached the backend. The addon's side: its ``cors_report`` lines, and each flow as mitmdump holds it, read from
``tests/browser/harness_addon.py``'s control endpoint (the request and response header lines the addon judged,
timestamps, and the live ``metadata["cors"]``, which knows ``request_ids`` a preflight's report line may not).

Playwright's objects are passed in (typed ``Any``); nothing here imports Playwright or mitmproxy.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from tests.harness.backend import Backend, Responder, Route, Seen
from tests.harness.report import Report, line_time

PAGE_HTML = b"<!doctype html><html><head><meta charset=utf-8><title>app</title></head><body>app</body></html>"
PNG_1PX = base64.b64decode(  # a 1x1 transparent PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
# Cookie and token values the pages send: they must never appear in a report.
SECRET_VALUES = ("s3cr3t-cookie-value", "s3cr3t-token-value")
CONTROL_URL = "http://harness.control/flows?prefix="

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
    """One row of a table: what the backend answers, what the page does, what kind of request it is."""

    page: str
    routes: Mapping[str, Route | Responder]
    js: str
    credentials: bool = False
    """The page asked for credentials (fetch ``include``, ``withCredentials``, ``crossorigin=use-credentials``)."""
    cookies: Sequence[str] = ()
    """Hosts that get a ``SameSite=None; Secure`` cookie before the page loads (https only)."""
    not_cors: str | None = None
    """For requests that are not CORS: the ``kind`` the addon must give them; they are never blocked."""
    navigates: bool = False
    check: Callable[[Result], None] | None = None
    """More checks of the result, in every browser that runs the row (see ``firefox_check``)."""
    network_error: bool = False
    """Chromium's network stack refuses the response (``net::ERR_*``, no CorsError): its line is blocked with no
    Chromium reason."""
    engines_differ: str | None = None
    """Chromium and Firefox reach different outcomes (measured; why): the verdict follows Chromium, and Firefox's
    outcome is only in ``firefox_reason``."""
    firefox_skip: str | None = None
    """Why the row cannot run in Firefox (a Chromium-only feature, a setup Firefox refuses)."""
    firefox_xfail: str | None = None
    """Where the addon disagrees with Firefox: the disagreement, until the evaluator is fixed."""
    firefox_check: Callable[[Result], None] | None = None
    """Replaces ``check`` in Firefox, where Firefox measurably does something else (e.g. the Origin it sends)."""
    not_recorded: str | None = None
    """Why the row's flows cannot go into the recorded corpus (what the corpus does not hold)."""


@dataclass
class CdpRequest:
    """One request as Chromium reports it over CDP (a redirect chain is one request with several hops)."""

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
    received: str | None = None
    """The raw response head Chromium received (``Network.responseReceivedExtraInfo``)."""

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
    """Records the Network.* events of one page through a CDP session."""

    def __init__(self, context: Any, page: Any) -> None:
        self.requests: dict[str, CdpRequest] = {}
        self.console: list[str] = []
        self.cdp = context.new_cdp_session(page)
        self.cdp.on("Network.requestWillBeSent", self._will_be_sent)
        self.cdp.on("Network.responseReceived", self._response)
        self.cdp.on("Network.responseReceivedExtraInfo", self._received)
        self.cdp.on("Network.loadingFinished", self._finished)
        self.cdp.on("Network.loadingFailed", self._failed)
        self.cdp.send("Network.enable")
        page.on("console", lambda m: self.console.append(m.text))

    def _get(self, request_id: str) -> CdpRequest:
        return self.requests.setdefault(request_id, CdpRequest(request_id, ""))

    def _will_be_sent(self, p: dict[str, Any]) -> None:
        r = self._get(p["requestId"])
        r.method = p["request"]["method"]
        r.hops.append(p["request"]["url"])
        r.resource_type = p.get("type") or r.resource_type

    def _response(self, p: dict[str, Any]) -> None:
        r = self._get(p["requestId"])
        r.status = p["response"]["status"]
        r.resource_type = p.get("type") or r.resource_type

    def _received(self, p: dict[str, Any]) -> None:
        self._get(p["requestId"]).received = p.get("headersText") or json.dumps(p.get("headers") or {})

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
        """The requests with a hop whose path starts with ``prefix``."""
        return [r for r in self.requests.values() if any(url_path(u).startswith(prefix) for u in r.hops)]


@dataclass
class Result:
    """Everything observed for one scenario under ``prefix`` (``/s/<id>``): what the page's JS returned, what the
    browser reported (Chromium: ``cdp`` and its console; Firefox: see ``tests.harness.firefox``), the report
    lines, the flows as mitmdump holds them, and the wire."""

    scenario: Scenario
    prefix: str
    js: Any
    cdp: list[CdpRequest]
    console: list[str]
    lines: list[dict[str, Any]]
    """The addon's report lines, in wire order."""
    flows: list[dict[str, Any]]
    """Each flow as mitmdump holds it (harness_addon's control endpoint), in the order they arrived."""
    wire: list[Seen]
    report_text: str

    def lines_for(self, method: str, sub: str) -> list[dict[str, Any]]:
        """Report lines of ``method`` requests to the scenario's path ``sub`` (e.g. ``/r``)."""
        want = self.prefix + sub
        return [
            ln for ln in self.lines if str(ln.get("method", "")).upper() == method.upper() and line_path(ln) == want
        ]

    def wire_for(self, method: str, sub: str) -> list[Seen]:
        """Requests of ``method`` to the scenario's path ``sub`` that reached the backend."""
        return [s for s in self.wire if s.method.upper() == method.upper() and s.path == self.prefix + sub]

    def live_for(self, flow_id: str) -> dict[str, Any] | None:
        """The flow's current ``metadata["cors"]`` in mitmdump."""
        for entry in self.flows:
            if entry["flow_id"] == flow_id:
                cors: dict[str, Any] | None = entry.get("cors")
                return cors
        return None

    def browser_evidence(self) -> list[str]:
        """What the browser reported, for a failure message."""
        out = ["Chromium:"]
        out += ["  " + r.describe() for r in self.cdp]
        return out + ["  console: " + c for c in self.console if "CORS" in c or "Access to" in c]

    def received_evidence(self) -> list[str]:
        """The response heads the browser received, for a failure message."""
        out = ["response headers Chromium received:"]
        return out + [f"  {r.method} {r.hops[-1] if r.hops else '?'}: {r.received or '(none)'}" for r in self.cdp]

    def evidence(self) -> str:
        out = self.browser_evidence()
        out.append(f"  page JS: {json.dumps(self.js)}")
        out.append("wire (backend saw):")
        out += [f"  {s.method} {s.scheme}://{s.host}{s.path} Origin={s.header('origin')!r}" for s in self.wire]
        out.append("addon report lines:")
        out += ["  " + json.dumps(_short(ln), sort_keys=True) for ln in self.lines]
        out += self.received_evidence()
        return "\n".join(out)


def slug(text: str) -> str:
    """A scenario id usable in a URL path: lower-case letters and digits, runs of others as one ``-``."""
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def url_path(url: str) -> str:
    """The path of a URL."""
    return urlsplit(url).path


def line_path(line: Mapping[str, Any]) -> str:
    """The URL path of a report line."""
    return url_path(str(line.get("url", "")))


def _short(line: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "method",
        "url",
        "kind",
        "verdict",
        "reason",
        "firefox_reason",
        "credentials",
        "if_credentials",
        "preflight_id",
        "preflight_cached",
        "flow_id",
        "request_ids",
        "unreadable_headers",
        "warnings",
    )
    return {k: line.get(k) for k in keep if k in line}


def live_flows(proxy_url: str, prefix: str) -> list[dict[str, Any]]:
    """The flows under ``prefix`` as mitmdump holds them now, from harness_addon's control endpoint."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy_url}))
    with opener.open(CONTROL_URL + quote(prefix), timeout=10) as response:
        data: list[dict[str, Any]] = json.loads(response.read())
    return data


Record = Callable[[str, Result], None]


@dataclass
class Env:
    """The session's shared pieces: backend, a mitmdump (its URL and report), the launched browser, and where
    results go to be recorded in the corpus (None: nowhere)."""

    backend: Backend
    proxy_url: str
    report: Report
    browser: Any
    record: Record | None = None


def open_context(env: Env, cookie_hosts: Sequence[str] = (), proxy_url: str | None = None) -> Any:
    """A fresh browser context (own cookies and preflight cache) with the page helpers; ``cookie_hosts`` get a
    ``sid`` cookie; ``proxy_url`` sends it through another mitmdump (Playwright keeps loopback proxied)."""
    options: dict[str, Any] = {"ignore_https_errors": True}
    if proxy_url is not None:
        options["proxy"] = {"server": proxy_url}
    context = env.browser.new_context(**options)
    if cookie_hosts:
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
                for host in cookie_hosts
            ]
        )
    context.add_init_script(PAGE_HELPERS)
    return context


def open_page(context: Any, url: str) -> tuple[Any, CdpRecorder]:
    """A page of ``context`` at ``url``, recorded over CDP."""
    page = context.new_page()
    recorder = CdpRecorder(context, page)
    page.goto(url, wait_until="load")
    return page, recorder


def register(backend: Backend, prefix: str, routes: Mapping[str, Route | Responder]) -> None:
    """The scenario's routes under ``prefix``, with ``{P}`` in header values (e.g. a Location) replaced by it; a
    responder (a function of the request) is registered as it is."""
    for sub, route in routes.items():
        if not isinstance(route, Route):
            backend.route(prefix + sub, route)
            continue
        replies = {
            method: dataclasses.replace(answer, headers=[(k, _with_prefix(v, prefix)) for k, v in answer.headers])
            for method, answer in route.replies.items()
        }
        backend.route(prefix + sub, dataclasses.replace(route, replies=replies))


def _with_prefix(value: str | bytes, prefix: str) -> str | bytes:
    return value.replace("{P}", prefix) if isinstance(value, str) else value


def play(
    env: Env, page: Any, recorder: CdpRecorder, scenario_id: str, scenario: Scenario, received: bool = False
) -> Result:
    """Run the scenario's JS in ``page`` (routes registered), wait until Chromium settled (with ``received``: and
    the raw response heads arrived), collect both sides."""
    prefix = f"/s/{scenario_id}"
    js = page.evaluate(f"async (P) => {{ {scenario.js} }}", prefix)
    if scenario.navigates:
        page.wait_for_url(lambda u: url_path(u).startswith(prefix + "/"), timeout=10_000)
        page.wait_for_load_state("load")
    settle(page, recorder, prefix + "/", received=received)
    cdp = recorder.under(prefix + "/")
    wire, lines, flows = gather(env, prefix, sum(r.is_preflight for r in cdp))
    console = [m for m in recorder.console if prefix in m or "CORS" in m]
    result = Result(scenario, prefix, js, cdp, console, lines, flows, wire, env.report.text())
    if env.record is not None and scenario.not_recorded is None:
        env.record(scenario_id, result)
    return result


def gather(env: Env, prefix: str, preflights: int) -> tuple[list[Seen], list[dict[str, Any]], list[dict[str, Any]]]:
    """The wire, the report lines (in wire order) and the flows as mitmdump holds them under ``prefix``, once the
    report has a line per flow with an Origin: per preflight the browser sent (answered in the proxy or not) and
    per other request with an Origin that reached the backend or mitmdump."""
    wire = env.backend.requests(prefix + "/")
    seen = live_flows(env.proxy_url, prefix + "/")
    preflights = max(preflights, sum(s.method == "OPTIONS" for s in wire))
    expected = preflights + sum(1 for s in wire if s.method != "OPTIONS" and s.header("origin") is not None)
    expected = max(expected, sum(1 for f in seen if any(k.lower() == "origin" for k, _ in f["request_headers"])))
    # Wire order, not file order: the addon may hold a passing preflight's line until its request arrives.
    lines = sorted(env.report.wait_lines(prefix + "/", expected), key=line_time)
    return wire, lines, live_flows(env.proxy_url, prefix + "/")


def run(env: Env, scenario_id: str, scenario: Scenario) -> Result:
    """Register the routes, run the page's JS in a fresh browser context, collect both sides."""
    register(env.backend, f"/s/{scenario_id}", scenario.routes)
    context = open_context(env, scenario.cookies)
    try:
        page, recorder = open_page(context, scenario.page)
        return play(env, page, recorder, scenario_id, scenario)
    finally:
        context.close()


def settle(page: Any, recorder: CdpRecorder, prefix: str, timeout: float = 10.0, received: bool = False) -> None:
    """Pump Playwright's event loop until every recorded request under ``prefix`` finished or failed; with
    ``received``, also until the raw response heads of those that got a response arrived (they may trail the
    request's end by a moment; at most 2 s more)."""
    started = time.monotonic()
    page.wait_for_timeout(30)
    while time.monotonic() < started + timeout:
        requests = [r for r in recorder.under(prefix) if r.resource_type != "Document"]
        pending = [r for r in requests if not r.settled]
        trailing = [r for r in requests if received and r.received is None and (r.is_preflight or r.status)]
        if not pending and (not trailing or time.monotonic() > started + 2):
            return
        page.wait_for_timeout(30)
