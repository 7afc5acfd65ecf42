"""Continuing a stored run in this process: `pipe resume` (runner/commands/run.py), an approval's
decision, and a worker taking over a run whose worker died (runner/workers/tasks.py) all go
through `resume`.

Taking over (`adopt`): the run's workspace was on another worker's disk (one that died, or the
one that executed the run up to a wait point), so this worker makes a new, empty one under its
own work directory, records it on the run, and `prepare` (runner/changes/resume.py) rebuilds it:
every path of the run's manifest (the workspace after the last recorded attempt, in the store) is
put back from the object store, which every worker reads (the shared state directory), with the
git objects the run kept (runner/changes/gitobjects.py); then the recorded changes of the steps
that run again are undone. The interrupted step then runs again from that state, as after `pipe
resume`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from runner.actions import registry
from runner.changes.objects import ObjectStore
from runner.engine.lease import LeaseLost
from runner.engine.sandboxing import prepare_workspace
from runner.errors import RunBusy, UsageError
from runner.forges import open_forge
from runner.names import EventKind, RunStatus
from runner.statedir import StateDir
from runner.store import Store
from runner.workers.execute import (
    Launch,
    check_actions,
    child_submitter_for,
    credentials_and_reporter,
    interrupt_on_sigterm,
)


def resume(
    run_id: str,
    launch: Launch,
    *,
    from_step: str | None = None,
    skip: list[str] | None = None,
    force: bool = False,
    adopt: RunStatus | None = None,
) -> int:
    """Continue the stored run `run_id`: take its lease (RunBusy, exit 2, when a live process
    holds it), remove containers a dead runner left, undo the changes of the steps that run again,
    run them. The pipeline is the one stored with the run, not the file as it is now.

    With `adopt` (a worker continuing a run another worker executed: RUNNING for the run of a
    worker that died, WAITING for a run whose wait point was decided) the run must be in that
    status once the lease is taken (else RunBusy), and `launch.workspace`, when given and not the
    run's workspace, becomes its workspace, rebuilt from the run's manifest, the object store and
    its kept git objects (see the module docstring).
    Returns the run's exit code (0, 1, 3 or 130); raises UsageError (2) for a run that succeeded
    or a `--skip` naming no step, and as `execute` does."""
    from runner.backend import open_backend as make_backend
    from runner.changes.resume import plan_restart, prepare
    from runner.engine import Engine, ResumePoint, RunOptions
    from runner.pipeline.secrets import read_child_channel, resolve_secrets
    from runner.pipeline.spec import parse_pipeline
    from runner.reporters import Reporter
    from runner.reporters.console import console_reporter
    from runner.reporters.jsonl import JsonLinesReporter

    state_dir, skip = launch.state_dir, list(skip or [])
    store = Store(state_dir)
    try:
        record = store.run(run_id)
        if record.status == RunStatus.SUCCEEDED:
            raise UsageError(f"run {record.id} already succeeded; nothing to resume")
        if not record.workspace and adopt is None:
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
        secrets = resolve_secrets(pipeline, os.environ, launch.secret_files, passed)
        settings = record.resume_state.forge
        forge = open_forge(settings, state_dir=state_dir, token_file=launch.token_file) if settings else None
        backend = make_backend("docker", host_root=launch.host_root)
        console = JsonLinesReporter(launch.out) if launch.json_lines else console_reporter(launch.out)
        reporter: Reporter = console
        previous = interrupt_on_sigterm()
        try:
            state = record.resume_state.state
            inputs = dict(record.inputs)
            image = record.resume_state.default_image or os.environ.get("PIPE_SANDBOX_IMAGE")
            credentials, reporter = credentials_and_reporter(
                console, pipeline, inputs, store, state, forge, launch, secrets
            )
            options = RunOptions(
                state_dir=state_dir,
                secrets=secrets,
                workspace=Path(record.workspace) if record.workspace else None,
                token_file=launch.token_file,
                ca_bundle=launch.ca_bundle,
                trigger=launch.trigger,
                forge=forge,
                publish=launch.publish,
                credentials=credentials,
                default_image=image,
                worker=launch.worker,
                submit_child=child_submitter_for(forge, replace(launch, default_image=image)),
            )
            engine = Engine(pipeline, store, backend, reporter, options, state)
            engine.claim(record.id)
            try:
                if adopt is not None:
                    target = launch.workspace or StateDir(state_dir).run(record.id).workspace
                    adopted = _adopt(store, record.id, target, adopt)
                    if adopted is None:
                        raise RunBusy(f"run {record.id} is {store.run(record.id).status} now: it is not continued here")
                    console.event(EventKind.RUN_ADOPTED.value, {"run": record.id, **adopted})
                    store.add_event(record.id, EventKind.RUN_ADOPTED.value, None, adopted)
                mask = engine.masker.mask_value
                read = registry.forge_reader(pipeline, record.id, record.inputs, forge)
                restart, inner, changed = plan_restart(pipeline, store, record.id, from_step, read, mask)
                objects = ObjectStore(StateDir(state_dir).objects)
                done = prepare(pipeline, store, backend, objects, record.id, restart, inner, force=force)
                if adopt is not None:  # the repository's objects, which the manifest does not hold
                    restore_git_objects(store, objects, record.id)
            except BaseException:
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
                    # a rebuilt workspace put every path back: the count says it, not a list of them all
                    "paths": list(done.paths) if adopt is None else [],
                },
            )
            try:
                result = engine.resume(ResumePoint(record.id, restart, frozenset(skip), inner))
            except LeaseLost as lost:  # another process took the run over: it is theirs now
                raise RunBusy(str(lost)) from None
        finally:
            reporter.close()
            backend.close()
            if launch.worker is not None:  # a worker's pool process runs more runs: its own handler back
                import signal

                signal.signal(signal.SIGTERM, previous)
    finally:
        store.close()
    return int(result.exit_code)


def _adopt(store: Store, run_id: str, workspace: Path, expected: RunStatus) -> dict[str, str] | None:
    """With the run's lease held: None when the run is no longer in `expected` status (another
    process continued or ended it meanwhile), else move it to `workspace` when that is not its
    own (created empty: `prepare` fills it from the manifest) and return {"worker": the worker
    before, "workspace": the one now, "previous": the one before} for the `run_adopted` event.
    Raises UsageError when a new `workspace` is not empty."""
    record = store.run(run_id)
    if record.status != expected:
        return None
    previous = record.workspace or ""
    if str(workspace) != previous:
        if workspace.exists() and any(workspace.iterdir()):
            raise UsageError(f"cannot take over run {run_id}: its new workspace {workspace} is not empty")
        prepare_workspace(workspace)
        store.update_run(run_id, workspace=str(workspace))
    return {"worker": record.worker or "", "workspace": str(workspace), "previous": previous}


def restore_git_objects(store: Store, objects: ObjectStore, run_id: str) -> int:
    """Put the git objects the run kept (runner/changes/gitobjects.py) back into its workspace's
    repository; returns how many. Raises RollbackConflict when the object store lacks some."""
    from runner.changes.external import RollbackConflict
    from runner.changes.gitobjects import read_listing, restore
    from runner.changes.snapshot import Workspace

    record = store.run(run_id)
    try:
        listing = read_listing(objects, record.resume_state.git_objects)
        return restore(Workspace(Path(record.workspace)), objects, listing)
    except (OSError, ValueError) as problem:
        raise RollbackConflict(f"cannot put back the git objects of run {run_id}: {problem}") from None
