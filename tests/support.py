"""Shared test helpers: mitmproxy test flows shaped like what browsers put on the wire."""

from __future__ import annotations

from typing import Any

from mitmproxy import flow, http
from mitmproxy.test import tflow, tutils

from mitmcors.addon import CorsAddon

APP = "http://app.localhost:5173"


def make_flow(
    method: str = "GET",
    req_headers: dict[str, str] | None = None,
    status: int = 200,
    resp_headers: list[tuple[str, str]] | None = None,
    path: str = "/v1/items",
    t: float = 1000.0,
) -> http.HTTPFlow:
    f = tflow.tflow(resp=True)
    f.request = tutils.treq(method=method.encode(), host="api.localhost", port=8000, path=path.encode())
    f.request.headers.clear()
    f.request.headers["Host"] = "api.localhost:8000"
    for k, v in (req_headers or {"Origin": APP, "Sec-Fetch-Mode": "cors"}).items():
        f.request.headers[k] = v
    f.request.timestamp_start = t
    f.response = tutils.tresp(status_code=status)
    f.response.headers.clear()
    for k, v in resp_headers or []:
        f.response.headers.add(k, v)
    f.response.timestamp_end = t + 0.01
    return f


def failed_flow(message: str, headers: dict[str, str] | None = None) -> http.HTTPFlow:
    """A cross-origin fetch that got no response: mitmproxy's error `message` instead."""
    f = tflow.tflow(err=True)
    f.error = flow.Error(message)
    for name, value in (headers or {"Origin": APP, "Sec-Fetch-Mode": "cors"}).items():
        f.request.headers[name] = value
    return f


def run(addon: CorsAddon, f: http.HTTPFlow) -> dict[str, Any]:
    """The request and response hooks, as mitmproxy calls them; returns the flow's annotation."""
    addon.request(f)
    addon.response(f)
    return f.metadata["cors"]  # type: ignore[no-any-return]


def response_of(f: http.HTTPFlow) -> http.Response | None:
    """The flow's response as a hook left it (a call mypy cannot see through, unlike `f.response`)."""
    return f.response


def hook(addon: Any, name: str, f: flow.Flow) -> None:
    """Call the addon's hook `name` the way mitmproxy does: if it has one now (some exist only while needed)."""
    handler = getattr(addon, name, None)
    if handler:
        handler(f)
