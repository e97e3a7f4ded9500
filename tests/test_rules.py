"""The rule file: validation messages, origin patterns, matching, and the headers a rule produces."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import flowfilter

from mitmcors import yamlsource
from mitmcors.rules import RuleFileError, RuleSet, cors_edit, parse_origin_pattern, parse_rules

ROOT = Path(__file__).resolve().parent.parent


def compile_filter(text: str) -> Any:
    f = flowfilter.parse(text)
    if f is None:
        raise ValueError(f"Invalid filter expression: {text!r}")
    return f


def parse(text: str) -> RuleSet:
    return parse_rules(textwrap.dedent(text), "rules.yaml", compile_filter)


def errors_of(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as e:
        parse(text)
    return str(e.value).splitlines()


# --------------------------------------------------------------------------------------------------
# Validation: every error names file:line, quotes the value and says how to fix it.

INVALID = [
    pytest.param(
        "rules:\n  - name: a\n    colour: red\n",
        "rules.yaml:3: rule 1 ('a'): colour: unknown key 'colour'",
        id="unknown key",
    ),
    pytest.param("rules:\n  - name: a\n    allow_origin: '*'\n", "did you mean 'allow_origins'?", id="typo suggestion"),
    pytest.param(
        "rules:\n  - match: {host: a}\n", "rules.yaml:2: rule 1: name: every rule needs a name", id="missing name"
    ),
    pytest.param(
        "rules:\n  - name: a\n  - name: a\n",
        "rules.yaml:3: rule 2 ('a'): name: duplicate name 'a'",
        id="duplicate name",
    ),
    pytest.param(
        "rules:\n  - name: a\n    allow_credentials: 'yes please'\n",
        "rules.yaml:3: rule 1 ('a'): allow_credentials: expected true or false",
        id="wrong type",
    ),
    pytest.param("rules:\n  - name: a\n    max_age: ten\n", "max_age: expected seconds", id="max_age not a number"),
    pytest.param(
        "rules:\n  - name: a\n    preflight: answr\n",
        "preflight: expected 'answer' or 'forward'",
        id="bad preflight mode",
    ),
    pytest.param(
        "rules:\n  - name: a\n    match:\n      host: http://api.localhost/\n",
        "rules.yaml:4: rule 1 ('a'): match.host: 'http://api.localhost/' is a URL",
        id="URL as host",
    ),
    pytest.param(
        "rules:\n  - name: a\n    match:\n      path: v1/*\n",
        "match.path: 'v1/*' does not start with '/'",
        id="relative path glob",
    ),
    pytest.param(
        "rules:\n  - name: a\n    match:\n      filter: '(~m PUT'\n",
        "rules.yaml:4: rule 1 ('a'): match.filter: '(~m PUT' is not a valid mitmproxy filter",
        id="bad filter",
    ),
    pytest.param(
        "rules:\n  - name: a\n    match:\n      hots: a\n",
        "unknown key 'hots'. Fix: did you mean 'host'?",
        id="unknown match key",
    ),
    pytest.param(
        "rules:\n  - name: a\n    allow_origins: ['https://*.com']\n",
        "would match every site under a public suffix",
        id="wildcard over a TLD",
    ),
    pytest.param(
        "rules:\n  - name: a\n    allow_origins: ['http://localhost:5173/']\n",
        "an origin has no path or trailing '/'. Fix: write 'http://localhost:5173'",
        id="trailing slash",
    ),
    pytest.param("rules:\n  - name: a\n    allow_origins: ['HTTP://App.test']\n", "lowercase", id="upper-case origin"),
    pytest.param(
        "rules:\n  - name: a\n    allow_origins: [localhost:5173]\n",
        "not an origin pattern",
        id="origin without scheme",
    ),
    pytest.param("rules:\n  - name: a\n    allow_origins: ['null']\n", "dangerously_allow_insecure", id="null origin"),
    pytest.param(
        "rules:\n  - name: a\n    allow_origins: '*'\n    allow_credentials: true\n",
        "browsers refuse 'Access-Control-Allow-Origin: *' together with credentials",
        id="wildcard with credentials",
    ),
    pytest.param(
        "rules:\n  - name: a\n    allow_origins: reflect\n    allow_credentials: true\n",
        "reflecting any origin with credentials",
        id="reflect with credentials on any host",
    ),
    pytest.param(
        "rules:\n  - name: a\n    match: {host: api.example.com}\n    allow_credentials: true\n",
        "reflecting any origin with credentials",
        id="default reflect with credentials on a public host",
    ),
    pytest.param("rules:\n  - name: a\n    allow_methods: [put]\n", "'put' never matches", id="lower-case method"),
    pytest.param(
        "rules:\n  - name: a\n    allow_headers: ['X-A X-B']\n",
        "'X-A X-B' is not a valid header name",
        id="space in header name",
    ),
    pytest.param(
        "rules:\n  - name: a\n    allow_methods: ['*', GET]\n",
        "'*' cannot be mixed with names",
        id="star mixed with names",
    ),
    pytest.param("rules:\n  - name: a\n  - name: a\n    x: 1\n", "rules.yaml:4", id="errors carry their own lines"),
    pytest.param("rules:\n  - name: a\n    name: b\n", "duplicate key 'name' (first on line 2)", id="duplicate key"),
    pytest.param("rules: [\n", "rules.yaml:2: invalid YAML", id="broken YAML"),
    pytest.param("- name: a\n", "a rule file is a mapping with a 'rules' list", id="no rules key"),
    pytest.param("rules: 3\n", "expected a list of rules", id="rules not a list"),
    pytest.param("rules: []\nrulez: []\n", "unknown key 'rulez'", id="unknown top-level key"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_rule_file(text: str, message: str) -> None:
    """Each kind of mistake is reported with its location, the bad value and a fix."""
    assert any(message in line for line in errors_of(text)), errors_of(text)


def test_all_errors_are_reported_at_once() -> None:
    """Errors in several rules and keys come back together, sorted by line."""
    lines = errors_of(
        """\
        rules:
          - name: a
            colour: red
            max_age: -1
          - name: b
            preflight: maybe
        """
    )
    assert [line.split(":")[1] for line in lines] == ["3", "4", "6"]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "rules:\n  - name: a\n    allow_origins: '*'\n    allow_credentials: true\n"
            "    dangerously_allow_invalid: true\n",
            id="wildcard with credentials on purpose",
        ),
        pytest.param(
            "rules:\n  - name: a\n    allow_origins: ['null']\n    dangerously_allow_insecure: true\n",
            id="null origin on purpose",
        ),
        pytest.param(
            "rules:\n  - name: a\n    match: {host: '*.localhost'}\n    allow_origins: reflect\n"
            "    allow_credentials: true\n",
            id="reflect with credentials on local hosts",
        ),
    ],
)
def test_opt_in_keys_allow_refused_combinations(text: str) -> None:
    """The dangerously_* keys let a rule reproduce a misconfiguration on purpose."""
    assert len(parse(text).rules) == 1


def test_max_age_above_cap_warns() -> None:
    """A max_age above Chromium's cap is accepted with a warning."""
    rs = parse("rules:\n  - name: a\n    max_age: 90000\n")
    assert any("7200" in w and "86400" in w for w in rs.warnings)


