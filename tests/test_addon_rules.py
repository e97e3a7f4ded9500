"""Rules inside the addon: loading, answering and fixing preflights, before/after verdicts, hot reload."""

from __future__ import annotations

import asyncio
import logging
import os
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy import flow, http
from mitmproxy.test import taddons

from mitmcors import rulefile
from mitmcors.addon import CorsAddon
from tests.support import APP, hook, make_flow, response_of, run

PREFLIGHT = {"Origin": APP, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-api-key"}

RULES = """\
rules:
  - name: answer
    match: {path: /answer/*}
    allow_origins: reflect
    preflight: answer
  - name: forward
    match: {path: /forward/*}
    allow_origins: ["http://app.localhost:*"]
    allow_methods: [GET, PUT]
    allow_headers: [X-Api-Key]
    max_age: 60
  - name: dry
    match: {path: /dry/*}
    allow_origins: "*"
    dry_run: true
  - name: break it
    match: {path: /broken/*}
    strip: [Access-Control-Allow-Origin]
"""


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    p = tmp_path / "rules.yaml"
    p.write_text(RULES)
    return p


@pytest.fixture
def addon(rules_file: Path) -> Iterator[CorsAddon]:
    a = CorsAddon()
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_rules=str(rules_file))
        yield a


def test_bad_rule_file_is_logged_with_file_and_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Setting cors_rules to an invalid file logs every error, file:line first, and loads no rules."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: a\n    colour: red\n    preflight: maybe\n")
    a = CorsAddon()
    caplog.set_level(logging.ERROR, logger="mitmcors")
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_rules=str(bad))
    assert a.rule_file.rules is None
    assert f"{bad}:3:" in caplog.text
    assert f"{bad}:4:" in caplog.text


def test_bad_rule_file_keeps_the_rules_in_force(
    addon: CorsAddon, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Switching cors_rules to a broken file keeps the last good rules."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: 3\n")
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_rules=str(bad))
    assert addon.rule_file.rules is not None
    assert len(addon.rule_file.rules.rules) == 4
    assert "keeping the 4 rule(s)" in caplog.text


