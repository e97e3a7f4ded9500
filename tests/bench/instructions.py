"""Benchmark 5, proxy cost in instructions, not seconds: mitmdump under valgrind's callgrind, side by side.

    python -m tests.bench.instructions [--quick] [--json] [--requests 240] [--warmup 48]

CPU time on a shared virtual machine swings by a factor of two from one minute to the next, so percentages
measured in seconds (tests/bench/proxy_cpu.py) carry wide error bars. Callgrind counts instructions, which are the
same for the same work whatever else the machine does, except for timers: mitmproxy's and asyncio's run per
second, so a proxy slowed down by others beside it counts more of them per request. This starts the harness backend
and one `mitmdump` under callgrind per variant, as many at a time as the machine has CPUs:

- `plain`: `mitmdump -q`;
- `empty script`: `mitmdump -q -s <a script with no addon>` (mitmproxy's own script machinery: the baseline);
- `no-op hooks`: `mitmdump -q -s <a script whose addon has mitmcors's hooks (request, response, error), each
  doing nothing>`: what mitmproxy charges any addon with those hooks, the floor under mitmcors's own cost;
- `a minimal judge`: the same hooks, and the response hook compares `Access-Control-Allow-Origin` with `Origin`
  through mitmproxy's `Headers` and writes `flow.metadata["cors"] = {"verdict": ...}`: the least any CORS judge in
  Python does (no preflights, credentials, Firefox, links, fixes or findings), so what a target leaves for the rest;
- `mitmcors`: `mitmdump -q -s addons/cors.py`, no rules;
- `mitmcors, 100 rules`: the same with a 100-rule `cors_rules` file whose *last* rule matches every request;
- `empty script, default log` and `mitmcors, default log`: the two without `-q` (mitmdump prints a line per flow;
  mitmcors a line per CORS flow).

Each proxy is warmed up, then for each request mix the counters are zeroed, the mix is sent, and the counters are
dumped. The mixes:

- `repo`: what a page does, the same URLs again and again: a simple GET, a preflight and its PUT, a blocked GET, a
  navigation and a no-cors script;
- `all-CORS`: every request cross-origin and every URL new: a preflight and its PUT, and a credentialed GET (a
  Cookie; the answer echoes the Origin with Allow-Credentials).

The addon's cost is its variant minus the empty script, as a share of plain mitmdump's instructions per request
(targets: 1 % without rules, 1.5 % with 100 rules, on both mixes, with `-q`). PYTHONHASHSEED is fixed so that two
runs count the same.

Needs valgrind (Debian: apt-get install valgrind). Takes a few minutes (--quick: about two): Python runs ~50x
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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench.common import arguments, hundred_rules, run, verdict_word
from tests.harness.backend import Answer, Backend, Route
from tests.harness.mitmdump import ADDON, Mitmdump

TARGET_NO_RULES_PCT = 1.0
PARALLEL = max(1, os.cpu_count() or 1)  # proxies at a time: no more than CPUs, so that none waits for one
TARGET_100_RULES_PCT = 1.5
ORIGIN = "http://app.localhost:5173"
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156", "Accept": "*/*", "Accept-Encoding": "gzip"}
CORS = {"Origin": ORIGIN, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site"}
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"}

Request = tuple[str, str, dict[str, str]]
Mix = Callable[[int], Request]  # the i-th request of a mix

# What a page does, again and again: a simple GET, a preflight and its PUT, a blocked GET, requests without Origin.
REPO_MIX: list[Request] = [
    ("GET", "/api/ok", CORS),
    ("OPTIONS", "/api/ok", PREFLIGHT),
    ("PUT", "/api/ok", {**CORS, "Content-Type": "application/json"}),
    ("GET", "/api/blocked", CORS),
    ("GET", "/page", {"Sec-Fetch-Mode": "navigate"}),
    ("GET", "/app.js", {"Sec-Fetch-Mode": "no-cors"}),
]


def repo_mix(i: int) -> Request:
    return REPO_MIX[i % len(REPO_MIX)]


def all_cors_mix(i: int) -> Request:
    """A preflight, its PUT, and a credentialed GET, each time to a new URL."""
    n, step = divmod(i, 3)
    if step == 0:
        return "OPTIONS", f"/api/items/{n}", PREFLIGHT
    if step == 1:
        return "PUT", f"/api/items/{n}", {**CORS, "Content-Type": "application/json"}
    return "GET", f"/api/me/{n}", {**CORS, "Cookie": f"session=s{n}"}


MIXES: dict[str, Mix] = {"repo": repo_mix, "all-CORS": all_cors_mix}


@dataclass(frozen=True)
class Variant:
    name: str
    addon: bool  # mitmcors loaded (else the empty script, or no script at all for `plain`)
    quiet: bool
    rules: bool = False
    script: bool = True
    noop_hooks: bool = False  # instead of mitmcors: an addon with its hooks, each doing nothing (the floor)
    minimal_judge: bool = False  # instead of mitmcors: MINIMAL_JUDGE


# What any addon with mitmcors's hooks costs before it does anything: mitmproxy looks each hook up and calls it.
NOOP_HOOKS = """\
class NoOpHooks:
    def request(self, flow):
        pass

    def response(self, flow):
        pass

    def error(self, flow):
        pass


