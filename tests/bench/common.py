"""What the benchmarks share: the mix of browser-shaped flows (sections 1 and 2), timing helpers, the machine
line every benchmark prints first, and the command-line options every benchmark has."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ADDONS = ROOT / "addons"
if str(ADDONS) not in sys.path:  # `mitmcors` from this checkout, also without an editable install
    sys.path.insert(0, str(ADDONS))

ORIGIN = "https://app.example.com"
API_HOST = "api.example.com"

Lines = tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------------------------------
# The mix of flows used by the evaluator and hook benchmarks.


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


def hundred_rules(path: Path, host: str, origin: str, methods: str, headers: str) -> Path:
    """A 100-rule file: 99 rules for other hosts, then one for `host` allowing `origin`, `methods` and `headers`
    (YAML flow lists): every flow to `host` is matched by the last rule. Written to `path`."""
    lines = ["rules:"]
    for i in range(99):
        lines += [
            f"  - name: service {i}",
            "    match:",
            f'      host: ["api{i}.example.test", "*.svc{i}.example.test"]',
            "    allow_origins: [http://localhost:5173]",
            "    allow_methods: [GET, POST, PUT]",
        ]
    lines += [
        "  - name: the backend",
        "    match:",
        f"      host: {host}",
        f"    allow_origins: [{origin}]",
        f"    allow_methods: {methods}",
        f"    allow_headers: {headers}",
        "    max_age: 600",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def with_lines(base: Lines, *extra: tuple[str, str], drop: Sequence[str] = ()) -> Lines:
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
        with_lines(SERVER, ("Access-Control-Allow-Origin", "*")),
        "actual",
        True,
    ),
    Case("GET, no ACAO (blocked)", "GET", "/v1/private", BROWSER, 200, SERVER, "actual", False),
    Case(
        "credentialed POST w/ cookie",
        "POST",
        "/v1/cart",
        with_lines(BROWSER, ("Content-Type", "text/plain;charset=UTF-8"), ("Cookie", "sid=4f1c9e; theme=dark")),
        200,
        with_lines(
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
        with_lines(
            BROWSER,
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "content-type,x-csrf-token"),
        ),
        204,
        with_lines(
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
        with_lines(BROWSER, ("Content-Type", "application/json"), ("X-CSRF-Token", "c2VjcmV0")),
        200,
        with_lines(
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
        with_lines(
            BROWSER,
            ("Access-Control-Request-Method", "DELETE"),
            ("Access-Control-Request-Headers", "x-debug"),
        ),
        204,
        with_lines(
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
        with_lines(
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
            *with_lines(BROWSER, ("Content-Type", "application/json"), drop=("Origin", "Sec-Fetch-Site")),
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
            *with_lines(
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
        with_lines(SERVER, ("Location", "/home"), drop=("Content-Type", "Content-Length")),
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
        with_lines(BROWSER, drop=("Origin",)),
        200,
        SERVER,
        "",
        True,
    ),
    Case(
        "GET script, no Origin",
        "GET",
        "/static/app.js",
        with_lines(BROWSER, drop=("Origin",)),
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

    def minus(self, us: float) -> Timing:
        """The same timings without `us` of work timed apart (e.g. a setup step inside each call)."""
        return Timing(self.best - us, self.median - us, self.worst - us)


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


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """A parser with the options every benchmark has: --quick and --json."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (and requests): a quick look")
    parser.add_argument("--json", action="store_true", help="also print all numbers as one JSON object at the end")
    return parser


def banner(what: str, quick: bool) -> dict[str, Any]:
    """Print the line that says where the numbers come from; returns it for the JSON report (with
    ``sum_range_1000_us``, the speed reference)."""
    from mitmproxy import version

    speed = machine_speed()
    print(
        f"mitmcors benchmark, {what}{' (quick)' if quick else ''}: Python {platform.python_version()}, mitmproxy "
        f"{version.VERSION}, {os.cpu_count()} CPUs, load average {loadavg():.2f}, "
        f"speed reference sum(range(1000)) = {speed:.1f} us"
    )
    return {
        "python": platform.python_version(),
        "mitmproxy": version.VERSION,
        "quick": quick,
        "sum_range_1000_us": speed,
    }


def run(what: str, measure: Callable[[argparse.Namespace, dict[str, Any]], None], args: argparse.Namespace) -> int:
    """The banner, then `measure(args, report)` (which prints its section and adds its numbers to the report), the
    time it all took, and the JSON report with --json; returns 1 if the benchmark crashed."""
    started = time.monotonic()
    report = banner(what, args.quick)
    try:
        measure(args, report)
    except BenchError as e:
        print(f"\n{what}: CRASHED: {e}", file=sys.stderr)
        return 1
    report["seconds"] = time.monotonic() - started
    print(f"   ({report['seconds']:.0f} s)")
    if args.json:
        print(json.dumps(jsonable(report), sort_keys=True))
    return 0


def print_targets() -> None:
    print()
    print("Targets")
