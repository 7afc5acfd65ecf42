"""Unit tests of the safe YAML loader (pure logic)."""

from __future__ import annotations

import pytest

from runner.pipeline import yamlsafe


def test_core_types_and_yaml12_booleans() -> None:
    doc = yamlsafe.load("on: yes\nflag: true\noff: no\nn: 3\nf: 2.5\nz: ~\nd: 2024-01-01\n")
    assert doc.data == {"on": "yes", "flag": True, "off": "no", "n": 3, "f": 2.5, "z": None, "d": "2024-01-01"}


def test_marks_are_one_based() -> None:
    doc = yamlsafe.load("a:\n  b: [1, 2]\n")
    assert doc.key_marks[("a", "b")] == yamlsafe.Mark(2, 3)
    assert doc.value_marks[("a", "b", 1)] == yamlsafe.Mark(2, 10)
    assert doc.mark(("a", "b", 7)) == yamlsafe.Mark(2, 6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !custom 1\n", "tag '!custom' is not allowed"),
        ("a: !!binary aGk=\n", "tag '!!binary' is not allowed"),
        ("a: &x [*x]\n", "recursive alias"),
        ("<<: {a: 1}\n", "merge keys ('<<') are not supported"),
        ("[1]: a\n", "a mapping key must be a string"),
    ],
)
def test_refused_constructs(text: str, message: str) -> None:
    with pytest.raises(yamlsafe.LoadError) as caught:
        yamlsafe.load(text)
    assert [p.message for p in caught.value.problems] == [message]


def test_small_aliases_are_fine() -> None:
    assert yamlsafe.load("a: &x {k: 1}\nb: *x\n").data == {"a": {"k": 1}, "b": {"k": 1}}