def test_missing_rule_file_is_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A path that does not exist is an error, not silently no rules."""
    a = CorsAddon()
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_rules=str(tmp_path / "nope.yaml"))
    assert "Cannot load cors_rules" in caplog.text


def test_rule_file_fixed_later_is_picked_up(tmp_path: Path) -> None:
    """A file that was broken at load time is loaded once it is fixed."""
    p = tmp_path / "rules.yaml"
    p.write_text("rules: 3\n")
    a = CorsAddon()
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_rules=str(p))
        touch_later(p, "rules:\n  - name: fixed\n")
        settle(a)
    assert a.rule_file.rules is not None
    assert [r.name for r in a.rule_file.rules.rules] == ["fixed"]


def test_answered_preflight_never_reaches_the_server(addon: CorsAddon) -> None:
    """preflight: answer sets a 204 response in the request hook, so nothing goes upstream."""
    f = make_flow("OPTIONS", PREFLIGHT, path="/answer/x")
    f.response = None
    addon.request(f)
    answer = response_of(f)
    assert answer is not None
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Methods"] == "PUT"
    assert answer.headers["Access-Control-Allow-Headers"] == "x-api-key"
    addon.response(f)
    meta = f.metadata["cors"]
    assert (meta["verdict"], meta["rule"]) == ("allowed", "answer")
    assert meta["upstream"]["verdict"] is None


def test_preflight_that_got_no_response_is_never_answered_after_the_fact(addon: CorsAddon) -> None:
    """A failed preflight read back from a file stays failed; the rule is shown as what it would do."""
    f = make_flow("OPTIONS", PREFLIGHT, path="/answer/x")
    f.response, f.live = None, False
    addon.request(f)
    f.error = flow.Error("connection refused")
    addon.error(f)
    assert response_of(f) is None
    meta = f.metadata["cors"]
    assert (meta["verdict"], meta["rule"]) == ("blocked", None)
    assert meta["dry_run"]["rule"] == "answer"
    assert meta["dry_run"]["answer"] is True


@pytest.mark.parametrize(
    ("path", "status", "resp_headers"),
    [
        pytest.param("/forward/x", 404, [], id="preflight answered 404"),
        pytest.param("/broken/x", 204, [("Access-Control-Allow-Origin", APP)], id="strip rule"),
    ],
)
def test_flow_read_back_from_a_file_is_never_rewritten(
    addon: CorsAddon, path: str, status: int, resp_headers: list[tuple[str, str]]
) -> None:
    """Rules on a read-back flow (not live) only say what they would do."""
    f = make_flow("OPTIONS", PREFLIGHT, status=status, resp_headers=resp_headers, path=path)
    f.live = False
    before = f.response.get_state()  # type: ignore[union-attr]
    meta = run(addon, f)
    assert f.response is not None and f.response.get_state() == before
    assert meta["rule"] is None
    assert meta["dry_run"]["rule"] in ("forward", "break it")


def test_failed_flow_is_never_rewritten(addon: CorsAddon) -> None:
    """A response that arrived on a flow that already failed is left as it is."""
    f = make_flow("PUT", status=500, path="/forward/x")
    f.error = flow.Error("client disconnected")
    before = f.response.get_state()  # type: ignore[union-attr]
    addon.request(f)
    hook(addon, "responseheaders", f)
    addon.response(f)
    assert f.response is not None and f.response.get_state() == before
    assert f.metadata["cors"]["dry_run"]["verdict"] == "allowed"


def test_explain_of_a_ruled_flow_says_what_the_server_alone_got(addon: CorsAddon) -> None:
    """cors.explain (and the CORS view) name the rule and the server's own verdict in words."""
    f = make_flow("OPTIONS", PREFLIGHT, status=404, path="/forward/x")
    run(addon, f)
    text = "\n".join(addon.explain_command([f]))
    assert "rewritten by rule 'forward'" in text
    assert "the server's own answer: BLOCKED — Chromium PreflightMissingAllowOriginHeader" in text


def test_forwarded_failing_preflight_is_fixed_and_keeps_upstream_verdict(addon: CorsAddon) -> None:
    """A 404 without CORS headers becomes a passing 204; upstream still says what the server did."""
    f = make_flow("OPTIONS", PREFLIGHT, status=404, path="/forward/x")
    f.response.content = b"not found"  # type: ignore[union-attr]
    meta = run(addon, f)
    assert f.response is not None
    assert f.response.status_code == 204
    assert f.response.content == b""
    assert meta["verdict"] == "allowed"
    assert meta["rule"] == "forward"
    assert meta["upstream"]["reason"] == "PreflightMissingAllowOriginHeader"


def test_upstream_verdict_carries_the_flows_credentials_handling(addon: CorsAddon) -> None:
    """The server's own `*` is judged for a credentialed request too: `upstream.if_credentials` says so (#7.8)."""
    f = make_flow("POST", status=200, path="/forward/x", resp_headers=[("Access-Control-Allow-Origin", "*")])
    f.request.headers["Origin"] = APP
    addon.request(f)
    hook(addon, "responseheaders", f)
    addon.response(f)
    up = f.metadata["cors"]["upstream"]
    assert (up["verdict"], up["credentials"]) == ("allowed", "unknown")
    assert up["if_credentials"]["reason"] == "WildcardOriginNotAllowed"


def test_upstream_of_a_preflight_follows_the_credentials_learnt_later(addon: CorsAddon) -> None:
    """When the announced request carries a cookie, the preflight's upstream is judged for `include` (#7.8)."""
    pf = make_flow(
        "OPTIONS", {**PREFLIGHT, "Origin": APP}, 200, [("Access-Control-Allow-Origin", "*")], path="/forward/x"
    )
    run(addon, pf)
    before = pf.metadata["cors"]["upstream"]
    assert (before["reason"], before["credentials"]) == ("MethodDisallowedByPreflightResponse", "unknown")
    assert before["if_credentials"]["reason"] == "PreflightWildcardOriginNotAllowed"
    put = make_flow("PUT", {"Origin": APP, "Cookie": "sid=1", "X-Api-Key": "k"}, 200, path="/forward/x", t=1000.1)
    run(addon, put)
    up = pf.metadata["cors"]["upstream"]
    assert (up["credentials"], up["verdict"], up["reason"]) == (
        "include",
        "blocked",
        "PreflightWildcardOriginNotAllowed",
    )


