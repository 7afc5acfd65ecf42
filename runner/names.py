"""Statuses and event kinds: the one home of every name pipe stores or reports.

The store keeps these as text (its `CHECK` lists are tested against the enums) and decodes them
into the enums at its boundary; the CLI builds its `--status` choices from them. Layering and the
life of a run are described in docs/architecture.md.
"""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    """A run's status in the store: `pending` until its runner takes it, `running`, `waiting` at a
    wait point (exit 3), then one of the finished statuses."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})


class AttemptStatus(enum.StrEnum):
    """How one attempt of a step ended (`running` while it runs). The ending values are those of
    sandbox.base.ExecStatus, plus `waiting` (a wait point) and `interrupted` for an attempt whose
    runner died (found on resume)."""

    RUNNING = "running"
    WAITING = "waiting"  # a wait point's attempt: the run stopped there for a decision
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # non-zero exit, or the action reported an error
    TIMEOUT = "timeout"
    OOM = "oom"
    CANCELLED = "cancelled"
    ERROR = "error"  # the sandbox itself failed
    INTERRUPTED = "interrupted"


class ChildStatus(enum.StrEnum):
    """A child run as its parent's `pipeline` step sees it: a run status, or `skipped` when it was
    never started (a dependency failed, or fail-fast)."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def done(self) -> bool:
        """Whether the parent stops watching it (a waiting child is done for this round)."""
        return self not in (ChildStatus.PENDING, ChildStatus.RUNNING)


class Outcome(enum.StrEnum):
    """A step's `outcome` (before continue-on-error) or `conclusion` (after), as GitHub Actions
    (2024 docs, `steps.<id>.outcome`) names them."""

    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


class Decision(enum.StrEnum):
    """What a person decided at a wait point."""

    APPROVED = "approved"
    REJECTED = "rejected"


class EventKind(enum.StrEnum):
    """The kinds of event a run records (table `events`) and sends to its reporters.

    Every event's payload has `run` (the run id) and, for step events, `step`; the other keys are
    listed per kind. Reporters must ignore kinds they do not know.
    """

    RUN_STARTED = "run_started"  # pipeline, path, steps (count), workspace
    RUN_RESUMED = "run_resumed"  # as run_started
    RUN_ADOPTED = "run_adopted"  # worker (the one before), workspace, previous: another worker continues the run
    RUN_FINISHED = "run_finished"  # status, error, steps [{step, outcome, conclusion, ...}], agent totals
    STEP_RECALLED = "step_recalled"  # reporters only, on resume: a step that ran before (its summary)
    STEP_STARTED = "step_started"  # name, iteration
    STEP_SKIPPED = "step_skipped"  # reason
    STEP_FINISHED = "step_finished"  # outcome, conclusion, attempts, duration, error, outputs (masked)
    STEP_ERROR = "step_error"  # error: a problem beside the step's own result (egress report unreadable)
    ATTEMPT_STARTED = "attempt_started"  # attempt, of
    ATTEMPT_FINISHED = "attempt_finished"  # attempt, status, exit_code, duration (s), changes, error
    RETRYING = "retrying"  # attempt, of, delay (s)
    EXTERNAL_CHANGE = "external_change"  # type, target: an effect outside the workspace (push, PR, ...)
    IMAGE = "image"  # message: a line of an image build or check
    EGRESS = "egress"  # iteration, attempt, requests [{host, port, allowed, bytes, ...}]
    EGRESS_AUDIT = "egress_audit"  # allow: the minimal allow-list an audit-mode run needed
    ROLLBACK_STARTED = "rollback_started"  # mode, summary, changes (count)
    ROLLBACK_FINISHED = "rollback_finished"  # mode, undone (count)
    ROLLBACK_FAILED = "rollback_failed"  # mode, error
    INPUTS_CHANGED = "inputs_changed"  # steps: a resume given other inputs re-runs these steps
    CONCURRENCY_WAIT = "concurrency_wait"  # reporters only, before the run exists: group, holder
    RESUME_PREPARED = "resume_prepared"  # reporters only: restart_at, containers_removed, paths_restored, ...
    THREAD_TRANSITION = "thread_transition"  # thread, from, to, reason: the run moved its thread (runner/threads/)


class ThreadState(enum.StrEnum):
    """Where a thread (one conversation per repository issue, runner/threads/) stands: `planning`
    (the next spec is being decided), `working` (a run applies a spec), `waiting_for_feedback`
    (its pull request waits for review), `archived` (the pull request was merged or closed)."""

    PLANNING = "planning"
    WORKING = "working"
    WAITING_FOR_FEEDBACK = "waiting_for_feedback"
    ARCHIVED = "archived"


class SpecKind(enum.StrEnum):
    """A thread's spec: `initial` opens the branch and pull request, `update` (version N+1) applies
    review feedback on the pull request's branch."""

    INITIAL = "initial"
    UPDATE = "update"
