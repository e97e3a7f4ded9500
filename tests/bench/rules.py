"""Benchmark 4, rule files: matching a flow against 1,000 rules (target < 50 us), and (re)loading such a file.

    python -m tests.bench.rules [--quick] [--json]

A realistic large rule file (per-service hosts, host globs, path globs, origin patterns, some filters) parsed with
the addon's public `mitmcors.rules.parse_rules`; then `RuleSet.match` per flow: the last rule with a warm per-host
cache, a glob host + path, a miss, and hosts seen for the first time (each timed call uses a host never seen);
and the time to parse and validate the whole file, which is what a hot reload costs.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import timeit
from collections.abc import Sequence
from typing import Any

from tests.bench.common import Timing, arguments, print_targets, run, time_calls, verdict_word

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

    from mitmcors.rulefile import compile_filter
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
    fresh = (f"fresh{i}.example.test" for i in itertools.count())
    batch = 200 if quick else 1000

    def cold() -> None:
        for _ in range(batch):
            rules.match(next(fresh), "/x", origin, flow)

    timings["a host seen for the first time (cold)"] = time_calls(cold, batch, repeat, min_seconds)
    return {"reload_ms": reload_ms, "match": timings, "rules": RULE_COUNT}


def print_rules(r: dict[str, Any]) -> None:
    print()
    print(f"4. Rule files: {r['rules']} rules (target: matching < {RULES_TARGET_US:g} us per flow)")
    print(f"   {'case':<42} {'best us':>9} {'median us':>10}")
    for label, t in r["match"].items():
        print(f"   {label:<42} {t.best:>9.2f} {t.median:>10.2f}")
    t = r["reload_ms"]
    print(f"   parse + validate the whole file (a hot reload): best {t.best:.1f} ms, median {t.median:.1f} ms")


def measure(args: argparse.Namespace, report: dict[str, Any]) -> None:
    report["rules"] = ru = bench_rules(args.quick)
    print_rules(ru)
    print_targets()
    warm = max(t.best for label, t in ru["match"].items() if "warm" in label)
    ok = warm < RULES_TARGET_US
    print(
        f"   rule matching with {RULE_COUNT} rules < {RULES_TARGET_US:g} us per flow: worst warm case best "
        f"{warm:.2f} us  {verdict_word(ok)}"
    )
    report["targets"] = {"rules_match_us": warm, "rules_pass": ok}


def main(argv: Sequence[str] | None = None) -> int:
    return run("rule files", measure, arguments(__doc__).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
