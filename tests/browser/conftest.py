"""Session fixtures for the browser suite: one backend, one mitmdump (addons/cors.py + harness_addon.py), one
headless Chromium (each scenario gets a fresh browser context: own cookies and preflight cache) and one headless
Firefox ESR (cleared before each scenario). Every scenario run through the plain mitmdump is recorded in the
corpus session, compared with (or written to) tests/corpus at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.harness.backend import Answer, Backend
from tests.harness.browser import PAGE_HTML, Env
from tests.harness.chromium import CHROMIUM, launch_args
from tests.harness.corpus import FIREFOX_CORPUS, CorpusSession
from tests.harness.firefox import Firefox
from tests.harness.mitmdump import Mitmdump, browser_mitmdump

# Every answer that does not say otherwise: plain text, never cached by the browsers.
DEFAULTS = (("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store"))
PAGE = Answer(body=PAGE_HTML, content_type="text/html; charset=utf-8")
CORPUS_TESTS = ("test_chromium_answers_match_the_corpus", "test_firefox_answers_match_the_corpus")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The corpus comparisons run last: they need every scenario of the session."""
    items.sort(key=lambda item: item.name in CORPUS_TESTS)


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """http and https on 127.0.0.1; harness_addon maps the test host names (port 80/443) to it."""
    tls_hosts = ["localhost", "*.localhost", "*.example.test"]
    with Backend(tls_dir=tmp_path_factory.mktemp("backend"), tls_hosts=tls_hosts, defaults=DEFAULTS) as b:
        b.route("/", PAGE)
        b.route("/page", PAGE)
        yield b


@pytest.fixture(scope="session")
def mitmdump(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mitmdump]:
    """A mitmdump running the CORS addon and the harness addon."""
    with browser_mitmdump(backend, tmp_path_factory.mktemp("mitmdump")) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def mitmdump_factory(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Mitmdump]]:
    """Start more mitmdumps in front of the same backend, each with extra arguments (e.g. ``"--set",
    f"cors_rules={path}"``); all stop at session end. Browser contexts reach one with
    ``browser.new_context(proxy={"server": proxy.url})`` (Playwright keeps loopback proxied)."""
    with contextlib.ExitStack() as stack:

        def start(*extra: str) -> Mitmdump:
            return stack.enter_context(browser_mitmdump(backend, tmp_path_factory.mktemp("mitmdump"), *extra))

        yield start


@pytest.fixture(scope="session")
def chromium(playwright: Any, mitmdump: Mitmdump) -> Iterator[Any]:
    """Debian's headless Chromium, sending everything (loopback too) through mitmdump."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's chromium package"
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=launch_args(mitmdump.url))
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="session")
def corpus(chromium: Any) -> CorpusSession:
    """Where this session's scenario runs through the plain mitmdump are recorded."""
    return CorpusSession(version=chromium.version)


@pytest.fixture(scope="session")
def env(backend: Backend, mitmdump: Mitmdump, chromium: Any, corpus: CorpusSession) -> Env:
    return Env(backend=backend, proxy_url=mitmdump.url, report=mitmdump.report, browser=chromium, record=corpus.add)


@pytest.fixture(scope="session")
def firefox(mitmdump: Mitmdump, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firefox]:
    """Debian's headless Firefox ESR (driven through Marionette), sending everything through mitmdump."""
    with Firefox(tmp_path_factory.mktemp("firefox"), mitmdump.port) as browser:
        yield browser


@pytest.fixture(scope="session")
def firefox_corpus(firefox: Firefox) -> CorpusSession:
    """Where this session's Firefox runs are recorded."""
    return CorpusSession(version=firefox.version, path=FIREFOX_CORPUS, browser="firefox")


@pytest.fixture(scope="session")
def firefox_env(backend: Backend, mitmdump: Mitmdump, firefox: Firefox, firefox_corpus: CorpusSession) -> Env:
    return Env(
        backend=backend, proxy_url=mitmdump.url, report=mitmdump.report, browser=firefox, record=firefox_corpus.add
    )
