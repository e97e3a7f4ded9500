"""`cors.suggest`'s output formats: a `Policy` as a mitmcors rule file or as server configuration.

Each writer returns a whole text in its language, with comments where the policy needs a word (warnings, notes,
what was left out) and where the framework's default or behaviour differs from what the policy needs (which
responses get the headers, who answers preflights, Vary). No framework is imported here.

- `rule`: a whole rule file (`rules:` with one rule per server and route, in first-match order), which loads
  with `parse_rules` without errors or warnings.
- `starlette`: `app.add_middleware(CORSMiddleware, ...)` per server (Starlette and FastAPI): one middleware per
  app, so the union of the server's routes.
- `express`: `app.use(path, cors(options))` per route.
- `django`: django-cors-headers settings per server (one settings module per project): the union of its routes,
  limited to them by `CORS_URLS_REGEX`.
- `flask`: `CORS(app, resources={...})` per server, one resource per route.
- `nginx`: a `map` of allowed origins per route (http level) and a `server` with one `location` per route.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from mitmcors import fetchspec
from mitmcors.suggest import Group, Policy

WIDTH: Final = 116


# --------------------------------------------------------------------------------------------------
# Shared pieces


def _comment(text: str, c: str, indent: str = "") -> list[str]:
    """`text` as comment lines (`c` is `#` or `//`), wrapped; continuation lines indented by two spaces."""
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=f"{indent}{c} ",
        subsequent_indent=f"{indent}{c}   ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _comments(texts: Iterable[str], c: str, indent: str = "") -> list[str]:
    return [line for text in texts for line in _comment(text, c, indent)]


def _intro(policy: Policy, c: str, what: str) -> list[str]:
    preflights = sum(g.preflights for g in policy.groups)
    skipped = (
        f"; {_plural(policy.skipped, 'other flow')} skipped (same-origin, navigations, no Origin)"
        if policy.skipped
        else ""
    )
    servers = len(policy.servers)
    lines = _comments(
        [
            f"{what}, suggested by mitmcors (cors.suggest) from {policy.flows} cross-origin flows "
            f"({preflights} preflights) to {servers} server{'s' if servers != 1 else ''}{skipped}.",
            "Least privilege: the origins, methods and request headers seen; credentials only where a request "
            "carried a cookie; Expose-Headers: the response headers the server sent that a page may read "
            f"(not transport or infrastructure headers); Max-Age {policy.options.get('max_age', 600)} s, below "
            "every browser's cap (Chromium 7200, Firefox 86400).",
        ],
        c,
    )
    lines += _comments((f"WARNING: {w}" for w in policy.warnings), c)
    return lines


def _describe(g: Group, c: str, indent: str = "", *, title: str | None = None) -> list[str]:
    """What one group is based on, its warnings and notes."""
    head = title or f"{g.server}{g.route}"
    texts = [
        f"{head}: {_plural(len(g.observations), 'flow')} ({_plural(g.preflights, 'preflight')}); "
        f"paths seen: {', '.join(g.paths)}.",
    ]
    texts += [f"WARNING: {w}" for w in g.warnings]
    texts += [f"Note: {n}" for n in g.notes]
    if g.not_exposed:
        texts.append(
            f"Not exposed (transport, infrastructure or forbidden): {', '.join(g.not_exposed)}; "
            "pass expose= to add one the page reads."
        )
    return _comments(texts, c, indent)


_NO_ORIGIN: Final = "nothing to allow here: 'null' is the only origin seen, and it is not allowed."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _allows_some_origin(g: Group) -> bool:
    return g.any_origin is not None or bool(g.origins or g.patterns)


def _origin_list(g: Group) -> list[str]:
    """Exact origins first, then the `*.` patterns (as the rule file spells them)."""
    return [*g.origins, *(p.pattern for p in g.patterns)]


def _glob_regex(route: str) -> str:
    """A route glob (`/api/*` or an exact path) as a regex body: `*` is any run of characters."""
    return ".*".join(re.escape(part) for part in route.split("*"))


def _q(value: str) -> str:
    """A double-quoted string, valid in YAML, Python, JavaScript and (for plain ASCII) nginx."""
    return json.dumps(value)


def _list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def _raw(regex: str) -> str:
    """A Python raw string literal of a regex (ours never hold a double quote)."""
    return f'r"{regex}"'


def _route_warnings(policy: Policy, server: Group, c: str) -> list[str]:
    """The warnings of `server`'s routes that the server as a whole does not carry (one flow for a route...)."""
    texts = [
        f"WARNING: {g.routes[0]}: {w}"
        for g in policy.groups
        if g.server == server.server
        for w in g.warnings
        if w not in server.warnings
    ]
    return _comments(texts, c)


