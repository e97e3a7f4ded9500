"""Firefox is the truth for ``firefox_reason``: Debian's Firefox ESR (``/usr/bin/firefox-esr``), headless, driven
through Marionette behind the same mitmdump as Chromium, and the checks of the addon's report against it.

One Firefox serves a whole session: a fresh profile of its own (proxy prefs, its own Marionette port), started
once; before each scenario every cookie, cache and the CORS preflight cache are cleared
(``nsIClearDataService.CLEAR_ALL``) and the scenario's cookies stored, and each scenario has its own URL prefix
(``/s/firefox/<id>``), so no scenario sees another's state. The page's JS runs in the page itself (an inline
``<script>``, like Playwright's main world), with the same helpers as in Chromium.

What Firefox did is read in its chrome context (``-remote-allow-system-access``):

- every CORS console message: an ``nsIScriptError`` whose ``category`` *is* Firefox's reason key
  (``CORSMissingAllowOrigin2``, …), whose text names the URL it is about, with its time;
- every HTTP channel (each redirect hop and each preflight is a channel of its own): method, URL, response
  status, result code, ``nsILoadInfo.requestBlockingReason`` (evidence, and to know when loading settled).

A message is about the latest flow to its URL that had started when it was logged (its report line's
timestamp is the flow's start): a failed preflight's message lands on the OPTIONS line (the actual request never
leaves Firefox). A message can be logged after the page's next request to the same URL started, so a repeat of
the very same message goes to the latest earlier flow without one (seen once in CI: two identical blocked GETs
sent back to back). The first message per line is Firefox's reason; the ones after it are consequences
(``CORSDidNotSucceed2`` with ``Status code: (null)`` for the request whose preflight or redirect failed, and
``CORSPreflightDidNotSucceed3`` after a refused preflight redirect). Lines without a message were let through.

Nothing here imports mitmproxy or Playwright (Marionette's client is imported when Firefox starts).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from tests.harness.browser import PAGE_HELPERS, SECRET_VALUES, Env, Result, Scenario, gather, register, url_path
from tests.harness.checks import Expectations, all_mismatches, effective, expectations_from, raise_problems, where
from tests.harness.ports import free_port, wait_listening
from tests.harness.report import line_time

FIREFOX = Path("/usr/bin/firefox-esr")
PREFIX = "/s/firefox"
"""Firefox's scenarios live under ``/s/firefox/<id>``, next to Chromium's ``/s/<id>`` in the same mitmdump."""

# Profile preferences: everything through the proxy (loopback and *.localhost too), no background traffic.
PREFS: dict[str, Any] = {
    "network.proxy.type": 1,
    "network.proxy.allow_hijacking_localhost": True,
    "network.proxy.no_proxies_on": "",
    "network.proxy.share_proxy_settings": False,
    "network.http.http3.enable": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.http.speculative-parallel-limit": 0,
    "network.prefetch-next": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "services.settings.server": "http://127.0.0.1:1/",
    "app.normandy.enabled": False,
    "app.update.auto": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "extensions.update.enabled": False,
    "identity.fxaccounts.enabled": False,
    "dom.push.connection.enabled": False,
    "security.OCSP.enabled": 0,
}

# Chrome context: record every HTTP channel and every CORS console message (kept in the chrome window's global).
RECORDER_JS = r"""
if (!globalThis.__cors) {
  const rec = globalThis.__cors = {channels: new Map(), console: [], seq: 0};
  const observer = {observe(subject, topic) {
    let ch;
    try { ch = subject.QueryInterface(Ci.nsIHttpChannel); } catch (e) { return; }
    const id = String(ch.channelId);
    let c = rec.channels.get(id);
    if (!c) {
      c = {id, method: ch.requestMethod, url: ch.URI.spec, status: null, result: null, blocking: 0, stopped: null};
      rec.channels.set(id, c);
    }
    if (topic !== "http-on-modify-request") {
      try { c.status = ch.responseStatus; } catch (e) {}
    }
    if (topic === "http-on-stop-request") {
      c.stopped = rec.seq++;
      c.result = ch.status;
      if (ch.loadInfo) c.blocking = Math.max(c.blocking, ch.loadInfo.requestBlockingReason);
    }
  }};
  for (const topic of ["http-on-modify-request", "http-on-examine-response", "http-on-examine-cached-response",
                       "http-on-examine-merged-response", "http-on-stop-request"]) {
    Services.obs.addObserver(observer, topic);
  }
  const listener = {observe(message) {
    if (message instanceof Ci.nsIScriptError && message.category.startsWith("CORS")) {
      const warning = Boolean(message.flags & Ci.nsIScriptError.warningFlag);
      rec.console.push({category: message.category, text: message.errorMessage, time: message.timeStamp, warning});
    }
  }};
  Services.console.registerListener(listener);
  rec.keep = [observer, listener];
}
"""

READ_JS = r"""
const [prefix] = arguments;
const rec = globalThis.__cors;
const under = (url) => { try { return new URL(url).pathname.startsWith(prefix); } catch (e) { return false; } };
return {
  channels: [...rec.channels.values()].filter((c) => under(c.url)),
  console: rec.console.filter((m) => m.text.includes(prefix)),
};
"""

# Everything a scenario leaves behind (cookies, HTTP cache, CORS preflight cache, site data), then its cookies.
# nsICookieManager.add takes the expiry in milliseconds.
RESET_JS = r"""
const [hosts, value] = arguments;
const rec = globalThis.__cors;
rec.channels.clear();
rec.console.length = 0;
await new Promise((resolve) => Services.clearData.deleteData(Ci.nsIClearDataService.CLEAR_ALL, resolve));
for (const host of hosts) {
  Services.cookies.add(host, "/", "sid", value, true, false, true, Date.now() + 3600_000, {},
                       Ci.nsICookie.SAMESITE_NONE, Ci.nsICookie.SCHEME_HTTPS);
}
"""

# Content context: the page's script as an inline <script>; its outcome (JSON) comes back through a page promise.
RUN_JS = r"""
const [code, resolve] = arguments;
const page = window.wrappedJSObject;
const script = document.createElement("script");
script.textContent = code;
document.head.appendChild(script);
page.__corsDone.then((json) => resolve(json), (e) => resolve(JSON.stringify({error: String(e)})));
"""

# "... the remote resource at <url>. (Reason: ...)", the URL in curly quotes (U+2018, U+2019) in some messages.
_URL_IN_MESSAGE = re.compile(r"remote resource at \u2018?(\S+?)\u2019?\. \(Reason:")


@dataclass(frozen=True)
class Channel:
    """One HTTP channel as Firefox reports it (a redirect hop or a preflight is a channel of its own)."""

    method: str
    url: str
    status: int | None
    result: int | None
    """The channel's nsresult (0: success)."""
    blocking: int
    """``nsILoadInfo.requestBlockingReason``: 0, or a ``BLOCKING_REASON_CORS_*`` code (1001-1015)."""
    stopped: int | None
    """When it stopped, in recorder order; None while it is loading."""

    def describe(self) -> str:
        state = "loading" if self.stopped is None else f"status {self.status}, result 0x{(self.result or 0):08x}"
        return f"{self.method} {self.url}: {state}, requestBlockingReason={self.blocking}"


