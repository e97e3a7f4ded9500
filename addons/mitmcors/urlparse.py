"""Is this string a valid URL, as Chromium decides it (`GURL(value).is_valid()`)?

Chromium's `cors::CheckAccess` reports an `Access-Control-Allow-Origin` value that is not the request's
origin as `InvalidAllowOriginValue` when `GURL(value)` is invalid, else as `AllowOriginMismatch`
(BROWSERS.md §5.2). This module answers that question without a browser: pure stdlib, no mitmproxy, linear
time.

It follows the URL Standard's basic URL parser (https://url.spec.whatwg.org/#concept-basic-url-parser,
"[URL]" below; state names in quotes) *as Chromium implements it* (//url: `url_util.cc` DoCanonicalize,
`url_parse.cc`, `url_parse_file.cc`, `url_canon_*.cc`, `url_idna_icu.cc`). Where Chromium departs from the
standard, this follows Chromium, because Chromium is what the verdict is about; those places say "Chromium:":

- "special" schemes are Chromium's *standard* schemes: http, https, ws, wss, ftp (host, port, userinfo),
  file, and the host-only schemes Chrome registers (chrome, chrome-extension, devtools, ...), which drop a
  port and userinfo unchecked (`chrome://a:xyz` is valid);
- a special host may contain a space and `*` (escaped, crbug.com/1416013) and `"` `` ` `` `{` `}` `!` `$` `&`
  `'` `(` `)` `+` `,` `;` `=` `_` `~`; percent-escapes are decoded *before* the IPv6 parser
  (`http://[::%31]` is valid);
- IDNA (UTS #46 ToASCII) runs only on hosts with non-ASCII code points after percent-decoding, so an ASCII
  `xn--` label is never checked; such a host may not exceed 1000 UTF-16 code units; UseSTD3ASCIIRules is off
  but the ASCII result must pass the host table again (fullwidth `<` fails, fullwidth `%41` decodes to `a`);
- IPv4 parts follow Chromium's number parser (which reaches [URL]'s "ends in a number" outcome), and the IPv4
  tail of an IPv6 address may be hex or octal (`[::1.2.3.0x4]`);
- a `file:` host (exactly two slashes) ends at the next slash only, so `file://a?b` is invalid, and
  `file://localhost` keeps its host;
- `filesystem:` URLs wrap a standard or file URL; a few non-special schemes (android, drivefs, steam,
  chromeos-steam, materialized-view) always have an opaque path;
- tabs and newlines stay in a URL whose trimmed text starts with `data:` (any case).

The input is what Chromium's CORS check gets: the header's bytes, here decoded as UTF-8 with surrogateescape
(as mitmproxy's `Headers` does). A lone surrogate stands for a byte that is not UTF-8: Chromium passes such
bytes through in paths, queries, fragments, userinfo and opaque hosts, and rejects them in a scheme, a special
host or a port. GURL reads those bytes 8 bits at a time; Blink's `new URL()` reads UTF-16, and differs in two
places (tests/corpus/url_validity.py `blink_differs_from_gurl`): this module follows GURL.

Approximations, because the stdlib has no IDNA tables:
- the UTS #46 mapping is NFKC + case folding (`unicodedata`), with the deviation, ignored and disallowed
  characters Chromium 156's ICU treats differently listed below, instead of IdnaMappingTable.txt;
- Joining_Type (for CheckJoiners) is a table measured in Chromium 156 for the joining scripts;
- code points this Python's Unicode database does not know (Unicode 14 on Python 3.11, 15 on 3.12) count
  as unassigned, hence disallowed, though Chromium's ICU (Unicode 16) may know them.

tests/corpus/url_validity.json (recorded from Chromium's CORS check and `new URL`) is the reference;
tests/test_urlparse.py checks every entry.
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["MAX_URL_CHARS", "is_valid_url"]

# url::kMaxURLChars: Chromium refuses to carry longer URLs between processes.
MAX_URL_CHARS: Final = 2 * 1024 * 1024

# Chromium's standard schemes ("special" in [URL]) with a host, a port and userinfo.
_HOST_PORT_USERINFO: Final = frozenset({"http", "https", "ws", "wss", "ftp"})
# Chromium: standard schemes registered with SCHEME_WITH_HOST by content/ and chrome/ (measured in Chromium 156:
# `new URL("chrome:a").host == "a"`). A port and userinfo are parsed but dropped, never checked.
_HOST_ONLY: Final = frozenset(
    {
        "chrome",
        "chrome-untrusted",
        "chrome-error",
        "devtools",
        "chrome-extension",
        "chrome-search",
        "chrome-native",
        "chrome-distiller",
        "isolated-app",
    }
)
# Chromium: non-special schemes kept on the legacy "path URL" parser (url_util.cc opaque_non_special_schemes).
_OPAQUE_NON_SPECIAL: Final = frozenset({"android", "drivefs", "chromeos-steam", "steam", "materialized-view"})

_SLASHES: Final = "/\\"
_SPECIAL_AUTHORITY_END: Final = frozenset("/\\?#")
_NON_SPECIAL_AUTHORITY_END: Final = frozenset("/?#")
_C0_OR_SPACE: Final = "".join(chr(c) for c in range(0x21))
_REMOVABLE_WHITESPACE: Final = {0x09: None, 0x0A: None, 0x0D: None}
_ASCII_LOWER: Final = {c: c + 32 for c in range(0x41, 0x5B)}
_SCHEME_REST: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
_SCHEME_FIRST: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_DEC: Final = frozenset("0123456789")
_OCT: Final = frozenset("01234567")
_IPV4_CHARS: Final = _HEX | frozenset(".xX")

# Chromium's kHostCharLookup (url_canon_host.cc) for special and file hosts: the canonical form of each ASCII
# character, "" when it makes the host invalid. [URL] "forbidden domain code point" is stricter: Chromium
# escapes a space and `*` instead of failing (crbug.com/1416013).
_ESCAPE_IN_HOST: Final = frozenset(" *")


def _host_table() -> tuple[str, ...]:
    table = ["" for _ in range(0x80)]
    for c in "!\"$&'()+,-.0123456789:;=[]_`abcdefghijklmnopqrstuvwxyz{}~":
        table[ord(c)] = c
    for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        table[ord(c)] = c.lower()
    for c in _ESCAPE_IN_HOST:
        table[ord(c)] = f"%{ord(c):02X}"
    return tuple(table)


_HOST_CHAR: Final = _host_table()

# [URL] "forbidden host code point", what an opaque host (non-special scheme) may not contain. `[`, `:` and `]`
# are left to the IPv6 check, as Chromium's DoOpaqueHost does; `%` and DEL are allowed.
_FORBIDDEN_OPAQUE_HOST: Final = frozenset("\x00\t\n\r #/<>?@\\^|")

# Chromium: a non-ASCII host longer than this (UTF-16 code units, after decoding and escaping) is invalid; measured
# in Chromium 156 (1000 passes, 1001 fails).
_MAX_IDN_HOST: Final = 1000


def is_valid_url(value: str) -> bool:
    """True when Chromium's `GURL(value).is_valid()` is: the value parses as an absolute URL."""
    if len(value) > MAX_URL_CHARS:
        return False
    # [URL] basic URL parser, steps 1-3: strip leading and trailing C0 control or space, then remove all ASCII
    # tab or newline. Chromium: not from a `data:` URL (any case), as GURL does it (Blink's `new URL` decides
    # "data:" before trimming instead).
    spec = value.strip(_C0_OR_SPACE)
    if not (len(spec) > 5 and spec[:5].translate(_ASCII_LOWER) == "data:"):
        spec = spec.translate(_REMOVABLE_WHITESPACE)
    # "scheme start state" / "scheme state": the scheme runs to the first `:`; no `:` and no base URL is a
    # failure (a missing-scheme-non-relative-URL).
    colon = spec.find(":")
    if colon < 0:
        return False
    scheme = spec[:colon]
    lower = scheme.translate(_ASCII_LOWER)
    rest = colon + 1
    if lower == "file":
        return _file_url(spec, rest)
    if lower == "filesystem":
        return _filesystem_url(spec, rest)
    if lower in _HOST_PORT_USERINFO:
        return _special_url(spec, rest, full_authority=True)
    if lower in _HOST_ONLY:
        return _special_url(spec, rest, full_authority=False)
    # A scheme is an ASCII alpha followed by ASCII alphanumerics, `+`, `-` or `.`.
    if not scheme or scheme[0] not in _SCHEME_FIRST or not all(c in _SCHEME_REST for c in scheme):
        return False
    if lower in _OPAQUE_NON_SPECIAL:
        return True
    return _non_special_url(spec, rest)


