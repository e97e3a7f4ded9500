"""Pieces of the end-to-end suite: a scriptable loopback backend, a client that talks to a proxy the way a
browser puts requests on the wire, and a handle on a real `mitmdump -s addons/cors.py` process.

No mitmproxy import here: the suite only sees what a user of the addon sees (the wire, the report file, the
terminal output and saved capture files).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
# The addon under test; CORS_E2E_ADDON points the suite at another copy (e.g. a mutated one).
ADDON = Path(os.environ.get("CORS_E2E_ADDON") or REPO / "addons" / "cors.py")
MITMDUMP = Path(sys.executable).parent / "mitmdump"

# The page that makes the cross-origin requests (a dev server, as in the product's first use case).
PAGE_ORIGIN = "http://localhost:5173"

# Keys every report line carries: product.md's metadata["cors"] table plus what the report adds.
REPORT_KEYS: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "verdict": (str,),
    "reason": (str, type(None)),
    "firefox_reason": (str, type(None)),
    "message": (str,),
    "credentials": (str,),
    "if_credentials": (dict, type(None)),
    "preflight_id": (str, type(None)),
    "request_ids": (list,),
    "unreadable_headers": (list,),
    "warnings": (list,),
    "rule": (str, type(None)),
    "upstream": (dict, type(None)),
    "flow_id": (str,),
    "method": (str,),
    "url": (str,),
    "timestamp": (int, float),
}

HeaderList = Sequence[tuple[str | bytes, str | bytes]]


def as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


# --------------------------------------------------------------------------------------------------
# Backend


@dataclass(frozen=True)
class Answer:
    """What the backend sends for one path: exactly these header lines (plus Content-Length), in order."""

    status: int = 200
    headers: HeaderList = ()
    body: bytes = b"backend body"
    # Announce more body than is sent, then close: the upstream dies in the middle of the response.
    cut_short: bool = False


@dataclass(frozen=True)
class Seen:
    """One request as it reached the backend."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the suite reads the backend's log from `Backend.seen`, not from stderr."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        backend = self.server.backend
        backend.record(Seen(self.command, self.path, tuple(self.headers.items())))
        answer = backend.answer_for(self.command, urlsplit(self.path).path)
        if answer is None:
            answer = Answer(500, [("Content-Type", "text/plain")], f"no route for {self.path}".encode())
        try:
            phrase = HTTPStatus(answer.status).phrase.encode()
        except ValueError:
            phrase = b"Whatever"
        head = [b"HTTP/1.1 %d %s" % (answer.status, phrase)]
        head += [as_bytes(name) + b": " + as_bytes(value) for name, value in answer.headers]
        length = len(answer.body) + (1000 if answer.cut_short else 0)
        head += [b"Content-Length: %d" % length, b"Connection: close"]
        self.wfile.write(b"\r\n".join(head) + b"\r\n\r\n" + (b"" if self.command == "HEAD" else answer.body))
        self.wfile.flush()
        self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, backend: Backend) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.backend = backend


class Backend:
    """Two loopback origins (A and B, two ports) sharing one route table; every request is recorded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, dict[str, Answer]] = {}
        self.seen: list[Seen] = []
        self._servers = [_Server(self), _Server(self)]
        self._threads = [
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True) for s in self._servers
        ]
        for t in self._threads:
            t.start()

    @property
    def a(self) -> str:
        """Origin A, where the API lives."""
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def b(self) -> str:
        """Origin B: another origin on the same machine (redirect targets)."""
        return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    def route(self, path: str, answer: Answer | None = None, **by_method: Answer) -> str:
        """Answer `path` (query ignored) with `answer`, or per method (`OPTIONS=Answer(...)`); returns the path."""
        table = dict(by_method)
        if answer is not None:
            table["*"] = answer
        with self._lock:
            assert path not in self._routes, f"route {path} registered twice: use a unique path per test"
            self._routes[path] = table
        return path

    def answer_for(self, method: str, path: str) -> Answer | None:
        with self._lock:
            table = self._routes.get(path, {})
        return table.get(method, table.get("*"))

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def requests_to(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if urlsplit(s.target).path == path]

    def close(self) -> None:
        for s in self._servers:
            s.shutdown()
        for t in self._threads:
            t.join()
        for s in self._servers:
            s.server_close()


# --------------------------------------------------------------------------------------------------
# Client


@dataclass(frozen=True)
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def send(proxy_port: int, method: str, url: str, headers: HeaderList = (), body: bytes | None = None) -> Reply:
    """One request through the proxy in absolute-form, with exactly these header lines (plus Host)."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=15)
    try:
        conn.putrequest(method, url, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, tuple(resp.getheaders()), data)
    finally:
        conn.close()


