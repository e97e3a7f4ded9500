"""Benchmark 5, proxy cost in instructions, not seconds: mitmdump under valgrind's callgrind, side by side.

    python -m tests.bench.instructions [--quick] [--json] [--requests 240] [--warmup 48]

CPU time on a shared virtual machine swings by a factor of two from one minute to the next, so percentages
measured in seconds (tests/bench/proxy_cpu.py) carry wide error bars. Callgrind counts instructions, which are the
same for the same work whatever else the machine does. This starts the harness backend and two `mitmdump -q` under
callgrind (plain, and with `-s addons/cors.py`), warms both up, zeroes the counters, sends the same request mix
through each, dumps the counters and prints instructions per request and the share the addon adds.

Needs valgrind (Debian: apt-get install valgrind). Takes a few minutes (--quick: about one): Python runs ~50x
slower under it.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.bench.common import arguments, run, verdict_word
from tests.harness.backend import Answer, Backend, Route
from tests.harness.mitmdump import ADDON, Mitmdump

TARGET_PCT = 5.0
ORIGIN = "http://app.localhost:5173"
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156", "Accept": "*/*", "Accept-Encoding": "gzip"}
# What a page does: a simple GET, a preflight and its PUT, a blocked GET, and requests without Origin.
MIX: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/api/ok", {"Origin": ORIGIN, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site"}),
    (
        "OPTIONS",
        "/api/ok",
        {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"},
    ),
    ("PUT", "/api/ok", {"Origin": ORIGIN, "Sec-Fetch-Mode": "cors", "Content-Type": "application/json"}),
    ("GET", "/api/blocked", {"Origin": ORIGIN, "Sec-Fetch-Mode": "cors"}),
    ("GET", "/page", {"Sec-Fetch-Mode": "navigate"}),
    ("GET", "/app.js", {"Sec-Fetch-Mode": "no-cors"}),
]


def answers(*lines: tuple[str, str]) -> Route:
    """204 to an OPTIONS, else 200 with a small JSON body; both with `lines`."""
    json_lines = [*lines, ("Content-Type", "application/json")]
    return Route({"OPTIONS": Answer(204, json_lines, b""), "*": Answer(200, json_lines, b'{"ok": true}')})


def start_backend() -> Backend:
    """Allow-Origin * (and the preflight's PUT and Content-Type) everywhere but /api/blocked."""
    backend = Backend()
    cors = (
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", "PUT"),
        ("Access-Control-Allow-Headers", "content-type"),
    )
    backend.route("/", answers(*cors), prefix=True)
    backend.route("/api/blocked", answers(), prefix=True)
    return backend


def drive(port: int, backend: int, n: int) -> None:
    """`n` requests of the mix through the proxy on `port`, on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        for i in range(n):
            method, path, headers = MIX[i % len(MIX)]
            body = b"{}" if method == "PUT" else None
            conn.request(method, f"http://127.0.0.1:{backend}{path}", body=body, headers={**BROWSER, **headers})
            conn.getresponse().read()
    finally:
        conn.close()


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


def instructions(dump: Path) -> int:
    """Total Ir of a callgrind dump file ('summary:' or 'totals:' line)."""
    match = re.search(r"^(?:summary|totals):\s*(\d+)", dump.read_text(errors="replace"), re.M)
    if match is None:
        raise RuntimeError(f"no totals in {dump}")
    return int(match.group(1))


def measure_proxy(name: str, scripts: Sequence[Path], backend: int, requests: int, warmup: int, work: Path) -> float:
    """Instructions per request of one `mitmdump -q` (with `scripts`) under callgrind, after `warmup` requests."""
    out = work / f"{name}.callgrind"
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no", sys.executable]
    proxy = Mitmdump(work, ["-q"], name, work / "conf", scripts, False, valgrind, start_timeout=300).start()
    try:
        drive(proxy.port, backend, warmup)
        assert proxy.proc is not None
        callgrind_control("--zero", str(proxy.proc.pid))
        drive(proxy.port, backend, requests)
        callgrind_control("--dump", str(proxy.proc.pid))
        time.sleep(1)
        dumps = sorted(work.glob(f"{name}.callgrind.*"), key=lambda p: p.stat().st_mtime)
        if not dumps:
            raise RuntimeError("callgrind wrote no dump")
        return instructions(dumps[-1]) / requests
    finally:
        try:
            proxy.stop(signal.SIGINT, timeout=120)
        finally:
            proxy.kill()


def measure(args: argparse.Namespace, report: dict[str, Any]) -> None:
    requests = args.requests or (60 if args.quick else 240)
    warmup = args.warmup or (24 if args.quick else 48)
    print()
    print("5. Proxy cost in instructions: mitmdump vs mitmdump -s addons/cors.py under callgrind")
    print(f"   mix: {', '.join(f'{m} {p}' for m, p, _ in MIX)}; {requests} requests after {warmup}")
    with start_backend() as backend, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plain = measure_proxy("plain", (), backend.http_port, requests, warmup, work)
        addon = measure_proxy("addon", (ADDON,), backend.http_port, requests, warmup, work)
    added = addon - plain
    print(f"   plain mitmdump        {plain / 1e6:8.2f} M instructions per request")
    print(f"   mitmdump + mitmcors   {addon / 1e6:8.2f} M instructions per request")
    print(f"   added by mitmcors     {added / 1e6:8.2f} M = {added / plain * 100:.1f} % (target < {TARGET_PCT:g} %)")
    print(f"   {verdict_word(added / plain * 100 < TARGET_PCT)}")
    report["instructions"] = {"plain": plain, "addon": addon, "added_pct": added / plain * 100}


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--requests", type=int, help="measured requests per proxy (default 240, --quick 60)")
    parser.add_argument("--warmup", type=int, help="requests before the counters are zeroed (default 48, --quick 24)")
    args = parser.parse_args(argv)
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("instructions benchmark: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")  # the mitmdumps under callgrind write no .pyc files
    return run("instructions under callgrind", measure, args)


if __name__ == "__main__":
    sys.exit(main())