# --------------------------------------------------------------------------------------------------------------
# URL shapes


def _special_url(spec: str, start: int, full_authority: bool) -> bool:
    """A special URL: "special authority ignore slashes state" then "authority state" and "host state"."""
    # Any number of `/` or `\` (including none: `http:a.test` is `http://a.test/`), then the authority up to
    # the next `/`, `\`, `?` or `#`. What follows (path, query, fragment) cannot make the URL invalid.
    i = start
    n = len(spec)
    while i < n and spec[i] in _SLASHES:
        i += 1
    end = i
    while end < n and spec[end] not in _SPECIAL_AUTHORITY_END:
        end += 1
    _userinfo, host, port = _split_authority(spec[i:end], special=True)
    # [URL] "host state": a special URL's host may not be empty (host-missing), with or without userinfo or port.
    if not host:
        return False
    if not full_authority:
        port = None  # Chromium: a host-only scheme has no userinfo or port at all; they are dropped unchecked
    return _special_host_ok(host) and (port is None or _port_ok(port))


def _non_special_url(spec: str, start: int) -> bool:
    """A non-special URL: "path or authority state" (`//`), "path state" (`/`) or "opaque path state"."""
    n = len(spec)
    if not spec.startswith("//", start):
        return True  # a path or an opaque path: never a failure
    i = start + 2
    end = i
    while end < n and spec[end] not in _NON_SPECIAL_AUTHORITY_END:
        end += 1
    _userinfo, host, port = _split_authority(spec[i:end], special=False)
    # "host state": after userinfo (`foo://@`, `foo://u@`) or before a port (`foo://:1`) the host is missing.
    if host is None:
        return False
    if not host:
        return True  # `foo://` and `foo:///x` have an empty host
    return _opaque_host_ok(host) and (port is None or _port_ok(port))


