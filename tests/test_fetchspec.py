"""Fetch-standard building blocks: origins, list headers, safelisted request headers, Max-Age."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mitmcors import fetchspec


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("http://a.test", "http://a.test", id="default port omitted"),
        pytest.param("http://a.test:80", "http://a.test", id="explicit default port dropped"),
        pytest.param("https://A.test:443", "https://a.test", id="case and https default"),
        pytest.param("http://a.test:8080", "http://a.test:8080", id="other port kept"),
        pytest.param("http://[::1]:8000", "http://[::1]:8000", id="IPv6"),
        pytest.param("null", None, id="opaque origin"),
        pytest.param("http://a.test/", None, id="path is not an origin"),
        pytest.param("a.test", None, id="no scheme"),
        pytest.param("http://a.test:x", None, id="bad port"),
        # Issue 8: numbers str.isdigit() accepts but int() refuses (or that no browser reads as a port).
        pytest.param("http://a.test:\u00b2", None, id="superscript digit port"),
        pytest.param("http://[::1]:\u00b9", None, id="superscript digit IPv6 port"),
        pytest.param("http://a.test:\u0661\u0662", None, id="Arabic-Indic digit port"),
        pytest.param("http://a.test:" + "9" * 5000, None, id="5000-digit port"),
    ],
)
def test_normalize_origin(value: str, expected: str | None) -> None:
    """Origin header values normalise to the tuple origin's serialization, or None."""
    assert fetchspec.normalize_origin(value) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(["GET, PUT"], ["GET", "PUT"], id="comma list"),
        pytest.param([" GET ,  PUT "], ["GET", "PUT"], id="whitespace"),
        pytest.param(["x-a,,x-b", "x-c"], ["x-a", "x-b", "x-c"], id="empty items and several lines"),
        pytest.param([], [], id="absent"),
    ],
)
def test_parse_list(lines: list[str], expected: list[str]) -> None:
    """#token lists parse with OWS and empty elements skipped."""
    assert fetchspec.parse_list(lines) == expected


@pytest.mark.parametrize("bad", ["PUT DELETE", "x/y", '"x"', "x;y"])
def test_parse_list_rejects_non_tokens(bad: str) -> None:
    """A non-token element fails the whole list, naming the element."""
    with pytest.raises(fetchspec.ListParseError) as e:
        fetchspec.parse_list([f"GET, {bad}"])
    assert e.value.element == bad


@pytest.mark.parametrize(
    ("name", "value", "safe"),
    [
        pytest.param("accept", "application/json", True, id="accept"),
        pytest.param("accept", "a(b)", False, id="accept with unsafe byte"),
        pytest.param("content-type", "text/plain;charset=UTF-8", True, id="text/plain with params"),
        pytest.param("content-type", "application/x-www-form-urlencoded", True, id="form"),
        pytest.param("content-type", "application/json", False, id="json"),
        pytest.param("content-type", "text/plain, text/html", False, id="comma joined pair"),
        pytest.param("accept-language", "en-US,en;q=0.9", True, id="accept-language"),
        pytest.param("content-language", "en@x", False, id="bad language"),
        pytest.param("range", "bytes=0-499", True, id="range"),
        pytest.param("range", "bytes=-500", False, id="suffix range"),
        pytest.param("range", "bytes=5-1", False, id="reversed range"),
        pytest.param("x-api-key", "1", False, id="custom header"),
        pytest.param("accept", "a" * 129, False, id="over 128 bytes"),
    ],
)
def test_safelisted_request_header(name: str, value: str, safe: bool) -> None:
    """CORS-safelisted request-headers per the Fetch standard."""
    assert fetchspec.is_safelisted_request_header(name, value) is safe


def test_unsafe_names_skip_browser_headers() -> None:
    """Headers the browser adds itself never count as a reason to preflight."""
    wire = [
        ("Host", "a"),
        ("User-Agent", "x"),
        ("Cookie", "a=b"),
        ("Sec-Fetch-Mode", "cors"),
        ("Origin", "http://o"),
        ("Accept-Encoding", "gzip"),
        ("Content-Type", "application/json"),
        ("X-Api-Key", "k"),
        ("Pragma", "no-cache"),
        ("Cache-Control", "no-cache"),
    ]
    assert fetchspec.cors_unsafe_header_names(wire) == ["content-type", "x-api-key"]


def test_safelisted_total_over_1024_bytes_makes_all_unsafe() -> None:
    """Safelisted values totalling more than 1024 bytes all become unsafe."""
    wire = [("Accept", "a" * 120)] * 9
    assert fetchspec.cors_unsafe_header_names(wire) == ["accept"]


@pytest.mark.parametrize(
    ("value", "chromium", "firefox"),
    [
        pytest.param(None, (5, False), (5, False), id="absent: 5 s"),
        pytest.param("60", (60, False), (60, False), id="60 s"),
        pytest.param("-1", (0, False), (0, False), id="negative"),
        pytest.param("86401", (7200, True), (86400, True), id="above both caps"),
        pytest.param("\u00b2", (5, False), (0, False), id="superscript digit is not a number"),
        pytest.param("\u0661\u0662", (5, False), (0, False), id="Arabic-Indic digits are not a number"),
        pytest.param("9" * 5000, (5, False), (86400, True), id="5000 digits: int64 overflow / Firefox cap"),
    ],
)
def test_max_age(value: str | None, chromium: tuple[int, bool], firefox: tuple[int, bool]) -> None:
    """Max-Age is parsed from ASCII digits only, per browser, and never raises."""
    assert fetchspec.parse_max_age_chromium(value) == chromium
    assert fetchspec.parse_max_age_firefox(value) == firefox


@given(st.text(max_size=40))
def test_max_age_never_crashes(value: str) -> None:
    """Any Max-Age value gives a lifetime within each browser's cap."""
    assert 0 <= fetchspec.parse_max_age_chromium(value)[0] <= 7200
    assert 0 <= fetchspec.parse_max_age_firefox(value)[0] <= 86400


@given(st.text(max_size=40))
def test_parse_list_never_crashes(value: str) -> None:
    """Any header value either parses into tokens or raises ListParseError."""
    try:
        items = fetchspec.parse_list([value])
    except fetchspec.ListParseError:
        return
    assert all(item and "," not in item for item in items)


@given(st.text(max_size=40))
def test_normalize_origin_never_crashes(value: str) -> None:
    """Any Origin value normalises or returns None, without raising."""
    result = fetchspec.normalize_origin(value)
    assert result is None or "://" in result