@dataclass(frozen=True)
class Message:
    """One CORS console message: Firefox's reason key (its category), its text, when (ms since the epoch)."""

    category: str
    text: str
    time: float
    warning: bool = False
    """A warning (e.g. ``CORSAllowHeaderFromPreflightDeprecation``), not a reason the request failed."""

    @property
    def url(self) -> str | None:
        found = _URL_IN_MESSAGE.search(self.text)
        return found.group(1) if found else None


@dataclass
class FirefoxResult(Result):
    """A scenario's result in Firefox: ``cdp`` is empty; Firefox's channels and CORS console messages instead."""

    channels: list[Channel] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    @property
    def errors(self) -> list[Message]:
        """The CORS console messages that are errors (not warnings)."""
        return [m for m in self.messages if not m.warning]

    def browser_evidence(self) -> list[str]:
        out = ["Firefox:"]
        out += ["  " + c.describe() for c in sorted(self.channels, key=lambda c: c.stopped or 0)]
        return out + [f"  console {m.category}: {m.text}" for m in self.messages]

    def received_evidence(self) -> list[str]:
        return []


def page_script(js: str, prefix: str) -> str:
    """The page-side script: the helpers, then the scenario's JS as an async function of ``P`` (the prefix), its
    outcome as JSON in the promise ``window.__corsDone``."""
    return (
        f"{PAGE_HELPERS}\n"
        f"window.__corsDone = (async (P) => {{ {js} }})({json.dumps(prefix)})"
        ".then((r) => JSON.stringify(r === undefined ? null : r), (e) => JSON.stringify({error: String(e)}));"
    )


