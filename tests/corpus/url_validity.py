"""Candidate URL strings, and Chromium's verdict on each: is it a valid URL, as its CORS check decides?

Chromium's CORS check calls an Access-Control-Allow-Origin value that is not the request's origin
InvalidAllowOriginValue when `GURL(value)` is invalid, AllowOriginMismatch otherwise (BROWSERS.md §5.2).
`tests/corpus/url_validity.json` maps each value below to that verdict (true: a valid URL), measured in headless
Chromium (see "Recording" below: the CORS check itself for every value a header can carry, `new URL(value)` for
the rest). `tests/test_urlparse.py` checks `mitmcors.urlparse.is_valid_url` against every entry.

Re-record (Debian's /usr/bin/chromium, Playwright from the test extra; about three minutes), from the
repository root:

    .venv-3.12/bin/python tests/corpus/url_validity.py            # rewrite tests/corpus/url_validity.json
    .venv-3.12/bin/python tests/corpus/url_validity.py --check    # compare only; exit 1 on any difference

It regenerates the values, measures them all and rewrites the JSON (sorted, with the Chromium version, and the
values where `new URL` disagrees with the CORS check). Then run `pytest tests/test_urlparse.py`.

The values are deterministic and do not depend on the Python version: non-ASCII samples are code points that
Unicode 3.2 already assigned (`unicodedata.ucd_3_2_0`, the same in every Python), so that every supported
Python's own Unicode database knows them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
import unicodedata
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
JSON_PATH = HERE / "url_validity.json"
CHROMIUM = Path("/usr/bin/chromium")

# ---------------------------------------------------------------------------------------------------------
# 1. The first table (issue 7): schemes x separators x hosts x ports x tails, one axis at a time and pairwise.

SCHEMES = [
    "http", "https", "HTTP", "hTtPs", "ws", "ftp", "file", "foo", "data", "mailto", "javascript",
    "chrome-extension", "1http", "h_t", "h+t", "h.t-x", "",
]  # fmt: skip
SEPS = ["://", ":/", ":", ":///", "//", ":\\\\", ":\\/", ":/\\", "://\\", ":////", "::/", ":://", ";//", "://:"]
HOSTS = [
    "a.test", "A.TEST", "a..test", ".a.test", "a.test.", "a_b.test", "a-b.test", "-a.test", "a b", "a%20b",
    "a%41", "a%2", "%", "a%zz", "a%2e", "xn--", "xn--abc", "xn--a.test", "\u00fc.test", "a\u00a0b",
    "a\u3002test", "[::1]", "[::1", "::1]", "[::1]]", "[1:2:3:4:5:6:7:8:9]", "[::ffff:1.2.3.4]", "[::1%25eth0]",
    "[fe80::]", "[:::]", "[::g]", "1.2.3.4", "1.2.3.256", "1.2.3.4.5", "0x7f.1", "0x7f.0.0.1", "999999999999",
    "4294967296", "4294967295", "01.02.03.04", "1.2.3", "1.2.3.4.", "1.2.3.09", "localhost", "a<b", "a>b",
    "a^b", "a|b", "a@b", "user@a.test", "user:pw@a.test", ":@a.test", "@a.test", "", "*", "a*b", "*.a.test",
    "a\tb", "a\\b", "a/b", "a?b", "a#b", "a[b", "a]b", 'a"b', "a'b", "a{b", "a`b", "a~b", "a!b", "a$b", "a&b",
    "a(b", "a+b", "a,b", "a;b", "a=b", "a%b", "a\x7fb", "a\x00b", "a\x01b",
]  # fmt: skip
PORTS = [
    "", ":", ":80", ":443", ":8000", ":65535", ":65536", ":99999", ":8000%20", ":80:80", ":8a", ":-1", ":+80",
    ": 80", ":0", ":00080", ":8000/", ":8000?", ":8000#", ":%38",
]  # fmt: skip
TAILS = ["", "/", "/path", "?q", "#f", "%20", "\\", "/.", "/..", "/%", "/a b"]


def first_table() -> set[str]:
    values: set[str] = set()
    base = ("http", "://", "a.test", ":8000", "")
    for i, choices in enumerate([SCHEMES, SEPS, HOSTS, PORTS, TAILS]):
        for c in choices:
            parts = list(base)
            parts[i] = c
            values.add("".join(parts))
    for s, sep in itertools.product(SCHEMES, SEPS):
        values.add(f"{s}{sep}a.test")
    for h, p in itertools.product(HOSTS, PORTS):
        values.add(f"http://{h}{p}")
    for s, h in itertools.product(["https", "foo", "file", "ws"], HOSTS):
        values.add(f"{s}://{h}")
    for sep, h in itertools.product(SEPS, HOSTS[:30]):
        values.add(f"http{sep}{h}")
    values |= {"null", "NULL", "a.test", "//a.test", "*", "a", "http", "http:", "http:/", "http://", "http:///",
               "x:", "x", ":", "1", "data:,", "about:blank", "blob:http://a.test/x"}  # fmt: skip
    # That table kept what can arrive in a header after the HTTP parser trims whitespace, and nothing with a
    # space or comma (Chromium calls those MultipleAllowOriginValues before parsing).
    return {v for v in values if v == v.strip(" \t") and "," not in v and " " not in v}


# ---------------------------------------------------------------------------------------------------------
# 2. More classes: every ASCII character in each part, percent-escapes, IPv4 and IPv6 edges, userinfo,
#    backslashes, removable whitespace, trimmed controls, ports, schemes, filesystem:, non-ASCII and IDNA.

ASCII = [chr(c) for c in range(0x80)]
EVERY_SCHEME_KIND = ["http", "ws", "ftp", "file", "foo", "chrome", "data", "android"]


def every_ascii_char() -> set[str]:
    forms = [
        "http://a{c}b", "http://a{c}b/", "https://{c}", "foo://a{c}b", "foo://a{c}b/", "file://a{c}b",
        "chrome://a{c}b", "http://a.test:8{c}0", "foo://a.test:8{c}0", "http://a{c}@b", "http://u:{c}@b",
        "http://a/{c}", "foo:{c}", "{c}http://a", "http://a{c}", "ht{c}tp://a", "h{c}://a", "http:{c}//a",
        "http:/{c}/a", "foo:/{c}/a", "foo:/{c}", "http://[::1{c}]", "http://1.2.3.4{c}", "http://a?{c}",
        "http://a#{c}", "mailto:{c}", "data://a{c}b",
    ]  # fmt: skip
    return {form.format(c=c) for form in forms for c in ASCII}


def percent_escapes() -> set[str]:
    out: set[str] = set()
    for b in range(0x100):
        for form in ("http://a%{:02X}b", "http://a%{:02x}b", "foo://a%{:02X}b", "file://a%{:02X}b"):
            out.add(form.format(b))
    hosts = [
        "%41", "%2e", "%2E", "%2e%2e", "a%2e", "%00", "%20", "%2A", "%25", "%2525", "%zz", "%4", "%", "%%",
        "%C3%BC", "%c3%bc", "%C3%9C", "%FF", "%C3", "%C3%", "%E2%80%8B", "%EF%BC%8E", "%EF%BC%85%34%31",
        "%5B::1%5D", "[::%31]", "[%3A%3A1]", "%31.%32.%33.%34", "0x%37f.1", "1.2.3.%32%35%36", "%2F", "%3A",
        "%40", "%5C", "%7C", "%23", "%3F", "%3C", "%5E", "a%20b", "%20a", "a%20", "%2A.a.test", "%E2%82%AC",
        "%F0%9F%98%80", "%ED%A0%80", "%C0%AF", "%E3%80%82", "a%2Fb", "xn--%41", "%78n--tda", "%D7%90",
        "%D7%90%31", "a%C3%BC%2E%D7%90",
    ]  # fmt: skip
    for h in hosts:
        for scheme in ("http", "foo", "file", "chrome"):
            out.add(f"{scheme}://{h}")
        out.add(f"http://{h}:80/")
    out |= {
        "http://a.test:%38%30", "http://a.test:8%30", "http://u%40@a.test", "http://u:%40@a.test",
        "http://a.test/%zz", "http://a.test/%", "http://a.test?%zz", "http://a.test#%zz", "ht%74p://a.test",
    }  # fmt: skip
    return out


IPV4_HOSTS = [
    "0", "00", "0.0.0.0", "255.255.255.255", "256.0.0.0", "4294967295", "4294967296", "0xffffffff",
    "0xFFFFFFFF", "0x100000000", "037777777777", "040000000000", "1.16777215", "1.16777216", "1.2.65535",
    "1.2.65536", "0x7f.1", "0x", "0X", "0x.", "0x.0x", "0X1", "0xg", "0x1g", "08", "0.08", "09.1", "1.09",
    "1.2.3.4.5", "1.2.3.4.5.a", "1.2.3.4.", "1.2.3.4..", ".1.2.3.4", "1..2.3", "1.2..3", "a.1", "1.a",
    "a.0x1", "1.2.3.0x", "00000000000000000000001", "0x00000000000000000000001", "12345678901234567",
    "1234567890123456", "0x1234567890abcdef0", "1e1", "1.2.3.4x", "-1", "+1", "1.2.3.-4", "0x1.0x2.0x3.0x4",
    "01.02.03.0400", "4294967295.", "0.0x0.00.0", "999.1", "1.999", "0377.0377.0377.0377", "0400.1.1.1",
    "1.2.3.4.5.6", "a.b.c.1", "a.b.c.d", "1.2.3.a", "0x.0x.0x.0x.0x", "127.1", "127.0.1", "1.1.1.1.",
    "1.2.3.4:", ".", "..", "...", "1.", "1..", "0..0", "a1.1", "1a.1", "0xa.1", "0xA.1", "0x0x1",
]  # fmt: skip
IPV6_HOSTS = [
    "[::]", "[::1]", "[1::]", "[1:2:3:4:5:6:7:8]", "[1:2:3:4:5:6:7:8:9]", "[1:2:3:4:5:6:7::]",
    "[::1:2:3:4:5:6:7]", "[1::2::3]", "[:::]", "[::1:]", "[:1::]", "[1:::2]", "[12345::]", "[1:2:3:4:5:6:1.2.3.4]",
    "[1:2:3:4:5:6:7:1.2.3.4]", "[::1.2.3.4]", "[::ffff:1.2.3.4]", "[::1.2.3]", "[::1.2.3.4.5]", "[::1.2.3.256]",
    "[::1.2.3.0x4]", "[::01.2.3.4]", "[::1.2.3.4.]", "[::ffff:1.2.3.4:5]", "[fe80::1%25eth0]", "[v1.x]", "[::g]",
    "[]", "[ ::1]", "[::1 ]", "[0:0:0:0:0:0:0:0]", "[0000:0000::]", "[00000::]", "[::FFFF]", "[::1]x",
    "[::1]]", "[[::1]]", "[::1", "::1]", "::1", "[::1]%20", "[::%31]", "[::1.2.3.04]", "[::1.2.3.4]:80",
    "[a:b:c:d:e:f:0:1]", "[A:B:C:D:E:F:0:1]", "[1:2:3:4:5:6:7:8]:65535", "[::1.2]", "[1.2.3.4]", "[::1.2.3.4.5.6]",
    "[1::1.2.3.4]", "[::a.2.3.4]", "[::1.2.3.08]", "[::0xffffffff]", "[::1:2:3:4:5:6:1.2.3.4]",
    "[::1:2:3:4:5:1.2.3.4]", "[1:2:3:4:5:6:7::8]", "[::ffff:192.168.1.1]", "[x::1]", "[::1]:", "[::1]:abc",
    "[::1]a:80", "[::1]:80:80", "[\uff11::]", "[::\u0661]",
]  # fmt: skip


def ip_hosts() -> set[str]:
    out: set[str] = set()
    for h in IPV4_HOSTS + IPV6_HOSTS:
        for scheme in ("http", "file", "foo", "chrome"):
            out.add(f"{scheme}://{h}")
        out.add(f"http://{h}:80/x")
        out.add(f"http://u@{h}")
        out.add(f"filesystem:http://{h}/temporary/x")
    return out


def userinfo_forms() -> set[str]:
    users = [
        "u", "u:p", ":p", "", "u:", "u@", "u:p:q", "u%40", "\u00fc", "u<p", "[u]", "u/p", "u\\p", "u?p", "u#p",
        "u p", "u\tp", ":", "::", "@", "u@v", "u:p@v:q", "u%zz", "u%", "\u00a0",
    ]  # fmt: skip
    hosts = ["a.test", "a.test:80", "", ":80", "[::1]", "a.test:x", "a<b"]
    out: set[str] = set()
    for u, h in itertools.product(users, hosts):
        for scheme in ("http", "foo", "file", "chrome", "ws"):
            out.add(f"{scheme}://{u}@{h}")
    return out


def slash_forms() -> set[str]:
    seps = [
        ":", ":/", "://", ":///", ":////", ":\\", ":\\\\", ":\\\\\\", ":/\\", ":\\/", ":/\\/", ":\\//", "://\\",
        ":/./", ":.//", ":%2F%2F", ":?", ":#", ":?//a", ":#//a",
    ]  # fmt: skip
    tails = ["a.test", "a.test\\x", "a.test\\@x", "u\\@a.test", "a.test/\\", "", "@a.test", "a.test:80\\x"]
    out: set[str] = set()
    for scheme, sep, tail in itertools.product([*EVERY_SCHEME_KIND, "mailto", "filesystem"], seps, tails):
        out.add(f"{scheme}{sep}{tail}")
    return out


def whitespace_forms() -> set[str]:
    out: set[str] = set()
    base = "http://a.test:80/p?q#f"
    for ws in ("\t", "\n", "\r", "\r\n", "\t\t"):
        for i in range(len(base) + 1):
            out.add(base[:i] + ws + base[i:])
    for scheme in ("data", "DATA", "Data", "foo", "http", "file"):
        for body in ("://a\tb", "://a\nb", ":a\tb", "://[::\t1]", "://a:8\t0", "://a\t@b", "://a%\t20b"):
            out.add(scheme + body)
    out |= {" data://a\tb", "\tdata://a\tb", "data:\t", "data:\t//a", "data:x\t", "da\tta://a\tb", "data:"}
    # Leading controls that the HTTP parser keeps but the URL parser trims, before a data: URL with a tab.
    for lead in ("\x01", "\x1f", "\x0b\x0c", "\x7f"):
        for scheme in ("data", "DATA", "foo"):
            out |= {f"{lead}{scheme}://a\tb", f"{lead}{scheme}:/\t/a", f"{lead}{scheme}://a\nb"}
    return out


def invalid_utf8_forms() -> set[str]:
    """Bytes that are not UTF-8 (written as mitmproxy decodes them: U+DC80..U+DCFF, surrogateescape) in each part.

    Only the CORS check can judge these: a JavaScript string cannot hold them.
    """
    out: set[str] = set()
    for byte in ("\udcff", "\udc80", "\udcc3", "\udcbc"):
        for form in (
            "http://a{b}b", "http://{b}", "http://a.test/{b}", "http://a.test?{b}", "http://a.test#{b}",
            "http://{b}@a.test", "http://u:{b}@a.test", "http://a.test:8{b}", "h{b}tp://a.test", "{b}http://a.test",
            "foo://a{b}b", "foo:{b}", "foo://a.test/{b}", "file://a{b}b", "file:///{b}", "chrome://a{b}b",
            "http://a%C3{b}", "http://a{b}%BC", "http://[::1{b}]", "data:{b}", "android://a{b}b",
            "filesystem:http://a/t/{b}", "http://\u00fc{b}",
        ):  # fmt: skip
            out.add(form.format(b=byte))
    out |= {"http://a%C3\udcbcb", "http://a\udcc3\udcbcb", "foo://a%C3\udcbcb", "http://a\udcc3%BCb"}
    return out


def trimmed_forms() -> set[str]:
    out: set[str] = set()
    edges = [chr(c) for c in range(0x21)] + ["\x7f", "\u00a0", "\u3000", "\u2028", "\ufeff", "\u200b", "\x85"]
    for e in edges:
        for v in ("http://a.test", "foo://a", "file://a", "data:x"):
            out.add(e + v)
            out.add(v + e)
            out.add(e + e + v + e + e)
    out |= {"", " ", "\x00", "\t", "\x00 \t\n", "\x7f", " : ", " http: ", "\x00http:\x00", " foo: "}
    return out


def port_forms() -> set[str]:
    ports = [
        ":0", ":1", ":80", ":65535", ":65536", ":000000000080", ":0000000", ":00000000000065535", ":1e3", ": 80",
        ":80 ", ":\uff18\uff10", ":0x50", ":+80", ":-0", ":80a", ":a80", "::80", ":80:80", ":", ":99999999999",
        ":4294967376", ":8%30", ":%38%30", ":80.", ":.80", ":0080", ":\u0668\u0660", ":\u00b2", ":80\u00a0",
    ]  # fmt: skip
    out: set[str] = set()
    for scheme in ("http", "https", "ws", "ftp", "chrome", "foo", "file", "devtools"):
        for p in ports:
            out.add(f"{scheme}://a.test{p}")
            out.add(f"{scheme}://a.test{p}/x")
            out.add(f"{scheme}://[::1]{p}")
    return out


def scheme_forms() -> set[str]:
    schemes = [
        "HtTp", "a", "A", "a1", "a+", "a-", "a.", "1a", "+a", "-a", ".a", "a_b", "\uff41", "ht%74p", "h\u0131tp",
        "\u212aa", "filesystem", "FILE", "File", "fiLe", "FileSystem", "blob", "javascript", "JaVaScRiPt", "data",
        "about", "chrome", "CHROME", "chrome-extension", "chrome-untrusted", "chrome-error", "chrome-search",
        "chrome-native", "chrome-distiller", "devtools", "isolated-app", "chrome-guest", "googlechrome",
        "android", "ANDROID", "steam", "drivefs", "chromeos-steam", "materialized-view", "ws", "wss", "WSS",
        "ftp", "gopher", "ftps", "https+x", "x.y", "urn", "tel", "sms", "view-source", "content", "cid",
        "intent", "git", "svn+ssh", "web+foo", "x-y", "a" * 100, "a\u0300", "\u00e9", "h\u00adttp",
    ]  # fmt: skip
    bodies = ["://a.test", ":a.test", "://", ":", "://a b", "://a<b", "://a.test:x", "://u@", "://:80", ":///x",
              "://[::1]", "://a%zz", "://1.2.3.256", "://a.test/path"]  # fmt: skip
    return {s + b for s in schemes for b in bodies}


def filesystem_forms() -> set[str]:
    inner = [
        "http://a/temporary/x", "http://a/temporary", "http://a/temporary/", "http://a/", "http://a",
        "http://a/.", "http://a/..", "http://a/%2e", "http://a/%2E%2e/x", "http://a/./x", "http://a/t?x/y",
        "http://a/t#x", "http://a?x", "http://u@a/t/x", "http://a:99999/t/x", "http://a:81/t/x", "http://a<b/t/x",
        "http://[::1]/t/x", "https://a/t\\x", "http://a\\t\\x", "chrome://a:x/t/x", "chrome://a/t", "foo://a/t/x",
        "file:///temporary/x", "file:///", "file://h/t/x", "file://a<b/t/x", "file:t", "file:.", "file:..",
        "file:./x", "file:a/..", "file:?x", "file:", "file:/", "file://", "filesystem:http://a/t/x", "http:",
        "", "x", "data:x", "HTTP://A/T/X", "ws://a/t/x", "http:a/t", "http:/\\a/t",
    ]  # fmt: skip
    return (
        {f"filesystem:{i}" for i in inner}
        | {f"FILESYSTEM:{i}" for i in inner[:5]}
        | {f"filesystem:\x01{i}" for i in inner[:8]}
        | {f"filesystem:\x01{i}" for i in inner[20:26]}
    )


# Non-ASCII: a fixed list of classes (letters, mapped, ignored, deviations, disallowed, bidi, marks, dots,
# compatibility forms that map to ASCII) in several positions.
NON_ASCII = [
    "\u00fc", "\u00dc", "\u00e9", "\u00df", "\u1e9e", "\u03c2", "\u03a3", "\u0131", "\u0130", "\u00aa", "\u00b5",
    "\u00a0", "\u2000", "\u3000", "\u1680", "\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff",
    "\u034f", "\u180e", "\u200e", "\u202e", "\u2066", "\u2028", "\u0085", "\u0080", "\u009f", "\ue000",
    "\U000f0000", "\ufffd", "\ufffc", "\ufffe", "\uffff", "\U0010ffff", "\u0378", "\u2ff0", "\u115f", "\u3164",
    "\uffa0", "\u17b4", "\u0300", "\u0903", "\u20dd", "\u05d0", "\u05d1", "\u0627", "\u0661", "\u06f1", "\u0660",
    "\u05be", "\u3002", "\uff0e", "\uff61", "\u2024", "\u2025", "\u2488", "\u00bc", "\u2474", "\u2100",
    "\uff1c", "\uff1e", "\uff0f", "\uff3c", "\uff1f", "\uff03", "\uff20", "\uff1a", "\uff3b", "\uff3d",
    "\uff05", "\ufe6a", "\uff0a", "\uff21", "\uff41", "\uff11", "\u2460", "\u2070", "\u00b2", "\u2163",
    "\ufb01", "\u2121", "\u3300", "\u0140", "\u01c4", "\u0587", "\u1e9b", "\u0345", "\u1fbe", "\u2126", "\u212a",
    "\u212b", "\u0340", "\u0f77", "\u0e33", "\u4e2d", "\u65e5\u672c", "\ud55c", "\u0915\u094d\u0937",
    "\U0001f600", "\u2603", "\u00a9", "\u2192", "\u20ac", "\u00b7", "\u0375", "\u30fb", "\u05f3", "\u0640",
    "\u0e01", "\u0f0b", "\u1100\u1161", "\u10a0", "\u13a0", "\uab70", "\u1e00", "\u0041\u030a", "\u00c5",
    "\u212b\u0301", "\u0049\u0307", "\u2f00", "\u00e0", "\u0061\u0300", "\u2010", "\u2011", "\u2212",
    "\u2044", "\u00b4", "\u02c6", "\u0483", "\U0001d400", "\U0001d7ce", "\U00020000", "\U0002f800",
    "\U000e0001", "\U000e0041", "\U000e0100", "\U0001bca0", "\u1806", "\u180b", "\ufe00", "\ufe0f",
    "\u0600", "\u06dd", "\u061c", "\u070f", "\U000110bd", "\U0001d173", "\ufff9", "\u2061", "\u2064",
]  # fmt: skip
IDNA_HOSTS = [
    "{c}",
    "a{c}b",
    "{c}.test",
    "a.{c}",
    "{c}{c}",
    "xn--{c}",
    "{c}-",
    "-{c}",
    "1{c}",
    "{c}1",
    "a{c}.b{c}",
]
IDNA_EXTRA = [
    "xn--.\u00fc", "xn--tda.\u00fc", "xn--tda", "xn--zca.\u00fc", "xn--abc-.\u00fc", "xn--a.\u00fc",
    "xn--ls8h.\u00fc", "xn--nxa.\u00fc", "xn--fsq.\u00fc", "xn--tda-.\u00fc", "xn--TDA.\u00fc", "xn--ss-.\u00fc",
    "xn--\u00fc", "XN--tda.\u00fc", "\uff58\uff4e--tda.\u00fc", "xn--4ca.\u00fc", "xn--0ca.\u00fc",
    "xn--bea.\u00fc", "xn--kgb.\u00fc", "xn--4db.\u00fc", "xn--zzzzzzzzzzzzzzzz.\u00fc", "xn--99999999.\u00fc",
    "ab--c.\u00fc", "1a.\u05d0", "a.\u05d0", "a-.\u05d0", "a.\u05d0.1a", "\u05d0.a", "\u05d01", "\u05d0\u0661",
    "\u05d01\u0661", "1\u05d0", "\u05d0-", "\u05d0a", "a\u05d0", "\u05d0\u0300", "\u0300\u05d0", "\u05d0.\u0661",
    "\u0627\u0661", "\u0627\u06f1", "\u0627 \u0628", "\u0627*\u0628", "\u0627%20\u0628", "\u05d0_\u05d1",
    "\u05d0.%", "%.\u05d0", "a%20.\u05d0", "\u05d0.a_b", "\u05d0.ab-", "\u05d0.-ab", "\u05d0..a", "\u05d0.",
    "\u05d0.1", "\u00fc.1", "1.\u00fc", "\u00fc.0x1", "\uff11.\uff12.\uff13.\uff14",
    "\uff11.\uff12.\uff13.\uff12\uff15\uff16",
    "\uff3b::1\uff3d", "\uff3b::1\uff3d:80", "a\uff05\uff14\uff11b", "a\uff05zz\u00fc", "a\uff05\uff12\uff10b\u00fc",
    "\u00ad", "\u00ad.", "\u00ad.a", "\u200b\u200b", "\u00fc" * 70, "a" * 64 + "\u00fc", ("\u00fc" * 60 + ".") * 22,
    ("\u00fc" * 60 + ".") * 21, "a" * 1300 + "\u00fc", "a" * 1264 + "\u00fc", "a" * 1265 + "\u00fc",
    "\U0001f600" * 633, "\U0001f600" * 632, "\u00fc" * 1265, "\u00fc" * 1266, "a b\u00fc", "a*b\u00fc",
    "a<b\u00fc", "a%3Cb\u00fc", "\u00fc%41", "\u00fc%zz", "\u00fc%C3%BC", "\u00fc%FF", "\u00fc%25",
    # CheckJoiners: U+200D only after a virama; U+200C after a virama or between joining letters.
    "\u0915\u094d\u200d\u0937", "\u0915\u094d\u200c\u0937", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
    "\u0628\u200c\u0628", "\u0627\u200c\u0628", "\u0628\u200c\u0627", "\u0628\u064b\u200c\u064b\u0628",
    "\u0628\u200c", "\u200c\u0628", "\u0628\u200d\u0628", "a\u094d\u200cb", "\u0b95\u0bcd\u200d",
    "\u0712\u200c\u0712", "\u0710\u200c\u0712", "\u07ca\u200c\u07ca", "\u1820\u200c\u1820",
    "\ua840\u200c\ua872", "\ua872\u200c\ua840", "\u062f\u200c\u0628", "\u0628\u0640\u200c\u0628",
    "xn--0ug.\u00fc", "a\u200c", "\u0628\u200c\u0300\u0628",
    # Long ASCII labels and hosts never reach IDNA, so no length limit applies.
    "a" * 64, "a" * 300, ("a" * 63 + ".") * 20, "a" * 5000,
]  # fmt: skip


def non_ascii_forms() -> set[str]:
    out: set[str] = set()
    for c in NON_ASCII:
        for form in IDNA_HOSTS:
            host = form.format(c=c)
            out.add(f"http://{host}")
        out.add(f"foo://a{c}b")
        out.add(f"file://a{c}b")
        out.add(f"http://a.test/{c}")
        out.add(f"http://a.test?{c}")
        out.add(f"http://a.test#{c}")
        out.add(f"http://{c}@a.test")
        out.add(f"http://a.test:8{c}")
        out.add(f"h{c}://a.test")
        out.add(f"foo:{c}")
    for host in IDNA_EXTRA:
        out.add(f"http://{host}")
        out.add(f"chrome://{host}")
        out.add(f"foo://{host}")
    return out


def code_point_sample() -> set[str]:
    """Every 89th code point Unicode 3.2 assigned (private use aside), in the middle and at the start of a label."""
    out: set[str] = set()
    skip = ("Cn", "Cs", "Co")
    assigned = (c for c in range(0x80, 0x110000) if unicodedata.ucd_3_2_0.category(chr(c)) not in skip)
    for i, cp in enumerate(assigned):
        if i % 89 == 0:
            out.add(f"http://a{chr(cp)}b")
        elif i % 89 == 44:
            out.add(f"http://{chr(cp)}")
    return out


def values() -> list[str]:
    """All candidate values, sorted (by code points)."""
    out: set[str] = set()
    for part in (
        first_table(),
        every_ascii_char(),
        percent_escapes(),
        ip_hosts(),
        userinfo_forms(),
        slash_forms(),
        whitespace_forms(),
        trimmed_forms(),
        port_forms(),
        scheme_forms(),
        filesystem_forms(),
        non_ascii_forms(),
        code_point_sample(),
        invalid_utf8_forms(),
    ):
        out |= part
    return sorted(v for v in out if recordable(v))


# ---------------------------------------------------------------------------------------------------------
# Recording: two oracles.
#
# Chromium's CORS check runs `GURL(value)` on the header's bytes (url/ in 8-bit mode). Every value a header can
# carry is measured that way: a loopback server answers with `Access-Control-Allow-Origin: <value>`, a page on
# another loopback origin fetches it, and CDP's `corsErrorStatus.corsError` says InvalidAllowOriginValue (not a
# URL) or AllowOriginMismatch (a URL). The other values (NUL, CR, LF, leading or trailing space or tab, a space
# or comma inside, `*`, `null`) cannot reach that check; `new URL(value)` in the page decides them. Blink parses
# those as UTF-16, which differs from GURL's 8-bit parse in two known ways (below), so the values of those two
# classes that a header cannot carry are left out.

C0_OR_SPACE = "".join(chr(c) for c in range(0x21))
STANDARD_SCHEMES = ("http", "https", "ws", "wss", "ftp", "file", "filesystem", "chrome", "chrome-extension",
                    "devtools", "chrome-untrusted", "chrome-error", "chrome-search", "chrome-native",
                    "chrome-distiller", "isolated-app")  # fmt: skip


def header_carriable(value: str) -> bool:
    """Can Chromium's CORS check see exactly this value, and judge it by parsing it as a URL?"""
    return (
        value == value.strip(" \t")
        and not any(c in value for c in "\x00\r\n ,")
        and value not in ("*", "null")
        and len(value.encode("utf-8", "surrogateescape")) < 16_384
    )


