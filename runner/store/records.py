"""The store's records: what its reads return, decoded from rows (JSON columns parsed, statuses
as the enums of runner/names.py). Times are epoch seconds (float). Nothing here knows SQL: a
record is built from any mapping of column name to value, so a second backend can reuse them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, TypeVar

from runner.names import AttemptStatus, Decision, RunStatus, SpecKind, ThreadState


class Row(Protocol):
    """A result row, its columns readable by name (sqlite3.Row; an SQLAlchemy row's `_mapping`)."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass
class RunState:
    """What git and forge actions of one run know about each other, kept in the store (as part of
    its ResumeState). Actions update it in place during the run."""

    branch: str | None = None
    base: str | None = None
    remote_sha: str | None = None
    pull_request: int | None = None
    pull_request_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ResumeState:
    """What a resume must use again (column `runs.resume_state`): the run state, the forge as
    `Forge.describe()` gave it (None: the run had none) and the default sandbox image; and for a
    run `pipe submit` created `pending`, whether the worker that executes it publishes; for a run
    a worker executes, the object listing its workspace repository's git objects
    (runner/changes/gitobjects.py), None before any."""

    state: RunState = field(default_factory=RunState)
    forge: dict[str, Any] | None = None
    default_image: str | None = None
    publish: bool = True
    git_objects: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape stored: {"state": {...}, "forge": {...} | null, "default_image": str | null,
        "publish": bool, "git_objects": str | null}."""
        return {
            "state": self.state.as_dict(),
            "forge": self.forge,
            "default_image": self.default_image,
            "publish": self.publish,
            "git_objects": self.git_objects,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResumeState:
        """Decode the stored shape; missing keys (a run that never saved its state) take defaults."""
        return cls(
            RunState(**(data.get("state") or {})),
            data.get("forge"),
            data.get("default_image"),
            data.get("publish", True),
            data.get("git_objects"),
        )


@dataclass(frozen=True)
class RunRecord:
    """A row of `runs`, decoded, with its pipeline's name and path."""

    id: str
    pipeline_name: str
    pipeline_path: str
    status: RunStatus
    current_step: str | None
    inputs: dict[str, Any]
    resume_state: ResumeState
    error: str | None
    workspace: str
    trigger: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    parent_id: str | None = None
    child_key: str | None = None
    worker: str | None = None  # the Celery worker that executed it (runner/workers/), None in-process
    queue: str | None = None  # the broker queue it was submitted to (runner/workers/), None: never submitted


@dataclass(frozen=True)
class StepRecord:
    """A step's result in a run (one per repeat iteration). `outcome` and `conclusion` are
    runner.names.Outcome values; the marks bound the ids of the changes its attempts recorded."""

    step_id: str
    iteration: int
    position: int
    outcome: str
    conclusion: str
    attempts: int
    started_at: float | None
    finished_at: float | None
    outputs: dict[str, str]
    error: str | None
    start_mark: int = 0
    end_mark: int = 0


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of a step."""

    id: int
    step_id: str
    iteration: int
    number: int
    status: AttemptStatus
    exit_code: int | None
    started_at: float
    finished_at: float | None
    log_path: str | None
    outputs: dict[str, str]
    error: str | None
    runtime: str | None = None  # the container runtime its sandbox ran on (None: no sandbox, or before it was recorded)


@dataclass(frozen=True)
class EventRecord:
    """One recorded event of a run; `kind` is usually a runner.names.EventKind (reporters' own kinds
    are kept as given), `data` its payload."""

    id: int
    at: float
    kind: str
    step_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class ChangeRecord:
    """One recorded change (see runner/changes/recording.py for the types and `data`)."""

    id: int
    step_id: str
    iteration: int
    attempt: int
    type: str
    target: str
    data: dict[str, Any]
    recorded_at: float
    undone_at: float | None


@dataclass(frozen=True)
class ApprovalRecord:
    """A wait point's approval: pending while `decision` is None."""

    run_id: str
    step_id: str
    iteration: int
    requested_at: float
    after_comment: int
    decision: Decision | None
    comment: str | None
    decided_by: str | None
    decided_at: float | None


@dataclass(frozen=True)
class LeaseRecord:
    """Who owns a run: `owner` (`host:pid:token`) until `until`, on `host` as process `pid`,
    renewed last at `heartbeat_at`; all None when nobody ever held it (`owner` and `until` are
    None once released)."""

    owner: str | None
    until: float | None
    host: str | None
    pid: int | None
    heartbeat_at: float | None = None  # epoch seconds of the last renewal


@dataclass(frozen=True)
class ThreadRecord:
    """A thread: the one conversation about issue `issue` of `repo` (OWNER/NAME), with the branch
    and pull request its runs made (None until they exist). `id` is `t-<12 hex>`."""

    id: str
    repo: str
    issue: int
    state: ThreadState
    branch: str | None
    pull_request: int | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class SpecRecord:
    """Version `version` (from 1) of a thread's spec: what one run was asked to apply. An `update`
    targets the pull request's branch (`target_branch`); `instructions` is what the agent was given
    (None until the run's end renders it)."""

    thread_id: str
    version: int
    kind: SpecKind
    target_branch: str | None
    instructions: str | None
    run_id: str | None
    created_at: float


@dataclass(frozen=True)
class TransitionRecord:
    """One change of a thread's state (`from_state` None: the thread was created), with why and the
    run that made it (None: not a run, e.g. the pull request was merged)."""

    id: int
    thread_id: str
    at: float
    from_state: ThreadState | None
    to_state: ThreadState
    reason: str
    run_id: str | None


@dataclass(frozen=True)
class DeliveryRecord:
    """A webhook delivery `pipe serve` received (`id` is GitHub's X-GitHub-Delivery), and the run
    it started (None: it started none, or not yet); `body_sha256` the hex SHA-256 of its raw body
    (None for deliveries noted before migration 9)."""

    id: str
    event: str
    action: str | None
    received_at: float
    run_id: str | None
    body_sha256: str | None = None


R = TypeVar("R")

_JSON = frozenset({"inputs", "outputs", "data"})


def _resume_state(value: str | None) -> ResumeState:
    return ResumeState.from_dict(json.loads(value or "{}"))


# (record, field) -> how its column is decoded; a NULL column stays None unless listed in _NULLABLE_DECODED
_DECODERS: dict[tuple[type, str], Callable[[Any], Any]] = {
    (RunRecord, "status"): RunStatus,
    (AttemptRecord, "status"): AttemptStatus,
    (ApprovalRecord, "decision"): Decision,
    (RunRecord, "resume_state"): _resume_state,
    (ThreadRecord, "state"): ThreadState,
    (SpecRecord, "kind"): SpecKind,
    (TransitionRecord, "from_state"): ThreadState,
    (TransitionRecord, "to_state"): ThreadState,
}
_NULLABLE_DECODED = frozenset({"resume_state"})


def decode(kind: type[R], row: Row) -> R:
    """Build record `kind` from a row whose columns are named like its fields: JSON columns parsed
    (NULL as {}), statuses as enums (NULL stays None). Raises ValueError for a status no enum has."""
    values: dict[str, Any] = {}
    for item in fields(kind):  # type: ignore[arg-type]
        value = row[item.name]
        decoder = _DECODERS.get((kind, item.name))
        if decoder is not None:
            value = decoder(value) if value is not None or item.name in _NULLABLE_DECODED else None
        elif item.name in _JSON:
            value = json.loads(value or "{}")
        values[item.name] = value
    return kind(**values)
