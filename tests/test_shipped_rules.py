"""The ready-made rule files in rules/ do what their comments promise, on flows shaped like a browser's."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import taddons

from mitmcors.addon import CorsAddon
from tests.support import hook, make_flow, response_of

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
PAGE = "http://localhost:5173"


def loaded(name: str) -> Iterator[CorsAddon]:
    a = CorsAddon()
    with taddons.context(a) as tctx:
        tctx.configure(a, cors_rules=str(RULES / name))
        assert a.rule_file.rules is not None and a.rule_file.rules.rules
        yield a


def through(a: CorsAddon, f: http.HTTPFlow, host: str = "api.localhost") -> dict[str, object]:
    f.request.host = host
    a.request(f)
    hook(a, "responseheaders", f)
    a.response(f)
    return f.metadata["cors"]  # type: ignore[no-any-return]


@pytest.fixture
def dev() -> Iterator[CorsAddon]:
    yield from loaded("dev.yaml")


@pytest.fixture
def staging() -> Iterator[CorsAddon]:
    yield from loaded("staging-cookies.yaml")


@pytest.fixture
def repro() -> Iterator[CorsAddon]:
    yield from loaded("reproduce-prod-bug.yaml")


def test_dev_answers_preflights_for_an_unready_local_api(dev: CorsAddon) -> None:
    """dev.yaml: the proxy answers the OPTIONS the backend cannot handle, echoing what was asked."""
    f = make_flow(
        "OPTIONS",
        {"Origin": PAGE, "Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "authorization"},
    )
    f.response = None
    meta = through(dev, f)
    answer = response_of(f)
    assert answer is not None and answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Headers"] == "authorization"
    assert (meta["verdict"], meta["rule"]) == ("allowed", "unready local API")


def test_dev_fixes_a_credentialed_error_response(dev: CorsAddon) -> None:
    """dev.yaml: a 500 without CORS headers reaches a credentialed page as a 500."""
    f = make_flow("GET", {"Origin": PAGE, "Cookie": "sid=1", "Sec-Fetch-Mode": "cors"}, status=500)
    meta = through(dev, f)
    assert (meta["verdict"], meta["credentials"]) == ("allowed", "include")
    assert meta["upstream"]["reason"] == "MissingAllowOriginHeader"  # type: ignore[index]


@pytest.mark.parametrize(
    ("origin", "verdict"),
    [pytest.param(PAGE, "allowed", id="local dev server"), pytest.param("https://evil.test", "blocked", id="other")],
)
def test_staging_admits_only_the_listed_frontends(staging: CorsAddon, origin: str, verdict: str) -> None:
    """staging-cookies.yaml: cookies work from the dev server, not from any other site."""
    f = make_flow("GET", {"Origin": origin, "Cookie": "sid=1", "Sec-Fetch-Mode": "cors"}, path="/v1/items")
    assert through(staging, f, host="api.staging.example.test")["verdict"] == verdict


@pytest.mark.parametrize(
    ("method", "req", "path", "status", "resp", "reason"),
    [
        pytest.param("GET", {}, "/dup/x", 200, [], "MultipleAllowOriginValues", id="duplicate Allow-Origin"),
        pytest.param(
            "GET",
            {},
            "/err",
            500,
            [("Access-Control-Allow-Origin", PAGE)],
            "MissingAllowOriginHeader",
            id="errors lose their headers",
        ),
        pytest.param(
            "GET", {"Cookie": "sid=1"}, "/wild/x", 200, [], "WildcardOriginNotAllowed", id="wildcard with credentials"
        ),
        pytest.param(
            "OPTIONS",
            {"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization"},
            "/auth/x",
            204,
            [],
            "HeaderDisallowedByPreflightResponse",
            id="preflight without Authorization",
        ),
    ],
)
def test_reproduce_file_breaks_a_working_backend_as_named(
    repro: CorsAddon,
    method: str,
    req: dict[str, str],
    path: str,
    status: int,
    resp: list[tuple[str, str]],
    reason: str,
) -> None:
    """reproduce-prod-bug.yaml: each rule produces the classic failure it is named after."""
    f = make_flow(
        method, {"Origin": PAGE, "Sec-Fetch-Mode": "cors", **req}, status=status, resp_headers=resp, path=path
    )
    meta = through(repro, f)
    assert (meta["verdict"], meta["reason"]) == ("blocked", reason)


def test_the_package_ships_these_files_and_every_module() -> None:
    """pyproject.toml maps rules/ into the package as mitmcors/examples (`mitmcors --examples`), so its package list
    is explicit: it names every directory of modules under addons/mitmcors, and the rule files ship as data."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    addons = REPO / "addons"
    modules = {".".join(p.parent.relative_to(addons).parts) for p in (addons / "mitmcors").rglob("*.py")}
    assert set(setuptools["packages"]) == modules | {"mitmcors.examples"}
    assert setuptools["package-dir"] == {"": "addons", "mitmcors.examples": "rules"}
    patterns = setuptools["package-data"]["mitmcors.examples"]
    assert {p.name for p in RULES.iterdir() if any(p.match(x) for x in patterns)} == {p.name for p in RULES.iterdir()}
