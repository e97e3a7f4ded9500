"""cors.suggest end to end in each framework's format, with Chromium as the truth: the suggested configuration,
applied to the real middleware package, makes a recorded browsing run pass, and an origin that was not observed
is still refused.

1. As in test_suggest_browser.py: the page calls an unready API (no CORS header, 404 to every preflight) through
   the session's mitmdump; Chromium blocks every request. The flows mitmdump holds become observations (recorded
   once per mode, shared by every framework).
2. The API moves to a real server on a free loopback port (harness_addon resolves ``api.localhost:<port>`` and
   ``api.example.test:<port>`` to it): the observations get that port, and their suggestion is rendered in the
   framework's format. The server answers every route, method, status, header and body as the unready backend
   did, and its only CORS configuration is the rendered snippet, applied as written: Starlette, FastAPI, flask-cors
   and django-cors-headers by tests/middleware/suggested_apps.py, Express ``cors`` by
   tests/middleware/express/suggested.js, nginx (Debian's, a user process on loopback) with the snippet as its
   configuration, its content marker replaced by a ``proxy_pass`` to the unready backend itself (and, for https,
   the certificate lines the snippet leaves as a comment).
3. The same page JS, in a fresh Chromium context through the session's mitmdump (no rules), calls that server:
   every request passes (CDP reports no error), the page reads the exposed headers, every report line is
   allowed in Chromium's and Firefox's verdict models. The same page from an origin that was not observed is
   refused on every request.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from mitmcors.suggest import Observation, render, suggest
from mitmcors.suggest_formats import NGINX_CONTENT_MARKER
from tests.browser.conftest import DEFAULTS
from tests.browser.test_suggest_browser import (
    API,
    APP,
    OTHER_PLAIN,
    OTHER_SECURE,
    ROUTES,
    SAPI,
    SAPP,
    STEPS,
    Case,
    browse,
    fail,
    problems_of,
    recorded_observations,
)
from tests.harness.backend import make_self_signed
from tests.harness.browser import Env
from tests.harness.ports import free_port
from tests.middleware.servers import CERT_HOSTS, EXPRESS, REPO, express_missing
from tests.test_suggest import NGINX_CONF, nginx_binary, started

pytestmark = pytest.mark.browser

FRAMEWORKS = ("starlette", "fastapi", "flask", "django", "express", "nginx")
FORMAT = {"fastapi": "starlette"}  # FastAPI takes Starlette's CORSMiddleware snippet


@dataclass(frozen=True)
class FrameworkCase(Case):
    """test_suggest_browser's case under a path of its own (its recording is not mixed with that test's)."""

    @property
    def slug(self) -> str:
        return "sgf-cookie" if self.credentials else "sgf-plain"


MODES = {
    "plain": FrameworkCase(APP, API, OTHER_PLAIN, credentials=False),
    "credentialed": FrameworkCase(SAPP, SAPI, OTHER_SECURE, credentials=True),
}
CASES = [pytest.param(fw, mode, id=f"{fw} {mode}") for fw in FRAMEWORKS for mode in MODES]


@pytest.fixture(scope="module")
def recorded() -> dict[str, list[Observation]]:
    """Per mode, the observations of the unready run (recorded on first use, by ``observations_of``)."""
    return {}


def observations_of(env: Env, c: FrameworkCase, cache: dict[str, list[Observation]]) -> list[Observation]:
    if c.slug not in cache:
        cache[c.slug] = recorded_observations(env, c)
    return cache[c.slug]


def answers_table(prefix: str) -> dict[str, dict[str, list[Any]]]:
    """What the unready backend answers (its default header lines included), OPTIONS left out: the server's own."""
    table: dict[str, dict[str, list[Any]]] = {}
    for sub, route in ROUTES.items():
        for method, a in route.replies.items():
            if method == "OPTIONS":
                continue
            named = {k.lower() for k, _ in a.headers}
            headers = [*a.headers, *((k, v) for k, v in DEFAULTS if k.lower() not in named)]
            table.setdefault(prefix + sub, {})[method] = [a.status, [list(h) for h in headers], a.body.decode()]
    return table