@dataclass
class Firefox:
    """A headless Firefox ESR with a fresh profile in ``workdir``, proxied through 127.0.0.1:``proxy_port``."""

    workdir: Path
    proxy_port: int
    binary: Path = FIREFOX
    start_timeout: float = 60.0
    marionette_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    client: Any = None
    version: str = ""

    @property
    def profile(self) -> Path:
        return self.workdir / "profile"

    def write_profile(self) -> None:
        prefs = {
            **PREFS,
            "marionette.port": self.marionette_port,
            "network.proxy.http": "127.0.0.1",
            "network.proxy.http_port": self.proxy_port,
            "network.proxy.ssl": "127.0.0.1",
            "network.proxy.ssl_port": self.proxy_port,
        }
        self.profile.mkdir(parents=True, exist_ok=True)
        lines = [f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items()]
        (self.profile / "user.js").write_text("".join(lines), encoding="utf-8")

    def start(self) -> Firefox:
        with warnings.catch_warnings():
            # marionette_driver imports mozinfo, which calls the deprecated distro.linux_distribution().
            warnings.simplefilter("ignore", DeprecationWarning)
            from marionette_driver.marionette import Marionette  # type: ignore[import-untyped]

        assert self.binary.exists(), f"{self.binary} is missing: install Debian's firefox-esr package"
        self.write_profile()
        command = [str(self.binary), "--headless", "--marionette", "-remote-allow-system-access", "-no-remote"]
        with (self.workdir / "firefox.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [*command, "--profile", str(self.profile)], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            # Marionette's own wait leaks a socket per failed attempt (ResourceWarning): wait here first.
            wait_listening(self.marionette_port, self.proc, what="Firefox's Marionette", timeout=self.start_timeout)
            self.client = Marionette(host="127.0.0.1", port=self.marionette_port, startup_timeout=self.start_timeout)
            # acceptInsecureCerts: mitmproxy's certificates for the https test hosts.
            capabilities = self.client.start_session({"acceptInsecureCerts": True})
            self.version = str(capabilities.get("browserVersion", ""))
            self.chrome(RECORDER_JS)
        except BaseException:
            self.stop()
            raise
        return self

    def chrome(self, script: str, *args: Any, timeout: float = 30.0) -> Any:
        """Run ``script`` (an async function body) in Firefox's chrome context; its result."""
        body = f"const resolve = arguments[arguments.length - 1]; (async () => {{ {script} }})().then(resolve);"
        with self.client.using_context("chrome"):
            return self.client.execute_async_script(
                body, script_args=list(args), new_sandbox=False, sandbox="cors", script_timeout=int(timeout * 1000)
            )

    def reset(self, cookie_hosts: Sequence[str] = ()) -> None:
        """Clear every cookie, cache and the preflight cache, forget what was recorded, store the cookies."""
        self.chrome(RESET_JS, list(cookie_hosts), SECRET_VALUES[0])

    def run_page(self, js: str, prefix: str, timeout: float = 30.0) -> Any:
        """The scenario's JS in the page (with the page helpers); its outcome. None when the page navigated away
        before the outcome came back."""
        from marionette_driver import errors  # type: ignore[import-untyped]

        try:
            out = self.client.execute_async_script(
                RUN_JS, script_args=[page_script(js, prefix)], script_timeout=int(timeout * 1000)
            )
        except errors.MarionetteException:
            if not url_path(self.client.get_url()).startswith(prefix + "/"):
                raise
            return None
        return json.loads(out) if isinstance(out, str) else out

    def wait_for_path(self, prefix: str, timeout: float = 10.0) -> None:
        """Wait until the page is at a URL under ``prefix`` (a navigation the scenario started)."""
        deadline = time.monotonic() + timeout
        while not url_path(self.client.get_url()).startswith(prefix):
            assert time.monotonic() < deadline, f"the page did not navigate to {prefix}: {self.client.get_url()}"
            time.sleep(0.03)

    def recorded(self, prefix: str) -> tuple[list[Channel], list[Message]]:
        """The channels under ``prefix`` and the CORS console messages naming a URL under it."""
        raw = self.chrome(READ_JS, prefix)
        channels = [
            Channel(c["method"], c["url"], c["status"], c["result"], c["blocking"], c["stopped"])
            for c in raw["channels"]
        ]
        return channels, [Message(m["category"], m["text"], m["time"], m["warning"]) for m in raw["console"]]

    def settle(self, prefix: str, timeout: float = 10.0) -> tuple[list[Channel], list[Message]]:
        """Wait until every channel under ``prefix`` stopped and each CORS-blocked one has its console message,
        then read them."""
        deadline = time.monotonic() + timeout
        while True:
            channels, messages = self.recorded(prefix)
            loading = [c for c in channels if c.stopped is None]
            blocked = sum(1 for c in channels if c.blocking)
            if (not loading and sum(not m.warning for m in messages) >= blocked) or time.monotonic() > deadline:
                return channels, messages
            time.sleep(0.03)

    def stop(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):  # Firefox may be gone already
                self.client.delete_session()
            self.client = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Firefox:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def run(env: Env, scenario_id: str, scenario: Scenario) -> FirefoxResult:
    """Register the routes under ``/s/firefox/<id>``, reset Firefox (``env.browser``), load the row's page, run its
    JS, collect both sides."""
    firefox: Firefox = env.browser
    prefix = f"{PREFIX}/{scenario_id}"
    register(env.backend, prefix, scenario.routes)
    firefox.reset(scenario.cookies)
    firefox.client.navigate(scenario.page)
    js = firefox.run_page(scenario.js, prefix)
    if scenario.navigates:
        firefox.wait_for_path(prefix + "/")
    channels, messages = firefox.settle(prefix + "/")
    sent_preflights = sum(1 for c in channels if c.method == "OPTIONS" and c.status is not None)
    wire, lines, flows = gather(env, prefix, sent_preflights)
    console = [f"{m.category}: {m.text}" for m in messages]
    result = FirefoxResult(scenario, prefix, js, [], console, lines, flows, wire, env.report.text(), channels, messages)
    if env.record is not None and scenario.not_recorded is None:
        env.record(scenario_id, result)
    return result


# --- what Firefox did with each report line ------------------------------------------------------------------------


def _resource(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.path


def blocked_lines(result: FirefoxResult) -> tuple[dict[int, Message], list[str]]:
    """Per report line (index) the console message that is Firefox's reason for blocking it (later messages about
    the same line are its consequences); what could not be pinned on a line."""
    lines = result.lines
    reasons: dict[int, Message] = {}
    problems = []
    for m in result.errors:
        url = m.url
        if url is None:
            problems.append(f"harness: a CORS console message names no URL: {m.text}")
            continue
        # The latest flow to that URL that had started by then (the message's time is whole milliseconds).
        started = [
            i
            for i, ln in enumerate(lines)
            if _resource(str(ln.get("url", ""))) == _resource(url) and line_time(ln) < m.time / 1000 + 0.001
        ]
        if not started:
            problems.append(f"Firefox blocked {url} ({m.category}) but no report line is about it: {m.text}")
            continue
        line = started[-1]
        if line in reasons and _same(reasons[line], m):
            # Firefox logs one reason per channel, so a repeat of the very same message is about another flow: the
            # message can be logged after the page's next request to that URL started (the rejected fetch resolves
            # before the message is created), so it goes to the latest earlier flow still without a reason.
            line = next((i for i in reversed(started) if i not in reasons), line)
        if line not in reasons:
            reasons[line] = m
    return reasons, problems


def _same(a: Message, b: Message) -> bool:
    return (a.category, a.text) == (b.category, b.text)


def expectations(result: FirefoxResult) -> Expectations:
    """What Firefox did with each of the scenario's report lines (``Expected.reason``: its reason key)."""
    reasons, problems = blocked_lines(result)
    if result.scenario.not_cors is not None:
        problems += [f"harness: Firefox blocked a not-CORS scenario: {m.category}: {m.text}" for m in reasons.values()]
    return expectations_from(result, {i: m.category for i, m in reasons.items()}, problems)


def check_page_agrees_with_console(result: FirefoxResult) -> list[str]:
    """Harness sanity: a CORS console message means some page request failed, and a failed CORS request logs one."""
    outcomes = [o for o in result.js if isinstance(o, dict) and "ok" in o] if isinstance(result.js, list) else []
    failed = [o for o in outcomes if not o["ok"]]
    if result.errors and outcomes and not failed:
        return [f"harness: Firefox logged {result.errors[0].category} but every page request succeeded"]
    if failed and not result.errors and result.scenario.not_cors is None:
        return [f"harness: a page request failed without a CORS console message: {failed[0]}"]
    return []


def check_firefox_outcomes(result: FirefoxResult, want: Expectations) -> list[str]:
    """Each line's ``firefox_reason`` is the reason key Firefox logged for that flow, or null where Firefox let it
    through; the verdict is Firefox's outcome unless the row says the engines differ (then it follows Chromium,
    checked by the Chromium run, and must differ from Firefox's somewhere)."""
    problems = []
    differs = False
    reasons, _ = blocked_lines(result)
    for i, ln in enumerate(result.lines):
        e = want.lines[i]
        verdict, firefox = effective(ln, result.scenario.credentials, "firefox_reason")
        via = " (from if_credentials)" if (verdict, firefox) != (ln.get("verdict"), ln.get("firefox_reason")) else ""
        said = f"Firefox: blocked with {e.reason} ({reasons[i].text})" if i in reasons else "Firefox let it through"
        if firefox != e.reason:
            problems.append(f"{where(ln)}: {said}; addon firefox_reason={firefox!r}{via}")
        if verdict != e.verdict:
            differs = True
            if result.scenario.engines_differ is None:
                problems.append(
                    f"{where(ln)}: {said}; addon verdict={verdict!r}{via} (a row where Chromium measurably differs "
                    "says so in engines_differ)"
                )
    if result.scenario.engines_differ is not None and not differs:
        problems.append(f"the row says the engines differ ({result.scenario.engines_differ}), but Firefox agrees")
    return problems


def mismatches(result: FirefoxResult) -> list[str]:
    """Every way the addon's report disagrees with Firefox (or with the report contract) for this scenario."""
    return all_mismatches(result, expectations(result), (check_page_agrees_with_console,), (check_firefox_outcomes,))


def assert_matches(result: FirefoxResult) -> None:
    """Raise with every mismatch (and the row's check: ``firefox_check`` if it has one) and the evidence."""
    check = result.scenario.firefox_check or result.scenario.check
    raise_problems(result, mismatches(result), "Firefox", check)
