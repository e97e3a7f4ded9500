"""Session fixtures for the browser suite: one backend, one mitmdump (addons/cors.py + harness_addon.py), one
headless Chromium; each scenario gets a fresh browser context (own cookies and preflight cache)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cors_backend import Backend
from cors_harness import Env, Report

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# The addon under test; CORS_BROWSER_ADDON points the suite at another script (e.g. while developing the harness).
ADDON = Path(os.environ.get("CORS_BROWSER_ADDON") or REPO / "addons" / "cors.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    b = Backend(tmp_path_factory.mktemp("backend"))
    try:
        yield b
    finally:
        b.close()


@contextlib.contextmanager
def running_mitmdump(backend: Backend, work: Path, *extra: str) -> Iterator[tuple[str, Report, Path]]:
    """Run a mitmdump with the CORS addon and the harness addon (plus ``extra`` arguments, e.g. ``--set
    cors_rules=…``) in ``work``; yields (proxy URL, report, log path) once it listens, and stops it after."""
    exe = Path(sys.executable).parent / "mitmdump"
    assert exe.exists(), f"mitmdump not found next to {sys.executable}"
    assert ADDON.exists(), f"the addon under test is missing: {ADDON}"
    report = work / "report.jsonl"
    log = work / "mitmdump.log"
    port = _free_port()
    args = [
        str(exe),
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "--set",
        f"confdir={work / 'conf'}",
        "--set",
        "ssl_insecure=true",
        "-s",
        str(ADDON),
        "-s",
        str(HERE / "harness_addon.py"),
        "--set",
        f"cors_report={report}",
        "--set",
        f"harness_http_port={backend.http_port}",
        "--set",
        f"harness_https_port={backend.https_port}",
        *extra,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mitmdump exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"mitmdump did not listen on {port}:\n{log.read_text(errors='replace')}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", Report(report), log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def mitmdump(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Report, Path]]:
    """A mitmdump running the CORS addon and the harness addon; yields (proxy URL, report, log path)."""
    with running_mitmdump(backend, tmp_path_factory.mktemp("mitmdump")) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def mitmdump_factory(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., tuple[str, Report, Path]]]:
    """Start more mitmdumps in front of the same backend, each with extra arguments (e.g. ``"--set",
    f"cors_rules={path}"``): ``start(*extra)`` returns (proxy URL, report, log path); all stop at session end.
    Browser contexts reach one with ``browser.new_context(proxy={"server": url})`` (Playwright keeps loopback
    proxied)."""
    with contextlib.ExitStack() as stack:

        def start(*extra: str) -> tuple[str, Report, Path]:
            work = tmp_path_factory.mktemp("mitmdump")
            return stack.enter_context(running_mitmdump(backend, work, *extra))

        yield start


@pytest.fixture(scope="session")
def chromium(mitmdump: tuple[str, Report, Path]) -> Iterator[Any]:
    """Debian's headless Chromium, sending everything (loopback too) through mitmdump."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's chromium package"
    from playwright.sync_api import sync_playwright

    proxy_url = mitmdump[0]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                f"--proxy-server={proxy_url}",
                "--proxy-bypass-list=<-loopback>",
                "--ignore-certificate-errors",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def env(backend: Backend, mitmdump: tuple[str, Report, Path], chromium: Any) -> Env:
    return Env(backend=backend, proxy_url=mitmdump[0], report=mitmdump[1], browser=chromium)


@pytest.fixture
def mitmdump_log(mitmdump: tuple[str, Report, Path]) -> Path:
    return mitmdump[2]
