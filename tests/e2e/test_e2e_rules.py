"""Rule files in a real mitmdump: rewrites on the wire, both preflight modes, hot reload, invalid edits."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.backend import Answer, Backend
from tests.harness.client import PAGE_ORIGIN, cors_headers, preflight_headers
from tests.harness.mitmdump import ADDON, Mitmdump

pytestmark = pytest.mark.e2e

ACAO = "Access-Control-Allow-Origin"

RULES = """\
rules:
  - name: answered
    match: {path: /rules/answer/*}
    allow_origins: reflect
    preflight: answer
  - name: forwarded
    match: {path: /rules/forward/*}
    allow_origins: ["http://localhost:*"]
    allow_methods: [PUT]
    allow_headers: [Content-Type]
"""


def write_rules(path: Path, text: str) -> None:
    """Write the rule file and move its mtime forward, so the change is visible on any file system."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("rules") / "rules.yaml"
    p.write_text(RULES)
    return p


@pytest.fixture(scope="module")
def ruled(rules_file: Path, confdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mitmdump]:
    with Mitmdump(tmp_path_factory.mktemp("ruled"), ["--set", f"cors_rules={rules_file}"], "ruled", confdir) as p:
        yield p


def test_answered_preflight_never_reaches_the_backend(ruled: Mitmdump, backend: Backend) -> None:
    """preflight: answer replies 204 in the proxy; the backend sees no OPTIONS."""
    path = backend.route("/rules/answer/a", OPTIONS=Answer(405))
    reply = ruled.send("OPTIONS", backend.a + path, preflight_headers("PUT", "content-type"))
    assert reply.status == 204
    assert reply.header(ACAO) == PAGE_ORIGIN
    assert backend.requests_to(path) == []
    line = ruled.lines_for(path, 1)[0]
    assert (line["verdict"], line["rule"]) == ("allowed", "answered")


def test_forwarded_preflight_is_fixed_and_reports_the_server(ruled: Mitmdump, backend: Backend) -> None:
    """preflight: forward sends the OPTIONS upstream, turns its 404 into 204, and keeps the server's verdict."""
    path = backend.route("/rules/forward/b", OPTIONS=Answer(404, [("Content-Type", "text/plain")], b"no route"))
    reply = ruled.send("OPTIONS", backend.a + path, preflight_headers("PUT", "content-type"))
    assert reply.status == 204
    assert reply.header("Access-Control-Allow-Methods") == "PUT"
    assert len(backend.requests_to(path)) == 1
    line = ruled.lines_for(path, 1)[0]
    assert line["verdict"] == "allowed"
    assert line["upstream"]["reason"] == "PreflightMissingAllowOriginHeader"


def test_real_error_status_survives_with_cors_headers(ruled: Mitmdump, backend: Backend) -> None:
    """An actual request's 500 stays a 500 but gains CORS headers, so the page sees the real error."""
    path = backend.route("/rules/forward/c", GET=Answer(500, [("Content-Type", "text/plain")], b"boom"))
    reply = ruled.send("GET", backend.a + path, cors_headers())
    assert reply.status == 500
    assert reply.body == b"boom"
    assert reply.header(ACAO) == PAGE_ORIGIN
    line = ruled.lines_for(path, 1)[0]
    assert (line["verdict"], line["upstream"]["reason"]) == ("allowed", "MissingAllowOriginHeader")


def test_valid_edit_applies_and_invalid_edit_keeps_the_last_good_rules(
    ruled: Mitmdump, backend: Backend, rules_file: Path
) -> None:
    """An edit takes effect within two seconds; a broken edit is logged with file:line and changes nothing."""
    path = backend.route("/rules/reload/d", GET=Answer(200))
    url = backend.a + path
    assert ruled.send("GET", url, cors_headers()).header(ACAO) is None

    write_rules(rules_file, RULES + "  - name: reloaded\n    match: {path: /rules/reload/*}\n    allow_origins: '*'\n")
    deadline = time.monotonic() + 2.5
    while ruled.send("GET", url, cors_headers()).header(ACAO) != "*":
        assert time.monotonic() < deadline, "the valid edit did not apply within 2.5 s"
        time.sleep(0.1)

    mark = ruled.mark()
    write_rules(rules_file, "rules:\n  - name: broken\n    preflight: sometimes\n")
    deadline = time.monotonic() + 2.5
    while f"{rules_file}:3:" not in ruled.output_since(mark):
        assert time.monotonic() < deadline, f"no error logged:\n{ruled.output_since(mark)}"
        time.sleep(0.1)
    assert ruled.send("GET", url, cors_headers()).header(ACAO) == "*"  # still the last good rules
    write_rules(rules_file, RULES)


def test_broken_rule_file_at_start_stops_mitmdump_with_file_and_line(
    confdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """mitmdump does not start on an invalid rule file; it says where and how to fix it, without a traceback."""
    work = tmp_path_factory.mktemp("broken")
    bad = work / "bad.yaml"
    bad.write_text("rules:\n  - name: a\n    allow_origins: '*'\n    allow_credentials: true\n")
    p = Mitmdump(work, ["--set", f"cors_rules={bad}"], "broken", confdir)
    with contextlib.suppress(RuntimeError):  # it may exit before it listens
        p.start()
    assert p.proc is not None
    assert p.proc.wait(timeout=20) != 0
    p.kill()
    out = p.output()
    assert f"{bad}:3:" in out
    assert "allow_origins: reflect or a list of origins" in out
    # No traceback of ours (mitmproxy itself may print one when the harness probes its port while it exits).
    assert "mitmcors/" not in out, out


def without_pyyaml(workdir: Path) -> Path:
    """A script that makes `import yaml` fail, to load before addons/cors.py."""
    blocker = workdir / "no_pyyaml.py"
    blocker.write_text("import sys\n\nsys.modules['yaml'] = None  # as in a build without PyYAML\naddons = []\n")
    return blocker


def test_rules_load_without_pyyaml_as_in_standalone_builds(
    backend: Backend, confdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """mitmproxy's standalone binaries ship ruamel.yaml but not PyYAML: the rule file still loads and applies."""
    work = tmp_path_factory.mktemp("no-pyyaml")
    rules = work / "rules.yaml"
    rules.write_text("rules:\n  - name: via ruamel\n    match: {path: /rules/ruamel/*}\n    allow_origins: '*'\n")
    scripts = (without_pyyaml(work), ADDON)
    with Mitmdump(work, ["--set", f"cors_rules={rules}"], "no-pyyaml", confdir, scripts) as p:
        path = backend.route("/rules/ruamel/e", GET=Answer(200))
        assert p.send("GET", backend.a + path, cors_headers()).header(ACAO) == "*"
        assert "1 rule(s) loaded" in p.output()
        assert "(read with ruamel.yaml)" in p.output()
        assert "Cannot load cors_rules" not in p.output()
