"""A Django project with django-cors-headers, one configuration per process (Django's settings are global),
served by werkzeug's WSGI server.

    python -m tests.middleware.django_app --port N --cert PEM --key PEM --wire URL --mounts JSON

Every mount must name the same configuration. The project is mounted at each scenario prefix as SCRIPT_NAME, so
``CORS_URLS_REGEX`` matches the project's own paths. Besides the shared endpoints (tests/middleware/common.py) it
serves ``GET /list/``, to which CommonMiddleware's APPEND_SLASH redirects ``/list``; views are csrf-exempt (as an
API with token auth is) except POST /json, which CsrfViewMiddleware refuses from another origin (403).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from tests.middleware.common import ERROR, REQUEST_ID, TOTAL_COUNT, mounted, parse_args, serve_wsgi

APP_ORIGIN = "https://app.example.test"
CORS = "corsheaders.middleware.CorsMiddleware"
COMMON = "django.middleware.common.CommonMiddleware"
# The order django-cors-headers' README asks for: CorsMiddleware above everything that can answer.
MIDDLEWARE = [
    CORS,
    "django.middleware.security.SecurityMiddleware",
    COMMON,
    "django.middleware.csrf.CsrfViewMiddleware",
]
DEFAULT_HEADERS = ("accept", "authorization", "content-type", "user-agent", "x-csrftoken", "x-requested-with")

CONFIGS: dict[str, dict[str, Any]] = {
    "allowed-origins-credentials": {
        "CORS_ALLOWED_ORIGINS": [APP_ORIGIN],
        "CORS_ALLOW_CREDENTIALS": True,
        "CORS_EXPOSE_HEADERS": ["X-Total-Count"],
    },
    "allow-all-origins-credentials": {
        "CORS_ALLOW_ALL_ORIGINS": True,
        "CORS_ALLOW_CREDENTIALS": True,
        "CORS_ALLOW_HEADERS": [*DEFAULT_HEADERS, "x-custom"],
    },
    "allow-all-origins": {"CORS_ALLOW_ALL_ORIGINS": True},
    # Django's system check calls this an error (corsheaders.E014), but nothing runs the checks under a WSGI
    # server; at run time only scheme and host:port are compared.
    "allowed-origin-trailing-slash": {"CORS_ALLOWED_ORIGINS": [APP_ORIGIN + "/"]},
    "urls-regex-api-only": {"CORS_ALLOW_ALL_ORIGINS": True, "CORS_URLS_REGEX": r"^/api/.*$"},
    "cors-below-common-middleware": {
        "CORS_ALLOWED_ORIGINS": [APP_ORIGIN],
        "MIDDLEWARE": [m for m in MIDDLEWARE if m != CORS] + [CORS],
    },
}


def text(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


def create(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


def fail(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(ERROR)


def with_headers(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain", headers=dict([TOTAL_COUNT, REQUEST_ID]))


urlpatterns = [
    path("get", csrf_exempt(text)),
    path("json", create),
    path("item", csrf_exempt(text)),
    path("item/<int:pk>", csrf_exempt(text)),
    path("auth", csrf_exempt(text)),
    path("error", csrf_exempt(fail)),
    path("headers", csrf_exempt(with_headers)),
    path("list/", csrf_exempt(text)),
]


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """A production-like project: DEBUG off, the configuration's settings over the defaults."""
    return {
        "DEBUG": False,
        "SECRET_KEY": "test-only-not-secret",
        "ALLOWED_HOSTS": [".example.test", "127.0.0.1"],
        "ROOT_URLCONF": __name__,
        "INSTALLED_APPS": ["corsheaders"],
        "MIDDLEWARE": MIDDLEWARE,
        "USE_TZ": True,
        "LOGGING_CONFIG": None,
        **config,
    }


def main() -> None:
    options = parse_args()
    names = set(options.mounts.values())
    if len(names) != 1:
        raise SystemExit(f"one configuration per Django process, got {sorted(names)}")
    import django
    from django.conf import settings as django_settings
    from django.core.wsgi import get_wsgi_application

    (name,) = names
    django_settings.configure(**settings(CONFIGS[name]))
    django.setup()
    application = get_wsgi_application()
    serve_wsgi(options, mounted(options, {name: lambda: application}))


if __name__ == "__main__":
    main()
