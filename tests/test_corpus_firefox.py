"""The recorded Firefox corpus (tests/corpus/firefox.json), replayed through the addon without a browser.

Every scenario's flows (as Firefox sent them) are rebuilt and run through CorsAddon's hooks in the order they
crossed mitmdump (tests/test_corpus.py's replay); each flow's ``firefox_reason`` must be the reason key Firefox
logged for it (null where Firefox let it through), its verdict Firefox's outcome (except in scenarios where the
engines measurably differ: the verdict follows Chromium there), and its kind the one the harness expects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from mitmproxy import http

from tests.harness.checks import effective
from tests.harness.corpus import FIREFOX_CORPUS, load
from tests.test_corpus import replay

SCENARIOS: dict[str, Any] = load(FIREFOX_CORPUS, "firefox")["scenarios"]


def disagreements(scenario: Mapping[str, Any], flows: Sequence[http.HTTPFlow]) -> list[str]:
    problems = []
    for recorded, f in zip(scenario["flows"], flows, strict=True):
        want, meta = recorded["firefox"], f.metadata.get("cors")
        where = f"{recorded['method']} {recorded['scheme']}://{recorded['host']}{recorded['path']}"
        if want is None or meta is None:
            if (want is None) != (meta is None):
                problems.append(f"{where}: recorded {want}, the addon annotated {meta}")
            continue
        verdict, firefox = effective(meta, scenario["credentials"], "firefox_reason")
        if firefox != want["reason"]:
            problems.append(f"{where}: firefox_reason={firefox!r}, Firefox: {want['reason']!r}")
        if verdict != want["verdict"] and not scenario["engines_differ"]:
            problems.append(f"{where}: verdict={verdict!r}, Firefox: {want['verdict']!r}")
        if meta.get("kind") != want["kind"]:
            problems.append(f"{where}: kind={meta.get('kind')!r}, want {want['kind']!r}")
    return problems


def case(scenario_id: str) -> Any:
    """A scenario of the corpus; strictly expected to fail where the suite knows the addon disagrees with Firefox."""
    xfail = SCENARIOS[scenario_id].get("xfail")
    marks = [pytest.mark.xfail(reason=f"addon disagrees with Firefox: {xfail}", strict=True)] if xfail else []
    return pytest.param(scenario_id, id=scenario_id, marks=marks)


def test_firefox_corpus_has_the_browser_scenarios() -> None:
    """The corpus is there and holds the inspection scenarios of the browser suite."""
    update = "CORS_CORPUS_UPDATE=1 pytest -m browser tests/browser"
    assert FIREFOX_CORPUS.exists(), f"{FIREFOX_CORPUS} is missing: run {update}"
    assert len(SCENARIOS) >= 100


@pytest.mark.parametrize("scenario_id", [case(sid) for sid in sorted(SCENARIOS)])
def test_addon_agrees_with_recorded_firefox(scenario_id: str) -> None:
    """Replayed in recorded order, every flow of the scenario gets Firefox's reason key, outcome and kind."""
    scenario = SCENARIOS[scenario_id]
    problems = disagreements(scenario, replay(scenario["flows"]))
    assert not problems, "\n".join(problems)
