"""Security findings and `cors.probe` against real CORS middleware, configured the ways users get it wrong and
the right way (tests/middleware/findings_apps.py, and two Express configurations), through a real
``mitmdump -s addons/cors.py``.

For each configuration, on a host of its own (``<case>.example.test``: findings are per server):

1. browser-shaped traffic from the origins it really trusts (and, as other sites' pages would, from unrelated
   ones): a credentialed GET, a PUT preflight and the PUT when it passed. The passive findings on its report
   lines are exactly the expected ones (none for a correct configuration), and the exit summary counts them;
2. ``cors.probe`` on its GET and on its PUT (driven by tests/e2e/findings_probe_driver.py, as a user names
   flows): the origin check class and the finding ids are the expected ones. The servers' wire log shows what the
   probe sent: only to the flow's own host, only GET/OPTIONS (only OPTIONS for the PUT), no Cookie and no
   Authorization, one request per variant;
3. the capture (``-w``) read back with ``mitmdump -nr``: every flow has the same findings as live, and the
   summary the same counts.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness.backend import Backend, Seen
from tests.harness.client import cors_headers, preflight_headers, send
from tests.harness.mitmdump import ADDON, HARNESS_ADDON, Mitmdump, read_back
from tests.harness.report import Report, path_of
from tests.middleware.servers import EXPRESS_SERVER, Server, Servers, express_missing, group, route_wire

pytestmark = pytest.mark.e2e

DRIVER = Path(__file__).resolve().parent / "findings_probe_driver.py"
MARK = ("X-Findings-Probe", "1")
COOKIE = ("Cookie", "session=s3cret-cookie")
AUTHORIZATION = ("Authorization", "Bearer s3cret-token")
TRUSTED = ("https://app.example.test", "https://admin.example.test")
# Pages of other sites calling the API (what makes a reflection sure: several origins of several sites).
UNRELATED = ("https://shop.example.com", "https://news.example.org", "https://blog.example.net")
PROBE_WAIT = 120.0  # an upper bound: the loop ends as soon as every probe is answered

_APPS = (sys.executable, "-m", "tests.middleware.findings_apps")
STARLETTE = Server("findings-starlette", (*_APPS, "starlette"))
FLASK = Server("findings-flask", (*_APPS, "flask"))


def django(config: str) -> Server:
    return Server(f"findings-django-{config}", (*_APPS, "django"))


@dataclass(frozen=True)
class Case:
    id: str
    server: Server
    config: str
    check: str  # the probe's origin check class, for the GET and the PUT
    probe: frozenset[str]  # the probe's finding ids
    passive: frozenset[str] = frozenset()  # the passive finding ids on its report lines
    null_page: bool = False  # a page with an opaque origin (a sandboxed iframe) calls it too

    @property
    def host(self) -> str:
        return f"{self.id}.example.test"

    @property
    def flawed(self) -> bool:
        return bool(self.probe)


def ids(*names: str) -> frozenset[str]:
    return frozenset(names)


CASES = (
    Case("starlette-regex-dot", STARLETTE, "regex-unescaped-dot", "flawed", ids("origin-regex-unescaped-dot")),
    Case("starlette-regex-escaped", STARLETTE, "regex-escaped", "exact", ids()),
    Case(
        "starlette-null",
        STARLETTE,
        "origins-null",
        "flawed",
        ids("null-origin-trusted-with-credentials"),
        ids("null-origin-trusted-with-credentials"),
        null_page=True,
    ),
    Case("starlette-list", STARLETTE, "origins-list", "exact", ids(), null_page=True),
    Case("hand-startswith", STARLETTE, "hand-startswith", "flawed", ids("origin-check-prefix-match")),
    # endswith("example.test") admits http://app.example.test too.
    Case(
        "hand-endswith", STARLETTE, "hand-endswith", "flawed", ids("origin-check-suffix-match", "http-origin-trusted")
    ),
    Case("hand-exact", STARLETTE, "hand-exact", "exact", ids()),
    Case("flask-regex-unanchored", FLASK, "origins-regex-unanchored", "flawed", ids("origin-check-prefix-match")),
    Case("flask-regex-anchored", FLASK, "origins-regex-anchored", "exact", ids()),
    Case(
        "django-regexes-unanchored",
        django("origin-regexes-unanchored"),
        "origin-regexes-unanchored",
        "flawed",
        ids("origin-check-prefix-match"),
    ),
    Case(
        "django-regexes-anchored",
        django("origin-regexes-anchored"),
        "origin-regexes-anchored",
        "exact",
        ids(),
    ),
    Case(
        "express-origin-true",
        EXPRESS_SERVER,
        "origin-true-credentials",
        "reflect-any",
        ids("origin-reflected-with-credentials"),
        ids("origin-reflected-with-credentials"),
    ),
    Case("express-origin-list", EXPRESS_SERVER, "origin-array-credentials-exposed", "exact", ids()),
)
EXPRESS_MISSING = express_missing()
RUN_CASES = tuple(c for c in CASES if c.server is not EXPRESS_SERVER or EXPRESS_MISSING is None)
# Addon bugs this suite shows, by case: the probe's classification is wrong there until they are fixed.
PROBE_BUGS: dict[str, str] = {}
PROBE_CASES = [
    pytest.param(c, id=c.id, marks=pytest.mark.xfail(reason=PROBE_BUGS[c.id], strict=True))
    if c.id in PROBE_BUGS
    else pytest.param(c, id=c.id)
    for c in RUN_CASES
]
# Severity of each probe finding here: origins anyone can have, with credentials; http ones need the network.
SEVERITY = {"http-origin-trusted": "medium"}


@dataclass
class Run:
    """Everything the session produced: live report and summary, probe results, wire, read-back."""

    ports: dict[str, int]
    live: list[dict[str, Any]]
    live_summary: dict[str, Any]
    output: str
    probed: dict[str, tuple[str, str]]  # case id -> (GET flow id, PUT flow id)
    results: dict[str, dict[str, Any]]  # probed flow id -> ProbeResult.as_dict()
    page_wire: list[Seen]  # what the servers received from the pages
    probe_wire: list[Seen]  # what the servers received once the probes were asked for
    back: list[dict[str, Any]]
    back_summary: dict[str, Any]
    back_output: str

    def base(self, case: Case) -> str:
        return f"https://{case.host}:{self.ports[case.server.name]}/s/{case.id}"

    def lines(self, case: Case, lines: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        return [line for line in (self.live if lines is None else lines) if path_of(line).startswith(f"/s/{case.id}/")]


def finding_ids(lines: list[dict[str, Any]]) -> set[str]:
    return {f["id"] for line in lines for f in line.get("findings") or ()}


def browse(proxy: Mitmdump, base: str, case: Case) -> tuple[str, str]:
    """The pages' traffic; then the GET and the PUT to probe (marked). Returns the marked requests' paths."""
    origins = [*TRUSTED, *(["null"] if case.null_page else []), *UNRELATED]
    for origin in origins:
        site = "cross-site" if origin in UNRELATED or origin == "null" else "same-site"
        headers = [*cors_headers(origin, site=site), COOKIE]
        assert proxy.send("GET", f"{base}/get", headers).status == 200
        pre = proxy.send("OPTIONS", f"{base}/item", preflight_headers("PUT", "x-custom", origin))
        if pre.header("Access-Control-Allow-Origin") == origin:
            assert proxy.send("PUT", f"{base}/item", [*headers, ("X-Custom", "1")], b"x").status == 200
    page = [*cors_headers(TRUSTED[0], site="same-site"), COOKIE]
    assert proxy.send("GET", f"{base}/get", [*page, MARK]).status == 200
    assert proxy.send("PUT", f"{base}/item", [*page, AUTHORIZATION, ("X-Custom", "1"), MARK], b"x").status == 200
    return f"/s/{case.id}/get", f"/s/{case.id}/item"


def control(proxy: Mitmdump, path: str) -> bytes:
    reply = send(proxy.port, "GET", f"http://findings.control{path}")
    assert reply.status == 200, reply.body
    return reply.body


@pytest.fixture(scope="module")
def run(confdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("findings-middleware")
    capture = work / "live.flows"
    with Backend() as backend:
        servers = Servers(work, route_wire(backend))
        try:
            servers.start(group([(c.server, f"/s/{c.id}", c.config) for c in RUN_CASES]))
            args = ["--set", "ssl_insecure=true", "-w", str(capture), "--set", "cors_probe_rate=1000"]
            proxy = Mitmdump(work, args, name="live", confdir=confdir, scripts=(ADDON, HARNESS_ADDON, DRIVER))
            with proxy:
                marked: dict[str, tuple[str, str]] = {}
                for case in RUN_CASES:
                    base = f"https://{case.host}:{servers.ports[case.server.name]}/s/{case.id}"
                    marked[case.id] = browse(proxy, base, case)
                before = len(backend.requests("/s/"))
                control(proxy, "/probe")
                deadline = time.monotonic() + PROBE_WAIT
                while True:
                    results = json.loads(control(proxy, "/results"))
                    if len(results) >= 2 * len(RUN_CASES) or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                assert len(results) == 2 * len(RUN_CASES), f"probes unfinished: {sorted(results)}\n{proxy.output()}"
                page_wire, probe_wire = backend.requests("/s/")[:before], backend.requests("/s/")[before:]
            live = proxy.report.lines()
            live_summary = json.loads(proxy.report.summary_path.read_text())
            output = proxy.output()
        finally:
            servers.close()
    probed = {}
    for case_id, (get_path, put_path) in marked.items():
        flows = {}
        for line in live:
            if line["flow_id"] in results:
                flows[(path_of(line), line["method"])] = line["flow_id"]
        probed[case_id] = (flows[(get_path, "GET")], flows[(put_path, "PUT")])
    back, back_output = read_back(capture, work, confdir, "back")
    back_summary = json.loads(Report(work / "back.report.jsonl").summary_path.read_text())
    yield Run(
        servers.ports,
        live,
        live_summary,
        output,
        probed,
        results,
        page_wire,
        probe_wire,
        back,
        back_summary,
        back_output,
    )


def test_express_runs() -> None:
    if EXPRESS_MISSING is not None:
        pytest.skip(f"Express cases not run: {EXPRESS_MISSING}")


@pytest.mark.parametrize("case", RUN_CASES, ids=lambda c: c.id)
def test_passive_findings(run: Run, case: Case) -> None:
    """The pages' own traffic: the findings it can show (reflection, null), none on a correct configuration."""
    lines = run.lines(case)
    assert len(lines) >= 2 * (len(TRUSTED) + len(UNRELATED)), lines
    assert finding_ids(lines) == case.passive, [(line["url"], line.get("findings")) for line in lines]
    for line in lines:
        for f in line.get("findings") or ():
            assert set(f) >= {"id", "severity", "title", "evidence", "fix"}
            assert f["severity"] == "high", f  # with credentials, reachable from any site
            assert line["flow_id"] in f["evidence"] or len(f["evidence"]) == 10, (line["flow_id"], f)


