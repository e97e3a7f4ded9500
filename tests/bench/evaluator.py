"""Benchmark 1, the evaluator alone: what judging one flow costs (target: at most 1.0 x the speed reference, i.e. 10 us
per call where sum(range(1000)) takes 10 us).

    python -m tests.bench.evaluator [--quick] [--json]

`mitmcors.evaluator.evaluate(Request, Response)` over a fixed mix of browser-shaped pairs (simple GET allowed by
`*`, missing Allow-Origin, credentialed POST with a cookie, preflight passing, the PUT after it, preflight failing,
302 redirect, same-origin POST, form navigation), built once with the evaluator's `PlainHeaders`, with mitmproxy's
`http.Headers`, and `WireHeaders(headers.fields)` built inside the timed call, which is what the addon does per
flow. timeit-style: `repeat` timings of a calibrated number of passes over the mix; best-of and median us per call
(the target is judged on best-of, the figure least disturbed by other work on the machine), and best-of per case.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tests.bench.common import (
    CASES,
    BenchError,
    Case,
    Lines,
    arguments,
    print_targets,
    run,
    time_calls,
    verdict_word,
)

# At most 10 µs per flow where the speed reference, sum(range(1000)), takes 10 µs: a ratio, so that machines
# of different speed (and one machine at different moments) are judged alike.
EVALUATOR_TARGET_RATIO = 1.0


PLAIN, MITM, INDEXED = "PlainHeaders (prebuilt)", "mitmproxy Headers", "WireHeaders from raw fields (the addon)"
COLD = "the same, nothing remembered"


def bench_evaluator(quick: bool) -> dict[str, Any]:
    """evaluate() per call over the mix, per header type; best-of and median over timeit repeats."""
    from mitmproxy import http

    from mitmcors.evaluator import PlainHeaders, Request, Response, WireHeaders, evaluate

    def mitm_headers(lines: Lines) -> http.Headers:
        return http.Headers([(k.encode(), v.encode()) for k, v in lines])

    def build(headers: Callable[[Lines], Any]) -> list[tuple[Request, Response]]:
        return [
            (
                Request(c.method, c.scheme, c.host, c.port, c.path, headers(c.request)),
                Response(c.status, headers(c.response)),
            )
            for c in CASES
        ]

    def direct(req: Request, resp: Response) -> Callable[[], Any]:
        return lambda: evaluate(req, resp)

    def indexed(c: Case, from_fields: Callable[[Any], Any]) -> Callable[[], Any]:
        # What the addon does: index mitmproxy's raw header fields once per flow (WireHeaders), then evaluate;
        # the indexing is part of the timed call.
        req_fields, resp_fields = mitm_headers(c.request).fields, mitm_headers(c.response).fields

        def call() -> Any:
            return evaluate(
                Request(c.method, c.scheme, c.host, c.port, c.path, from_fields(req_fields)),
                Response(c.status, from_fields(resp_fields)),
            )

        return call

    runners: dict[str, list[Callable[[], Any]]] = {}
    for label, headers in ((PLAIN, PlainHeaders), (MITM, mitm_headers)):
        runners[label] = [direct(req, resp) for req, resp in build(headers)]
    runners[INDEXED] = [indexed(c, WireHeaders) for c in CASES]
    # Sanity: the mix is what it claims to be, whatever the header type.
    mismatches: list[str] = []
    for label, calls in runners.items():
        for case, call in zip(CASES, calls, strict=True):
            v: Any = call()
            if v.kind.value != case.kind or v.outcome.allowed != case.allowed:
                mismatches.append(f"{label} / {case.name}: got {v.kind.value} {v.outcome.verdict}")
    if mismatches:
        raise BenchError("the evaluator mix does not judge as expected: " + "; ".join(mismatches))

    # What judging remembers between flows (a server's header names, lists, texts) cleared before every call: a
    # server and page never seen before. The clearing itself is timed apart and taken off.
    from mitmcors.evaluator import forget

    def cold(call: Callable[[], Any]) -> Callable[[], Any]:
        def first_time() -> Any:
            forget()
            return call()

        return first_time

    runners[COLD] = [cold(call) for call in runners[INDEXED]]

    repeat, min_s = (5, 0.02) if quick else (15, 0.05)
    result: dict[str, Any] = {"cases": [c.name for c in CASES], "mix": {}, "per_case": {}}
    for label, calls in runners.items():

        def run_mix(calls: list[Callable[[], Any]] = calls) -> None:
            for call in calls:
                call()

        result["mix"][label] = time_calls(run_mix, len(calls), repeat, min_s)
        result["per_case"][label] = {
            case.name: time_calls(call, 1, max(5, repeat // 2), min_s / 2)
            for case, call in zip(CASES, calls, strict=True)
        }
    clearing = time_calls(forget, 1, repeat, min_s).best
    result["mix"][COLD] = result["mix"][COLD].minus(clearing)
    result["per_case"][COLD] = {name: t.minus(clearing) for name, t in result["per_case"][COLD].items()}
    return result


def print_evaluator(r: dict[str, Any]) -> None:
    print(
        f"1. Evaluator: evaluate(Request, Response) per call, mix of {len(CASES)} cases "
        f"(target: at most {EVALUATOR_TARGET_RATIO:g} x the speed reference, judged on best-of)"
    )
    print(f"   {'headers':<38}{'best us':>9}{'median us':>11}{'worst us':>10}")
    for label, t in r["mix"].items():
        role = {INDEXED: "the addon's path", COLD: "the first flow from a server"}.get(label, "comparison")
        judged = f"   ({role})"
        print(f"   {label:<38}{t.best:>9.2f}{t.median:>11.2f}{t.worst:>10.2f}{judged}")
    labels = list(r["per_case"])
    short = {PLAIN: "Plain", MITM: "Headers", INDEXED: "Wire", COLD: "Wire, new"}
    print(f"   {'per case, best us':<32}{''.join(f'{short.get(x, x):>12}' for x in labels)}   expected verdict")
    for case in CASES:
        cells = "".join(f"{r['per_case'][label][case.name].best:>12.2f}" for label in labels)
        expect = f"{case.kind} {'allowed' if case.allowed else 'blocked'}"
        print(f"     {case.name:<30}{cells}   {expect}")


def measure(args: argparse.Namespace, report: dict[str, Any]) -> None:
    speed = report["sum_range_1000_us"]
    print()
    report["evaluator"] = ev = bench_evaluator(args.quick)
    print_evaluator(ev)
    best = ev["mix"][INDEXED].best
    print(
        f"   the addon's evaluator path costs {best / speed:.2f} x the speed reference on this machine "
        f"(where sum(range(1000)) takes 10 us, that is {best / speed * 10:.1f} us)"
    )
    print_targets()
    t = ev["mix"][INDEXED]
    ratio = t.best / speed
    ok = ratio <= EVALUATOR_TARGET_RATIO
    print(
        f"   evaluator per flow <= {EVALUATOR_TARGET_RATIO:g} x sum(range(1000)), {INDEXED}: best {t.best:.2f} us "
        f"= {ratio:.2f} x the reference ({speed:.1f} us)  {verdict_word(ok)}"
    )
    report["targets"] = {f"evaluator_best_us[{INDEXED}]": t.best, "evaluator_ratio": ratio, "evaluator_pass": ok}


def main(argv: Sequence[str] | None = None) -> int:
    return run("the evaluator", measure, arguments(__doc__).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
