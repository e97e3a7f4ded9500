"""Benchmark 2, the addon's hooks per flow: what mitmcors costs inside mitmproxy's addon chain.

    python -m tests.bench.hooks [--quick] [--json] [--profile]

Every HTTP hook CorsAddon has (`request`, `responseheaders`, `response`, ...) on `tflow()` flows (the evaluator
benchmark's mix plus two requests without `Origin`) inside `taddons.context` with mitmproxy's default addons loaded,
as in mitmdump, so the `add_log` and `update` hooks that the addon's log lines and links cause fan out to as many
addons as in the real proxy; the root logger is at DEBUG as mitmdump sets it, and the event-loop callbacks those
log lines schedule are run inside the timing. `cors_report` off; `cors_log=all` (the default) and `off`, and the
addon alone. A last line repeats one PUT covered by one cached preflight, the way a page re-uses a preflight for
`Access-Control-Max-Age` seconds. A report, not a test: there is no target; it fails only if the addon logs an
internal error or judges the mix other than it says.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tests.bench.common import (
    CASES,
    NO_ORIGIN_CASES,
    BenchError,
    Case,
    ErrorCounter,
    Lines,
    Timing,
    arguments,
    run,
)

Hook = Callable[[Any], None]


def _tflow(case: Case, t: float) -> Any:
    from mitmproxy import http
    from mitmproxy.test import tflow, tutils

    def h(lines: Lines) -> http.Headers:
        return http.Headers([(k.encode(), v.encode()) for k, v in lines])

    req = tutils.treq(
        method=case.method.encode(),
        scheme=case.scheme.encode(),
        host=case.host,
        port=case.port,
        authority=b"",
        path=case.path.encode(),
        headers=h(case.request),
        content=b"{}" if case.method in ("POST", "PUT") else b"",
        timestamp_start=t,
        timestamp_end=t + 0.001,
    )
    resp = tutils.tresp(
        status_code=case.status,
        headers=h(case.response),
        content=b'{"items": [1, 2, 3], "n": 3}' if case.status == 200 else b"",
        timestamp_start=t + 0.002,
        timestamp_end=t + 0.003,
    )
    return tflow.tflow(req=req, resp=resp)


HTTP_HOOKS = ("requestheaders", "request", "responseheaders", "response")


def flow_hooks(addon: Any) -> list[Hook]:
    """The addon's HTTP hooks in mitmproxy's event order (the addon may grow hooks: call all it has)."""
    return [getattr(addon, name) for name in HTTP_HOOKS if callable(getattr(addon, name, None))]


@contextlib.contextmanager
def addon_context(
    cors_log: str, mitmdump_addons: bool
) -> Iterator[tuple[list[Hook], Callable[[], None], ErrorCounter]]:
    """A CorsAddon inside taddons.context, the root logger as mitmdump sets it.

    With `mitmdump_addons`, mitmproxy's default addons are loaded too, as mitmdump does, so the `add_log` and
    `update` hooks the addon causes fan out to as many addons as in the real proxy. Yields (hooks, drain, errors).
    """
    from mitmproxy.addons import default_addons
    from mitmproxy.test import taddons

    from mitmcors.addon import CorsAddon

    root = logging.getLogger()
    old_level, old_handlers = root.level, list(root.handlers)
    errors = ErrorCounter()
    root.addHandler(errors)
    root.setLevel(logging.DEBUG)  # mitmproxy.tools.main does this; the termlog handler filters later
    addon = CorsAddon()
    others = default_addons() if mitmdump_addons else []
    try:
        with taddons.context(*others, addon, loadcore=not mitmdump_addons) as tctx:
            tctx.configure(addon, cors_report="", cors_log=cors_log)
            loop = tctx.master.event_loop

            def drain() -> None:
                # mitmproxy's log handler schedules an add_log hook per record with call_soon_threadsafe.
                loop.run_until_complete(asyncio.sleep(0))

            try:
                yield flow_hooks(addon), drain, errors
            finally:
                drain()
    finally:
        # mitmproxy's handlers (LegacyLogEvents) stay on the root logger after the master is gone.
        for h in list(root.handlers):
            if h not in old_handlers:
                root.removeHandler(h)
        root.setLevel(old_level)


ADDON_SETTINGS = (
    ("cors_log=all", "all", True),
    ("cors_log=off", "off", True),
    ("cors_log=all, addon alone", "all", False),
)


def bench_addon(quick: bool) -> dict[str, Any]:
    cases = (*CASES, *NO_ORIGIN_CASES)
    repeat, number = (5, 20) if quick else (9, 50)
    result: dict[str, Any] = {"flows_in_mix": len(cases), "with_origin": len(CASES)}
    put_case = next(c for c in CASES if c.name == "PUT after the preflight")
    pre_case = next(c for c in CASES if c.name == "preflight passing")
    for key, cors_log, mitmdump_addons in ADDON_SETTINGS:
        with addon_context(cors_log, mitmdump_addons) as (hooks, drain, errors):
            result["hooks"] = [h.__name__ for h in hooks]
            result.setdefault("addons_loaded", {})[key] = loaded_addons()
            flows = [_tflow(c, 1_000_000.0 + i * 0.01) for i, c in enumerate(cases)]

            def run(flows: list[Any] = flows, hooks: list[Hook] = hooks) -> None:
                for f in flows:
                    for hook in hooks:
                        hook(f)

            run()
            drain()
            for case, f in zip(cases, flows, strict=True):
                got = (f.metadata.get("cors") or {}).get("kind", "")
                if got != case.kind:
                    raise BenchError(f"addon judged {case.name!r} as {got!r}, expected {case.kind!r}")
            if "preflight_id" not in flows[cases.index(put_case)].metadata["cors"]:
                raise BenchError("the PUT after the preflight was not linked to it")
            per_flow = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                for _ in range(number):
                    run()
                drain()
                per_flow.append((time.perf_counter() - t0) / (number * len(flows)) * 1e6)
            if errors.records:
                raise BenchError(f"the addon logged internal errors: {errors.records[0].getMessage()}")
            result[key] = Timing.of(per_flow)

    # One preflight, then many PUTs it covers (the browser's preflight cache): cost at the start and later.
    n_reuse = 1500 if quick else 5000
    block = 250
    with addon_context("all", True) as (hooks, drain, errors):
        pre = _tflow(pre_case, 2_000_000.0)
        put = _tflow(put_case, 2_000_001.0)
        for f in (pre, put):  # the PUT consumes the preflight it announced; every later PUT hits the cache
            for hook in hooks:
                hook(f)
        blocks: list[float] = []
        k = 0
        for _ in range(n_reuse // block):
            t0 = time.perf_counter()
            for _ in range(block):
                k += 1
                put.request.timestamp_start = 2_000_001.0 + k * 0.0001  # well within Max-Age 600
                for hook in hooks:
                    hook(put)
            drain()
            blocks.append((time.perf_counter() - t0) / block * 1e6)
        if errors.records:
            raise BenchError(f"the addon logged internal errors: {errors.records[0].getMessage()}")
        linked_ids = len(pre.metadata["cors"].get("request_ids", []))
    result["cached_preflight"] = {
        "requests": n_reuse,
        "block": block,
        "first_blocks_us": round(min(blocks[:3]), 2),
        "last_blocks_us": round(min(blocks[-3:]), 2),
        "request_ids_on_preflight": linked_ids,
    }
    return result


def loaded_addons() -> int:
    from mitmproxy import ctx

    return len(ctx.master.addons.chain)


def print_addon(r: dict[str, Any]) -> None:
    print()
    print(
        f"2. Addon hooks per flow: CorsAddon.{', .'.join(r['hooks'])} on a mix of {r['flows_in_mix']} tflow()s "
        f"({r['with_origin']} with Origin), cors_report off, root logger at DEBUG as in mitmdump"
    )
    print(f"   {'cors_log':<16}{'addons loaded':<28}{'best us':>9}{'median us':>11}{'worst us':>10}")
    for key, cors_log, mitmdump_addons in ADDON_SETTINGS:
        t: Timing = r[key]
        n = r["addons_loaded"][key]
        log = cors_log + (" (default)" if cors_log == "all" else "")
        where = f"{n} (mitmdump's defaults)" if mitmdump_addons else f"{n} (core + mitmcors)"
        print(f"   {log:<16}{where:<28}{t.best:>9.1f}{t.median:>11.1f}{t.worst:>10.1f}")
    c = r["cached_preflight"]
    print(
        f"   one preflight re-used from the cache by {c['requests']} PUTs: {c['first_blocks_us']:.1f} us/flow at "
        f"first, {c['last_blocks_us']:.1f} us/flow at the end (best of 3 blocks of {c['block']}); the preflight "
        f"flow then lists {c['request_ids_on_preflight']} request_ids"
    )


def profile_addon(quick: bool, top: int = 25) -> str:
    """cProfile of the addon hooks on the section-2 mix (mitmdump's addons loaded, cors_log=all)."""
    import cProfile
    import io
    import pstats

    cases = (*CASES, *NO_ORIGIN_CASES)
    with addon_context("all", True) as (hooks, drain, _errors):
        flows = [_tflow(c, 1_000_000.0 + i * 0.01) for i, c in enumerate(cases)]
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(300 if quick else 2000):
            for f in flows:
                for hook in hooks:
                    hook(f)
            drain()
        prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def measure(args: argparse.Namespace, report: dict[str, Any]) -> None:
    report["addon"] = ad = bench_addon(args.quick)
    print_addon(ad)
    if args.profile:
        print()
        print(profile_addon(args.quick))


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the hooks on the mix")
    return run("the addon's hooks", measure, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
