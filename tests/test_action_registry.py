"""Issue 17: the typed action boundary. The registry lists every action the schema allows, each
Args dataclass takes exactly the `with:` keys the schema declares, the change types actions record
are the ones rollback can undo, and `with:` values are parsed by one parser with one-line errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from runner.actions import registry
from runner.actions.args import ArgumentError, Duration, keys, parse_args, required_keys
from runner.changes.recording import EXTERNAL_TYPES

REPO = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO / "schemas" / "pipeline.schema.json").read_text(encoding="utf-8"))


def _with_schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = SCHEMA["$defs"]["with-" + name.replace("/", "-")]
    return found


def test_the_registry_lists_exactly_the_actions_the_schema_allows() -> None:
    assert set(registry.ACTIONS) == set(SCHEMA["$defs"]["step"]["properties"]["uses"]["enum"])
    assert len(registry.BUILTIN) == len(registry.ACTIONS)  # no name twice


@pytest.mark.parametrize("name", sorted(registry.ACTIONS))
def test_each_args_dataclass_matches_the_schemas_with(name: str) -> None:
    action = registry.ACTIONS[name]
    schema = _with_schema(name)
    assert dataclasses.is_dataclass(action.args) and action.args.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert set(keys(action.args)) == set(schema["properties"]), name
    assert set(required_keys(action.args)) == set(schema.get("required", [])), name


def test_recorded_change_types_are_exactly_those_with_an_undo() -> None:
    assert set(EXTERNAL_TYPES) == set(registry.EXTERNAL_UNDO)


def test_which_actions_need_a_forge() -> None:
    needing = {name for name, action in registry.ACTIONS.items() if action.uses_forge({})}
    assert needing == {name for name in registry.ACTIONS if name.startswith(("git/", "github/"))}
    assert registry.ACTIONS["wait/approval"].uses_forge({"issue": "{{ inputs.issue }}"})


def test_importing_the_registry_leaves_docker_github_and_git_alone() -> None:
    probe = (
        "import sys\n"
        "import runner.actions.registry\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'docker', 'github', 'git'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"


@dataclass(frozen=True)
class Sample:
    name: str
    count: int = 1
    ratio: float | None = None
    flag: bool = False
    wait: Duration | None = None
    names: tuple[str, ...] = ()
    mode: Literal["fast", "slow"] = "fast"
    data: Any = None


def test_values_are_read_by_their_type_from_yaml_or_rendered_text() -> None:
    parsed = parse_args(
        Sample,
        {"name": 7, "count": "#12", "ratio": "0.5", "flag": "True", "wait": "1m30s", "names": "a, b", "data": ""},
        "s",
    )
    assert parsed == Sample("7", 12, 0.5, True, Duration(90.0, "1m30s"), ("a", "b"), "fast", "")
    assert str(parsed.wait) == "1m30s"
    assert parse_args(Sample, {"name": "x", "names": ["a", 1], "flag": False, "count": 3}, "s").names == ("a", "1")


def test_absent_null_and_empty_text_take_the_default() -> None:
    assert parse_args(Sample, {"name": "", "count": "", "ratio": None, "flag": ""}, "s") == Sample("")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "step s: with.name is required"),
        ({"name": "x", "count": "many"}, "step s: with.count: 'many' is not a whole number"),
        ({"name": "x", "count": True}, "step s: with.count: True is not a whole number"),
        ({"name": "x", "ratio": "half"}, "step s: with.ratio: 'half' is not a number"),
        ({"name": "x", "flag": "yes"}, "step s: with.flag: 'yes' is not true or false"),
        ({"name": "x", "wait": "soon"}, "step s: with.wait: 'soon' is not a duration (use e.g. 30s, 20m, 2h)"),
        ({"name": "x", "mode": "medium"}, "step s: with.mode: 'medium' is not one of 'fast', 'slow'"),
        ({"name": "x", "names": {"a": 1}}, "step s: with.names: {'a': 1} is not a list of text"),
        ({"name": ["x"]}, "step s: with.name: ['x'] is not text"),
        ({"name": "x", "colour": "red"}, "step s: with: unknown key 'colour' (known: "),
    ],
)
def test_a_value_that_does_not_fit_is_a_one_line_error_naming_step_and_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ArgumentError) as refused:
        parse_args(Sample, raw, "s")
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)
    assert refused.value.exit_code == 1


def test_nested_mappings_name_their_place() -> None:
    with pytest.raises(ArgumentError, match=r"^step v: with\.checks\[1\]: 'true' is not a mapping$"):
        parse_args(Sample, "true", "v", "with.checks[1]")
