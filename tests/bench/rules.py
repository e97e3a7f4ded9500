"""Benchmark 4, rule files at scale: matching a flow against 10,000 rules, and reloading such a file while flows
are being judged.

    python -m tests.bench.rules [--quick] [--json]

A realistic large rule file (per-service hosts, host globs, path globs, origin patterns, some filters) parsed with
the addon's public `mitmcors.rules.parse_rules`; then `RuleSet.match` per flow: the last rule with a warm per-host
cache, a glob host + path, a miss, and hosts seen for the first time (each timed call uses a host never seen:
the index lookup; target ≤ 20 µs); the time to parse and validate the whole file in this process (as at
start-up); and the reload the way the addon does it (`RuleFile.check_async`: the file is read and validated in a
child process, and the rules installed on the loop a few milliseconds at a time, see `mitmcors.rulereload`) while
the event loop judges flows through the addon's hooks without pause: the longest stall of the loop (a 1 ms
ticker's worst lateness) from the change of the file to two seconds after the new rules are in, next to the same
without a reload (target < 10 ms). Full (generation-2) garbage collections are counted apart: this traffic sets
one off every few seconds with or without a reload (tens of milliseconds each with 10,000 rules loaded), so
each run reports how many it met and the longest, and the quiet run lasts as long as a reload round.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import sys
import tempfile
import time
import timeit
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.bench.common import CASES, Timing, arguments, print_targets, run, time_calls, verdict_word

RULES_TARGET_US = 50.0  # a warm match
NEW_HOST_TARGET_US = 20.0  # the first flow to a host: the index
STALL_TARGET_MS = 10.0
RULE_COUNT = 10_000


def many_rules(count: int = RULE_COUNT) -> str:
    """A realistic large rule file: per-service hosts, host globs, path globs, origin patterns, some filters."""
    lines = ["rules:"]
    for i in range(count):
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


def bench_match(text: str, quick: bool) -> dict[str, Any]:
    """Rule matching per flow (warm per-host cache, a host seen for the first time, a miss), and the time to parse
    and validate the file."""
    from mitmproxy.test import tflow

    from mitmcors.rulefile import compile_filter
    from mitmcors.rules import parse_rules

    repeat = 3 if quick else 5
    parse_ms = Timing.of(
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
    last, glob = RULE_COUNT - 1, RULE_COUNT // 2 + 1  # the last rule (host), a rule with a host glob and a path
    cases = {
        "last rule (warm host cache)": (f"api{last}.example.test", "/v1/x", origin),
        "glob host + path (warm)": (f"a.b.svc{glob}.example.test", f"/v{glob % 7}/items", origin),
        "no rule matches (warm)": ("elsewhere.test", "/x", origin),
    }
    timings: dict[str, Timing] = {}
    min_seconds = 0.02 if quick else 0.1
    for label, (host, path, org) in cases.items():
        assert (rules.match(host, path, org, flow) is None) == label.startswith("no rule"), label

        def one(host: str = host, path: str = path, org: str = org) -> None:
            rules.match(host, path, org, flow)

        timings[label] = time_calls(one, 1, repeat, min_seconds)
    counter = itertools.count()
    batch = 200 if quick else 1000

    def fresh_hosts() -> None:  # each host once: the index, never the per-host cache
        for _ in range(batch):
            n = next(counter)
            rules.match(f"x{n}.svc{(n * 4 + 1) % RULE_COUNT}.example.test", "/v1/x", origin, flow)

    timings["a host seen for the first time (index)"] = time_calls(fresh_hosts, batch, repeat, min_seconds)
    return {"parse_ms": parse_ms, "match": timings, "rules": RULE_COUNT}


async def _reload_stall(path: Path, text: str, reload: bool, seconds: float) -> dict[str, Any]:
    """Judge flows through the addon's hooks without pause while a 1 ms ticker measures the loop's lateness; with
    `reload`, the file changes and `RuleFile.check_async` (the addon's own ticker step) reloads it meanwhile.

    A tick during which a full (generation-2) garbage collection ran is counted apart: such collections come
    every few seconds under this load with or without a reload (the traffic's survivors set them off), so they
    are reported next to the quiet run's, and the reload's own stall is the worst of the other ticks.
    """
    from mitmcors.addon import CorsAddon
    from mitmcors.rulefile import RuleFile
    from tests.bench.hooks import _tflow, flow_hooks

    rule_file = RuleFile()
    rule_file.load(str(path))  # the start-up load (before the proxy serves)
    assert rule_file.rules is not None and len(rule_file.rules.rules) == RULE_COUNT
    # The start-up load made a million objects in this process and owes the collector a full collection, which
    # comes at some point in the proxy's first seconds (tens of milliseconds): paid now, before anything is measured.
    gc.collect()
    addon = CorsAddon()  # its hooks need no mitmproxy master (the rule file is the one reloaded here)
    addon.output.log_mode = "off"
    hooks = flow_hooks(addon)
    stop = asyncio.Event()
    worst = {"any": 0.0, "own": 0.0}
    flows = 0
    full: list[float] = []  # each full collection's duration, in ms
    started = [0.0]

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            full.append((time.perf_counter() - started[0]) * 1e3)

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            t0, collections = loop.time(), len(full)
            await asyncio.sleep(0.001)
            late = loop.time() - t0 - 0.001
            worst["any"] = max(worst["any"], late)
            if len(full) == collections:
                worst["own"] = max(worst["own"], late)

    async def traffic() -> None:
        nonlocal flows
        while not stop.is_set():
            f = _tflow(CASES[flows % len(CASES)], 1_000_000.0 + flows * 0.01)
            for hook in hooks:
                hook(f)
            flows += 1
            await asyncio.sleep(0)

    async def reloader() -> float:
        if not reload:
            await asyncio.sleep(seconds)
            return 0.0
        await asyncio.sleep(0.2)
        await asyncio.to_thread(path.write_text, text.replace("max_age: 600", "max_age: 601"))  # the editor
        t0 = time.perf_counter()
        while rule_file.rules is not None and rule_file.rules.rules[0].max_age != 601:
            await rule_file.check_async()  # the settle check needs two looks at an unchanged file
            await asyncio.sleep(0.05)
        took = time.perf_counter() - t0
        # Two seconds more: a reload that only put work off (garbage left for a later collection) stalls here.
        await asyncio.sleep(2.0)
        return took

    gc.callbacks.append(on_collection)
    t0 = time.perf_counter()
    try:
        tasks = [asyncio.create_task(ticker()), asyncio.create_task(traffic())]
        took = await reloader()
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        gc.callbacks.remove(on_collection)
    return {
        "worst_stall_ms": worst["own"] * 1e3,
        "worst_stall_with_full_collections_ms": worst["any"] * 1e3,
        "seconds": time.perf_counter() - t0,
        "reload_s": took,
        "flows": flows,
        "full_collections": len(full),
        "longest_full_collection_ms": max(full, default=0.0),
    }


def bench_install(text: str) -> dict[str, Any]:
    """A reload's parts alone, nothing else running: the child process reading the file, then installing its
    rules on the loop (all of it loop time, in `STEP_SECONDS` steps); and how many objects the collector tracks
    for the installed rules (after a full collection, which stops tracking what it can)."""
    from mitmcors import rulereload
    from mitmcors.rules import RuleSet

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yaml"
        path.write_text(text)
        t0 = time.perf_counter()
        sent = rulereload._read_in_a_child(str(path))
        child_s = time.perf_counter() - t0
    assert isinstance(sent, rulereload._Sent), sent
    gc.collect()
    before = len(gc.get_objects())
    t0 = time.perf_counter()
    installed = asyncio.run(rulereload._install_in_steps(sent))
    install_s = time.perf_counter() - t0
    del sent
    gc.collect()
    tracked = len(gc.get_objects()) - before
    assert isinstance(installed, RuleSet) and len(installed.rules) == RULE_COUNT
    return {"child_s": child_s, "install_ms": install_s * 1e3, "tracked_objects": tracked}


def bench_reload(text: str, quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:

        def rule_file(name: str) -> Path:
            path = Path(tmp) / name
            path.write_text(text)
            os.utime(path, (time.time() - 10, time.time() - 10))
            return path

        # As long as a reload round (the reload, then two seconds): both meet the traffic's full collections.
        quiet = asyncio.run(_reload_stall(rule_file("quiet.yaml"), text, reload=False, seconds=2.5 if quick else 5.0))
        rounds = [
            asyncio.run(_reload_stall(rule_file(f"reload{i}.yaml"), text, reload=True, seconds=0))
            for i in range(1 if quick else 3)
        ]
    return {"without_reload": quiet, "reloads": rounds}


def rulereload_step_ms() -> float:
    from mitmcors import rulereload

    return rulereload.STEP_SECONDS * 1e3


def print_rules(r: dict[str, Any]) -> None:
    print()
    print(f"4. Rule files: {r['rules']:,} rules")
    print(f"   {'case':<42} {'best us':>9} {'median us':>10}")
    for label, t in r["match"].items():
        print(f"   {label:<42} {t.best:>9.2f} {t.median:>10.2f}")
    t = r["parse_ms"]
    print(f"   parse + validate the file in this process (start-up): best {t.best:.0f} ms, median {t.median:.0f} ms")
    i = r["install"]
    print(
        f"   a reload alone: the child reads the file in {i['child_s']:.2f} s; installing its rules takes "
        f"{i['install_ms']:.0f} ms of loop time in {rulereload_step_ms():g} ms steps; the rules are "
        f"{i['tracked_objects']:,} objects tracked by the collector"
    )
    print("   the event loop judging flows without pause, its longest stall (full garbage collections aside):")
    q = r["reload"]["without_reload"]
    print(f"     no reload: {q['worst_stall_ms']:.2f} ms ({q['flows']} flows in {q['seconds']:.1f} s)")
    for i, x in enumerate(r["reload"]["reloads"], 1):
        print(
            f"     while the file is reloaded ({i}): {x['worst_stall_ms']:.2f} ms; the new rules in after "
            f"{x['reload_s']:.2f} s ({x['flows']} flows in {x['seconds']:.1f} s)"
        )
    print("   full (generation-2) garbage collections meanwhile, which stall the loop with or without a reload:")
    for label, x in (("no reload", q), *((f"reload ({i})", x) for i, x in enumerate(r["reload"]["reloads"], 1))):
        print(
            f"     {label}: {x['full_collections']} in {x['seconds']:.1f} s, longest "
            f"{x['longest_full_collection_ms']:.1f} ms (the loop's worst stall with them: "
            f"{x['worst_stall_with_full_collections_ms']:.1f} ms)"
        )


def measure(args: argparse.Namespace, report: dict[str, Any]) -> None:
    text = many_rules()
    ru = bench_match(text, args.quick)
    ru["install"] = bench_install(text)
    ru["reload"] = bench_reload(text, args.quick)
    report["rules"] = ru
    print_rules(ru)
    print_targets()
    warm = max(t.best for label, t in ru["match"].items() if "warm" in label)
    new_host = ru["match"]["a host seen for the first time (index)"].best
    stall = max(x["worst_stall_ms"] for x in ru["reload"]["reloads"])
    checks = [
        (f"rule matching with {RULE_COUNT:,} rules, warm, < {RULES_TARGET_US:g} us", warm, warm < RULES_TARGET_US),
        (
            f"the first flow to a host with {RULE_COUNT:,} rules <= {NEW_HOST_TARGET_US:g} us",
            new_host,
            new_host <= NEW_HOST_TARGET_US,
        ),
        (
            f"longest event-loop stall during a reload, full collections aside, < {STALL_TARGET_MS:g} ms",
            stall,
            stall < STALL_TARGET_MS,
        ),
    ]
    for label, value, ok in checks:
        print(f"   {label}: {value:.2f}  {verdict_word(ok)}")
    report["targets"] = {"rules_match_us": warm, "new_host_us": new_host, "reload_stall_ms": stall}


def main(argv: Sequence[str] | None = None) -> int:
    return run("rule files", measure, arguments(__doc__).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
