"""`pipe submit`, `pipe worker` and `pipe workers`: runs executed by Celery workers (runner/workers/).
Each needs PIPE_BROKER_URL; without it they refuse with exit 2. Their click commands are defined
here, at the end, and added to the command line by runner/cli.py (which stays under the size limit)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import click

from runner.commands.options import (
    forge_options,
    forge_settings,
    json_option,
    secret_options,
    state_dir_of,
    state_option,
)
from runner.errors import UsageError
from runner.workers.app import broker_url


def need_broker() -> str:
    """PIPE_BROKER_URL, or UsageError (exit 2) saying it is needed."""
    url = broker_url()
    if url is None:
        raise UsageError("PIPE_BROKER_URL is not set: give the broker's URL, e.g. redis://127.0.0.1:6379/0")
    return url


def submit_run(
    file: str,
    assignments: list[str],
    *,
    state_dir: Path,
    out: TextIO,
    forge_settings: dict[str, str] | None,
    publish: bool,
    default_image: str | None,
    queue: str | None,
    wait: bool,
    json_lines: bool = False,
) -> int:
    """Validate the pipeline in `file` and its inputs (exit 2 for a problem), create the run
    `pending`, enqueue it on `queue` and print its id; with `wait`, follow it to its end and return
    its exit code as `pipe run` does (0, 1, 3 or 130), else 0."""
    from runner.commands.run import load, run_forge_settings
    from runner.pipeline.inputs import parse_assignments, resolve_inputs
    from runner.store import Store
    from runner.workers.app import make_app
    from runner.workers.execute import check_actions, needs_forge
    from runner.workers.submit import create_pending, follow, send, submitter_masker

    broker = need_broker()
    pipeline = load(file, sys.stderr)
    inputs = resolve_inputs(pipeline, parse_assignments(assignments))
    check_actions(pipeline)
    settings = run_forge_settings(forge_settings, inputs, {}) if needs_forge(pipeline) else None
    store = Store(state_dir)
    try:
        run_id = create_pending(
            store,
            pipeline,
            inputs,
            forge=settings,
            publish=publish,
            default_image=default_image,
            masker=submitter_masker(pipeline),
            queue=queue,
        )
    finally:
        store.close()
    send(make_app(broker), run_id, queue)
    print(json.dumps({"event": "run_submitted", "run": run_id}) if json_lines else run_id, file=out, flush=True)
    if not wait:
        return 0
    return follow(state_dir, run_id, out, json_lines=json_lines)


def run_worker(
    *,
    state_dir: Path,
    concurrency: int,
    queues: list[str],
    secret_files: list[Path],
    token_file: Path | None,
    ca_bundle: Path | None,
    host_root: str | None,
    loglevel: str,
    work_dir: Path | None = None,
) -> int:
    """Start a Celery worker (runner/workers/worker.py) executing submitted runs with this state
    directory, their workspaces under `work_dir` when given; PIPE_HOME is set to the state
    directory for the runs' own child processes."""
    from runner.workers.tasks import WorkerOptions
    from runner.workers.worker import start_worker

    broker = need_broker()
    if concurrency < 1:
        raise UsageError(f"--concurrency: {concurrency} is not a positive number")
    os.environ["PIPE_HOME"] = str(state_dir)
    options = WorkerOptions(
        state_dir=state_dir,
        work_dir=work_dir.absolute() if work_dir else None,
        secret_files=[path.absolute() for path in secret_files],
        token_file=token_file.absolute() if token_file else None,
        ca_bundle=ca_bundle.absolute() if ca_bundle else None,
        host_root=host_root,
    )
    return start_worker(broker, options, concurrency=concurrency, queues=queues, loglevel=loglevel)


