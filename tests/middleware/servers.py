"""Starting the middleware app servers for the browser suite, and the wire they report to.

One server per framework process: uvicorn for every Starlette/FastAPI configuration, werkzeug for every Flask
one, node for every Express one, and one werkzeug process per Django configuration (Django's settings are
global). All start together, each on a free port with the same self-signed certificate, and are terminated at the
end. Each server reports every request it receives to the backend's ``/mw-wire`` route, which logs it as a
request the backend saw: the harness reads one wire (``Backend.requests``) whoever served the request.

No pytest, Playwright or mitmproxy import.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.backend import Answer, Backend, Seen, make_self_signed
from tests.harness.ports import free_port, wait_listening

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXPRESS = HERE / "express"
WIRE_PATH = "/mw-wire"
CERT_HOSTS = ("*.example.test", "api.example.test", "localhost")


@dataclass(frozen=True)
class Server:
    """One server process: its name, and the command before the common flags (``--port …``)."""

    name: str
    command: tuple[str, ...]


UVICORN = Server("uvicorn", (sys.executable, "-m", "tests.middleware.starlette_apps"))
FLASK = Server("flask", (sys.executable, "-m", "tests.middleware.flask_apps"))
EXPRESS_SERVER = Server("express", ("node", str(EXPRESS / "server.js")))


def server_for(framework: str, config: str) -> Server:
    """The process that serves ``config`` of ``framework``."""
    if framework in ("starlette", "fastapi"):
        return UVICORN
    if framework == "flask":
        return FLASK
    if framework == "django":
        return Server(f"django {config}", (sys.executable, "-m", "tests.middleware.django_app"))
    if framework == "express":
        return EXPRESS_SERVER
    raise ValueError(f"no server for framework {framework!r}")


def express_missing() -> str | None:
    """Why the Express server cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not all((EXPRESS / "node_modules" / package / "package.json").is_file() for package in ("cors", "express")):
        return f"run 'npm ci' in {EXPRESS.relative_to(REPO)} (tests/run does)"
    return None


def route_wire(backend: Backend) -> str:
    """Make the backend log each request a middleware server reports as one it saw; returns the URL to report to."""

    def log(report: Seen) -> Answer:
        data = json.loads(report.body)
        headers = tuple((str(k), str(v)) for k, v in data["headers"])
        backend.log(Seen(data["scheme"], data["method"], data["host"], data["target"], headers, b"", time.time()))
        return Answer(204, body=b"")

    backend.route(WIRE_PATH, log)
    return f"http://127.0.0.1:{backend.http_port}{WIRE_PATH}"


@dataclass
class Servers:
    """The middleware servers of a session: ``start`` them (each with its mounts), read their ports, ``close``."""

    workdir: Path
    wire: str
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, mounts: Mapping[Server, Mapping[str, str]], timeout: float = 30.0) -> None:
        """Start every server with its mounts (prefix -> configuration name) at once, then wait for each."""
        cert, key = make_self_signed(self.workdir, CERT_HOSTS)
        launch = {server.name: (server, prefixes) for server, prefixes in mounts.items()}
        for server, prefixes in launch.values():
            self._launch(server, prefixes, cert, key)
        for name in list(self.procs):
            for attempt in range(3):
                try:
                    wait_listening(self.ports[name], self.procs[name], what=name, timeout=timeout)
                    break
                except RuntimeError as e:
                    # Another program took the port between choosing and binding it: choose another.
                    if attempt == 2 or "in use" not in self.output(name):
                        raise RuntimeError(f"{e}:\n{self.output(name)}") from None
                    self._launch(*launch[name], cert, key)

    def _launch(self, server: Server, prefixes: Mapping[str, str], cert: Path, key: Path) -> None:
        port = free_port()
        flags = ["--port", str(port), "--cert", str(cert), "--key", str(key), "--wire", self.wire]
        command = [*server.command, *flags, "--mounts", json.dumps(dict(prefixes))]
        log = self.workdir / f"{server.name.replace(' ', '-')}.log"
        with log.open("wb") as out:
            self.procs[server.name] = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO
            )
        self.ports[server.name] = port

    def origin(self, server: Server) -> str:
        """The https origin the page uses for ``server`` (same site as the page: cookies are sent)."""
        return f"https://api.example.test:{self.ports[server.name]}"

    def output(self, name: str) -> str:
        path = self.workdir / f"{name.replace(' ', '-')}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def group(cases: Sequence[tuple[Server, str, str]]) -> dict[Server, dict[str, str]]:
    """(server, prefix, configuration) triples as each server's mounts."""
    out: dict[Server, dict[str, str]] = {}
    for server, prefix, config in cases:
        out.setdefault(server, {})[prefix] = config
    return out
