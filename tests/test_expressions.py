"""Unit tests of rendering and `if:` evaluation (pure logic)."""

from __future__ import annotations

import pytest

from runner.errors import TemplateError
from runner.pipeline.expressions import Expressions, to_text


def test_to_text_follows_github_actions() -> None:
    assert [to_text(v) for v in (True, False, None, 3, [1, "a"], {"k": 1})] == [
        "true",
        "false",
        "",
        "3",
        '[1, "a"]',
        '{"k": 1}',
    ]


def test_status_functions() -> None:
    ok = Expressions({})
    failed = Expressions({}, status={"success": False, "failure": True, "cancelled": False})
    assert (ok.evaluate("success()"), ok.evaluate("failure()"), ok.evaluate("always()")) == (True, False, True)
    assert (failed.evaluate("success()"), failed.evaluate("failure()")) == (False, True)
    assert ok.evaluate(True) is True


def test_if_reads_outputs() -> None:
    context = {"steps": {"a": {"outputs": {"n": "3"}, "outcome": "success"}}}
    expressions = Expressions(context)
    assert expressions.evaluate("steps.a.outputs.n | int > 2 and steps.a.outcome == 'success'")
    assert expressions.render("n={{ steps.a.outputs.n }}") == "n=3"


def test_undefined_values_are_errors() -> None:
    with pytest.raises(TemplateError, match="'dict object' has no attribute 'missing'"):
        Expressions({"inputs": {}}).render("{{ inputs.missing }}")
    with pytest.raises(TemplateError):
        Expressions({}).evaluate("nothing_here")


def test_render_value_renders_nested_strings() -> None:
    expressions = Expressions({"inputs": {"n": 5}})
    assert expressions.render_value({"a": ["{{ inputs.n }}", 2], "b": True}) == {"a": ["5", 2], "b": True}
