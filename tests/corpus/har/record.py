"""Record the HAR corpus of issue 10: one page, a handful of cross-origin fetches, in real Chromium and Firefox.

    .venv-3.12/bin/python -m tests.corpus.har.record                    # both browsers
    .venv-3.12/bin/python -m tests.corpus.har.record --browser firefox  # one of them
    .venv-3.12/bin/python -m tests.corpus.har.record --keep /tmp/har    # keep the work directory (logs, reports)

Per browser: the browser suite's backend (http + https, test host names) behind a real
``mitmdump -s addons/cors.py -s tests/browser/harness_addon.py --set cors_report=…``; the browser loads
``https://app.example.test/har/page``, whose inline script runs these fetches one after the other (paths on
``https://api.example.test`` unless said otherwise):

- ``GET /har/allowed``: a simple GET, Allow-Origin is the page's origin (live: allowed);
- ``GET /har/no-acao``: a simple GET, no Allow-Origin (live: blocked, ``MissingAllowOriginHeader``);
- ``PUT /har/put-404``: a preflighted PUT whose OPTIONS is answered 404 without Allow-Origin (live: the OPTIONS
  blocked, ``PreflightMissingAllowOriginHeader``; the PUT is never sent);
- ``GET /har/credentialed``: ``credentials: 'include'`` (a cookie is sent), Allow-Origin ``*`` (live: blocked,
  ``WildcardOriginNotAllowed``);
- ``PUT /har/put-ok``: a preflighted PUT (JSON), preflight and PUT allowed (live: both allowed);
- ``POST /har/same`` on ``https://app.example.test``: a same-origin POST, which carries an Origin (live: kind
  same-origin, allowed).

``app.example.test`` and ``api.example.test`` are one site, so the ``sid`` cookie (a made-up value, not a
secret) is sent with the credentialed fetch in both browsers.

The HAR is the browser's own:

- Chromium (``/usr/bin/chromium`` through Playwright): ``browser.new_context(record_har_path=…)``, written when
  the context closes.
- Firefox ESR (``/usr/bin/firefox-esr``, headless, through Marionette): DevTools' own HAR auto-export
  (``devtools.netmonitor.har.enableAutoExportToFile`` with ``defaultLogDir`` / ``defaultFileName`` /
  ``pageLoadedTimeout``). The auto-export lives in the toolbox, so the toolbox (Network panel) is opened for the
  tab from Marionette's chrome context (``gDevTools.showToolboxForTab``) before the page is loaded; once the page
  has loaded and the network has been quiet for ``pageLoadedTimeout``, Firefox writes the HAR file itself.

Post-processing (``finish``), the only change made to what the browser wrote: the JSON is re-indented (one space)
so the checked-in file diffs well, and a response or request body text longer than ``MAX_BODY`` characters is
emptied, with ``"comment": "body of N characters removed by tests/corpus/har/record.py"`` on its ``content`` (none
is that large today: the page and every answer are a few hundred bytes). Header lines, status codes, timings and
every other field stay as recorded. The recorder refuses to write a HAR that contains an ``Authorization`` header
or any cookie value other than the made-up one.

Next to each HAR, ``<browser>.live.json``: the live run's report summary (the addon's exit summary line and its
``blocked`` count, from ``cors_report``'s ``.summary.json``), and per report line under ``/har/`` its method,
path, kind, verdict, reason and firefox_reason, plus what the page's fetches saw.
``tests/e2e/test_e2e_browser_har.py`` reads each HAR back through ``mitmdump -nr`` and compares.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.harness.backend import Answer, Backend
from tests.harness.chromium import CHROMIUM, launch_args
from tests.harness.firefox import Firefox
from tests.harness.mitmdump import Mitmdump, browser_mitmdump
from tests.harness.report import line_time, path_of

HERE = Path(__file__).resolve().parent
BROWSERS = ("chromium", "firefox")
PAGE_ORIGIN = "https://app.example.test"
API = "https://api.example.test"
PAGE_URL = f"{PAGE_ORIGIN}/har/page"
PREFIX = "/har/"
COOKIE_NAME, COOKIE_VALUE = "sid", "har-corpus-cookie-not-a-secret"
MAX_BODY = 4096
TLS_HOSTS = ("localhost", "*.localhost", "*.example.test")
DEFAULTS = (("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store"))
ALLOW = ("Access-Control-Allow-Origin", PAGE_ORIGIN)

# The page: the fetches one after the other (the HAR's order is the page's), what each saw in window.__har, then
# the title "done".
PAGE_JS = f"""
const API = {json.dumps(API)};
const go = async (name, url, init) => {{
  try {{
    const r = await fetch(url, init);
    return {{name, ok: true, status: r.status, body: await r.text()}};
  }} catch (e) {{
    return {{name, ok: false, error: String(e)}};
  }}
}};
(async () => {{
  const out = [];
  out.push(await go("allowed", API + "/har/allowed"));
  out.push(await go("no-acao", API + "/har/no-acao"));
  out.push(await go("put-404", API + "/har/put-404",
                    {{method: "PUT", headers: {{"Content-Type": "application/json"}}, body: '{{"n":1}}'}}));
  out.push(await go("credentialed", API + "/har/credentialed", {{credentials: "include"}}));
  out.push(await go("put-ok", API + "/har/put-ok",
                    {{method: "PUT", headers: {{"Content-Type": "application/json"}}, body: '{{"n":2}}'}}));
  out.push(await go("same-origin", "/har/same", {{method: "POST", body: "x=1"}}));
  window.__har = out;
  document.title = "done";
}})();
"""
PAGE_HTML = (
    "<!doctype html><html><head><meta charset=utf-8><title>har</title></head>"
    f"<body>har corpus page<script>{PAGE_JS}</script></body></html>"
).encode()

# Firefox: DevTools' HAR auto-export (written by Firefox when the page has loaded and the network was quiet).
FIREFOX_HAR_PREFS: dict[str, Any] = {
    "devtools.netmonitor.har.enableAutoExportToFile": True,
    "devtools.netmonitor.har.defaultFileName": "firefox",
    "devtools.netmonitor.har.pageLoadedTimeout": 1500,
    "devtools.netmonitor.har.includeResponseBodies": True,
    "devtools.toolbox.selectedTool": "netmonitor",
    "devtools.toolbox.host": "window",
}
OPEN_TOOLBOX_JS = r"""
const { require } = ChromeUtils.importESModule("resource://devtools/shared/loader/Loader.sys.mjs");
const { gDevTools } = require("devtools/client/framework/devtools");
const win = Services.wm.getMostRecentWindow("navigator:browser");
const toolbox = await gDevTools.showToolboxForTab(win.gBrowser.selectedTab, { toolId: "netmonitor" });
return [toolbox.currentToolId, Boolean(toolbox.harAutomation)];
"""
STORE_COOKIE_JS = r"""
const [host, name, value] = arguments;
Services.cookies.add(host, "/", name, value, true, false, true, Date.now() + 3600_000, {},
                     Ci.nsICookie.SAMESITE_NONE, Ci.nsICookie.SCHEME_HTTPS);
