"""What the threads pages show (runner/threads/): plain dicts for the templates and the JSON API,
times formatted for people."""

from __future__ import annotations

import time
from typing import Any

from runner.names import ThreadState
from runner.store import Store, ThreadRecord
from runner.threads import find_thread
from runner.threads.details import thread_details


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def thread_summary(store: Store, thread: ThreadRecord) -> dict[str, Any]:
    """One row of the threads list: id, issue (OWNER/NAME#N), state, branch, pull request, how
    many specs, when it last changed."""
    return {
        "id": thread.id,
        "repo": thread.repo,
        "issue": thread.issue,
        "reference": f"{thread.repo}#{thread.issue}",
        "state": thread.state,
        "branch": thread.branch or "",
        "pull_request": thread.pull_request,
        "specs": len(store.specs(thread.id)),
        "updated": _when(thread.updated_at),
    }


def threads_page(store: Store, state: str) -> dict[str, Any]:
    """The threads list, most recently changed first, only those in `state` when it is one of
    ThreadState's values (anything else: all): {"threads": [...], "state": str, "states": [...]}."""
    wanted = state if state in {s.value for s in ThreadState} else ""
    threads = store.threads(state=wanted or None)
    return {
        "threads": [thread_summary(store, thread) for thread in threads],
        "state": wanted,
        "states": [s.value for s in ThreadState],
    }


def thread_page(store: Store, reference: str) -> dict[str, Any]:
    """One thread (`reference`: an id or a unique prefix) with its specs, runs and transitions as
    runner.threads.details gives them, plus times formatted for people under `*_when` keys.
    Raises UsageError when no thread matches."""
    thread = find_thread(store, reference)
    details = thread_details(store, thread)
    details["summary"] = thread_summary(store, thread)
    for spec in details["specs"]:
        spec["created_when"] = _when(spec["created_at"])
    for move in details["transitions"]:
        move["at_when"] = _when(move["at"])
    return details
