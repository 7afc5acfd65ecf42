"""`pipe run`: load a pipeline, resolve its inputs and secrets, then print the plan or execute it."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from runner.errors import ExitCode, UsageError
from runner.names import RunStatus
from runner.pipeline.inputs import parse_assignments, resolve_inputs
from runner.pipeline.model import Pipeline
from runner.pipeline.plan import format_plan, plan
from runner.pipeline.spec import load_pipeline
from runner.pipeline.trigger import event_inputs, load_event
from runner.store import Store
from runner.workers.app import broker_url
from runner.workers.execute import Launch, execute

if TYPE_CHECKING:
    pass


def load(file: str, notes: TextIO | None = None) -> Pipeline:
    """Load `file` (a path, or the name of a shipped pipeline: see `locate_pipeline`), turning an
    unreadable file into a UsageError (exit 2). Which file was taken is written to `notes`."""
    from runner.resources import locate_pipeline

    path, note = locate_pipeline(file)
    if note and notes is not None:
        print(f"pipe: {note}", file=notes)
    try:
        return load_pipeline(path)
    except OSError as error:
        raise UsageError(f"{file}: cannot read: {error.strerror}") from None


def run_pipeline(
    file: str,
    assignments: list[str],
    *,
    dry_run: bool,
    out: TextIO,
    state_dir: Path,
    json_lines: bool = False,
    secret_files: list[Path] | None = None,
    workspace: Path | None = None,
    token_file: Path | None = None,
    ca_bundle: Path | None = None,
    host_root: str | None = None,
    forge_settings: dict[str, str] | None = None,
    publish: bool = True,
    default_image: str | None = None,
    parent: tuple[str, str] | None = None,
    trigger: str | None = None,
) -> int:
    """Run (or with `dry_run`, plan) the pipeline in `file` with `--input` assignments.
    `trigger` is recorded as who started the run (default: `parent`, `actions` or `cli`).

    Returns the run's exit code (0, 1, 3 or 130). Raises UsageError (2) for bad input and
    EngineUnavailable (4) when Docker does not answer.
    """
    from runner.pipeline.secrets import ChildChannel, read_child_channel

    pipeline = load(file, sys.stderr)
    channel = read_child_channel(os.environ) if parent else ChildChannel()  # a parent's secrets and inputs
    given: dict[str, Any] = {**parse_assignments(assignments), **channel.inputs}
    event = load_event(os.environ)
    declared = {i.name for i in pipeline.inputs}
    for name, value in event_inputs(event).items():
        if name in declared and name not in given:
            given[name] = value
    inputs = resolve_inputs(pipeline, given)
    if dry_run:
        print(format_plan(pipeline, plan(pipeline, inputs)), file=out)
        return int(ExitCode.SUCCESS)
    launch = Launch(
        state_dir=state_dir,
        out=out,
        json_lines=json_lines,
        secret_files=secret_files or [],
        workspace=workspace,
        token_file=token_file,
        ca_bundle=ca_bundle,
        host_root=host_root,
        forge_settings=run_forge_settings(forge_settings, inputs, event),
        publish=publish,
        default_image=default_image,
        parent=parent,
        trigger=trigger or ("parent" if parent else "actions" if os.environ.get("GITHUB_ACTIONS") else "cli"),
        event=event,
        channel_secrets=channel.secrets,
    )
    return execute(pipeline, inputs, launch)


def run_forge_settings(
    given: dict[str, str] | None, inputs: Mapping[str, Any], event: Mapping[str, Any]
) -> dict[str, str]:
    """The forge settings of a new run: those the options gave (default: GitHub), with `repo`
    taken from the `repo` input or the triggering event when the options named none."""
    settings = dict(given or {"forge": "github"})
    for candidate in (inputs.get("repo"), event_inputs(event).get("repo")):
        if "repo" not in settings and isinstance(candidate, str) and candidate:
            settings["repo"] = candidate
    return settings


def decide_run(
    run_id: str,
    decision: str,
    comment: str | None,
    *,
    state_dir: Path,
    out: TextIO,
    json_lines: bool = False,
    secret_files: list[Path] | None = None,
    token_file: Path | None = None,
    ca_bundle: Path | None = None,
    host_root: str | None = None,
) -> int:
    """Record `decision` (approved|rejected) on the run's open wait point, then continue the run:
    here, or, for a run a Celery worker executed while a broker is configured, on a worker (the
    run is enqueued and followed to its end). Raises UsageError when the run is not waiting."""
    import getpass

    store = Store(state_dir)
    try:
        record = store.run(run_id)
        if record.status != RunStatus.WAITING:
            raise UsageError(f"run {record.id} is {record.status}, not waiting for an approval")
        store.decide(record.id, decision, comment, getpass.getuser())
        last = max((event.id for event in store.events(record.id)), default=0)
    finally:
        store.close()
    broker = broker_url()
    if broker is not None and record.worker is not None:  # a worker executed it: a worker continues it
        from runner.workers.app import make_app
        from runner.workers.submit import follow, send

        send(make_app(broker), record.id, record.queue)
        return follow(state_dir, record.id, out, json_lines=json_lines, after=last)
    return resume_run(
        record.id,
        from_step=None,
        skip=[],
        state_dir=state_dir,
        out=out,
        json_lines=json_lines,
        secret_files=secret_files,
        token_file=token_file,
        ca_bundle=ca_bundle,
        host_root=host_root,
    )


def resume_run(
    run_id: str,
    *,
    from_step: str | None,
    skip: list[str],
    state_dir: Path,
    out: TextIO,
    json_lines: bool = False,
    secret_files: list[Path] | None = None,
    token_file: Path | None = None,
    ca_bundle: Path | None = None,
    host_root: str | None = None,
    force: bool = False,
) -> int:
    """Continue a stored run (runner.workers.resume.resume, with the options of `pipe resume`)."""
    from runner.workers.resume import resume

    launch = Launch(
        state_dir=state_dir,
        out=out,
        json_lines=json_lines,
        secret_files=secret_files or [],
        token_file=token_file,
        ca_bundle=ca_bundle,
        host_root=host_root,
        trigger="resume",
    )
    return resume(run_id, launch, from_step=from_step, skip=skip, force=force)
