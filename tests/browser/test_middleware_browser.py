"""Real CORS middleware, configured the way its users configure it, judged against Chromium flow by flow.

Each configuration (tests/middleware/: Starlette/FastAPI ``CORSMiddleware`` under uvicorn, flask-cors and
django-cors-headers under werkzeug, Express ``cors`` under node) is mounted at its scenario's prefix on a real
server; the page, served by the backend at ``https://app.example.test``, calls it at
``https://api.example.test:<port>`` (same site, so credentialed rows send their cookie) through the suite's
mitmdump, and the harness compares Chromium's CDP ``corsError`` with the addon's report line per flow
(tests/harness/chromium.py). Expected outcomes are never written here: the middleware answers, Chromium decides.

A scenario runs one configuration's flows in one page, one after the other: without credentials (``plain``) or
all with ``credentials: 'include'`` and a cookie (``credentialed``): credentials mode is not on the wire, so the
harness judges a whole scenario in one mode. These runs are not recorded in the corpus (tests/corpus).

Where the addon disagrees with Chromium the row stays, marked ``xfail(strict=True)`` with the evidence (the addon's
reason against Chromium's corsError): ``case(…, xfail="…")``. Today there is none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from tests.browser.test_cors_browser import AUTH, JSON_POST, SAPP, cookie_on_wire, fetch, js
from tests.harness.backend import Backend
from tests.harness.browser import Env, Scenario, run, slug
from tests.harness.chromium import assert_matches
from tests.middleware.servers import Server, Servers, express_missing, group, route_wire, server_for

pytestmark = pytest.mark.browser

API = "@API@"  # in the page JS: replaced by the server's origin once it runs
CUSTOM = {"X-Custom": "1"}
# What the page does, per flow: (path, fetch init, response headers it reads). See tests/middleware/common.py.
FLOWS: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "get": ("/get", {}, ()),
    "json": ("/json", JSON_POST, ()),
    "put": ("/item", {"method": "PUT", "headers": CUSTOM}, ()),
    "delete": ("/item/1", {"method": "DELETE", "headers": CUSTOM}, ()),
    "auth": ("/auth", {"headers": AUTH}, ()),
    "error": ("/error", {}, ()),
    "missing": ("/missing", {}, ()),
    "headers": ("/headers", {}, ("x-total-count", "x-request-id")),
    "list": ("/list", {}, ()),  # Django: APPEND_SLASH redirects to /list/
    # The same PUT again: Chromium's preflight cache answers it when the first preflight passed (a failed one
    # is sent again, and the harness pins both failures on the last OPTIONS: only for passing configurations).
    "put-again": ("/item", {"method": "PUT", "headers": CUSTOM}, ()),
}
PLAIN = ("get", "json", "put", "delete", "auth", "error", "missing", "headers")
CREDENTIALED = ("get", "json", "put", "error", "headers")


@dataclass(frozen=True)
class Case:
    framework: str
    config: str
    """The configuration's name in its server module (tests/middleware/)."""
    scenario: Scenario

    @property
    def server(self) -> Server:
        return server_for(self.framework, self.config)


def case(framework: str, config: str, mode: str, extra: Sequence[str] = (), xfail: str | None = None) -> Any:
    """One scenario: ``config`` of ``framework`` with the ``plain`` or ``credentialed`` flows (plus ``extra``)."""
    credentialed = mode == "credentialed"
    flows = [*(CREDENTIALED if credentialed else PLAIN), *extra]
    steps = []
    for name in flows:
        path, init, read = FLOWS[name]
        steps.append(fetch(API, path, {**init, "credentials": "include"} if credentialed else init, read))
    scenario = Scenario(
        page=SAPP + "/",
        routes={},
        js=js(*steps),
        credentials=credentialed,
        cookies=["api.example.test"] if credentialed else (),
        check=cookie_on_wire("GET", "/get", credentialed),
    )
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(Case(framework, config, scenario), id=f"{framework} {config} {mode}", marks=marks)


