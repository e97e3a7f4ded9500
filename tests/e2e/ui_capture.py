"""A small real capture for the UI tests (mitmweb, mitmproxy's console): a few exchanges sent through a real
``mitmdump -s addons/cors.py -w <file>`` to a loopback backend, so reading the file back
(``mitmweb -r <file> -s addons/cors.py``, ``mitmproxy -r …``, ``mitmdump -r …``) shows flows the addon judges again.

The flows, by path (the URL is ``http://127.0.0.1:<backend port><path>``; the port changes on every run):

- ``BLOCKED_PREFLIGHT_PATH``: a preflight (``OPTIONS`` from ``PAGE_ORIGIN`` announcing ``PUT`` with a
  ``Content-Type``) answered ``404`` without any CORS header: blocked (Chromium
  ``PreflightMissingAllowOriginHeader``).
- ``CREDENTIALS_DEPENDENT_PATH``: a cross-site ``GET`` from ``PAGE_ORIGIN`` without a Cookie answered ``200`` with
  ``Access-Control-Allow-Origin: *``: allowed as sent, blocked if the page used ``credentials: 'include'``
  (the addon annotates it ``credentials_dependent: true``).
- ``ALLOWED_PATH``: a cross-site ``GET`` answered with the page's origin and credentials allowed: allowed either
  way (context in a flow list).

``FLOW_ORDER`` is the order they are sent (and so stored) in.
"""

from __future__ import annotations

import signal
from pathlib import Path

from tests.harness.backend import Answer, Backend
from tests.harness.client import cors_headers, preflight_headers
from tests.harness.mitmdump import Mitmdump

PAGE_ORIGIN = "http://app.localhost:5173"
"""The page's origin in every flow of the capture (a dev server on a ``.localhost`` name: cross-site to 127.0.0.1)."""

ALLOWED_PATH = "/ui/profile"
BLOCKED_PREFLIGHT_PATH = "/ui/items/42"
CREDENTIALS_DEPENDENT_PATH = "/ui/feed"

FLOW_ORDER = (
    ("GET", ALLOWED_PATH),
    ("OPTIONS", BLOCKED_PREFLIGHT_PATH),
    ("GET", CREDENTIALS_DEPENDENT_PATH),
)
"""(method, path) of the flows in the capture, in order."""

CAPTURE_NAME = "ui.mitm"


def _routes(backend: Backend) -> None:
    backend.route(
        ALLOWED_PATH,
        Answer(
            200,
            [
                ("Access-Control-Allow-Origin", PAGE_ORIGIN),
                ("Access-Control-Allow-Credentials", "true"),
                ("Vary", "Origin"),
            ],
            b'{"name": "Ada"}',
            content_type="application/json",
        ),
    )
    # The API answers OPTIONS like any unknown route: 404, no CORS headers at all.
    backend.route(
        BLOCKED_PREFLIGHT_PATH,
        OPTIONS=Answer(404, body=b"Not Found", content_type="text/plain"),
        PUT=Answer(200, body=b"{}", content_type="application/json"),
    )
    backend.route(
        CREDENTIALS_DEPENDENT_PATH,
        Answer(
            200,
            [("Access-Control-Allow-Origin", "*")],
            b'{"items": []}',
            content_type="application/json",
        ),
    )


def write_ui_capture(workdir: Path, confdir: Path) -> Path:
    """Record the flows of FLOW_ORDER with a real ``mitmdump -w`` (stopped with SIGINT) into
    ``<workdir>/ui.mitm``; returns its path.

    Raises:
        AssertionError: the proxy failed a request, or the capture was not written.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    capture = workdir / CAPTURE_NAME
    with Backend() as backend:
        _routes(backend)
        proxy = Mitmdump(workdir, ["-w", str(capture), "--set", "flow_detail=0"], name="ui-capture", confdir=confdir)
        proxy.start()
        try:
            requests = {
                ("GET", ALLOWED_PATH): cors_headers(PAGE_ORIGIN),
                ("OPTIONS", BLOCKED_PREFLIGHT_PATH): preflight_headers("PUT", "content-type", origin=PAGE_ORIGIN),
                ("GET", CREDENTIALS_DEPENDENT_PATH): cors_headers(PAGE_ORIGIN),
            }
            for method, path in FLOW_ORDER:
                reply = proxy.send(method, backend.a + path, requests[(method, path)])
                assert reply.status != 502, f"{method} {path}: the proxy failed: {reply.body!r}\n{proxy.output()}"
        finally:
            code = proxy.stop(signal.SIGINT)
        assert code == 0, f"mitmdump exited with {code}:\n{proxy.output()}"
    assert capture.exists() and capture.stat().st_size > 0, f"no capture written:\n{proxy.output()}"
    return capture
