"""Benchmark 7, a soak: a real mitmdump under load while its rule file is rewritten 100 times, half invalid.

    python -m tests.bench.soak [--quick] [--requests N] [--edits N] [--json]

A loopback backend that is "not ready" (OPTIONS answered 404, responses without CORS headers), a mitmdump
with `addons/cors.py` and a rule file that makes it work, and load clients sending preflight + PUT pairs and
GETs from a page's origin on keep-alive connections. Meanwhile the rule file is rewritten: every other edit is
a valid file whose rule sets `X-Rules-Version: N`; the others are what editors and mistakes leave behind — an
empty file, a half-written save (valid YAML, no rule yet), a syntax error, an unknown key, `rules:` with no
list. Each edit is written in place (truncate, then write, as editors that do not rename do).

Targets: 0 failed requests; every response carries the rules' headers (Allow-Origin, and a version that was
written as a valid file), so no invalid or half-written save ever turned the rules off; the addon logs no
internal error. The traffic is loopback only: at least --requests requests, for as long as the edits take (one
every 1.4 s).
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.bench.common import BenchError, arguments, run, verdict_word

REQUESTS = 20_000
QUICK_REQUESTS = 3_000
EDITS = 100
QUICK_EDITS = 10
# Longer than the addon's settle time (a changed file is read once it is the same at two checks 0.5 s apart),
# so that valid edits are installed; the load runs until the last edit is done.
EDIT_INTERVAL = 1.1  # with the 0.3 s write, a 1.4 s cycle: its phase drifts against the 0.5 s check
CLIENTS = 4
PAGE = "http://app.localhost:5173"


def valid_rules(version: int) -> str:
    return (
        "rules:\n"
        "  - name: unready API\n"
        "    match: {path: /api/*}\n"
        "    allow_origins: ['http://app.localhost:*']\n"
        "    allow_credentials: true\n"
        f"    set: {{X-Rules-Version: '{version}'}}\n"
    )


INVALID = (
    "",  # an empty file
    "rules:\n  - name: unready API\n    match: {path: /api/*}\n    allow_orig",  # a save cut off mid-key
    "rules:\n  - name: unready API\n    match: {path: /api/*\n",  # a syntax error
    "rules:\n  - name: unready API\n    allow_orgins: reflect\n",  # an unknown key
    "rules:\n",  # no list
)


# An editor that truncates and writes in place, on a slow disk: all but the last line is there for 0.3 s. For a
# valid file that part is valid too (a rule without its `set:`), so only waiting for the file to settle keeps it out.
HALF_WRITTEN_FOR = 0.3


def edit(path: Path, text: str) -> None:
    """Rewrite in place, in two writes with a pause between them."""
    cut = text.rstrip("\n").rfind("\n") + 1
    with path.open("w") as f:
        f.write(text[:cut])
        f.flush()
        time.sleep(HALF_WRITTEN_FOR)
        f.write(text[cut:])


def measure(args: argparse.Namespace, report: dict[str, Any]) -> None:
    from tests.harness.backend import Answer, Backend, Route
    from tests.harness.mitmdump import Mitmdump

    total = args.requests or (QUICK_REQUESTS if args.quick else REQUESTS)
    edits = args.edits or (QUICK_EDITS if args.quick else EDITS)
    with tempfile.TemporaryDirectory() as tmp, Backend() as backend:
        backend.route(
            "/api/",
            Route({"*": Answer(200, [("Content-Type", "application/json")], b"{}"), "OPTIONS": Answer(404)}),
            prefix=True,
        )
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(valid_rules(0))
        written_valid = {"0"}
        quiet = ["--set", "flow_detail=0", "--set", "cors_log=off"]  # keep the addon's rule-file lines only
        proxy = Mitmdump(Path(tmp), args=[*quiet, "--set", f"cors_rules={rules}"], write_report=False, name="soak")
        with proxy:
            stop = threading.Event()
            results: Counter[str] = Counter()
            versions: Counter[str] = Counter()
            failures: list[str] = []
            lock = threading.Lock()
            per_client = total // CLIENTS

            def client(n: int) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=15)
                i = 0
                while i < per_client or not stop.is_set():
                    i += 1
                    url = f"{backend.a}/api/items/{n}-{i % 50}"
                    preflight = i % 3 == 0
                    headers = {"Origin": PAGE, "Sec-Fetch-Mode": "cors"}
                    if preflight:
                        headers |= {"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-a"}
                    try:
                        conn.request("OPTIONS" if preflight else "GET", url, headers=headers)
                        resp = conn.getresponse()
                        resp.read()
                    except (OSError, http.client.HTTPException) as e:
                        with lock:
                            failures.append(f"{url}: {e!r}")
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=15)
                        continue
                    ok = resp.status in (200, 204) and resp.getheader("Access-Control-Allow-Origin") == PAGE
                    with lock:
                        results["ok" if ok else f"status {resp.status} without the rules' headers"] += 1
                        versions[resp.getheader("X-Rules-Version") or "none"] += 1
                conn.close()

            def editor() -> None:
                for k in range(1, edits + 1):
                    time.sleep(EDIT_INTERVAL)
                    if k % 2:
                        edit(rules, INVALID[(k // 2) % len(INVALID)])
                    else:
                        written_valid.add(str(k))
                        edit(rules, valid_rules(k))

            threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
            editing = threading.Thread(target=editor)
            started = time.monotonic()
            editing.start()
            for t in threads:
                t.start()
            editing.join()
            time.sleep(2 * EDIT_INTERVAL)  # the last edit is installed while traffic still flows
            stop.set()
            for t in threads:
                t.join()
            seconds = time.monotonic() - started
            output = proxy.output()
        unknown_versions = {v: n for v, n in versions.items() if v not in written_valid}
        internal = output.count("internal error")
        reloads = output.count("rule(s) loaded")
        refused = output.count("has errors")
    sent = sum(results.values()) + len(failures)
    last_valid = str(max(int(v) for v in written_valid))
    ok = not failures and results["ok"] == sent and not unknown_versions and not internal and last_valid in versions
    missing = sent - results["ok"] - len(failures)
    seen = ", ".join(sorted(versions, key=lambda v: int(v) if v.isdigit() else -1))
    print(f"7. soak: {sent:,} requests from {CLIENTS} clients in {seconds:.0f} s; the rule file edited {edits} times")
    print(f"   failed requests: {len(failures)}; responses without the rules' headers: {missing}")
    print(f"   rule versions seen: {len(versions)} ({seen})")
    print(f"   responses with a version never written as a valid file: {sum(unknown_versions.values())}")
    print(f"   reloads logged: {reloads} (valid edits: {len(written_valid) - 1}); invalid edits refused: {refused}")
    served = last_valid in versions
    print(f"   internal errors logged: {internal}; the last valid version ({last_valid}) was served: {served}")
    print(f"   {verdict_word(ok)}")
    for failure in failures[:3]:
        print(f"   first failures: {failure}", file=sys.stderr)
    report["soak"] = {
        "requests": sent,
        "failures": len(failures),
        "results": dict(results),
        "versions": dict(versions),
        "reloads": reloads,
        "refused": refused,
        "internal_errors": internal,
        "seconds": seconds,
        "passed": ok,
    }
    if not ok and failures:
        raise BenchError(f"{len(failures)} requests failed")


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument(
        "--requests", type=int, default=0, help=f"how many (default {REQUESTS:,}; --quick {QUICK_REQUESTS:,})"
    )
    parser.add_argument(
        "--edits", type=int, default=0, help=f"rule-file edits, half invalid (default {EDITS}; --quick {QUICK_EDITS})"
    )
    return run("soak", measure, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
