"""One recorded browsing session: a fixed list of exchanges sent through a mitmdump that saves its flows
(`-w`), writes a report, and is then stopped with SIGINT. Tests about the log, the summary at exit, secrets,
the saved capture and reading it back all look at this one recording.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness.backend import Answer, Backend, HeaderLines
from tests.harness.client import PAGE_ORIGIN, cors_headers, preflight_headers
from tests.harness.mitmdump import Mitmdump
from tests.harness.report import path_of

SECRETS = {
    "SECRET1": "Cookie value (and Set-Cookie)",
    "SECRET2": "Authorization bearer token",
    "SECRET3": "access_token query parameter",
    "SECRET4": "password in a redirect Location",
}


@dataclass(frozen=True)
class Step:
    name: str
    method: str
    origin: str  # "a" or "b": which backend origin the request goes to
    path: str
    query: str = ""
    headers: HeaderLines = ()
    body: bytes | None = None


def _routes(backend: Backend) -> None:
    o = PAGE_ORIGIN
    vary = ("Vary", "Origin")
    backend.route("/rec/simple-allowed", Answer(200, [("Access-Control-Allow-Origin", o), vary]))
    backend.route("/rec/simple-blocked", Answer(200, [("Content-Type", "application/json")], b"{}"))
    backend.route("/rec/same-origin", Answer(200, [("Content-Type", "text/plain")]))
    backend.route("/rec/form", Answer(200, [("Content-Type", "text/html")], b"<p>thanks</p>"))
    backend.route(
        "/rec/put",
        OPTIONS=Answer(
            204,
            [
                ("Access-Control-Allow-Origin", o),
                ("Access-Control-Allow-Methods", "PUT"),
                ("Access-Control-Allow-Headers", "Content-Type"),
                ("Access-Control-Max-Age", "60"),
                vary,
            ],
            b"",
        ),
        PUT=Answer(200, [("Access-Control-Allow-Origin", o), vary]),
    )
    backend.route("/rec/delete", OPTIONS=Answer(405, [("Allow", "GET")], b""))
    backend.route(
        "/rec/redirect",
        Answer(302, [("Location", f"{backend.b}/rec/redirect-final"), ("Access-Control-Allow-Origin", o), vary], b""),
    )
    backend.route("/rec/redirect-final", Answer(200, [("Access-Control-Allow-Origin", "*")]))
    backend.route(
        "/rec/secret",
        OPTIONS=Answer(
            204,
            [
                ("Access-Control-Allow-Origin", o),
                ("Access-Control-Allow-Credentials", "true"),
                ("Access-Control-Allow-Headers", "Authorization"),
                vary,
            ],
            b"",
        ),
        GET=Answer(
            302,
            [
                ("Location", f"http://user:SECRET4@{backend.b.removeprefix('http://')}/rec/secret-final"),
                ("Access-Control-Allow-Origin", o),
                ("Access-Control-Allow-Credentials", "true"),
                ("Set-Cookie", "session=SECRET1; Path=/; HttpOnly"),
                vary,
            ],
            b"",
        ),
    )


STEPS: Sequence[Step] = (
    Step("simple-allowed", "GET", "a", "/rec/simple-allowed", headers=cors_headers()),
    Step("simple-blocked", "GET", "a", "/rec/simple-blocked", headers=cors_headers()),
    Step(
        "same-origin",
        "POST",
        "a",
        "/rec/same-origin",
        headers=[("Content-Type", "text/plain")],  # Origin (origin A) is added by `record`
        body=b"hello",
    ),
    Step(
        "navigation",
        "POST",
        "a",
        "/rec/form",
        headers=[
            ("Origin", PAGE_ORIGIN),
            ("Sec-Fetch-Mode", "navigate"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Sec-Fetch-Dest", "document"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body=b"a=1",
    ),
    Step("preflight", "OPTIONS", "a", "/rec/put", headers=preflight_headers("PUT", "content-type")),
    Step(
        "put",
        "PUT",
        "a",
        "/rec/put",
        headers=[*cors_headers(), ("Content-Type", "application/json")],
        body=b'{"n": 1}',
    ),
    Step(
        "put-cached",
        "PUT",
        "a",
        "/rec/put",
        headers=[*cors_headers(), ("Content-Type", "application/json")],
        body=b'{"n": 2}',
    ),
    Step("preflight-failed", "OPTIONS", "a", "/rec/delete", headers=preflight_headers("DELETE")),
    Step("redirect", "GET", "a", "/rec/redirect", headers=cors_headers()),
    # After a cross-origin redirect the browser sends `Origin: null` (the request's origin is tainted).
    Step("redirect-final", "GET", "b", "/rec/redirect-final", headers=cors_headers(origin="null")),
    Step(
        "secret-preflight",
        "OPTIONS",
        "a",
        "/rec/secret",
        query="?access_token=SECRET3&page=2",
        headers=preflight_headers("GET", "authorization"),
    ),
    Step(
        "secret-get",
        "GET",
        "a",
        "/rec/secret",
        query="?access_token=SECRET3&page=2",
        headers=[*cors_headers(), ("Cookie", "session=SECRET1"), ("Authorization", "Bearer SECRET2")],
    ),
)


@dataclass(frozen=True)
class Recording:
    report: list[dict[str, Any]]
    by_step: dict[str, dict[str, Any]]
    stdout: str
    stderr: str
    exit_code: int
    flows_path: Path
    report_path: Path
    summary_path: Path
    urls: dict[str, str]

    def line(self, step: str) -> dict[str, Any]:
        assert step in self.by_step, f"no report line for step {step!r}; report: {self.report}"
        return self.by_step[step]


def record(backend: Backend, workdir: Path, confdir: Path) -> Recording:
    """Play STEPS through a fresh mitmdump (saving flows), stop it with SIGINT, collect everything."""
    _routes(backend)
    flows = workdir / "recording.mitm"
    # flow_detail=0: mitmproxy's own per-flow lines (which print full URLs) are off, so the output is the addon's.
    proxy = Mitmdump(workdir, ["-w", str(flows), "--set", "flow_detail=0"], name="recording", confdir=confdir)
    proxy.start()
    urls: dict[str, str] = {}
    try:
        for step in STEPS:
            base = backend.a if step.origin == "a" else backend.b
            url = base + step.path + step.query
            headers = list(step.headers)
            if step.name == "same-origin":
                headers = [
                    ("Origin", backend.a),
                    ("Sec-Fetch-Mode", "cors"),
                    ("Sec-Fetch-Site", "same-origin"),
                    *headers,
                ]
            reply = proxy.send(step.method, url, headers, step.body)
            assert reply.status != 502, f"{step.name}: the proxy failed: {reply.body!r}"
            urls[step.name] = url
    finally:
        exit_code = proxy.stop(signal.SIGINT)
    report = proxy.report.lines()
    by_step: dict[str, dict[str, Any]] = {}
    used: set[int] = set()
    for step in STEPS:
        for i, line in enumerate(report):
            if i not in used and line["method"] == step.method and path_of(line) == step.path:
                by_step[step.name] = line
                used.add(i)
                break
    return Recording(
        report=report,
        by_step=by_step,
        stdout=proxy.stdout(),
        stderr=proxy.stderr(),
        exit_code=exit_code,
        flows_path=flows,
        report_path=proxy.report.path,
        summary_path=proxy.report.summary_path,
        urls=urls,
    )
