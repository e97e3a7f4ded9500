"""Benchmark 6, hostile input at volume: a million generated hostile flows through the addon's hooks.

    python -m tests.bench.fuzz [--quick] [--flows N] [--seed S] [--json]

The flows come from `tests/hostile.py` (the same classes of input the property-based tests use: duplicated,
empty, huge, non-UTF-8, NUL-bearing and Unicode-digit values, odd methods, bogus statuses, missing
responses, errors, weird Locations, NaN and backwards timestamps, preflight/request interleavings), drawn
from a seeded random generator so a run can be repeated. A rule file with reflecting, answering and
stripping rules is loaded, and a report is written (to /dev/null: a million lines would fill a disk).

Every 100,000 flows it prints the internal errors so far (target 0), the flows with an Origin that got no
annotation (target 0), annotations that are not strict JSON (checked on every 100th flow, target 0), the
addon's table sizes and the process's resident memory (target: flat once the tables are full).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.bench.common import ErrorCounter, arguments, run, verdict_word

FLOWS = 1_000_000
QUICK_FLOWS = 100_000
EVERY = 100_000
RSS_GROWTH_LIMIT_MB = 50.0  # after the first 300,000 flows, when every table is at its cap

RULES = """\
rules:
  - name: reflect local
    match: {host: api.localhost, path: /v1/*}
    allow_origins: reflect
    allow_credentials: true
    expose_headers: "*"
  - name: answer preflights
    match: {path: /a*}
    allow_origins: ["http://app.localhost:*"]
    preflight: answer
  - name: break it
    match: {path: /}
    strip: [Access-Control-Allow-Origin]
    set: {X-Broken: "yes"}
"""


def rss_mb() -> float:
    """The process's resident memory now (not the peak), from /proc."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource

    return pages * resource.getpagesize() / 1e6


def measure(args: argparse.Namespace, report: dict[str, Any]) -> None:
    from mitmcors.addon import CorsAddon
    from tests import hostile

    total = args.flows or (QUICK_FLOWS if args.quick else FLOWS)
    rng = random.Random(args.seed)
    errors = ErrorCounter()
    log = logging.getLogger("mitmcors")
    log.addHandler(errors)
    log.propagate = False  # count, but do not print, a million log lines
    addon = CorsAddon()  # the hooks need no running master
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(RULES)
        addon.rule_file.load(str(rules))
        addon.output.open_report("/dev/null")
    unannotated = not_strict = 0
    samples: list[dict[str, Any]] = []
    print(f"6. {total:,} hostile flows through the hooks (seed {args.seed})")
    print(f"   {'flows':>9}  {'errors':>6}  {'unannotated':>11}  {'not JSON':>8}  {'RSS MB':>7}  tables  flows/s")
    started = last = time.monotonic()
    for i in range(1, total + 1):
        f = rng_flow(rng)
        hostile.run_hooks(addon, f)
        if hostile.has_origin(f):
            meta = f.metadata.get("cors")
            if meta is None or meta.get("verdict") not in ("allowed", "blocked"):
                unannotated += 1
            elif i % 100 == 0:
                try:
                    json.dumps(meta, allow_nan=False)
                except ValueError:
                    not_strict += 1
        if i % EVERY == 0 or i == total:
            now = time.monotonic()
            tables = f"{len(addon.preflights)}/{len(addon.redirects)}/{len(addon.responses)}/{len(addon._inflight)}"
            rate = (i - (samples[-1]["flows"] if samples else 0)) / (now - last)
            last = now
            sample = {
                "flows": i,
                "errors": len(errors.records),
                "unannotated": unannotated,
                "not_strict_json": not_strict,
                "rss_mb": rss_mb(),
                "flows_per_s": rate,
            }
            samples.append(sample)
            print(
                f"   {i:>9,}  {sample['errors']:>6}  {unannotated:>11}  {not_strict:>8}  {sample['rss_mb']:>7.1f}  "
                f"{tables}  {rate:,.0f}"
            )
    addon.done()
    log.removeHandler(errors)
    log.propagate = True
    settled = [s["rss_mb"] for s in samples if s["flows"] >= 300_000]
    growth = (max(settled) - min(settled)) if len(settled) > 1 else 0.0
    ok = not errors.records and not unannotated and not not_strict and growth <= RSS_GROWTH_LIMIT_MB
    print(
        f"   {verdict_word(ok)}: {len(errors.records)} internal errors, {unannotated} unannotated, {not_strict} not "
        f"strict JSON; memory after 300,000 flows grew {growth:.1f} MB (limit {RSS_GROWTH_LIMIT_MB:.0f}) "
        f"in {time.monotonic() - started:.0f} s"
    )
    for record in errors.records[:3]:
        print(f"   first errors: {record.getMessage()}", file=sys.stderr)
    report["fuzz"] = {"samples": samples, "rss_growth_after_300k_mb": growth, "passed": ok}


def rng_flow(rng: random.Random) -> Any:
    from tests import hostile

    return hostile.random_flow(rng).build()


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument(
        "--flows", type=int, default=0, help=f"how many flows (default {FLOWS:,}; --quick {QUICK_FLOWS:,})"
    )
    parser.add_argument("--seed", type=int, default=1, help="the random generator's seed")
    return run("fuzz", measure, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