def _file_url(spec: str, start: int) -> bool:
    """ "file state" / "file slash state" / "file host state" (Chromium: url_parse_file.cc, non-Windows)."""
    n = len(spec)
    i = start
    while i < n and spec[i] in _SLASHES:
        i += 1
    if i - start != 2:
        return True  # no host: `file:x`, `file:/x`, `file:///x`; a path cannot fail
    # Chromium: the host runs to the next slash or backslash (not to `?` or `#`), and may be empty.
    end = i
    while end < n and spec[end] not in _SLASHES:
        end += 1
    host = spec[i:end]
    return not host or _special_host_ok(host)


def _filesystem_url(spec: str, start: int) -> bool:
    """Chromium only: `filesystem:<standard or file URL>` whose path starts with a type segment.

    url_parse.cc DoParseFileSystemURL and url_canon_filesystemurl.cc: the inner URL loses its userinfo (and a
    file URL its host); its path up to the second slash is the filesystem type, which must canonicalize to
    more than `/`.
    """
    inner = spec[start:].lstrip(_C0_OR_SPACE)  # the inner URL is trimmed too
    colon = inner.find(":")
    if colon < 0 or colon == len(inner) - 1:
        return False
    inner_scheme = inner[:colon].translate(_ASCII_LOWER)
    n = len(inner)
    i = colon + 1
    while i < n and inner[i] in _SLASHES:
        i += 1
    if inner_scheme == "file":
        slashes = i - colon - 1
        if slashes == 2:
            while i < n and inner[i] not in _SLASHES:
                i += 1
            path_start = i
        else:
            path_start = i - 1 if slashes else i
    elif inner_scheme in _HOST_PORT_USERINFO or inner_scheme in _HOST_ONLY:
        end = i
        while end < n and inner[end] not in _SPECIAL_AUTHORITY_END:
            end += 1
        _userinfo, host, port = _split_authority(inner[i:end], special=True)
        if not host or not _special_host_ok(host):
            return False
        if inner_scheme in _HOST_PORT_USERINFO and port is not None and not _port_ok(port):
            return False
        path_start = end
    else:
        return False
    path_end = path_start
    while path_end < n and inner[path_end] not in "?#":
        path_end += 1
    if path_end == path_start:
        return False  # no path, so no filesystem type
    if inner[path_start] in _SLASHES:
        # The type runs to the next slash, looked for to the end of the whole URL.
        type_end = path_start + 1
        while type_end < n and inner[type_end] not in _SLASHES:
            type_end += 1
        return len(_canonical_path(inner[path_start:type_end])) > 1
    return len(_canonical_path("/" + inner[path_start:path_end])) > 1