def test_summary_counts_the_findings(run: Run) -> None:
    """The exit summary counts each finding id once per server and route: here the routes of the flawed
    configurations it is seen on."""
    expected: dict[str, int] = {}
    for case in RUN_CASES:
        for id in case.passive:
            expected[id] = expected.get(id, 0) + len({path_of(line) for line in run.lines(case)})
    assert run.live_summary["findings"] == expected, run.live_summary


@pytest.mark.parametrize("case", PROBE_CASES)
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_probe_classifies_the_origin_check(run: Run, case: Case, method: str) -> None:
    flow_id = run.probed[case.id][0 if method == "GET" else 1]
    result = run.results[flow_id]
    trusted = [(v["kind"], v["origin"]) for v in result["variants"] if v["trusted"]]
    assert result["check"] == case.check, trusted
    assert {f["id"] for f in result["findings"]} == case.probe, trusted
    assert result["server"] == run.base(case).split("/s/")[0]
    baseline = [v for v in result["variants"] if v["kind"] == "baseline"]
    assert baseline and all(v["trusted"] and v["with_credentials"] for v in baseline), baseline
    for f in result["findings"]:
        assert f["severity"] == SEVERITY.get(f["id"], "high"), f
        assert flow_id in f["evidence"]
    assert f"{result['server']}{result['route']} (flow {flow_id}): origin check {case.check}" in run.output