def nginx_conf(snippet: str, port: int, backend_port: int, work: Path, tls: tuple[Path, Path] | None) -> Path:
    """nginx.conf with the snippet as its http block's content; only what the snippet leaves to the user is
    filled in: the listen address (loopback), the location's content, the certificate."""
    listen = f"listen {port}{' ssl' if tls else ''};"
    assert listen in snippet, snippet
    content = snippet.replace(listen, listen.replace(f"listen {port}", f"listen 127.0.0.1:{port}"))
    content = content.replace(NGINX_CONTENT_MARKER, f"proxy_pass http://127.0.0.1:{backend_port};")
    if tls:
        placeholder = "# ssl_certificate ...; ssl_certificate_key ...;"
        assert placeholder in content, snippet
        content = content.replace(placeholder, f"ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]};")
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=work, snippet=content), encoding="utf-8")
    return conf


def command_for(framework: str, port: int, snippet: Path, answers: Path, tls: tuple[Path, Path] | None) -> list[str]:
    flags = ["--port", str(port), "--snippet", str(snippet), "--answers", str(answers)]
    if tls:
        flags += ["--cert", str(tls[0]), "--key", str(tls[1])]
    if framework == "express":
        return ["node", str(EXPRESS / "suggested.js"), *flags]
    return [sys.executable, "-m", "tests.middleware.suggested_apps", framework, *flags]


def report_lines(env: Env, prefix: str, origin: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The report lines under ``prefix`` of flows to ``origin``, once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [ln for ln in env.report.lines(prefix) if ln["url"].startswith(origin + "/")]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


@pytest.mark.parametrize(("framework", "mode"), CASES)
def test_suggested_snippet_in_the_real_middleware_makes_the_recorded_run_pass(
    env: Env, recorded: dict[str, list[Observation]], tmp_path: Path, framework: str, mode: str
) -> None:
    binary = nginx_binary()
    if framework == "express" and (why := express_missing()):
        pytest.skip(why)
    if framework == "nginx" and binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    c = MODES[mode]
    observations = observations_of(env, c, recorded)

    port = free_port()
    text = render(suggest([replace(o, port=port) for o in observations]), FORMAT.get(framework, framework))
    tls = make_self_signed(tmp_path, CERT_HOSTS) if c.credentials else None
    if framework == "nginx":
        assert binary is not None
        conf = nginx_conf(text, port, env.backend.http_port, tmp_path, tls)
        checked = subprocess.run([binary, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr + "\n" + conf.read_text()
        command = [binary, "-p", str(tmp_path), "-c", str(conf)]
    else:
        snippet = tmp_path / "snippet.txt"
        snippet.write_text(text, encoding="utf-8")
        answers = tmp_path / "answers.json"
        answers.write_text(json.dumps(answers_table(f"/s/{c.slug}")), encoding="utf-8")
        command = command_for(framework, port, snippet, answers, tls)
    server_env = {**os.environ, "PYTHONPATH": str(REPO)}

    moved = dataclasses.replace(c, api=f"{c.api}:{port}")
    with started(command, port, tmp_path, server_env):
        after = browse(env, moved, c.page, None)
        lines = report_lines(env, f"/s/{c.slug}/", moved.api, len(STEPS) + 2)  # and a preflight each: PUT, DELETE
        other = browse(env, moved, c.other, None)
    fail(problems_of(after, True), after.evidence(), text)
    assert sum(not r.is_preflight for r in after.cdp) == len(STEPS), after.evidence()
    assert sum(r.is_preflight for r in after.cdp) == 2, "the PUT and the DELETE are preflighted\n" + after.evidence()
    assert after.js[0]["headers"] == {"x-total-count": "3"}, "X-Total-Count is exposed"
    assert after.js[3]["headers"] == {"x-request-id": "r-1"}, "X-Request-Id is exposed"
    assert [(r["status"], r["body"]) for r in after.js] == [(200, "[]"), (200, "[]"), (204, ""), (200, "found")], (
        after.evidence()
    )
    assert len(lines) == len(STEPS) + 2, lines
    fail(
        [
            f"{ln['method']} {ln['url']}: {ln['verdict']} {ln['reason']} / Firefox {ln['firefox_reason']}"
            for ln in lines
            if ln["verdict"] != "allowed" or ln["firefox_reason"] is not None
        ],
        after.evidence(),
        text,
    )
    fail(problems_of(other, False), other.evidence(), text)
    refused = [r for r in other.cdp if not r.is_preflight]
    assert len(refused) == len(STEPS) and all(r.cors_error for r in refused), "refused by CORS\n" + other.evidence()