"""


def routes(backend: Backend) -> None:
    """What the backend answers (the paths under /har/, on every test host name)."""
    json_body = ("Content-Type", "application/json")
    backend.route("/har/page", Answer(body=PAGE_HTML, content_type="text/html; charset=utf-8"))
    backend.route("/har/allowed", Answer(headers=[ALLOW], body=b"allowed"))
    backend.route("/har/no-acao", Answer(body=b"no allow-origin"))
    backend.route("/har/put-404", OPTIONS=Answer(404, body=b"no preflight here"), PUT=Answer(headers=[ALLOW]))
    backend.route(
        "/har/credentialed",
        Answer(headers=[("Access-Control-Allow-Origin", "*"), ("Vary", "Origin")], body=b"credentialed"),
    )
    backend.route(
        "/har/put-ok",
        OPTIONS=Answer(
            204,
            headers=[
                ALLOW,
                ("Access-Control-Allow-Methods", "PUT"),
                ("Access-Control-Allow-Headers", "Content-Type"),
                ("Access-Control-Max-Age", "0"),
            ],
            body=b"",
        ),
        PUT=Answer(headers=[ALLOW, json_body], body=b'{"saved":true}'),
    )
    backend.route("/har/same", POST=Answer(body=b"same origin"))


@contextmanager
def live_proxy(work: Path) -> Iterator[tuple[Backend, Mitmdump]]:
    """The backend and a running mitmdump (the CORS addon, then the harness addon), as in the browser suite."""
    with Backend(tls_dir=work, tls_hosts=TLS_HOSTS, defaults=DEFAULTS) as backend:
        routes(backend)
        with browser_mitmdump(backend, work / "mitmdump", name="live") as proxy:
            yield backend, proxy


def record_chromium(work: Path, proxy: Mitmdump) -> tuple[Path, str, Any]:
    """Chromium through Playwright with ``record_har_path``: (the HAR, the browser version, the page's outcomes)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's chromium package"
    har = work / "chromium.har"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=launch_args(proxy.url),
        )
        try:
            context = browser.new_context(ignore_https_errors=True, record_har_path=str(har))
            context.add_cookies(
                [
                    {
                        "name": COOKIE_NAME,
                        "value": COOKIE_VALUE,
                        "domain": "api.example.test",
                        "path": "/",
                        "secure": True,
                        "sameSite": "None",
                        "httpOnly": False,
                    }
                ]
            )
            page = context.new_page()
            page.goto(PAGE_URL, wait_until="load")
            page.wait_for_function("document.title === 'done'", timeout=20_000)
            outcomes = page.evaluate("window.__har")
            page.wait_for_timeout(500)  # let the last response bodies land in the HAR
            context.close()  # writes the HAR
            version = str(browser.version)
        finally:
            browser.close()
    assert har.exists(), "Playwright wrote no HAR"
    return har, version, outcomes