def test_actual_error_response_gets_cors_headers_but_keeps_status(addon: CorsAddon) -> None:
    """A 500 without CORS headers keeps its status and gains the headers, so the page sees the 500."""
    f = make_flow("PUT", status=500, path="/forward/x")
    f.request.headers["Origin"] = "http://app.localhost:5173"
    addon.request(f)
    hook(addon, "responseheaders", f)
    addon.response(f)
    assert f.response is not None
    assert f.response.status_code == 500
    assert f.response.headers["Access-Control-Allow-Origin"] == APP
    assert f.metadata["cors"]["upstream"]["reason"] == "MissingAllowOriginHeader"
    assert f.metadata["cors"]["verdict"] == "allowed"


def test_duplicate_upstream_allow_origin_is_replaced(addon: CorsAddon) -> None:
    """Two upstream Allow-Origin lines become the rule's single one."""
    f = make_flow(path="/forward/x", resp_headers=[("Access-Control-Allow-Origin", APP)] * 2)
    addon.request(f)
    hook(addon, "responseheaders", f)
    addon.response(f)
    assert f.response is not None
    assert f.response.headers.get_all("Access-Control-Allow-Origin") == [APP]
    assert f.metadata["cors"]["upstream"]["reason"] == "MultipleAllowOriginValues"


def test_origin_not_listed_stays_blocked(addon: CorsAddon) -> None:
    """A rule with an origin list does not help other origins."""
    f = make_flow(req_headers={"Origin": "http://evil.test", "Sec-Fetch-Mode": "cors"}, path="/forward/x")
    addon.request(f)
    hook(addon, "responseheaders", f)
    addon.response(f)
    assert f.metadata["cors"]["verdict"] == "blocked"


def test_dry_run_changes_nothing_but_says_what_it_would_do(addon: CorsAddon) -> None:
    """dry_run leaves the response untouched and annotates the rewrite and its verdict."""
    f = make_flow(path="/dry/x")
    addon.request(f)
    hook(addon, "responseheaders", f)
    addon.response(f)
    meta = f.metadata["cors"]
    assert f.response is not None
    assert "Access-Control-Allow-Origin" not in f.response.headers
    assert meta["verdict"] == "blocked"
    assert meta["rule"] is None
    assert meta["dry_run"]["rule"] == "dry"
    assert meta["dry_run"]["verdict"] == "allowed"
    assert meta["dry_run"]["changes"]["set"]["Access-Control-Allow-Origin"] == ["*"]


def test_failure_a_rule_produced_is_fixed_in_the_rule(addon: CorsAddon) -> None:
    """When the rule's own output is blocked, the fix names the rule and the key to change (#9)."""
    f = make_flow(req_headers={"Origin": "http://evil.test", "Sec-Fetch-Mode": "cors"}, path="/forward/x")
    addon.request(f)
    hook(addon, "responseheaders", f)
    addon.response(f)
    assert f.metadata["cors"]["fix"] == {"rule": "forward", "key": "allow_origins"}


def test_strip_rule_reproduces_a_failure(addon: CorsAddon) -> None:
    """A strip rule turns a working response into the failure it reproduces."""
    f = make_flow(path="/broken/x", resp_headers=[("Access-Control-Allow-Origin", "*")])
    addon.request(f)
    hook(addon, "responseheaders", f)
    addon.response(f)
    meta = f.metadata["cors"]
    assert (meta["verdict"], meta["reason"], meta["rule"]) == ("blocked", "MissingAllowOriginHeader", "break it")
    assert meta["upstream"]["verdict"] == "allowed"


