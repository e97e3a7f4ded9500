"""A server configured with nothing but a snippet that ``cors.suggest`` rendered, for the browser suite
(tests/browser/test_suggest_frameworks_browser.py).

    python -m tests.middleware.suggested_apps FRAMEWORK --port N --snippet FILE --answers FILE [--cert PEM --key PEM]

``FRAMEWORK`` is ``starlette``, ``fastapi``, ``flask`` or ``django`` (Express: ``express/suggested.js``, same
command line). The app is the one a user has before any CORS configuration: one catch-all route that answers what
``--answers`` lists (JSON ``{path: {method or "*": [status, [[name, value], …], body]}}``, never OPTIONS) and the
framework's own 404 elsewhere; the snippet file is then applied exactly as rendered (executed with ``app`` in scope,
or, for Django, as the settings module's tail). Serves https with ``--cert``/``--key``, else plain http, on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Every method the app's route serves: OPTIONS is left to the framework and to the CORS layer.
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
Answers = Mapping[str, Mapping[str, Sequence[Any]]]


def answer_for(answers: Answers, method: str, path: str) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """What the unready backend answered ``method path`` (None: nothing is routed there)."""
    route = answers.get(path)
    found = None if route is None else route.get(method, route.get("*"))
    if found is None:
        return None
    status, headers, body = found
    return int(status), [(str(k), str(v)) for k, v in headers], str(body).encode()


def starlette_app(answers: Answers, fastapi: bool) -> Any:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response

    def endpoint(request: Request) -> Response:
        found = answer_for(answers, request.method, request.url.path)
        if found is None:
            return PlainTextResponse("Not Found", 404)
        status, headers, body = found
        return Response(body, status, dict(headers))

    if fastapi:
        from fastapi import FastAPI

        # This module's annotations are strings (postponed): FastAPI resolves them in the module's globals, where
        # Request is not: give it the class, or it takes `request` for a query parameter.
        endpoint.__annotations__ = {"request": Request}
        app: Any = FastAPI()
        app.add_api_route("/{path:path}", endpoint, methods=METHODS)
        return app
    from starlette.applications import Starlette
    from starlette.routing import Route

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=METHODS)])


def flask_app(answers: Answers) -> Any:
    from flask import Flask, Response, abort, request

    app = Flask(__name__)

    @app.route("/<path:path>", methods=METHODS)
    def endpoint(path: str) -> Response:
        found = answer_for(answers, request.method, request.path)
        if found is None:
            abort(404)
        status, headers, body = found
        return Response(body, status, headers)

    return app


urlpatterns: list[Any] = []  # ROOT_URLCONF: filled by django_app


def django_app(answers: Answers, snippet: str) -> Any:
    import django
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from django.http import Http404, HttpRequest, HttpResponse
    from django.urls import re_path
    from django.views.decorators.csrf import csrf_exempt

    # settings.py before the snippet: what `startproject` has that matters here (API views are csrf-exempt).
    namespace: dict[str, Any] = {
        "DEBUG": False,
        "SECRET_KEY": "suggested",
        "ALLOWED_HOSTS": ["*"],
        "ROOT_URLCONF": __name__,
        "INSTALLED_APPS": ["django.contrib.contenttypes"],
        "MIDDLEWARE": [
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
        ],
        "DATABASES": {},
    }
    exec(snippet, namespace)
    settings.configure(**{k: v for k, v in namespace.items() if k.isupper()})
    django.setup()

    @csrf_exempt
    def view(request: HttpRequest) -> HttpResponse:
        found = answer_for(answers, request.method or "GET", request.path)
        if found is None or request.method == "OPTIONS":
            raise Http404()
        status, headers, body = found
        return HttpResponse(body, status=status, headers=dict(headers))

    urlpatterns[:] = [re_path(r"^.*$", view)]
    return get_wsgi_application()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=["starlette", "fastapi", "flask", "django"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--snippet", type=Path, required=True)
    parser.add_argument("--answers", type=Path, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args(argv)
    answers: Answers = json.loads(args.answers.read_text(encoding="utf-8"))
    snippet = args.snippet.read_text(encoding="utf-8")
    if args.framework in ("starlette", "fastapi"):
        import uvicorn

        app = starlette_app(answers, fastapi=args.framework == "fastapi")
        exec(snippet, {"app": app})
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=args.port,
            ssl_certfile=args.cert,
            ssl_keyfile=args.key,
            log_level="warning",
        )
        return
    from werkzeug.serving import make_server

    if args.framework == "flask":
        wsgi = flask_app(answers)
        exec(snippet, {"app": wsgi})
    else:
        wsgi = django_app(answers, snippet)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    tls = (args.cert, args.key) if args.cert else None
    make_server("127.0.0.1", args.port, wsgi, threaded=True, ssl_context=tls).serve_forever()


if __name__ == "__main__":
    main()
