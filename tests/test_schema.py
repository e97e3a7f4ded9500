"""rules/schema.json: editors validate rule files with it, so it must agree with the addon."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mitmcors.rules import MATCH_KEYS, RULE_KEYS

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


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({"rules": [{"match": {}}]}, id="missing name"),
        pytest.param({"rules": [{"name": "a", "colour": "red"}]}, id="unknown key"),
        pytest.param({"rules": [{"name": "a", "preflight": "maybe"}]}, id="bad preflight"),
        pytest.param({"rules": [{"name": "a", "allow_origins": ["http://a.test/"]}]}, id="origin with path"),
    ],
)
def test_schema_rejects_what_the_addon_rejects(doc: dict[str, Any]) -> None:
    """Mistakes the addon refuses are flagged by editors too."""
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)