@pytest.mark.parametrize("case", RUN_CASES, ids=lambda c: c.id)
def test_probe_sends_only_safe_uncredentialed_requests_to_the_flows_host(run: Run, case: Case) -> None:
    """What reached the server once the probe was asked for: one request per variant, to the flow's own host,
    GET (for the GET) or OPTIONS only (for the PUT), never the user's Cookie or Authorization."""
    host = f"{case.host}:{run.ports[case.server.name]}"
    puts = [dict((k.lower(), v) for k, v in s.headers) for s in run.page_wire if s.path == f"/s/{case.id}/item"]
    assert any("cookie" in h and "authorization" in h for h in puts), "the probed PUT carried no credentials"
    seen = [s for s in run.probe_wire if s.path.startswith(f"/s/{case.id}/")]
    for method, path, flow_id in (("GET", "get", run.probed[case.id][0]), ("OPTIONS", "item", run.probed[case.id][1])):
        variants = {v["origin"] for v in run.results[flow_id]["variants"]}
        sent = [s for s in seen if s.path == f"/s/{case.id}/{path}"]
        assert len(sent) == len(variants), [(s.method, dict(s.headers).get("Origin")) for s in sent]
        for s in sent:
            names = {k.lower(): v for k, v in s.headers}
            assert s.method == method, s
            assert names.get("host") == host, s
            assert "cookie" not in names and "authorization" not in names, s
            assert names.get("origin") in variants, s
            if method == "OPTIONS":
                assert names.get("access-control-request-method") == "PUT", s
                assert s.body == b"", s
    assert len(seen) == sum(len(run.results[f]["variants"]) for f in run.probed[case.id])