def list_workers(out: TextIO, *, json_lines: bool = False, timeout: float = 1.0) -> int:
    """Print the live workers (name, pool size, the runs each executes now); exit 0, also when none
    answered (then it says so)."""
    from runner.workers.worker import live_workers

    workers = live_workers(need_broker(), timeout)
    for worker in workers:
        if json_lines:
            record: dict[str, Any] = {"worker": worker.name, "concurrency": worker.concurrency, "runs": worker.runs}
            print(json.dumps(record), file=out)
        else:
            runs = ", ".join(worker.runs) or "idle"
            print(f"{worker.name}  concurrency {worker.concurrency}  {runs}", file=out)
    if not workers and not json_lines:
        print("no worker answered", file=out)
    return 0


@click.command("submit")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--input", "-i", "inputs", multiple=True, metavar="KEY=VALUE", help="An input value (repeatable).")
@click.option("--wait", is_flag=True, help="Follow the run to its end and exit with its exit code, as `pipe run`.")
@click.option("--queue", metavar="NAME", help="The Celery queue (default: pipe).")
@click.option(
    "--sandbox-image",
    envvar="PIPE_SANDBOX_IMAGE",
    metavar="IMAGE",
    help="The image of every step that names none (default: pipe-sandbox).",
)
@click.option("--no-publish", is_flag=True, help="Print pushes and forge writes instead of making them.")
@forge_options
@state_option
@json_option
def submit_command(
    file: str,
    inputs: tuple[str, ...],
    wait: bool,
    queue: str | None,
    sandbox_image: str | None,
    no_publish: bool,
    forge_kind: str | None,
    forge_dir: Path | None,
    repo: str | None,
    api_url: str | None,
    github_app_id: str | None,
    github_app_key_file: Path | None,
    state_dir: Path | None,
    json_lines: bool,
) -> int:
    """Validate the pipeline in FILE, create its run and enqueue it for a worker (PIPE_BROKER_URL);
    print the run's id. Secrets are the executing worker's own."""
    return submit_run(
        file,
        list(inputs),
        state_dir=state_dir_of(state_dir),
        out=sys.stdout,
        forge_settings=forge_settings(forge_kind, forge_dir, repo, api_url, github_app_id, github_app_key_file),
        publish=not no_publish,
        default_image=sandbox_image,
        queue=queue,
        wait=wait,
        json_lines=json_lines,
    )


@click.command("worker")
@click.option("--concurrency", "-c", type=int, default=1, show_default=True, help="Runs executed at once.")
@click.option("--queues", "-Q", multiple=True, metavar="NAME", help="Queues to take runs from (default: pipe).")
@click.option("--loglevel", default="INFO", show_default=True, help="Celery's log level.")
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PIPE_WORK_DIR",
    help="A local directory for the runs' workspaces (default: in the state directory). With a state "
    "directory shared between machines, give each worker its own: a run taken over from a dead worker "
    "gets its workspace rebuilt here.",
)
@secret_options
@state_option
def worker_command(
    concurrency: int,
    queues: tuple[str, ...],
    loglevel: str,
    work_dir: Path | None,
    secret_files: tuple[Path, ...],
    token_file: Path | None,
    ca_bundle: Path | None,
    host_root: str | None,
    state_dir: Path | None,
) -> int:
    """Start a Celery worker (PIPE_BROKER_URL) executing submitted runs, named pipe.PID@HOST."""
    return run_worker(
        state_dir=state_dir_of(state_dir),
        concurrency=concurrency,
        queues=[name for entry in queues for name in entry.split(",") if name],
        secret_files=list(secret_files),
        token_file=token_file,
        ca_bundle=ca_bundle,
        host_root=host_root,
        loglevel=loglevel,
        work_dir=work_dir,
    )


@click.command("workers")
@click.option("--timeout", type=float, default=1.0, show_default=True, help="Seconds to wait for answers.")
@json_option
def workers_command(timeout: float, json_lines: bool) -> int:
    """List the live workers (Celery inspect) and the runs each executes."""
    return list_workers(sys.stdout, json_lines=json_lines, timeout=timeout)
