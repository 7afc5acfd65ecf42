"""The `pipe` command line: the wiring of click commands to runner/commands/*, nothing more. The
options several commands share, and the helpers that turn them into arguments, are in
runner/commands/options.py.

Heavy modules (docker, github, git, rich, and the loader's yaml/jsonschema/jinja2) are imported
inside the commands so `pipe --help` starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner import __version__
from runner.commands.options import (
    forge_options,
    forge_settings,
    json_option,
    open_store,
    secret_options,
    shown,
    state_dir_of,
    state_option,
    store_url_option,
)
from runner.commands.workers import submit_command, worker_command, workers_command
from runner.error_handler import run_guarded
from runner.errors import ExitCode
from runner.names import Decision, RunStatus, ThreadState


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipe")
@store_url_option
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
@click.option("--reset", is_flag=True, help="Start from a fresh example forge (no branch, pull request or comments).")
@state_option
@json_option
def demo(reset: bool, state_dir: Path | None, json_lines: bool) -> int:
    """Run the main job on the embedded example: issue-to-pr with a local forge and an agent that
    needs no model (only Docker is needed)."""
    from runner.commands.demo import run_demo

    return run_demo(state_dir_of(state_dir), sys.stdout, json_lines=json_lines, reset=reset)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, help="Port to listen on.")
@click.option("--token", envvar="PIPE_UI_TOKEN", help="Required for any --host but loopback (default: a new one).")
@click.option("--read-only", is_flag=True, help="Hide and refuse every action (approve, reject, rollback).")
@state_option
def ui(host: str, port: int, token: str | None, read_only: bool, state_dir: Path | None) -> int:
    """Serve a live web view of the runs in the store."""
    from runner.commands.ui import serve

    return serve(state_dir_of(state_dir), host, port, token=token, read_only=read_only, out=sys.stdout)


@cli.command("serve")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The YAML file mapping webhook events to pipelines (schemas/serve.schema.json).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8088, show_default=True, help="Port to listen on.")
@state_option
def serve_command(config_path: Path, host: str, port: int, state_dir: Path | None) -> int:
    """Receive GitHub's webhooks and start runs for them (see README, "Webhooks: pipe serve")."""
    from runner.commands.serve import serve

    return serve(config_path, host, port, state_dir=state_dir, out=sys.stdout)


@cli.command()
@json_option
def pipelines(json_lines: bool) -> int:
    """List the pipelines shipped with pipe (run one from anywhere: `pipe run NAME`)."""
    from runner.commands.pipelines import list_pipelines

    return list_pipelines(sys.stdout, json_lines=json_lines)


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
@click.option(
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    help="Use this directory as the workspace (default: a new one in the state directory).",
)
@click.option(
    "--sandbox-image",
    envvar="PIPE_SANDBOX_IMAGE",
    metavar="IMAGE",
    help="The image of every step that names none (default: pipe-sandbox, built from Dockerfile.sandbox).",
)
@click.option(
    "--no-publish",
    is_flag=True,
    help="Run every step for real, but print pushes and forge writes instead of making them.",
)
@click.option("--parent", metavar="RUN", hidden=True, help="The run this one is a child of (set by `uses: pipeline`).")
@click.option("--child-key", metavar="KEY", hidden=True, help="This child's key in its parent.")
@secret_options
@forge_options
@state_option
@json_option
def run(
    file: str,
    inputs: tuple[str, ...],
    dry_run: bool,
    workspace: Path | None,
    sandbox_image: str | None,
    no_publish: bool,
    parent: str | None,
    child_key: str | None,
    secret_files: tuple[Path, ...],
    token_file: Path | None,
    ca_bundle: Path | None,
    host_root: str | None,
    forge_kind: str | None,
    forge_dir: Path | None,
    repo: str | None,
    api_url: str | None,
    github_app_id: str | None,
    github_app_key_file: Path | None,
    state_dir: Path | None,
    json_lines: bool,
) -> int:
    """Run the pipeline in FILE, or the one shipped with pipe named FILE (`pipe pipelines` lists
    them; a local file of that name wins)."""
    from runner.commands.run import run_pipeline

    return run_pipeline(
        file,
        list(inputs),
        dry_run=dry_run,
        out=sys.stdout,
        state_dir=state_dir_of(state_dir),
        json_lines=json_lines,
        secret_files=list(secret_files),
        workspace=workspace.resolve() if workspace else None,
        token_file=token_file,
        ca_bundle=ca_bundle,
        host_root=host_root,
        forge_settings=forge_settings(forge_kind, forge_dir, repo, api_url, github_app_id, github_app_key_file),
        publish=not no_publish,
        default_image=sandbox_image,
        parent=(parent, child_key or "") if parent else None,
    )