class HarFirefox(Firefox):
    """The suite's Firefox with DevTools' HAR auto-export switched on, writing into ``har_dir``."""

    @property
    def har_dir(self) -> Path:
        return self.workdir / "har-export"

    def write_profile(self) -> None:
        super().write_profile()
        prefs = {**FIREFOX_HAR_PREFS, "devtools.netmonitor.har.defaultLogDir": str(self.har_dir)}
        with (self.profile / "user.js").open("a", encoding="utf-8") as f:
            f.writelines(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())


def record_firefox(work: Path, proxy: Mitmdump, timeout: float = 30.0) -> tuple[Path, str, Any]:
    """Firefox ESR with DevTools' HAR auto-export: (the HAR Firefox wrote, its version, the page's outcomes)."""
    firefox = HarFirefox(work / "firefox", proxy.port)
    with firefox:
        firefox.chrome(STORE_COOKIE_JS, "api.example.test", COOKIE_NAME, COOKIE_VALUE)
        tool, automation = firefox.chrome(OPEN_TOOLBOX_JS)
        assert (tool, automation) == ("netmonitor", True), f"the toolbox has no HAR automation: {tool}, {automation}"
        firefox.client.navigate(PAGE_URL)
        deadline = time.monotonic() + timeout
        while firefox.client.title != "done":
            assert time.monotonic() < deadline, "the page's fetches did not finish"
            time.sleep(0.05)
        outcomes = firefox.client.execute_script("return window.wrappedJSObject.__har")
        while not list(firefox.har_dir.glob("*.har")):
            assert time.monotonic() < deadline, f"Firefox exported no HAR into {firefox.har_dir}"
            time.sleep(0.1)
        time.sleep(0.5)  # the file is written asynchronously: let it complete
        (har,) = firefox.har_dir.glob("*.har")
        json.loads(har.read_text(encoding="utf-8"))  # complete
        return har, firefox.version, outcomes


