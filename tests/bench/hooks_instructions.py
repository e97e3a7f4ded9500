"""Benchmark 8, the addon's hooks per flow in instructions: benchmark 2's mix under valgrind's callgrind.

    python -m tests.bench.hooks_instructions [--flows-per-case N]

The hooks of a CorsAddon in mitmproxy's addon chain (`tests.bench.hooks.addon_context`: mitmdump's default addons,
`cors_log=off`) on the evaluator's mix plus two requests without Origin (11 flows, 9 with Origin), with no rules and
with a 100-rule file whose last rule matches the mix's host. Each runs in a Python of its own under callgrind:
warmed up, counters zeroed, N fresh batches of the mix, counters dumped. Instructions are the same for the same work
whatever else the machine does, so a change to the hot path shows as a number that does not drift. Needs valgrind.
A report, not a test: no target (benchmark 5 measures the proxy against its targets).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.bench.common import API_HOST, CASES, NO_ORIGIN_CASES, ORIGIN, ROOT, arguments, hundred_rules, run

MIX = (*CASES, *NO_ORIGIN_CASES)


def mix_rules(path: Path) -> Path:
    """99 rules for other hosts, then one for the mix's host: every flow is matched by the last."""
    return hundred_rules(path, API_HOST, ORIGIN, "[PUT, DELETE]", "[content-type, x-requested-with]")


def child(batches: int, rules: str) -> None:
    """Inside callgrind: the hooks over `batches` fresh batches of the mix, counted between zero and dump."""
    from mitmproxy import ctx

    from tests.bench.hooks import _tflow, addon_context, flow_hooks

    with addon_context("off", True) as (hooks, drain, errors):
        addon: Any = getattr(hooks[0], "__self__")  # noqa: B009 - a bound method's addon
        if rules:
            ctx.options.update(cors_rules=rules)
            hooks = flow_hooks(addon)
        warm = [[_tflow(c, 1_000_000.0 + k + i * 0.01) for i, c in enumerate(MIX)] for k in range(20)]
        fresh = [[_tflow(c, 2_000_000.0 + k + i * 0.01) for i, c in enumerate(MIX)] for k in range(batches)]
        for flows in warm:
            for f in flows:
                for hook in hooks:
                    hook(f)
        drain()
        if rules and not any(f.metadata.get("cors", {}).get("rule") for f in warm[-1]):
            raise RuntimeError("the rule file changed no flow of the mix")
        subprocess.run(["callgrind_control", "--zero", str(os.getpid())], check=True, capture_output=True)
        for flows in fresh:
            for f in flows:
                for hook in hooks:
                    hook(f)
        drain()
        subprocess.run(["callgrind_control", "--dump", str(os.getpid())], check=True, capture_output=True)
        if errors.records:
            raise RuntimeError(f"the addon logged internal errors: {errors.records[:3]}")


def count(batches: int, rules: Path | None, work: Path) -> float:
    """Instructions per flow: the child under callgrind, its dump read back."""
    out = work / ("rules.callgrind" if rules else "plain.callgrind")
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        "--dump-instr=no",
        sys.executable,
        "-m",
        "tests.bench.hooks_instructions",
        "--child",
        str(batches),
        str(rules or ""),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=env)
    dumps = sorted(work.glob(out.name + ".*"), key=lambda p: p.stat().st_mtime)
    if not dumps:
        raise RuntimeError("callgrind wrote no dump")
    total = re.search(r"^(?:summary|totals):\s*(\d+)", dumps[-1].read_text(errors="replace"), re.M)
    if total is None:
        raise RuntimeError(f"no totals in {dumps[-1]}")
    return int(total.group(1)) / (batches * len(MIX))


def measure(args: argparse.Namespace, report: dict[str, Any]) -> None:
    batches = args.flows_per_case or (30 if args.quick else 100)
    print()
    print(
        f"8. The addon's hooks in instructions under callgrind: {len(MIX)} flows ({len(CASES)} with Origin) x {batches}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plain = count(batches, None, work)
        ruled = count(batches, mix_rules(work / "rules.yaml"), work)
    print(f"   no rules                  {plain / 1e3:>8.1f} k instructions per flow")
    print(f"   100 rules, the last one   {ruled / 1e3:>8.1f} k instructions per flow")
    report["hooks_instructions"] = {"per_flow": plain, "per_flow_100_rules": ruled, "batches": batches}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--child"]:
        child(int(argv[1]), argv[2] if len(argv) > 2 else "")
        return 0
    parser = arguments(__doc__)
    parser.add_argument("--flows-per-case", type=int, help="fresh batches of the mix (default 100, --quick 30)")
    return run("the addon's hooks in instructions", measure, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
