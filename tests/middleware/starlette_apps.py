"""Starlette and FastAPI apps with ``CORSMiddleware`` as their users configure it, served by uvicorn.

    python -m tests.middleware.starlette_apps --port N --cert PEM --key PEM --wire URL --mounts JSON

Each configuration is a whole app (its own middleware stack, ``ServerErrorMiddleware`` outermost) mounted at the
scenario's prefix. See tests/middleware/common.py for the endpoints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.middleware.common import ERROR, REQUEST_ID, TOTAL_COUNT, ServeOptions, mounted, parse_args, report

APP_ORIGIN = "https://app.example.test"
EVERYTHING: dict[str, Any] = {"allow_methods": ["*"], "allow_headers": ["*"]}


async def text(request: Request) -> Response:
    return PlainTextResponse("ok")


async def created(request: Request) -> Response:
    return JSONResponse({"ok": True, "got": await request.json()})


async def fail(request: Request) -> Response:
    raise RuntimeError(ERROR)


async def with_headers(request: Request) -> Response:
    return PlainTextResponse("ok", headers=dict([TOTAL_COUNT, REQUEST_ID]))


def routes() -> list[Route]:
    """The routes every scenario's page calls (the same in each framework's apps)."""
    return [
        Route("/get", text),
        Route("/json", created, methods=["POST"]),
        Route("/item", text, methods=["PUT"]),
        Route("/item/{item_id:int}", text, methods=["DELETE"]),
        Route("/auth", text),
        Route("/error", fail),
        Route("/headers", with_headers),
    ]


def starlette(**cors: Any) -> Starlette:
    """A plain Starlette app, ``CORSMiddleware`` configured with ``cors``."""
    return Starlette(routes=routes(), middleware=[Middleware(CORSMiddleware, **cors)])


def fastapi(auth_outside_cors: bool | None = None, **cors: Any) -> FastAPI:
    """A FastAPI app the way its tutorial writes one: decorators, ``app.add_middleware(CORSMiddleware, …)``, an
    ``@app.exception_handler(Exception)`` for unexpected errors (which Starlette runs in ServerErrorMiddleware,
    outside CORSMiddleware). With ``auth_outside_cors`` not None, an ``@app.middleware("http")`` answers 401 to
    requests without Authorization, registered after CORSMiddleware (so outermost: it sees preflights first) when
    True, before it when False."""
    app = FastAPI()

    @app.get("/get")
    async def get() -> str:
        return "ok"

    @app.post("/json")
    async def create(body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "got": body}

    @app.put("/item")
    async def replace() -> str:
        return "ok"

    @app.delete("/item/{item_id}")
    async def delete(item_id: int) -> str:
        return "ok"

    @app.get("/auth")
    async def auth() -> str:
        return "ok"

    @app.get("/error")
    async def error() -> str:
        raise RuntimeError(ERROR)

    @app.get("/headers")
    async def headers(response: Response) -> str:
        response.headers.update(dict([TOTAL_COUNT, REQUEST_ID]))
        return "ok"

    @app.get("/missing")
    async def missing() -> str:
        raise HTTPException(status_code=404, detail="no such item")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": "internal error"}, status_code=500)

    async def require_token(request: Request, call_next: Callable[[Request], Any]) -> Response:
        if "authorization" not in request.headers:
            return JSONResponse({"detail": "not authenticated"}, status_code=401)
        response: Response = await call_next(request)
        return response

    if auth_outside_cors is False:
        app.middleware("http")(require_token)
    app.add_middleware(CORSMiddleware, **cors)
    if auth_outside_cors:
        app.middleware("http")(require_token)
    return app


CONFIGS: dict[str, Callable[[], ASGIApp]] = {
    # Starlette's defaults: only GET, no request headers beyond the safelisted ones.
    "origins-star": lambda: starlette(allow_origins=["*"]),
    "origins-star-everything": lambda: starlette(allow_origins=["*"], **EVERYTHING),
    # The combination its issue tracker keeps asking about: Starlette then reflects the request's Origin.
    "origins-star-credentials": lambda: starlette(allow_origins=["*"], allow_credentials=True, **EVERYTHING),
    "origin-trailing-slash": lambda: starlette(allow_origins=[APP_ORIGIN + "/"], **EVERYTHING),
    "origin-regex-credentials-expose": lambda: starlette(
        allow_origin_regex=r"https://.*\.example\.test",
        allow_credentials=True,
        expose_headers=["X-Total-Count"],
        **EVERYTHING,
    ),
    # Authorization and X-Custom missing from allow_headers (Content-Type is always allowed by Starlette).
    "allow-headers-narrow": lambda: starlette(
        allow_origins=[APP_ORIGIN], allow_methods=["GET", "POST", "PUT", "DELETE"], allow_headers=["X-Requested-With"]
    ),
    # FastAPI (its CORSMiddleware is Starlette's).
    "tutorial": lambda: fastapi(allow_origins=[APP_ORIGIN], allow_credentials=True, **EVERYTHING),
    "auth-middleware-outside-cors": lambda: fastapi(auth_outside_cors=True, allow_origins=["*"], **EVERYTHING),
    "auth-middleware-inside-cors": lambda: fastapi(auth_outside_cors=False, allow_origins=["*"], **EVERYTHING),
}


class AsgiWire:
    """Outermost ASGI layer: report every http request before the app (and its middleware) sees it."""

    def __init__(self, app: ASGIApp, wire: str) -> None:
        self.app = app
        self.wire = wire

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            host = next((v for k, v in headers if k.lower() == "host"), "")
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope["path"] + (f"?{query}" if query else "")
            await asyncio.to_thread(report, self.wire, scope["scheme"], scope["method"], host, target, headers)

            async def send_closing(message: Message) -> None:
                # An app that raises after its response (ServerErrorMiddleware re-raises) makes uvicorn drop the
                # connection; mitmproxy may already be reusing it for the next request, which then fails as its
                # own 502. Closing every connection after its response keeps runs deterministic.
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
                await send(message)

            await self.app(scope, receive, send_closing)
            return
        await self.app(scope, receive, send)


def app(options: ServeOptions) -> ASGIApp:
    routes = [Mount(prefix, app=configured) for prefix, configured in mounted(options, CONFIGS).items()]
    return AsgiWire(Starlette(routes=routes), options.wire)


def main() -> None:
    options = parse_args()
    uvicorn.run(
        app(options),
        host="127.0.0.1",
        port=options.port,
        ssl_certfile=options.cert,
        ssl_keyfile=options.key,
        log_level="warning",
        lifespan="off",
        # mitmproxy keeps upstream connections open and reuses them; with uvicorn's default of 5 s, a request sent
        # on a connection uvicorn is closing at that moment fails as mitmproxy's own 502 (seen once under load).
        timeout_keep_alive=300,
    )


if __name__ == "__main__":
    main()
