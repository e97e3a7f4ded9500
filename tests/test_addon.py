"""The mitmproxy glue: annotations, links, markers, logs and the report, with mitmproxy's test doubles."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import ctx, http
from mitmproxy.test import taddons, tflow, tutils

from mitmcors import state
from mitmcors.addon import SETTINGS, CorsAddon
from mitmcors.annotation import CorsAnnotation
from mitmcors.options import OPTIONS, Option
from mitmcors.output import BLOCKED_MARKER, CREDENTIALS_MARKER
from mitmcors.rulefile import compile_filter
from mitmcors.rules import parse_rules
from tests.support import APP, failed_flow, make_flow, run

PREFLIGHT_HEADERS = {"Origin": APP, "Access-Control-Request-Method": "PUT", "Sec-Fetch-Mode": "cors"}
PREFLIGHT_OK = [
    ("Access-Control-Allow-Origin", APP),
    ("Access-Control-Allow-Methods", "PUT"),
    ("Access-Control-Max-Age", "60"),
]
PUT_HEADERS = {"Origin": APP, "Sec-Fetch-Mode": "cors"}
PUT_OK = [("Access-Control-Allow-Origin", APP)]


@pytest.fixture
def addon() -> Iterator[CorsAddon]:
    a = CorsAddon()
    with taddons.context(a):
        yield a


def test_blocked_flow_is_annotated_commented_and_marked(addon: CorsAddon) -> None:
    """A blocked CORS flow gets metadata, the one-line message as comment, and the blocked marker."""
    f = make_flow()
    meta = run(addon, f)
    assert meta["verdict"] == "blocked"
    assert meta["reason"] == "MissingAllowOriginHeader"
    assert f.comment == meta["message"]
    assert f.marked == BLOCKED_MARKER


def test_blocked_preflight_carries_its_complete_fix(addon: CorsAddon, caplog: pytest.LogCaptureFixture) -> None:
    """A 404 preflight's annotation and log line name every change at once: status, origin, method, headers."""
    caplog.set_level(logging.WARNING, logger="mitmcors")
    headers = {**PREFLIGHT_HEADERS, "Access-Control-Request-Headers": "x-a,x-b"}
    meta = run(addon, make_flow("OPTIONS", headers, 404))
    pre = meta["fix"]["preflight"]
    assert pre["status"] == 204
    assert pre["set"]["Access-Control-Allow-Methods"] == "PUT"
    assert pre["set"]["Access-Control-Allow-Headers"] == "x-a, x-b"
    assert meta["fix"]["response"]["set"] == {"Access-Control-Allow-Origin": APP}
    line = caplog.records[-1].getMessage()
    assert all(part in line for part in ("status 204", "x-a, x-b", "Access-Control-Allow-Methods: PUT"))


def test_allowed_flow_has_no_fix(addon: CorsAddon) -> None:
    """Only blocked flows carry a fix."""
    assert run(addon, make_flow(resp_headers=[("Access-Control-Allow-Origin", "*")]))["fix"] is None


@pytest.mark.parametrize(
    ("allow_origin", "marker", "dependent"),
    [
        pytest.param(APP, "", False, id="exact origin: allowed either way, unmarked"),
        pytest.param("*", CREDENTIALS_MARKER, True, id="'*': blocked if credentialed, flagged"),
    ],
)
def test_allowed_flow_is_marked_only_when_credentials_would_block_it(
    addon: CorsAddon, allow_origin: str, marker: str, dependent: bool
) -> None:
    """An allowed flow is unmarked unless `credentials: 'include'` (invisible on the wire) would block it."""
    lines = [("Access-Control-Allow-Origin", allow_origin), ("Access-Control-Allow-Credentials", "true")]
    f = make_flow(resp_headers=[*lines, ("Vary", "Origin")])
    meta = run(addon, f)
    assert (meta["verdict"], meta["credentials_dependent"], f.marked) == ("allowed", dependent, marker)