# `pipe submit`, `pipe worker`, `pipe workers` (Celery execution): defined beside their functions.
for _command in (submit_command, worker_command, workers_command):
    cli.add_command(_command)


@cli.group()
def image() -> None:
    """Images for steps: `pipe image build --agent claude` adds coding-agent CLIs."""


@image.command("build")
@click.option("--agent", "agents", multiple=True, help="An agent CLI to install (repeatable): claude, codex, aider.")
@click.option(
    "--ca-bundle",
    envvar="PIPE_CA_BUNDLE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM certificates the build trusts for intercepted TLS (env PIPE_CA_BUNDLE).",
)
@click.option("--tag", "extra_tag", help="Also tag the image with this name (e.g. pipe-agents:claude).")
def image_build(agents: tuple[str, ...], ca_bundle: Path | None, extra_tag: str | None) -> int:
    """Build an image FROM the default sandbox image with the named agent CLIs at pinned versions."""
    from runner.commands.image import build_agent_image

    return build_agent_image(agents, ca_bundle, sys.stdout, extra_tag)


@cli.command()
@click.option("--limit", default=50, show_default=True, help="How many runs.")
@click.option("--status", type=click.Choice([status.value for status in RunStatus]))
@state_option
@json_option
def runs(limit: int, status: str | None, state_dir: Path | None, json_lines: bool) -> int:
    """List runs, newest first."""
    from runner.commands.inspect import list_runs

    return list_runs(open_store(state_dir), sys.stdout, json_lines=json_lines, limit=limit, status=status)


@cli.command()
@click.option("--state", "thread_state", type=click.Choice([state.value for state in ThreadState]))
@state_option
@json_option
def threads(thread_state: str | None, state_dir: Path | None, json_lines: bool) -> int:
    """List threads (one conversation per repository issue), most recently changed first."""
    from runner.commands.threads import list_threads

    return list_threads(open_store(state_dir), sys.stdout, json_lines=json_lines, state=thread_state)


@cli.command()
@click.argument("run_id", metavar="RUN")
@click.option("--changes", is_flag=True, help="List the changes each step recorded, with diffs of text files.")
@state_option
@json_option
def show(run_id: str, changes: bool, state_dir: Path | None, json_lines: bool) -> int:
    """Show a run (an id, a unique prefix, or `latest`): steps, attempts, outputs, errors. Given a
    thread (`t-...` or OWNER/NAME#ISSUE), show its specs, runs and transitions."""
    from runner.threads import is_thread_reference

    if is_thread_reference(run_id):
        from runner.commands.threads import show_thread

        return show_thread(open_store(state_dir), run_id, sys.stdout, json_lines=json_lines)
    if changes:
        from runner.commands.changes import show_changes

        return show_changes(open_store(state_dir), state_dir_of(state_dir), run_id, shown(sys.stdout))
    from runner.commands.inspect import show_run

    return show_run(open_store(state_dir), run_id, sys.stdout, json_lines=json_lines)


