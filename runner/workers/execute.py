"""Executing one run in this process: build the forge, the reporters, the sandbox backend and the
run options, then hand them to the Engine. `pipe run` (runner/commands/run.py) executes a new run
this way, and a Celery worker's `execute_run` task (runner/workers/tasks.py) a run `pipe submit`
created `pending`; both go through `execute`, so the two differ only in where the run was created.

When a broker is configured (PIPE_BROKER_URL, runner/workers/app.py), the run's `uses: pipeline`
children are submitted to it instead of started as local processes (RunOptions.submit_child).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from runner import __version__
from runner.actions import registry
from runner.errors import RunBusy, UsageError
from runner.forges import open_forge
from runner.pipeline.model import Pipeline
from runner.store import Store

if TYPE_CHECKING:
    from runner.actions import RunState
    from runner.reporters import Reporter


def check_actions(pipeline: Pipeline) -> None:
    """Refuse (UsageError, exit 2) a pipeline that uses an action this version cannot execute,
    naming FILE:LINE and the step."""
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
    store: Store,
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


def interrupt_on_sigterm() -> Any:
    """Turn SIGTERM into KeyboardInterrupt, so a stopped run ends `cancelled` (exit 130); returns
    the handler it replaced (a worker's pool process puts it back after the run)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


@dataclass(frozen=True)
class Launch:
    """How to execute a run here: the state directory, where the console output goes (`out`,
    JSON lines with `json_lines`), what the person gives from the host (secret files, token file,
    CA bundle, host root), the forge settings (`runner.forges.open_forge`; opened only when the
    pipeline needs a forge), `publish`, the default sandbox image, the parent (run id, child key)
    of a child run, the trigger recorded, the triggering event, `channel_secrets` (a parent's, read
    from its pipe) and `worker`, the Celery worker's name recorded on the run."""

    state_dir: Path
    out: TextIO
    json_lines: bool = False
    secret_files: list[Path] = field(default_factory=list)
    workspace: Path | None = None
    token_file: Path | None = None
    ca_bundle: Path | None = None
    host_root: str | None = None
    forge_settings: Mapping[str, Any] | None = None
    publish: bool = True
    default_image: str | None = None
    parent: tuple[str, str] | None = None
    trigger: str = "cli"
    event: Mapping[str, Any] = field(default_factory=dict)
    channel_secrets: Mapping[str, str] = field(default_factory=dict)
    worker: str | None = None


def credentials_and_reporter(
    console: Reporter,
    pipeline: Pipeline,
    inputs: dict[str, Any],
    store: Store,
    state: RunState,
    forge: Any,
    launch: Launch,
    secrets: Mapping[str, str],
) -> tuple[dict[str, dict[str, str]], Reporter]:
    """The run's credentials (runner.engine.credentials.load_credentials: the token file of
    `launch`) and its whole reporter (`build_reporter`), which masks the secrets and every token
    the credentials hold."""
    from runner.engine.credentials import load_credentials

    credentials = load_credentials(pipeline, os.environ, forge, launch.token_file)
    tokens = [values["GITHUB_TOKEN"] for values in credentials.values() if "GITHUB_TOKEN" in values]
    reporter = build_reporter(
        console,
        pipeline,
        inputs,
        store,
        state,
        forge=forge,
        publish=launch.publish,
        secrets=[*secrets.values(), *tokens],
    )
    return credentials, reporter


def child_submitter_for(forge: Any, launch: Launch) -> Any:
    """With a broker configured (PIPE_BROKER_URL), the function that submits the run's `uses:
    pipeline` children to it (runner.workers.submit.child_submitter, with the run's forge, else
    the forge settings it was given, `publish` and default image); None without a broker
    (children run as local processes)."""
    from runner.workers.app import broker_url
    from runner.workers.submit import child_submitter

    broker = broker_url()
    if broker is None:
        return None
    settings = dict(launch.forge_settings) if launch.forge_settings else None
    describe = forge.describe() if forge is not None else settings  # a parent that reads no forge itself
    return child_submitter(broker, launch.state_dir, describe, launch.publish, launch.default_image)


def execute(pipeline: Pipeline, inputs: dict[str, Any], launch: Launch, run_id: str | None = None) -> int:
    """Execute `pipeline` with resolved `inputs`: a new run, or with `run_id` the stored `pending`
    run of that id (Engine.start: its stored inputs are used, RunBusy, exit 2, when it is leased or
    no longer pending). Returns the run's exit code (0, 1, 3 or 130). Raises UsageError (2) for a
    missing secret or an unknown action and EngineUnavailable (4) when Docker does not answer."""
    from runner.actions import RunState
    from runner.backend import open_backend as make_backend
    from runner.engine import Engine, RunOptions
    from runner.engine.lease import LeaseLost
    from runner.pipeline.secrets import resolve_secrets
    from runner.reporters.console import console_reporter
    from runner.reporters.jsonl import JsonLinesReporter

    check_actions(pipeline)
    secrets = resolve_secrets(pipeline, os.environ, launch.secret_files, dict(launch.channel_secrets))
    settings = dict(launch.forge_settings or {"forge": "github"})
    forge = (
        open_forge(settings, state_dir=launch.state_dir, token_file=launch.token_file)
        if needs_forge(pipeline)
        else None
    )
    console = JsonLinesReporter(launch.out) if launch.json_lines else console_reporter(launch.out)
    reporter: Reporter = console
    store = Store(launch.state_dir)
    backend = make_backend("docker", host_root=launch.host_root)
    previous = interrupt_on_sigterm()
    try:
        state = RunState()
        credentials, reporter = credentials_and_reporter(
            console, pipeline, inputs, store, state, forge, launch, secrets
        )
        options = RunOptions(
            event=launch.event,
            default_image=launch.default_image,
            parent=launch.parent,
            state_dir=launch.state_dir,
            secrets=secrets,
            workspace=launch.workspace,
            token_file=launch.token_file,
            ca_bundle=launch.ca_bundle,
            forge=forge,
            publish=launch.publish,
            credentials=credentials,
            trigger=launch.trigger,
            worker=launch.worker,
            submit_child=child_submitter_for(forge, launch),
        )
        engine = Engine(pipeline, store, backend, reporter, options, state)
        try:
            result = engine.run(inputs) if run_id is None else engine.start(run_id)
        except LeaseLost as lost:  # another process took the run over: it is theirs now
            raise RunBusy(str(lost)) from None
    finally:
        reporter.close()  # the last writes of the `report:` destinations are waited for within their grace
        backend.close()
        store.close()
        if launch.worker is not None:  # a worker's pool process runs more runs: its own handler back
            signal.signal(signal.SIGTERM, previous)
    return int(result.exit_code)


def preload() -> None:
    """Import what executing a run needs (the engine, the pipeline loader, the reporters, Docker's
    client), so that a worker does it once, before its pool forks, instead of in every run."""
    import importlib

    for name in ("docker", "runner.backend", "runner.engine", "runner.pipeline.spec", "runner.reporters.console"):
        importlib.import_module(name)
