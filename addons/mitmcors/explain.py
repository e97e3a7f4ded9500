"""The long form of a verdict: every input the browser looked at and every step it took, as text."""

from __future__ import annotations

from typing import Any

from mitmcors import fetchspec
from mitmcors.evaluator import Credentials, Kind, Outcome, Request, Response, classify, credentials_mode, evaluate
from mitmcors.redact import redact_url

_SHOWN_RESPONSE_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
    "vary",
    "location",
)


def _values(lines: list[str]) -> str:
    if not lines:
        return "(absent)"
    return " | ".join(repr(v) for v in lines) + (f"  ← {len(lines)} header lines" if len(lines) > 1 else "")


def _outcome(o: Outcome) -> str:
    if o.allowed:
        return "allowed"
    return f"BLOCKED — Chromium {o.reason.value if o.reason else '-'}, Firefox {o.firefox_reason or '-'}"


def _upstream_text(upstream: Any) -> str:
    """The server's own verdict (`annotation["upstream"]`) in words."""
    if not isinstance(upstream, dict):
        return "not judged"
    if upstream.get("verdict") == "blocked":
        return f"BLOCKED — Chromium {upstream.get('reason') or '-'}, Firefox {upstream.get('firefox_reason') or '-'}"
    return str(upstream.get("message") or upstream.get("verdict") or "not judged")


def explain(request: Request, response: Response, annotation: dict[str, Any] | None = None) -> str:
    """A multi-line explanation of how Chromium and Firefox judge this request/response pair."""
    c = classify(request)
    v = evaluate(request, response, c)
    target = fetchspec.serialize_origin(request.scheme, request.host, request.port)
    out = [
        f"{request.method} {redact_url(request.url)} → HTTP {response.status}",
        f"  1. Classification: {c.note}",
        f"     Origin {v.origin!r}; target origin {target!r}; "
        f"Sec-Fetch-Mode {_values(request.headers.get_all('sec-fetch-mode'))}, "
        f"Sec-Fetch-Site {_values(request.headers.get_all('sec-fetch-site'))}",
    ]
    if c.kind in (Kind.SAME_ORIGIN, Kind.NOT_CORS):
        out.append("  → not judged: CORS does not apply, the browser never blocks this for CORS reasons.")
        return "\n".join(out)
    if v.preflight is not None:
        out.append(
            f"  2. Preflight asks for method {v.preflight.method!r} and headers "
            f"{list(v.preflight.headers) or '(none)'}; preflights never carry credentials, the actual "
            "request's mode decides"
        )
    else:
        out.append(
            "  2. Credentials: "
            + (
                "a Cookie is on the wire → credentials mode 'include'"
                if credentials_mode(request.headers) is Credentials.INCLUDE
                else "no Cookie on the wire → mode unknown (omit/same-origin, or include with no cookie stored)"
            )
        )
        unsafe = fetchspec.cors_unsafe_header_names(request.headers.items(multi=True))
        if unsafe:
            out.append(f"     CORS-unsafe request headers (need a preflight): {', '.join(unsafe)}")
    out.append("  3. Response headers the browser checks:")
    for name in _SHOWN_RESPONSE_HEADERS:
        lines = response.headers.get_all(name)
        if lines or name.startswith("access-control-allow-o"):
            out.append(f"     {name}: {_values([redact_url(x) for x in lines] if name == 'location' else lines)}")
    out.append(f"  4. Verdict: {_outcome(v.outcome)}")
    out.append(f"     {v.outcome.message}")
    if v.if_credentials is not None:
        with_creds = v.if_credentials
        out.append(f"     With credentials: 'include': {_outcome(with_creds)}")
        out.append(f"     {with_creds.message}")
    if v.preflight is not None:
        out.append(
            f"  5. Preflight cache: Chromium {v.preflight.max_age_chromium} s, Firefox {v.preflight.max_age_firefox} s"
        )
    elif v.unreadable_headers:
        out.append(f"  5. Hidden from the page's script: {', '.join(v.unreadable_headers)}")
    if annotation:
        links = []
        if annotation.get("preflight_id"):
            cached = " (served from the browser's preflight cache)" if annotation.get("preflight_cached") else ""
            links.append(f"covered by preflight {annotation['preflight_id']}{cached}")
        if annotation.get("request_ids"):
            links.append(f"covered requests {', '.join(annotation['request_ids'])}")
        if annotation.get("redirected_from"):
            links.append(f"follows redirect {annotation['redirected_from']}")
        if annotation.get("rule"):
            links.append(
                f"rewritten by rule {annotation['rule']!r}; the server's own answer: "
                + _upstream_text(annotation.get("upstream"))
            )
        if links:
            out.append("  6. Links: " + "; ".join(links))
    for w in v.warnings:
        out.append(f"  ! {w}")
    return "\n".join(out)
