"""`mitmcors.urlparse.is_valid_url` against Chromium's own verdict on every value of tests/corpus/url_validity.json.

The JSON was recorded in Chromium (see tests/corpus/url_validity.py for how, and for the command that re-records
it): each value is valid exactly when Chromium's CORS check calls a mismatching Access-Control-Allow-Origin value
AllowOriginMismatch rather than InvalidAllowOriginValue. Every entry must agree; there is no list of exceptions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mitmcors import fetchspec, urlparse
from mitmcors.evaluator import PlainHeaders, Request, Response, evaluate
from mitmcors.reasons import Reason

CORPUS = Path(__file__).resolve().parent / "corpus" / "url_validity.json"
RECORDED = json.loads(CORPUS.read_text(encoding="ascii"))
TABLE: dict[str, bool] = RECORDED["values"]


def _ids(values: list[str], width: int = 60) -> list[str]:
    """Readable, unique test ids: the value's repr, cut to `width` characters."""
    seen: dict[str, int] = {}
    ids = []
    for value in values:
        text = repr(value)
        if len(text) > width:
            text = f"{text[: width - 5]}...{len(value)}"
        seen[text] = seen.get(text, 0) + 1
        ids.append(text if seen[text] == 1 else f"{text}#{seen[text]}")
    return ids


VALUES = sorted(TABLE)


@pytest.mark.parametrize("value", VALUES, ids=_ids(VALUES))
def test_matches_chromium(value: str) -> None:
    assert urlparse.is_valid_url(value) is TABLE[value]


def test_corpus_is_what_the_generator_makes() -> None:
    """The recorded values are exactly the generator's: change one, re-record the other."""
    from tests.corpus import url_validity

    assert sorted(url_validity.values()) == VALUES
    assert RECORDED["count"] == len(VALUES)
    assert RECORDED["chromium"].split(".")[0].isdigit()


def test_new_url_disagrees_only_where_known() -> None:
    """Where Blink's `new URL` and the CORS check's GURL disagree, the value is of a class the recorder knows (and
    leaves out when only `new URL` could judge it)."""
    from tests.corpus import url_validity

    disagreements = RECORDED["new_url_disagrees"]
    assert disagreements, "the recorder keeps them for the record"
    assert all(url_validity.blink_differs_from_gurl(v) and url_validity.header_carriable(v) for v in disagreements)


def test_corpus_is_broad() -> None:
    assert len(VALUES) > 15_000
    assert RECORDED["judged_by_cors_check"] > 15_000
    assert 0.2 < sum(TABLE.values()) / len(TABLE) < 0.8


def test_longer_than_gurl_allows_is_invalid() -> None:
    """Chromium does not carry URLs over 2 MiB (url::kMaxURLChars); no header that long reaches the check anyway."""
    path = "x" * (urlparse.MAX_URL_CHARS - len("http://a.test/"))
    assert urlparse.is_valid_url("http://a.test/" + path)
    assert not urlparse.is_valid_url("http://a.test/" + path + "x")


def test_fetchspec_delegates() -> None:
    for value in ("http://a.test", "http://a.test:99999", "a.test", "foo://a%zz", "http://[::%31]", "http://a^b"):
        assert fetchspec.is_valid_url(value) is urlparse.is_valid_url(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("http://app.example.test:99999", Reason.InvalidAllowOriginValue),
        ("http://a%zz", Reason.InvalidAllowOriginValue),
        ("http://a^b", Reason.InvalidAllowOriginValue),
        ("app.example.test", Reason.InvalidAllowOriginValue),
        ("http://a\udcffb", Reason.InvalidAllowOriginValue),  # a byte that is not UTF-8, in a host
        ("http://a%20b", Reason.AllowOriginMismatch),  # Chromium escapes a space in a host
        ("http://[::%31]", Reason.AllowOriginMismatch),
        ("foo://a%zz", Reason.AllowOriginMismatch),
        ("http:a.test", Reason.AllowOriginMismatch),
        ("http://a.test/\udcff", Reason.AllowOriginMismatch),  # ... in a path
        ("null", Reason.AllowOriginMismatch),
    ],
    ids=repr,
)
def test_evaluator_uses_it(value: str, reason: Reason) -> None:
    request = Request(
        "GET",
        "http",
        "api.example.test",
        80,
        "/",
        PlainHeaders([("Origin", "http://app.example.test"), ("Sec-Fetch-Mode", "cors")]),
    )
    verdict = evaluate(request, Response(200, PlainHeaders([("Access-Control-Allow-Origin", value)])))
    assert verdict.outcome.reason is reason


def test_is_cheap_on_long_values() -> None:
    """Linear time: a long value of each shape is judged quickly."""
    import time

    shapes = [
        "http://" + "a" * 200_000,
        "http://" + "a." * 100_000,
        "http://" + "\u00fc" * 200_000,
        "http://" + "%41" * 60_000,
        "foo://" + "a" * 200_000,
        "http://[" + ":" * 200_000 + "]",
        "http://" + "1." * 100_000,
        "filesystem:http://a/" + "./" * 100_000,
        "http://a.test/" + "%2e%2e/" * 200_000,
        "http://" + "\u0628\u200c" * 100_000,
    ]
    started = time.perf_counter()
    for value in shapes:
        urlparse.is_valid_url(value)
    assert time.perf_counter() - started < 5
