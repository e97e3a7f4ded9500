"""Benchmark 3, proxy CPU per request: does mitmcors add less than 5 % to mitmdump's own CPU?

    python -m tests.bench.proxy_cpu [--quick] [--json] [--pin | --no-pin] [--requests N] [--rounds R]

A threaded HTTP/1.1 backend (tests/harness's, in a subprocess) answers GET/POST/PUT/OPTIONS with CORS headers; two
mitmdumps run side by side, plain and `-s addons/cors.py`, both `-q --set connection_strategy=lazy` in regular
(forward) mode; a load client (another subprocess: http.client, keep-alive connections, absolute-form URLs, one
request in flight at a time, so client, proxy and backend never run at the same time) sends the same browser-like
mix through each: cross-origin GET/POST, preflight + PUT, a PUT covered by a cached preflight, a failing preflight,
a blocked GET, a same-origin POST and requests without `Origin`. Each mitmdump's CPU is read right before and after
each measurement: user+sys from /proc/<pid>/stat (clock ticks) and the process's POSIX CPU clock (clock_gettime on
the pid's CPU clock id: the same user+sys, in ns), which the PASS/FAIL lines use when it is readable because 10 ms
ticks are coarse for short runs. After a warm-up, two measurements:

a) alternating runs, plain, addon, plain, addon, ... (`--rounds` each, `--requests` per proxy in all): median, min
   and max CPU us/request per proxy, the difference of the medians in us and % of plain, and the range of the
   per-round differences;
b) interleaved windows: every request goes through both proxies in turn and both are measured over the same window,
   so load from other processes hits both alike; the median paired difference is the figure to trust on a busy
   machine.

On an idle machine the proxies are pinned to one CPU and the client/backend to the other (`--pin` forces, `--no-pin`
prevents it); on a busy one pinning makes the pinned processes queue for their CPU, so it is off. CPU time rather
than wall-clock, so other processes slow the runs but bias the numbers much less; the load average and a speed
reference (`sum(range(1000))`) are printed because they still matter (shared caches, SMT siblings, frequency). If
the warm-up shows the load would not fit in `--budget`, runs get fewer requests. At most about a minute by
default, 5-15 s with --quick. tests/bench/instructions.py measures the same in instructions, which do not drift
with the load of the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench.common import ROOT, BenchError, Lines, arguments, loadavg, print_targets, run, verdict_word
from tests.harness.backend import Answer, Backend, Seen, serve_until_terminated
from tests.harness.mitmdump import ADDON, Mitmdump
from tests.harness.ports import stop_process

PROXY_TARGET_PCT = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
ALLOW_METHODS = "GET, POST, PUT, DELETE"
ALLOW_HEADERS = "Content-Type, X-CSRF-Token"
JSON_BODY = b'{"items": [1, 2, 3], "n": 3}'
JSON = ("Content-Type", "application/json")


def reflecting(*lines: tuple[str, str]) -> Callable[[Seen], Answer]:
    """An answer with the request's Origin as Access-Control-Allow-Origin (and Vary: Origin)."""

    def answer(seen: Seen) -> Answer:
        acao = [("Access-Control-Allow-Origin", seen.header("origin") or ""), ("Vary", "Origin")]
        return Answer(200, [JSON, *acao, *lines], JSON_BODY)

    return answer


def item(seen: Seen) -> Answer:
    """/api/item: a passing preflight for PUT with Content-Type, and the PUT's answer, both for the request's Origin."""
    acao = [("Access-Control-Allow-Origin", seen.header("origin") or ""), ("Vary", "Origin")]
    if seen.method == "OPTIONS":
        preflight = [
            ("Access-Control-Allow-Methods", ALLOW_METHODS),
            ("Access-Control-Allow-Headers", ALLOW_HEADERS),
            ("Access-Control-Max-Age", "600"),
        ]
        return Answer(204, [*acao, *preflight], b"")
    return Answer(200, [JSON, *acao, ("Access-Control-Expose-Headers", "ETag"), ("ETag", '"1b-5f2a"')], JSON_BODY)


