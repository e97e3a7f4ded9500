"""A client that talks to a proxy the way a browser puts requests on the wire: absolute-form requests with
exactly the header lines given (plus Host), and the header sets Chromium adds to a cross-origin fetch()."""

from __future__ import annotations

import http.client
from dataclasses import dataclass

from tests.harness.backend import HeaderLines

# The page that makes the cross-origin requests (a dev server, as in the product's first use case).
PAGE_ORIGIN = "http://localhost:5173"


@dataclass(frozen=True)
class Reply:
    """What the client received."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The one line of header ``name`` (asserting there is at most one), or None."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, f"{name}: {values}"
        return values[0] if values else None


def send(proxy_port: int, method: str, url: str, headers: HeaderLines = (), body: bytes | None = None) -> Reply:
    """One request through the proxy on 127.0.0.1:`proxy_port`, on a connection of its own."""
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