def test_credentials_dependent_flow_is_logged_under_cors_log_blocked(caplog: pytest.LogCaptureFixture) -> None:
    """`cors_log=blocked` also shows flows that only pass because no credentials were sent (#10)."""
    a = CorsAddon()
    caplog.set_level(logging.INFO, logger="mitmcors")
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_log="blocked")
        run(a, make_flow(resp_headers=[("Access-Control-Allow-Origin", "*")]))
    (record,) = [r for r in caplog.records if r.name.startswith("mitmcors")]
    assert record.levelno == logging.WARNING
    assert "WildcardOriginNotAllowed" in record.getMessage()


@pytest.mark.parametrize(
    ("fail_on", "allow_origin", "status"),
    [
        pytest.param("blocked", None, 1, id="blocked flow, fail_on=blocked"),
        pytest.param("blocked", "*", 0, id="credentials-dependent flow, fail_on=blocked"),
        pytest.param("ambiguous", "*", 1, id="credentials-dependent flow, fail_on=ambiguous"),
        pytest.param("", None, 0, id="off"),
    ],
)
def test_fail_on_sets_the_exit_status(fail_on: str, allow_origin: str | None, status: int) -> None:
    """cors_fail_on decides the exit status from what was judged (the e2e suite checks mitmdump's own)."""
    a = CorsAddon()
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_fail_on=fail_on)
        run(a, make_flow(resp_headers=[("Access-Control-Allow-Origin", allow_origin)] if allow_origin else []))
        a.done()
    assert a.exit_status == status


def test_summary_counts_credentials_dependent_flows(addon: CorsAddon) -> None:
    """The summary counts the flows that would be blocked with credentials, apart from the blocked ones."""
    run(addon, make_flow(resp_headers=[("Access-Control-Allow-Origin", "*")]))
    d = addon.output.summary.as_dict()
    assert (d["blocked"], d["credentials_dependent"]) == (0, 1)
    assert d["credentials_dependent_by_reason"] == {"WildcardOriginNotAllowed": 1}


@pytest.mark.parametrize(
    ("scheme", "host", "port", "path"),
    [
        pytest.param("https", "api.localhost", 443, "/v1/items?page=2", id="default port"),
        pytest.param("http", "api.localhost", 8000, "/v1/items", id="other port"),
        pytest.param("http", "::1", 8000, "/x", id="IPv6 literal"),
        pytest.param("https", "xn--bcher-kva.example", 443, "/", id="IDN host"),
    ],
)
def test_the_url_written_out_is_mitmproxys(scheme: str, host: str, port: int, path: str) -> None:
    """The flow's state builds its URL only when something writes it out: the same string as `Request.url`."""
    f = make_flow()
    f.request.scheme, f.request.host, f.request.port, f.request.path = scheme, host, port, path
    s = state.start(f)
    assert s is not None
    assert s.url == f.request.url


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.choices], ids=lambda o: o.name)
def test_an_option_with_choices_refuses_another_value(option: Option, caplog: pytest.LogCaptureFixture) -> None:
    """mitmproxy checks an option's choices for its own flags only, not for --set: the addon says which values it
    takes, and keeps the old value."""
    a = CorsAddon()
    with taddons.context(a) as tctx:
        before = dict(a._settings)
        tctx.options.update(**{option.name: "bogus"})  # as --set does: accepted
        a.configure({option.name})
    assert f"{option.name} must be one of" in caplog.text
    assert a._settings == before


def test_the_hooks_read_the_settings_configure_copied() -> None:
    """Every option the hooks and `done` read is copied from ctx.options by configure."""
    a = CorsAddon()
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_probe_rate=9, cors_fail_on="blocked", cors_suggest_format="nginx")
        assert {name: getattr(ctx.options, name) for name in SETTINGS} == a._settings
        assert a._settings["cors_probe_rate"] == 9


def test_flow_without_origin_is_left_alone(addon: CorsAddon) -> None:
    """No Origin header: no annotation, no comment."""
    f = make_flow(req_headers={"Accept": "*/*"})
    addon.request(f)
    addon.response(f)
    assert "cors" not in f.metadata
    assert f.comment == ""