@cli.command()
@click.argument("run_id", metavar="RUN")
@click.option("--steps", type=click.IntRange(min=1), help="Undo the last N completed steps (and all after them).")
@click.option("--to", "to", metavar="STEP", help="Go back to the state right after STEP.")
@click.option("--soft", is_flag=True, help="Undo only the failed step's workspace changes.")
@click.option("--hard", is_flag=True, help="Undo everything the run did.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The GitHub token, to undo pushes, pull requests and comments (default: GITHUB_TOKEN / GH_TOKEN).",
)
@state_option
def rollback(
    run_id: str,
    steps: int | None,
    to: str | None,
    soft: bool,
    hard: bool,
    dry_run: bool,
    token_file: Path | None,
    state_dir: Path | None,
) -> int:
    """Undo recorded changes of RUN, newest first; stops at any state it did not record."""
    from runner.commands.rollback import choose_mode, rollback_run

    mode = choose_mode(steps, to, soft, hard)
    return rollback_run(
        open_store(state_dir),
        state_dir_of(state_dir),
        run_id,
        mode,
        steps=steps,
        to=to,
        dry_run=dry_run,
        out=shown(sys.stdout),
        token_file=token_file,
    )


@cli.command()
@click.argument("run_id", metavar="RUN")
@click.option("--from", "from_step", metavar="STEP", help="Run again from this top-level step.")
@click.option("--skip", "skip", multiple=True, metavar="STEP", help="Skip this step (repeatable).")
@click.option("--force", is_flag=True, help="Also delete workspace files the run did not create.")
@secret_options
@state_option
@json_option
def resume(
    run_id: str,
    from_step: str | None,
    skip: tuple[str, ...],
    force: bool,
    secret_files: tuple[Path, ...],
    token_file: Path | None,
    ca_bundle: Path | None,
    host_root: str | None,
    state_dir: Path | None,
    json_lines: bool,
) -> int:
    """Continue a failed, cancelled, waiting or interrupted RUN; steps that succeeded do not run again."""
    from runner.commands.run import resume_run

    return resume_run(
        run_id,
        from_step=from_step,
        skip=list(skip),
        state_dir=state_dir_of(state_dir),
        out=sys.stdout,
        json_lines=json_lines,
        secret_files=list(secret_files),
        token_file=token_file,
        ca_bundle=ca_bundle,
        host_root=host_root,
        force=force,
    )


@cli.command()
@click.argument("run_id", metavar="RUN")
@click.argument("step", required=False)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new output until the run ends.")
@click.option("--transcript", is_flag=True, help="The agent's own session transcript of STEP, per attempt (masked).")
@state_option
def logs(run_id: str, step: str | None, follow: bool, transcript: bool, state_dir: Path | None) -> int:
    """Print the (masked) logs of a run, or of one STEP."""
    from runner.commands.inspect import show_logs

    if transcript:
        from runner.agents.transcript import show_transcripts

        if step is None:
            raise click.UsageError("--transcript needs a STEP")
        return show_transcripts(open_store(state_dir), run_id, step, sys.stdout)

    return show_logs(open_store(state_dir), run_id, step, sys.stdout, follow=follow)


def _decision_command(name: str, decision: Decision, summary: str, comment_help: str) -> None:
    """Register `pipe NAME RUN [--comment TEXT]`, which records `decision` and continues the run."""

    @click.argument("run_id", metavar="RUN")
    @click.option("--comment", help=comment_help)
    @secret_options
    @state_option
    @json_option
    def command(
        run_id: str,
        comment: str | None,
        secret_files: tuple[Path, ...],
        token_file: Path | None,
        ca_bundle: Path | None,
        host_root: str | None,
        state_dir: Path | None,
        json_lines: bool,
    ) -> int:
        from runner.commands.run import decide_run

        return decide_run(
            run_id,
            decision,
            comment,
            state_dir=state_dir_of(state_dir),
            out=sys.stdout,
            json_lines=json_lines,
            secret_files=list(secret_files),
            token_file=token_file,
            ca_bundle=ca_bundle,
            host_root=host_root,
        )

    command.__doc__ = summary
    cli.command(name)(command)


_decision_command(
    "approve",
    Decision.APPROVED,
    "Approve the wait point RUN is waiting at, and continue the run.",
    "A note kept with the decision (the wait step's `comment` output).",
)
_decision_command(
    "reject",
    Decision.REJECTED,
    "Reject the wait point RUN is waiting at: the step fails and on-failure applies.",
    "Why (the wait step's error says it).",
)


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
