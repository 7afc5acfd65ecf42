"""Threads: one conversation per repository issue, kept in step with an evolving pull request.

An `initial` spec opens the branch and a draft pull request; each round of review feedback sends
the thread back to `planning` and adds an `update` spec (version N+1, targeting the pull request's
branch) that a run applies on the same branch, until the pull request is merged and the thread
`archived`. The states and which may follow which: machine.py; finding and moving threads: api.py
(every move one store transaction with its recorded transition); the reporter that moves a run's
thread as the run goes: reporter.py (built by the run command for pipelines with `thread:`).

A layer beside runner.engine (docs/architecture.md): it reads and writes the store and renders
pipeline templates, and neither imports the other.
"""

from __future__ import annotations

from runner.store import TransitionRefused
from runner.threads.api import (
    archive,
    find_thread,
    is_thread_reference,
    thread_for_issue,
    thread_for_pull_request,
    transition,
)
from runner.threads.machine import TRANSITIONS, allowed

__all__ = [
    "TRANSITIONS",
    "TransitionRefused",
    "allowed",
    "archive",
    "find_thread",
    "is_thread_reference",
    "thread_for_issue",
    "thread_for_pull_request",
    "transition",
]
