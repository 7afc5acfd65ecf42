"""Invalid pipelines: each is refused with exit 2 and exact `FILE:LINE:COL: key.path: message` lines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.cli import Cli

HEAD = "version: 1\nname: t\n"

CASES = {
    "misspelled key": (
        HEAD + "stpes: []\nsteps:\n  - id: a\n    run: echo\n",
        ["bad.yml:3:1: stpes: unknown key 'stpes' (did you mean 'steps'?)"],
    ),
    "misspelled step key": (
        HEAD + "steps:\n  - id: a\n    run: echo\n    contineu-on-error: true\n",
        [
            "bad.yml:6:5: steps[0].contineu-on-error: unknown key 'contineu-on-error'"
            " (did you mean 'continue-on-error'?)"
        ],
    ),
    "wrong type": (
        HEAD + "steps:\n  - id: a\n    run: echo\n    retry:\n      attempts: three\n",
        ["bad.yml:7:17: steps[0].retry.attempts: 'three' is not of type 'integer'"],
    ),
    "duplicate mapping key": (
        HEAD + "steps:\n  - id: a\n    run: echo one\n    run: echo two\n",
        ["bad.yml:6:5: steps[0].run: duplicate key 'run' (first defined at line 5)"],
    ),
    "duplicate step id": (
        HEAD + "steps:\n  - id: a\n    run: echo\n  - id: a\n    run: echo\n",
        ["bad.yml:6:9: steps[1].id: duplicate step id 'a' (first used at line 4)"],
    ),
    "reference to an unknown step": (
        HEAD + "steps:\n  - id: a\n    run: echo {{ steps.nope.outputs.x }}\n",
        ["bad.yml:5:10: steps[0].run: 'steps.nope' does not refer to an earlier step"],
    ),
    "reference to a later step": (
        HEAD + "steps:\n  - id: a\n    if: steps.b.outcome == 'success'\n    run: echo\n  - id: b\n    run: echo\n",
        ["bad.yml:5:9: steps[0].if: 'steps.b' does not refer to an earlier step"],
    ),
    "unknown action": (
        HEAD + "steps:\n  - id: a\n    uses: git/chekout\n",
        ["bad.yml:5:11: steps[0].uses: unknown action 'git/chekout' (did you mean 'git/checkout'?)"],
    ),
    "bad with key": (
        HEAD + "steps:\n  - id: a\n    uses: git/commit\n    with:\n      mesage: fix\n",
        [
            "bad.yml:6:5: steps[0].with: missing required key 'message'",
            "bad.yml:7:7: steps[0].with.mesage: unknown key 'mesage' (did you mean 'message'?)",
        ],
    ),
    "bad duration": (
        HEAD + "steps:\n  - id: a\n    run: echo\n    timeout: 10 minutes\n",
        ["bad.yml:6:14: steps[0].timeout: '10 minutes' is not a duration (use e.g. 30s, 20m, 2h)"],
    ),
    "python tag": (
        HEAD + "steps:\n  - id: a\n    run: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
        ["bad.yml:5:10: steps[0].run: tag '!!python/object/apply:os.system' is not allowed"],
    ),
    "undefined template variable": (
        HEAD + "steps:\n  - id: a\n    run: echo {{ input.who }}\n",
        ["bad.yml:5:10: steps[0].run: undefined variable 'input' (did you mean 'inputs'?)"],
    ),
    "unknown input": (
        HEAD + "inputs:\n  who: {type: string}\nsteps:\n  - id: a\n    run: echo {{ inputs.whom }}\n",
        ["bad.yml:7:10: steps[0].run: unknown input 'whom' (did you mean 'who'?)"],
    ),
    "template syntax error": (
        HEAD + "steps:\n  - id: a\n    run: echo {{ inputs.x\n",
        [
            "bad.yml:5:10: steps[0].run: template syntax error:"
            " unexpected end of template, expected 'end of print statement'."
        ],
    ),
    "neither run nor uses": (
        HEAD + "steps:\n  - id: a\n    name: nothing\n",
        ["bad.yml:4:5: steps[0]: a step needs exactly one of 'run', 'uses' or 'repeat'"],
    ),
    "with without uses": (
        HEAD + "steps:\n  - id: a\n    run: echo\n    with: {x: 1}\n",
        ["bad.yml:6:5: steps[0].with: 'with' needs 'uses'"],
    ),
    "ill-typed input default": (
        HEAD + "inputs:\n  n: {type: integer, default: many}\nsteps:\n  - id: a\n    run: echo\n",
        ["bad.yml:4:31: inputs.n.default: 'many' is not an integer"],
    ),
    "invalid YAML": (
        HEAD + "steps: [\n",
        ["bad.yml:4:1: invalid YAML: expected the node content, but found '<stream end>'"],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_invalid_pipeline_is_refused_with_exact_messages(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    text, expected = CASES[name]
    monkeypatch.chdir(tmp_path)
    Path("bad.yml").write_text(text)
    result = cli("validate", "bad.yml")
    assert result.code == 2
    assert result.err.splitlines() == expected
    assert result.out == ""


def test_all_errors_of_a_file_are_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yml").write_text(
        textwrap.dedent(
            """\
            version: 1
            name: t
            steps:
              - id: a
                run: echo {{ nope }}
                timeout: soon
              - id: a
                uses: verify
                with: {checks: [{run: auto}], colour: red}
            """
        )
    )
    result = cli("validate", "bad.yml")
    assert result.code == 2
    assert result.err.splitlines() == [
        "bad.yml:5:10: steps[0].run: undefined variable 'nope'",
        "bad.yml:6:14: steps[0].timeout: 'soon' is not a duration (use e.g. 30s, 20m, 2h)",
        "bad.yml:7:9: steps[1].id: duplicate step id 'a' (first used at line 4)",
        "bad.yml:9:35: steps[1].with.colour: unknown key 'colour'",
    ]


def test_billion_laughs_is_refused_without_expanding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    monkeypatch.chdir(tmp_path)
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [" + ",".join([f"*{previous}"] * 9) + "]")
    Path("bad.yml").write_text("\n".join(lines) + "\n")
    result = cli("validate", "bad.yml")
    assert result.code == 2
    assert result.err.splitlines() == ["bad.yml:5:4: document expands to more than 50000 nodes"]


def test_too_many_aliases_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yml").write_text("a: &a x\nb: [" + ", ".join(["*a"] * 101) + "]\n")
    result = cli("validate", "bad.yml")
    assert result.code == 2
    assert result.err.splitlines() == ["bad.yml:2:405: more than 100 aliases"]


def test_large_file_is_refused_before_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    monkeypatch.chdir(tmp_path)
    # Not even YAML: the size check must come before any parsing.
    Path("bad.yml").write_bytes(b"[" * (5 * 1024 * 1024))
    result = cli("validate", "bad.yml")
    assert result.code == 2
    assert result.err.splitlines() == ["bad.yml:1:1: file is 5242880 bytes; the limit is 1048576 bytes"]


def test_missing_file_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("validate", "nope.yml")
    assert result.code == 2
    assert result.err.strip() == "nope.yml: cannot read: No such file or directory"


def test_valid_and_invalid_files_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    monkeypatch.chdir(tmp_path)
    Path("good.yml").write_text(HEAD + "steps:\n  - id: a\n    run: echo\n")
    Path("bad.yml").write_text(HEAD + "steps: []\n")
    result = cli("validate", "good.yml", "bad.yml")
    assert result.code == 2
    assert result.out == "good.yml: ok (1 steps)\n"
    assert result.err.splitlines() == ["bad.yml:3:8: steps: [] should be non-empty"]
