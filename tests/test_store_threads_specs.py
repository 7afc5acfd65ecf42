"""Threads, specs, transitions and webhook deliveries in the store (migration 8), moved through
runner.threads, and the thread reporter driven by a run's events (no Docker)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.names import EventKind, RunStatus, SpecKind, ThreadState
from runner.pipeline.model import ThreadBinding
from runner.store import RunState, Store, TransitionRefused
from runner.threads import archive, find_thread, thread_for_issue, thread_for_pull_request, transition
from runner.threads.reporter import ThreadReporter
from tests.support.cli import Cli
from tests.support.stores import check_list

pytestmark = pytest.mark.usefixtures("store_backend")  # each test on SQLite, then PostgreSQL

P, W, F, A = ThreadState.PLANNING, ThreadState.WORKING, ThreadState.WAITING_FOR_FEEDBACK, ThreadState.ARCHIVED


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path)
    yield opened
    opened.close()


def _run(store: Store) -> str:
    return store.create_run(store.add_pipeline("p", "p.yml", "digest", "version: 1"), {})


def _moves(store: Store, thread_id: str) -> list[tuple[str | None, str]]:
    return [(t.from_state, t.to_state) for t in store.thread_transitions(thread_id)]


@pytest.mark.parametrize(("table", "column", "names"), [("threads", "state", ThreadState), ("specs", "kind", SpecKind)])
def test_check_lists_equal_the_enums(store: Store, table: str, column: str, names: type[ThreadState]) -> None:
    assert check_list(store, table, column) == {name.value for name in names}


def test_a_thread_per_issue_created_once_in_planning(store: Store) -> None:
    thread = thread_for_issue(store, "octo/demo", 3)
    assert re.fullmatch(r"t-[0-9a-f]{12}", thread.id)
    assert (thread.state, thread.branch, thread.pull_request) == (P, None, None)
    assert thread_for_issue(store, "octo/demo", 3) == thread
    assert thread_for_issue(store, "octo/demo", 4).id != thread.id
    assert _moves(store, thread.id) == [(None, P)]
    assert find_thread(store, "octo/demo#3") == find_thread(store, thread.id[:6]) == thread


def test_concurrent_creators_get_one_thread(store: Store) -> None:
    found: list[str] = []

    def create() -> None:
        found.append(thread_for_issue(store, "octo/demo", 1).id)

    workers = [threading.Thread(target=create) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(set(found)) == 1 and len(store.threads()) == 1


def test_transitions_follow_the_machine_and_are_recorded_with_the_run(store: Store) -> None:
    run_id = _run(store)
    thread = thread_for_issue(store, "octo/demo", 1)
    moved = transition(store, thread.id, W, "run applies spec 1", run_id)
    assert moved.state is W and moved.updated_at >= thread.updated_at
    assert transition(store, thread.id, W, "again", run_id).state is W  # the same state: a no-op
    moved = transition(store, thread.id, F, "pull request opened", run_id, branch="fix/issue-1", pull_request=7)
    assert (moved.branch, moved.pull_request) == ("fix/issue-1", 7)
    with pytest.raises(TransitionRefused, match="cannot go from waiting_for_feedback to working"):
        transition(store, thread.id, W, "skipping planning")
    assert store.thread(thread.id).state is F  # a refused move changes nothing
    assert _moves(store, thread.id) == [(None, P), (P, W), (W, F)]
    last = store.thread_transitions(thread.id)[-1]
    assert (last.reason, last.run_id) == ("pull request opened", run_id)
    events = [e for e in store.events(run_id) if e.kind == EventKind.THREAD_TRANSITION]
    assert [(e.data["from"], e.data["to"]) for e in events] == [
        ("planning", "working"),
        ("working", "waiting_for_feedback"),
    ]


def test_the_pull_request_finds_its_thread_and_archiving_ends_it(store: Store) -> None:
    thread = thread_for_issue(store, "octo/demo", 1)
    transition(store, thread.id, W, "run")
    transition(store, thread.id, F, "opened", branch="fix/issue-1", pull_request=7)
    assert thread_for_pull_request(store, "octo/demo", 7) == store.thread(thread.id)
    assert thread_for_pull_request(store, "octo/other", 7) is None
    assert archive(store, "octo/demo", 8, "merged") is None
    archived = archive(store, "octo/demo", 7, "pull request #7 merged")
    assert archived is not None and archived.state is A
    assert archive(store, "octo/demo", 7, "closed again") == store.thread(thread.id)  # no second transition
    assert _moves(store, thread.id)[-1] == (F, A) and len(_moves(store, thread.id)) == 4
    with pytest.raises(TransitionRefused):
        transition(store, thread.id, P, "reopened")
    assert [t.id for t in store.threads(state=A)] == [thread.id] and store.threads(state=P) == []


def test_specs_are_numbered_per_thread_and_once_per_run(store: Store) -> None:
    first, second = _run(store), _run(store)
    thread = thread_for_issue(store, "octo/demo", 1)
    spec = store.add_spec(thread.id, SpecKind.INITIAL, None, first)
    assert (spec.version, spec.kind, spec.run_id) == (1, SpecKind.INITIAL, first)
    assert store.add_spec(thread.id, SpecKind.UPDATE, "x", first) == spec  # a resumed run keeps its spec
    update = store.add_spec(thread.id, SpecKind.UPDATE, "fix/issue-1", second)
    assert (update.version, update.kind, update.target_branch) == (2, SpecKind.UPDATE, "fix/issue-1")
    store.set_spec_instructions(thread.id, 2, "fix the typo")
    assert [s.instructions for s in store.specs(thread.id)] == [None, "fix the typo"]
    assert store.spec_of_run(second) == store.specs(thread.id)[1] and store.spec_of_run("nope") is None


def test_a_delivery_is_recorded_once_and_linked_to_its_run(store: Store) -> None:
    run_id = _run(store)
    results: list[bool] = []
    workers = [
        threading.Thread(target=lambda: results.append(store.record_delivery("d-1", "issues", "labeled")))
        for _ in range(6)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(results) == [False] * 5 + [True]
    store.link_delivery("d-1", run_id)
    delivery = store.delivery("d-1")
    assert delivery is not None and (delivery.event, delivery.action, delivery.run_id) == ("issues", "labeled", run_id)
    assert store.delivery("d-2") is None


def _drive(reporter: ThreadReporter, run_id: str, status: RunStatus) -> None:
    reporter.event(EventKind.RUN_STARTED, {"run": run_id, "pipeline": "issue-to-pr"})
    reporter.event(EventKind.STEP_FINISHED, {"run": run_id, "step": "x"})
    reporter.event(EventKind.RUN_FINISHED, {"run": run_id, "status": status.value})


def test_the_reporter_gives_an_initial_then_an_update_spec(store: Store) -> None:
    binding = ThreadBinding(
        repo="{{ inputs.repo }}", issue="{{ inputs.issue }}", instructions="issue {{ inputs.issue }}"
    )
    problems: list[str] = []
    state = RunState()
    first = _run(store)
    reporter = ThreadReporter(
        store, binding, {"repo": "", "issue": 5}, state, default_repo="octo/demo", on_problem=problems.append
    )
    reporter.event(EventKind.RUN_STARTED, {"run": first})
    thread = store.thread_by_issue("octo/demo", 5)
    assert thread is not None and thread.state is W
    state.branch, state.pull_request = "fix/issue-5", 11
    reporter.event(EventKind.RUN_FINISHED, {"run": first, "status": "succeeded"})
    second = _run(store)
    _drive(
        ThreadReporter(store, binding, {"repo": "octo/demo", "issue": 5}, RunState("fix/issue-5", pull_request=11)),
        second,
        RunStatus.SUCCEEDED,
    )
    thread = store.thread(thread.id)
    assert (thread.state, thread.branch, thread.pull_request) == (F, "fix/issue-5", 11)
    specs = store.specs(thread.id)
    assert [(s.version, s.kind, s.target_branch, s.run_id, s.instructions) for s in specs] == [
        (1, SpecKind.INITIAL, None, first, "issue 5"),
        (2, SpecKind.UPDATE, "fix/issue-5", second, "issue 5"),
    ]
    assert _moves(store, thread.id) == [(None, P), (P, W), (W, F), (F, P), (P, W), (W, F)]
    assert problems == []


def test_a_failed_run_without_a_pull_request_goes_back_to_planning(store: Store) -> None:
    binding = ThreadBinding(repo="octo/demo", issue=2)
    _drive(ThreadReporter(store, binding, {}, RunState()), _run(store), RunStatus.FAILED)
    thread = store.thread_by_issue("octo/demo", 2)
    assert thread is not None and thread.state is P
    waiting = _run(store)
    reporter = ThreadReporter(store, binding, {}, RunState())
    _drive(reporter, waiting, RunStatus.WAITING)
    assert store.thread(thread.id).state is W  # stopped at a wait point: still working
    reporter.event(EventKind.RUN_RESUMED, {"run": waiting})
    reporter.event(EventKind.RUN_FINISHED, {"run": waiting, "status": "failed"})
    assert store.thread(thread.id).state is P and len(store.specs(thread.id)) == 2


def test_a_feedback_run_updates_the_thread_owning_its_pull_request(store: Store) -> None:
    thread = thread_for_issue(store, "octo/demo", 1)
    transition(store, thread.id, W, "run")
    transition(store, thread.id, F, "opened", branch="fix/issue-1", pull_request=7)
    binding = ThreadBinding(
        repo="octo/demo", pull_request="{{ inputs.pr }}", instructions="{{ steps.feedback.outputs.prompt }}"
    )
    problems: list[str] = []
    _drive(
        ThreadReporter(store, binding, {"pr": 7}, RunState(), on_problem=problems.append),
        _run(store),
        RunStatus.SUCCEEDED,
    )
    (spec,) = store.specs(thread.id)
    assert (spec.kind, spec.target_branch, spec.instructions) == (SpecKind.UPDATE, "fix/issue-1", None)
    assert problems and "thread.instructions" in problems[0]  # no step `feedback` ran: told, not raised
    assert store.thread(thread.id).state is F
    _drive(
        ThreadReporter(store, binding, {"pr": 8}, RunState(), on_problem=problems.append),
        _run(store),
        RunStatus.SUCCEEDED,
    )
    assert "no thread owns pull request #8 of octo/demo" in problems[-1]
    archive(store, "octo/demo", 7, "merged")
    _drive(
        ThreadReporter(store, binding, {"pr": 7}, RunState(), on_problem=problems.append),
        _run(store),
        RunStatus.SUCCEEDED,
    )
    assert "is archived" in problems[-1] and store.thread(thread.id).state is A and len(store.specs(thread.id)) == 1


def test_pipe_threads_lists_and_pipe_show_shows_a_thread(tmp_path: Path, cli: Cli) -> None:
    store = Store(tmp_path)
    try:
        run_id = _run(store)
        thread = thread_for_issue(store, "octo/demo", 3)
        store.add_spec(thread.id, SpecKind.INITIAL, None, run_id, "Fix the bug")
        transition(store, thread.id, W, "run applies spec 1", run_id)
        thread_for_issue(store, "octo/demo", 4)
    finally:
        store.close()
    listed = cli("threads", "--state-dir", str(tmp_path))
    assert listed.code == 0 and "octo/demo#3" in listed.out and "octo/demo#4" in listed.out
    working = cli("threads", "--state", "working", "--json", "--state-dir", str(tmp_path))
    assert [json.loads(line)["issue"] for line in working.out.splitlines()] == [3]
    assert cli("threads", "--state", "busy", "--state-dir", str(tmp_path)).code == 2
    shown = cli("show", "octo/demo#3", "--state-dir", str(tmp_path))
    assert shown.code == 0 and f"thread {thread.id}  octo/demo#3" in shown.out
    assert f"1. initial  run {run_id} (pending)" in shown.out and "Fix the bug" in shown.out
    assert "planning -> working: run applies spec 1" in shown.out
    detail = json.loads(cli("show", thread.id[:7], "--json", "--state-dir", str(tmp_path)).out)
    assert detail["thread"]["id"] == thread.id and detail["runs"][0]["id"] == run_id
    missing = cli("show", "octo/demo#9", "--state-dir", str(tmp_path))
    assert missing.code == 2 and "no thread for octo/demo#9" in missing.err
