"""Benchmark of mitmcors: what judging CORS costs per flow, from the evaluator alone up to a real mitmdump.

    python tests/bench.py [--quick] [--json] [--profile]

It is a report, not a test: it prints numbers next to the targets (PASS/FAIL) and exits 0 unless something
crashed (a subprocess died, the addon logged an internal error, the load got wrong answers).

1. Evaluator cost per flow (target < 20 us): `mitmcors.evaluator.evaluate(Request, Response)` over a fixed
   mix of browser-shaped request/response pairs (simple GET allowed by `*`, missing Allow-Origin, credentialed
   with a cookie, preflight passing and failing, redirect, same-origin, navigation, the PUT after a preflight),
   built once, with the evaluator's `PlainHeaders` and with mitmproxy's own `http.Headers` (what the addon
   passes). timeit-style: `repeat` timings of `number` passes over the mix; best-of and median us per call, and
   the best-of per case.
2. Addon hook cost per flow: `CorsAddon.request(flow)` + `CorsAddon.response(flow)` on `tflow()` flows
   (the same mix plus two requests without `Origin`) inside `taddons.context`, with `cors_report` off and the
   root logger at DEBUG as mitmdump sets it, so the addon's log lines cost what they cost in mitmdump; the
   event-loop callbacks those log lines schedule (mitmproxy's `add_log` hook) are drained inside the timing.
   Measured with `cors_log=all` (the default) and `cors_log=off`. A third line repeats one PUT against one
   long-lived cached preflight, which is how a page re-uses a preflight for `Access-Control-Max-Age` seconds.
3. Proxy CPU added per request (target: the addon adds < 5 % of mitmdump's own CPU): a threaded stdlib
   HTTP/1.1 backend (subprocess) answers GET/POST/PUT/OPTIONS with CORS headers; two mitmdumps run side by
   side, plain and `-s addons/cors.py`, both `-q --set connection_strategy=lazy` in regular (forward) mode; a
   load client (another subprocess, http.client, keep-alive connections, absolute-form URLs, one request in
   flight at a time) sends the same browser-like mix through each: cross-origin GET/POST, preflight + PUT,
   a PUT covered by a cached preflight, a failing preflight, a blocked GET, a same-origin POST and requests
   without `Origin`. The mitmdumps are pinned to one CPU and the client and backend to the other, so the proxy
   under load gets a core of its own. CPU is read per mitmdump process right before and after each load run:
   user+sys from /proc/<pid>/stat (clock ticks, 10 ms) and, as a high-resolution cross-check, the process's
   POSIX CPU clock (`clock_gettime` on the pid's CPU clock id: the same user+sys, in ns). Runs alternate
   plain, addon, plain, addon, ...; the table gives the median and min/max over rounds in CPU us per request,
   the difference of the medians (in us and as % of plain) and the range of the per-round paired differences.
   CPU time, not wall-clock, so other processes on the machine slow the run down but bias the numbers much
   less; the 1-minute load average is printed because they still do (shared caches, frequency).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import logging
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
ADDONS = ROOT / "addons"
if str(ADDONS) not in sys.path:
    sys.path.insert(0, str(ADDONS))

EVALUATOR_TARGET_US = 20.0
PROXY_TARGET_PCT = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

ORIGIN = "https://app.example.com"
API_HOST = "api.example.com"

Lines = tuple[tuple[str, str], ...]
Hook = Callable[[Any], None]


# --------------------------------------------------------------------------------------------------
# The mix of flows used by sections 1 and 2.

BROWSER: Lines = (
    ("Host", API_HOST),
    ("Connection", "keep-alive"),
    ("sec-ch-ua", '"Chromium";v="126", "Not.A/Brand";v="24"'),
    ("sec-ch-ua-mobile", "?0"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"),
    ("sec-ch-ua-platform", '"Linux"'),
    ("Accept", "*/*"),
    ("Origin", ORIGIN),
    ("Sec-Fetch-Site", "same-site"),
    ("Sec-Fetch-Mode", "cors"),
    ("Sec-Fetch-Dest", "empty"),
    ("Referer", f"{ORIGIN}/"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Accept-Language", "en-US,en;q=0.9"),
)
SERVER: Lines = (
    ("Server", "nginx"),
    ("Date", "Mon, 01 Jul 2024 12:00:00 GMT"),
    ("Content-Type", "application/json"),
    ("Content-Length", "27"),
    ("Connection", "keep-alive"),
    ("Cache-Control", "no-store"),
    ("ETag", '"5f2a-1b"'),
    ("X-Request-Id", "8c3e8a4e-6f0b-4d2e-9a57-2d0f6b9d1c11"),
)


def _with(base: Lines, *extra: tuple[str, str], drop: Sequence[str] = ()) -> Lines:
    low = {d.lower() for d in drop}
    return tuple(line for line in base if line[0].lower() not in low) + extra


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    request: Lines
    status: int
    response: Lines
    kind: str  # expected Verdict.kind
    allowed: bool  # expected verdict
    scheme: str = "https"
    host: str = API_HOST
    port: int = 443


CASES: tuple[Case, ...] = (
    Case(
        "simple GET, ACAO *",
        "GET",
        "/v1/items?page=2",
        BROWSER,
        200,
        _with(SERVER, ("Access-Control-Allow-Origin", "*")),
        "actual",
        True,
    ),
    Case("GET, no ACAO (blocked)", "GET", "/v1/private", BROWSER, 200, SERVER, "actual", False),
    Case(
        "credentialed POST w/ cookie",
        "POST",
        "/v1/cart",
        _with(BROWSER, ("Content-Type", "text/plain;charset=UTF-8"), ("Cookie", "sid=4f1c9e; theme=dark")),
        200,
        _with(
            SERVER,
            ("Access-Control-Allow-Origin", ORIGIN),
            ("Access-Control-Allow-Credentials", "true"),
            ("Vary", "Origin"),
            ("Set-Cookie", "sid=4f1c9e; Path=/; Secure; HttpOnly; SameSite=None"),
        ),
        "actual",
        True,
    ),
    Case(
        "preflight passing",
        "OPTIONS",
        "/v1/items/42",
        _with(
            BROWSER,
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "content-type,x-csrf-token"),
        ),
        204,
        _with(
            SERVER,
            ("Access-Control-Allow-Origin", ORIGIN),
            ("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"),
            ("Access-Control-Allow-Headers", "Content-Type, X-CSRF-Token, Authorization"),
            ("Access-Control-Allow-Credentials", "true"),
            ("Access-Control-Max-Age", "600"),
            ("Vary", "Origin"),
            drop=("Content-Type", "Content-Length"),
        ),
        "preflight",
        True,
    ),
    Case(
        "PUT after the preflight",
        "PUT",
        "/v1/items/42",
        _with(BROWSER, ("Content-Type", "application/json"), ("X-CSRF-Token", "c2VjcmV0")),
        200,
        _with(
            SERVER,
            ("Access-Control-Allow-Origin", ORIGIN),
            ("Access-Control-Allow-Credentials", "true"),
            ("Access-Control-Expose-Headers", "ETag, X-Request-Id"),
            ("Vary", "Origin"),
        ),
        "actual",
        True,
    ),
    Case(
        "preflight failing (method)",
        "OPTIONS",
        "/v1/items/42",
        _with(
            BROWSER,
            ("Access-Control-Request-Method", "DELETE"),
            ("Access-Control-Request-Headers", "x-debug"),
        ),
        204,
        _with(
            SERVER,
            ("Access-Control-Allow-Origin", ORIGIN),
            ("Access-Control-Allow-Methods", "GET, POST"),
            ("Access-Control-Allow-Headers", "Content-Type"),
            drop=("Content-Type", "Content-Length"),
        ),
        "preflight",
        False,
    ),
    Case(
        "redirect 302, ACAO *",
        "GET",
        "/v1/old",
        BROWSER,
        302,
        _with(
            SERVER,
            ("Location", f"https://{API_HOST}/v2/new"),
            ("Access-Control-Allow-Origin", "*"),
            drop=("Content-Type", "Content-Length"),
        ),
        "actual",
        True,
    ),
    Case(
        "same-origin POST",
        "POST",
        "/v1/events",
        (
            *_with(BROWSER, ("Content-Type", "application/json"), drop=("Origin", "Sec-Fetch-Site")),
            ("Origin", f"https://{API_HOST}"),
            ("Sec-Fetch-Site", "same-origin"),
        ),
        200,
        SERVER,
        "same-origin",
        True,
    ),
    Case(
        "navigation (form POST)",
        "POST",
        "/login",
        (
            *_with(
                BROWSER,
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Upgrade-Insecure-Requests", "1"),
                drop=("Sec-Fetch-Mode", "Sec-Fetch-Dest", "Accept"),
            ),
            ("Sec-Fetch-Mode", "navigate"),
            ("Sec-Fetch-Dest", "document"),
            ("Accept", "text/html,application/xhtml+xml"),
        ),
        303,
        _with(SERVER, ("Location", "/home"), drop=("Content-Type", "Content-Length")),
        "not-cors",
        True,
    ),
)

# Section 2 adds requests a page makes without Origin (the addon's fast path).
NO_ORIGIN_CASES: tuple[Case, ...] = (
    Case(
        "GET page, no Origin",
        "GET",
        "/",
        _with(BROWSER, drop=("Origin",)),
        200,
        SERVER,
        "",
        True,
    ),
    Case(
        "GET script, no Origin",
        "GET",
        "/static/app.js",
        _with(BROWSER, drop=("Origin",)),
        200,
        SERVER,
        "",
        True,
    ),
)


# --------------------------------------------------------------------------------------------------
# Small helpers.


@dataclass(frozen=True)
class Timing:
    """us per unit of work: best-of and median over repeats."""

    best: float
    median: float
    worst: float

    @classmethod
    def of(cls, per_unit: Sequence[float]) -> Timing:
        return cls(min(per_unit), statistics.median(per_unit), max(per_unit))

    def as_dict(self) -> dict[str, float]:
        return {"best_us": round(self.best, 3), "median_us": round(self.median, 3), "worst_us": round(self.worst, 3)}


def verdict_word(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def time_calls(fn: Callable[[], object], units: int, repeat: int, min_seconds: float) -> Timing:
    """timeit-style: calibrate `number` so one timing lasts >= min_seconds, then take `repeat` timings."""
    timer = timeit.Timer(fn)
    number = 1
    while True:
        if timer.timeit(number) >= min_seconds:
            break
        number *= 2
    runs = timer.repeat(repeat=repeat, number=number)
    return Timing.of([t / (number * units) * 1e6 for t in runs])


class ErrorCounter(logging.Handler):
    """Counts ERROR records from the addon: `never_raises` turns exceptions into log lines."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class BenchError(RuntimeError):
    """Something crashed: the report is not trustworthy."""


