"""Proxy cost of mitmcors in instructions, not seconds: mitmdump under valgrind's callgrind, side by side.

CPU time on a shared virtual machine swings by a factor of two from one minute to the next, so percentages
measured in seconds (tests/bench.py, section 3) carry wide error bars. Callgrind counts instructions, which
are the same for the same work whatever else the machine does. This script starts a local backend and two
`mitmdump -q` under callgrind (plain, and with `-s addons/cors.py`), warms both up, zeroes the counters,
sends the same request mix through each, dumps the counters and prints instructions per request and the
share the addon adds.

    python tests/bench_instructions.py [--requests 200]

Needs valgrind (Debian: apt-get install valgrind). Takes a few minutes: Python runs ~50x slower under it.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

from bench import free_port, wait_listening  # the sibling benchmark's helpers (tests/ is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
MITMDUMP = Path(sys.executable).parent / "mitmdump"
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


class Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b"" if self.command == "OPTIONS" else b'{"ok": true}'
        self.send_response(204 if self.command == "OPTIONS" else 200)
        if not self.path.startswith("/api/blocked"):
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Methods", "PUT")
            self.send_header("Access-Control-Allow-Headers", "content-type")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_OPTIONS = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


def drive(port: int, backend: int, n: int) -> None:
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


def measure(name: str, extra: list[str], backend: int, requests: int, warmup: int, work: Path) -> float:
    port = free_port()
    out = work / f"{name}.callgrind"
    args = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        "--dump-instr=no",
        sys.executable,
        str(MITMDUMP),
        "-q",
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "--set",
        f"confdir={work / 'conf'}",
        *extra,
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        wait_listening(port, proc, "mitmdump under callgrind", timeout=300)
        drive(port, backend, warmup)
        callgrind_control("--zero", str(proc.pid))
        drive(port, backend, requests)
        callgrind_control("--dump", str(proc.pid))
        time.sleep(1)
        dumps = sorted(work.glob(f"{name}.callgrind.*"), key=lambda p: p.stat().st_mtime)
        if not dumps:
            raise RuntimeError("callgrind wrote no dump")
        return instructions(dumps[-1]) / requests
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=240, help="measured requests per proxy (default 240)")
    parser.add_argument("--warmup", type=int, default=48, help="requests before the counters are zeroed")
    args = parser.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("bench_instructions.py: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    Thread(target=server.serve_forever, daemon=True).start()
    backend = server.server_address[1]
    from mitmproxy import version

    print(f"mitmcors under callgrind: Python {sys.version.split()[0]}, mitmproxy {version.VERSION}")
    print(f"   mix: {', '.join(f'{m} {p}' for m, p, _ in MIX)}; {args.requests} requests after {args.warmup}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            plain = measure("plain", [], backend, args.requests, args.warmup, work)
            addon = measure(
                "addon", ["-s", str(ROOT / "addons" / "cors.py")], backend, args.requests, args.warmup, work
            )
    finally:
        server.shutdown()
        server.server_close()
    added = addon - plain
    print(f"   plain mitmdump        {plain / 1e6:8.2f} M instructions per request")
    print(f"   mitmdump + mitmcors   {addon / 1e6:8.2f} M instructions per request")
    print(f"   added by mitmcors     {added / 1e6:8.2f} M = {added / plain * 100:.1f} % (target < 5 %)")
    print(f"   {'PASS' if added / plain < 0.05 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
