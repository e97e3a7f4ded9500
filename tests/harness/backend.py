"""The one local backend of the suites and benchmarks: plain-http servers (and optionally one https server) on
127.0.0.1 sharing a route table, logging every request that reaches them.

A route answers one path (or, with ``prefix=True``, every path under it): the same :class:`Answer` for every
method, an :class:`Route` with an answer per method (and optionally a WebSocket handshake), or a function of
the request (e.g. to reflect its ``Origin``). An answer is sent exactly as given — its header lines in order,
repeated lines and non-ASCII bytes included — plus the backend's default lines it does not name and a
``Content-Length``. Requests with methods the standard library does not know (lower-case ``patch``) are
answered like any other.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import signal
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

HeaderLines = Sequence[tuple[str | bytes, str | bytes]]
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
NO_BODY_STATUSES = (204, 304)


def as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


@dataclass(frozen=True)
class Answer:
    """What the backend sends: exactly these header lines (plus defaults and Content-Length), in order."""

    status: int = 200
    headers: HeaderLines = ()
    body: bytes = b"ok"
    content_type: str | None = None
    """A Content-Type line to add (unless ``headers`` has one)."""
    cut_short: bool = False
    """Announce more body than is sent, then close: the upstream dies in the middle of the response."""


@dataclass(frozen=True)
class Route:
    """Answers by request method; ``"*"`` answers any method not listed. ``websocket``: accept a WebSocket
    handshake (send one text frame ``hi``, then wait for the client to go away)."""

    replies: Mapping[str, Answer]
    websocket: bool = False

    def answer_for(self, method: str) -> Answer | None:
        return self.replies.get(method, self.replies.get("*"))


@dataclass(frozen=True)
class Seen:
    """One request as it reached the backend."""

    scheme: str
    method: str
    host: str
    target: str
    """The request target as sent (path and query)."""
    headers: tuple[tuple[str, str], ...]
    body: bytes
    time: float

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    def header(self, name: str) -> str | None:
        """All lines of header ``name`` joined with ", ", or None without one."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None


