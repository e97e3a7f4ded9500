"""mitmdump helper addon for the browser suite (loaded with a second ``-s`` after addons/cors.py).

* Name resolution: test host names (``localhost``, ``*.localhost``, ``*.test``) resolve to the local backend,
  port 443 to the https backend and port 80 to the plain one, so the flow keeps the URL the browser used and the
  CORS addon judges that. ``down.localhost`` (and ``down.*`` test names) resolve to a loopback port bound by
  nobody's listener: the connection is refused, as when the server is down, and mitmproxy answers 502 itself.
  (Rewriting ``data.server.address`` in ``server_connect`` is not enough: inside a CONNECT tunnel mitmproxy
  takes each request's host and port from the server address, so https flows would show
  ``https://127.0.0.1:<port>/`` instead of the browser's URL. This addon therefore wraps ``socket.getaddrinfo``
  in the mitmdump process, which asyncio's ``open_connection`` uses.)
* A control endpoint, ``http://harness.control/flows?prefix=/s/<id>/``, answers with every flow whose path
  starts with the prefix, as mitmdump holds it now: the request and response header lines the addon judged (the
  wire, as names and values decoded as latin-1), timestamps, error, and the *current* ``flow.metadata["cors"]``.
  The report line of a preflight is written when its response arrives, before the requests it covers exist; this
  shows what the addon knows later (``request_ids``). The browser suite records the corpus from it.
"""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mitmproxy import http

CONTROL_HOST = "harness.control"


def _is_test_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith((".localhost", ".test"))


_real_getaddrinfo = socket.getaddrinfo
_ports: dict[int, int] = {}
# A port bound (so nobody else takes it) but never listening: connections to it are refused.
_refusing = socket.socket()
_refusing.bind(("127.0.0.1", 0))
DOWN_PORT: int = _refusing.getsockname()[1]


def _test_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    """Resolve test host names to the backend on 127.0.0.1 (port 80/443 -> the backend's http/https port)."""
    name = host.decode() if isinstance(host, bytes) else host
    if isinstance(name, str) and _is_test_host(name):
        if name.lower().startswith("down."):
            return _real_getaddrinfo("127.0.0.1", DOWN_PORT, *args, **kwargs)
        try:
            number = int(port)
        except (TypeError, ValueError):
            number = 0
        return _real_getaddrinfo("127.0.0.1", _ports.get(number, port), *args, **kwargs)
    return _real_getaddrinfo(host, port, *args, **kwargs)


def lines(headers: http.Headers) -> list[list[str]]:
    return [[name.decode("latin-1"), value.decode("latin-1")] for name, value in headers.fields]


def describe(f: http.HTTPFlow) -> dict[str, Any]:
    """The flow as the CORS addon saw it (method as sent, not upper-cased), plus its live metadata."""
    req, resp = f.request, f.response
    return {
        "flow_id": f.id,
        "method": req.data.method.decode("latin-1"),
        "url": req.url,
        "scheme": req.scheme,
        "host": req.host,
        "port": req.port,
        "path": req.path,
        "http_version": req.http_version,
        "request_headers": lines(req.headers),
        "request_start": req.timestamp_start,
        "request_end": req.timestamp_end,
        "status": resp.status_code if resp else None,
        "response_headers": lines(resp.headers) if resp else None,
        "response_start": resp.timestamp_start if resp else None,
        "response_end": resp.timestamp_end if resp else None,
        "error": f.error.msg if f.error else None,
        "cors": f.metadata.get("cors"),
    }


class Harness:
    def __init__(self) -> None:
        self.flows: list[http.HTTPFlow] = []

    def load(self, loader: Any) -> None:
        loader.add_option("harness_http_port", int, 0, "Backend port for plain-http test hosts.")
        loader.add_option("harness_https_port", int, 0, "Backend port for https test hosts.")
        socket.getaddrinfo = _test_getaddrinfo

    def configure(self, updated: set[str]) -> None:
        from mitmproxy import ctx

        if ctx.options.harness_http_port:
            _ports[80] = ctx.options.harness_http_port
        if ctx.options.harness_https_port:
            _ports[443] = ctx.options.harness_https_port

    def done(self) -> None:
        socket.getaddrinfo = _real_getaddrinfo

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.request.pretty_host != CONTROL_HOST:
            self.flows.append(flow)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.request.pretty_host != CONTROL_HOST:
            return
        query = parse_qs(urlsplit(flow.request.url).query)
        prefix = query.get("prefix", ["/"])[0]
        out = [describe(f) for f in self.flows if f.request.path.startswith(prefix)]
        flow.response = http.Response.make(
            200, json.dumps(out, default=repr).encode(), {"Content-Type": "application/json"}
        )


addons = [Harness()]
