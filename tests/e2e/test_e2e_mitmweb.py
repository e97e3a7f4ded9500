"""The "CORS" content view in mitmweb, as a user sees it (#10): a real ``mitmweb -s addons/cors.py -r <capture>``
driven by headless Chromium. The blocked preflight's response shows the view by itself; the ambiguous
credentialed request shows it once "cors" is picked in the response's view menu. Each test asserts on the
rendered text and takes a screenshot (into its tmp_path; with ``MITMCORS_SCREENSHOTS=<dir>`` also there, as
``mitmweb-<mitmproxy major>-<name>.png``: the README's pictures are made that way).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.ui_capture import BLOCKED_PREFLIGHT_PATH, CREDENTIALS_DEPENDENT_PATH, PAGE_ORIGIN, write_ui_capture
from tests.harness.chromium import CHROMIUM, launch_args
from tests.harness.mitmdump import ADDON, REPO
from tests.harness.ports import free_port, stop_process, wait_listening

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, ViewportSize, expect

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

MITMWEB = Path(sys.executable).with_name("mitmweb")
# Wide enough for the flow list's URLs (the splitter at SPLIT_X) and ~115 columns of the view's text.
VIEWPORT: ViewportSize = {"width": 1480, "height": 860}
SPLIT_X = 560
MAJOR = version("mitmproxy").split(".")[0]
START_TIMEOUT = 30.0
UI_TIMEOUT_MS = 15_000
# mitmweb prints the address of its UI; mitmproxy 12 adds the `?token=…` its API requires (11 has no token).
LISTENING = re.compile(r"Web server listening at (http://\S+)")

if not CHROMIUM.exists():  # pragma: no cover - machines without Debian's Chromium
    pytest.skip(f"{CHROMIUM} not installed", allow_module_level=True)


@dataclass
class Mitmweb:
    url: str
    """The UI's address, with the token mitmproxy 12 requires."""
    log: Path
    proc: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def capture(confdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ui_capture(tmp_path_factory.mktemp("ui-capture"), confdir)


@pytest.fixture(scope="module")
def mitmweb(capture: Path, confdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mitmweb]:
    """``mitmweb -s addons/cors.py -r <capture>`` on free ports, once its UI listens and the addon judged the
    capture; terminated afterwards."""
    assert MITMWEB.exists(), f"mitmweb not found next to {sys.executable}"
    workdir = tmp_path_factory.mktemp("mitmweb")
    log = workdir / "mitmweb.log"
    web_port = free_port()
    command = [
        str(MITMWEB),
        "--no-web-open-browser",
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(web_port),
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(free_port()),
        "--set",
        f"confdir={confdir}",
        "-s",
        str(ADDON),
        "-r",
        str(capture),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    try:
        wait_listening(web_port, proc, what="mitmweb", timeout=START_TIMEOUT)
        web = Mitmweb(_wait_for(log, LISTENING, proc).group(1), log, proc)
        # The capture is read (and judged by the addon) after the server starts: wait for the last flow's line.
        _wait_for(log, re.compile(re.escape(CREDENTIALS_DEPENDENT_PATH)), proc)
        yield web
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), args=launch_args(), headless=True)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def page(browser: Browser, mitmweb: Mitmweb) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        p = context.new_page()
        p.set_default_timeout(UI_TIMEOUT_MS)
        p.goto(mitmweb.url)
        yield p
    finally:
        context.close()


def _wait_for(log: Path, pattern: re.Pattern[str], proc: subprocess.Popen[bytes]) -> re.Match[str]:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        text = log.read_text(encoding="utf-8", errors="replace")
        found = pattern.search(text)
        if found:
            return found
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"mitmweb never printed {pattern.pattern!r} (exit status {proc.poll()}):\n{text}")
        time.sleep(0.05)


def open_response(page: Page, path: str) -> None:
    """Select the flow to ``path`` in the flow list and open its Response tab; widen the detail pane."""
    page.locator(".flow-table tr", has_text=path).first.click()
    page.locator(".flow-detail nav a", has_text=re.compile(r"^Response$")).click()
    expect(page.locator(".flow-detail nav a.active")).to_have_text("Response")
    splitter = page.locator(".splitter-x").first.bounding_box()
    assert splitter is not None
    y = splitter["y"] + splitter["height"] / 2
    page.mouse.move(splitter["x"] + splitter["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(SPLIT_X, y, steps=5)
    page.mouse.up()


def cors_view_text(page: Page) -> str:
    """The rendered text of the response's content view, once it is the "CORS" view."""
    expect(page.locator(".contentview .controls h5")).to_have_text("CORS")
    pre = page.locator(".contentview pre")
    expect(pre).to_contain_text(PAGE_ORIGIN)
    return pre.inner_text()


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    """Screenshot into tmp_path (and into $MITMCORS_SCREENSHOTS as mitmweb-<major>-<name>.png when set)."""
    shot = tmp_path / f"mitmweb-{MAJOR}-{name}.png"
    page.screenshot(path=str(shot))
    target = os.environ.get("MITMCORS_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(target) / shot.name)
    return shot


def test_blocked_preflight_shows_the_cors_view_by_itself(page: Page, tmp_path: Path) -> None:
    open_response(page, BLOCKED_PREFLIGHT_PATH)
    text = cors_view_text(page)
    shot = screenshot(page, tmp_path, "blocked-preflight")
    assert text.startswith("preflight: BLOCKED — Chromium PreflightMissingAllowOriginHeader, Firefox"), text
    assert "OPTIONS http://127.0.0.1:" in text and f"{BLOCKED_PREFLIGHT_PATH} → HTTP 404" in text, text
    assert "access-control-allow-origin: (absent)" in text, text
    assert "Complete fix:" in text and f'"Access-Control-Allow-Origin": "{PAGE_ORIGIN}"' in text, text
    assert shot.stat().st_size > 10_000


def test_credentials_dependent_request_shows_the_cors_view_when_picked(page: Page, tmp_path: Path) -> None:
    open_response(page, CREDENTIALS_DEPENDENT_PATH)
    controls = page.locator(".contentview .controls")
    expect(controls.locator("h5")).to_have_text("JSON")  # not chosen by itself for a response with a body
    controls.locator("a", has_text="View:").click()
    controls.locator(".dropdown-menu a", has_text=re.compile(r"^cors$", re.IGNORECASE)).click()
    text = cors_view_text(page)
    shot = screenshot(page, tmp_path, "credentials-dependent")
    assert text.startswith("actual: ALLOWED — blocked if the page sends credentials"), text
    assert "With credentials: 'include': BLOCKED — Chromium WildcardOriginNotAllowed" in text, text
    assert shot.stat().st_size > 10_000