def _per_server_title(g: Group) -> str:
    routes = ", ".join(g.routes)
    return f"{g.server} (routes {routes})"


# --------------------------------------------------------------------------------------------------
# rule


def _filter_regex(g: Group) -> str:
    """A `~u` filter regex for the URLs of `g`'s server. mitmproxy unescapes the filter string once, so a `\\\\.`
    written in it reaches the regex as `\\.`; an IPv6 host may come with or without brackets."""
    host = g.host.strip("[]")
    host_re = f"\\\\[?{host}\\\\]?" if ":" in host else host.replace(".", "\\\\.")
    port = "" if fetchspec.DEFAULT_PORTS.get(g.scheme) == g.port else f":{g.port}"
    return f"^{g.scheme}://{host_re}{port}/"


def rule(policy: Policy) -> str:
    lines = _intro(policy, "#", "mitmcors rule file")
    lines += _comments(
        [
            "Load it: mitmproxy -s addons/cors.py --set cors_rules=FILE (rules: first match wins). "
            "preflight: forward keeps the server's OPTIONS answer and fixes it (a non-2xx becomes 204); "
            "preflight: answer replies from the proxy without asking the server."
        ],
        "#",
    )
    if not any(_allows_some_origin(g) for g in policy.groups):
        lines += [line for g in policy.groups for line in _describe(g, "#")]
        return "\n".join([*lines, "rules: []", ""])
    lines.append("rules:")
    hosts: dict[str, set[str]] = {}
    for g in policy.groups:
        hosts.setdefault(g.host, set()).add(g.server)
    for g in policy.groups:
        lines.append("")
        lines += _describe(g, "#", "  ")
        if not _allows_some_origin(g):
            lines += _comments([_NO_ORIGIN], "#", "  ")
            continue
        lines.append(f"  - name: {_q(f'suggested {g.server}{g.route}')}")
        lines.append("    match:")
        if ":" not in g.host:
            lines.append(f"      host: {_q(g.host)}")
        lines.append(f"      path: {_q(g.routes[0])}")
        if ":" in g.host or len(hosts[g.host]) > 1:
            url_filter = _q(f'~u "{_filter_regex(g)}"')
            lines.append(f"      filter: {url_filter}  # this port and scheme only")
        if g.any_origin is not None:
            lines.append(f"    allow_origins: {_q(g.any_origin)}")
            insecure = g.any_origin == "reflect" and g.credentials
        else:
            origins = _origin_list(g)
            lines.append(f"    allow_origins: {_list(origins)}")
            insecure = "null" in g.origins
        if g.credentials:
            lines.append("    allow_credentials: true")
        lines.append(f"    allow_methods: {_list(g.listed_methods)}")
        if g.headers:
            lines.append(f"    allow_headers: {_list(g.headers)}")
        else:
            lines.append(
                "    strip: [Access-Control-Allow-Headers]  # no request header needs allowing "
                "(without allow_headers a rule reflects what a preflight asks)"
            )
        if g.expose:
            lines.append(f"    expose_headers: {_list(g.expose)}")
        lines.append(f"    max_age: {g.max_age}")
        lines.append("    preflight: forward")
        if insecure:
            lines.append("    dangerously_allow_insecure: true  # asked for: see the WARNING above")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Starlette / FastAPI


def _starlette_origin_args(g: Group) -> list[str]:
    if g.any_origin == "*":
        return ['allow_origins=["*"],']
    if g.any_origin == "reflect":
        # With credentials Starlette echoes the origin for "*"; without, a regex that matches everything does.
        return ['allow_origins=["*"],'] if g.credentials else ['allow_origin_regex=r".*",']
    out = [f"allow_origins={_list(g.origins)},"]
    if g.patterns:
        out.append(f"allow_origin_regex={_raw('|'.join(p.regex for p in g.patterns))},")
    return out


