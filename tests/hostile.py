"""Hostile flows: what a fuzzer, a broken server or a strange client puts on the wire.

Shared by the property-based tests (`tests/test_hostile.py`, driven by Hypothesis) and the fuzz benchmark
(`python -m tests.bench.fuzz`, driven by a seeded `random.Random`), so both push the same classes of input
through the addon's hooks: duplicated, empty, huge, non-UTF-8, NUL-bearing and Unicode-digit values,
odd and lower-case methods, bogus statuses, missing responses, errors, weird Locations, timestamps that go
backwards or are NaN, and preflight/request interleavings.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from mitmproxy import flow, http
from mitmproxy.test import tflow, tutils

ORIGINS: Sequence[bytes] = (
    b"http://app.localhost:5173",
    b"http://api.localhost:8000",  # same origin as the target
    b"null",
    b"http://app.localhost:\xc2\xb2",  # a superscript-two port
    b"http://[::1]:\xc2\xb9",
    b"HTTP://APP.LOCALHOST:5173",
    b"http://app.localhost:" + b"9" * 5000,
    b"",
    b"\x00",
    b"\xff\xfe",
    b"https://a.test, https://b.test",
)
METHODS: Sequence[bytes] = (b"GET", b"POST", b"PUT", b"OPTIONS", b"patch", b"DELETE", b"", b"G\x00T", b"\xff")
NAMES: Sequence[bytes] = (
    b"Access-Control-Allow-Origin",
    b"access-control-allow-credentials",
    b"Access-Control-Allow-Methods",
    b"Access-Control-Allow-Headers",
    b"Access-Control-Expose-Headers",
    b"Access-Control-Max-Age",
    b"Access-Control-Request-Method",
    b"Access-Control-Request-Headers",
    b"Sec-Fetch-Mode",
    b"Sec-Fetch-Site",
    b"Vary",
    b"Location",
    b"Cookie",
    b"Set-Cookie",
    b"Content-Type",
    b"ETag",
    b"If-None-Match",
    b"Upgrade",
    b"Referer",  # a browser HAR's failed request gets its page origin from it
    b"X-Custom",
)
VALUES: Sequence[bytes] = (
    b"*",
    b"true",
    b"True",
    b"http://app.localhost:5173",
    b"null",
    b"PUT, patch, *",
    b"x-api-key,,authorization",
    b"\xc2\xb2",
    b"\xd9\xa1\xd9\xa2",
    b"9" * 5000,
    b"-1",
    b"a\x00b",
    b"\xff\xfe\xfd",
    b"cors",
    b"no-cors",
    b"navigate",
    b"websocket",
    b"javascript:alert(1)",
    b"http://u:p@b.localhost/x",
    b"http://@b.localhost/x",
    b"http://[bad/x",
    b"//\\\\evil",
    b"x" * 20_000,
    b"",
    b" ",
    b'"v1"',
)
# Where secrets travel, and only there: the addon must never write SECRET anywhere.
SECRET_LINES: Sequence[tuple[bytes, bytes]] = (
    (b"Cookie", b"sid=SECRET"),
    (b"Set-Cookie", b"sid=SECRET; Path=/; HttpOnly"),
    (b"Authorization", b"Bearer SECRET"),
    (b"Location", b"/next?access_token=SECRET&page=2"),
    (b"Location", b"http://user:SECRET@b.localhost/x"),
    (b"Location", b"/cb#id_token=SECRET"),
)
PATHS: Sequence[bytes] = (b"/v1/items", b"/v1/items?access_token=SECRET", b"/a;jsessionid=SECRET", b"/", b"/\xff")
STATUSES: Sequence[int] = (200, 204, 301, 302, 304, 307, 404, 500, 0, -1, 99, 600, 1000, 65535)
TIMES: Sequence[float] = (1000.0, 1000.1, 999.0, 1e12, -1.0, 0.0, float("nan"), float("inf"))
ERRORS: Sequence[str] = (
    "Client disconnected.",
    "Connection killed.",
    "HTTP/1 protocol error: Received invalid headers: b'Set-Cookie: sid=SECRET'",
    "Error connecting to 'api.localhost': [Errno 111] Connection refused",
    "\x00\xff",
)


@dataclass(frozen=True)
class HostileFlow:
    """One flow's ingredients; `build()` makes the mitmproxy flow."""

    method: bytes
    origin: bytes | None
    request_headers: tuple[tuple[bytes, bytes], ...]
    status: int | None  # None: no response
    response_headers: tuple[tuple[bytes, bytes], ...]
    reason: bytes
    error: str | None
    timestamp: float
    path: bytes
    live: bool
    streamed: bool

    def build(self) -> http.HTTPFlow:
        f = tflow.tflow()
        f.request = tutils.treq(method=self.method or b"GET", host="api.localhost", port=8000, path=self.path)
        fields = [(b"Host", b"api.localhost:8000")]
        if self.origin is not None:
            fields.append((b"Origin", self.origin))
        f.request.headers = http.Headers(fields + list(self.request_headers))
        f.request.data.method = self.method
        f.request.timestamp_start = self.timestamp
        f.live = self.live
        if self.status is None:
            f.response = None
        else:
            f.response = tutils.tresp(status_code=self.status)
            f.response.headers = http.Headers(list(self.response_headers))
            f.response.data.reason = self.reason
            f.response.timestamp_end = self.timestamp + 0.01
            f.response.stream = self.streamed
        if self.error is not None or f.response is None:  # a flow ends with a response or an error
            f.error = flow.Error(self.error or "Server disconnected.")
        return f


def random_flow(rng: random.Random) -> HostileFlow:
    """A hostile flow drawn from the tables above (the fuzz benchmark's generator)."""

    def lines(n: int) -> tuple[tuple[bytes, bytes], ...]:
        return tuple(
            rng.choice(SECRET_LINES) if rng.random() < 0.1 else (rng.choice(NAMES), rng.choice(VALUES))
            for _ in range(n)
        )

    status = rng.choice(STATUSES) if rng.random() > 0.1 else None
    return HostileFlow(
        method=rng.choice(METHODS),
        origin=rng.choice(ORIGINS) if rng.random() > 0.05 else None,
        request_headers=lines(rng.randrange(6)),
        status=status,
        response_headers=lines(rng.randrange(8)),
        reason=rng.choice((b"OK", b"", b"O\x00K", b"\xff")),
        error=rng.choice(ERRORS) if status is None or rng.random() < 0.05 else None,
        timestamp=rng.choice(TIMES) + rng.random(),
        path=rng.choice(PATHS),
        live=rng.random() > 0.1,
        streamed=rng.random() < 0.05,
    )


def run_hooks(addon: object, f: http.HTTPFlow) -> None:
    """The hooks mitmproxy calls for one flow, in its order (response or error at the end)."""
    addon.request(f)  # type: ignore[attr-defined]
    if f.response is not None and addon.responseheaders is not None:  # type: ignore[attr-defined]  # with rules
        addon.responseheaders(f)  # type: ignore[attr-defined]
    if f.error is not None:
        addon.error(f)  # type: ignore[attr-defined]
    elif f.response is not None:
        addon.response(f)  # type: ignore[attr-defined]


def has_origin(f: http.HTTPFlow) -> bool:
    return any(name.lower() == b"origin" for name, _ in f.request.headers.fields)