def _canonical_path(path: str) -> str:
    """Chromium's path canonicalizer, as far as slashes and dot segments go (escaping is left out)."""
    out: list[str] = []
    i = 0
    n = len(path)
    while i < n:
        dot = _dot_length(path, i)
        if dot and out and out[-1] == "/":
            after = i + dot
            if after == n or path[after] in _SLASHES:
                i = after + 1  # "." segment: dropped with its slash
                continue
            second = _dot_length(path, after)
            if second and (after + second == n or path[after + second] in _SLASHES):
                # ".." segment: back up to the previous slash, never above the first one.
                if len(out) > 1:
                    del out[-1]
                    while len(out) > 1 and out[-1] != "/":
                        del out[-1]
                i = after + second + 1
                continue
        out.append("/" if path[i] in _SLASHES else path[i])
        i += 1
    return "".join(out)


def _dot_length(path: str, i: int) -> int:
    """1 for `.`, 3 for `%2e`, else 0 (Chromium's IsDot)."""
    if path[i] == ".":
        return 1
    if path[i] == "%" and path[i + 1 : i + 3].lower() == "2e":
        return 3
    return 0


# --------------------------------------------------------------------------------------------------------------
# Authority


def _split_authority(authority: str, special: bool) -> tuple[str | None, str | None, str | None]:
    """Split `userinfo@host:port` as Chromium's DoParseAuthority does: (userinfo, host, port), None = absent.

    [URL] "authority state": the last `@` ends the userinfo. Then "host state": a `:` outside `[...]` starts the
    port. An empty host is None for a special URL; a non-special URL has an empty host only with no authority.
    """
    if not authority:
        return None, None if special else "", None
    at = authority.rfind("@")
    userinfo = authority[:at] if at >= 0 else None
    server = authority[at + 1 :]
    if not server:
        return userinfo, None, None
    bracket = authority.rfind("]", at + 1)
    ipv6_end = bracket - at - 1 if bracket >= 0 else (len(server) if server[0] == "[" else -1)
    colon = server.rfind(":")
    if colon > ipv6_end:
        return userinfo, server[:colon] or None, server[colon + 1 :]
    return userinfo, server, None


def _port_ok(port: str) -> bool:
    """[URL] "port state": ASCII digits only, at most 65535; an empty port is no port."""
    digits = port.lstrip("0")
    return len(digits) <= 5 and all(c in _DEC for c in digits) and (not digits or int(digits) <= 65535)


# --------------------------------------------------------------------------------------------------------------
# Hosts: [URL] "host parser"


def _opaque_host_ok(host: str) -> bool:
    """[URL] "opaque-host parser" (non-special URLs): no forbidden host code point; `[...]` must be IPv6."""
    if any(c in _FORBIDDEN_OPAQUE_HOST for c in host):
        return False
    if "[" in host or "]" in host or ":" in host:
        return _ipv6_ok(host)
    return True


def _special_host_ok(host: str) -> bool:
    """[URL] "host parser" for a special URL's non-empty host: decode, IDNA, then IPv4/IPv6 or a domain."""
    canonical = _ascii_host(host) if host.isascii() and "%" not in host else _complex_host(host)
    return canonical is not None and _ip_ok(canonical)