def finish(source: Path, target: Path) -> dict[str, Any]:
    """The documented post-processing: bodies over MAX_BODY characters emptied, JSON re-indented. Refuses secrets."""
    har: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    for entry in har["log"]["entries"]:
        for holder in (entry["response"].get("content"), entry["request"].get("postData")):
            text = holder.get("text") if isinstance(holder, dict) else None
            if isinstance(text, str) and len(text) > MAX_BODY:
                holder["text"] = ""
                holder["comment"] = f"body of {len(text)} characters removed by tests/corpus/har/record.py"
        for message in (entry["request"], entry["response"]):
            for header in message.get("headers", []):
                name, value = header["name"].lower(), header["value"]
                assert name not in ("authorization", "proxy-authorization"), f"{name} in the HAR"
                if name in ("cookie", "set-cookie"):
                    assert value == f"{COOKIE_NAME}={COOKIE_VALUE}", f"unexpected cookie in the HAR: {value}"
    target.write_text(json.dumps(har, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return har


def live_summary(browser: str, version: str, proxy: Mitmdump, outcomes: Any) -> dict[str, Any]:
    """What the live run's report said (read after mitmdump has stopped and written its summary)."""
    summary = json.loads(proxy.report.summary_path.read_text(encoding="utf-8"))
    lines = sorted(proxy.report.lines(PREFIX), key=line_time)
    requests = [
        {
            "method": line["method"],
            "path": path_of(line),
            "kind": line["kind"],
            "verdict": line["verdict"],
            "reason": line["reason"],
            "firefox_reason": line["firefox_reason"],
        }
        for line in lines
    ]
    blocked = sum(1 for r in requests if r["verdict"] == "blocked")
    # The exit summary line, without mitmdump's time of day in front of it.
    summary_lines = [ln[ln.index("CORS summary:") :] for ln in proxy.output().splitlines() if "CORS summary:" in ln]
    assert summary["blocked"] == blocked, f"the exit summary counts {summary['blocked']} blocked, the lines {blocked}"
    return {
        "browser": browser,
        "browser_version": version,
        "page": PAGE_URL,
        "blocked": summary["blocked"],
        "summary": summary_lines[-1] if summary_lines else None,
        "requests": requests,
        "page_saw": outcomes,
    }


def record(browser: str, work: Path, out: Path) -> dict[str, Any]:
    """One browser's run: its HAR and live summary written into ``out``; the summary."""
    run = work / browser
    run.mkdir(parents=True, exist_ok=True)
    with live_proxy(run) as (_, proxy):
        recorder = record_chromium if browser == "chromium" else record_firefox
        har, version, outcomes = recorder(run, proxy)
        time.sleep(1)  # the report lines of the last flows
    # The proxy has stopped (SIGINT): its summary is written.
    live = live_summary(browser, version, proxy, outcomes)
    finish(har, out / f"{browser}.har")
    (out / f"{browser}.live.json").write_text(json.dumps(live, indent=1) + "\n", encoding="utf-8")
    return live


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.corpus.har.record", description=__doc__.split("\n")[0])
    parser.add_argument("--browser", choices=(*BROWSERS, "all"), default="all")
    parser.add_argument("--out", type=Path, default=HERE, help="where the HARs and live summaries go")
    parser.add_argument("--keep", type=Path, help="work directory to keep (logs, reports); default: a temporary one")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="har-corpus-"))
    work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        for browser in BROWSERS if args.browser == "all" else (args.browser,):
            live = record(browser, work, args.out)
            print(f"{browser} {live['browser_version']}: {live['summary']}")
            for r in live["requests"]:
                print(f"  {r['method']} {r['path']}: {r['verdict']} {r['reason'] or ''} {r['firefox_reason'] or ''}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