Responder = Callable[[Seen], Answer]
NOT_ROUTED = Answer(404, body=b"no route")
METHOD_NOT_ROUTED = Answer(405, body=b"method not routed")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 20  # idle keep-alive connections
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the suites read the backend's log from `Backend.requests`, not from stderr."""

    def handle_one_request(self) -> None:
        # Any method token reaches _handle (the standard library dispatches only to do_<METHOD>).
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._handle()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        backend = self.server.backend
        seen = Seen(
            scheme=self.server.scheme,
            method=self.command,
            host=self.headers.get("Host", ""),
            target=self.path,
            headers=tuple(self.headers.items()),
            body=body,
            time=time.time(),
        )
        backend.log(seen)
        route = backend.route_for(seen.path)
        if isinstance(route, Route) and route.websocket and self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket()
            return
        if route is None:
            answer = NOT_ROUTED
        elif isinstance(route, Route):
            answer = route.answer_for(self.command) or METHOD_NOT_ROUTED
        else:
            answer = route(seen)
        self._send(answer, backend.defaults)

    def _send(self, answer: Answer, defaults: HeaderLines) -> None:
        try:
            phrase = HTTPStatus(answer.status).phrase
        except ValueError:
            phrase = "Whatever"
        lines = list(answer.headers)
        if answer.content_type is not None:
            lines.append(("Content-Type", answer.content_type))
        named = {as_bytes(name).lower() for name, _ in lines}
        lines += [(k, v) for k, v in defaults if as_bytes(k).lower() not in named]
        body = b"" if self.command == "HEAD" or answer.status in NO_BODY_STATUSES else answer.body
        if answer.status not in NO_BODY_STATUSES:
            lines.append(("Content-Length", str(len(answer.body) + (1000 if answer.cut_short else 0))))
        if answer.cut_short:
            lines.append(("Connection", "close"))
            self.close_connection = True
        head = [f"HTTP/1.1 {answer.status} {phrase}".encode()]
        head += [as_bytes(name) + b": " + as_bytes(value) for name, value in lines]
        self.wfile.write(b"\r\n".join(head) + b"\r\n\r\n" + body)

    def _websocket(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.write(b"\x81\x02hi")  # one unmasked text frame
        self.wfile.flush()
        self.connection.settimeout(5)
        try:
            while self.connection.recv(4096):
                pass
        except OSError:
            pass
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, backend: Backend, scheme: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.backend = backend
        self.scheme = scheme


def make_self_signed(directory: Path, hosts: Sequence[str]) -> tuple[Path, Path]:
    """Write a self-signed certificate for ``hosts`` (and 127.0.0.1) and its key; return their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cors-backend")])
    now = datetime.datetime.now(datetime.UTC)
    san: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    san.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "backend-cert.pem"
    key_path = directory / "backend-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Backend:
    """``http_servers`` plain-http servers and, with ``tls_dir``, one https server (a self-signed certificate for
    ``tls_hosts`` is written there), all on 127.0.0.1, sharing one route table and one request log.

    ``defaults``: header lines added to every answer that does not name them (e.g. ``Cache-Control: no-store``).
    """

    def __init__(
        self,
        *,
        http_servers: int = 1,
        tls_dir: Path | None = None,
        tls_hosts: Sequence[str] = ("localhost",),
        defaults: HeaderLines = (),
    ) -> None:
        self.defaults = tuple(defaults)
        self._lock = threading.Lock()
        self._routes: dict[str, Route | Responder] = {}
        self._prefixes: dict[str, Route | Responder] = {}
        self._seen: list[Seen] = []
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self.http_ports = [self._start("http", None) for _ in range(http_servers)]
        self.https_port: int | None = None
        if tls_dir is not None:
            cert, key = make_self_signed(tls_dir, tls_hosts)
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(cert, key)
            self.https_port = self._start("https", tls)

    def _start(self, scheme: str, tls: ssl.SSLContext | None) -> int:
        server = _Server(self, scheme)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"backend-{scheme}", daemon=True
        )
        thread.start()
        self._servers.append(server)
        self._threads.append(thread)
        return int(server.server_address[1])

    @property
    def http_port(self) -> int:
        return self.http_ports[0]

    @property
    def a(self) -> str:
        """The first plain-http origin."""
        return f"http://127.0.0.1:{self.http_ports[0]}"

    @property
    def b(self) -> str:
        """The second plain-http origin (another origin on the same machine, e.g. for redirect targets)."""
        return f"http://127.0.0.1:{self.http_ports[1]}"

    def route(
        self, path: str, answer: Answer | Route | Responder | None = None, *, prefix: bool = False, **by_method: Answer
    ) -> str:
        """Answer ``path`` (query ignored; with ``prefix``, every path starting with it) with ``answer`` or per
        method (``OPTIONS=Answer(...)``); returns ``path``. Registering a path again with another answer is an
        error: give each test its own path."""
        if answer is None:
            route: Route | Responder = Route(dict(by_method))
        elif isinstance(answer, Answer):
            route = Route({"*": answer, **by_method})
        else:
            assert not by_method, "per-method answers go into the Route"
            route = answer
        table = self._prefixes if prefix else self._routes
        with self._lock:
            old = table.setdefault(path, route)
        assert old == route, f"route {path} registered twice with different answers: use a unique path per test"
        return path

    def route_for(self, path: str) -> Route | Responder | None:
        """The exact route of ``path``, else the longest prefix route it starts with."""
        with self._lock:
            found = self._routes.get(path)
            if found is not None:
                return found
            prefixes = [p for p in self._prefixes if path.startswith(p)]
            return self._prefixes[max(prefixes, key=len)] if prefixes else None

    def log(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def requests(self, prefix: str = "/") -> list[Seen]:
        """The requests that reached the backend whose path starts with ``prefix``, in arrival order."""
        with self._lock:
            return [s for s in self._seen if s.path.startswith(prefix)]

    def requests_to(self, path: str) -> list[Seen]:
        """The requests to exactly ``path`` (query ignored)."""
        with self._lock:
            return [s for s in self._seen if s.path == path]

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
        for thread in self._threads:
            thread.join(timeout=5)
        for server in self._servers:
            server.server_close()

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def serve_until_terminated(backend: Backend) -> int:
    """Print ``port <n>`` (the first plain-http port) and serve until SIGTERM or Ctrl-C; for subprocess backends."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"port {backend.http_port}", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        backend.close()
    return 0
