"""runner.pipeline.inputs: `-i KEY=VALUE` text converted to each declared input's type, defaults,
enums, and every problem of a run's inputs reported at once."""

from __future__ import annotations

from typing import Any

import pytest

from runner.errors import UsageError
from runner.pipeline.inputs import convert, parse_assignments, resolve_inputs
from runner.pipeline.model import Input, Pipeline


def _pipeline(*inputs: Input) -> Pipeline:
    return Pipeline(version=1, name="t", steps=(), path="p.yml", source="", digest="", inputs=inputs)


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("text", "string", "text"),
        (12, "string", "12"),
        (1.5, "string", "1.5"),
        (True, "string", "true"),
        (False, "string", "false"),
        ("true", "boolean", True),
        ("YES", "boolean", True),
        ("on", "boolean", True),
        ("1", "boolean", True),
        ("False", "boolean", False),
        ("no", "boolean", False),
        ("off", "boolean", False),
        ("0", "boolean", False),
        (True, "boolean", True),
        ("42", "integer", 42),
        ("-7", "integer", -7),
        ("+3", "integer", 3),
        (" 5 ", "integer", 5),
        (9, "integer", 9),
        ("3", "number", 3),
        ("2.5", "number", 2.5),
        ("1e3", "number", 1000.0),
        ("-0.25", "number", -0.25),
        (4, "number", 4),
        (0.5, "number", 0.5),
    ],
)
def test_values_are_converted_to_the_declared_type(value: Any, kind: str, expected: Any) -> None:
    converted = convert(value, kind)
    assert converted == expected
    assert type(converted) is type(expected)


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ({"a": 1}, "string", "{'a': 1} is not a string"),
        ([1], "string", "[1] is not a string"),
        ("maybe", "boolean", "'maybe' is not a boolean"),
        (1, "boolean", "1 is not a boolean"),
        ("many", "integer", "'many' is not an integer"),
        ("1.5", "integer", "'1.5' is not an integer"),
        (True, "integer", "True is not an integer"),
        (2.0, "integer", "2.0 is not an integer"),
        ("abc", "number", "'abc' is not a number"),
        ("1.2.3", "number", "'1.2.3' is not a number"),
        (False, "number", "False is not a number"),
        ("x", "date", "unknown input type 'date'"),
    ],
)
def test_values_that_do_not_fit_the_type_are_refused_naming_both(value: Any, kind: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        convert(value, kind)
    assert str(raised.value) == message


def test_assignments_split_at_the_first_equals_sign() -> None:
    assert parse_assignments(["issue=12", "query=a=b", "empty="]) == {"issue": "12", "query": "a=b", "empty": ""}
    assert parse_assignments(["x=1", "x=2"]) == {"x": "2"}
    assert parse_assignments([]) == {}


@pytest.mark.parametrize("pair", ["issue", "=12", ""])
def test_an_assignment_without_a_key_and_equals_sign_is_a_usage_error(pair: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_assignments(["ok=1", pair])
    assert str(raised.value) == f"--input {pair!r}: expected KEY=VALUE"


def test_given_values_are_converted_and_defaults_filled_in() -> None:
    pipeline = _pipeline(
        Input("issue", "integer", required=True),
        Input("times", "integer", default=2),
        Input("loud", "boolean", default="no"),
        Input("who", default="world"),
        Input("note"),
    )
    assert resolve_inputs(pipeline, {"issue": "12", "loud": "yes"}) == {
        "issue": 12,
        "times": 2,
        "loud": True,
        "who": "world",
        "note": None,
    }


def test_a_value_must_be_one_of_the_enum_after_conversion() -> None:
    pipeline = _pipeline(Input("level", "integer", enum=(1, 2, 3), default=1))
    assert resolve_inputs(pipeline, {"level": "3"}) == {"level": 3}
    with pytest.raises(UsageError) as raised:
        resolve_inputs(pipeline, {"level": "4"})
    assert str(raised.value) == "p.yml: input 'level': 4 is not one of 1, 2, 3"


def test_an_unset_optional_input_is_not_checked_against_its_enum() -> None:
    assert resolve_inputs(_pipeline(Input("mode", enum=("fast", "slow"))), {}) == {"mode": None}


def test_every_problem_is_reported_at_once_in_one_usage_error() -> None:
    pipeline = _pipeline(
        Input("issue", "integer", required=True),
        Input("times", "integer"),
        Input("mode", enum=("fast", "slow"), default="fast"),
    )
    with pytest.raises(UsageError) as raised:
        resolve_inputs(pipeline, {"colour": "red", "times": "many", "mode": "medium"})
    assert str(raised.value).splitlines() == [
        "p.yml: unknown input 'colour'",
        "p.yml: input 'issue' is required",
        "p.yml: input 'times': 'many' is not an integer",
        "p.yml: input 'mode': 'medium' is not one of 'fast', 'slow'",
    ]


def test_values_from_yaml_keep_their_type() -> None:
    pipeline = _pipeline(Input("ratio", "number"), Input("flag", "boolean"), Input("label"))
    assert resolve_inputs(pipeline, {"ratio": 0.5, "flag": False, "label": 7}) == {
        "ratio": 0.5,
        "flag": False,
        "label": "7",
    }