def _ascii_host(host: str) -> str | None:
    """Chromium's DoSimpleHost over ASCII text: lowercase, escape a space and `*`, None on a forbidden one."""
    out: list[str] = []
    i = 0
    n = len(host)
    while i < n:
        c = host[i]
        if c == "%":
            # Percent-decoding ([URL] host parser step 4), here done as Chromium does it: in place.
            if i + 2 < n and host[i + 1] in _HEX and host[i + 2] in _HEX:
                c = chr(int(host[i + 1 : i + 3], 16))
                i += 2
            else:
                return None
        if ord(c) >= 0x80:
            return None  # a decoded byte that is not ASCII: handled by _complex_host, never valid here
        mapped = _HOST_CHAR[ord(c)]
        if not mapped:
            return None
        out.append(mapped)
        i += 1
    return "".join(out)


def _to_bytes(text: str) -> bytes:
    """The header bytes `text` was decoded from (UTF-8 with surrogateescape); any other lone surrogate becomes
    bytes that are not UTF-8 either."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _complex_host(host: str) -> str | None:
    """A host with non-ASCII code points or percent-escapes (Chromium's DoComplexHost and DoIDNHost)."""
    raw = _to_bytes(host)
    if b"%" in raw:
        # Percent-decode the bytes; every ASCII result must be allowed in a host.
        decoded = bytearray()
        i = 0
        n = len(raw)
        while i < n:
            b = raw[i]
            if b == 0x25:
                if i + 2 < n and chr(raw[i + 1]) in _HEX and chr(raw[i + 2]) in _HEX:
                    b = int(raw[i + 1 : i + 3], 16)
                    i += 2
                else:
                    return None
            if b < 0x80 and not _HOST_CHAR[b]:
                return None
            decoded.append(b)
            i += 1
        raw = bytes(decoded)
    try:
        text = raw.decode("utf-8")  # [URL] "UTF-8 decode without BOM or fail"
    except UnicodeDecodeError:
        return None
    if text.isascii():
        return _ascii_host(text)  # percent-escapes that decode to ASCII: no IDNA
    if len(text) > _MAX_IDN_HOST:
        return None  # (checked again below, exactly, once escaped)
    # Before IDNA, Chromium lowercases ASCII and escapes a space and `*` (a forbidden one fails the host).
    if any(ord(c) < 0x80 and not _HOST_CHAR[ord(c)] for c in text):
        return None
    prepared = "".join(_HOST_CHAR[ord(c)] if ord(c) < 0x80 else c for c in text)
    if len(prepared) + sum(1 for c in prepared if ord(c) > 0xFFFF) > _MAX_IDN_HOST:
        return None
    ascii_host = _domain_to_ascii(prepared)
    if not ascii_host:
        return None
    # The ASCII result is read again like any host (it may hold `%` escapes, or a `%` mapped from U+FF05).
    return _ascii_host(ascii_host)


# --------------------------------------------------------------------------------------------------------------
# IP addresses: [URL] "IPv4 parser" and "IPv6 parser", as Chromium's url_canon_ip.cc runs them

_NEUTRAL: Final = 0  # not an IP address: a domain
_IPV4: Final = 1
_BROKEN: Final = 2  # looks like an IP address but is not a valid one: the host is invalid


def _ip_ok(host: str) -> bool:
    """Chromium's CanonicalizeIPAddress: False when the host is a broken IPv4 or IPv6 address."""
    family = _ipv4_family(host)
    if family != _NEUTRAL:
        return family == _IPV4
    if "[" in host or "]" in host or ":" in host:
        return _ipv6_ok(host)
    return True


def _ipv4_family(host: str) -> int:
    """[URL] "ends in a number checker" + "IPv4 parser", with Chromium's outcome: neutral, IPv4 or broken."""
    if host.endswith("."):
        host = host[:-1]
    if not host:
        return _NEUTRAL
    parts = host.split(".")
    if len(parts) > 4:
        # Chromium reads the parts from the last; a non-number last part makes a domain, else too many parts.
        return _NEUTRAL if _ipv4_number(parts[-1]) is None else _BROKEN
    values: list[int] = []
    for index, part in enumerate(reversed(parts)):
        number = _ipv4_number(part)
        if number is None:
            return _NEUTRAL if index == 0 else _BROKEN
        if number < 0:
            return _BROKEN
        values.append(number)
    # Every part but the last is one byte; the last fills the remaining bytes.
    if any(v > 255 for v in values[1:]):
        return _BROKEN
    return _IPV4 if values[0] < 256 ** (5 - len(values)) else _BROKEN


def _ipv4_number(part: str) -> int | None:
    """[URL] "IPv4 number parser": the value, None when not a number (neutral), -1 when broken."""
    if not part:
        return None
    if part[0] == "0" and len(part) > 1 and part[1] in "xX":
        digits, base, allowed = part[2:], 16, _HEX
    elif part[0] == "0" and len(part) > 1:
        digits, base, allowed = part[1:], 8, _OCT
    else:
        digits, base, allowed = part, 10, _DEC
    digits = digits.lstrip("0")
    broken_octal = False
    for c in digits:
        if c not in allowed:
            if c in _DEC:
                broken_octal = True  # `08`, `1.09`: a number, but not a valid one
            else:
                return None
    if broken_octal:
        return -1
    if len(digits) > 16:
        return -1
    value = int(digits, base) if digits else 0
    return value if value <= 0xFFFFFFFF else -1


def _ipv6_ok(host: str) -> bool:
    """[URL] "IPv6 parser" on `[...]`, as Chromium's DoParseIPv6 runs it (an IPv4 tail may be hex/octal)."""
    if len(host) < 3 or host[0] != "[" or host[-1] != "]":
        return False
    s = host[1:-1]
    end = len(s)
    pieces = 0
    compress = -1
    ipv4: str | None = None
    piece_start = 0
    i = 0
    while True:
        is_colon = i < end and s[i] == ":"
        is_compress = is_colon and i < end - 1 and s[i + 1] == ":"
        if is_colon or i == end:
            length = i - piece_start
            if length > 4:
                return False
            if length == 0 and not ((is_compress and i == 0) or (i == end and compress == pieces)):
                return False
            if length > 0:
                if pieces >= 8:
                    return False
                pieces += 1
        if i == end:
            break
        if is_compress:
            if compress != -1:
                return False
            compress = pieces
            i += 1
        if is_colon:
            piece_start = i + 1
        elif s[i] not in _HEX:
            if s[i] in _IPV4_CHARS:
                ipv4 = s[piece_start:]
                break
            return False
        i += 1
    size = pieces * 2 + (4 if ipv4 is not None else 0)
    if compress != -1:
        size += max(16 - size, 2)
    if size != 16:
        return False
    if ipv4 is not None:
        # The IPv4 tail: four parts, no trailing dot, each a valid IPv4 number.
        if ipv4.endswith(".") or ipv4.count(".") != 3:
            return False
        return _ipv4_family(ipv4) == _IPV4
    return True


# --------------------------------------------------------------------------------------------------------------
# [URL] "domain to ASCII": UTS #46 ToASCII as Chromium calls ICU (url_idna_icu.cc): CheckBidi on,
# CheckJoiners on, Transitional_Processing off, CheckHyphens off, UseSTD3ASCIIRules off, VerifyDnsLength off.
# Errors other than hyphen and length ones (disallowed, punycode, invalid ACE label, leading combining mark,
# bidi, joiners) fail the host.

# Transitional "deviation" characters: valid as themselves under nontransitional processing.
_DEVIATIONS: Final = frozenset("\u00df\u03c2\u200c\u200d")
# UTS #46 "ignored": mapped to nothing (the default-ignorable code points Chromium 156's ICU drops; the other
# default-ignorables, such as U+200E or U+E0001, are disallowed).
_IGNORED: Final = frozenset(
    "\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u200b\u3164\ufeff\uffa0"
    + "".join(chr(c) for c in range(0x2060, 0x2065))
    + "".join(chr(c) for c in range(0x206A, 0x2070))
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))
    + "".join(chr(c) for c in range(0x1BCA0, 0x1BCA4))
    + "".join(chr(c) for c in range(0x1D173, 0x1D17B))
    + "".join(chr(c) for c in range(0xE0100, 0xE01F0))
)
# The label separators UTS #46 maps to `.`; any other character whose mapping contains `.` is disallowed.
_DOTS: Final = frozenset("\u3002\uff0e\uff61")
# Disallowed although of an allowed general category (UTS #46 IdnaMappingTable).
_DISALLOWED_EXTRA: Final = frozenset("\ufffc\ufffd\u1680" + "".join(chr(c) for c in range(0x2FF0, 0x3000)))
# Joining_Type, for the CheckJoiners rule on U+200C (RFC 5892 A.1), as Chromium 156's ICU has it for the joining
# scripts (Arabic, Syriac, N'Ko, Mandaic, Mongolian, Phags-pa, Manichaean, Psalter Pahlavi, Hanifi Rohingya,
# Sogdian, Old Uyghur, Chorasmian, Adlam); measured code point by code point. Marks and format characters are
# transparent; everything else does not join.
_JOINING: Final = {
    "R": """622-625 627 629 62F-632 648 671-673 675-678 688-699 6C0 6C3-6CB 6CD 6CF 6D2-6D3 6D5 6EE-6EF 710
        715-719 71E 728 72A 72C 72F 74D 759-75B 76B-76C 771 773-774 778-779 840 846-847 849 854 856-858 867
        869-86A 870-882 88E 8AA-8AC 8AE 8B1-8B2 8B9 10AC5 10AC7 10AC9-10ACA 10ACE-10AD2 10ADD 10AE1 10AE4
        10AEF 10B81 10B83-10B85 10B89 10B8C 10B8E-10B8F 10B91 10BA9-10BAC 10D22 10F33 10F54 10F74-10F75
        10FB4-10FB6 10FB9-10FBA 10FBD 10FC2-10FC3 10FC9""",
    "L": "A872 10ACD 10AD7 10D00 10FCB",
    "D": """620 626 628 62A-62E 633-63F 641-647 649-64A 66E-66F 679-687 69A-6BF 6C1-6C2 6CC 6CE 6D0-6D1 6FA-6FC
        6FF 712-714 71A-71D 71F-727 729 72B 72D-72E 74E-758 75C-76A 76D-770 772 775-777 77A-77F 7CA-7EA
        841-845 848 84A-853 855 860 862-865 868 886 889-88D 8A0-8A9 8AF-8B0 8B3-8B8 8BA-8C8 1807 1820-1878
        1887-18A8 18AA A840-A871 10AC0-10AC4 10AD3-10AD6 10AD8-10ADC 10ADE-10AE0 10AEB-10AEE 10B80 10B82
        10B86-10B88 10B8A-10B8B 10B8D 10B90 10BAD-10BAE 10D01-10D21 10D23 10F30-10F32 10F34-10F44
        10F51-10F53 10F70-10F73 10F76-10F81 10FB0 10FB2-10FB3 10FB8 10FBB-10FBC 10FBE-10FBF 10FC1 10FC4
        10FCA 1E900-1E943""",
}


