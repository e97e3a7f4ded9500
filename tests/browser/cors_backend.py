"""A scriptable local HTTP and HTTPS backend for the browser suite.

Each scenario registers a :class:`Route` per path (``/s/<scenario>/...``) telling the backend what to answer,
per request method: status, header lines (repeatable, in order), body. Every request that reaches the backend
is logged, so tests can tell which requests Chromium really put on the wire.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

PAGE_HTML = b"<!doctype html><html><head><meta charset=utf-8><title>app</title></head><body>app</body></html>"
# A 1x1 transparent PNG.
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass(frozen=True)
class Reply:
    """What the backend answers: status, header lines (repeatable, in order) and a body."""

    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b"ok"
    content_type: str | None = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Route:
    """Replies by request method; ``"*"`` answers any method not listed."""

    replies: Mapping[str, Reply]
    websocket: bool = False

    def reply_for(self, method: str) -> Reply | None:
        return self.replies.get(method, self.replies.get("*"))


@dataclass(frozen=True)
class Seen:
    """One request as it reached the backend."""

    scheme: str
    method: str
    host: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    time: float

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None


@dataclass
class Registry:
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, route: Route) -> None:
        with self.lock:
            self.routes[path] = route

    def get(self, path: str) -> Route | None:
        with self.lock:
            return self.routes.get(path)

    def log(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)

    def requests(self, prefix: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path.startswith(prefix)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cors-backend/1"
    timeout = 20
    registry: Registry  # set on the subclass per server
    scheme: str

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        self.registry.log(
            Seen(
                scheme=self.scheme,
                method=self.command,
                host=self.headers.get("Host", ""),
                path=path,
                headers=tuple(self.headers.items()),
                body=body,
                time=time.time(),
            )
        )
        route = self.registry.get(path)
        if route is not None and route.websocket and self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket()
            return
        if route is None:
            if path in ("/", "/page"):
                reply = Reply(body=PAGE_HTML, content_type="text/html; charset=utf-8")
            else:
                reply = Reply(status=404, body=b"no route")
        else:
            found = route.reply_for(self.command)
            reply = found if found is not None else Reply(status=405, body=b"method not routed")
        self.send_response(reply.status)
        names = {name.lower() for name, _ in reply.headers}
        if reply.content_type and "content-type" not in names:
            self.send_header("Content-Type", reply.content_type)
        if "cache-control" not in names:
            self.send_header("Cache-Control", "no-store")
        for name, value in reply.headers:
            self.send_header(name, value)
        payload = b"" if self.command == "HEAD" or reply.status in (204, 304) else reply.body
        if reply.status not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _websocket(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        # One unmasked text frame "hi", then wait for the client to go away.
        self.wfile.write(b"\x81\x02hi")
        self.wfile.flush()
        self.connection.settimeout(5)
        try:
            while self.connection.recv(4096):
                pass
        except OSError:
            pass
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle

    def handle_one_request(self) -> None:
        # Methods the stdlib does not know (e.g. lower-case "patch") still reach _handle.
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
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Backend:
    """One plain-http and one https server on 127.0.0.1 sharing a route registry."""

    def __init__(self, cert_dir: Path) -> None:
        self.registry = Registry()
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self.http_port = self._start("http", None)
        cert, key = make_self_signed(cert_dir, ["localhost", "*.localhost", "*.example.test"])
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        self.https_port = self._start("https", tls)

    def _start(self, scheme: str, tls: ssl.SSLContext | None) -> int:
        handler = type(f"Handler_{scheme}", (_Handler,), {"registry": self.registry, "scheme": scheme})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, name=f"cors-backend-{scheme}", daemon=True)
        thread.start()
        self._servers.append(server)
        self._threads.append(thread)
        return int(server.server_address[1])

    def route(self, path: str, route: Route) -> None:
        self.registry.add(path, route)

    def requests(self, prefix: str) -> list[Seen]:
        return self.registry.requests(prefix)

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
