"""Sites: the Public Suffix List that mitmproxy ships (publicsuffix2, ICANN and private sections), read once."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def public_suffix_list() -> Any:
    """The list, read on first use (never at import, never per flow)."""
    import publicsuffix2

    with open(publicsuffix2.PSL_FILE, encoding="utf-8") as f:
        return publicsuffix2.PublicSuffixList(f.readlines())


def public_suffix(host: str) -> str:
    """The host's public suffix (`com`, `co.uk`, `github.io`); the list counts an unknown top-level label as one."""
    suffix: str | None = public_suffix_list().get_tld(host)
    return suffix or host.rsplit(".", 1)[-1]
