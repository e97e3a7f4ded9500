"""Benchmark of mitmcors: what judging CORS costs per flow, from the evaluator alone up to a real mitmdump.

    python tests/bench.py [--quick] [--json] [--profile] [--pin | --no-pin] [--requests N] [--rounds R]

A report, not a test: it prints the numbers next to the targets (PASS/FAIL) and exits 0 unless something crashed
(a subprocess died, the addon logged an internal error, a flow was judged other than the mix says, the load got
wrong answers). About 1-1.5 minutes by default, 20-30 s with --quick.

1. Evaluator cost per call (target < 20 us): `mitmcors.evaluator.evaluate(Request, Response)` over a fixed mix of
   browser-shaped pairs (simple GET allowed by `*`, missing Allow-Origin, credentialed POST with a cookie,
   preflight passing, the PUT after it, preflight failing, 302 redirect, same-origin POST, form navigation), built
   once with the evaluator's `PlainHeaders`, with mitmproxy's `http.Headers`, and (when the evaluator has it)
   `WireHeaders(headers.fields)` built inside the timed call, which is what the addon does per flow.
   timeit-style: `repeat` timings of a calibrated number of passes over the mix; best-of and median us per call
   (the target is judged on best-of, the figure least disturbed by other work on the machine), and best-of per case.
2. Addon hooks per flow: every HTTP hook CorsAddon has (`request`, `responseheaders`, `response`, ...) on `tflow()`
   flows (the same mix plus two requests without `Origin`) inside `taddons.context` with mitmproxy's default
   addons loaded, as in mitmdump, so the `add_log` and `update` hooks that the addon's log lines and links
   cause fan out to as many addons as in the real proxy; the root logger is at DEBUG as mitmdump sets it, and the
   event-loop callbacks those log lines schedule are run inside the timing. `cors_report` off; `cors_log=all` (the
   default) and `off`, and the addon alone. A last line repeats one PUT covered by one cached preflight, the way
   a page re-uses a preflight for `Access-Control-Max-Age` seconds.
3. Proxy CPU per request (target: the addon adds < 5 % of mitmdump's own CPU): a threaded stdlib HTTP/1.1 backend
   (subprocess) answers GET/POST/PUT/OPTIONS with CORS headers; two mitmdumps run side by side, plain and
   `-s addons/cors.py --set cors_report=`, both `-q --set connection_strategy=lazy` in regular (forward) mode; a
   load client (another subprocess: http.client, keep-alive connections, absolute-form URLs, one request in flight
   at a time, so client, proxy and backend never run at the same time) sends the same browser-like mix through each:
   cross-origin GET/POST, preflight + PUT, a PUT covered by a cached preflight, a failing preflight, a blocked GET,
   a same-origin POST and requests without `Origin`. Each mitmdump's CPU is read right before and after each
   measurement: user+sys from /proc/<pid>/stat (clock ticks) and the process's POSIX CPU clock (clock_gettime on
   the pid's CPU clock id: the same user+sys, in ns), which the PASS/FAIL lines use when it is readable because
   10 ms ticks are coarse for short runs. After a warm-up, two measurements:
   a) alternating runs, plain, addon, plain, addon, ... (`--rounds` each, `--requests` per proxy in all): median,
      min and max CPU us/request per proxy, the difference of the medians in us and % of plain, and the range of
      the per-round differences;
   b) interleaved windows: every request goes through both proxies in turn and both are measured over the same
      window, so load from other processes hits both alike; the median paired difference is the figure to trust
      on a busy machine.
   On an idle machine the proxies are pinned to one CPU and the client/backend to the other (`--pin` forces,
   `--no-pin` prevents it); on a busy one pinning makes the pinned processes queue for their CPU, so it is off.
   CPU time rather than wall-clock, so other processes slow the runs but bias the numbers much less; the load
   average and a speed reference (`sum(range(1000))`) are printed because they still matter (shared caches,
   SMT siblings, frequency). If the warm-up shows the load would not fit in `--budget`, runs get fewer requests.
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


def machine_speed() -> float:
    """A reference to compare machines by: best-of timing of `sum(range(1000))` in us."""
    return min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6


def time_calls(fn: Callable[[], object], units: int, repeat: int, min_seconds: float) -> Timing:
    """timeit-style: calibrate `number` so one timing lasts >= min_seconds, then take `repeat` timings."""
    timer = timeit.Timer(fn)
    number = 1
    while timer.timeit(number) < min_seconds:
        number *= 2
    runs = timer.repeat(repeat=repeat, number=number)
    return Timing.of([t / (number * units) * 1e6 for t in runs])


class ErrorCounter(logging.Handler):
    """Counts ERROR records from the addon: `never_raises` turns exceptions into log lines."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("mitmcors"):
            self.records.append(record)


class BenchError(RuntimeError):
    """Something crashed: the report is not trustworthy."""


# --------------------------------------------------------------------------------------------------
# Section 1: the evaluator alone.


PLAIN, MITM, INDEXED = "PlainHeaders (prebuilt)", "mitmproxy Headers", "WireHeaders from raw fields (the addon)"