def test_user_comment_is_kept(addon: CorsAddon) -> None:
    """A comment the user wrote is not overwritten."""
    f = make_flow()
    f.comment = "my note"
    run(addon, f)
    assert f.comment == "my note"


def test_same_origin_flow_is_annotated_but_not_commented(addon: CorsAddon) -> None:
    """Same-origin flows are labelled, never blocked, and get no comment."""
    f = make_flow(req_headers={"Origin": "http://api.localhost:8000", "Sec-Fetch-Mode": "cors"})
    meta = run(addon, f)
    assert (meta["kind"], meta["verdict"]) == ("same-origin", "allowed")
    assert f.comment == ""


@pytest.mark.parametrize(
    "flow",
    [
        pytest.param(lambda: make_flow(), id="blocked actual request"),
        pytest.param(lambda: make_flow("OPTIONS", PREFLIGHT_HEADERS, 204, PREFLIGHT_OK), id="preflight"),
        pytest.param(lambda: make_flow(req_headers={"Origin": "http://api.localhost:8000"}), id="same-origin"),
    ],
)
def test_metadata_has_the_public_keys(addon: CorsAddon, flow: Callable[[], http.HTTPFlow]) -> None:
    """Every flow with an Origin carries every key of the README's table, which CorsAnnotation types."""
    meta = run(addon, flow())
    assert CorsAnnotation.__required_keys__ <= set(meta)
    assert set(meta) <= CorsAnnotation.__required_keys__ | CorsAnnotation.__optional_keys__
    assert {"kind", "verdict", "reason", "firefox_reason", "message", "credentials", "if_credentials"} <= set(meta)
    assert {"preflight_id", "request_ids", "unreadable_headers", "warnings", "rule", "upstream"} <= set(meta)


def test_metadata_is_json_serialisable(addon: CorsAddon) -> None:
    """flow.metadata['cors'] round-trips through JSON."""
    meta = run(addon, make_flow(resp_headers=[("Access-Control-Allow-Origin", APP)]))
    assert json.loads(json.dumps(meta)) == meta


def test_preflight_and_request_point_at_each_other(addon: CorsAddon) -> None:
    """The actual request names its preflight; the preflight lists the request."""
    pf = make_flow("OPTIONS", PREFLIGHT_HEADERS, 204, PREFLIGHT_OK)
    run(addon, pf)
    put = make_flow("PUT", PUT_HEADERS, 200, PUT_OK, t=1000.1)
    meta = run(addon, put)
    assert meta["preflight_id"] == pf.id
    assert meta["preflight_cached"] is False
    assert pf.metadata["cors"]["request_ids"] == [put.id]


def test_cached_preflight_is_linked(addon: CorsAddon) -> None:
    """A second PUT inside Max-Age without its own OPTIONS is linked to the cached preflight."""
    pf = make_flow("OPTIONS", PREFLIGHT_HEADERS, 204, PREFLIGHT_OK)
    run(addon, pf)
    first = make_flow("PUT", PUT_HEADERS, 200, PUT_OK, t=1000.1)
    run(addon, first)
    second = make_flow("PUT", PUT_HEADERS, 200, PUT_OK, t=1030.0)
    meta = run(addon, second)
    assert meta["preflight_id"] == pf.id
    assert meta["preflight_cached"] is True
    assert pf.metadata["cors"]["request_ids"] == [first.id, second.id]


def test_failed_preflight_names_the_request_never_sent(addon: CorsAddon) -> None:
    """A blocked preflight records the method and URL the browser did not send."""
    pf = make_flow("OPTIONS", {**PREFLIGHT_HEADERS, "Access-Control-Request-Headers": "x-api-key"}, 404)
    meta = run(addon, pf)
    assert meta["reason"] == "PreflightMissingAllowOriginHeader"
    assert meta["blocked_request"] == {
        "method": "PUT",
        "url": "http://api.localhost:8000/v1/items",
        "headers": ["x-api-key"],
    }


