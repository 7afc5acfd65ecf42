"""Run the `pipe` command line in-process and capture what it prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pytest

from runner.cli import main


@dataclass(frozen=True)
class CliResult:
    """One in-process `pipe` invocation: its exit code and everything it printed."""

    code: int
    out: str
    err: str


class Cli(Protocol):
    """The `cli` fixture: `cli("run", "p.yml")` runs `pipe run p.yml` in-process."""

    def __call__(self, *args: str) -> CliResult: ...


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> CliResult:
    """Run `pipe ARGV` through `runner.cli.main`, capturing stdout and stderr as text."""
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)
