"""`pipe run`: load a pipeline, resolve its inputs and secrets, then print the plan or execute it."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from runner import __version__
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

if TYPE_CHECKING:
    from runner.actions import RunState
    from runner.reporters import Reporter
    from runner.store import Store as StoreType


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
        if step.uses is not None and step.uses not in registry.ACTIONS:
            where = f"{pipeline.path}:{step.line}: steps.{step.id}"
            raise UsageError(f"{where}: action '{step.uses}' is not available in pipe {__version__}")


def needs_forge(pipeline: Pipeline) -> bool:
    """Whether a step uses an action that needs a forge (the registry says which) or progress
    goes to an issue comment."""
    return registry.needs_forge(pipeline)


def build_reporter(
    console: Reporter,
    pipeline: Pipeline,
    inputs: dict[str, Any],
    store: StoreType,
    state: RunState,
    *,
    forge: Any,
    publish: bool,
    secrets: list[str],
) -> Reporter:
    """The run's whole reporter (see runner.reporters.run_reporter): `console` plus the
    pipeline's `report:` destinations, a progress comment's creation recorded in `store` as an
    external change of the run (so a rollback deletes it), and with a `thread:` key the thread
    reporter (runner/threads/reporter.py) that moves the run's thread."""
    from runner.reporters import Fanout, run_reporter

    def record(run_id: str, kind: str, target: str, data: Mapping[str, Any]) -> None:
        store.save_changes(run_id, [("(report)", 0, 0, kind, target, dict(data))], [], [])

    reporter = run_reporter(
        console,
        pipeline,
        inputs,
        forge=forge,
        publish=publish,
        environ=os.environ,
        secrets=secrets,
        pull_request=lambda: state.pull_request_url,
        record=record,
    )
    if pipeline.thread is None:
        return reporter
    from runner.threads.reporter import ThreadReporter

    repo = str(getattr(forge, "repo", "") or "")
    thread = ThreadReporter(store, pipeline.thread, inputs, state, default_repo=repo, env=pipeline.env)
    return Fanout(reporter, thread)


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
    from runner.actions import RunState
    from runner.backend import open_backend as make_backend
    from runner.engine import Engine, RunOptions
    from runner.engine.credentials import load_credentials
    from runner.pipeline.secrets import resolve_secrets
    from runner.reporters.console import console_reporter
    from runner.reporters.jsonl import JsonLinesReporter

    secrets = resolve_secrets(pipeline, os.environ, secret_files or [], channel.secrets)
    settings = dict(forge_settings or {"forge": "github"})
    for candidate in (inputs.get("repo"), event_inputs(event).get("repo")):
        if "repo" not in settings and isinstance(candidate, str) and candidate:
            settings["repo"] = candidate
    forge = open_forge(settings, state_dir=state_dir, token_file=token_file) if needs_forge(pipeline) else None
    console = JsonLinesReporter(out) if json_lines else console_reporter(out)
    reporter: Reporter = console
    store = Store(state_dir)
    backend = make_backend("docker", host_root=host_root)
    _interrupt_on_sigterm()
    try:
        credentials = load_credentials(pipeline, os.environ, forge, token_file)
        state = RunState()
        tokens = [values["GITHUB_TOKEN"] for values in credentials.values() if "GITHUB_TOKEN" in values]
        reporter = build_reporter(
            console, pipeline, inputs, store, state, forge=forge, publish=publish, secrets=[*secrets.values(), *tokens]
        )
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
            credentials=credentials,
            trigger=trigger or ("parent" if parent else "actions" if os.environ.get("GITHUB_ACTIONS") else "cli"),
        )
        result = Engine(pipeline, store, backend, reporter, options, state).run(inputs)
    finally:
        reporter.close()  # the last writes of the `report:` destinations are waited for within their grace
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
        _interrupt_on_sigterm()
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