def test_request_after_cross_origin_redirect_is_linked(addon: CorsAddon) -> None:
    """The Origin: null request after a redirect says which redirect it follows."""
    first = make_flow(
        resp_headers=[("Access-Control-Allow-Origin", "*"), ("Location", "http://api.localhost:8000/v2/items")],
        status=302,
    )
    run(addon, first)
    follow = make_flow(req_headers={"Origin": "null", "Sec-Fetch-Mode": "cors"}, path="/v2/items", t=1000.05)
    meta = run(addon, follow)
    assert meta["redirected_from"] == first.id
    assert meta["reason"] == "MissingAllowOriginHeader"


def test_report_lines(tmp_path: Path) -> None:
    """cors_report gets one JSON line per judged flow with flow_id, method, url and timestamp."""
    report = tmp_path / "cors.jsonl"
    a = CorsAddon()
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_report=str(report))
        f = make_flow()
        run(a, f)
        same = make_flow(req_headers={"Origin": "http://api.localhost:8000"})
        run(a, same)
        a.done()
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    assert [x["flow_id"] for x in lines] == [f.id, same.id]
    assert lines[0]["method"] == "GET"
    assert lines[0]["url"] == "http://api.localhost:8000/v1/items"
    assert lines[0]["reason"] == "MissingAllowOriginHeader"
    assert isinstance(lines[0]["timestamp"], float)
    summary = json.loads((tmp_path / "cors.jsonl.summary.json").read_text())
    assert summary["blocked"] == 1


def test_replayed_preflight_within_the_hold_gets_a_line_each_time(tmp_path: Path) -> None:
    """A passing preflight replayed (same flow id) while its first line is held still writes both lines (#8.8)."""
    report = tmp_path / "cors.jsonl"
    a = CorsAddon()
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_report=str(report))
        pf = make_flow("OPTIONS", PREFLIGHT_HEADERS, 204, PREFLIGHT_OK)
        run(a, pf)
        run(a, pf)  # mitmproxy's replay sends the same flow again
        a.done()
    assert [json.loads(x)["flow_id"] for x in report.read_text().splitlines()] == [pf.id, pf.id]


def test_report_carries_no_secrets(tmp_path: Path) -> None:
    """Cookie values, tokens in the URL and userinfo in a Location never reach the report."""
    report = tmp_path / "cors.jsonl"
    a = CorsAddon()
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_report=str(report))
        f = make_flow(
            req_headers={"Origin": APP, "Cookie": "session=SECRET1", "Authorization": "Bearer SECRET2"},
            path="/v1/items?access_token=SECRET3",
            status=302,
            resp_headers=[("Access-Control-Allow-Origin", APP), ("Location", "http://u:SECRET4@b.localhost/")],
        )
        run(a, f)
        a.done()
    text = report.read_text()
    assert "cors" in f.metadata
    for secret in ("SECRET1", "SECRET2", "SECRET3", "SECRET4"):
        assert secret not in text


def test_one_log_line_per_cross_origin_flow(addon: CorsAddon, caplog: pytest.LogCaptureFixture) -> None:
    """Each cross-origin flow logs one line; a blocked one at warning level with its reason."""
    caplog.set_level(logging.INFO, logger="mitmcors")
    run(addon, make_flow())
    run(addon, make_flow(req_headers={"Origin": "http://api.localhost:8000"}))
    lines = [r for r in caplog.records if r.name.startswith("mitmcors")]
    assert len(lines) == 1
    assert lines[0].levelno == logging.WARNING
    assert "MissingAllowOriginHeader" in lines[0].getMessage()


def test_cors_log_blocked_silences_allowed_flows(caplog: pytest.LogCaptureFixture) -> None:
    """cors_log=blocked logs only blocked flows."""
    a = CorsAddon()
    caplog.set_level(logging.INFO, logger="mitmcors")
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_log="blocked")
        ok = [("Access-Control-Allow-Origin", APP), ("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")]
        run(a, make_flow(resp_headers=ok))
    assert not [r for r in caplog.records if r.name.startswith("mitmcors")]