def starlette(policy: Policy) -> str:
    lines = _intro(policy, "#", "Starlette / FastAPI CORSMiddleware")
    for g in policy.servers:
        lines.append("")
        lines += _describe(g, "#", title=_per_server_title(g))
        lines += _route_warnings(policy, g, "#")
        lines += _comments(
            [
                "FastAPI: fastapi.middleware.cors.CORSMiddleware is the same class; call app.add_middleware the same "
                "way. Call it after your other add_middleware calls: the last one added runs first, so CORS answers "
                "preflights before authentication can refuse them.",
                "Preflights: the middleware answers every OPTIONS with Access-Control-Request-Method itself (200), "
                "before routing; one it refuses gets a 400 without Access-Control-Allow-Origin. It checks the "
                "preflight's method against allow_methods (default: GET only), so every method seen is listed, "
                "GET/HEAD/POST too. Access-Control-Allow-Headers always adds Accept, Accept-Language, "
                "Content-Language and Content-Type. Vary: Origin is added to every response.",
                "Errors: responses that pass through the middleware get the headers whatever their status (404s, "
                "HTTPException), but an exception the app does not handle becomes ServerErrorMiddleware's 500, "
                "outside CORSMiddleware and without CORS headers: the page sees a CORS error instead. Turn "
                "exceptions into responses with an exception handler.",
                f"CORSMiddleware covers the whole app; routes seen: {', '.join(g.routes)}. To limit it, mount "
                "those routes as a sub-application with its own middleware.",
            ],
            "#",
        )
        lines += [
            "from starlette.middleware.cors import CORSMiddleware",
            "",
            "app.add_middleware(",
            "    CORSMiddleware,",
            *(f"    {a}" for a in _starlette_origin_args(g)),
            f"    allow_methods={_list(g.methods_seen)},",
            f"    allow_headers={_list(g.headers)},",
            f"    allow_credentials={g.credentials},",
            f"    expose_headers={_list(g.expose)},",
            f"    max_age={g.max_age},",
            ")",
        ]
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Express


def _js_regex(regex: str) -> str:
    return "/" + regex.replace("/", "\\/") + "/"


def _express_path(route: str) -> str:
    """An Express path for a route: `/api/*` → `/api` (app.use matches the prefix), characters path-to-regexp
    treats specially escaped (Express 5: `( ) [ ] { } ? + ! * :`)."""
    path = route[:-1].rstrip("/") if route.endswith("*") else route
    return re.sub(r"([()\[\]{}?+!*:\\])", r"\\\1", path) or "/"


def _express_origin(g: Group) -> str:
    if g.any_origin == "*":
        return '"*"'
    if g.any_origin == "reflect":
        return "true"
    return "[" + ", ".join([*(_q(o) for o in g.origins), *(_js_regex(p.regex) for p in g.patterns)]) + "]"


def _js_name(route: str, index: int) -> str:
    words = re.findall(r"[A-Za-z0-9]+", route)
    return "cors" + "".join(w.capitalize() for w in words[:4]) + (f"{index}" if not words else "") + "Options"


