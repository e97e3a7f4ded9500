"""cors.suggest end to end, with Chromium as the truth: a browsing run against an unready backend is recorded, the
suggested rule file is applied, and the same page then works, while a page from an origin that was not observed
is still refused.

1. The page (``APP``, or the credentialed ``SAPP`` pair) calls an API that answers no CORS header at all, and 404
   to every preflight: Chromium blocks every request, and the preflighted PUT and DELETE are never sent.
2. The flows mitmdump holds (harness_addon's control endpoint: the request and response lines and the live
   ``metadata["cors"]``) are rebuilt as mitmproxy flows, turned into observations by ``observation_from_flow``,
   and the ``rule`` format of their policy is written to a file.
3. A mitmdump started with ``--set cors_rules=<that file>`` serves the same page JS in a fresh browser context:
   every request passes in Chromium (CDP reports no error), the page reads the exposed headers, and every report
   line is allowed in Chromium's and in Firefox's verdict model. A page from another origin, through the same
   mitmdump, is refused on every request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import http
from mitmproxy.test import tflow, tutils

from mitmcors.rulefile import compile_filter
from mitmcors.rules import parse_rules
from mitmcors.suggest import Observation, observation_from_flow, render, suggest
from tests.harness.backend import Answer, Route
from tests.harness.browser import CdpRecorder, Env, live_flows, open_context, open_page, register, settle
from tests.harness.mitmdump import Mitmdump

pytestmark = pytest.mark.browser

APP = "http://app.localhost"
API = "http://api.localhost"
# Credentialed: a same-site https pair (Chromium drops third-party cookies in fresh contexts: BROWSERS.md §7.2).
SAPP = "https://app.example.test"
SAPI = "https://api.example.test"
OTHER_PLAIN = "http://other.localhost"
OTHER_SECURE = "https://other.example.test"
COOKIE_HOST = "api.example.test"

UNREADY = Answer(status=404, body=b"no such route")
ITEMS = Answer(headers=[("X-Total-Count", "3"), ("Cache-Control", "no-store")], body=b"[]")
SEARCH = Answer(headers=[("X-Request-Id", "r-1")], body=b"found")
DELETED = Answer(status=204, body=b"")
ROUTES = {
    "/items": Route({"OPTIONS": UNREADY, "*": ITEMS}),
    "/items/1": Route({"OPTIONS": UNREADY, "*": DELETED}),
    "/search": Route({"OPTIONS": UNREADY, "*": SEARCH}),
}
# What the page does: (path, fetch init, response headers it reads).
STEPS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("/items", {}, ["x-total-count"]),
    ("/items", {"method": "PUT", "headers": {"Content-Type": "application/json", "X-Req": "1"}, "body": "{}"}, []),
    ("/items/1", {"method": "DELETE"}, []),
    ("/search", {}, ["x-request-id"]),
]


@dataclass(frozen=True)
class Case:
    page: str
    api: str
    other: str
    credentials: bool

    @property
    def slug(self) -> str:
        return "sg-cookie" if self.credentials else "sg-plain"

    def js(self) -> str:
        calls = []
        for path, init, read in STEPS:
            full = {**init, "credentials": "include"} if self.credentials else init
            calls.append(f'await F("{self.api}" + P + "{path}", {json.dumps(full)}, {json.dumps(read)})')
        return "return [" + ", ".join(calls) + "];"


CASES = [
    pytest.param(Case(APP, API, OTHER_PLAIN, credentials=False), id="plain"),
    pytest.param(Case(SAPP, SAPI, OTHER_SECURE, credentials=True), id="credentialed"),
]


@dataclass
class Browse:
    js: Any
    cdp: list[Any]

    def evidence(self) -> str:
        return "\n".join([f"page JS: {json.dumps(self.js)}", *("  " + r.describe() for r in self.cdp)])


def browse(env: Env, c: Case, page_origin: str, proxy_url: str | None) -> Browse:
    """Run the case's page JS from ``page_origin`` in a fresh context (through ``proxy_url``, else the session's
    mitmdump); wait until Chromium settled every request."""
    prefix = f"/s/{c.slug}"
    context = open_context(env, [COOKIE_HOST] if c.credentials else [], proxy_url)
    try:
        page, recorder = open_page(context, page_origin + "/")
        assert isinstance(recorder, CdpRecorder)
        js = page.evaluate(f"async (P) => {{ {c.js()} }}", prefix)
        settle(page, recorder, prefix + "/")
        return Browse(js, recorder.under(prefix + "/"))
    finally:
        context.close()


def as_flow(entry: dict[str, Any]) -> http.HTTPFlow:
    """A flow as mitmdump held it (harness_addon's description), with its live ``metadata["cors"]``."""
    f = tflow.tflow(resp=entry["status"] is not None)
    f.id = entry["flow_id"]
    f.request = tutils.treq(
        method=entry["method"].encode(),
        scheme=entry["scheme"].encode(),
        host=entry["host"],
        port=entry["port"],
        path=entry["path"].encode(),
    )
    f.request.headers = http.Headers([(k.encode(), v.encode()) for k, v in entry["request_headers"]])
    if entry["status"] is not None:
        f.response = tutils.tresp(status_code=entry["status"])
        f.response.headers = http.Headers([(k.encode(), v.encode()) for k, v in entry["response_headers"]])
    f.metadata["cors"] = entry["cors"]
    return f


def recorded_observations(env: Env, c: Any) -> list[Observation]:
    """Step 1: the unready run through the session's mitmdump (every request blocked), as observations."""
    register(env.backend, f"/s/{c.slug}", ROUTES)
    before = browse(env, c, c.page, None)
    passed = [r for r in before.cdp if not r.is_preflight and not r.cors_error]
    assert not passed, f"the unready backend should fail every request\n{before.evidence()}"
    flows = [as_flow(e) for e in live_flows(env.proxy_url, f"/s/{c.slug}/") if e.get("cors")]
    observations = [o for f in flows if (o := observation_from_flow(f)) is not None]
    assert {o.kind for o in observations} == {"preflight", "actual"}
    return observations


def recorded_rule_file(env: Env, c: Case, tmp_path: Path) -> tuple[str, Path]:
    """Step 1 and 2: the unready run, and the rule file suggested from it."""
    text = render(suggest(recorded_observations(env, c)), "rule")
    rules = parse_rules(text, "suggested.yaml", compile_filter)
    assert rules.warnings == ()
    path = tmp_path / "suggested.yaml"
    path.write_text(text, encoding="utf-8")
    return text, path


def problems_of(run: Browse, want_allowed: bool) -> list[str]:
    """Requests whose fate is not the wanted one. A refused request is the page's (Chromium reports a failed
    preflight on the request it announced, and the OPTIONS itself as an HTTP success)."""
    out = []
    for r in run.cdp:
        if r.is_preflight and not want_allowed:
            continue
        allowed = not r.cors_error and not r.failed
        if allowed is not want_allowed:
            out.append(f"{r.describe()} (want {'allowed' if want_allowed else 'blocked'})")
    return out


def fail(problems: Sequence[str], *evidence: str) -> None:
    if problems:
        raise AssertionError("\n- ".join(["", *problems]) + "\n\n" + "\n\n".join(evidence))


@pytest.mark.parametrize("c", CASES)
def test_suggested_rule_makes_the_recorded_run_pass_and_refuses_other_origins(
    env: Env, mitmdump_factory: Callable[..., Mitmdump], tmp_path: Path, c: Case
) -> None:
    text, path = recorded_rule_file(env, c, tmp_path)
    proxy = mitmdump_factory("--set", f"cors_rules={path}")
    ruled = Env(backend=env.backend, proxy_url=proxy.url, report=proxy.report, browser=env.browser)

    after = browse(ruled, c, c.page, proxy.url)
    fail(problems_of(after, True), after.evidence(), text)
    assert sum(not r.is_preflight for r in after.cdp) == len(STEPS), after.evidence()
    assert after.js[0]["headers"] == {"x-total-count": "3"}, "X-Total-Count is exposed"
    assert after.js[3]["headers"] == {"x-request-id": "r-1"}, "X-Request-Id is exposed"
    lines = proxy.report.wait_lines(f"/s/{c.slug}/", len(STEPS) + 2)  # and a preflight each for PUT and DELETE
    fail(
        [
            f"{ln['method']} {ln['url']}: {ln['verdict']} {ln['reason']} / Firefox {ln['firefox_reason']}"
            for ln in lines
            if ln["verdict"] != "allowed" or ln["firefox_reason"] is not None or not ln["rule"]
        ],
        after.evidence(),
    )

    other = browse(ruled, c, c.other, proxy.url)
    fail(problems_of(other, False), other.evidence(), text)
    assert other.cdp, "the other origin's page sent its requests"


@dataclass(frozen=True)
class FixCase:
    """A PUT with two custom headers to an API that answers its preflight 404 and sends no CORS header."""

    slug: str
    credentials: bool = False

    def js(self) -> str:
        init = {"method": "PUT", "headers": {"Content-Type": "application/json", "X-A": "1", "X-B": "2"}, "body": "{}"}
        return f'return [await F("{API}" + P + "/thing", {json.dumps(init)}, [])];'


def test_complete_fix_makes_the_request_pass_on_the_first_try(env: Env) -> None:
    """The blocked preflight's `fix` names every missing piece at once: a server that applies exactly that fix
    (and nothing else) makes the PUT pass in Chromium on the first try (#9)."""
    broken = FixCase("fix-before")
    register(env.backend, f"/s/{broken.slug}", {"/thing": Route({"OPTIONS": UNREADY, "*": Answer(body=b"{}")})})
    before = browse(env, broken, APP, None)  # type: ignore[arg-type]
    assert [r for r in before.cdp if not r.is_preflight and r.cors_error], before.evidence()
    preflight = next(line for line in env.report.wait_lines(f"/s/{broken.slug}/", 1) if line["kind"] == "preflight")
    fix = preflight["fix"]
    assert fix["preflight"]["status"] == 204 and len(fix["preflight"]["set"]) >= 4, fix

    fixed = FixCase("fix-after")
    pre, resp = fix["preflight"], fix["response"]
    answers = {
        "OPTIONS": Answer(status=pre["status"], headers=list(pre["set"].items()), body=b""),
        "*": Answer(headers=list(resp["set"].items()), body=b"{}"),
    }
    register(env.backend, f"/s/{fixed.slug}", {"/thing": Route(answers)})
    after = browse(env, fixed, APP, None)  # type: ignore[arg-type]
    fail(problems_of(after, True), after.evidence(), json.dumps(fix, indent=2))
    assert [r for r in after.cdp if not r.is_preflight], after.evidence()