@pytest.mark.parametrize("hook", ["request", "response"])
def test_hook_errors_never_reach_mitmproxy(
    addon: CorsAddon, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, hook: str
) -> None:
    """An internal error in a hook is logged, and the flow passes through unchanged."""

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    target = {"request": "mitmcors.state.classify", "response": "mitmcors.addon.evaluate"}[hook]
    monkeypatch.setattr(target, broken)
    f = make_flow()
    before = f.response.get_state()  # type: ignore[union-attr]
    addon.request(f)
    addon.response(f)
    assert f.response is not None and f.response.get_state() == before
    assert f"internal error in {hook}" in caplog.text


@pytest.mark.parametrize(
    ("preflight", "error", "streamed", "expected"),
    [
        pytest.param(
            False,
            "Error connecting to 'api': Connection refused",
            False,
            ("blocked", "MissingAllowOriginHeader", "CORSMissingAllowOrigin2"),
            id="server down: the page gets mitmproxy's 502 without CORS headers",
        ),
        pytest.param(
            True,
            "Error connecting to 'api': Connection refused",
            False,
            ("blocked", "PreflightMissingAllowOriginHeader", "CORSMissingAllowOrigin2"),
            id="preflight to a server that is down",
        ),
        pytest.param(
            False,
            "HTTP/1 protocol error: Server disconnected",
            True,
            ("blocked", None, "CORSDidNotSucceed2"),
            id="streamed response cut short: a network error",
        ),
        pytest.param(
            True,
            "HTTP/1 protocol error: Server disconnected",
            True,
            ("blocked", "InvalidResponse", "CORSDidNotSucceed2"),
            id="streamed preflight response cut short",
        ),
        pytest.param(False, "Connection killed.", False, ("blocked", None, "CORSDidNotSucceed2"), id="killed"),
    ],
)
def test_error_flow_is_judged_by_what_reached_the_page(
    addon: CorsAddon, preflight: bool, error: str, streamed: bool, expected: tuple[str, str | None, str]
) -> None:
    """A CORS request the server did not answer is judged by what the browser got instead (#7.5)."""
    f = failed_flow(error)
    if preflight:
        f.request.method = "OPTIONS"
        f.request.headers["Access-Control-Request-Method"] = "PUT"
    if streamed:
        f.response = tutils.tresp()
        f.response.stream = True
    addon.request(f)
    addon.error(f)
    meta = f.metadata["cors"]
    assert (meta["verdict"], meta["reason"], meta["firefox_reason"]) == expected


@pytest.mark.parametrize(
    ("req_headers", "resp_headers"),
    [
        pytest.param(
            PREFLIGHT_HEADERS, [*PREFLIGHT_OK[:2], ("Access-Control-Max-Age", "\u00b2")], id="Max-Age superscript"
        ),
        pytest.param(
            PREFLIGHT_HEADERS, [*PREFLIGHT_OK[:2], ("Access-Control-Max-Age", "9" * 5000)], id="Max-Age 5000 digits"
        ),
        pytest.param({"Origin": "http://app.localhost:\u00b2"}, [], id="Origin port superscript"),
        pytest.param({"Origin": "http://[::1]:\u00b9"}, [], id="Origin IPv6 port superscript"),
    ],
)
def test_hostile_numbers_still_get_a_verdict(
    addon: CorsAddon, caplog: pytest.LogCaptureFixture, req_headers: dict[str, str], resp_headers: list[tuple[str, str]]
) -> None:
    """Numbers only str.isdigit() accepts are judged like any other bad value, never an internal error (#8)."""
    method = "OPTIONS" if "Access-Control-Request-Method" in req_headers else "GET"
    meta = run(addon, make_flow(method, req_headers, 204, resp_headers))
    assert meta["verdict"] in ("allowed", "blocked")
    assert "internal error" not in caplog.text