def _joining_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for kind, spans in _JOINING.items():
        for span in spans.split():
            first, _, last = span.partition("-")
            for cp in range(int(first, 16), int(last or first, 16) + 1):
                table[cp] = kind
    return table


_JOINING_TYPE: Final = _joining_table()
_TRANSPARENT_CATEGORIES: Final = frozenset({"Mn", "Me", "Cf"})
_VIRAMA: Final = 9  # canonical combining class


_DISALLOWED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

_BIDI_RTL: Final = frozenset({"R", "AL"})
_BIDI_RTL_LABEL: Final = frozenset({"R", "AL", "AN"})
_BIDI_LTR_ALLOWED: Final = frozenset({"L", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"})
_BIDI_RTL_ALLOWED: Final = frozenset({"R", "AL", "AN", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"})
_BIDI_RTL_END: Final = frozenset({"R", "AL", "EN", "AN"})
_BIDI_LTR_END: Final = frozenset({"L", "EN"})


def _uts46_map(c: str) -> str | None:
    """UTS #46 mapping of one code point (approximated from NFKC_Casefold); None when disallowed."""
    if c.isascii():
        return c.lower()
    if c in _DEVIATIONS:
        return c
    if c in _IGNORED:
        return ""
    if c in _DISALLOWED_EXTRA or unicodedata.category(c) in _DISALLOWED_CATEGORIES:
        return None
    mapped = unicodedata.normalize("NFKC", unicodedata.normalize("NFKD", c).casefold())
    if c in _DOTS:
        return "."
    if "." in mapped:
        return None
    for m in mapped:
        if not m.isascii() and (m in _DISALLOWED_EXTRA or unicodedata.category(m) in _DISALLOWED_CATEGORIES):
            return None
    return mapped


def _domain_to_ascii(domain: str) -> str | None:
    """UTS #46 ToASCII (Chromium's options), or None on a severe error or an empty result."""
    mapped_chars: list[str] = []
    for c in domain:
        m = _uts46_map(c)
        if m is None:
            return None
        mapped_chars.append(m)
    mapped = unicodedata.normalize("NFC", "".join(mapped_chars))
    labels = mapped.split(".")
    bidi_domain = False
    bidi_ok = True
    out: list[str] = []
    for label in labels:
        if not label:
            out.append(label)
            continue
        if label.startswith("xn--"):
            unicode_label = _punycode_label(label[4:])
            if unicode_label is None:
                return None
            out.append(label)
        else:
            unicode_label = label
            out.append(label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii"))
        if unicodedata.category(unicode_label[0]).startswith("M"):
            return None  # a label may not begin with a combining mark
        if ("\u200c" in unicode_label or "\u200d" in unicode_label) and not _joiners_ok(unicode_label):
            return None
        directions = [unicodedata.bidirectional(c) for c in unicode_label]
        if not bidi_domain and any(d in _BIDI_RTL_LABEL for d in directions):
            bidi_domain = True
        if bidi_ok and not _bidi_label_ok(directions):
            bidi_ok = False
    if bidi_domain and not bidi_ok:
        return None
    return ".".join(out)


def _punycode_label(encoded: str) -> str | None:
    """Decode the part after `xn--`; None unless it is valid Punycode of a valid, normalized label."""
    if not encoded or not encoded.isascii():
        return None
    try:
        decoded = encoded.encode("ascii").decode("punycode")
    except (UnicodeError, ValueError, IndexError, OverflowError):
        return None
    if not decoded or decoded.isascii():
        return None
    for c in decoded:
        if ord(c) < 0x80:
            continue
        if 0xD800 <= ord(c) <= 0xDFFF or _uts46_map(c) != c:
            return None
    if unicodedata.normalize("NFC", decoded) != decoded:
        return None
    return decoded


def _bidi_label_ok(directions: list[str]) -> bool:
    """RFC 5893 section 2, as ICU's checkLabelBiDi applies it."""
    first = directions[0]
    last_index = len(directions) - 1
    while last_index > 0 and directions[last_index] == "NSM":
        last_index -= 1
    last = directions[last_index]
    middle = set(directions[: last_index + 1])
    if first == "L":
        return last in _BIDI_LTR_END and middle <= _BIDI_LTR_ALLOWED
    if first not in _BIDI_RTL:
        return False
    return last in _BIDI_RTL_END and middle <= _BIDI_RTL_ALLOWED and not {"EN", "AN"} <= middle


def _joining_type(c: str) -> str:
    if c in "\u200c\u200d":
        return "U"  # (ZWJ is join-causing; for the ZWNJ rule it is as good as non-joining)
    kind = _JOINING_TYPE.get(ord(c))
    if kind is not None:
        return kind
    return "T" if c == "\U0001e94b" or unicodedata.category(c) in _TRANSPARENT_CATEGORIES else "U"


def _joiners_ok(label: str) -> bool:
    """RFC 5892 appendix A.1 and A.2 (UTS #46 CheckJoiners): where U+200C and U+200D may stand."""
    for i, c in enumerate(label):
        if c not in "\u200c\u200d":
            continue
        if i == 0:
            return False
        if unicodedata.combining(label[i - 1]) == _VIRAMA:
            continue
        if c == "\u200d":
            return False
        # U+200C between a left- or dual-joining and a right- or dual-joining letter, transparent ones skipped.
        j = i - 1
        while j >= 0 and _joining_type(label[j]) == "T":
            j -= 1
        if j < 0 or _joining_type(label[j]) not in ("L", "D"):
            return False
        j = i + 1
        while j < len(label) and _joining_type(label[j]) == "T":
            j += 1
        if j == len(label) or _joining_type(label[j]) not in ("R", "D"):
            return False
    return True
