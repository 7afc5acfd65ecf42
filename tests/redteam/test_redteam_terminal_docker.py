"""Red team: terminal control sequences a step plants in file names, contents and symlink targets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import CliResult
from tests.support.pipelines import write_pipeline

Cli = Callable[..., CliResult]

pytestmark = pytest.mark.docker

# OSC 52 writes the person's clipboard; OSC 0 sets the window title; CSI 2J clears the screen.
PLANT = r"""
version: 1
name: esc
sandbox: {network: none}
steps:
  - id: esc
    run: |
      printf 'x\033]0;pwned\007\n' > "$(printf 'a\033]52;c;cm0gLXJmIH4=\007b')"
      ln -s "$(printf '\033[2J')" link
"""


@pytest.mark.parametrize("command", [("show", "--changes"), ("rollback", "--hard", "--dry-run")])
def test_redteam_changes_and_rollback_plans_print_a_steps_escape_sequences(
    command: tuple[str, ...], cli: Cli, tmp_path: Path
) -> None:
    """`pipe show --changes`, `rollback --dry-run` print a step's file names, diffs, link targets raw (OSC 52)."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    state = ["--state-dir", str(tmp_path / "state")]
    ran = cli("run", str(write_pipeline(tmp_path, PLANT)), "--workspace", str(workspace), *state)
    assert ran.code == 0, ran.out + ran.err
    shown = cli(command[0], "latest", *command[1:], *state)
    assert shown.code == 0, shown.err
    assert "\x1b" not in shown.out + shown.err and "\x07" not in shown.out + shown.err, repr(shown.out)