def test_probe_requests_go_nowhere_else(run: Run) -> None:
    """Every request that reached any server after the probes were asked for was a probe of one of the cases,
    to that case's own host."""
    hosts = {f"/s/{c.id}/": f"{c.host}:{run.ports[c.server.name]}" for c in RUN_CASES}
    for s in run.probe_wire:
        prefix = "/".join(s.path.split("/")[:3]) + "/"
        assert dict((k.lower(), v) for k, v in s.headers).get("host") == hosts[prefix], s
    assert len(run.probe_wire) == sum(len(r["variants"]) for r in run.results.values())


@pytest.mark.parametrize("case", RUN_CASES, ids=lambda c: c.id)
def test_read_back_has_the_same_findings(run: Run, case: Case) -> None:
    """``mitmdump -nr`` on the live capture: the same flows, each with the same findings (ids and evidence)."""
    live = {line["flow_id"]: line.get("findings") for line in run.lines(case)}
    back = {line["flow_id"]: line.get("findings") for line in run.lines(case, run.back)}
    assert back == live


def test_read_back_summary_counts_the_same_findings(run: Run) -> None:
    assert run.back_summary["findings"] == run.live_summary["findings"]
    assert {line["flow_id"] for line in run.back} == {line["flow_id"] for line in run.live}
