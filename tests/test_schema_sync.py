"""The JSON schema and the typed records agree, and every action has its `with:` schema."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import jsonschema

from runner.pipeline import model
from runner.resources import load_schema

SCHEMA = load_schema()
DEFS = SCHEMA["$defs"]
INTERNAL = {"path", "source", "digest", "line"}


def record_fields(record: type) -> set[str]:
    return {f.name for f in fields(record)} - INTERNAL


def schema_fields(properties: dict[str, object]) -> set[str]:
    return {model.field_name(key) for key in properties}


def test_schema_is_valid_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_records_match_schema() -> None:
    assert schema_fields(SCHEMA["properties"]) == record_fields(model.Pipeline)
    assert schema_fields(DEFS["step"]["properties"]) == record_fields(model.Step)
    refused = {"ca_bundle"}  # kept in the schema only to explain why it is refused (`not`, x-message)
    assert schema_fields(DEFS["sandbox"]["properties"]) - refused == record_fields(model.SandboxSettings)
    assert schema_fields(DEFS["retry"]["properties"]) == record_fields(model.RetryPolicy)
    assert schema_fields(DEFS["retry"]["properties"]["backoff"]["properties"]) == record_fields(model.Backoff)
    assert schema_fields(DEFS["repeat"]["properties"]) == record_fields(model.Repeat)
    assert schema_fields(DEFS["input"]["properties"]) | {"name"} == record_fields(model.Input)
    report = SCHEMA["properties"]["report"]["properties"]
    assert schema_fields(report) == record_fields(model.Report)
    assert schema_fields(report["issue-comment"]["properties"]) == record_fields(model.IssueCommentReport)
    assert schema_fields(report["webhook"]["properties"]) == record_fields(model.WebhookReport)
    assert schema_fields(SCHEMA["properties"]["on-failure"]["properties"]) == record_fields(model.OnFailure)
    assert schema_fields(SCHEMA["properties"]["thread"]["properties"]) == record_fields(model.ThreadBinding)


def test_every_action_has_a_with_schema() -> None:
    actions = DEFS["step"]["properties"]["uses"]["enum"]
    branches = {b["if"]["properties"]["uses"]["const"]: b["then"] for b in DEFS["step"]["allOf"]}
    assert set(branches) == set(actions)
    for action, then in branches.items():
        reference = then["properties"]["with"]["$ref"]
        assert reference == "#/$defs/with-" + action.replace("/", "-")
        assert DEFS[reference.split("/")[-1]]["additionalProperties"] is False


def test_every_property_has_a_description_or_reference() -> None:
    """Editors show descriptions; every top-level and step key carries one."""
    for properties in (SCHEMA["properties"], DEFS["step"]["properties"]):
        for key, value in properties.items():
            assert "description" in value or "$ref" in value, key


def test_shipped_schema_files_parse() -> None:
    for path in Path(__file__).resolve().parent.parent.joinpath("schemas").glob("*.json"):
        json.loads(path.read_text())