def express(policy: Policy) -> str:
    lines = _intro(policy, "//", "Express cors middleware (npm install cors)")
    lines += ["", 'const cors = require("cors");']
    used: set[str] = set()
    for server in policy.servers:
        lines.append("")
        lines += _comments(
            [
                f"--- the Express app that serves {server.server} ---",
                "app.use(path, cors(options)) before the routes and before anything that can answer or fail "
                "(authentication, body parsers): cors() answers preflights itself (OPTIONS, 204) and sets the "
                "headers before any route runs, so they stay on the app's 404s and on Express's error responses. "
                "A response sent by middleware mounted before it has none.",
                "Defaults that differ: origin '*' (here: the list), methods GET,HEAD,PUT,PATCH,POST,DELETE, "
                "allowedHeaders reflects whatever a preflight asks (here: the list; [] sends none), no maxAge "
                "(browsers then cache a preflight 5 s). cors() does not check a preflight's method or headers, it "
                "only sends the lists; Vary: Origin is added for an origin list.",
                "Route-level use without app.use: register the preflight too, app.options(path, cors(options)) "
                "beside app.get(path, cors(options), handler) (Express 5: '/{*splat}' for every path; Express 4: "
                "'*').",
            ],
            "//",
        )
        for i, g in enumerate(g for g in policy.groups if g.server == server.server):
            name = _js_name(g.routes[0], i)
            while name in used:
                name = name.replace("Options", "2Options")
            used.add(name)
            lines.append("")
            lines += _describe(g, "//")
            if not _allows_some_origin(g):
                lines += _comments([_NO_ORIGIN], "//")
                continue
            lines += [
                f"const {name} = {{",
                f"  origin: {_express_origin(g)},",
                f"  methods: {_list(g.methods_seen)},",
                f"  allowedHeaders: {_list(g.headers)},",
                f"  exposedHeaders: {_list(g.expose)},",
                f"  credentials: {'true' if g.credentials else 'false'},",
                f"  maxAge: {g.max_age},",
                "};",
            ]
            route = g.routes[0]
            if route.endswith("*"):
                path = _express_path(route)
                lines.append(
                    f"app.use(cors({name}));  // every path"
                    if path == "/"
                    else f"app.use({_q(path)}, cors({name}));  // {route}"
                )
            else:
                lines.append(f"app.all({_q(_express_path(route))}, cors({name}));  // exactly {route}, OPTIONS too")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Django (django-cors-headers)

_DJANGO_DEFAULT_HEADERS: Final = (
    "accept",
    "authorization",
    "content-type",
    "user-agent",
    "x-csrftoken",
    "x-requested-with",
)


def _urls_regex(g: Group) -> str:
    parts = [_glob_regex(r) for r in g.routes]
    return "^" + (parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")") + "$"


def django(policy: Policy) -> str:
    lines = _intro(policy, "#", "django-cors-headers settings (pip install django-cors-headers)")
    for g in policy.servers:
        lines.append("")
        lines += _describe(g, "#", title=_per_server_title(g))
        lines += _route_warnings(policy, g, "#")
        lines += _comments(
            [
                f"--- settings.py of the Django project that serves {g.server} ---",
                "CorsMiddleware goes as high as possible in MIDDLEWARE, above CommonMiddleware (its APPEND_SLASH "
                "redirects) and anything that can answer or fail (authentication): it answers preflights itself "
                "(200, before any view) and adds the headers to every response made below it, 404s and 500s "
                "included (Django turns a view's exception into a 500 response first).",
                "Defaults that differ: CORS_PREFLIGHT_MAX_AGE is 86400, above Chromium's cap of 7200; "
                "CORS_ALLOW_METHODS lists DELETE GET OPTIONS PATCH POST PUT; CORS_URLS_REGEX covers every path "
                "(matched against request.path_info). Vary: Origin is added to every response it covers.",
            ],
            "#",
        )
        if g.credentials and any(m.upper() not in ("GET", "HEAD", "OPTIONS") for m in g.methods_seen):
            lines += _comments(
                [
                    "With cookies, Django's CSRF protection also refuses a cross-origin POST/PUT/PATCH/DELETE "
                    "(a 403 that carries the CORS headers) unless the page sends the CSRF token and its origin is "
                    f"trusted: CSRF_TRUSTED_ORIGINS = {_list(_origin_list(g))}"
                ],
                "#",
            )
        extra = [h for h in g.headers if h not in _DJANGO_DEFAULT_HEADERS]
        lines += [
            "from corsheaders.defaults import default_headers",
            "",
            'INSTALLED_APPS = [*INSTALLED_APPS, "corsheaders"]',
            'MIDDLEWARE = ["corsheaders.middleware.CorsMiddleware", *MIDDLEWARE]',
        ]
        if g.any_origin is not None:
            lines.append("CORS_ALLOW_ALL_ORIGINS = True")
        else:
            lines.append(f"CORS_ALLOWED_ORIGINS = {_list(g.origins)}")
            if g.patterns:
                lines.append("CORS_ALLOWED_ORIGIN_REGEXES = [" + ", ".join(_raw(p.regex) for p in g.patterns) + "]")
        lines.append(f"CORS_ALLOW_METHODS = {_list(g.methods_seen)}")
        lines += _comments(
            [
                "default_headers is accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with"
                + (f"; only {', '.join(g.headers)} were seen" if g.headers else "; no request header was seen")
                + f": CORS_ALLOW_HEADERS = {_list(g.headers)} allows only those."
            ],
            "#",
        )
        lines.append("CORS_ALLOW_HEADERS = (*default_headers, " + "".join(f"{_q(h)}, " for h in extra).rstrip() + ")")
        lines.append(f"CORS_ALLOW_CREDENTIALS = {g.credentials}")
        lines.append(f"CORS_EXPOSE_HEADERS = {_list(g.expose)}")
        lines.append(f"CORS_PREFLIGHT_MAX_AGE = {g.max_age}")
        lines.append(f"CORS_URLS_REGEX = {_raw(_urls_regex(g))}")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Flask (flask-cors)