# --------------------------------------------------------------------------------------------------
# Section 1: the evaluator alone.


def bench_evaluator(quick: bool) -> dict[str, Any]:
    from mitmproxy import http

    from mitmcors.evaluator import PlainHeaders, Request, Response, Verdict, evaluate

    def build(headers: Callable[[Lines], Any]) -> list[tuple[Request, Response]]:
        return [
            (
                Request(c.method, c.scheme, c.host, c.port, c.path, headers(c.request)),
                Response(c.status, headers(c.response)),
            )
            for c in CASES
        ]

    def mitm_headers(lines: Lines) -> http.Headers:
        return http.Headers([(k.encode(), v.encode()) for k, v in lines])

    mixes = {"PlainHeaders": build(PlainHeaders), "mitmproxy Headers": build(mitm_headers)}
    # Sanity: the mix is what it claims to be.
    mismatches: list[str] = []
    for label, mix in mixes.items():
        for case, (req, resp) in zip(CASES, mix, strict=True):
            v: Verdict = evaluate(req, resp)
            if v.kind.value != case.kind or v.outcome.allowed != case.allowed:
                mismatches.append(f"{label}/{case.name}: got {v.kind.value} {v.outcome.verdict}")
    if mismatches:
        raise BenchError("the evaluator mix does not judge as expected: " + "; ".join(mismatches))

    repeat, min_s = (5, 0.02) if quick else (15, 0.05)
    result: dict[str, Any] = {"cases": [c.name for c in CASES], "mix": {}, "per_case": {}}
    for label, mix in mixes.items():

        def run_mix(mix: list[tuple[Request, Response]] = mix) -> None:
            for req, resp in mix:
                evaluate(req, resp)

        result["mix"][label] = time_calls(run_mix, len(mix), repeat, min_s)
        per_case = {}
        for case, (req, resp) in zip(CASES, mix, strict=True):
            per_case[case.name] = time_calls(
                lambda req=req, resp=resp: evaluate(req, resp), 1, max(3, repeat // 3), min_s / 2
            )
        result["per_case"][label] = per_case
    return result


def print_evaluator(r: dict[str, Any]) -> None:
    plain: Timing = r["mix"]["PlainHeaders"]
    mitm: Timing = r["mix"]["mitmproxy Headers"]
    print(f"1. Evaluator: evaluate(Request, Response), mix of {len(CASES)} cases (target < {EVALUATOR_TARGET_US:g} us)")
    print(f"   {'headers':<22}{'best us':>10}{'median us':>11}{'worst us':>10}")
    for label, t in (("PlainHeaders", plain), ("mitmproxy Headers", mitm)):
        ok = t.median < EVALUATOR_TARGET_US
        print(f"   {label:<22}{t.best:>10.2f}{t.median:>11.2f}{t.worst:>10.2f}   {verdict_word(ok)}")
    print(f"   per case, best us:  {'PlainHeaders':>12}  {'Headers':>8}   expected verdict")
    for case in CASES:
        a = r["per_case"]["PlainHeaders"][case.name].best
        b = r["per_case"]["mitmproxy Headers"][case.name].best
        expect = f"{case.kind} {'allowed' if case.allowed else 'blocked'}"
        print(f"     {case.name:<29}{a:>8.2f}{b:>10.2f}   {expect}")


# --------------------------------------------------------------------------------------------------
# Section 2: the addon's hooks on mitmproxy flows.


def _tflow(case: Case, t: float) -> Any:
    from mitmproxy import http
    from mitmproxy.test import tflow, tutils

    def h(lines: Lines) -> http.Headers:
        return http.Headers([(k.encode(), v.encode()) for k, v in lines])

    req = tutils.treq(
        method=case.method.encode(),
        scheme=case.scheme.encode(),
        host=case.host,
        port=case.port,
        authority=b"",
        path=case.path.encode(),
        headers=h(case.request),
        content=b"{}" if case.method in ("POST", "PUT") else b"",
        timestamp_start=t,
        timestamp_end=t + 0.001,
    )
    resp = tutils.tresp(
        status_code=case.status,
        headers=h(case.response),
        content=b'{"items": [1, 2, 3], "n": 3}' if case.status == 200 else b"",
        timestamp_start=t + 0.002,
        timestamp_end=t + 0.003,
    )
    return tflow.tflow(req=req, resp=resp)


@contextlib.contextmanager
def addon_context(cors_log: str) -> Iterator[tuple[Any, Callable[[], None], ErrorCounter]]:
    """A CorsAddon inside taddons.context, the root logger as mitmdump sets it; yields (addon, drain, errors)."""
    from mitmproxy.test import taddons

    from mitmcors.addon import CorsAddon

    root = logging.getLogger()
    old_level = root.level
    errors = ErrorCounter()
    root.addHandler(errors)
    root.setLevel(logging.DEBUG)  # mitmproxy.tools.main does this; the termlog handler filters later
    addon = CorsAddon()
    try:
        with taddons.context(addon) as tctx:
            tctx.configure(addon, cors_report="", cors_log=cors_log)
            loop = tctx.master.event_loop

            def drain() -> None:
                # mitmproxy's log handler schedules an add_log hook per record with call_soon_threadsafe.
                loop.run_until_complete(asyncio.sleep(0))

            # mitmproxy's handlers (LegacyLogEvents) live on the root logger only while the master does.
            try:
                yield addon, drain, errors
            finally:
                drain()
                for h in list(root.handlers):
                    if type(h).__name__ == "LegacyLogEvents":
                        root.removeHandler(h)
    finally:
        root.removeHandler(errors)
        root.setLevel(old_level)


def bench_addon(quick: bool) -> dict[str, Any]:
    cases = (*CASES, *NO_ORIGIN_CASES)
    repeat, number = (5, 60) if quick else (11, 200)
    result: dict[str, Any] = {"flows_in_mix": len(cases), "with_origin": len(CASES)}
    for cors_log in ("all", "off"):
        with addon_context(cors_log) as (addon, drain, errors):
            flows = [_tflow(c, 1_000_000.0 + i * 0.01) for i, c in enumerate(cases)]

            def run(flows: list[Any] = flows, request: Hook = addon.request, response: Hook = addon.response) -> None:
                for f in flows:
                    request(f)
                    response(f)

            run()
            drain()
            for case, f in zip(cases, flows, strict=True):
                got = (f.metadata.get("cors") or {}).get("kind", "")
                if got != case.kind:
                    raise BenchError(f"addon judged {case.name!r} as {got!r}, expected {case.kind!r}")
            per_flow = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                for _ in range(number):
                    run()
                drain()
                per_flow.append((time.perf_counter() - t0) / (number * len(flows)) * 1e6)
            if errors.records:
                raise BenchError(f"the addon logged internal errors: {errors.records[0].getMessage()}")
            result[f"cors_log={cors_log}"] = Timing.of(per_flow)
            linked = flows[CASES.index(next(c for c in CASES if c.name == "PUT after the preflight"))]
            if "preflight_id" not in linked.metadata["cors"]:
                raise BenchError("the PUT after the preflight was not linked to it")

    # One preflight, then many PUTs it covers (the browser's preflight cache): cost at the start and later.
    n_reuse = 3000 if quick else 20000
    block = 500
    with addon_context("all") as (addon, drain, errors):
        put_case = next(c for c in CASES if c.name == "PUT after the preflight")
        pre_case = next(c for c in CASES if c.name == "preflight passing")
        pre = _tflow(pre_case, 2_000_000.0)
        addon.request(pre)
        addon.response(pre)
        put = _tflow(put_case, 2_000_001.0)
        addon.request(put)  # consumes the preflight it announced; every later PUT hits the cache
        addon.response(put)
        blocks: list[float] = []
        k = 0
        for _ in range(n_reuse // block):
            t0 = time.perf_counter()
            for _ in range(block):
                k += 1
                put.request.timestamp_start = 2_000_001.0 + k * 0.0001  # within Max-Age 600
                addon.request(put)
                addon.response(put)
            drain()
            blocks.append((time.perf_counter() - t0) / block * 1e6)
        if errors.records:
            raise BenchError(f"the addon logged internal errors: {errors.records[0].getMessage()}")
        linked_ids = len(pre.metadata["cors"].get("request_ids", []))
    result["cached_preflight"] = {
        "requests": n_reuse,
        "first_block_us": round(min(blocks[:2]), 2),
        "last_block_us": round(min(blocks[-2:]), 2),
        "block": block,
        "request_ids_on_preflight": linked_ids,
    }
    return result


def print_addon(r: dict[str, Any]) -> None:
    print()
    print(
        f"2. Addon hooks: CorsAddon.request + .response per flow, mix of {r['flows_in_mix']} tflow()s "
        f"({r['with_origin']} with Origin), cors_report off"
    )
    print(f"   {'setting':<22}{'best us':>10}{'median us':>11}{'worst us':>10}")
    for key in ("cors_log=all", "cors_log=off"):
        t: Timing = r[key]
        label = key + (" (default)" if key.endswith("all") else "")
        print(f"   {label:<22}{t.best:>10.2f}{t.median:>11.2f}{t.worst:>10.2f}")
    c = r["cached_preflight"]
    print(
        f"   one cached preflight re-used by {c['requests']} PUTs: {c['first_block_us']:.1f} us/flow for the first "
        f"{c['block']}, {c['last_block_us']:.1f} us/flow for the last {c['block']} "
        f"(preflight now lists {c['request_ids_on_preflight']} request_ids)"
    )


def profile_addon(quick: bool, top: int = 25) -> str:
    """cProfile of the addon path on the section-2 mix, sorted by own time."""
    import cProfile
    import io
    import pstats

    cases = (*CASES, *NO_ORIGIN_CASES)
    with addon_context("all") as (addon, drain, _errors):
        flows = [_tflow(c, 1_000_000.0 + i * 0.01) for i, c in enumerate(cases)]
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(300 if quick else 2000):
            for f in flows:
                addon.request(f)
                addon.response(f)
            drain()
        prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# --------------------------------------------------------------------------------------------------
# Section 3: two real mitmdumps, a backend and a load client.

ALLOW_METHODS = "GET, POST, PUT, DELETE"
ALLOW_HEADERS = "Content-Type, X-CSRF-Token"


def backend_main() -> int:
    """Role `backend`: a threaded HTTP/1.1 server answering with CORS headers by path; prints its port."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = b'{"items": [1, 2, 3], "n": 3}'

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "bench-backend"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            origin = self.headers.get("Origin") or ""
            path = self.path.split("?", 1)[0]
            status, lines, content = 200, [("Content-Type", "application/json")], body
            if path.startswith("/api/open"):
                lines.append(("Access-Control-Allow-Origin", "*"))
            elif path.startswith("/api/creds"):
                lines += [
                    ("Access-Control-Allow-Origin", origin),
                    ("Access-Control-Allow-Credentials", "true"),
                    ("Vary", "Origin"),
                ]
            elif path.startswith("/api/item"):
                lines += [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
                if self.command == "OPTIONS":
                    status, content = 204, b""
                    lines = [
                        *lines[1:],
                        ("Access-Control-Allow-Methods", ALLOW_METHODS),
                        ("Access-Control-Allow-Headers", ALLOW_HEADERS),
                        ("Access-Control-Max-Age", "600"),
                    ]
                else:
                    lines.append(("Access-Control-Expose-Headers", "ETag"))
                    lines.append(("ETag", '"1b-5f2a"'))
            elif not path.startswith("/api/"):
                lines = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "max-age=60")]
                content = b"<!doctype html><title>page</title>" * 4
            self.send_response(status)
            for k, v in lines:
                self.send_header(k, v)
            if status != 204:
                self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if content and self.command != "HEAD":
                self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = answer

    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"port {server.server_address[1]}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever(poll_interval=0.5)
    return 0


@dataclass(frozen=True)
class Step:
    """One request of the load mix: method, path, header lines, body, expected status."""

    label: str
    method: str
    path: str
    headers: Lines
    body: bytes | None
    status: int


def load_mix(backend_port: int) -> list[Step]:
    origin = "http://app.example.test:3000"
    same = f"http://127.0.0.1:{backend_port}"
    ua = ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) bench")
    base: Lines = (ua, ("Accept", "*/*"), ("Accept-Language", "en-US,en;q=0.9"), ("Accept-Encoding", "gzip"))
    cors: Lines = (*base, ("Origin", origin), ("Referer", f"{origin}/"))
    json_body = b'{"name": "x", "qty": 2}'
    return [
        Step("cross-origin GET (ACAO *)", "GET", "/api/open?page=1", cors, None, 200),
        Step(
            "preflight (passes)",
            "OPTIONS",
            "/api/item/7",
            (*cors, ("Access-Control-Request-Method", "PUT"), ("Access-Control-Request-Headers", "content-type")),
            None,
            204,
        ),
        Step(
            "PUT after preflight", "PUT", "/api/item/7", (*cors, ("Content-Type", "application/json")), json_body, 200
        ),
        Step(
            "credentialed POST",
            "POST",
            "/api/creds",
            (*cors, ("Cookie", "sid=4f1c9e"), ("Content-Type", "text/plain")),
            b"hello",
            200,
        ),
        Step("cross-origin GET (blocked)", "GET", "/api/private", cors, None, 200),
        Step("GET page, no Origin", "GET", "/page", base, None, 200),
        Step("GET script, no Origin", "GET", "/static/app.js", base, None, 200),
        Step(
            "same-origin POST",
            "POST",
            "/api/open",
            (*base, ("Origin", same), ("Content-Type", "application/json")),
            json_body,
            200,
        ),
        Step(
            "PUT, cached preflight",
            "PUT",
            "/api/item/7",
            (*cors, ("Content-Type", "application/json")),
            json_body,
            200,
        ),
        Step(
            "preflight (fails)",
            "OPTIONS",
            "/api/item/7",
            (*cors, ("Access-Control-Request-Method", "PATCH"), ("Access-Control-Request-Headers", "x-debug")),
            None,
            204,
        ),
    ]


def drive_load(proxy_port: int, backend_port: int, n: int, nconns: int) -> dict[str, Any]:
    mix = load_mix(backend_port)
    base = f"http://127.0.0.1:{backend_port}"
    conns = [http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=30) for _ in range(nconns)]
    errors: list[str] = []
    t0 = time.perf_counter()
    for i in range(n):
        step = mix[i % len(mix)]
        conn = conns[i % nconns]
        try:
            conn.request(step.method, base + step.path, body=step.body, headers=dict(step.headers))
            resp = conn.getresponse()
            resp.read()
            if resp.status != step.status:
                errors.append(f"{step.label}: HTTP {resp.status}")
        except (OSError, http.client.HTTPException) as e:
            errors.append(f"{step.label}: {e!r}")
            conn.close()
    wall = time.perf_counter() - t0
    for conn in conns:
        conn.close()
    return {"n": n, "wall": wall, "errors": len(errors), "first_error": errors[0] if errors else None}


def client_main() -> int:
    """Role `client`: reads `run <proxy_port> <backend_port> <n> <conns>` lines, answers one JSON line each."""
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        _, proxy_port, backend_port, n, nconns = words
        print(json.dumps(drive_load(int(proxy_port), int(backend_port), int(n), int(nconns))), flush=True)
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[Any], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode} before listening")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise BenchError(f"{what} did not listen on {port} within {timeout:g} s")


@dataclass(frozen=True)
class CpuSample:
    ticks: int  # utime + stime, clock ticks
    ns: int | None  # the process's POSIX CPU clock (user+sys), None if unreadable
    utime: int
    stime: int


def cpu_sample(pid: int) -> CpuSample:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    try:
        ns: int | None = time.clock_gettime_ns((~pid << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
    except OSError:
        ns = None
    return CpuSample(utime + stime, ns, utime, stime)


@dataclass
class Proxy:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def cpu(self) -> CpuSample:
        return cpu_sample(self.proc.pid)

    def problems(self) -> list[str]:
        """Lines mitmdump printed although it runs with -q: errors, tracebacks, the addon's internal errors."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if line.strip()]


def _pin(cpus: set[int] | None) -> Callable[[], None] | None:
    if not cpus:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def start_mitmdump(
    name: str, extra: list[str], confdir: Path, workdir: Path, cpus: set[int] | None
) -> tuple[Proxy, IO[bytes]]:
    mitmdump = Path(sys.executable).with_name("mitmdump")
    if not mitmdump.exists():
        raise BenchError(f"no mitmdump next to {sys.executable}")
    port = free_port()
    log = workdir / f"{name}.log"
    out = log.open("wb")
    cmd = [
        str(mitmdump),
        "-q",
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "--set",
        "connection_strategy=lazy",
        "--set",
        f"confdir={confdir}",
        *extra,
    ]
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_pin(cpus))
    proxy = Proxy(name, proc, port, log)
    try:
        wait_listening(port, proc, f"mitmdump ({name})")
    except BenchError as e:
        out.close()
        raise BenchError(f"mitmdump ({name}) did not start: {' '.join(cmd)}\n{log.read_text(errors='replace')}") from e
    return proxy, out


def stop(proc: subprocess.Popen[Any] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_split() -> tuple[set[int] | None, set[int] | None]:
    """(CPUs for the proxies, CPUs for client/backend/this script); None when there is only one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])


@dataclass
class Run:
    proxy: str
    us_stat: float  # CPU us/request from /proc/<pid>/stat
    us_clock: float | None  # CPU us/request from the CPU clock
    user_share: float
    idle_other_us: float | None  # CPU the other (idle) proxy used meanwhile, us/request
    wall: float


def bench_proxy(quick: bool, n: int, rounds: int, nconns: int) -> dict[str, Any]:
    proxy_cpus, other_cpus = cpu_split()
    old_affinity = os.sched_getaffinity(0)
    if other_cpus:
        os.sched_setaffinity(0, other_cpus)  # inherited by the backend and the client
    backend: subprocess.Popen[str] | None = None
    client: subprocess.Popen[str] | None = None
    proxies: list[Proxy] = []
    logs: list[IO[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="mitmcors-bench-") as tmp:
            workdir = Path(tmp)
            me = str(Path(__file__).resolve())
            backend = subprocess.Popen(
                [sys.executable, me, "--role", "backend"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
            )
            assert backend.stdout is not None
            first = backend.stdout.readline().split()
            if len(first) != 2 or first[0] != "port":
                raise BenchError(f"backend did not start: {first!r}")
            backend_port = int(first[1])
            client = subprocess.Popen(
                [sys.executable, me, "--role", "client"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            confdir = workdir / "conf"
            for name, extra in (
                ("plain", []),
                ("addon", ["-s", str(ADDONS / "cors.py"), "--set", "cors_report="]),
            ):
                proxy, out = start_mitmdump(name, extra, confdir, workdir, proxy_cpus)
                proxies.append(proxy)
                logs.append(out)

            def load(proxy: Proxy, count: int) -> dict[str, Any]:
                assert client is not None and client.stdin is not None and client.stdout is not None
                client.stdin.write(f"run {proxy.port} {backend_port} {count} {nconns}\n")
                client.stdin.flush()
                answer = client.stdout.readline()
                if not answer:
                    raise BenchError(f"the load client died (exit {client.poll()})")
                result: dict[str, Any] = json.loads(answer)
                if result["errors"]:
                    raise BenchError(
                        f"{result['errors']} of {count} requests through {proxy.name} failed, e.g. "
                        f"{result['first_error']}"
                    )
                return result

            warmup = max(200, n // 4)
            for _ in range(2):
                for proxy in proxies:
                    load(proxy, warmup)
            time.sleep(0.3)

            runs: list[Run] = []
            load_before = loadavg()
            for _ in range(rounds):
                for i, proxy in enumerate(proxies):
                    other = proxies[1 - i]
                    b, ob = proxy.cpu(), other.cpu()
                    result = load(proxy, n)
                    time.sleep(0.05)  # let the proxy finish closing the client connections
                    a, oa = proxy.cpu(), other.cpu()
                    ticks = a.ticks - b.ticks
                    runs.append(
                        Run(
                            proxy=proxy.name,
                            us_stat=ticks / CLK_TCK / n * 1e6,
                            us_clock=(a.ns - b.ns) / 1e3 / n if a.ns is not None and b.ns is not None else None,
                            user_share=(a.utime - b.utime) / ticks if ticks else float("nan"),
                            idle_other_us=(oa.ns - ob.ns) / 1e3 / n
                            if oa.ns is not None and ob.ns is not None
                            else None,
                            wall=result["wall"],
                        )
                    )
            load_after = loadavg()
            problems = {p.name: p.problems() for p in proxies}
            if problems["addon"]:
                raise BenchError("mitmdump with the addon printed errors:\n" + "\n".join(problems["addon"][:20]))
            if problems["plain"]:
                raise BenchError("plain mitmdump printed errors:\n" + "\n".join(problems["plain"][:20]))
    finally:
        if client is not None and client.stdin is not None and client.poll() is None:
            with contextlib.suppress(OSError):
                client.stdin.write("quit\n")
                client.stdin.flush()
            try:
                client.wait(timeout=5)
            except subprocess.TimeoutExpired:
                stop(client)
        for proxy in proxies:
            stop(proxy.proc)
        for out in logs:
            out.close()
        stop(backend)
        os.sched_setaffinity(0, old_affinity)

    def series(name: str, attr: str) -> list[float]:
        return [getattr(r, attr) for r in runs if r.proxy == name and getattr(r, attr) is not None]

    result: dict[str, Any] = {
        "requests_per_run": n,
        "rounds": rounds,
        "connections": nconns,
        "mix": [s.label for s in load_mix(0)],
        "proxy_cpus": sorted(proxy_cpus) if proxy_cpus else None,
        "client_cpus": sorted(other_cpus) if other_cpus else None,
        "loadavg_1min": [load_before, load_after],
        "runs": [r.__dict__ for r in runs],
    }
    for source in ("us_stat", "us_clock"):
        plain, addon = series("plain", source), series("addon", source)
        if len(plain) != rounds or len(addon) != rounds:
            continue
        pm, am = statistics.median(plain), statistics.median(addon)
        paired = [a - p for p, a in zip(plain, addon, strict=True)]
        result[source] = {
            "plain": {"median": pm, "min": min(plain), "max": max(plain)},
            "addon": {"median": am, "min": min(addon), "max": max(addon)},
            "added_us": am - pm,
            "added_pct": (am - pm) / pm * 100,
            "paired_added_us": {"min": min(paired), "max": max(paired)},
            "paired_added_pct": {"min": min(paired) / pm * 100, "max": max(paired) / pm * 100},
        }
    for name in ("plain", "addon"):
        walls = series(name, "wall")
        result[f"{name}_req_per_s"] = n / statistics.median(walls)
        result[f"{name}_user_share"] = statistics.median(series(name, "user_share"))
        idle = series(name, "idle_other_us")
        result[f"{name}_idle_while_other_loaded_us"] = statistics.median(idle) if idle else None
    return result


def print_proxy(r: dict[str, Any]) -> None:
    n, rounds = r["requests_per_run"], r["rounds"]
    print()
    print(
        f"3. Proxy CPU per request: mitmdump plain vs -s addons/cors.py, {n} requests x {rounds} rounds each, "
        f"{r['connections']} keep-alive connections"
    )
    pin = (
        f"proxies pinned to CPU {r['proxy_cpus']}, client+backend to CPU {r['client_cpus']}"
        if r["proxy_cpus"]
        else "no CPU pinning (one CPU)"
    )
    lb, la = r["loadavg_1min"]
    print(f"   {pin}; load average {lb:.2f} -> {la:.2f}")
    print(f"   mix (repeating): {', '.join(r['mix'])}")
    print(f"   {'CPU us/request':<30}{'median':>9}{'min':>9}{'max':>9}{'req/s':>9}")
    for source, title in (("us_stat", "/proc/pid/stat utime+stime"), ("us_clock", "process CPU clock (ns)")):
        if source not in r:
            print(f"   ({title}: unavailable)")
            continue
        s = r[source]
        print(f"   {title}")
        for name, label in (("plain", "plain mitmdump"), ("addon", "mitmdump + mitmcors")):
            row = s[name]
            rps = r[f"{name}_req_per_s"]
            print(f"     {label:<28}{row['median']:>9.1f}{row['min']:>9.1f}{row['max']:>9.1f}{rps:>9.0f}")
        pa, pp = s["paired_added_us"], s["paired_added_pct"]
        print(
            f"     {'added by the addon':<28}{s['added_us']:>9.1f} us = {s['added_pct']:.1f} % of plain"
            f"   (per-round pairs: {pa['min']:.1f} .. {pa['max']:.1f} us, {pp['min']:.1f} .. {pp['max']:.1f} %)"
        )
    idle_p, idle_a = r["plain_idle_while_other_loaded_us"], r["addon_idle_while_other_loaded_us"]
    if idle_p is not None and idle_a is not None:
        print(
            f"   idle proxy during the other's run: {idle_p:.2f} / {idle_a:.2f} us per request (plain / addon); "
            f"user share of CPU: {r['plain_user_share']:.0%} / {r['addon_user_share']:.0%}"
        )
    per_round = [f"{a['us_stat']:.0f}/{b['us_stat']:.0f}" for a, b in zip(r["runs"][::2], r["runs"][1::2], strict=True)]
    print(f"   per round (plain/addon, stat us/request): {'  '.join(per_round)}")


# --------------------------------------------------------------------------------------------------


def proxy_verdict(r: dict[str, Any]) -> tuple[str, float] | None:
    for source in ("us_stat", "us_clock"):
        if source in r:
            pct: float = r[source]["added_pct"]
            return source, pct
    return None


def jsonable(value: Any) -> Any:
    if isinstance(value, Timing):
        return value.as_dict()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return round(value, 3)
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and requests (~20 s)")
    parser.add_argument("--json", action="store_true", help="also print all numbers as one JSON object at the end")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the addon hooks (section 2 mix)")
    parser.add_argument("--requests", type=int, help="requests per proxy run (default 2000, 300 with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds of plain+addon runs (default 5, 3 with --quick)")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections of the load client")
    parser.add_argument("--skip-proxy", action="store_true", help="only sections 1 and 2")
    parser.add_argument("--role", choices=("backend", "client"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "backend":
        return backend_main()
    if args.role == "client":
        return client_main()

    from mitmproxy import version

    n = args.requests or (300 if args.quick else 2000)
    rounds = max(3, args.rounds or (3 if args.quick else 5))
    started = time.monotonic()
    print(
        f"mitmcors benchmark: Python {platform.python_version()}, mitmproxy {version.VERSION}, "
        f"{os.cpu_count()} CPUs, load average {loadavg():.2f}{' (quick)' if args.quick else ''}"
    )
    print()
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "mitmproxy": version.VERSION,
        "quick": args.quick,
    }
    try:
        report["evaluator"] = ev = bench_evaluator(args.quick)
        print_evaluator(ev)
        report["addon"] = ad = bench_addon(args.quick)
        print_addon(ad)
        if args.profile:
            print()
            print(profile_addon(args.quick))
        if not args.skip_proxy:
            report["proxy"] = px = bench_proxy(args.quick, n, rounds, args.connections)
            print_proxy(px)
    except BenchError as e:
        print(f"\nbench.py: CRASHED: {e}", file=sys.stderr)
        return 1

    print()
    print("Targets")
    mitm = ev["mix"]["mitmproxy Headers"].median
    plain = ev["mix"]["PlainHeaders"].median
    ok_eval = mitm < EVALUATOR_TARGET_US
    print(
        f"   evaluator < {EVALUATOR_TARGET_US:g} us per flow: {mitm:.2f} us (mitmproxy Headers, median), "
        f"{plain:.2f} us (PlainHeaders)  {verdict_word(ok_eval)}"
    )
    targets: dict[str, Any] = {"evaluator_us": mitm, "evaluator_pass": ok_eval}
    if "proxy" in report and (pv := proxy_verdict(report["proxy"])) is not None:
        source, pct = pv
        ok_proxy = pct < PROXY_TARGET_PCT
        added = report["proxy"][source]["added_us"]
        print(
            f"   addon adds < {PROXY_TARGET_PCT:g} % of mitmdump's CPU per request: +{added:.1f} us = {pct:.1f} % "
            f"({'/proc stat' if source == 'us_stat' else 'CPU clock'})  {verdict_word(ok_proxy)}"
        )
        targets.update(proxy_added_pct=pct, proxy_pass=ok_proxy)
    report["targets"] = targets
    report["seconds"] = time.monotonic() - started
    print(f"   ({report['seconds']:.0f} s)")
    if args.json:
        print(json.dumps(jsonable(report), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