def bench_evaluator(quick: bool) -> dict[str, Any]:
    """evaluate() per call over the mix, per header type; best-of and median over timeit repeats."""
    from mitmproxy import http

    from mitmcors.evaluator import PlainHeaders, Request, Response, WireHeaders, evaluate

    def mitm_headers(lines: Lines) -> http.Headers:
        return http.Headers([(k.encode(), v.encode()) for k, v in lines])

    def build(headers: Callable[[Lines], Any]) -> list[tuple[Request, Response]]:
        return [
            (
                Request(c.method, c.scheme, c.host, c.port, c.path, headers(c.request)),
                Response(c.status, headers(c.response)),
            )
            for c in CASES
        ]

    def direct(req: Request, resp: Response) -> Callable[[], Any]:
        return lambda: evaluate(req, resp)

    def indexed(c: Case, from_fields: Callable[[Any], Any]) -> Callable[[], Any]:
        # What the addon does: index mitmproxy's raw header fields once per flow (WireHeaders), then evaluate;
        # the indexing is part of the timed call.
        req_fields, resp_fields = mitm_headers(c.request).fields, mitm_headers(c.response).fields

        def call() -> Any:
            return evaluate(
                Request(c.method, c.scheme, c.host, c.port, c.path, from_fields(req_fields)),
                Response(c.status, from_fields(resp_fields)),
            )

        return call

    runners: dict[str, list[Callable[[], Any]]] = {}
    for label, headers in ((PLAIN, PlainHeaders), (MITM, mitm_headers)):
        runners[label] = [direct(req, resp) for req, resp in build(headers)]
    runners[INDEXED] = [indexed(c, WireHeaders) for c in CASES]
    # Sanity: the mix is what it claims to be, whatever the header type.
    mismatches: list[str] = []
    for label, calls in runners.items():
        for case, call in zip(CASES, calls, strict=True):
            v: Any = call()
            if v.kind.value != case.kind or v.outcome.allowed != case.allowed:
                mismatches.append(f"{label} / {case.name}: got {v.kind.value} {v.outcome.verdict}")
    if mismatches:
        raise BenchError("the evaluator mix does not judge as expected: " + "; ".join(mismatches))

    repeat, min_s = (5, 0.02) if quick else (15, 0.05)
    result: dict[str, Any] = {"cases": [c.name for c in CASES], "mix": {}, "per_case": {}}
    for label, calls in runners.items():

        def run_mix(calls: list[Callable[[], Any]] = calls) -> None:
            for call in calls:
                call()

        result["mix"][label] = time_calls(run_mix, len(calls), repeat, min_s)
        result["per_case"][label] = {
            case.name: time_calls(call, 1, max(5, repeat // 2), min_s / 2)
            for case, call in zip(CASES, calls, strict=True)
        }
    return result


def print_evaluator(r: dict[str, Any]) -> None:
    print(
        f"1. Evaluator: evaluate(Request, Response) per call, mix of {len(CASES)} cases "
        f"(target < {EVALUATOR_TARGET_US:g} us, judged on best-of)"
    )
    print(f"   {'headers':<38}{'best us':>9}{'median us':>11}{'worst us':>10}")
    for label, t in r["mix"].items():
        judged = f"   {verdict_word(t.best < EVALUATOR_TARGET_US)}" if label == INDEXED else "   (comparison)"
        print(f"   {label:<38}{t.best:>9.2f}{t.median:>11.2f}{t.worst:>10.2f}{judged}")
    labels = list(r["per_case"])
    short = {PLAIN: "Plain", MITM: "Headers", INDEXED: "Wire"}
    print(f"   {'per case, best us':<32}{''.join(f'{short.get(x, x):>12}' for x in labels)}   expected verdict")
    for case in CASES:
        cells = "".join(f"{r['per_case'][label][case.name].best:>12.2f}" for label in labels)
        expect = f"{case.kind} {'allowed' if case.allowed else 'blocked'}"
        print(f"     {case.name:<30}{cells}   {expect}")


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


HTTP_HOOKS = ("requestheaders", "request", "responseheaders", "response")


def flow_hooks(addon: Any) -> list[Hook]:
    """The addon's HTTP hooks in mitmproxy's event order (the addon may grow hooks: call all it has)."""
    return [getattr(addon, name) for name in HTTP_HOOKS if callable(getattr(addon, name, None))]


@contextlib.contextmanager
def addon_context(
    cors_log: str, mitmdump_addons: bool
) -> Iterator[tuple[list[Hook], Callable[[], None], ErrorCounter]]:
    """A CorsAddon inside taddons.context, the root logger as mitmdump sets it.

    With `mitmdump_addons`, mitmproxy's default addons are loaded too, as mitmdump does, so the `add_log` and
    `update` hooks the addon causes fan out to as many addons as in the real proxy. Yields (hooks, drain, errors).
    """
    from mitmproxy.addons import default_addons
    from mitmproxy.test import taddons

    from mitmcors.addon import CorsAddon

    root = logging.getLogger()
    old_level, old_handlers = root.level, list(root.handlers)
    errors = ErrorCounter()
    root.addHandler(errors)
    root.setLevel(logging.DEBUG)  # mitmproxy.tools.main does this; the termlog handler filters later
    addon = CorsAddon()
    others = default_addons() if mitmdump_addons else []  # type: ignore[no-untyped-call]
    try:
        with taddons.context(*others, addon, loadcore=not mitmdump_addons) as tctx:  # type: ignore[no-untyped-call]
            tctx.configure(addon, cors_report="", cors_log=cors_log)
            loop = tctx.master.event_loop

            def drain() -> None:
                # mitmproxy's log handler schedules an add_log hook per record with call_soon_threadsafe.
                loop.run_until_complete(asyncio.sleep(0))

            try:
                yield flow_hooks(addon), drain, errors
            finally:
                drain()
    finally:
        # mitmproxy's handlers (LegacyLogEvents) stay on the root logger after the master is gone.
        for h in list(root.handlers):
            if h not in old_handlers:
                root.removeHandler(h)
        root.setLevel(old_level)


ADDON_SETTINGS = (
    ("cors_log=all", "all", True),
    ("cors_log=off", "off", True),
    ("cors_log=all, addon alone", "all", False),
)


def bench_addon(quick: bool) -> dict[str, Any]:
    cases = (*CASES, *NO_ORIGIN_CASES)
    repeat, number = (5, 20) if quick else (9, 50)
    result: dict[str, Any] = {"flows_in_mix": len(cases), "with_origin": len(CASES)}
    put_case = next(c for c in CASES if c.name == "PUT after the preflight")
    pre_case = next(c for c in CASES if c.name == "preflight passing")
    for key, cors_log, mitmdump_addons in ADDON_SETTINGS:
        with addon_context(cors_log, mitmdump_addons) as (hooks, drain, errors):
            result["hooks"] = [h.__name__ for h in hooks]
            result.setdefault("addons_loaded", {})[key] = loaded_addons()
            flows = [_tflow(c, 1_000_000.0 + i * 0.01) for i, c in enumerate(cases)]

            def run(flows: list[Any] = flows, hooks: list[Hook] = hooks) -> None:
                for f in flows:
                    for hook in hooks:
                        hook(f)

            run()
            drain()
            for case, f in zip(cases, flows, strict=True):
                got = (f.metadata.get("cors") or {}).get("kind", "")
                if got != case.kind:
                    raise BenchError(f"addon judged {case.name!r} as {got!r}, expected {case.kind!r}")
            if "preflight_id" not in flows[cases.index(put_case)].metadata["cors"]:
                raise BenchError("the PUT after the preflight was not linked to it")
            per_flow = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                for _ in range(number):
                    run()
                drain()
                per_flow.append((time.perf_counter() - t0) / (number * len(flows)) * 1e6)
            if errors.records:
                raise BenchError(f"the addon logged internal errors: {errors.records[0].getMessage()}")
            result[key] = Timing.of(per_flow)

    # One preflight, then many PUTs it covers (the browser's preflight cache): cost at the start and later.
    n_reuse = 1500 if quick else 5000
    block = 250
    with addon_context("all", True) as (hooks, drain, errors):
        pre = _tflow(pre_case, 2_000_000.0)
        put = _tflow(put_case, 2_000_001.0)
        for f in (pre, put):  # the PUT consumes the preflight it announced; every later PUT hits the cache
            for hook in hooks:
                hook(f)
        blocks: list[float] = []
        k = 0
        for _ in range(n_reuse // block):
            t0 = time.perf_counter()
            for _ in range(block):
                k += 1
                put.request.timestamp_start = 2_000_001.0 + k * 0.0001  # well within Max-Age 600
                for hook in hooks:
                    hook(put)
            drain()
            blocks.append((time.perf_counter() - t0) / block * 1e6)
        if errors.records:
            raise BenchError(f"the addon logged internal errors: {errors.records[0].getMessage()}")
        linked_ids = len(pre.metadata["cors"].get("request_ids", []))
    result["cached_preflight"] = {
        "requests": n_reuse,
        "block": block,
        "first_blocks_us": round(min(blocks[:3]), 2),
        "last_blocks_us": round(min(blocks[-3:]), 2),
        "request_ids_on_preflight": linked_ids,
    }
    return result


def loaded_addons() -> int:
    from mitmproxy import ctx

    return len(ctx.master.addons.chain)


def print_addon(r: dict[str, Any]) -> None:
    print()
    print(
        f"2. Addon hooks per flow: CorsAddon.{', .'.join(r['hooks'])} on a mix of {r['flows_in_mix']} tflow()s "
        f"({r['with_origin']} with Origin), cors_report off, root logger at DEBUG as in mitmdump"
    )
    print(f"   {'cors_log':<16}{'addons loaded':<28}{'best us':>9}{'median us':>11}{'worst us':>10}")
    for key, cors_log, mitmdump_addons in ADDON_SETTINGS:
        t: Timing = r[key]
        n = r["addons_loaded"][key]
        log = cors_log + (" (default)" if cors_log == "all" else "")
        where = f"{n} (mitmdump's defaults)" if mitmdump_addons else f"{n} (core + mitmcors)"
        print(f"   {log:<16}{where:<28}{t.best:>9.1f}{t.median:>11.1f}{t.worst:>10.1f}")
    c = r["cached_preflight"]
    print(
        f"   one preflight re-used from the cache by {c['requests']} PUTs: {c['first_blocks_us']:.1f} us/flow at "
        f"first, {c['last_blocks_us']:.1f} us/flow at the end (best of 3 blocks of {c['block']}); the preflight "
        f"flow then lists {c['request_ids_on_preflight']} request_ids"
    )


def profile_addon(quick: bool, top: int = 25) -> str:
    """cProfile of the addon hooks on the section-2 mix (mitmdump's addons loaded, cors_log=all)."""
    import cProfile
    import io
    import pstats

    cases = (*CASES, *NO_ORIGIN_CASES)
    with addon_context("all", True) as (hooks, drain, _errors):
        flows = [_tflow(c, 1_000_000.0 + i * 0.01) for i, c in enumerate(cases)]
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(300 if quick else 2000):
            for f in flows:
                for hook in hooks:
                    hook(f)
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


def drive_load(proxy_ports: Sequence[int], backend_port: int, n: int, nconns: int) -> dict[str, Any]:
    """Send the mix `n` times through every proxy; with several proxies, request by request in turn."""
    mix = load_mix(backend_port)
    base = f"http://127.0.0.1:{backend_port}"
    conns = [[http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(nconns)] for port in proxy_ports]
    order = list(range(len(proxy_ports)))
    errors: list[str] = []
    t0 = time.perf_counter()
    for i in range(n):
        step = mix[i % len(mix)]
        for p in order[i % len(order) :] + order[: i % len(order)]:  # who goes first rotates
            conn = conns[p][i % nconns]
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
    for row in conns:
        for conn in row:
            conn.close()
    return {"n": n, "wall": wall, "errors": len(errors), "first_error": errors[0] if errors else None}


def client_main() -> int:
    """Role `client`: reads `run <backend_port> <n> <conns> <proxy_port>...` lines, answers a JSON line each."""
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        backend_port, n, nconns, *ports = (int(w) for w in words[1:])
        print(json.dumps(drive_load(ports, backend_port, n, nconns)), flush=True)
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


def cpu_split(pin: bool | None) -> tuple[set[int] | None, set[int] | None, str]:
    """(CPUs for the proxies, CPUs for client/backend/this script, why) for the proxy benchmark.

    Pinning keeps the proxy under load on a core of its own. On a machine that is busy with other work it backfires:
    pinned processes wait for their CPU instead of taking the idle one, so by default (`pin` None) it is used only
    when the 1-minute load average is below 1.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None, "no CPU pinning (one CPU)"
    if pin is None:
        load = loadavg()
        pin = load < 1.0
        if not pin:
            return None, None, f"no CPU pinning (machine busy: load average {load:.2f}; --pin forces it)"
    if not pin:
        return None, None, "no CPU pinning (--no-pin)"
    proxy, other = {cpus[-1]}, set(cpus[:-1])
    return proxy, other, f"proxies pinned to CPU {sorted(proxy)}, client+backend to CPU {sorted(other)}"


@dataclass
class Run:
    proxy: str
    us_stat: float  # CPU us/request from /proc/<pid>/stat
    us_clock: float | None  # CPU us/request from the CPU clock
    user_share: float
    idle_other_us: float | None  # CPU the other (idle) proxy used meanwhile, us/request
    wall: float


class LoadClient:
    """The load client subprocess: `run()` drives `count` requests through a proxy and returns its report."""

    def __init__(self, backend_port: int, nconns: int) -> None:
        self.backend_port = backend_port
        self.nconns = nconns
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--role", "client"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, proxies: Sequence[Proxy], count: int) -> dict[str, Any]:
        """`count` requests through each of `proxies`; several proxies take turns request by request."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        ports = " ".join(str(p.port) for p in proxies)
        self.proc.stdin.write(f"run {self.backend_port} {count} {self.nconns} {ports}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise BenchError(f"the load client died (exit {self.proc.poll()})")
        result: dict[str, Any] = json.loads(answer)
        if result["errors"]:
            raise BenchError(
                f"{result['errors']} of {count * len(proxies)} requests through "
                f"{' and '.join(p.name for p in proxies)} failed, e.g. {result['first_error']}"
            )
        return result

    def close(self) -> None:
        if self.proc.stdin is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                stop(self.proc)


def start_backend() -> tuple[subprocess.Popen[str], int]:
    backend = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--role", "backend"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert backend.stdout is not None
    first = backend.stdout.readline().split()
    if len(first) != 2 or first[0] != "port":
        stop(backend)
        raise BenchError(f"the backend did not start: {first!r}")
    return backend, int(first[1])


def measure(proxy: Proxy, other: Proxy, client: LoadClient, count: int) -> Run:
    """One load run through `proxy`: its CPU (and the idle `other`'s) right before and after."""
    b, ob = proxy.cpu(), other.cpu()
    result = client.run([proxy], count)
    time.sleep(0.05)  # let the proxy finish closing the client's connections
    a, oa = proxy.cpu(), other.cpu()
    ticks = a.ticks - b.ticks
    return Run(
        proxy=proxy.name,
        us_stat=ticks / CLK_TCK / count * 1e6,
        us_clock=(a.ns - b.ns) / 1e3 / count if a.ns is not None and b.ns is not None else None,
        user_share=(a.utime - b.utime) / ticks if ticks else float("nan"),
        idle_other_us=(oa.ns - ob.ns) / 1e3 / count if oa.ns is not None and ob.ns is not None else None,
        wall=result["wall"],
    )


def summarize(plain: Sequence[float], addon: Sequence[float]) -> dict[str, Any]:
    """Medians and ranges of two paired series of CPU us/request, and what the addon adds."""
    pm, am = statistics.median(plain), statistics.median(addon)
    paired = [a - p for p, a in zip(plain, addon, strict=True)]
    pd = statistics.median(paired)
    return {
        "plain": {"median": pm, "min": min(plain), "max": max(plain)},
        "addon": {"median": am, "min": min(addon), "max": max(addon)},
        "added_us": am - pm,
        "added_pct": (am - pm) / pm * 100,
        "paired_added_us": {"median": pd, "min": min(paired), "max": max(paired)},
        "paired_added_pct": {"median": pd / pm * 100, "min": min(paired) / pm * 100, "max": max(paired) / pm * 100},
    }


def bench_proxy(total: int, rounds: int, nconns: int, pin: bool | None, budget: float) -> dict[str, Any]:
    """Two measurements of the same two mitmdumps, plain and with the addon.

    Alternating runs: `total` requests per proxy in `rounds` runs, plain, addon, plain, addon, ...; each run's CPU
    is that proxy's alone. Interleaved windows: the client sends every request of the mix through both proxies in
    turn, and both proxies' CPU is read over the same window, so whatever else the machine does hits both alike;
    `rounds` windows of half a run.
    """
    mix_len = len(load_mix(0))
    per_run = max(mix_len, total // rounds // mix_len * mix_len)  # whole mixes: every run sends the same requests
    proxy_cpus, other_cpus, pinning = cpu_split(pin)
    old_affinity = os.sched_getaffinity(0)
    if other_cpus:
        os.sched_setaffinity(0, other_cpus)  # inherited by the backend and the client
    backend: subprocess.Popen[str] | None = None
    client: LoadClient | None = None
    proxies: list[Proxy] = []
    logs: list[IO[bytes]] = []
    note = ""
    try:
        with tempfile.TemporaryDirectory(prefix="mitmcors-bench-") as tmp:
            workdir = Path(tmp)
            backend, backend_port = start_backend()
            client = LoadClient(backend_port, nconns)
            for name, extra in (
                ("plain", []),
                ("addon", ["-s", str(ADDONS / "cors.py"), "--set", "cors_report="]),
            ):
                proxy, out = start_mitmdump(name, extra, workdir / "conf", workdir, proxy_cpus)
                proxies.append(proxy)
                logs.append(out)
            plain_proxy, addon_proxy = proxies

            warmup = max(100, min(per_run, 300) // mix_len * mix_len)
            walls = [client.run([proxy], warmup)["wall"] for _ in range(2) for proxy in proxies]
            seconds_per_request = max(walls[-2:]) / warmup  # the slower proxy: budget conservatively
            # Alternating runs send 2 * rounds * per_run requests, the interleaved windows half as many.
            if 3 * rounds * per_run * seconds_per_request > budget:
                fit = int(budget / seconds_per_request / (3 * rounds)) // mix_len * mix_len
                if fit < per_run:
                    fit = max(mix_len * 4, fit)
                    note = (
                        f"slow machine ({1 / seconds_per_request:.0f} req/s through one proxy): {fit} instead of "
                        f"{per_run} requests per run to stay within --budget {budget:.0f} s"
                    )
                    per_run = fit
            per_window = max(mix_len * 5, per_run // 2 // mix_len * mix_len)
            time.sleep(0.2)

            load_before = loadavg()
            started = time.monotonic()
            runs: list[Run] = []
            for _ in range(rounds):
                runs.append(measure(plain_proxy, addon_proxy, client, per_run))
                runs.append(measure(addon_proxy, plain_proxy, client, per_run))
            alternating_seconds = time.monotonic() - started

            started = time.monotonic()
            windows: list[dict[str, dict[str, float | None]]] = []
            for _ in range(rounds):
                before = [p.cpu() for p in proxies]
                client.run(proxies, per_window)
                time.sleep(0.05)
                after = [p.cpu() for p in proxies]
                windows.append(
                    {
                        p.name: {
                            "us_stat": (a.ticks - b.ticks) / CLK_TCK / per_window * 1e6,
                            "us_clock": (a.ns - b.ns) / 1e3 / per_window
                            if a.ns is not None and b.ns is not None
                            else None,
                        }
                        for p, b, a in zip(proxies, before, after, strict=True)
                    }
                )
            interleaved_seconds = time.monotonic() - started
            load_after = loadavg()
            for proxy in proxies:
                if problems := proxy.problems():
                    raise BenchError(f"mitmdump ({proxy.name}) printed errors:\n" + "\n".join(problems[:20]))
    finally:
        if client is not None:
            client.close()
        for proxy in proxies:
            stop(proxy.proc)
        for out in logs:
            out.close()
        stop(backend)
        os.sched_setaffinity(0, old_affinity)

    def series(name: str, attr: str) -> list[float]:
        return [getattr(r, attr) for r in runs if r.proxy == name and getattr(r, attr) is not None]

    result: dict[str, Any] = {
        "requests_per_run": per_run,
        "requests_per_window": per_window,
        "rounds": rounds,
        "connections": nconns,
        "mix": [s.label for s in load_mix(0)],
        "pinning": pinning,
        "proxy_cpus": sorted(proxy_cpus) if proxy_cpus else None,
        "note": note,
        "loadavg_1min": [load_before, load_after],
        "seconds": {"alternating": alternating_seconds, "interleaved": interleaved_seconds},
        "runs": [r.__dict__ for r in runs],
        "windows": windows,
        "alternating": {},
        "interleaved": {},
    }
    for source in ("us_stat", "us_clock"):
        plain, addon = series("plain", source), series("addon", source)
        if len(plain) == rounds and len(addon) == rounds:
            result["alternating"][source] = summarize(plain, addon)
        wp = [w["plain"][source] for w in windows]
        wa = [w["addon"][source] for w in windows]
        if all(v is not None for v in wp + wa):
            result["interleaved"][source] = summarize(wp, wa)  # type: ignore[arg-type]
    for name in ("plain", "addon"):
        result[f"{name}_req_per_s"] = per_run / statistics.median(series(name, "wall"))
        result[f"{name}_user_share"] = statistics.median(series(name, "user_share"))
        idle = series(name, "idle_other_us")
        result[f"{name}_idle_while_other_loaded_us"] = statistics.median(idle) if idle else None
    return result


SOURCES = (("us_stat", "user+sys from /proc/<pid>/stat"), ("us_clock", "process CPU clock (ns)"))


def _print_summary(s: dict[str, Any], rps: dict[str, float] | None) -> None:
    for name, label in (("plain", "plain mitmdump"), ("addon", "mitmdump + mitmcors")):
        row = s[name]
        rate = f"{rps[name]:>8.0f}" if rps else ""
        print(f"       {label:<27}{row['median']:>9.1f}{row['min']:>9.1f}{row['max']:>9.1f}{rate}")
    pa, pp = s["paired_added_us"], s["paired_added_pct"]
    print(f"       {'added (medians)':<27}{s['added_us']:>9.1f} us = {s['added_pct']:.1f} % of plain")
    print(
        f"       {'added (paired, median)':<27}{pa['median']:>9.1f} us = {pp['median']:.1f} %, "
        f"range {pa['min']:.0f} .. {pa['max']:.0f} us ({pp['min']:.1f} .. {pp['max']:.1f} %)"
    )


def print_proxy(r: dict[str, Any]) -> None:
    n, w, rounds = r["requests_per_run"], r["requests_per_window"], r["rounds"]
    print()
    print(
        f"3. Proxy CPU per request: mitmdump vs mitmdump -s addons/cors.py, {r['connections']} keep-alive "
        "connections per proxy, one request in flight"
    )
    lb, la = r["loadavg_1min"]
    print(f"   {r['pinning']}; load average {lb:.2f} -> {la:.2f}")
    if r["note"]:
        print(f"   NOTE: {r['note']}")
    print(f"   mix (repeating): {', '.join(r['mix'])}")
    secs = r["seconds"]
    print(
        f"   a) alternating runs: plain, addon, plain, ... {rounds} runs of {n} requests per proxy "
        f"({secs['alternating']:.0f} s)"
    )
    print(f"     {'CPU us per request':<29}{'median':>9}{'min':>9}{'max':>9}{'req/s':>8}")
    rps = {"plain": r["plain_req_per_s"], "addon": r["addon_req_per_s"]}
    for source, title in SOURCES:
        if source in r["alternating"]:
            print(f"     {title}")
            _print_summary(r["alternating"][source], rps)
    runs = r["runs"]
    per_round = [f"{a['us_stat']:.0f}/{b['us_stat']:.0f}" for a, b in zip(runs[::2], runs[1::2], strict=True)]
    print(f"     per run (plain/addon, /proc stat): {'  '.join(per_round)}")
    idle_p, idle_a = r["plain_idle_while_other_loaded_us"], r["addon_idle_while_other_loaded_us"]
    if idle_p is not None and idle_a is not None:
        print(
            f"     idle proxy during the other's run: {idle_p:.2f} / {idle_a:.2f} us per request (plain / addon); "
            f"user share of CPU: {r['plain_user_share']:.0%} / {r['addon_user_share']:.0%}"
        )
    print(
        f"   b) interleaved: each request through both proxies in turn, both measured over the same window; "
        f"{rounds} windows of {w} requests per proxy ({secs['interleaved']:.0f} s)"
    )
    for source, title in SOURCES:
        if source in r["interleaved"]:
            print(f"     {title}")
            _print_summary(r["interleaved"][source], None)
    per_window = [f"{x['plain']['us_stat']:.0f}/{x['addon']['us_stat']:.0f}" for x in r["windows"]]
    print(f"     per window (plain/addon, /proc stat): {'  '.join(per_window)}")


def proxy_verdicts(r: dict[str, Any]) -> list[tuple[str, float, float, float, float]]:
    """(method, added us, added %, min %, max % of the paired differences) per measurement.

    From the CPU clock (ns) when it is readable, else from /proc stat, whose 10 ms ticks are coarse for short runs.
    """
    out = []
    for method in ("alternating", "interleaved"):
        for source in ("us_clock", "us_stat"):
            if source in r[method]:
                s = r[method][source]
                lo, hi = s["paired_added_pct"]["min"], s["paired_added_pct"]["max"]
                clock = "CPU clock" if source == "us_clock" else "/proc stat"
                if method == "alternating":
                    label = f"alternating runs, difference of medians, {clock}"
                    out.append((label, s["added_us"], s["added_pct"], lo, hi))
                else:
                    added, pct = s["paired_added_us"]["median"], s["paired_added_pct"]["median"]
                    out.append((f"interleaved windows, median paired difference, {clock}", added, pct, lo, hi))
                break
    return out


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


# --------------------------------------------------------------------------------------------------
# 4. Rule files: matching with 1,000 rules, and (re)loading such a file.

RULES_TARGET_US = 50.0
RULE_COUNT = 1000


def thousand_rules() -> str:
    """A realistic large rule file: per-service hosts, host globs, path globs, origin patterns, some filters."""
    lines = ["rules:"]
    for i in range(RULE_COUNT):
        kind = i % 4
        lines.append(f"  - name: rule {i}")
        lines.append("    match:")
        if kind == 0:
            lines.append(f"      host: api{i}.example.test")
        elif kind == 1:
            lines.append(f'      host: ["*.svc{i}.example.test", "svc{i}.localhost"]')
            lines.append(f"      path: /v{i % 7}/*")
        elif kind == 2:
            lines.append(f"      host: api{i}.example.test")
            lines.append(f'      origin: ["http://localhost:*", "https://*.app{i}.example.test"]')
        else:
            lines.append(f"      host: api{i}.example.test")
            lines.append('      filter: "~m PUT | ~m PATCH"')
        lines.append(f"    allow_origins: {'reflect' if i % 2 else '[http://localhost:5173]'}")
        lines.append("    allow_methods: [GET, POST, PUT, PATCH, DELETE]")
        lines.append("    max_age: 600")
    return "\n".join(lines) + "\n"


def bench_rules(quick: bool) -> dict[str, Any]:
    """Rule matching per flow with 1,000 rules (warm per-host cache, a host seen for the first time, a miss),
    and the time to parse and validate the file (what a hot reload costs)."""
    from mitmproxy.test import tflow

    from mitmcors.addon import compile_filter
    from mitmcors.rules import parse_rules

    text = thousand_rules()
    repeat = 3 if quick else 7
    reload_ms = Timing.of(
        [
            t * 1e3
            for t in timeit.repeat(lambda: parse_rules(text, "bench.yaml", compile_filter), number=1, repeat=repeat)
        ]
    )
    rules = parse_rules(text, "bench.yaml", compile_filter)
    assert len(rules.rules) == RULE_COUNT
    flow = tflow.tflow()
    flow.request.method = "PUT"
    origin = "http://localhost:5173"
    cases = {
        "last rule (warm host cache)": ("api999.example.test", "/v1/x", origin),
        "glob host + path (warm)": ("a.b.svc501.example.test", "/v4/items", origin),
        "no rule matches (warm)": ("elsewhere.test", "/x", origin),
    }
    timings: dict[str, Timing] = {}
    min_seconds = 0.02 if quick else 0.1
    for label, (host, path, org) in cases.items():
        assert (rules.match(host, path, org, flow) is None) == label.startswith("no rule"), label

        def one(host: str = host, path: str = path, org: str = org) -> None:
            rules.match(host, path, org, flow)

        timings[label] = time_calls(one, 1, repeat, min_seconds)
    hosts = [f"fresh{i}.example.test" for i in range(200 if quick else 1000)]

    def cold() -> None:
        for h in hosts:
            rules.match(h, "/x", origin, flow)
        rules._by_host.clear()

    timings["a host seen for the first time (cold)"] = time_calls(cold, len(hosts), repeat, min_seconds)
    return {"reload_ms": reload_ms, "match": timings, "rules": RULE_COUNT}


def print_rules(r: dict[str, Any]) -> None:
    print()
    print(f"4. Rule files: {r['rules']} rules (target: matching < {RULES_TARGET_US:g} us per flow)")
    print(f"   {'case':<42} {'best us':>9} {'median us':>10}")
    for label, t in r["match"].items():
        print(f"   {label:<42} {t.best:>9.2f} {t.median:>10.2f}")
    t = r["reload_ms"]
    print(f"   parse + validate the whole file (a hot reload): best {t.best:.1f} ms, median {t.median:.1f} ms")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and requests (~20 s)")
    parser.add_argument("--json", action="store_true", help="also print all numbers as one JSON object at the end")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the addon hooks (section 2 mix)")
    parser.add_argument("--requests", type=int, help="requests per proxy in section 3 (default 2000, --quick 300)")
    parser.add_argument("--rounds", type=int, help="alternating runs per proxy (default 8, --quick 3; at least 3)")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections of the load client")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        help="pin the proxies to one CPU and the client/backend to the others (default: only on an idle machine)",
    )
    parser.add_argument(
        "--budget", type=float, help="seconds of section-3 load at most (default 45, --quick 6); fewer requests if slow"
    )
    parser.add_argument("--skip-proxy", action="store_true", help="only sections 1 and 2")
    parser.add_argument("--role", choices=("backend", "client"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "backend":
        return backend_main()
    if args.role == "client":
        return client_main()

    from mitmproxy import version

    total = args.requests or (300 if args.quick else 2000)
    rounds = max(3, args.rounds or (3 if args.quick else 8))
    budget = args.budget or (6.0 if args.quick else 45.0)
    started = time.monotonic()
    speed = machine_speed()
    print(
        f"mitmcors benchmark{' (quick)' if args.quick else ''}: Python {platform.python_version()}, mitmproxy "
        f"{version.VERSION}, {os.cpu_count()} CPUs, load average {loadavg():.2f}, "
        f"speed reference sum(range(1000)) = {speed:.1f} us"
    )
    print()
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "mitmproxy": version.VERSION,
        "quick": args.quick,
        "sum_range_1000_us": speed,
    }
    try:
        report["evaluator"] = ev = bench_evaluator(args.quick)
        print_evaluator(ev)
        best = ev["mix"][INDEXED].best
        print(
            f"   the addon's evaluator path costs {best / speed:.2f} x the speed reference on this machine "
            f"(where sum(range(1000)) takes 10 us, that is {best / speed * 10:.1f} us)"
        )
        report["addon"] = ad = bench_addon(args.quick)
        print_addon(ad)
        if args.profile:
            print()
            print(profile_addon(args.quick))
        report["rules"] = ru = bench_rules(args.quick)
        print_rules(ru)
        if not args.skip_proxy:
            report["proxy"] = px = bench_proxy(total, rounds, args.connections, args.pin, budget)
            print_proxy(px)
    except BenchError as e:
        print(f"\nbench.py: CRASHED: {e}", file=sys.stderr)
        return 1

    print()
    print("Targets")
    targets: dict[str, Any] = {}
    for label, t in ev["mix"].items():
        if label != INDEXED:
            continue  # the other header types are for comparison; the addon uses WireHeaders
        ok = t.best < EVALUATOR_TARGET_US
        print(
            f"   evaluator < {EVALUATOR_TARGET_US:g} us per call, {label}: best {t.best:.2f} us "
            f"(median {t.median:.2f})  {verdict_word(ok)}"
        )
        targets[f"evaluator_best_us[{label}]"] = t.best
        targets[f"evaluator_pass[{label}]"] = ok
    warm = max(t.best for label, t in ru["match"].items() if "warm" in label)
    ok = warm < RULES_TARGET_US
    print(
        f"   rule matching with {RULE_COUNT} rules < {RULES_TARGET_US:g} us per flow: worst warm case best "
        f"{warm:.2f} us  {verdict_word(ok)}"
    )
    targets["rules_match_us"] = warm
    targets["rules_pass"] = ok
    if "proxy" in report:
        for method, added, pct, lo, hi in proxy_verdicts(report["proxy"]):
            ok = pct < PROXY_TARGET_PCT
            unsure = lo < PROXY_TARGET_PCT <= hi
            print(
                f"   mitmcors adds < {PROXY_TARGET_PCT:g} % of mitmdump's CPU per request ({method}): "
                f"{added:+.1f} us = {pct:.1f} %  {verdict_word(ok)}"
                + (f" (uncertain: rounds range {lo:.1f} .. {hi:.1f} %)" if unsure else "")
            )
            key = method.split()[0]
            targets[f"proxy_added_pct[{key}]"] = pct
            targets[f"proxy_pass[{key}]"] = ok
            targets[f"proxy_uncertain[{key}]"] = unsure
    report["targets"] = targets
    report["seconds"] = time.monotonic() - started
    print(f"   ({report['seconds']:.0f} s)")
    if args.json:
        print(json.dumps(jsonable(report), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