def test_work_per_flow_does_not_grow_with_its_header_count(addon: CorsAddon, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule on a response with 2,000 headers asks mitmproxy's Headers for as many lookups as one with 10:
    its keys()/items() look every name up again, quadratic in the headers (#8.2: a 10,000-header response
    stalled the proxy 11 s)."""
    lookups = 0
    real_get_all = http.Headers.get_all

    def counting_get_all(self: http.Headers, name: str | bytes) -> list[str]:
        nonlocal lookups
        lookups += 1
        return real_get_all(self, name)

    monkeypatch.setattr(http.Headers, "get_all", counting_get_all)

    def lookups_for(extra_headers: int) -> int:
        nonlocal lookups
        lookups = 0
        extra = [(f"X-Filler-{i}", "v") for i in range(extra_headers)]
        for method, path in (("OPTIONS", "/forward/x"), ("PUT", "/forward/y")):
            headers = PREFLIGHT if method == "OPTIONS" else {"Origin": APP, "X-Api-Key": "k"}
            f = make_flow(method, headers, 404 if method == "OPTIONS" else 200, extra, path=path)
            addon.request(f)
            hook(addon, "responseheaders", f)
            addon.response(f)
            assert f.metadata["cors"]["rule"] == "forward"
        return lookups

    assert lookups_for(2000) == lookups_for(10)


def test_flows_without_a_matching_rule_are_untouched(addon: CorsAddon) -> None:
    """No rule matches: the server's answer passes as it is."""
    f = make_flow(path="/other")
    addon.request(f)
    hook(addon, "responseheaders", f)
    addon.response(f)
    assert f.metadata["cors"]["rule"] is None
    assert f.metadata["cors"]["upstream"] is None


def test_same_origin_flows_are_never_rewritten(addon: CorsAddon) -> None:
    """Rules only touch cross-origin CORS flows."""
    f = make_flow(req_headers={"Origin": "http://api.localhost:8000"}, path="/forward/x")
    addon.request(f)
    hook(addon, "responseheaders", f)
    addon.response(f)
    assert f.response is not None
    assert "Access-Control-Allow-Origin" not in f.response.headers


def settle(addon: CorsAddon) -> None:
    """Two periodic checks: a changed file is read once it is the same at two checks in a row."""
    addon.rule_file.check()
    addon.rule_file.check()


def test_file_still_changing_is_not_read(addon: CorsAddon, rules_file: Path) -> None:
    """A save caught half-way (valid YAML, fewer rules) is not installed while the file keeps changing."""
    touch_later(rules_file, "rules:\n  - name: half\n")
    addon.rule_file.check()
    touch_later(rules_file, RULES + "  - name: added\n")
    addon.rule_file.check()
    assert addon.rule_file.rules is not None
    assert [r.name for r in addon.rule_file.rules.rules] == ["answer", "forward", "dry", "break it"]
    addon.rule_file.check()
    assert [r.name for r in addon.rule_file.rules.rules][-1] == "added"


def test_fixing_permissions_reloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule file that could not be read is read once its permissions are fixed, without another edit."""
    real_read = rulefile.read_rules

    def read_as_unprivileged_user(path: str) -> object:  # root reads a mode-0 file; users cannot
        if os.stat(path).st_mode & 0o444 == 0:
            raise PermissionError(13, "Permission denied", path)
        return real_read(path)

    monkeypatch.setattr(rulefile, "read_rules", read_as_unprivileged_user)
    p = tmp_path / "rules.yaml"
    p.write_text("rules:\n  - name: readable\n")
    p.chmod(0)
    a = CorsAddon()
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_rules=str(p))
        assert a.rule_file.rules is None
        p.chmod(0o644)
        settle(a)
    assert a.rule_file.rules is not None


def touch_later(path: Path, text: str) -> None:
    """Write and make sure the modification time moves even on coarse-grained file systems."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_valid_edit_is_applied(addon: CorsAddon, rules_file: Path) -> None:
    """Changing the file replaces the rules."""
    touch_later(rules_file, "rules:\n  - name: only\n    allow_origins: '*'\n")
    settle(addon)
    assert addon.rule_file.rules is not None
    assert [r.name for r in addon.rule_file.rules.rules] == ["only"]


def test_invalid_edit_keeps_the_last_good_rules(
    addon: CorsAddon, rules_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken edit is logged with file:line and the old rules keep working."""
    caplog.set_level(logging.ERROR, logger="mitmcors")
    touch_later(rules_file, "rules:\n  - name: x\n    preflight: sometimes\n")
    settle(addon)
    assert addon.rule_file.rules is not None
    assert [r.name for r in addon.rule_file.rules.rules] == ["answer", "forward", "dry", "break it"]
    assert f"{rules_file}:3:" in caplog.text
    f = make_flow(path="/forward/x")
    addon.request(f)
    hook(addon, "responseheaders", f)
    addon.response(f)
    assert f.metadata["cors"]["rule"] == "forward"


def test_watcher_reloads_within_two_seconds(rules_file: Path) -> None:
    """With the proxy running, an edit takes effect without any flow or restart."""
    a = CorsAddon()

    async def scenario() -> list[str]:
        with taddons.context(a) as tctx:
            tctx.configure(a, cors_rules=str(rules_file))
            a.running()
            touch_later(rules_file, "rules:\n  - name: reloaded\n")
            for _ in range(40):
                await asyncio.sleep(0.05)
                if a.rule_file.rules and a.rule_file.rules.rules and a.rule_file.rules.rules[0].name == "reloaded":
                    break
            a.done()
            return [r.name for r in a.rule_file.rules.rules] if a.rule_file.rules else []

    # A thread of its own: another suite's fixtures (Playwright's sync API) may keep a loop running here.
    result: list[list[str]] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(scenario())))
    worker.start()
    worker.join(timeout=30)
    assert result == [["reloaded"]]


def test_removing_the_option_drops_the_rules(addon: CorsAddon) -> None:
    """cors_rules='' returns to inspect-only."""
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_rules="")
    assert addon.rule_file.rules is None


def test_rules_file_text_is_dedented_yaml() -> None:
    """The RULES fixture above is itself a valid rule file (guards the other tests)."""
    assert textwrap.dedent(RULES).startswith("rules:")


def test_responseheaders_hook_exists_only_while_rules_are_loaded(tmp_path: Path) -> None:
    """mitmproxy dispatches every hook an addon has to every flow: without rules there is nothing for
    responseheaders to do, so the addon has none (mitmproxy's own lookup: `getattr(addon, name)`, falsy = none)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: local\n    match:\n      host: localhost\n    allow_origins: reflect\n")
    addon = CorsAddon()
    with taddons.context(addon) as tctx:
        assert not getattr(addon, "responseheaders", None)
        tctx.configure(addon, cors_rules=str(rules))
        assert callable(addon.responseheaders)
        tctx.configure(addon, cors_rules="")
        assert not getattr(addon, "responseheaders", None)


_NAMES = st.sampled_from(["Vary", "vary", "Access-Control-Allow-Origin", "X-A", "Content-Type"])
_VALUES = st.sampled_from(["Origin", "*", "a", "b, c", ""])


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.tuples(_NAMES, _VALUES), max_size=8),
    edit=st.lists(st.tuples(_NAMES, st.lists(_VALUES, max_size=3).map(tuple)), max_size=4),
)
def test_one_pass_header_edit_equals_set_all_per_header(
    lines: list[tuple[str, str]], edit: list[tuple[str, tuple[str, ...]]]
) -> None:
    """A rule's headers go on in one pass over the lines, with exactly the result of mitmproxy's
    `Headers.set_all` applied per header in turn."""
    from mitmproxy import http

    from mitmcors.rewrite import _apply
    from mitmcors.rules import HeaderEdit

    one_pass = http.Headers([(n.encode(), v.encode()) for n, v in lines])
    per_header = one_pass.copy()
    _apply(one_pass, HeaderEdit(tuple(edit)))
    for name, values in edit:
        per_header.set_all(name, list(values))
    assert one_pass.fields == per_header.fields
