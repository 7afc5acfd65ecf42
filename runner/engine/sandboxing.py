"""The sandboxing policy: which image, user, limits, network, mounts and early environment a step's
sandbox gets, and keeping the next steps' sandboxes started ahead of time.

Defaults (docs/architecture.md, Principles 4): image `pipe-sandbox`, network `bridge` (egress
`open`), memory 2g, 2 cpus, 512 pids, timeout 30m, writable root, runtime `auto` (crun when the
engine offers it). The sandbox user is the workspace owner, or uid/gid 1000 (the image's `pipe`
user) when the runner is root.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from runner.egress.run import RunEgress
from runner.errors import UsageError
from runner.pipeline.egress import OPEN
from runner.pipeline.model import SandboxSettings, Step
from sandbox.base import Backend, Prepared, SandboxSpec
from sandbox.images import DEFAULT_IMAGE

DEFAULTS = SandboxSettings(
    image=DEFAULT_IMAGE,
    network="bridge",
    egress=OPEN,
    memory=2 * 1024**3,
    cpus=2.0,
    pids=512,
    timeout=30 * 60.0,
    read_only=False,
    workdir=".",
    runtime="auto",
)
UNPRIVILEGED = 1000
INITIAL_AHEAD = 4  # sandboxes started ahead before a start and a step were measured
MAX_AHEAD = 8  # at most, whatever the measures say (each waiting sandbox holds a few MiB)
SMOOTHING = 0.5  # weight of the newest measure in the running average


def prestart_depth(start: float | None, step: float | None) -> int:
    """How many sandboxes to have started ahead when one takes `start` seconds to start and a step
    `step` seconds to run (None: not measured yet, INITIAL_AHEAD): enough that a sandbox started
    as a step begins is ready when its own step comes, plus one; between 1 and MAX_AHEAD."""
    if start is None or step is None:
        return INITIAL_AHEAD
    return max(1, min(MAX_AHEAD, math.ceil(start / max(step, 0.01)) + 1))


def _smooth(average: float | None, value: float) -> float:
    return value if average is None else SMOOTHING * value + (1 - SMOOTHING) * average


def sandbox_user(workspace: Path) -> tuple[int, int]:
    """(uid, gid) for sandboxes on `workspace`: its owner, or 1000:1000 when that is root."""
    info = os.stat(workspace)
    if info.st_uid == 0:
        return UNPRIVILEGED, UNPRIVILEGED
    return info.st_uid, info.st_gid


def hand_over(root: Path, uid: int, gid: int) -> None:
    """Make `root` and everything below it owned by uid:gid, without following symlinks. Used when
    pipe runs as root, so the unprivileged sandbox user can write where steps must write."""
    if os.geteuid() != 0 or os.lstat(root).st_uid == uid:
        return
    for directory, names, files in os.walk(root):
        os.lchown(directory, uid, gid)
        for name in names + files:
            os.lchown(os.path.join(directory, name), uid, gid)


def check_workspace(workspace: Path, private: Path, what: str = "the state directory") -> None:
    """Refuse a workspace that holds `private`, a directory steps must not reach: the state
    directory (pipe's store, records and the control channels of the run's other sandboxes) or a
    local forge. Raises UsageError."""
    inner, outer = private.resolve(), workspace.resolve()
    if inner == outer or outer in inner.parents:
        where = "--state-dir (or PIPE_HOME)" if what == "the state directory" else "--forge-dir"
        raise UsageError(
            f"{what} {private} is inside the workspace {workspace}: steps would reach it; "
            f"give {where} outside the workspace"
        )


def prepare_workspace(workspace: Path) -> None:
    """Create `workspace`; when the runner is root and the workspace is root's, hand it to the
    unprivileged sandbox user (steps never run as root)."""
    workspace.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0 and os.stat(workspace).st_uid == 0:
        hand_over(workspace, UNPRIVILEGED, UNPRIVILEGED)


def container_workdir(workdir: str | None) -> str:
    """`/workspace/<workdir>`; refuses paths that leave the workspace."""
    relative = PurePosixPath(workdir or ".")
    if relative.is_absolute() or ".." in relative.parts:
        raise UsageError(f"sandbox workdir {workdir!r} must be a path inside the workspace")
    return str(PurePosixPath("/workspace") / relative)


@dataclass(frozen=True)
class SandboxPlan:
    """What a step's sandbox needs: the resolved settings, the early env, the labels, and which
    names in `env` are credentials (withheld from a sandbox asked for without them)."""

    settings: SandboxSettings
    env: Mapping[str, str]
    labels: Mapping[str, str]
    credentials: frozenset[str] = frozenset()


class Sandboxes:
    """Prepares sandboxes for steps ahead of them, on a small thread pool.

    `plan_for(step)` gives a step's SandboxPlan; images are resolved with `image_for(image)`.
    `take(step)` returns a started sandbox for the step (the warm one if present); `warm(upcoming)`
    starts sandboxes for the next `run:` steps (action steps get fresh ones, and steps that run only
    after a failure get none ahead). How many: `ahead` when given (PIPE_PRESTART), else as many as
    cover the time a sandbox took to start over the time a step took, as measured on this run's
    last ones (see `depth`), between 1 and MAX_AHEAD. `close()` discards whatever was not used.
    `ca_bundle` is the checked copy of the person's CA bundle (runner/engine/cabundle.py) given to every
    sandbox; `max_log` the bytes of output an attempt passes on. `egress` is the run's egress
    (runner/egress/run.py): a step with an allow-list gets its network, resolver and proxy variables.
    """

    def __init__(
        self,
        backend: Backend,
        workspace: Path,
        control_root: Path,
        plan_for: Callable[[Step], SandboxPlan],
        image_for: Callable[[str], str],
        ahead: int | None = None,
        ca_bundle: Path | None = None,
        max_log: int = 64 * 1024**2,
        egress: RunEgress | None = None,
    ) -> None:
        self._backend = backend
        self._egress = egress
        self._workspace = workspace
        self._control_root = control_root
        self._plan_for = plan_for
        self._image_for = image_for
        self._ahead = ahead
        self._ca_bundle = ca_bundle
        self._max_log = max_log
        self._uid, self._gid = sandbox_user(workspace)
        workers = max(ahead, 1) if ahead is not None else MAX_AHEAD
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pipe-prepare")
        self._warm: dict[str, Future[Prepared]] = {}
        self._counter = itertools.count(1)
        self._start_time: float | None = None  # seconds a sandbox took to start, smoothed
        self._step_time: float | None = None  # seconds between two steps taking their sandbox, smoothed
        self._last_given: float | None = None

    def depth(self) -> int:
        """How many sandboxes to keep started ahead of the running step: `ahead` when fixed, else
        enough that one started when a step begins is ready `depth` steps later (start time over
        step time, plus one), INITIAL_AHEAD before anything was measured; at most MAX_AHEAD."""
        return self._ahead if self._ahead is not None else prestart_depth(self._start_time, self._step_time)

    def _prepare(self, spec: SandboxSpec) -> Prepared:
        started = time.monotonic()
        prepared = self._backend.prepare(spec)
        self._start_time = _smooth(self._start_time, time.monotonic() - started)
        return prepared

    def spec(self, step: Step, credentials: bool = True) -> SandboxSpec:
        """The sandbox `step` gets; without `credentials`, its credential variables are left out."""
        plan = self._plan_for(step)
        settings = plan.settings
        env = plan.env if credentials else {k: v for k, v in plan.env.items() if k not in plan.credentials}
        assert settings.image and settings.network and settings.memory and settings.cpus and settings.pids
        network, dns = settings.network, tuple[str, ...]()
        if settings.egress is not None and settings.egress.kind == "allow":
            if self._egress is None:
                raise UsageError("sandbox.egress: this run has no egress proxy for an allow-list")
            attachment, variables = self._egress.attach(settings.egress)
            network, dns, env = attachment.network, (attachment.proxy,), {**env, **variables}
        return SandboxSpec(
            image=self._image_for(settings.image),
            workspace=self._workspace,
            control_dir=self._control_root / f"{next(self._counter):04d}-{step.id}",  # a prefix
            uid=self._uid,
            gid=self._gid,
            workdir=container_workdir(settings.workdir),
            env=env,
            network=network,
            dns=dns,
            memory=settings.memory,
            cpus=settings.cpus,
            pids=settings.pids,
            read_only=bool(settings.read_only),
            ca_bundle=self._ca_bundle,
            labels=plan.labels,
            max_log=self._max_log,
            runtime=settings.runtime or "auto",
        )

    def take(self, step: Step) -> Prepared:
        """A started sandbox for `step` (raises PipeError when it cannot be made)."""
        if self._last_given is not None:  # the last step's own time, without waiting for its sandbox
            self._step_time = _smooth(self._step_time, time.monotonic() - self._last_given)
        future = self._warm.pop(step.id, None)
        prepared = future.result() if future is not None else self._prepare(self.spec(step))
        self._last_given = time.monotonic()
        return prepared

    def fresh(
        self,
        step: Step,
        mounts: tuple[tuple[str, str], ...] = (),
        credentials: bool = True,
        image: str | None = None,
    ) -> Prepared:
        """A new sandbox for `step` (never a warm one) with host paths `mounts` (host, container)
        added; without `credentials`, none of the step's credential variables reach it; `image`,
        when given, replaces the step's image (an action choosing the project's own image)."""
        spec = replace(self.spec(step, credentials), mounts=mounts)
        if image:
            spec = replace(spec, image=self._image_for(image))
        return self._backend.prepare(spec)

    def warm(self, upcoming: list[Step]) -> None:
        """Start sandboxes for the next `depth()` steps of `upcoming` that will take one: `run:`
        steps, not those that run only after a failure (`if:` naming failure())."""
        wanted = [step for step in upcoming if step.run is not None and "failure()" not in str(step.condition or "")]
        for step in wanted[: self.depth()]:
            if step.id not in self._warm:
                spec = self.spec(step)
                self._warm[step.id] = self._pool.submit(self._prepare, spec)

    def close(self) -> None:
        """Discard the unused warm sandboxes and wait for the pool (blocking)."""
        for future in self._warm.values():
            with contextlib.suppress(Exception):  # a sandbox that failed to start needs no removal
                future.result().discard(wait=True)
        self._warm.clear()
        self._pool.shutdown(wait=True)