def blink_differs_from_gurl(value: str) -> bool:
    """The known classes where `new URL` (UTF-16) and the CORS check's GURL (UTF-8 bytes) disagree.

    1. Blink's opaque-host check truncates each UTF-16 unit to a byte (`IsForbiddenHostCodePoint(uint8_t)`), so
       `foo://aĀb` (U+0100 -> NUL) fails in `new URL` but not in GURL. Any non-special URL with a code point
       above U+00FF is set aside.
    2. Whether a `data:` URL keeps its tabs and newlines: GURL decides after trimming leading C0 controls and
       spaces, Blink before (`\x01data://a\tb`).
    """
    trimmed = value.strip(C0_OR_SPACE)
    scheme = trimmed.partition(":")[0].lower()
    if any(ord(c) > 0xFF for c in value) and scheme not in STANDARD_SCHEMES:
        return True
    return trimmed[:5].lower() == "data:" and any(c in value for c in "\t\n\r")


def has_surrogates(value: str) -> bool:
    """Bytes that are not UTF-8, as U+DC80..U+DCFF (what `encode("utf-8", "surrogateescape")` turns back)."""
    return any(0xD800 <= ord(c) <= 0xDFFF for c in value)


def recordable(value: str) -> bool:
    """Can Chromium judge this value as the CORS check would: through that check, or by `new URL`?"""
    if header_carriable(value):
        return True
    return not has_surrogates(value) and not blink_differs_from_gurl(value)


