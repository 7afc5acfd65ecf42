"""Submitting a run to the workers: create it `pending` in the store (its pipeline, inputs, forge
settings, `publish` and default image stored with it, its concurrency group taken as `pipe run`
takes it), then enqueue `execute_run(run_id)`; and following a submitted run to its end
(`pipe submit --wait`), printing its events as `pipe run` would.

What the executing worker does not get from here: secrets (nothing secret travels through the
broker or the store; a worker's secrets are its own environment and secret files) and host paths
(token file, CA bundle: the worker's options).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from runner.errors import ExitCode, UsageError
from runner.masking import Masker
from runner.names import EventKind, RunStatus
from runner.pipeline.model import Pipeline
from runner.store import ResumeState, Store
from runner.workers.app import DEFAULT_QUEUE, enqueue, make_app

FOLLOW_POLL = 0.2  # seconds between looks at a followed run

EXIT_CODES = {
    RunStatus.SUCCEEDED: ExitCode.SUCCESS,
    RunStatus.FAILED: ExitCode.STEP_FAILED,
    RunStatus.WAITING: ExitCode.WAITING,
    RunStatus.CANCELLED: ExitCode.INTERRUPTED,
}


def create_pending(
    store: Store,
    pipeline: Pipeline,
    inputs: Mapping[str, Any],
    *,
    forge: Mapping[str, Any] | None,
    publish: bool,
    default_image: str | None,
    parent: tuple[str, str] | None = None,
    trigger: str = "submit",
    masker: Masker | None = None,
    queue: str | None = None,
) -> str:
    """A new run of `pipeline` in status `pending` with resolved `inputs` (masked with `masker`),
    taking its concurrency group as runner/engine/lifecycle.py does (RunSkipped, exit 0, for a busy
    group with `if-running: skip`; else waiting for it); returns its id. `forge` (open_forge's
    settings, None: the pipeline needs none), `publish` and `default_image` are stored in its
    ResumeState for the worker, `queue` (the broker queue it is sent to, None: the default,
    DEFAULT_QUEUE) on the run. The group's lease is given back at once: the worker takes it."""
    from runner.engine.lifecycle import Lifecycle
    from runner.engine.options import RunOptions

    options = RunOptions(state_dir=store.state_dir, trigger=trigger, parent=parent, queue=queue or DEFAULT_QUEUE)
    lifecycle = Lifecycle(pipeline, store, options, _Quiet())
    state = ResumeState(forge=dict(forge) if forge else None, default_image=default_image, publish=publish)
    run_id = lifecycle.create(inputs, masker or Masker(), state)
    if lifecycle.lease is not None:
        lifecycle.lease.bind(run_id)
        lifecycle.release()
    return run_id


def send(app: Any, run_id: str, queue: str | None = None) -> None:
    """Enqueue run `run_id` (runner.workers.app.enqueue); raises UsageError, exit 2, naming the
    broker's host when it does not answer (the run stays `pending`: submit it again with the same id
    is not possible, so the message says to start a new one)."""
    from kombu.exceptions import OperationalError

    try:
        enqueue(app, run_id, queue)
    except OperationalError as error:
        host = str(app.conf.broker_url).rsplit("@", 1)[-1]
        raise UsageError(
            f"PIPE_BROKER_URL: the broker at {host} does not answer ({error}); run {run_id} stays pending"
        ) from None


def child_submitter(
    broker: str, state_dir: Path, forge: Mapping[str, Any] | None, publish: bool, default_image: str | None
) -> Callable[[Path, Mapping[str, Any], tuple[str, str]], str]:
    """RunOptions.submit_child for a run whose `uses: pipeline` children go to `broker`: load the
    child pipeline, resolve its inputs (UsageError for bad ones), create it `pending` with the
    parent's forge, `publish` and default image, enqueue it on the default queue (whichever queue
    the parent is on: parents on their own queue never starve their children, docs/deploy.md);
    returns the child's run id."""
    from runner.pipeline.inputs import resolve_inputs
    from runner.pipeline.spec import load_pipeline

    app = make_app(broker)

    def submit(path: Path, given: Mapping[str, Any], parent: tuple[str, str]) -> str:
        pipeline = load_pipeline(path)
        inputs = resolve_inputs(pipeline, dict(given))
        store = Store(state_dir)
        try:
            run_id = create_pending(
                store,
                pipeline,
                inputs,
                forge=forge,
                publish=publish,
                default_image=default_image,
                parent=parent,
                trigger="parent",
            )
        finally:
            store.close()
        send(app, run_id)
        return run_id

    return submit


def follow(state_dir: Path, run_id: str, out: TextIO, *, json_lines: bool = False, after: int | None = None) -> int:
    """Print run `run_id`'s events as they are stored (the console reporter's lines, or JSON
    lines) until it finished or waits at a wait point; returns its exit code as `pipe run`'s (0,
    1, 3 or 130). With `after` (an event id), only later events are printed and a `waiting` run
    ends the following only once it was resumed after them (a decided wait point a worker is
    about to continue). Interrupting it stops the following, not the run."""
    from runner.reporters.console import console_reporter
    from runner.reporters.jsonl import JsonLinesReporter

    reporter = JsonLinesReporter(out) if json_lines else console_reporter(out)
    store = Store(state_dir)
    seen = after or 0
    resumed = after is None
    try:
        while True:
            status = store.run(run_id).status
            for event in store.events(run_id, seen):
                seen = event.id
                resumed = resumed or event.kind == EventKind.RUN_RESUMED.value
                payload = {"run": run_id, **({"step": event.step_id} if event.step_id else {}), **event.data}
                reporter.event(event.kind, payload)
            if status.finished or (status == RunStatus.WAITING and resumed):
                break
            time.sleep(FOLLOW_POLL)
    finally:
        reporter.close()
        store.close()
    return int(EXIT_CODES.get(status, ExitCode.STEP_FAILED))


def submitter_masker(pipeline: Pipeline, environ: Mapping[str, str] | None = None) -> Masker:
    """Masks the values of the pipeline's declared secrets found in the submitter's environment, so
    an input holding one is stored `***`."""
    env = environ if environ is not None else os.environ
    return Masker(env[secret.name] for secret in pipeline.secrets if env.get(secret.name))


class _Quiet:
    """A reporter that tells nothing (a submitter waiting for a concurrency group says nothing)."""

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        """Nothing."""

    def output(self, step: str, text: str) -> None:
        """Nothing."""

    def close(self) -> None:
        """Nothing."""
