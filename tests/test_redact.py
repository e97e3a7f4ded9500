"""The secrets policy: what never reaches an annotation, a log line or the report."""

from __future__ import annotations

import itertools

import pytest

from mitmcors import redact
from mitmcors.redact import REDACTED, is_secret_name, redact_error, redact_url

# Credential-like names as frameworks spell them, generated rather than listed: every compound in every
# casing and separator style, plus percent-encoded separators and PHP's array suffix.
COMPOUNDS = [
    ("access", "token"),
    ("auth", "token"),
    ("refresh", "token"),
    ("id", "token"),
    ("client", "secret"),
    ("api", "key"),
    ("session", "id"),
    ("one", "time", "password"),
    ("saml", "response"),
    ("x", "amz", "signature"),
]
SINGLE = ["token", "pass", "password", "pwd", "otp", "ticket", "jsessionid", "PHPSESSID", "SAMLResponse", "hmac", "sig"]


def spellings(words: tuple[str, ...]) -> set[str]:
    lower = [w.lower() for w in words]
    camel = lower[0] + "".join(w.capitalize() for w in lower[1:])
    names = {
        "_".join(lower),
        "-".join(lower),
        ".".join(lower),
        camel,
        camel[0].upper() + camel[1:],
        "_".join(lower).upper(),
        "%5F".join(lower),
        "%5f".join(lower),
        "%2D".join(lower),
    }
    return names | {f"{n}[]" for n in names} | {f"{n}%5B%5D" for n in names}


SECRET_NAMES = sorted(
    set(itertools.chain.from_iterable(spellings(c) for c in COMPOUNDS)) | set(SINGLE) | {s.lower() for s in SINGLE}
)
PLAIN_NAMES = ["page", "sort", "q", "limit", "offset", "keyword", "monkey", "passenger", "author", "tokenizer", "id"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_credential_like_query_value_is_redacted(name: str) -> None:
    """A credential-like query parameter keeps its name and loses its value, however it is spelled."""
    url = redact_url(f"https://api.test/v1/items?page=2&{name}=SECRETVALUE")
    assert "SECRETVALUE" not in url
    assert f"{name}={REDACTED}" in url
    assert "page=2" in url


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_ordinary_query_values_are_kept(name: str) -> None:
    """Names that only contain a secret word's letters (keyword, monkey, passenger) stay readable."""
    assert not is_secret_name(name)
    assert redact_url(f"https://api.test/?{name}=visible") == f"https://api.test/?{name}=visible"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("https://u:p@h.test/", f"https://{REDACTED}@h.test/", id="userinfo"),
        pytest.param("//u:p@h.test/x", f"//{REDACTED}@h.test/x", id="scheme-relative userinfo"),
        pytest.param("http://h.test/a;jsessionid=S1/b", f"http://h.test/a;jsessionid={REDACTED}/b", id="path param"),
        pytest.param(
            "http://h.test/cb#access_token=S2&x=1", f"http://h.test/cb#access_token={REDACTED}&x=1", id="fragment"
        ),
        pytest.param("http://h.test/a;v=1?page=2", "http://h.test/a;v=1?page=2", id="ordinary path param kept"),
    ],
)
def test_url_parts_that_carry_secrets(url: str, expected: str) -> None:
    """Userinfo, path parameters and fragment parameters follow the same policy as the query."""
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("HTTP/1 protocol error: Received invalid headers: b'Set-Cookie: sid=SECRETVALUE'", id="bytes"),
        pytest.param("invalid header line Set-Cookie: sid=SECRETVALUE; Path=/", id="set-cookie"),
        pytest.param("upstream said Authorization: Bearer SECRETVALUE", id="authorization"),
        pytest.param("bad request token=SECRETVALUE end", id="name=value pair"),
        pytest.param("first line\nSet-Cookie: SECRETVALUE", id="second line"),
    ],
)
def test_error_text_is_never_copied_raw(message: str) -> None:
    """Error text keeps its gist and loses what it quotes from the wire."""
    gist = redact_error(message)
    assert "SECRETVALUE" not in gist
    assert gist


def test_error_text_without_secrets_is_kept() -> None:
    """A plain error stays readable."""
    text = 'Error connecting to "api.test": [Errno 111] Connection refused'
    assert redact_error(text) == text


def test_a_huge_url_is_redacted_but_not_remembered() -> None:
    """The same URL is redacted for its message, log line, report line and view, so redactions are remembered;
    a huge URL (hostile, or a data-stuffed query) is redacted afresh each time instead of kept."""
    redact.redact_url.cache_clear()
    assert redact_url("/a?token=abc") == "/a?token=[redacted]"
    assert redact.redact_url.cache_info().currsize == 1
    huge = "/a?token=abc&q=" + "x" * 5000
    assert redact_url(huge).startswith("/a?token=[redacted]&q=xxx")
    assert redact.redact_url.cache_info().currsize == 1
