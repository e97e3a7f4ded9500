"""Keep secrets out of everything the addon writes (annotations, comments, log lines, the report).

The policy, in the README's words:
- a URL loses its userinfo (`https://[redacted]@host/`);
- a query, fragment or path parameter (`;jsessionid=...`) whose *name* is credential-like keeps its name and
  loses its value. A name is credential-like when, percent-decoded, lowercased and split into words (at `_`,
  `-`, `.`, `[]`, spaces and camelCase boundaries), one of its words, or all of them run together, is in
  `SECRET_WORDS` (`accessToken`, `access%5Ftoken`, `token[]`, `PHPSESSID`, `SAMLResponse` ... all match);
- error text from the network stack is never copied raw: it can quote bytes the server sent
  (`Set-Cookie: sid=...`); `redact_error` keeps its gist, without quoted data.
"""

from __future__ import annotations

import functools
import re
from typing import Final
from urllib.parse import unquote_plus

from mitmcors.memo import remembered

REDACTED: Final = "[redacted]"

SECRET_WORDS: Final = frozenset(
    {
        "apikey",
        "assertion",
        "auth",
        "authorization",
        "bearer",
        "code",
        "credential",
        "credentials",
        "hmac",
        "jsessionid",
        "jwt",
        "key",
        "nonce",
        "otp",
        "pass",
        "passcode",
        "passwd",
        "password",
        "phpsessid",
        "pin",
        "pwd",
        "samlrequest",
        "samlresponse",
        "secret",
        "session",
        "sessionid",
        "sid",
        "sig",
        "signature",
        "ticket",
        "token",
    }
)

_USERINFO: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*:)?//[^/?#]*@")
_WORD_BOUNDARY: Final = re.compile(r"[^a-z0-9]+")
_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_PATH_PARAM: Final = re.compile(r";([^;=/?#]*)=([^;/?#]*)")
_MAX_NAME: Final = 200  # longer names are not words anyone uses for a secret; keep the cost bounded


def is_secret_name(name: str) -> bool:
    """Is this parameter name credential-like (see the module docstring)?"""
    return _is_secret_name(name[:_MAX_NAME])


@functools.lru_cache(maxsize=4096)  # the same few parameter names again and again
def _is_secret_name(name: str) -> bool:
    name = unquote_plus(name)
    words = [w for w in _WORD_BOUNDARY.split(_CAMEL.sub(" ", name).lower()) if w]
    return any(w in SECRET_WORDS for w in words) or "".join(words) in SECRET_WORDS


def _redact_pairs(text: str, separator: str) -> str:
    out = []
    for pair in text.split(separator):
        name, eq, value = pair.partition("=")
        out.append(f"{name}={REDACTED}" if eq and value and is_secret_name(name) else pair)
    return separator.join(out)


def _redact_path_param(m: re.Match[str]) -> str:
    return f";{m[1]}={REDACTED}" if m[2] and is_secret_name(m[1]) else m[0]


# The same URL is redacted for its verdict's text, log line, report line and view.
@remembered(256, 2048, len)
def redact_url(url: str) -> str:
    """`https://u:p@h/p;jsessionid=1?token=abc&page=2#id_token=x` →
    `https://[redacted]@h/p;jsessionid=[redacted]?token=[redacted]&page=2#id_token=[redacted]`."""
    if "@" in url:  # userinfo needs one: most URLs skip the regex
        url = _USERINFO.sub(lambda m: f"{m[1] or ''}//{REDACTED}@", url, count=1)
    rest, hashmark, fragment = url.partition("#")
    path, q, query = rest.partition("?")
    if ";" in path:
        path = _PATH_PARAM.sub(_redact_path_param, path)
    if q:
        path += "?" + _redact_pairs(query, "&")
    if hashmark:
        path += "#" + _redact_pairs(fragment, "&")
    return path


# A Python bytes literal (how mitmproxy quotes what it could not parse) and what follows it; a header
# that carries credentials and what follows it.
_QUOTED_BYTES: Final = re.compile(r"""\bb['"].*""", re.S)
_SECRET_HEADER: Final = re.compile(r"(?i)\b(?:set-cookie2?|cookie2?|(?:proxy-)?authorization)\b.*", re.S)
_MAX_ERROR: Final = 160


def redact_error(message: str) -> str:
    """The gist of a network error, never its quoted data: the first line, cut where it starts quoting
    bytes from the wire or names a credential header, `name=value` pairs redacted, at most 160 characters."""
    line = (message.splitlines() or [""])[0]
    cut = _SECRET_HEADER.sub(REDACTED, _QUOTED_BYTES.sub(REDACTED, line))
    cut = _redact_pairs(cut, " ")
    return cut[:_MAX_ERROR] + ("…" if len(cut) > _MAX_ERROR else "")
