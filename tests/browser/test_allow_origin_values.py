"""Access-Control-Allow-Origin values through real browsers: the evaluator names the failure as each browser does.

A loopback server answers `Access-Control-Allow-Origin: <value>` (the value's exact bytes) on one origin; a page on
another loopback origin fetches each one. Chromium's reason is CDP's `corsErrorStatus.corsError` per request
(InvalidAllowOriginValue when `GURL(value)` is invalid, else AllowOriginMismatch: BROWSERS.md §5.2); Firefox's is
the category of its console message (Firefox does not parse the value: §5.3). For each value, `evaluate()` on the
same request and response must give the same two reasons.

The values are a deterministic sample of tests/corpus/url_validity.json that a header can carry, plus one value of
each class `mitmcors.urlparse` treats specially. Chromium: Debian's /usr/bin/chromium through Playwright. Firefox:
Debian's /usr/bin/firefox-esr through Marionette (`marionette-driver`); skipped when it is not installed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mitmcors.evaluator import PlainHeaders, Request, Response, evaluate
from tests.corpus.url_validity import (
    CHROMIUM,
    AllowOriginServer,
    chromium_cors_errors,
    header_carriable,
    launch_chromium,
)
from tests.harness.ports import stop_process

pytestmark = pytest.mark.browser

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "url_validity.json"
FIREFOX = Path("/usr/bin/firefox-esr")
SAMPLE_SIZE = 360
SEED = 7
# One of each class urlparse handles apart from the plain "scheme://host:port" shape.
CLASSES = [
    "http://a.test",  # valid, mismatching
    "a.test",  # no scheme
    "http://a^b",  # forbidden host code point
    "http://a%20b",  # Chromium escapes a space in a host
    "http://a%zz",  # bad percent-escape in a host
    "http://[::%31]",  # decoded before the IPv6 parser
    "http://a.test:99999",  # port out of range
    "chrome://a.test:x",  # host-only scheme: port not checked
    "http://xn--",  # ASCII host: no IDNA
    "http://\u00fc.test",  # IDNA
    "http://a\u200cb",  # CheckJoiners
    "http://a.\u05d0.1a",  # CheckBidi
    "file://a?b",  # file host ends at a slash only
    "http://1.2.3.256",  # IPv4 out of range
    "http://0x7f.1",  # IPv4 hex
    "filesystem:http://a/temporary/x",
    "data:a.test",
    "http://a\tb",  # tab removed
    "\x01data://a\tb",  # data: keeps its tab (GURL trims the control first; Blink's new URL does not)
    "foo://a\u0140b",  # opaque host: fine in GURL (Blink's new URL truncates U+0140 to `@`)
    "foo://a%zz",  # opaque host keeps escapes
    "foo://a^b",  # forbidden in an opaque host
    "http://a\udcffb",  # a byte that is not UTF-8, in a host
    "http://a.test/\udcff",  # ... in a path
]


def sample() -> list[str]:
    table: dict[str, bool] = json.loads(CORPUS.read_text(encoding="ascii"))["values"]
    carriable = sorted(v for v in table if header_carriable(v))
    assert all(v in table and header_carriable(v) for v in CLASSES)
    picked = set(random.Random(SEED).sample(carriable, SAMPLE_SIZE)) | set(CLASSES)
    return sorted(picked)


VALUES = sample()
IDS = [f"{i}:{repr(v)[:50]}" for i, v in enumerate(VALUES)]


def evaluated(value: str, port: int, index: int) -> tuple[str | None, str | None]:
    """(Chromium reason, Firefox reason) from the evaluator, for the request the page sent."""
    origin = f"http://127.0.0.1:{port}"
    request = Request(
        "GET",
        "http",
        "localhost",
        port,
        f"/v/{index}",
        PlainHeaders([("Origin", origin), ("Sec-Fetch-Mode", "cors"), ("Sec-Fetch-Site", "same-site")]),
    )
    response = Response(200, PlainHeaders([("Access-Control-Allow-Origin", value), ("Content-Type", "text/plain")]))
    outcome = evaluate(request, response).outcome
    return (
        None if outcome.reason is None else str(outcome.reason),
        None if outcome.firefox_reason is None else str(outcome.firefox_reason),
    )


# ---------------------------------------------------------------------------------------------------------
# Chromium


@pytest.fixture(scope="module")
def chromium_reasons() -> tuple[int, list[str | None]]:
    """(the server's port, Chromium's CorsError per value)."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's chromium package"
    from playwright.sync_api import sync_playwright

    def measure() -> tuple[int, list[str | None]]:
        with sync_playwright() as pw, AllowOriginServer(VALUES) as server:
            browser = launch_chromium(pw)
            try:
                return server.port, chromium_cors_errors(browser, server)
            finally:
                browser.close()

    # A thread of its own: the suite's session-wide Playwright (conftest.py) may be running in this one, and the
    # sync API allows one per thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(measure).result()


