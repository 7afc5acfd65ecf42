"""Reading stored records in tests: values a finished run must have, and children by key."""

from __future__ import annotations

from typing import TypeVar

from runner.store import RunRecord, Store

T = TypeVar("T")


def present(value: T | None, what: str = "value") -> T:
    """`value`, which the test expects to be recorded by now (a finish time, a log path, a sha).

    Raises AssertionError naming `what` when it is None, so a missing value fails the test with a
    message instead of a TypeError further on."""
    assert value is not None, f"{what} is not recorded"
    return value


def children_by_key(store: Store, parent_id: str) -> dict[str, RunRecord]:
    """The child runs of `parent_id` by their child key (an issue number or task id, as text).

    Raises AssertionError when a child run has no key (every child of a parent has one)."""
    return {present(run.child_key, f"child key of {run.id}"): run for run in store.children(parent_id)}
