"""Fixtures every suite shares."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    """One Playwright for the whole session: its sync API runs an event loop in this thread, and a second one
    cannot start while the first runs (the browser suite's Chromium and the mitmweb screenshots share it)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        yield pw
