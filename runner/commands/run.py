"""`pipe run`: load a pipeline, resolve its inputs and secrets, then print the plan or execute it."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from runner import __version__
from runner.actions import ACTIONS
from runner.engine.sandboxing import prepare_workspace
from runner.errors import ExitCode, PipeError, UsageError
from runner.forges import open_forge
from runner.pipeline.inputs import parse_assignments, resolve_inputs
from runner.pipeline.model import Pipeline
from runner.pipeline.plan import format_plan, plan
from runner.pipeline.spec import load_pipeline
from runner.pipeline.trigger import event_inputs, load_event
from runner.store import Store

if TYPE_CHECKING:
    from runner.engine.engine import Engine
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


def check_actions(pipeline: Pipeline) -> None:
    """Refuse (exit 2) a pipeline that uses an action this version cannot execute."""
    for step in pipeline.all_steps():
        if step.uses is not None and step.uses not in ACTIONS:
            where = f"{pipeline.path}:{step.line}: steps.{step.id}"
            raise UsageError(f"{where}: action '{step.uses}' is not available in pipe {__version__}")


def needs_forge(pipeline: Pipeline) -> bool:
    """Whether a step uses a git or forge action or waits for comments on an issue, or progress
    goes to an issue comment."""
    for step in pipeline.all_steps():
        if step.uses and step.uses.startswith(("git/", "github/")):
            return True
        if step.uses == "wait/approval" and step.with_.get("issue") is not None:
            return True
    return pipeline.report.issue_comment is not None


def close_reporters(engine: Engine | None, reporter: Reporter) -> None:
    """Close every reporter of the run: the engine's (the console plus the pipeline's `report:`
    destinations, whose last writes are waited for within their grace), else the console alone."""
    (engine.reporter if engine is not None else reporter).close()


def _interrupt_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


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
    check_actions(pipeline)
    from runner.engine.engine import Engine, RunOptions
    from runner.pipeline.secrets import resolve_secrets
    from runner.reporters.console import console_reporter
    from runner.reporters.jsonl import JsonLinesReporter
    from sandbox import backend as make_backend

    secrets = resolve_secrets(pipeline, os.environ, secret_files or [], channel.secrets)
    settings = dict(forge_settings or {"forge": "github"})
    for candidate in (inputs.get("repo"), event_inputs(event).get("repo")):
        if "repo" not in settings and isinstance(candidate, str) and candidate:
            settings["repo"] = candidate
    forge = open_forge(settings, state_dir=state_dir, token_file=token_file) if needs_forge(pipeline) else None
    reporter = JsonLinesReporter(out) if json_lines else console_reporter(out)
    store = Store(state_dir)
    backend = make_backend("docker", host_root=host_root)
    _interrupt_on_sigterm()
    engine: Engine | None = None
    try:
        options = RunOptions(
            event=event,
            default_image=default_image,
            parent=parent,
            state_dir=state_dir,
            secrets=secrets,
            workspace=workspace,
            token_file=token_file,
            ca_bundle=ca_bundle,
            forge=forge,
            publish=publish,
            trigger=trigger or ("parent" if parent else "actions" if os.environ.get("GITHUB_ACTIONS") else "cli"),
        )
        engine = Engine(pipeline, store, backend, reporter, options)
        result = engine.run(inputs)
    finally:
        close_reporters(engine, reporter)
        backend.close()
        store.close()
    return int(result.exit_code)


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
        if record.status != "waiting":
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
    from runner.changes.objects import ObjectStore
    from runner.changes.resume import plan_restart, prepare
    from runner.engine.engine import Engine, ResumePoint, RunOptions
    from runner.pipeline.secrets import read_child_channel, resolve_secrets
    from runner.pipeline.spec import parse_pipeline
    from runner.reporters.console import console_reporter
    from runner.reporters.jsonl import JsonLinesReporter
    from sandbox import backend as make_backend

    store = Store(state_dir)
    try:
        record = store.run(run_id)
        if record.status == "succeeded":
            raise UsageError(f"run {record.id} already succeeded; nothing to resume")
        if not record.workspace:
            # The runner died between recording the run and its workspace: no step ran yet, so the
            # default workspace is the one (never the current directory, which Path("") would be).
            default = state_dir / "runs" / record.id / "workspace"
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
        settings = record.outputs.get("forge")
        forge = open_forge(settings, state_dir=state_dir, token_file=token_file) if settings else None
        backend = make_backend("docker", host_root=host_root)
        reporter = JsonLinesReporter(out) if json_lines else console_reporter(out)
        _interrupt_on_sigterm()
        engine: Engine | None = None
        try:
            options = RunOptions(
                state_dir=state_dir,
                secrets=secrets,
                workspace=Path(record.workspace),
                token_file=token_file,
                ca_bundle=ca_bundle,
                trigger="resume",
                forge=forge,
                default_image=record.outputs.get("default_image") or os.environ.get("PIPE_SANDBOX_IMAGE"),
            )
            engine = Engine(pipeline, store, backend, reporter, options)
            engine.claim(record.id)
            mask = engine.masker.mask_value
            restart, inner, changed = plan_restart(pipeline, store, record.id, from_step, forge, mask)
            objects = ObjectStore(state_dir / "objects")
            try:
                done = prepare(pipeline, store, backend, objects, record.id, restart, inner, force=force)
            except PipeError:
                engine.unclaim()  # refused or stopped: the run stays as it was, free to resume
                raise
            if changed:  # a forge read answers differently now: the run says so, and restarts there
                store.add_event(record.id, "inputs_changed", None, {"steps": changed})
                reporter.event("inputs_changed", {"run": record.id, "steps": changed})
            reporter.event(
                "resume_prepared",
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
            close_reporters(engine, reporter)
            backend.close()
    finally:
        store.close()
    return int(result.exit_code)
