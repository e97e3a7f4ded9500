"""Session fixtures for the end-to-end suite: a loopback backend (two origins), one long-running
`mitmdump -s addons/cors.py` for the live tests, and one recorded session (saved with `-w`, stopped with SIGINT)
for the tests about the log, the exit summary, secrets, saved captures and read-back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.recording import Recording, record
from tests.harness.backend import Backend
from tests.harness.mitmdump import Mitmdump


@pytest.fixture(scope="session")
def backend() -> Iterator[Backend]:
    with Backend(http_servers=2) as b:
        yield b


@pytest.fixture(scope="session")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mitmproxy's configuration directory (its CA is generated once, outside the user's home)."""
    return tmp_path_factory.mktemp("mitmproxy-conf")


@pytest.fixture(scope="session")
def proxy(confdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mitmdump]:
    """A live mitmdump running the addon in inspect-only mode, writing a report."""
    with Mitmdump(tmp_path_factory.mktemp("live"), confdir=confdir, name="live") as p:
        yield p


@pytest.fixture(scope="session")
def recording(backend: Backend, confdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return record(backend, tmp_path_factory.mktemp("recording"), confdir)