def backend_main() -> int:
    """Role `backend`: the harness backend answering the mix's paths with CORS headers; prints its port."""
    backend = Backend()
    backend.route("/api/open", Answer(200, [JSON, ("Access-Control-Allow-Origin", "*")], JSON_BODY), prefix=True)
    backend.route("/api/creds", reflecting(("Access-Control-Allow-Credentials", "true")), prefix=True)
    backend.route("/api/item", item, prefix=True)
    backend.route("/api/", Answer(200, [JSON], JSON_BODY), prefix=True)  # no CORS headers: blocked
    page = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "max-age=60")]
    backend.route("/", Answer(200, page, b"<!doctype html><title>page</title>" * 4), prefix=True)
    return serve_until_terminated(backend)


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
    """One of the two mitmdumps under load."""

    name: str
    mitmdump: Mitmdump

    @property
    def port(self) -> int:
        return self.mitmdump.port

    def cpu(self) -> CpuSample:
        assert self.mitmdump.proc is not None
        return cpu_sample(self.mitmdump.proc.pid)

    def problems(self) -> list[str]:
        """Lines mitmdump printed although it runs with -q: errors, tracebacks, the addon's internal errors."""
        return [line for line in self.mitmdump.output().splitlines() if line.strip()]


def _pin(cpus: set[int] | None) -> Callable[[], None] | None:
    if not cpus:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def start_proxy(name: str, scripts: Sequence[Path], workdir: Path, cpus: set[int] | None) -> Proxy:
    """A `mitmdump -q` with `scripts` (none: plain), pinned to `cpus`, listening."""
    args = ["-q", "--set", "connection_strategy=lazy"]
    mitmdump = Mitmdump(
        workdir, args, name, workdir / "conf", scripts, write_report=False, preexec_fn=_pin(cpus), start_timeout=60
    )
    try:
        mitmdump.start()
    except RuntimeError as e:
        raise BenchError(f"mitmdump ({name}) did not start: {e}") from e
    return Proxy(name, mitmdump)


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
            [sys.executable, "-m", __spec__.name, "--role", "client"],
            cwd=ROOT,
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
                stop_process(self.proc)


def start_backend() -> tuple[subprocess.Popen[str], int]:
    backend = subprocess.Popen(
        [sys.executable, "-m", __spec__.name, "--role", "backend"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert backend.stdout is not None
    first = backend.stdout.readline().split()
    if len(first) != 2 or first[0] != "port":
        stop_process(backend)
        raise BenchError(f"the backend did not start: {first!r}")
    return backend, int(first[1])


def measure_run(proxy: Proxy, other: Proxy, client: LoadClient, count: int) -> Run:
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
    note = ""
    try:
        with tempfile.TemporaryDirectory(prefix="mitmcors-bench-") as tmp:
            workdir = Path(tmp)
            backend, backend_port = start_backend()
            client = LoadClient(backend_port, nconns)
            for name, scripts in (("plain", ()), ("addon", (ADDON,))):
                proxies.append(start_proxy(name, scripts, workdir, proxy_cpus))
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
                runs.append(measure_run(plain_proxy, addon_proxy, client, per_run))
                runs.append(measure_run(addon_proxy, plain_proxy, client, per_run))
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
            with contextlib.suppress(RuntimeError):
                proxy.mitmdump.stop(signal.SIGTERM, timeout=10)
            proxy.mitmdump.kill()
        stop_process(backend)
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


def measure(args: argparse.Namespace, report: dict[str, Any]) -> None:
    total = args.requests or (300 if args.quick else 2000)
    rounds = max(3, args.rounds or (3 if args.quick else 8))
    budget = args.budget or (6.0 if args.quick else 45.0)
    report["proxy"] = px = bench_proxy(total, rounds, args.connections, args.pin, budget)
    print_proxy(px)
    print_targets()
    targets: dict[str, Any] = {}
    for method, added, pct, lo, hi in proxy_verdicts(px):
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--requests", type=int, help="requests per proxy (default 2000, --quick 300)")
    parser.add_argument("--rounds", type=int, help="alternating runs per proxy (default 8, --quick 3; at least 3)")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections of the load client")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        help="pin the proxies to one CPU and the client/backend to the others (default: only on an idle machine)",
    )
    parser.add_argument(
        "--budget", type=float, help="seconds of load at most (default 45, --quick 6); fewer requests if slow"
    )
    parser.add_argument("--role", choices=("backend", "client"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "backend":
        return backend_main()
    if args.role == "client":
        return client_main()
    return run("proxy CPU", measure, args)


if __name__ == "__main__":
    sys.exit(main())