def cors_headers(origin: str = PAGE_ORIGIN, mode: str = "cors", site: str = "cross-site") -> list[tuple[str, str]]:
    """What Chromium adds to a fetch() from `origin`."""
    return [
        ("Origin", origin),
        ("Sec-Fetch-Mode", mode),
        ("Sec-Fetch-Site", site),
        ("Sec-Fetch-Dest", "empty"),
        ("Accept", "*/*"),
    ]


def preflight_headers(method: str, headers: str | None = None, origin: str = PAGE_ORIGIN) -> list[tuple[str, str]]:
    """What Chromium sends as the CORS preflight for `method` with unsafe request headers `headers`."""
    lines = [("Access-Control-Request-Method", method)]
    if headers:
        lines.append(("Access-Control-Request-Headers", headers))
    return [*cors_headers(origin), *lines]


# --------------------------------------------------------------------------------------------------
# mitmdump


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_report(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def path_of(line: Mapping[str, Any]) -> str:
    return urlsplit(line["url"]).path


@dataclass
class Mitmdump:
    """A real `mitmdump -s addons/cors.py` subprocess, its output in files under `workdir`."""

    workdir: Path
    confdir: Path
    extra: Sequence[str] = ()
    name: str = "mitmdump"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def report_path(self) -> Path:
        return self.workdir / f"{self.name}.report.jsonl"

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"{self.name}.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"{self.name}.stderr"

    def args(self) -> list[str]:
        return [
            str(MITMDUMP),
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            str(self.port),
            "--set",
            f"confdir={self.confdir}",
            "-s",
            str(ADDON),
            "--set",
            f"cors_report={self.report_path}",
            *self.extra,
        ]

    def start(self) -> None:
        assert MITMDUMP.exists(), f"mitmdump not found next to {sys.executable}"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                self.args(), stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=REPO, env=env
            )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mitmdump exited with {self.proc.returncode}:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"mitmdump did not listen on {self.port}:\n{self.output()}") from None
                time.sleep(0.05)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        """Ask mitmdump to exit the way a user does (Ctrl-C / SIGTERM) and wait; returns its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(f"mitmdump ignored signal {sig}:\n{self.output()}") from None
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def output(self) -> str:
        err = self.stderr_path.read_text(encoding="utf-8", errors="replace") if self.stderr_path.exists() else ""
        return self.stdout() + err

    def mark(self) -> tuple[int, int]:
        """A position in the output, for `output_since`."""
        return self.stdout_path.stat().st_size, self.stderr_path.stat().st_size

    def output_since(self, mark: tuple[int, int]) -> str:
        """What mitmdump printed (stdout, then stderr) after `mark`."""
        texts = []
        for path, offset in zip((self.stdout_path, self.stderr_path), mark, strict=True):
            with path.open("rb") as f:
                f.seek(offset)
                texts.append(f.read().decode("utf-8", "replace"))
        return "".join(texts)

    def report(self) -> list[dict[str, Any]]:
        return read_report(self.report_path)

    def send(self, method: str, url: str, headers: HeaderList = (), body: bytes | None = None) -> Reply:
        return send(self.port, method, url, headers, body)

    def lines_for(self, path: str, count: int, timeout: float = 2.0) -> list[dict[str, Any]]:
        """The report lines of flows to `path`, waiting until there are `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.report() if path_of(line) == path]
            if len(lines) >= count or time.monotonic() > deadline:
                assert len(lines) == count, f"expected {count} report lines for {path}, got {lines}"
                return lines
            time.sleep(0.02)


def run_readback(
    source: Path, workdir: Path, confdir: Path, name: str, extra: Iterable[str] = ()
) -> tuple[list[dict[str, Any]], str]:
    """`mitmdump -n -r <source> -s addons/cors.py --set cors_report=...`: the report lines and the output."""
    report = workdir / f"{name}.report.jsonl"
    args = [
        str(MITMDUMP),
        "-n",
        "-r",
        str(source),
        "--set",
        f"confdir={confdir}",
        "-s",
        str(ADDON),
        "--set",
        f"cors_report={report}",
        *extra,
    ]
    done = subprocess.run(args, capture_output=True, cwd=REPO, timeout=60, stdin=subprocess.DEVNULL, check=False)
    output = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, f"{' '.join(args)} exited with {done.returncode}:\n{output}"
    return read_report(report), output
