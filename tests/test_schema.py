"""rules/schema.json: editors validate rule files with it, so it must agree with the addon."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mitmcors.rules import MATCH_KEYS, RULE_KEYS, RuleFileError, parse_rules

ROOT = Path(__file__).resolve().parent.parent
SCHEMA: dict[str, Any] = json.loads((ROOT / "rules" / "schema.json").read_text())


def test_schema_is_a_valid_json_schema() -> None:
    """The schema itself follows draft 2020-12."""
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_schema_knows_exactly_the_rule_keys() -> None:
    """Every key the addon accepts is in the schema, and no other."""
    rule = SCHEMA["$defs"]["rule"]["properties"]
    assert set(rule) == set(RULE_KEYS)
    assert set(rule["match"]["properties"]) == set(MATCH_KEYS)


@pytest.mark.parametrize("path", sorted((ROOT / "rules").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_rule_files_match_the_schema(path: Path) -> None:
    """The ready-made rule files validate against the schema."""
    jsonschema.validate(yaml.safe_load(path.read_text()), SCHEMA)


REFUSED = [
    pytest.param({"rules": [{"match": {}}]}, "missing_name", id="missing name"),
    pytest.param({"rules": [{"name": "a", "colour": "red"}]}, "unknown_key", id="unknown key"),
    pytest.param({"rules": [{"name": "a", "match": {"hots": "a"}}]}, "unknown_key", id="unknown match key"),
    pytest.param({"rules": [{"name": "a", "preflight": "maybe"}]}, "invalid_preflight", id="bad preflight"),
    pytest.param({"rules": [{"name": "a", "allow_origins": ["http://a.test/"]}]}, "origin_with_path", id="origin path"),
    pytest.param({"rules": [{"name": "a", "allow_credentials": "yes"}]}, "invalid_boolean", id="boolean as a string"),
    pytest.param({"rules": [{"name": "a", "max_age": -1}]}, "invalid_max_age", id="negative max_age"),
    pytest.param({"rules": [{"name": "a", "allow_methods": ["GET POST"]}]}, "invalid_token", id="bad method"),
]


@pytest.mark.parametrize(("doc", "code"), REFUSED)
def test_schema_rejects_what_the_addon_rejects(doc: dict[str, Any], code: str) -> None:
    """Mistakes the addon refuses are flagged by editors too."""
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


@pytest.mark.parametrize(("doc", "code"), REFUSED)
def test_addon_rejects_what_the_schema_rejects(doc: dict[str, Any], code: str) -> None:
    """The documents the schema flags are refused by the addon as well, with the matching error code."""
    with pytest.raises(RuleFileError) as e:
        parse_rules(yaml.safe_dump(doc), "rules.yaml", lambda text: text)
    assert [err.code for err in e.value.errors] == [code]