def both(framework: str, config: str, extra: Sequence[str] = ()) -> list[Any]:
    return [case(framework, config, "plain", extra), case(framework, config, "credentialed", extra)]


CASES = [
    # --- Starlette CORSMiddleware ------------------------------------------------------------------------
    case("starlette", "origins-star", "plain"),
    case("starlette", "origins-star-everything", "plain", extra=["put-again"]),
    case("starlette", "origins-star-everything", "credentialed"),
    case("starlette", "origins-star-credentials", "credentialed"),
    case("starlette", "origin-trailing-slash", "plain"),
    case("starlette", "origin-regex-credentials-expose", "plain"),
    case("starlette", "allow-headers-narrow", "plain"),
    # --- FastAPI (Starlette's CORSMiddleware) -----------------------------------------------------------
    *both("fastapi", "tutorial"),
    case("fastapi", "auth-middleware-outside-cors", "plain"),
    case("fastapi", "auth-middleware-inside-cors", "plain"),
    # --- flask-cors ---------------------------------------------------------------------------------------
    case("flask", "default", "plain", extra=["put-again"]),
    case("flask", "default", "credentialed"),
    *both("flask", "supports-credentials"),
    *both("flask", "origins-regex-credentials-expose"),
    case("flask", "resources-not-matching-path", "plain"),
    *both("flask", "manual-options-route"),
    case("flask", "own-after-request-header-too", "plain"),
    case("flask", "before-request-auth", "plain"),
    case("flask", "propagate-exceptions", "plain"),
    # --- django-cors-headers ------------------------------------------------------------------------------
    *both("django", "allowed-origins-credentials", extra=["list"]),
    case("django", "allow-all-origins-credentials", "credentialed", extra=["put-again"]),
    case("django", "allow-all-origins", "credentialed"),
    case("django", "allowed-origin-trailing-slash", "plain"),
    case("django", "urls-regex-api-only", "plain"),
    case("django", "cors-below-common-middleware", "plain", extra=["list"]),
    # --- Express cors -------------------------------------------------------------------------------------
    case("express", "default", "plain", extra=["put-again"]),
    case("express", "default", "credentialed"),
    case("express", "origin-true-credentials", "credentialed"),
    case("express", "origin-array-trailing-slash", "plain"),
    *both("express", "origin-array-credentials-exposed"),
    case("express", "preflight-continue", "plain"),
    case("express", "restricted-options-success-200", "plain"),
    case("express", "origin-callback-error", "plain"),
    case("express", "route-level", "plain"),
    case("express", "cors-after-routes", "plain"),
]


def prefix_of(case_id: str) -> str:
    """The path prefix ``run`` gives a scenario: where its configuration is mounted."""
    return f"/s/{slug(case_id)}"


@pytest.fixture(scope="session")
def middleware(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Servers]:
    """The servers of the selected cases, all started at once, each with its cases' configurations mounted."""
    selected = {item.name for item in request.session.items}
    mounts = []
    for param in CASES:
        chosen: Case = param.values[0]
        if f"test_middleware_agrees_with_chromium[{param.id}]" not in selected:
            continue
        if chosen.framework == "express" and express_missing():
            continue
        mounts.append((chosen.server, prefix_of(param.id), chosen.config))
    servers = Servers(tmp_path_factory.mktemp("middleware"), route_wire(backend))
    try:
        servers.start(group(mounts))
        yield servers
    finally:
        servers.close()


@pytest.mark.parametrize("chosen", CASES)
def test_middleware_agrees_with_chromium(
    env: Env, middleware: Servers, chosen: Case, request: pytest.FixtureRequest
) -> None:
    """Every flow of the configuration: the addon's verdict, reason and preflight link equal Chromium's."""
    if chosen.framework == "express" and (why := express_missing()):
        pytest.skip(why)
    case_id = request.node.callspec.id
    scenario = chosen.scenario
    scenario = dataclasses.replace(scenario, js=scenario.js.replace(API, middleware.origin(chosen.server)))
    result = run(dataclasses.replace(env, record=None), slug(case_id), scenario)
    assert_matches(result)
