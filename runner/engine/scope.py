"""The per-run scope: everything fixed once a run starts (or resumes), built in one place and
frozen, so no part of the engine finds a collaborator missing or replaced half-way through a run.

Mutable state stays in its own owners: the run state (`RunState`, changed by git and forge
actions), the recorder's manifest, the watcher, the egress proxy. Step results live in the step
runner (runner/engine/steps.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner.changes.gitobjects import GitObjects
from runner.changes.objects import ObjectStore
from runner.changes.recording import Recorder
from runner.changes.watch import Watcher
from runner.egress.keys import agent_policy, providers_with_keys
from runner.egress.run import RunEgress
from runner.engine.events import Events
from runner.engine.lease import Lease
from runner.engine.options import RunOptions
from runner.engine.sandboxing import DEFAULTS
from runner.masking import Masker
from runner.pipeline.model import Pipeline, SandboxSettings, Step
from runner.statedir import RunDir
from runner.store import ResumeState, RunState, Store
from sandbox.base import Backend


@dataclass(frozen=True)
class RunScope:
    """One run as it executes. `inputs` are the resolved inputs (unmasked); `workspace` the host
    directory steps see as /workspace; `run_dir` the run's directory under the state directory
    (logs, tracebacks, sandbox channels); `pipeline_env` the pipeline's rendered `env:`;
    `credentials` the values of each named credential a step may get (name -> variables);
    `ca_bundle` the checked copy of the person's CA bundle, or None; `git_objects`, for a run a
    worker executes, its workspace repository's git objects kept after each attempt
    (runner/changes/gitobjects.py), else None; `lease` the run's lease this process holds."""

    run_id: str
    pipeline: Pipeline
    options: RunOptions
    store: Store
    backend: Backend
    events: Events
    masker: Masker
    forge: Any
    inputs: Mapping[str, Any]
    workspace: Path
    run_dir: Path
    objects: ObjectStore
    recorder: Recorder
    watcher: Watcher
    egress: RunEgress
    state: RunState
    pipeline_env: Mapping[str, str]
    credentials: Mapping[str, Mapping[str, str]]
    ca_bundle: Path | None
    git_objects: GitObjects | None = None
    lease: Lease | None = None

    def check_lease(self) -> None:
        """Raise LeaseLost when another process took the run over (runner/engine/lease.py)."""
        if self.lease is not None:
            self.lease.check()

    def log_path(self, step_id: str, iteration: int, number: int, suffix: str = "log") -> Path:
        """Where attempt `number` of `step_id` (in repeat `iteration`, 0 outside one) keeps its
        masked output (`suffix` "log") or the traceback of an unexpected error ("traceback")."""
        return RunDir(self.run_dir).attempt_file(step_id, iteration, number, suffix)

    def settings(self, step: Step) -> SandboxSettings:
        """The sandbox settings of `step`: see `sandbox_settings`."""
        return sandbox_settings(self.options, self.pipeline, step)

    def save_state(self) -> None:
        """Store what a resume must use again: the run state, the forge, the default image,
        whether the run publishes and its kept git objects."""
        kept = self.git_objects.digest if self.git_objects is not None else None
        self.store.save_resume_state(self.run_id, resume_state(self.options, self.state, kept))

    def keep_git_objects(self) -> None:
        """For a run a worker executes, keep the git objects the last attempt added (see
        runner/changes/gitobjects.py) and save the run's state when there were any."""
        try:
            if self.git_objects is not None and self.git_objects.keep():
                self.save_state()
        except OSError:  # the object store is full or unwritable: the run goes on, a takeover lacks them
            pass


def resume_state(options: RunOptions, state: RunState, git_objects: str | None = None) -> ResumeState:
    """What a resume of a run started with `options` must use again (see ResumeState): `state`,
    the forge's settings, the default image, whether it publishes, the kept git objects' listing."""
    forge = options.forge.describe() if options.forge is not None else None
    return ResumeState(state, forge, options.default_image, options.publish, git_objects)


def sandbox_settings(options: RunOptions, pipeline: Pipeline, step: Step) -> SandboxSettings:
    """The built-in defaults (with the person's default image and runtime, PIPE_SANDBOX_IMAGE and
    PIPE_SANDBOX_RUNTIME), overlaid by the pipeline's `sandbox:`, then by the step's. An agent
    step in a run holding model keys gets its egress through the key proxy (keys.agent_policy)."""
    defaults = DEFAULTS if not options.default_image else replace(DEFAULTS, image=options.default_image)
    if options.default_runtime:  # what `auto` means for this person
        defaults = replace(defaults, runtime=options.default_runtime)
    settings = defaults.overlay(pipeline.sandbox).overlay(step.sandbox)
    if step.uses == "agent" and settings.egress is not None:
        settings = replace(settings, egress=agent_policy(settings.egress, providers_with_keys(options.secrets)))
    return settings
