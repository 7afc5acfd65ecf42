"""Finding threads and moving them: what `pipe serve`, the thread reporter and the commands call.

Every move is one store transaction that also writes its `thread_transitions` row (and, made by a
run, a `thread_transition` event of that run): runner/store/threads.py.
"""

from __future__ import annotations

import re

from runner.errors import UsageError
from runner.names import ThreadState
from runner.store import Store, ThreadRecord
from runner.threads.machine import allowed

_ISSUE_REFERENCE = re.compile(r"^(?P<repo>[^#\s]+)#(?P<issue>[0-9]+)$")  # OWNER/NAME#N (a local forge: NAME#N)


def thread_for_issue(store: Store, repo: str, issue: int) -> ThreadRecord:
    """The thread of issue `issue` of `repo` (OWNER/NAME), created in state `planning` if new."""
    return store.ensure_thread(repo, issue)


def thread_for_pull_request(store: Store, repo: str, pull_request: int) -> ThreadRecord | None:
    """The thread whose runs opened pull request `pull_request` of `repo`, or None (pipe did not
    open it, or no run of a thread recorded it)."""
    return store.thread_by_pull_request(repo, pull_request)


def transition(
    store: Store,
    thread_id: str,
    to: ThreadState | str,
    reason: str,
    run_id: str | None = None,
    *,
    branch: str | None = None,
    pull_request: int | None = None,
) -> ThreadRecord:
    """Move thread `thread_id` to state `to` for `reason` (made by run `run_id`, if any), also
    setting its `branch` and `pull_request` when given; the same state again is a no-op (apart
    from those). Raises TransitionRefused (a UsageError) for a move runner/threads/machine.py does
    not allow, UsageError for an unknown thread, ValueError for an unknown state."""
    return store.move_thread(
        thread_id, ThreadState(to), reason, allowed, run_id=run_id, branch=branch, pull_request=pull_request
    )


def archive(store: Store, repo: str, pull_request: int, reason: str) -> ThreadRecord | None:
    """Archive the thread that owns pull request `pull_request` of `repo` (merged or closed);
    None when no thread owns it. Archiving an archived thread changes nothing."""
    thread = thread_for_pull_request(store, repo, pull_request)
    if thread is None:
        return None
    return transition(store, thread.id, ThreadState.ARCHIVED, reason)


def find_thread(store: Store, reference: str) -> ThreadRecord:
    """The thread `reference` names: its id (or a unique prefix of it, `t-...`) or OWNER/NAME#ISSUE.
    Raises UsageError when none matches."""
    found = _ISSUE_REFERENCE.match(reference)
    if found is None:
        return store.thread(reference)
    thread = store.thread_by_issue(found["repo"], int(found["issue"]))
    if thread is None:
        raise UsageError(f"no thread for {reference} in {store.path}")
    return thread


def is_thread_reference(reference: str) -> bool:
    """Whether `reference` names a thread (`t-...` or OWNER/NAME#ISSUE) rather than a run."""
    return reference.startswith("t-") or _ISSUE_REFERENCE.match(reference) is not None