def test_abandoned_request_is_not_blamed_on_the_server(addon: CorsAddon) -> None:
    """A request the browser gave up on (client disconnected) is not a CORS failure and asks no server fix."""
    f = failed_flow("Client disconnected.")
    addon.request(f)
    addon.error(f)
    meta = f.metadata["cors"]
    assert (meta["verdict"], meta["reason"], meta["firefox_reason"]) == ("allowed", None, None)
    assert "Fix:" not in meta["message"]


def test_error_text_quoting_the_wire_stays_out_of_the_message(addon: CorsAddon) -> None:
    """mitmproxy's error text can quote received bytes (a Set-Cookie); the message keeps only its gist."""
    f = failed_flow("HTTP/1 protocol error: Received invalid headers: b'Set-Cookie: sid=SECRET9'")
    addon.request(f)
    addon.error(f)
    assert f.metadata["cors"]["verdict"] == "blocked"
    assert "SECRET9" not in json.dumps(f.metadata["cors"])
    assert "SECRET9" not in f.comment


def test_errored_same_origin_flow_is_still_allowed(addon: CorsAddon) -> None:
    """A same-origin request that failed is annotated as not CORS, never as blocked."""
    f = tflow.tflow(err=True)
    f.request.headers["Origin"] = f"{f.request.scheme}://{f.request.host}:{f.request.port}"
    addon.request(f)
    addon.error(f)
    assert (f.metadata["cors"]["kind"], f.metadata["cors"]["verdict"]) == ("same-origin", "allowed")


@pytest.mark.parametrize(
    ("first", "if_none_match", "expected"),
    [
        pytest.param([("ETag", '"v1"')], '"v1"', ("blocked", True), id="blocked 200, then its 304: blocked again"),
        pytest.param([("ETag", '"v1"'), *PUT_OK], '"v1"', ("allowed", True), id="allowed 200, then its 304"),
        pytest.param([("ETag", '"v1"')], '"v2"', ("allowed", False), id="304 for another version: not linked"),
    ],
)
def test_revalidation_is_judged_with_the_stored_response(
    addon: CorsAddon, first: list[tuple[str, str]], if_none_match: str, expected: tuple[str, bool]
) -> None:
    """A 304 without CORS headers gets the verdict of the cached response it refreshes (#7.7)."""
    stored = make_flow(resp_headers=first)
    run(addon, stored)
    again = make_flow(req_headers={**PUT_HEADERS, "If-None-Match": if_none_match}, status=304, t=1001.0)
    meta = run(addon, again)
    assert (meta["verdict"], meta.get("revalidates") == stored.id) == expected


REFLECTING = ["https://a.example", "https://b.example", "https://c.example"]


