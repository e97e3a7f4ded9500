"""Run benchmarks 1-4 one after the other (evaluator, hooks, rules, proxy CPU), as one report.

    python -m tests.bench [--quick] [--json]

Benchmark 5 (instructions under callgrind) takes minutes and needs valgrind: run it on its own.
"""

from __future__ import annotations

import sys

from tests.bench import evaluator, hooks, proxy_cpu, rules
from tests.bench.common import arguments


def main() -> int:
    args = arguments(__doc__).parse_args()
    passed = [f"--{name}" for name in ("quick", "json") if getattr(args, name)]
    failed = 0
    for bench in (evaluator, hooks, rules, proxy_cpu):
        failed |= bench.main(passed)
        print()
    return failed


if __name__ == "__main__":
    sys.exit(main())
