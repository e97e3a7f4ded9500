"""Keep secrets out of reports, logs and comments: URLs lose userinfo and credential-like query values."""

from __future__ import annotations

import re
from typing import Final

_SECRET_PARAM: Final = re.compile(
    r"(?i)(?:^|[_\-.])(?:token|access_token|id_token|auth|authorization|key|apikey|api_key|secret|password|"
    r"passwd|pwd|session|sessionid|sid|sig|signature|code|jwt|bearer|credential|credentials)(?:$|[_\-.])"
)
_USERINFO: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#]*@")
REDACTED: Final = "[redacted]"


def redact_url(url: str) -> str:
    """`https://u:p@h/p?token=abc&page=2` → `https://[redacted]@h/p?token=[redacted]&page=2`."""
    url = _USERINFO.sub(rf"\1{REDACTED}@", url, count=1)
    base, q, query = url.partition("?")
    if not q:
        return url
    query, hashmark, fragment = query.partition("#")
    parts = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        if eq and value and _SECRET_PARAM.search(name):
            pair = f"{name}={REDACTED}"
        parts.append(pair)
    return f"{base}?{'&'.join(parts)}" + (f"#{fragment}" if hashmark else "")