JS_VALIDITY = "vs => vs.map(v => { try { new URL(v); return true; } catch (e) { return false; } })"
JS_FETCH_ALL = """async ([base, first, count]) => {
  const indexes = [...Array(count).keys()].map(i => i + first);
  await Promise.all(indexes.map(i => fetch(`${base}/v/${i}`, {cache: "no-store"}).then(r => r.text(), e => null)));
}"""


class AllowOriginServer:
    """A loopback HTTP/1.1 server: `/page` is an empty page, `/v/<i>` answers `Access-Control-Allow-Origin` with
    the bytes of `values[i]`, exactly as given (UTF-8; U+DC80..U+DCFF stand for single bytes)."""

    def __init__(self, values: list[str]) -> None:
        self.values = values
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                body = b"x"
                acao: bytes | None = None
                if path == "/page":
                    body = b"<!doctype html><title>allow-origin values</title>"
                elif path.startswith("/v/") and path[3:].isdigit() and int(path[3:]) < len(server.values):
                    acao = server.values[int(path[3:])].encode("utf-8", "surrogateescape")
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8" if path == "/page" else "text/plain")
                self.send_header("Cache-Control", "no-store")
                if acao is not None:
                    # latin-1 round-trips bytes: the header goes out as these exact bytes.
                    self.send_header("Access-Control-Allow-Origin", acao.decode("latin-1"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> AllowOriginServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def page_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/page"

    @property
    def value_base(self) -> str:
        """Another origin (localhost, not 127.0.0.1) on the same server: every fetch is cross-origin."""
        return f"http://localhost:{self.port}"


def chromium_cors_errors(browser: Any, server: AllowOriginServer, batch: int = 300) -> list[str | None]:
    """For each of the (running) server's values, what Chromium's CORS check said about
    `Access-Control-Allow-Origin: <value>`: the CorsError name, `net:<error>` for another failure, or None when
    the response passed."""
    values = server.values
    context = browser.new_context()
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        urls: dict[str, str] = {}
        failed: dict[str, str] = {}
        finished: set[str] = set()

        def sent(event: dict[str, Any]) -> None:
            urls[event["requestId"]] = event["request"]["url"]

        def failure(event: dict[str, Any]) -> None:
            status = event.get("corsErrorStatus") or {}
            failed[event["requestId"]] = status.get("corsError") or f"net:{event.get('errorText')}"

        cdp.on("Network.requestWillBeSent", sent)
        cdp.on("Network.loadingFailed", failure)
        cdp.on("Network.loadingFinished", lambda event: finished.add(event["requestId"]))
        page.goto(server.page_url)
        for first in range(0, len(values), batch):
            page.evaluate(JS_FETCH_ALL, [server.value_base, first, min(batch, len(values) - first)])
        deadline = time.monotonic() + 10
        prefix = f"{server.value_base}/v/"
        while time.monotonic() < deadline:
            ids = [r for r, u in urls.items() if u.startswith(prefix)]
            if len(ids) >= len(values) and all(r in failed or r in finished for r in ids):
                break
            page.wait_for_timeout(50)
        out: list[str | None] = ["net:no request"] * len(values)
        for request_id, url in urls.items():
            if url.startswith(prefix):
                out[int(url[len(prefix) :])] = failed.get(request_id)
        return out
    finally:
        context.close()


def launch_chromium(pw: Any) -> Any:
    return pw.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--disable-background-networking", "--disable-component-update", "--no-first-run"],
    )


def chromium_verdicts(candidates: list[str]) -> tuple[str, dict[str, bool], dict[str, bool]]:
    """(Chromium's version, value -> valid, value -> what `new URL` said where it disagrees with the CORS check)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page()
            page.set_content("<!doctype html><title>url validity</title>")
            strings = [v for v in candidates if not has_surrogates(v)]
            new_url: dict[str, bool] = {}
            for start in range(0, len(strings), 2000):
                chunk = strings[start : start + 2000]
                new_url.update(zip(chunk, page.evaluate(JS_VALIDITY, chunk), strict=True))
            page.close()
            carriable = [v for v in candidates if header_carriable(v)]
            with AllowOriginServer(carriable) as server:
                errors = dict(zip(carriable, chromium_cors_errors(browser, server), strict=True))
            version = str(browser.version)
        finally:
            browser.close()
    table: dict[str, bool] = {}
    differs: dict[str, bool] = {}
    unjudged: list[str] = []
    for value in candidates:
        parsed = new_url.get(value)
        error = errors.get(value)
        if error == "InvalidAllowOriginValue":
            table[value] = False
        elif error == "AllowOriginMismatch":
            table[value] = True
        elif value in errors:
            unjudged.append(f"{value!r}: {error}")
            continue
        else:
            assert parsed is not None
            table[value] = parsed
            continue
        if parsed is not None and table[value] != parsed:
            differs[value] = parsed
    if unjudged:
        raise SystemExit("the CORS check did not judge these values by URL parsing:\n" + "\n".join(unjudged[:50]))
    return version, table, differs


def dump(version: str, table: dict[str, bool], differs: dict[str, bool]) -> str:
    carried = sum(1 for v in table if header_carriable(v))
    document: dict[str, Any] = {
        "chromium": version,
        "how": (
            "valid: Chromium's CORS check answered AllowOriginMismatch (not InvalidAllowOriginValue) for "
            "'Access-Control-Allow-Origin: <value>', for every value a header can carry; new URL(value) in the "
            "same Chromium for the others"
        ),
        "generator": "tests/corpus/url_validity.py",
        "count": len(table),
        "judged_by_cors_check": carried,
        "judged_by_new_url": len(table) - carried,
        "values": dict(sorted(table.items())),
        "new_url_disagrees": dict(sorted(differs.items())),
    }
    return json.dumps(document, indent=0, ensure_ascii=True) + "\n"


def load() -> tuple[str, dict[str, bool]]:
    """(Chromium version, value -> valid) from the recorded JSON."""
    document = json.loads(JSON_PATH.read_text(encoding="ascii"))
    return document["chromium"], document["values"]


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare with the recorded JSON instead of writing it")
    args = parser.parse_args(list(argv) if argv is not None else None)
    candidates = values()
    started = time.monotonic()
    version, table, differs = chromium_verdicts(candidates)
    if args.check:
        _recorded_version, recorded = load()
        differ = sorted(set(recorded) ^ set(table)) + [v for v in table if v in recorded and recorded[v] != table[v]]
        for v in differ[:50]:
            print(f"differs: {v!r}: recorded {recorded.get(v)}, Chromium {version}: {table.get(v)}")
        print(f"{len(table)} values, {len(differ)} differences (Chromium {version})")
        return 1 if differ else 0
    JSON_PATH.write_text(dump(version, table, differs), encoding="ascii")
    took = time.monotonic() - started
    print(f"wrote {JSON_PATH}: {len(table)} values, {sum(table.values())} valid, Chromium {version}, {took:.0f} s")
    print(f"{len(differs)} values where new URL disagrees with the CORS check (kept in 'new_url_disagrees')")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent.parent))
    raise SystemExit(main())
