"""`remembered`: a cache for what servers and pages send again and again (header names, allow lists, origins,
URLs), bounded in size as well as in entries: an argument larger than the limit (a hostile 5,000-character value)
is computed afresh and never kept."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple, ParamSpec, Protocol, TypeVar, cast

P = ParamSpec("P")
R = TypeVar("R", covariant=True)


class CacheInfo(NamedTuple):
    currsize: int
    maxsize: int


class Remembered(Protocol[P, R]):
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def cache_clear(self) -> None: ...

    def cache_info(self) -> CacheInfo: ...


def remembered(maxsize: int, limit: int, size: Callable[..., int]) -> Callable[[Callable[P, R]], Remembered[P, R]]:
    """Cache up to `maxsize` results of calls whose arguments measure at most `limit` (`size` takes the same
    arguments as the function); larger ones are computed without the cache.

    Positional arguments only (a call with keywords is computed afresh). A hit is one dict lookup on the
    arguments: cheaper than `functools.lru_cache` behind a size check, which the hot path paid on every call.
    When full, it starts afresh: what is sent again comes back at its next miss. (Evicting the oldest entry of a
    dict costs a scan past the slots earlier evictions left empty, which a flood of new values makes long.)
    """

    def decorate(fn: Callable[P, R]) -> Remembered[P, R]:
        compute = cast(Callable[..., R], fn)
        cache: dict[tuple[Any, ...], Any] = {}

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            if kwargs:
                return compute(*args, **kwargs)
            try:
                return cache[args]
            except KeyError:
                pass
            except TypeError:  # an unhashable argument
                return compute(*args)
            result = compute(*args)
            if size(*args) <= limit:
                if len(cache) >= maxsize:
                    cache.clear()
                cache[args] = result
            return result

        call.cache_clear = cache.clear  # type: ignore[attr-defined]
        call.cache_info = lambda: CacheInfo(len(cache), maxsize)  # type: ignore[attr-defined]
        return cast(Remembered[P, R], call)

    return decorate
