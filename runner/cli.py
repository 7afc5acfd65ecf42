"""The `pipe` command line: click commands that parse arguments and call into the package.

Heavy modules (docker, github, git, and the loader's yaml/jsonschema/jinja2) are imported inside
the commands so `pipe --help` starts fast.
"""

from __future__ import annotations

import sys

import click

from runner import __version__
from runner.error_handler import run_guarded
from runner.errors import ExitCode


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipe")
def cli() -> None:
    """pipe: declarative YAML pipelines run step by step in Docker sandboxes.

    Exit codes: 0 success, 1 a step failed, 2 invalid pipeline or usage, 3 waiting at a wait point,
    4 sandbox engine unavailable, 130 interrupted.
    """


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> int:
    """Validate pipeline FILES; print every problem as FILE:LINE:COL: key.path: message."""
    from runner.commands.validate import validate_files

    return validate_files(list(files), out=sys.stdout, err=sys.stderr)


@cli.command()
def schema() -> int:
    """Print the pipeline JSON schema (for editors and other tools)."""
    from runner.resources import data_path

    sys.stdout.write((data_path("schemas") / "pipeline.schema.json").read_text(encoding="utf-8"))
    return 0


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--input", "-i", "inputs", multiple=True, metavar="KEY=VALUE", help="An input value (repeatable).")
@click.option("--dry-run", is_flag=True, help="Validate, resolve inputs and print the plan; start nothing.")
def run(file: str, inputs: tuple[str, ...], dry_run: bool) -> int:
    """Run the pipeline in FILE."""
    from runner.commands.run import run_pipeline

    return run_pipeline(file, list(inputs), dry_run=dry_run, out=sys.stdout)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command line `argv` (default: sys.argv[1:]) and return the exit code."""

    def work() -> int:
        try:
            result = cli.main(args=argv, prog_name="pipe", standalone_mode=False)
        except click.exceptions.Exit as done:
            return int(done.exit_code)
        except click.exceptions.Abort:
            return int(ExitCode.INTERRUPTED)
        except click.ClickException as error:
            error.show()
            return int(ExitCode.INVALID)
        return int(result or 0)

    return run_guarded(work)
