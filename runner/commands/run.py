"""`pipe run`: load a pipeline, resolve its inputs and secrets, then print the plan or execute it."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from runner.actions import registry
from runner.engine.sandboxing import prepare_workspace
from runner.errors import ExitCode, PipeError, UsageError
from runner.forges import open_forge
from runner.names import EventKind, RunStatus
from runner.pipeline.inputs import parse_assignments, resolve_inputs
from runner.pipeline.model import Pipeline
from runner.pipeline.plan import format_plan, plan
from runner.pipeline.spec import load_pipeline
from runner.pipeline.trigger import event_inputs, load_event
from runner.statedir import StateDir
from runner.store import Store
from runner.workers.execute import Launch, build_reporter, check_actions, execute, interrupt_on_sigterm

if TYPE_CHECKING:
    from runner.reporters import Reporter


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
    """Record `decision` (approved|rejected) on the run's open wait point, then continue the run.
    Raises UsageError when the run is not waiting."""
    import getpass

    store = Store(state_dir)
    try:
        record = store.run(run_id)
        if record.status != RunStatus.WAITING:
            raise UsageError(f"run {record.id} is {record.status}, not waiting for an approval")
        store.decide(record.id, decision, comment, getpass.getuser())
    finally:
        store.close()
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
    """Continue a stored run: take its lease (RunBusy, exit 2, when a live process holds it),
    remove containers a dead runner left, undo the changes of the steps that run again, run them.
    The pipeline is the one stored with the run, not the file as it is now."""
    from runner.backend import open_backend as make_backend
    from runner.changes.objects import ObjectStore
    from runner.changes.resume import plan_restart, prepare
    from runner.engine import Engine, ResumePoint, RunOptions
    from runner.engine.credentials import load_credentials
    from runner.pipeline.secrets import read_child_channel, resolve_secrets
    from runner.pipeline.spec import parse_pipeline
    from runner.reporters.console import console_reporter
    from runner.reporters.jsonl import JsonLinesReporter

    store = Store(state_dir)
    try:
        record = store.run(run_id)
        if record.status == RunStatus.SUCCEEDED:
            raise UsageError(f"run {record.id} already succeeded; nothing to resume")
        if not record.workspace:
            # The runner died between recording the run and its workspace: no step ran yet, so the
            # default workspace is the one (never the current directory, which Path("") would be).
            default = StateDir(state_dir).run(record.id).workspace
            prepare_workspace(default)
            store.update_run(record.id, workspace=str(default))
            record = store.run(record.id)
        pipeline = parse_pipeline(store.pipeline_definition(record.id).encode(), record.pipeline_path)
        check_actions(pipeline)
        unknown = [name for name in skip if name not in {s.id for s in pipeline.all_steps()}]
        if unknown:
            raise UsageError(f"{pipeline.path}: --skip names no step: {', '.join(unknown)}")
        passed = read_child_channel(os.environ).secrets if record.parent_id else {}
        secrets = resolve_secrets(pipeline, os.environ, secret_files or [], passed)
        settings = record.resume_state.forge
        forge = open_forge(settings, state_dir=state_dir, token_file=token_file) if settings else None
        backend = make_backend("docker", host_root=host_root)
        console = JsonLinesReporter(out) if json_lines else console_reporter(out)
        reporter: Reporter = console
        interrupt_on_sigterm()
        try:
            credentials = load_credentials(pipeline, os.environ, forge, token_file)
            state = record.resume_state.state
            tokens = [values["GITHUB_TOKEN"] for values in credentials.values() if "GITHUB_TOKEN" in values]
            inputs = dict(record.inputs)
            reporter = build_reporter(
                console, pipeline, inputs, store, state, forge=forge, publish=True, secrets=[*secrets.values(), *tokens]
            )
            options = RunOptions(
                state_dir=state_dir,
                secrets=secrets,
                workspace=Path(record.workspace),
                token_file=token_file,
                ca_bundle=ca_bundle,
                trigger="resume",
                forge=forge,
                credentials=credentials,
                default_image=record.resume_state.default_image or os.environ.get("PIPE_SANDBOX_IMAGE"),
            )
            engine = Engine(pipeline, store, backend, reporter, options, state)
            engine.claim(record.id)
            mask = engine.masker.mask_value
            read = registry.forge_reader(pipeline, record.id, record.inputs, forge)
            restart, inner, changed = plan_restart(pipeline, store, record.id, from_step, read, mask)
            objects = ObjectStore(StateDir(state_dir).objects)
            try:
                done = prepare(pipeline, store, backend, objects, record.id, restart, inner, force=force)
            except PipeError:
                engine.unclaim()  # refused or stopped: the run stays as it was, free to resume
                raise
            if changed:  # a forge read answers differently now: the run says so, and restarts there
                store.add_event(record.id, EventKind.INPUTS_CHANGED.value, None, {"steps": changed})
                console.event(EventKind.INPUTS_CHANGED.value, {"run": record.id, "steps": changed})
            console.event(
                EventKind.RESUME_PREPARED.value,
                {
                    "run": record.id,
                    "restart_at": pipeline.steps[restart].id if restart < len(pipeline.steps) else None,
                    "containers_removed": done.reaped,
                    "paths_restored": done.restored,
                    "changes_undone": done.undone,
                    "paths": list(done.paths),
                },
            )
            result = engine.resume(ResumePoint(record.id, restart, frozenset(skip), inner))
        finally:
            reporter.close()
            backend.close()
    finally:
        store.close()
    return int(result.exit_code)
