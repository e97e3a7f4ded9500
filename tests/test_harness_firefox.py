"""The Firefox harness pins each CORS console message on the report line it is about (Firefox's messages name a
URL and a time, never a flow): a wrong pairing would make the browser suite check the addon against the wrong
flow's answer."""

from __future__ import annotations

import pytest

from tests.harness.browser import Scenario
from tests.harness.firefox import FirefoxResult, Message, blocked_lines

URL = "http://api.localhost/s/firefox/row/r"
BLOCKED = f"Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at {URL}."
MISSING = f"{BLOCKED} (Reason: CORS header \u2018Access-Control-Allow-Origin\u2019 missing). Status code: 200."
DID_NOT_SUCCEED = f"{BLOCKED} (Reason: CORS request did not succeed). Status code: (null)."


def result(starts: list[float], messages: list[tuple[str, str, float]]) -> FirefoxResult:
    """Report lines to URL started at ``starts`` (seconds); console messages (category, text, seconds)."""
    lines = [{"url": URL, "method": "GET", "timestamp": t} for t in starts]
    logged = [Message(category, text, t * 1000) for category, text, t in messages]
    scenario = Scenario(page="http://app.localhost/", routes={}, js="")
    return FirefoxResult(scenario, "/s/firefox/row", None, [], [], lines, [], [], "", [], logged)


@pytest.mark.parametrize(
    ("starts", "messages", "pinned"),
    [
        pytest.param([1.0], [("CORSMissingAllowOrigin2", MISSING, 1.01)], {0: "CORSMissingAllowOrigin2"}, id="one"),
        pytest.param(
            [1.0, 2.0],
            [("CORSMissingAllowOrigin2", MISSING, 2.01)],
            {1: "CORSMissingAllowOrigin2"},
            id="allowed then blocked: the message is about the later flow",
        ),
        pytest.param(
            [1.0, 2.0],
            [("CORSMissingAllowOrigin2", MISSING, 1.01), ("CORSMissingAllowOrigin2", MISSING, 2.01)],
            {0: "CORSMissingAllowOrigin2", 1: "CORSMissingAllowOrigin2"},
            id="two blocked, each message before the next flow",
        ),
        pytest.param(
            [1.0, 1.002],
            [("CORSMissingAllowOrigin2", MISSING, 1.003), ("CORSMissingAllowOrigin2", MISSING, 1.004)],
            {0: "CORSMissingAllowOrigin2", 1: "CORSMissingAllowOrigin2"},
            id="two blocked back to back, the first message logged after the second flow started (seen in CI)",
        ),
        pytest.param(
            [1.0, 2.0],
            [("CORSMissingAllowOrigin2", MISSING, 2.01), ("CORSDidNotSucceed2", DID_NOT_SUCCEED, 2.02)],
            {1: "CORSMissingAllowOrigin2"},
            id="a different message after the reason is its consequence",
        ),
    ],
)
def test_each_message_is_pinned_on_its_flow(
    starts: list[float], messages: list[tuple[str, str, float]], pinned: dict[int, str]
) -> None:
    reasons, problems = blocked_lines(result(starts, messages))
    assert {i: m.category for i, m in reasons.items()} == pinned
    assert problems == []
