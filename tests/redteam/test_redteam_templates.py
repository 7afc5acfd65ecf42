"""Red team: expression values that the shell-context scanner accepts as quoted, but bash executes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runner.errors import TemplateError
from runner.pipeline.expressions import Expressions


def _run(script: str, value: str) -> tuple[str, subprocess.CompletedProcess[str] | None]:
    try:
        rendered = Expressions({"inputs": {"x": value}}).render_script(script)
    except TemplateError as refused:
        return str(refused), None  # refused: that is the safe outcome (nothing runs)
    return rendered, subprocess.run(["bash", "-c", rendered], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "script",
    [
        "if [[ {{ inputs.x }} -gt 0 ]]; then echo more; fi",  # a count from an agent or an input
        'if [[ "{{ inputs.x }}" -eq 1 ]]; then echo one; fi',
        "pages[{{ inputs.x }}]=done",
        "declare -i count={{ inputs.x }}",
    ],
)
def test_redteam_a_quoted_value_in_a_bash_arithmetic_context_runs(script: str, tmp_path: Path) -> None:
    """A value quoted as one word still runs where bash evaluates it as arithmetic ([[ -gt ]], subscripts, declare)."""
    marker = tmp_path / "pwned"
    rendered, _ = _run(script, f"a[$(touch {marker})]")
    assert not marker.exists(), f"the value ran: {rendered!r}"


def test_redteam_a_comment_after_a_line_continuation_is_not_a_comment(tmp_path: Path) -> None:
    """After `word\\<newline>`, `#` is inside a word for bash; the scanner leaves the value unquoted as a comment."""
    marker = tmp_path / "pwned"
    rendered, _ = _run("echo issue\\\n#{{ inputs.x }}", f"$(touch {marker})")
    assert not marker.exists(), f"the value ran: {rendered!r}"


def test_redteam_a_comment_after_an_escaped_blank_is_not_a_comment(tmp_path: Path) -> None:
    """After an escaped blank, `#` is inside a word for bash; the scanner leaves the value unquoted as a comment."""
    marker = tmp_path / "pwned"
    rendered, _ = _run("echo label:\\ #{{ inputs.x }}", f"$(touch {marker})")
    assert not marker.exists(), f"the value ran: {rendered!r}"
