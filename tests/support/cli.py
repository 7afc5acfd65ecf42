"""Run the `pipe` command line in-process and capture what it prints."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from runner.cli import main


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> CliResult:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)