# ---------------------------------------------------------------------------------------------------------
# Firefox (Marionette)

CONSOLE_LISTENER = """
  window.__cors = [];
  const listener = { observe(message) {
    try {
      const e = message.QueryInterface(Ci.nsIScriptError);
      window.__cors.push([e.category, e.errorMessage]);
    } catch (x) {}
  } };
  Services.console.registerListener(listener);
  window.__corsListener = listener;
"""
FETCH_ALL = """
  const [base, count, resolve] = arguments;
  Promise.all([...Array(count).keys()].map(i =>
    fetch(`${base}/v/${i}`, {cache: "no-store"}).then(r => r.text(), e => null))).then(() => resolve(true));
"""
FIREFOX_PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "extensions.update.enabled": False,
    "browser.aboutwelcome.enabled": False,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def firefox_session(profile: Path) -> Iterator[Any]:
    """Debian's firefox-esr, headless, with Marionette on a port of its own; yields the Marionette client."""
    with warnings.catch_warnings():
        # mozinfo (imported by marionette_driver) calls the deprecated distro.linux_distribution() on import.
        warnings.simplefilter("ignore", DeprecationWarning)
        from marionette_driver.marionette import Marionette  # type: ignore[import-untyped]

    port = _free_port()
    prefs = {**FIREFOX_PREFS, "marionette.port": port}
    (profile / "user.js").write_text(
        "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items()), encoding="utf-8"
    )
    process = subprocess.Popen(
        [
            str(FIREFOX),
            "--headless",
            "--marionette",
            "-remote-allow-system-access",
            "-no-remote",
            "--profile",
            str(profile),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"firefox-esr did not open Marionette on port {port}")
            time.sleep(0.2)
        client = Marionette(host="127.0.0.1", port=port)
        client.start_session()
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.delete_session()
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def firefox_reasons(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[str | None]]:
    """(the server's port, Firefox's reason key per value: its console message's category)."""
    if not FIREFOX.exists():
        pytest.skip(f"{FIREFOX} is not installed (Debian package firefox-esr)")
    profile = tmp_path_factory.mktemp("firefox-profile")
    try:
        with AllowOriginServer(VALUES) as server, firefox_session(profile) as client:
            client.timeout.script = 120
            client.set_context(client.CONTEXT_CHROME)
            client.execute_script(CONSOLE_LISTENER)
            client.set_context(client.CONTEXT_CONTENT)
            client.navigate(server.page_url)
            client.execute_async_script(FETCH_ALL, script_args=[server.value_base, len(VALUES)])
            client.set_context(client.CONTEXT_CHROME)
            by_index: dict[int, str] = {}
            pattern = re.compile(re.escape(server.value_base) + r"/v/(\d+)\b")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                for category, message in client.execute_script("return window.__cors;"):
                    found = pattern.search(message)
                    if found and category.startswith("CORS"):
                        by_index.setdefault(int(found.group(1)), category)
                if len(by_index) >= len(VALUES):
                    break
                time.sleep(0.2)
            client.execute_script("Services.console.unregisterListener(window.__corsListener);")
            return server.port, [by_index.get(i) for i in range(len(VALUES))]
    finally:
        shutil.rmtree(profile, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------


def test_sample_is_broad() -> None:
    assert len(VALUES) >= 300
    table: dict[str, bool] = json.loads(CORPUS.read_text(encoding="ascii"))["values"]
    valid = sum(table[v] for v in VALUES)
    assert 50 < valid < len(VALUES) - 50


@pytest.mark.parametrize("index", range(len(VALUES)), ids=IDS)
def test_chromium_reason(index: int, chromium_reasons: tuple[int, list[str | None]]) -> None:
    port, reasons = chromium_reasons
    chromium, _firefox = evaluated(VALUES[index], port, index)
    assert reasons[index] == chromium, f"{VALUES[index]!r}: Chromium said {reasons[index]}, the evaluator {chromium}"


@pytest.mark.parametrize("index", range(len(VALUES)), ids=IDS)
def test_firefox_reason(index: int, firefox_reasons: tuple[int, list[str | None]]) -> None:
    port, reasons = firefox_reasons
    _chromium, firefox = evaluated(VALUES[index], port, index)
    assert reasons[index] == firefox, f"{VALUES[index]!r}: Firefox said {reasons[index]}, the evaluator {firefox}"
