"""`remembered`: what it keeps, what it computes afresh, and what it lets go."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mitmcors.memo import remembered


def counting(maxsize: int = 4, limit: int = 10) -> tuple[Any, list[tuple[Any, ...]]]:
    calls: list[tuple[Any, ...]] = []

    @remembered(maxsize, limit, lambda text, times=1: len(text))
    def repeat(text: Any, times: int = 1) -> str:
        calls.append((text, times))
        return str(text) * times

    return repeat, calls


def test_a_second_call_with_the_same_arguments_is_not_computed_again() -> None:
    repeat, calls = counting()
    assert repeat("ab", 2) == repeat("ab", 2) == "abab"
    assert calls == [("ab", 2)]


@pytest.mark.parametrize(
    "second_call",
    [
        pytest.param(lambda repeat: repeat("ab", times=3), id="a keyword argument"),
        pytest.param(lambda repeat: repeat("ab" * 20, 3), id="an argument over the size limit"),
        pytest.param(lambda repeat: repeat(["a", "b"], 3), id="an unhashable argument"),
    ],
)
def test_calls_it_must_not_keep_are_computed_every_time(second_call: Callable[[Any], str]) -> None:
    repeat, calls = counting()
    repeat("ab", 3)  # positional, remembered: must not answer the call below
    first, second = second_call(repeat), second_call(repeat)
    assert first == second
    assert len(calls) == 3
    assert repeat.cache_info().currsize == 1


def test_a_keyword_call_does_not_get_a_positional_calls_answer() -> None:
    repeat, _ = counting()
    assert repeat("ab") == "ab"
    assert repeat("ab", times=2) == "abab"


def test_when_full_it_starts_afresh() -> None:
    repeat, calls = counting(maxsize=2)
    repeat("a")
    repeat("b")
    repeat("c")  # full: forgets "a" and "b"
    assert repeat.cache_info().currsize == 1
    repeat("c")
    repeat("a")
    assert calls == [("a", 1), ("b", 1), ("c", 1), ("a", 1)]


def test_cache_clear_forgets_everything() -> None:
    repeat, calls = counting()
    repeat("a")
    repeat.cache_clear()
    repeat("a")
    assert len(calls) == 2
