"""`remembered`: an LRU cache for what servers and pages send again and again (header names, allow lists,
origins, URLs), bounded in size as well as in entries: an argument larger than the limit (a hostile 5,000-character
value) is computed afresh and never kept."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar, cast

P = ParamSpec("P")
R = TypeVar("R", covariant=True)


class Remembered(Protocol[P, R]):
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def cache_clear(self) -> None: ...

    def cache_info(self) -> Any: ...


def remembered(maxsize: int, limit: int, size: Callable[..., int]) -> Callable[[Callable[P, R]], Remembered[P, R]]:
    """Cache up to `maxsize` results of calls whose arguments measure at most `limit` (`size` takes the same
    arguments as the function); larger ones are computed without the cache."""

    def decorate(fn: Callable[P, R]) -> Remembered[P, R]:
        lru = functools.lru_cache(maxsize=maxsize)(fn)
        cached = cast(Callable[P, R], lru)

        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return cached(*args, **kwargs) if size(*args, **kwargs) <= limit else fn(*args, **kwargs)

        call.cache_clear = lru.cache_clear  # type: ignore[attr-defined]
        call.cache_info = lru.cache_info  # type: ignore[attr-defined]
        return cast(Remembered[P, R], call)

    return decorate
