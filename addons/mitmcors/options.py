"""The addon's mitmproxy options: one table, registered by `CorsAddon.load` (and by `mitmcors mitmdump --options`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mitmcors import suggest
from mitmcors.output import FAIL_ON_CHOICES, LOG_CHOICES


@dataclass(frozen=True)
class Option:
    name: str
    typespec: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None  # mitmproxy checks them on its own flags only: `configure` checks --set


OPTIONS: tuple[Option, ...] = (
    Option(
        "cors_rules",
        str,
        "",
        "Path of a YAML rule file that rewrites or injects Access-Control-* headers (see rules/). Empty: "
        "inspect only. The file is reloaded when it changes; an invalid edit keeps the last good rules.",
    ),
    Option(
        "cors_report",
        str,
        "",
        "Path of a JSON-lines report: one line per flow that carries an Origin header (its "
        "metadata['cors'] plus flow_id, method, url, timestamp). Prefix with + to append. Empty: no report.",
    ),
    Option(
        "cors_log",
        str,
        "all",
        "Which cross-origin flows get a log line: all, blocked (also those blocked only if credentialed), or off.",
        choices=LOG_CHOICES,
    ),
    Option(
        "cors_suggest",
        str,
        "",
        "Path of a file to write at exit: the least-privilege CORS configuration that makes every cross-origin "
        "flow seen pass (also with mitmdump -nr on a capture), in the format of cors_suggest_format. Empty: none.",
    ),
    Option(
        "cors_suggest_format",
        str,
        "rule",
        "The format of cors_suggest and of cors.suggest: rule (a mitmcors rule file), starlette, express, "
        "django, flask or nginx.",
        choices=suggest.FORMATS,
    ),
    Option(
        "cors_probe_unsafe",
        bool,
        False,
        "cors.probe replays a POST, PUT, PATCH or DELETE as it is (body included) instead of only its preflight. "
        "Off by default: a probe must not change data on the server.",
    ),
    Option(
        "cors_probe_credentials",
        bool,
        False,
        "cors.probe keeps the user's cookies and Authorization on its replays. Off by default: Allow-Credentials "
        "in the answers already shows what a credentialed attacker request would get.",
    ),
    Option(
        "cors_probe_rate",
        int,
        5,
        "At most this many cors.probe replays per second (they go to the probed flow's own server only).",
    ),
    Option(
        "cors_fail_on",
        str,
        "",
        "Exit with status 1 at the end when flows were blocked (blocked), or blocked or allowed only because "
        "no credentials were sent (ambiguous); for CI pipelines. Empty: never.",
        choices=FAIL_ON_CHOICES,
    ),
)


def add_options(loader: Any) -> None:
    for o in OPTIONS:
        loader.add_option(o.name, o.typespec, o.default, o.help, choices=o.choices)
