"""What every middleware app server shares: its command line, the endpoints each configured app serves, the wire
report, and (for the WSGI frameworks) serving with werkzeug.

Every configured app serves the same endpoints, each as its framework's users write them:

    GET  /get          200 text
    POST /json         200 JSON (the page sends Content-Type: application/json: preflighted)
    PUT /item          200 text (the page adds X-Custom: preflighted)
    DELETE /item/1     200 text (the page adds X-Custom: preflighted)
    GET  /auth         200 text (the page sends Authorization: preflighted)
    GET  /error        the view raises an exception the app does not handle
    GET  /headers      200 with X-Total-Count and X-Request-Id (not CORS-safelisted response headers)
    anything else      the framework's own 404

No framework import at module level: each server module imports its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TOTAL_COUNT = ("X-Total-Count", "42")
REQUEST_ID = ("X-Request-Id", "r-1")
ERROR = "the view failed"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class ServeOptions:
    """``--port N --cert PEM --key PEM --wire URL --mounts '{"/s/<id>": "<config>", …}'``."""

    port: int
    cert: str
    key: str
    wire: str
    """Where each request is reported (JSON POST) before the app sees it."""
    mounts: Mapping[str, str]
    """Path prefix -> the name of the configuration mounted there."""


def parse_args(argv: Sequence[str] | None = None) -> ServeOptions:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--wire", required=True)
    parser.add_argument("--mounts", type=json.loads, required=True)
    args = parser.parse_args(argv)
    return ServeOptions(args.port, args.cert, args.key, args.wire, dict(args.mounts))


def mounted(options: ServeOptions, configs: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """A freshly built app of the named configuration at each mount prefix."""
    unknown = sorted(set(options.mounts.values()) - set(configs))
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; known: {sorted(configs)}")
    return {prefix: configs[name]() for prefix, name in options.mounts.items()}


_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def report(wire: str, scheme: str, method: str, host: str, target: str, headers: Sequence[tuple[str, str]]) -> None:
    """Tell the browser suite's backend about a request that reached this server (blocking, a few ms)."""
    body = {"scheme": scheme, "method": method, "host": host, "target": target, "headers": [list(h) for h in headers]}
    request = urllib.request.Request(
        wire, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with _direct.open(request, timeout=10) as response:
        response.read()


def wsgi_headers(environ: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The request's header lines as a WSGI server hands them over (names re-capitalised)."""
    out = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key
        else:
            continue
        out.append(("-".join(part.capitalize() for part in name.split("_")), str(value)))
    return out


class WsgiWire:
    """Outermost WSGI layer: report every request before the app (and its middleware) sees it."""

    def __init__(self, app: WsgiApp, wire: str) -> None:
        self.app = app
        self.wire = wire

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING")
        target = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        scheme, method, host = environ["wsgi.url_scheme"], environ["REQUEST_METHOD"], environ.get("HTTP_HOST", "")
        report(self.wire, scheme, method, host, target, wsgi_headers(environ))
        return self.app(environ, start_response)


def serve_wsgi(options: ServeOptions, apps: Mapping[str, WsgiApp]) -> None:
    """Serve ``apps`` (prefix -> WSGI app, each seeing its prefix as SCRIPT_NAME) over https with werkzeug's
    threaded server, the one ``flask run`` uses, until the process is terminated."""
    from werkzeug.exceptions import NotFound
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.serving import WSGIRequestHandler, make_server

    class OneRequestPerConnection(WSGIRequestHandler):
        # Closing each connection after its response: a connection the server drops (an app that raises after
        # answering) can then never be the one mitmproxy reuses for the next request (which fails as its 502).
        protocol_version = "HTTP/1.0"

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    root = DispatcherMiddleware(NotFound(), dict(apps))
    server = make_server(
        "127.0.0.1",
        options.port,
        WsgiWire(root, options.wire),
        threaded=True,
        request_handler=OneRequestPerConnection,
        ssl_context=(options.cert, options.key),
    )
    server.serve_forever()