def _flask_resource(route: str) -> str:
    """flask-cors matches a resource that looks like a regex with re.match (a prefix match), other strings
    exactly."""
    if route.endswith("*") and "*" not in route[:-1]:
        return _raw(re.escape(route[:-1]) + ".*")
    if set("*\\]?$^[]()") & set(route):
        return _raw("^" + _glob_regex(route) + "$")
    return _q(route)


def flask(policy: Policy) -> str:
    lines = _intro(policy, "#", "flask-cors (pip install flask-cors)")
    for server in policy.servers:
        lines.append("")
        lines += _describe(server, "#", title=_per_server_title(server))
        lines += _route_warnings(policy, server, "#")
        lines += _comments(
            [
                f"--- the Flask app that serves {server.server} ---",
                "Preflights are answered by Flask's automatic OPTIONS, for URLs that have a route only (a preflight "
                "to a URL without one gets a 404 and fails); flask-cors adds the lists only when the preflight's "
                "method is in methods (default: all), so every method seen is listed, GET/HEAD/POST too, and it "
                "upper-cases them.",
                "Errors: flask-cors adds the headers to error responses too (intercept_exceptions), but not when "
                "exceptions propagate (debug mode, PROPAGATE_EXCEPTIONS): then no response comes from Flask at all.",
                "Defaults that differ: origins '*', allow_headers '*' (reflects what a preflight asks), no max_age "
                "(browsers then cache 5 s). Vary: Origin is only added when more than one origin or a regex can "
                "match (one origin: every response carries the same Allow-Origin).",
            ],
            "#",
        )
        lines += ["from flask_cors import CORS", "", "CORS(", "    app,", "    resources={"]
        for g in (g for g in policy.groups if g.server == server.server):
            if not _allows_some_origin(g):
                lines += _comments([f"{g.routes[0]}: {_NO_ORIGIN}"], "#", "        ")
                continue
            lines += _comments([f"{g.routes[0]}: {_plural(len(g.observations), 'flow')}"], "#", "        ")
            if g.any_origin is not None:
                origins = '"*"'
            else:
                origins = "[" + ", ".join([*(_q(o) for o in g.origins), *(_raw(p.regex) for p in g.patterns)]) + "]"
            lines += [
                f"        {_flask_resource(g.routes[0])}: {{",
                f'            "origins": {origins},',
                f'            "methods": {_list(g.methods_seen)},',
                f'            "allow_headers": {_list(g.headers)},',
                f'            "expose_headers": {_list(g.expose)},',
                f'            "supports_credentials": {g.credentials},',
                f'            "max_age": {g.max_age},',
            ]
            if g.any_origin == "*":
                lines.append('            "send_wildcard": True,')
            lines.append("        },")
        lines += ["    },", ")"]
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# nginx

NGINX_CONTENT_MARKER: Final = "# ... this location's own content: proxy_pass, root/try_files ..."


def _nginx_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _nginx_location(route: str) -> str:
    if route == "/*":
        return "/"
    if route.endswith("*") and "*" not in route[:-1]:
        return _nginx_str(route[:-1]) if set(route) & set(" ;{}\"'") else route[:-1]
    if "*" in route:
        return "~ " + _nginx_str("^" + _glob_regex(route) + "$")
    return "= " + (_nginx_str(route) if set(route) & set(" ;{}\"'") else route)