addons = [NoOpHooks()]
"""

# The least any CORS judge in Python can do: find Origin, compare Allow-Origin with it, and say so on the flow. No
# preflights, credentials, Firefox, links, fixes or findings: a measure of what is left for them under a target.
MINIMAL_JUDGE = """\
class MinimalJudge:
    def request(self, flow):
        pass

    def response(self, flow):
        origin = flow.request.headers.get("origin")
        if origin is not None:
            allowed = flow.response.headers.get("access-control-allow-origin") in ("*", origin)
            flow.metadata["cors"] = {"verdict": "allowed" if allowed else "blocked"}

    def error(self, flow):
        pass


addons = [MinimalJudge()]
"""


VARIANTS = (
    Variant("plain", addon=False, quiet=True, script=False),
    Variant("empty script", addon=False, quiet=True),
    Variant("no-op hooks (the floor)", addon=False, quiet=True, noop_hooks=True),
    Variant("a minimal judge", addon=False, quiet=True, minimal_judge=True),
    Variant("mitmcors", addon=True, quiet=True),
    Variant("mitmcors, 100 rules", addon=True, quiet=True, rules=True),
    Variant("empty script, default log", addon=False, quiet=False),
    Variant("mitmcors, default log", addon=True, quiet=False),
)


def answers(*lines: tuple[str, str]) -> Route:
    """204 to an OPTIONS, else 200 with a small JSON body; both with `lines`."""
    json_lines = [*lines, ("Content-Type", "application/json")]
    return Route({"OPTIONS": Answer(204, json_lines, b""), "*": Answer(200, json_lines, b'{"ok": true}')})


def start_backend() -> Backend:
    """Allow-Origin * (and the preflight's PUT and Content-Type) everywhere but /api/blocked; /api/me/ echoes the
    page's origin with Allow-Credentials."""
    backend = Backend()
    cors = (
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", "PUT"),
        ("Access-Control-Allow-Headers", "content-type"),
    )
    backend.route("/", answers(*cors), prefix=True)
    backend.route("/api/blocked", answers(), prefix=True)
    backend.route(
        "/api/me/",
        answers(
            ("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")
        ),
        prefix=True,
    )
    return backend


def backend_rules(path: Path) -> Path:
    """99 rules for other hosts, then one for the backend (127.0.0.1): every request scans all 100."""
    return hundred_rules(path, "127.0.0.1", ORIGIN, "[PUT]", "[content-type]")


def drive(port: int, backend: int, mix: Mix, start: int, n: int) -> None:
    """Requests `start` … `start + n - 1` of `mix` through the proxy on `port`, on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        for i in range(start, start + n):
            method, path, headers = mix(i)
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


def measure_variant(
    v: Variant, backend: int, requests: int, warmup: int, work: Path, addon: Path = ADDON
) -> dict[str, float]:
    """Instructions per request of one mitmdump under callgrind, per mix, after `warmup` requests of each mix
    (`addon`: the script of the variants with the addon)."""
    slug = re.sub(r"[^a-z0-9]+", "-", v.name)
    out = work / f"{slug}.callgrind"
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no", sys.executable]
    empty = work / "empty_script.py"
    if v.noop_hooks or v.minimal_judge:
        empty = work / ("noop_hooks.py" if v.noop_hooks else "minimal_judge.py")
        empty.write_text(NOOP_HOOKS if v.noop_hooks else MINIMAL_JUDGE)
    scripts = (addon,) if v.addon else (empty,) if v.script else ()
    args = ["-q"] if v.quiet else []
    if v.rules:
        args += ["--set", f"cors_rules={backend_rules(work / 'hundred-rules.yaml')}"]
    # A confdir each: mitmdumps started at once would all write the CA into a shared one (and read it half-written).
    proxy = Mitmdump(work / slug, args, slug, work / slug / "conf", scripts, False, valgrind, start_timeout=600).start()
    assert proxy.proc is not None
    result: dict[str, float] = {}
    try:
        for mix_name, mix in MIXES.items():
            drive(proxy.port, backend, mix, 0, warmup)
            callgrind_control("--zero", str(proxy.proc.pid))
            drive(proxy.port, backend, mix, warmup, requests)
            before = set(work.glob(f"{slug}.callgrind.*"))
            callgrind_control("--dump", str(proxy.proc.pid))
            for _ in range(100):
                new = set(work.glob(f"{slug}.callgrind.*")) - before
                if new:
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError(f"callgrind wrote no dump for {v.name}")
            time.sleep(0.5)
            result[mix_name] = instructions(max(new, key=lambda p: p.stat().st_mtime)) / requests
        if v.addon and "internal error" in proxy.output():
            raise RuntimeError(f"the addon logged an internal error ({v.name}):\n{proxy.output()[-2000:]}")
    finally:
        try:
            proxy.stop(signal.SIGINT, timeout=300)
        finally:
            proxy.kill()
    return result


def measure(args: argparse.Namespace, report: dict[str, Any]) -> None:
    requests = args.requests or (60 if args.quick else 240)
    warmup = args.warmup or (24 if args.quick else 48)
    print()
    print("5. Proxy cost in instructions under callgrind: mitmdump with an empty script vs with mitmcors")
    print(f"   mixes: {', '.join(MIXES)}; {requests} requests of each after {warmup}; {PARALLEL} variants at a time")
    with start_backend() as backend, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "empty_script.py").write_text("# an addon script with no addon: mitmproxy's script machinery\n")
        with ThreadPoolExecutor(PARALLEL) as pool:
            futures = {
                v.name: pool.submit(measure_variant, v, backend.http_port, requests, warmup, work) for v in VARIANTS
            }
            counts = {name: fut.result() for name, fut in futures.items()}
    report["instructions"] = {"per_request": counts, "requests": requests, "warmup": warmup}
    print(f"   {'instructions per request (M)':<34}" + "".join(f"{m:>12}" for m in MIXES))
    for name, per_mix in counts.items():
        print(f"   {name:<34}" + "".join(f"{per_mix[m] / 1e6:>12.3f}" for m in MIXES))
    print("   added by mitmcors over the empty script, as a share of plain mitmdump:")
    checks = [
        ("no-op hooks (the floor), -q", "no-op hooks (the floor)", "empty script", None),
        ("a minimal judge, -q", "a minimal judge", "empty script", None),
        ("no rules, -q", "mitmcors", "empty script", TARGET_NO_RULES_PCT),
        ("100 rules, -q", "mitmcors, 100 rules", "empty script", TARGET_100_RULES_PCT),
        ("default log", "mitmcors, default log", "empty script, default log", None),
    ]
    shares: dict[str, dict[str, float]] = {}
    for label, with_addon, base, target in checks:
        cells = []
        for m in MIXES:
            pct = (counts[with_addon][m] - counts[base][m]) / counts["plain"][m] * 100
            shares.setdefault(label, {})[m] = pct
            ok = target is None or pct <= target
            cells.append(f"{pct:+.2f} %" + ("" if ok else " !"))
        goal = f"(target ≤ {target:g} %)" if target is not None else "(reported, no target)"
        print(f"   {label:<34}" + "".join(f"{c:>12}" for c in cells) + f"  {goal}")
    met = all(shares[label][m] <= target for label, _, _, target in checks if target is not None for m in MIXES)
    print(f"   {verdict_word(met)}")
    report["instructions"]["added_pct"] = shares
    report["instructions"]["pass"] = met


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--requests", type=int, help="measured requests per mix (default 240, --quick 60)")
    parser.add_argument("--warmup", type=int, help="requests before the counters are zeroed (default 48, --quick 24)")
    args = parser.parse_args(argv)
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("instructions benchmark: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")  # the mitmdumps under callgrind write no .pyc files
    os.environ["PYTHONHASHSEED"] = "0"  # the same dict and set layouts in every run: the same counts
    return run("instructions under callgrind", measure, args)


if __name__ == "__main__":
    sys.exit(main())
