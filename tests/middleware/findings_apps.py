"""CORS configurations for the security-findings suite (tests/e2e/test_e2e_findings_middleware.py): each origin
check the way users get it wrong, and its correct version, in the frameworks of tests/middleware.

    python -m tests.middleware.findings_apps starlette|flask|django --port N --cert PEM --key PEM --wire URL \\
        --mounts JSON

The framework's own server module (starlette_apps, flask_apps, django_app) serves them, with these
configurations added to its own: the endpoints, the wire report and the command line are the same. Express needs no
new configuration: ``origin-true-credentials`` (``cors({origin: true, credentials: true})``) and
``origin-array-credentials-exposed`` (an exact list) of tests/middleware/express/server.js are the pair.

Every configuration trusts ``https://app.example.test`` and ``https://admin.example.test`` and sends
``Access-Control-Allow-Credentials: true``:

| framework | flawed | correct |
|---|---|---|
| Starlette | ``allow_origin_regex=r"https://(app|admin).example.test"`` (unescaped dots) | the dots escaped |
| Starlette | ``allow_origins=[…, "null"]`` | the list without ``"null"`` |
| hand-written (Starlette) | ``origin.startswith(trusted)`` | ``origin in TRUSTED`` |
| hand-written (Starlette) | ``origin.endswith("example.test")`` | (the same exact set) |
| flask-cors | ``origins=[r"https://app\\.example\\.test", …]`` (regexes, ``re.match``: no end anchor) | ``^…$`` |
| django-cors-headers | ``CORS_ALLOWED_ORIGIN_REGEXES`` without anchors (``re.match``) | ``^…$`` |
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

APP_ORIGIN = "https://app.example.test"
ADMIN_ORIGIN = "https://admin.example.test"
TRUSTED = frozenset({APP_ORIGIN, ADMIN_ORIGIN})


def hand_written(check: Callable[[str], bool]) -> Any:
    """A Starlette app whose CORS is a hand-written middleware: ``check(origin)`` decides, the allowed origin is
    echoed with credentials and ``Vary: Origin``; preflights are answered 204 by the middleware."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
    from starlette.requests import Request
    from starlette.responses import Response

    from tests.middleware.starlette_apps import routes

    class HandWrittenCors(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            origin = request.headers.get("origin")
            preflight = request.method == "OPTIONS" and "access-control-request-method" in request.headers
            response = Response(status_code=204) if preflight else await call_next(request)
            if origin is not None and check(origin):
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Access-Control-Allow-Credentials"] = "true"
                if preflight:
                    response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE"
                    response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization, X-Custom"
            response.headers["Vary"] = "Origin"
            return response

    return Starlette(routes=routes(), middleware=[Middleware(HandWrittenCors)])


def starlette_configs() -> dict[str, Callable[[], Any]]:
    from tests.middleware.starlette_apps import EVERYTHING, starlette

    credentials: dict[str, Any] = {"allow_credentials": True, **EVERYTHING}
    return {
        "regex-unescaped-dot": lambda: starlette(allow_origin_regex=r"https://(app|admin).example.test", **credentials),
        "regex-escaped": lambda: starlette(allow_origin_regex=r"https://(app|admin)\.example\.test", **credentials),
        "origins-null": lambda: starlette(allow_origins=[APP_ORIGIN, ADMIN_ORIGIN, "null"], **credentials),
        "origins-list": lambda: starlette(allow_origins=[APP_ORIGIN, ADMIN_ORIGIN], **credentials),
        "hand-startswith": lambda: hand_written(lambda o: any(o.startswith(t) for t in TRUSTED)),
        "hand-endswith": lambda: hand_written(lambda o: o.endswith("example.test")),
        "hand-exact": lambda: hand_written(lambda o: o in TRUSTED),
    }


def flask_configs() -> dict[str, Callable[[], Any]]:
    from tests.middleware.flask_apps import flask_cors

    return {
        "origins-regex-unanchored": lambda: flask_cors(
            origins=[r"https://app\.example\.test", r"https://admin\.example\.test"], supports_credentials=True
        ),
        "origins-regex-anchored": lambda: flask_cors(
            origins=[r"^https://(app|admin)\.example\.test$"], supports_credentials=True
        ),
    }


def django_configs() -> dict[str, dict[str, Any]]:
    from tests.middleware.django_app import DEFAULT_HEADERS

    common = {"CORS_ALLOW_CREDENTIALS": True, "CORS_ALLOW_HEADERS": [*DEFAULT_HEADERS, "x-custom"]}
    return {
        "origin-regexes-unanchored": {"CORS_ALLOWED_ORIGIN_REGEXES": [r"https://(app|admin)\.example\.test"], **common},
        "origin-regexes-anchored": {"CORS_ALLOWED_ORIGIN_REGEXES": [r"^https://(app|admin)\.example\.test$"], **common},
    }


def main() -> None:
    framework = sys.argv.pop(1)
    if framework == "starlette":
        from tests.middleware import starlette_apps

        starlette_apps.CONFIGS.update(starlette_configs())
        starlette_apps.main()
    elif framework == "flask":
        from tests.middleware import flask_apps

        flask_apps.CONFIGS.update(flask_configs())
        flask_apps.main()
    elif framework == "django":
        from tests.middleware import django_app

        django_app.CONFIGS.update(django_configs())
        django_app.main()
    else:
        raise SystemExit(f"unknown framework {framework!r}: starlette, flask or django")


if __name__ == "__main__":
    main()