def nginx(policy: Policy) -> str:
    lines = _intro(policy, "#", "nginx CORS configuration")
    lines += _comments(
        [
            "add_header ... always puts the headers on every status, errors and nginx's own error pages "
            "included (without 'always' only on 2xx/3xx). Pitfall: add_header is inherited from the enclosing "
            "level only when the current level has none, so these add_header lines drop every add_header of the "
            "server and http levels (HSTS, CSP, ...) in these locations, and the if block drops the location's: "
            "repeat the ones you need here.",
            "Preflights are answered by nginx itself (204) and never reach the backend; the backend's own "
            "Access-Control-* headers are hidden so that there is one Allow-Origin. An origin that is not listed "
            "gets no Access-Control-Allow-Origin: the browser refuses it.",
        ],
        "#",
    )
    if policy.warnings and not policy.groups:
        return "\n".join([*lines, ""])
    lines += ["", "# --- in the http { } block ---"]
    for i, g in enumerate(policy.groups, start=1):
        if not _allows_some_origin(g):
            continue
        lines.append(f"map $http_origin $cors_origin_{i} {{  # {g.server}{g.routes[0]}")
        if g.any_origin == "*":
            lines.append('    default "*";')
        elif g.any_origin == "reflect":
            lines.append("    default $http_origin;")
        else:
            lines.append('    default "";')
            lines += [f"    {_nginx_str(o)} $http_origin;" for o in g.origins]
            lines += [f"    {_nginx_str('~' + p.regex)} $http_origin;" for p in g.patterns]
        lines.append("}")
    for server in policy.servers:
        lines.append("")
        lines += _comments(
            [f"--- the server {{ }} for {server.server}: merge these locations into yours ---"],
            "#",
        )
        tls = " ssl" if server.scheme == "https" else ""
        host = server.host if ":" not in server.host else f"[{server.host}]"
        lines += ["server {", f"    listen {server.port}{tls};", f"    server_name {host};"]
        if tls:
            lines.append("    # ssl_certificate ...; ssl_certificate_key ...;")
        for i, g in enumerate(policy.groups, start=1):
            if g.server != server.server:
                continue
            var = f"$cors_origin_{i}"
            common = [f"add_header Access-Control-Allow-Origin {var} always;"]
            if g.credentials:
                common.append('add_header Access-Control-Allow-Credentials "true" always;')
            preflight = [
                *common,
                f"add_header Access-Control-Allow-Methods {_nginx_str(', '.join(g.listed_methods))} always;",
            ]
            if g.headers:
                preflight.append(f"add_header Access-Control-Allow-Headers {_nginx_str(', '.join(g.headers))} always;")
            preflight += [
                f"add_header Access-Control-Max-Age {g.max_age} always;",
                "add_header Vary Origin always;",
                "return 204;",
            ]
            actual = list(common)
            if g.expose:
                actual.append(f"add_header Access-Control-Expose-Headers {_nginx_str(', '.join(g.expose))} always;")
            actual.append("add_header Vary Origin always;")
            lines.append("")
            lines += _describe(g, "#", "    ")
            if not _allows_some_origin(g):
                lines += _comments([_NO_ORIGIN], "#", "    ")
                continue
            lines.append(f"    location {_nginx_location(g.routes[0])} {{")
            lines += [
                f"        proxy_hide_header {name};"
                for name in (
                    "Access-Control-Allow-Origin",
                    "Access-Control-Allow-Credentials",
                    "Access-Control-Expose-Headers",
                )
            ]
            lines.append("        if ($request_method = OPTIONS) {")
            lines += [f"            {d}" for d in preflight]
            lines.append("        }")
            lines += [f"        {d}" for d in actual]
            lines.append(f"        {NGINX_CONTENT_MARKER}")
            lines.append("    }")
        lines.append("}")
    lines.append("")
    return "\n".join(lines)


WRITERS: Final[dict[str, Callable[[Policy], str]]] = {
    "rule": rule,
    "starlette": starlette,
    "express": express,
    "django": django,
    "flask": flask,
    "nginx": nginx,
}


__all__ = ["NGINX_CONTENT_MARKER", "WRITERS", "django", "express", "flask", "nginx", "rule", "starlette"]
