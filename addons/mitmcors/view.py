"""The "CORS" content view: a flow's verdict, its reasoning, the complete fix and the findings, where users look
(mitmweb's and the console's flow detail: pick "CORS" in the view menu of the request or response).

One plain class serves both content-view interfaces: mitmproxy 12's `Contentview` protocol (`prettify`) and
mitmproxy 11's `View` (`__call__`), which mitmproxy only ever calls, never type-checks at run time.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from mitmproxy import contentviews, http

from mitmcors import state
from mitmcors.explain import explain


def cors_text(f: Any) -> str:
    """The view's text for one flow."""
    if not isinstance(f, http.HTTPFlow):
        return "Not an HTTP flow: CORS does not apply."
    if not state.has_origin(f.request.headers):
        return "No Origin header: the browser did not send this as a CORS request (CORS does not apply)."
    a = f.metadata.get("cors") or {}
    parts = []
    if a:
        head = f"{a.get('kind')}: {str(a.get('verdict', '?')).upper()}"
        if a.get("reason") or a.get("firefox_reason"):
            head += f" — Chromium {a.get('reason') or '-'}, Firefox {a.get('firefox_reason') or '-'}"
        if a.get("credentials_dependent"):
            head += " — blocked if the page sends credentials"
        parts += [head, str(a.get("message", "")), ""]
    if f.response is not None:
        parts.append(explain(state.as_request(f), state.as_response(f.response), a or None))
    else:
        parts.append("No response yet (or none: see the flow's error).")
    if a.get("fix"):
        parts += ["", "Complete fix:", json.dumps(a["fix"], indent=2)]
    for finding in a.get("findings") or []:
        parts += [
            "",
            f"Security finding ({finding.get('severity')}): {finding.get('title')}",
            f"  fix: {finding.get('fix')}",
        ]
    return "\n".join(parts)


class CorsView:
    """Chosen automatically for preflight responses; for any other message only when picked."""

    name = "CORS"
    syntax_highlight = "none"

    def prettify(self, data: bytes, metadata: Any) -> str:  # mitmproxy 12
        return cors_text(getattr(metadata, "flow", None))

    def __call__(self, data: bytes, **metadata: Any) -> tuple[str, Any]:  # mitmproxy 11
        text = cors_text(metadata.get("flow"))
        # mitmweb 11 draws an empty line with no height: a space keeps the gaps between the parts.
        return "CORS", [[("text", line or " ")] for line in text.splitlines()]

    def render_priority(self, data: bytes, metadata: Any = None, **kwargs: Any) -> float:
        """First choice for a preflight's response (its body says nothing; CORS is all there is to it);
        otherwise only when chosen. mitmproxy 12 passes `metadata`, 11 passes keyword arguments."""
        f = getattr(metadata, "flow", None) if metadata is not None else kwargs.get("flow")
        message = getattr(metadata, "http_message", None) if metadata is not None else kwargs.get("http_message")
        if not isinstance(f, http.HTTPFlow) or message is not f.response:
            return -1
        return 2 if (f.metadata.get("cors") or {}).get("kind") == "preflight" else -1


def register(view: CorsView) -> None:
    """Add the view (a script reload finds it there already)."""
    api: Any = contentviews
    with contextlib.suppress(ValueError):  # mitmproxy 11: "Duplicate view" after a script reload
        api.add(view)


def unregister(view: CorsView) -> None:
    """Remove the view (mitmproxy 11; mitmproxy 12's registry has no removal and replaces it on reload)."""
    api: Any = contentviews
    if hasattr(api, "Contentview"):  # mitmproxy 12: `remove` is only a deprecated shim
        return
    with contextlib.suppress(ValueError):
        api.remove(view)
