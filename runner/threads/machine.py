"""The life of a thread as data: which state may follow which.

    planning -> working                 a run starts applying a spec
    working -> waiting_for_feedback     the run ended with a pull request (or succeeded)
    working -> planning                 the run failed or was cancelled without a pull request
    waiting_for_feedback -> planning    feedback came: the next spec is being decided
    any -> archived                     the pull request was merged or closed

Moving to the state a thread is already in is no transition (a no-op); nothing leaves `archived`.
"""

from __future__ import annotations

from collections.abc import Mapping

from runner.names import ThreadState

TRANSITIONS: Mapping[ThreadState, frozenset[ThreadState]] = {
    ThreadState.PLANNING: frozenset({ThreadState.WORKING, ThreadState.ARCHIVED}),
    ThreadState.WORKING: frozenset({ThreadState.WAITING_FOR_FEEDBACK, ThreadState.PLANNING, ThreadState.ARCHIVED}),
    ThreadState.WAITING_FOR_FEEDBACK: frozenset({ThreadState.PLANNING, ThreadState.ARCHIVED}),
    ThreadState.ARCHIVED: frozenset(),
}


def allowed(from_state: ThreadState, to_state: ThreadState) -> bool:
    """Whether a thread in `from_state` may move to `to_state` (the same state is not a move:
    False here, and `transition` treats it as a no-op before asking)."""
    return to_state in TRANSITIONS[from_state]


def path_to(from_state: ThreadState, to_state: ThreadState) -> list[ThreadState]:
    """The states to pass through, in order, to reach `to_state` from `from_state` by allowed
    moves (shortest; [] when already there). Raises ValueError when it cannot be reached."""
    if from_state == to_state:
        return []
    frontier: list[list[ThreadState]] = [[from_state]]
    seen = {from_state}
    while frontier:
        path = frontier.pop(0)
        for following in sorted(TRANSITIONS[path[-1]]):
            if following == to_state:
                return [*path[1:], following]
            if following not in seen:
                seen.add(following)
                frontier.append([*path, following])
    raise ValueError(f"a thread cannot go from {from_state} to {to_state}")