def reflected(origin: str, t: float) -> http.HTTPFlow:
    """A server echoing any Origin back, with credentials (the classic hole)."""
    echo = [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")]
    return make_flow(req_headers={"Origin": origin, "Sec-Fetch-Mode": "cors"}, resp_headers=echo, t=t)


def test_security_finding_is_annotated_once_the_server_is_seen_reflecting(addon: CorsAddon) -> None:
    """Findings judge the server, not the verdict: three unrelated origins echoed with credentials is a finding."""
    metas = [run(addon, reflected(origin, 1000.0 + i)) for i, origin in enumerate(REFLECTING)]
    assert all(m["verdict"] == "allowed" for m in metas)
    assert [f["id"] for f in metas[-1]["findings"]] == ["origin-reflected-with-credentials"]
    assert metas[-1]["findings"][0]["severity"] == "high"


def test_findings_command_and_summary(addon: CorsAddon) -> None:
    """cors.findings lists the finding for the flows' server and route; the summary counts it."""
    flows = [reflected(origin, 1000.0 + i) for i, origin in enumerate(REFLECTING)]
    for f in flows:
        run(addon, f)
    assert "origin-reflected-with-credentials" in addon.findings_command(flows[:1])
    (finding,) = json.loads(addon.findings_json_command(flows[:1]))
    assert (finding["id"], finding["severity"], len(finding["evidence"])) == (
        "origin-reflected-with-credentials",
        "high",
        3,
    )
    addon.done()
    assert addon.output.summary.as_dict()["findings"] == {"origin-reflected-with-credentials": 1}


def test_probe_replays_with_crafted_origins_and_logs_the_verdict(
    addon: CorsAddon, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """cors.probe sends replays without the user's cookie; a server that echoes every Origin is caught (#11.2)."""
    sent: list[http.HTTPFlow] = []
    monkeypatch.setattr(ctx.master.commands, "call", lambda name, flows: sent.extend(flows))
    f = reflected(REFLECTING[0], 1000.0)
    f.request.headers["Cookie"] = "sid=SECRET"
    run(addon, f)
    addon.probe_command([f])
    assert sent and all("cookie" not in r.request.headers for r in sent)
    assert {r.request.headers["Origin"] for r in sent} >= {"null", "https://evil.test"}
    for r in sent:  # the server answers each replay by echoing its Origin, with credentials
        origin = r.request.headers["Origin"]
        r.response = tutils.tresp()
        r.response.headers = http.Headers(
            [(b"Access-Control-Allow-Origin", origin.encode()), (b"Access-Control-Allow-Credentials", b"true")]
        )
        addon.request(r)
        addon.response(r)
        assert "cors" not in r.metadata  # replays are not judged as the page's flows
    result = addon.prober.results[f.id]
    assert "origin-reflected-with-credentials" in [x["id"] for x in result["findings"]]
    assert "SECRET" not in caplog.text


def test_suggest_command_gives_a_rule_file_that_fixes_the_flows(addon: CorsAddon) -> None:
    """cors.suggest FLOWS rule: a rule file that loads cleanly and lists exactly the origin seen (#9)."""
    flows = [make_flow("OPTIONS", PREFLIGHT_HEADERS, 404), make_flow("PUT", PUT_HEADERS, 200, t=1000.1)]
    for f in flows:
        run(addon, f)
    text = addon.suggest_command(flows, "rule")
    rules = parse_rules(text, "suggested.yaml", compile_filter)
    assert not rules.warnings
    assert rules.rules[0].allow_origins != "reflect"
    assert [p.raw for p in rules.rules[0].allow_origins] == [APP]  # type: ignore[union-attr]


def test_suggest_option_writes_the_configuration_at_exit(tmp_path: Path) -> None:
    """cors_suggest=PATH writes the suggestion for every cross-origin flow seen when the proxy stops."""
    path = tmp_path / "suggested.py"
    a = CorsAddon()
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_suggest=str(path), cors_suggest_format="starlette")
        run(a, make_flow("OPTIONS", PREFLIGHT_HEADERS, 404))
        a.done()
    assert "CORSMiddleware" in path.read_text()


def rendered_by_mitmproxy(f: http.HTTPFlow, view_name: str) -> str:
    """The text mitmproxy's own content-view machinery shows for the response (mitmproxy 12 or 11 API)."""
    from mitmproxy import contentviews

    api: Any = contentviews
    if hasattr(api, "prettify_message"):  # mitmproxy 12
        return str(api.prettify_message(f.response, f, view_name).text)
    _, lines, _ = api.get_message_content_view(view_name, f.response, f)
    return "\n".join("".join(text for _, text in line) for line in lines)


def test_cors_content_view_shows_the_verdict_and_the_fix(addon: CorsAddon) -> None:
    """mitmweb's and the console's "CORS" view of a blocked flow: verdict, reasons, the checks and the fix (#10)."""
    f = make_flow("OPTIONS", PREFLIGHT_HEADERS, 404)
    run(addon, f)
    text = rendered_by_mitmproxy(f, "CORS")
    assert "preflight: BLOCKED" in text
    assert "PreflightMissingAllowOriginHeader" in text
    assert "Complete fix:" in text and '"status": 204' in text


@pytest.mark.parametrize(
    ("flow", "automatic"),
    [
        pytest.param(lambda: make_flow("OPTIONS", PREFLIGHT_HEADERS, 404), True, id="preflight response: CORS view"),
        pytest.param(lambda: make_flow(), False, id="an actual response keeps its body's view"),
    ],
)
def test_cors_view_is_chosen_automatically_for_preflights(
    addon: CorsAddon, flow: Callable[[], http.HTTPFlow], automatic: bool
) -> None:
    """mitmproxy's automatic view choice picks CORS for a preflight's response only (#10)."""
    f = flow()
    run(addon, f)
    assert ("Complete fix:" in rendered_by_mitmproxy(f, "auto")) is automatic


@pytest.mark.parametrize(
    ("options", "methods", "cookie"),
    [
        pytest.param({}, {"OPTIONS"}, False, id="default: only preflights for a PUT, no cookie"),
        pytest.param({"cors_probe_unsafe": True}, {"PUT"}, False, id="cors_probe_unsafe: the PUT itself"),
        pytest.param({"cors_probe_credentials": True}, {"OPTIONS"}, False, id="preflights never carry cookies"),
    ],
)
def test_probe_flags_are_off_by_default(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, bool], methods: set[str], cookie: bool
) -> None:
    """A probe replays an unsafe method only with cors_probe_unsafe, and the user's cookie only when asked (#11)."""
    a = CorsAddon()
    sent: list[http.HTTPFlow] = []
    with taddons.context(a) as tctx:
        tctx.configure(a, **options)
        monkeypatch.setattr(ctx.master.commands, "call", lambda name, flows: sent.extend(flows))
        f = make_flow("PUT", {**PUT_HEADERS, "Cookie": "sid=SECRET", "X-Api-Key": "k"}, 200, PUT_OK)
        run(a, f)
        a.probe_command([f])
    assert {r.request.method for r in sent} == methods
    assert {r.request.host for r in sent} == {f.request.host}
    assert any("cookie" in r.request.headers for r in sent) is cookie


