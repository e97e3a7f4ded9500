"""Flask apps with flask-cors as their users configure it, served by werkzeug (what ``flask run`` uses).

    python -m tests.middleware.flask_apps --port N --cert PEM --key PEM --wire URL --mounts JSON

Each configuration is its own ``Flask`` app mounted at the scenario's prefix (werkzeug's DispatcherMiddleware: the
app sees the prefix as SCRIPT_NAME, so ``resources`` patterns match the app's own paths). See
tests/middleware/common.py for the endpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, make_response, request
from flask_cors import CORS

from tests.middleware.common import ERROR, REQUEST_ID, TOTAL_COUNT, mounted, parse_args, serve_wsgi


def endpoints(app: Flask, item: bool = True) -> Flask:
    """The shared endpoints; without ``item`` for an app that writes its own /item."""

    @app.get("/get")
    def get() -> str:
        return "ok"

    @app.post("/json")
    def create() -> Response:
        return jsonify(ok=True, got=request.get_json())

    if item:
        app.add_url_rule("/item", "item", lambda: "ok", methods=["PUT"])

    @app.delete("/item/<int:item_id>")
    def delete(item_id: int) -> str:
        return "ok"

    @app.get("/auth")
    def auth() -> str:
        return "ok"

    @app.get("/error")
    def error() -> str:
        raise RuntimeError(ERROR)

    @app.get("/headers")
    def headers() -> tuple[str, dict[str, str]]:
        return "ok", dict([TOTAL_COUNT, REQUEST_ID])

    return app


def flask_cors(**cors: Any) -> Flask:
    """``CORS(app, **cors)`` on an app with the shared endpoints."""
    app = endpoints(Flask(__name__))
    CORS(app, **cors)
    return app


def manual_options() -> Flask:
    """``CORS(app, supports_credentials=True)``, but /item answers OPTIONS itself with hand-written headers (as
    before flask-cors was added); flask-cors sees an Allow-Origin already set and leaves that response alone."""
    app = endpoints(Flask(__name__), item=False)

    @app.route("/item", methods=["PUT", "OPTIONS"])
    def item() -> Response:
        response = make_response("ok")
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        return response

    CORS(app, supports_credentials=True)
    return app


def own_header_too() -> Flask:
    """An ``@app.after_request`` that adds ``Access-Control-Allow-Origin: *`` itself, registered before
    ``CORS(app, supports_credentials=True)``: Flask runs after-request hooks last-registered first, so flask-cors
    sets its header, then the app adds a second one."""
    app = endpoints(Flask(__name__))

    @app.after_request
    def allow_everyone(response: Response) -> Response:
        response.headers.add("Access-Control-Allow-Origin", "*")
        return response

    CORS(app, supports_credentials=True)
    return app


def before_request_auth() -> Flask:
    """An auth check in ``before_request`` that answers 401 without Authorization, preflights included."""
    app = flask_cors()

    @app.before_request
    def require_token() -> tuple[str, int] | None:
        if "Authorization" not in request.headers:
            return "not authenticated", 401
        return None

    return app


def propagate_exceptions() -> Flask:
    """What ``flask run --debug`` does with an unhandled exception: it propagates out of Flask (and past
    flask-cors' error handling) to the server, which answers a bare 500."""
    app = flask_cors()
    app.config["PROPAGATE_EXCEPTIONS"] = True
    return app


CONFIGS: dict[str, Callable[[], Flask]] = {
    "default": flask_cors,
    "supports-credentials": lambda: flask_cors(supports_credentials=True),
    "origins-regex-credentials-expose": lambda: flask_cors(
        origins=[r"https://.*\.example\.test"], supports_credentials=True, expose_headers=["X-Total-Count"]
    ),
    "resources-not-matching-path": lambda: flask_cors(resources={r"/api/*": {"origins": "*"}}),
    "manual-options-route": manual_options,
    "own-after-request-header-too": own_header_too,
    "before-request-auth": before_request_auth,
    "propagate-exceptions": propagate_exceptions,
}


def main() -> None:
    options = parse_args()
    serve_wsgi(options, mounted(options, CONFIGS))


if __name__ == "__main__":
    main()
