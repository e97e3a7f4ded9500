"""The recorded browser corpus (tests/corpus/chromium.json), replayed through the addon without a browser.

Every scenario's flows are rebuilt from the recorded request and response header lines and timestamps, run
through CorsAddon's hooks in the order they crossed mitmdump, and each flow's ``metadata["cors"]`` must say what
Chromium did: the same verdict and CorsError, the kind the harness expects, and the same preflight links.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from mitmcors.addon import CorsAddon
from tests.harness.chromium import effective
from tests.harness.corpus import CORPUS, load, split_line
from tests.support import hook

T0 = 1_700_000_000.0  # the recorded times are relative to the scenario's first request
SCENARIOS: dict[str, Any] = load()["scenarios"]


# The recorder replaced loopback ports in header values with a placeholder (they change from run to run); the
# replay puts one number back for all of them, which keeps equal values equal and URLs parseable.
SCRUBBED_PORT = ":<port>"
REPLAYED_PORT = ":1"


def headers(lines: Sequence[str]) -> http.Headers:
    return http.Headers(
        [
            (n.encode("latin-1"), v.replace(SCRUBBED_PORT, REPLAYED_PORT).encode("latin-1"))
            for n, v in map(split_line, lines)
        ]
    )


def at(recorded: Mapping[str, Any], i: int) -> float | None:
    t = recorded["times"][i]
    return None if t is None else T0 + t


def build(recorded: Mapping[str, Any]) -> http.HTTPFlow:
    """The flow as mitmdump held it: the recorded request, response (if any) and error (if any)."""
    request = tutils.treq(
        method=recorded["method"].encode("latin-1"),
        scheme=recorded["scheme"].encode(),
        host=recorded["host"],
        port=recorded["port"],
        authority=b"",
        path=recorded["path"].encode("latin-1"),
        http_version=recorded["http_version"].encode(),
        headers=headers(recorded["request"]),
        content=b"",
        timestamp_start=at(recorded, 0),
        timestamp_end=at(recorded, 1),
    )
    response: http.Response | bool = False
    if recorded["response"] is not None:
        response = tutils.tresp(
            status_code=recorded["status"],
            headers=headers(recorded["response"]),
            content=b"",
            timestamp_start=at(recorded, 2),
            timestamp_end=at(recorded, 3),
        )
    f = tflow.tflow(req=request, resp=response)
    if recorded["error"]:
        f.error = tflow.terr(recorded["error"])
    return f


def events(recorded: Sequence[Mapping[str, Any]]) -> Iterator[tuple[int, str]]:
    """(flow index, "request" | "response") in the order mitmdump's hooks ran: a request when it was complete, a
    response when it was; within the same millisecond, in the order the flows started, a request before its
    response."""
    timeline = []
    for i, r in enumerate(recorded):
        times = [t for t in r["times"] if t is not None]
        timeline.append((r["times"][1] if r["times"][1] is not None else times[0], i, 0, "request"))
        timeline.append((max(times), i, 1, "response"))
    for _, i, _, what in sorted(timeline):
        yield i, what


def replay(recorded: Sequence[Mapping[str, Any]]) -> list[http.HTTPFlow]:
    """Run the flows through CorsAddon's hooks (request, then responseheaders and response, or error)."""
    addon = CorsAddon()
    flows = [build(r) for r in recorded]
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_log="off")
        for i, what in events(recorded):
            f = flows[i]
            if what == "request":
                addon.request(f)
            elif f.response is not None:
                hook(addon, "responseheaders", f)
                addon.response(f)
            if what == "response" and f.error is not None:
                addon.error(f)
    return flows


def disagreements(scenario: Mapping[str, Any], flows: Sequence[http.HTTPFlow]) -> list[str]:
    problems = []
    for recorded, f in zip(scenario["flows"], flows, strict=True):
        want, meta = recorded["chromium"], f.metadata.get("cors")
        where = f"{recorded['method']} {recorded['scheme']}://{recorded['host']}{recorded['path']}"
        if want is None:
            if meta is not None:
                problems.append(f"{where}: no report line was recorded, the addon annotated {meta}")
            continue
        if meta is None:
            problems.append(f"{where}: not annotated")
            continue
        got = effective(meta, scenario["credentials"])
        if got != (want["verdict"], want["reason"]):
            problems.append(f"{where}: (verdict, reason)={got}, Chromium: {(want['verdict'], want['reason'])}")
        if meta.get("kind") != want["kind"]:
            problems.append(f"{where}: kind={meta.get('kind')!r}, want {want['kind']!r}")
        preflight = None if want["preflight"] is None else flows[want["preflight"]]
        if (meta.get("preflight_id") or None) != (preflight.id if preflight else None):
            problems.append(f"{where}: preflight_id={meta.get('preflight_id')!r}, want flow {want['preflight']}")
        elif preflight is not None:
            if meta.get("preflight_cached") is not want["cached"]:
                problems.append(f"{where}: preflight_cached={meta.get('preflight_cached')!r}, want {want['cached']}")
            if f.id not in (preflight.metadata.get("cors") or {}).get("request_ids", []):
                problems.append(f"{where}: its preflight's request_ids do not list it")
    return problems


def test_corpus_has_the_browser_scenarios() -> None:
    """The corpus is there and holds the inspection scenarios of the browser suite."""
    assert CORPUS.exists(), f"{CORPUS} is missing: run CORS_CORPUS_UPDATE=1 pytest -m browser tests/browser"
    assert len(SCENARIOS) >= 100


@pytest.mark.parametrize("scenario_id", sorted(SCENARIOS))
def test_addon_agrees_with_recorded_chromium(scenario_id: str) -> None:
    """Replayed in recorded order, every flow of the scenario gets Chromium's verdict, reason, kind and links."""
    scenario = SCENARIOS[scenario_id]
    problems = disagreements(scenario, replay(scenario["flows"]))
    assert not problems, "\n".join(problems)