def test_explain_command(addon: CorsAddon) -> None:
    """cors.explain walks through the checks and names the verdict."""
    f = make_flow()
    run(addon, f)
    text = "\n".join(addon.explain_command([f]))
    assert "MissingAllowOriginHeader" in text
    assert "access-control-allow-origin: (absent)" in text


def test_lower_case_method_links_to_its_preflight(addon: CorsAddon) -> None:
    """`fetch(..., {method: 'patch'})` sends `patch`; it is linked to the preflight that asked for `patch`."""
    pf = make_flow(
        "OPTIONS",
        {**PREFLIGHT_HEADERS, "Access-Control-Request-Method": "patch"},
        204,
        [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "patch")],
    )
    run(addon, pf)
    patch = make_flow("patch", PUT_HEADERS, 200, [("Access-Control-Allow-Origin", "*")], t=1000.1)
    meta = run(addon, patch)
    assert meta["preflight_id"] == pf.id


def test_cookie_on_the_announced_request_tells_the_preflights_credentials_mode(addon: CorsAddon) -> None:
    """A preflight has no cookies; the request it announced does, so the preflight was for `include`."""
    ok = [*PREFLIGHT_OK, ("Access-Control-Allow-Credentials", "true")]
    pf = make_flow("OPTIONS", PREFLIGHT_HEADERS, 204, ok)
    assert run(addon, pf)["credentials"] == "unknown"
    put = make_flow("PUT", {**PUT_HEADERS, "Cookie": "session=1"}, 200, PUT_OK, t=1000.1)
    run(addon, put)
    assert pf.metadata["cors"]["credentials"] == "include"


def test_explain_command_runs_through_mitmproxys_command_system() -> None:
    """`cors.explain @all` works as typed in the mitmproxy console (flow specs resolve through the view)."""
    from mitmproxy.addons import view

    a, v = CorsAddon(), view.View()
    with taddons.context(a, v) as tctx:
        f = make_flow()
        run(a, f)
        v.add([f])
        text = "\n".join(tctx.master.commands.execute("cors.explain @all"))
    assert "MissingAllowOriginHeader" in text
