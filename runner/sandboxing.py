"""The sandboxing policy: which image, user, limits, network, mounts and early environment a step's
sandbox gets, and keeping the next steps' sandboxes started ahead of time.

Defaults (DESIGN.md principle 4): image `pipe-sandbox`, network `bridge`, memory 2g, 2 cpus, 512
pids, timeout 30m, writable root. The sandbox user is the workspace owner, or uid/gid 1000 (the
image's `pipe` user) when the runner is root.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from runner.errors import UsageError
from runner.model import SandboxSettings, Step
from sandbox.base import Backend, Prepared, SandboxSpec
from sandbox.images import DEFAULT_IMAGE

DEFAULTS = SandboxSettings(
    image=DEFAULT_IMAGE,
    network="bridge",
    memory=2 * 1024**3,
    cpus=2.0,
    pids=512,
    timeout=30 * 60.0,
    read_only=False,
    workdir=".",
)
UNPRIVILEGED = 1000


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
    """Prepares sandboxes for steps, `ahead` of them at most, on a small thread pool.

    `plan_for(step)` gives a step's SandboxPlan; images are resolved with `image_for(image)`.
    `take(step)` returns a started sandbox for the step (the warm one if present) and warms the
    next ones given to `warm()`. `close()` discards whatever was not used. `ca_bundle` is the
    checked copy of the person's CA bundle (runner/cabundle.py) given to every sandbox; `max_log`
    the bytes of output an attempt passes on.
    """

    def __init__(
        self,
        backend: Backend,
        workspace: Path,
        control_root: Path,
        plan_for: Callable[[Step], SandboxPlan],
        image_for: Callable[[str], str],
        ahead: int = 2,
        ca_bundle: Path | None = None,
        max_log: int = 64 * 1024**2,
    ) -> None:
        self._backend = backend
        self._workspace = workspace
        self._control_root = control_root
        self._plan_for = plan_for
        self._image_for = image_for
        self._ahead = ahead
        self._ca_bundle = ca_bundle
        self._max_log = max_log
        self._uid, self._gid = sandbox_user(workspace)
        self._pool = ThreadPoolExecutor(max_workers=max(ahead, 1), thread_name_prefix="pipe-prepare")
        self._warm: dict[str, Future[Prepared]] = {}
        self._counter = itertools.count(1)

    def spec(self, step: Step, credentials: bool = True) -> SandboxSpec:
        """The sandbox `step` gets; without `credentials`, its credential variables are left out."""
        plan = self._plan_for(step)
        settings = plan.settings
        env = plan.env if credentials else {k: v for k, v in plan.env.items() if k not in plan.credentials}
        assert settings.image and settings.network and settings.memory and settings.cpus and settings.pids
        return SandboxSpec(
            image=self._image_for(settings.image),
            workspace=self._workspace,
            control_dir=self._control_root / f"{next(self._counter):04d}-{step.id}",  # a prefix
            uid=self._uid,
            gid=self._gid,
            workdir=container_workdir(settings.workdir),
            env=env,
            network=settings.network,
            memory=settings.memory,
            cpus=settings.cpus,
            pids=settings.pids,
            read_only=bool(settings.read_only),
            ca_bundle=self._ca_bundle,
            labels=plan.labels,
            max_log=self._max_log,
        )

    def take(self, step: Step) -> Prepared:
        """A started sandbox for `step` (raises PipeError when it cannot be made)."""
        future = self._warm.pop(step.id, None)
        if future is not None:
            return future.result()
        return self._backend.prepare(self.spec(step))

    def fresh(self, step: Step, mounts: tuple[tuple[str, str], ...] = (), credentials: bool = True) -> Prepared:
        """A new sandbox for `step` (never a warm one) with host paths `mounts` (host, container)
        added; without `credentials`, none of the step's credential variables reach it."""
        return self._backend.prepare(replace(self.spec(step, credentials), mounts=mounts))

    def warm(self, upcoming: list[Step]) -> None:
        """Start sandboxes for the first `ahead` of `upcoming` that have none yet."""
        for step in upcoming[: self._ahead]:
            if step.id not in self._warm and step.run is not None:
                spec = self.spec(step)
                self._warm[step.id] = self._pool.submit(self._backend.prepare, spec)

    def close(self) -> None:
        """Discard the unused warm sandboxes and wait for the pool (blocking)."""
        for future in self._warm.values():
            with contextlib.suppress(Exception):  # a sandbox that failed to start needs no removal
                future.result().discard(wait=True)
        self._warm.clear()
        self._pool.shutdown(wait=True)