def test_rule_after_catch_all_warns() -> None:
    """A rule that can never apply, behind a catch-all, is pointed out."""
    rs = parse("rules:\n  - name: all\n    allow_origins: '*'\n  - name: never\n    allow_origins: '*'\n")
    assert any("never apply" in w for w in rs.warnings)


def test_disabled_rule_is_skipped() -> None:
    """enabled: false keeps a rule in the file but out of use."""
    rs = parse("rules:\n  - name: a\n    enabled: false\n  - name: b\n")
    assert [r.name for r in rs.rules] == ["b"]


@pytest.mark.parametrize("path", sorted((ROOT / "rules").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_rule_files_are_valid(path: Path) -> None:
    """Every rule file in rules/ loads without errors."""
    rs = parse_rules(path.read_text(), str(path), compile_filter)
    assert rs.rules


def test_ruamel_fallback_reports_the_same_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PyYAML (standalone mitmproxy builds) ruamel.yaml reads the file, with the same lines."""
    text = "rules:\n  - name: a\n    colour: red\n  - name: a\n"
    with_pyyaml = errors_of(text)
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` raise ImportError
    assert yamlsource.backend_name() == "ruamel.yaml"
    assert errors_of(text) == with_pyyaml
    assert [r.name for r in parse("rules:\n  - name: ok\n    max_age: 60\n").rules] == ["ok"]


# --------------------------------------------------------------------------------------------------
# Origin patterns (jub0bs/cors style)


@pytest.mark.parametrize(
    ("pattern", "origin", "matches"),
    [
        pytest.param("http://localhost:5173", "http://localhost:5173", True, id="exact"),
        pytest.param("http://localhost:5173", "http://localhost:5174", False, id="other port"),
        pytest.param("http://localhost:*", "http://localhost:3000", True, id="any port"),
        pytest.param("http://localhost:*", "http://localhost", True, id="any port includes default"),
        pytest.param("http://localhost:*", "https://localhost:3000", False, id="scheme matters"),
        pytest.param("https://*.example.com", "https://app.example.com", True, id="subdomain"),
        pytest.param("https://*.example.com", "https://a.b.example.com", True, id="deep subdomain"),
        pytest.param("https://*.example.com", "https://example.com", False, id="apex not included"),
        pytest.param("https://*.example.com", "https://evilexample.com", False, id="no suffix confusion"),
        pytest.param("https://example.com:443", "https://example.com", True, id="default port normalised"),
    ],
)
def test_origin_pattern(pattern: str, origin: str, matches: bool) -> None:
    """Origin patterns match serialized origins the way jub0bs/cors patterns do."""
    assert parse_origin_pattern(pattern, allow_null=False).matches(origin) is matches


# --------------------------------------------------------------------------------------------------
# Matching


MATCHING = """\
rules:
  - name: puts
    match: {host: api.localhost, filter: "~m PUT"}
  - name: v1 from localhost
    match: {host: ["api.localhost", "*.example.test"], path: /v1/*, origin: "http://localhost:*"}
  - name: rest of example.test
    match: {host: "*.example.test"}
"""


@pytest.mark.parametrize(
    ("host", "path", "origin", "rule"),
    [
        pytest.param("api.localhost", "/v1/items?x=1", "http://localhost:5173", "v1 from localhost", id="all match"),
        pytest.param("API.localhost", "/v1/items", "http://localhost:5173", "v1 from localhost", id="host case"),
        pytest.param("api.localhost", "/v2/items", "http://localhost:5173", None, id="path mismatch"),
        pytest.param("api.localhost", "/v1/items", "http://evil.test", None, id="origin mismatch"),
        pytest.param("a.example.test", "/v1/x", "http://evil.test", "rest of example.test", id="falls through"),
        pytest.param("example.test", "/v1/x", "http://localhost:1", None, id="glob needs a subdomain"),
    ],
)
def test_first_matching_rule_wins(host: str, path: str, origin: str, rule: str | None) -> None:
    """All of a rule's conditions must hold; the first such rule applies."""
    rs = parse(MATCHING)
    found = rs.match(host, path, origin)
    assert (found.name if found else None) == rule


def test_filter_condition_uses_the_flow() -> None:
    """A mitmproxy filter expression is evaluated against the flow."""
    from mitmproxy.test import tflow

    rs = parse(MATCHING)
    f = tflow.tflow()
    f.request.method = "PUT"
    rule = rs.match("api.localhost", "/v1/items", "http://localhost:5173", f)
    assert rule is not None and rule.name == "puts"


# --------------------------------------------------------------------------------------------------
# What a rule puts on the wire


def edit_of(rule_yaml: str, **kw: Any) -> dict[str, list[str]]:
    rule = parse("rules:\n  - name: r\n" + textwrap.indent(textwrap.dedent(rule_yaml), "    ")).rules[0]
    kw.setdefault("origin", "http://localhost:5173")
    return {k: list(v) for k, v in cors_edit(rule, **kw).replace}


def test_reflect_echoes_origin_and_adds_vary() -> None:
    """reflect echoes the request's Origin, with Vary: Origin merged into the existing Vary."""
    h = edit_of("allow_origins: reflect\n", preflight=False, vary=["Accept-Encoding"])
    assert h["Access-Control-Allow-Origin"] == ["http://localhost:5173"]
    assert h["Vary"] == ["Accept-Encoding, Origin"]


def test_origin_not_in_list_gets_no_allow_origin() -> None:
    """An origin the rule does not list gets no Access-Control-Allow-Origin (the browser blocks it)."""
    h = edit_of("allow_origins: ['http://localhost:3000']\n", preflight=False)
    assert h["Access-Control-Allow-Origin"] == []


def test_star_methods_and_headers_are_echoed_with_credentials() -> None:
    """'*' would be a literal under credentials, so the requested method and headers are echoed."""
    h = edit_of(
        "match: {host: localhost}\nallow_origins: reflect\nallow_credentials: true\n"
        "allow_methods: '*'\nallow_headers: '*'\n",
        preflight=True,
        request_method="PATCH",
        request_headers=["x-a"],
    )
    assert h["Access-Control-Allow-Methods"] == ["PATCH"]
    assert h["Access-Control-Allow-Headers"] == ["x-a"]
    assert h["Access-Control-Allow-Credentials"] == ["true"]


def test_authorization_listed_explicitly_under_star() -> None:
    """The Fetch standard never lets '*' cover Authorization, so it is listed by name."""
    h = edit_of("allow_headers: '*'\n", preflight=True, request_method="GET", request_headers=["authorization"])
    assert h["Access-Control-Allow-Headers"] == ["*, authorization"]


def test_failing_preflight_status_becomes_204() -> None:
    """A 404 answer to a forwarded preflight becomes 204 and loses its Location."""
    rule = parse("rules:\n  - name: r\n    allow_origins: '*'\n").rules[0]
    edit = cors_edit(rule, preflight=True, origin="http://a.test", request_method="PUT", status=404)
    assert edit.status == 204


def test_actual_error_status_is_kept() -> None:
    """A real 404 of an actual request stays a 404: only preflights get their status fixed."""
    rule = parse("rules:\n  - name: r\n    allow_origins: '*'\n").rules[0]
    assert cors_edit(rule, preflight=False, origin="http://a.test", status=404).status is None


def test_expose_star_with_credentials_lists_names() -> None:
    """With credentials, expose_headers '*' becomes the response's own header names."""
    h = edit_of(
        "match: {host: localhost}\nallow_credentials: true\nexpose_headers: '*'\n",
        preflight=False,
        response_header_names=["Content-Type", "X-Total-Count", "Set-Cookie"],
    )
    assert h["Access-Control-Expose-Headers"] == ["X-Total-Count"]


def test_strip_and_set_reproduce_a_broken_server() -> None:
    """strip removes headers and set overrides them, after the CORS keys."""
    h = edit_of(
        "strip: [Access-Control-Allow-Origin]\nset: {X-Debug: '1', Access-Control-Allow-Credentials: 'True'}\n",
        preflight=False,
    )
    assert h == {"access-control-allow-origin": [], "X-Debug": ["1"], "Access-Control-Allow-Credentials": ["True"]}
