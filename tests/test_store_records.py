"""The store's concerns one by one, without Docker: runs and concurrency groups, step results,
attempts and events, changes and the manifest, approvals, leases, the UI's runs list, and the
state directory's paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from runner.errors import UsageError
from runner.names import AttemptStatus, Decision, EventKind, RunStatus
from runner.statedir import StateDir, default_state_dir
from runner.store import (
    EventRecord,
    GroupBusy,
    LeaseRecord,
    ResumeState,
    RunFilter,
    RunState,
    StepRecord,
    Store,
    engines,
    list_runs,
    new_run_id,
)

pytestmark = pytest.mark.usefixtures("store_backend")  # each test on SQLite, then PostgreSQL


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(StateDir(tmp_path / "state"))
    yield opened
    opened.close()


def _run(store: Store, **inputs: object) -> str:
    return store.create_run(store.add_pipeline("p", "p.yml", "digest", "version: 1"), inputs)


def test_a_run_is_created_pending_and_found_by_prefix(store: Store) -> None:
    run_id = _run(store, issue=3)
    run = store.run(run_id[:17])
    assert (run.id, run.status, run.inputs, run.pipeline_name) == (run_id, RunStatus.PENDING, {"issue": 3}, "p")
    assert run.status == "pending" and store.run("latest").id == run_id
    with pytest.raises(UsageError, match="no run"):
        store.run("nope")
    assert len(new_run_id(0.0)) == len("19700101-000000-abcdef")


def test_resume_state_round_trips(store: Store) -> None:
    run_id = _run(store)
    saved = ResumeState(RunState(branch="b", pull_request=4), {"forge": "github", "repo": "o/r"}, "img")
    store.save_resume_state(run_id, saved)
    store.update_run(run_id, status=RunStatus.WAITING, error=None)
    run = store.run(run_id)
    assert run.resume_state == saved and run.status is RunStatus.WAITING
    with pytest.raises(ValueError, match="unknown run fields"):
        store.update_run(run_id, outputs={})


def test_a_run_is_created_with_its_resume_state_and_chosen_workspace(store: Store, tmp_path: Path) -> None:
    """Both are in the run's first row: a runner killed right after creating it leaves a run a
    resume continues with the forge and the workspace it was started with."""
    pipeline = store.add_pipeline("p", "p.yml", "digest", "version: 1")
    saved = ResumeState(forge={"forge": "github", "repo": "o/r"}, default_image="img", publish=False)
    run = store.run(store.create_run(pipeline, {}, resume_state=saved, workspace=tmp_path / "ws"))
    assert (run.resume_state, run.workspace) == (saved, str(tmp_path / "ws"))
    bare = store.run(store.create_run(pipeline, {}))
    assert (bare.resume_state, bare.workspace) == (ResumeState(), "")


def test_children_are_listed_with_their_keys(store: Store) -> None:
    pipeline = store.add_pipeline("p", "p.yml", "digest", "version: 1")
    parent = store.create_run(pipeline, {})
    child = store.create_run(pipeline, {}, "parent", parent=(parent, "7"))
    assert [(r.id, r.parent_id, r.child_key, r.trigger) for r in store.children(parent)] == [
        (child, parent, "7", "parent")
    ]


def test_a_live_run_holds_its_concurrency_group(store: Store) -> None:
    pipeline = store.add_pipeline("p", "p.yml", "digest", "version: 1")
    first = store.create_run(pipeline, {}, group="g", lease=("me", "host", 30.0), is_alive=lambda pid: True)
    with pytest.raises(GroupBusy) as busy:
        store.create_run(pipeline, {}, group="g", lease=("you", "host", 30.0), is_alive=lambda pid: True)
    assert busy.value.holder == first
    # The holder's process died: the group is free at once.
    second = store.create_run(pipeline, {}, group="g", lease=("you", "host", 30.0), is_alive=lambda pid: False)
    assert second != first


def test_step_results_are_replaced_in_place(store: Store) -> None:
    run_id = _run(store)
    first = StepRecord("a", 0, 0, "failure", "failure", 1, 1.0, 2.0, {}, "boom")
    store.record_step(run_id, first)
    store.record_step(run_id, StepRecord("a", 0, 0, "success", "success", 2, 1.0, 3.0, {"n": "1"}, None, 1, 2))
    store.record_step(run_id, StepRecord("b", 0, 1, "success", "success", 1, 3.0, 4.0, {}, None))
    assert [(s.step_id, s.outcome, s.attempts, s.outputs, s.end_mark) for s in store.steps(run_id)] == [
        ("a", "success", 2, {"n": "1"}, 2),
        ("b", "success", 1, {}, 0),
    ]
    store.delete_steps(run_id, 1)
    assert [s.step_id for s in store.steps(run_id)] == ["a"]


def test_attempts_and_events_are_named_records(store: Store, tmp_path: Path) -> None:
    run_id = _run(store)
    attempt = store.start_attempt(run_id, "a", 0, 1, tmp_path / "a.log", 1.0)
    assert store.run(run_id).current_step == "a"
    store.finish_attempt(attempt, AttemptStatus.TIMEOUT, None, 2.0, {"x": "1"}, "slow", runtime="runc")
    second = store.start_attempt(run_id, "a", 0, 2, tmp_path / "a.log", 3.0)
    assert store.interrupt_attempts(run_id, "died") == 1
    found = store.attempts(run_id)
    assert [(a.id, a.status, a.error, a.runtime) for a in found] == [
        (attempt, AttemptStatus.TIMEOUT, "slow", "runc"),
        (second, AttemptStatus.INTERRUPTED, "died", None),
    ]
    store.add_event(run_id, EventKind.STEP_STARTED, "a", {"name": "A"})
    store.add_event(run_id, "note")
    events = store.events(run_id)
    assert [(e.kind, e.step_id, e.data) for e in events] == [("step_started", "a", {"name": "A"}), ("note", None, {})]
    assert isinstance(events[0], EventRecord) and store.events(run_id, after=events[0].id) == events[1:]


def test_changes_and_the_manifest(store: Store) -> None:
    run_id = _run(store)
    assert store.last_change_id(run_id) == 0 and not store.has_manifest(run_id)
    row = ("f.txt", "file", 0o644, 1000, 1000, 3, "d1", None, 1, 3, 9, 0o100644, 1)
    store.save_changes(run_id, [("a", 0, 1, "write", "f.txt", {"after": "d1"})], [row], [])
    store.save_changes(run_id, [], [(*row[:6], "d2", *row[7:])], [])  # the same path again: replaced
    assert store.has_manifest(run_id)
    assert [(m["path"], m["digest"], m["links"]) for m in store.manifest_rows(run_id)] == [("f.txt", "d2", 1)]
    (change,) = store.changes(run_id)
    assert (change.type, change.target, change.data, change.undone_at) == ("write", "f.txt", {"after": "d1"}, None)
    store.mark_undone(change.id, None, "f.txt", run_id)
    assert store.changes(run_id, pending_only=True) == [] and store.manifest_rows(run_id) == []
    assert store.last_change_id(run_id) == change.id


def test_approvals_decode_their_decision(store: Store) -> None:
    run_id = _run(store)
    with pytest.raises(UsageError, match="not waiting"):
        store.decide(run_id, Decision.APPROVED, None, "me")
    pending = store.request_approval(run_id, "gate", 0, 5)
    assert pending.decision is None and pending.after_comment == 5
    assert store.request_approval(run_id, "gate", 0, 9).after_comment == 5  # the first request stands
    decided = store.decide(run_id, "rejected", "not yet", "me")
    assert decided.decision is Decision.REJECTED and decided.comment == "not yet"
    assert store.approval(run_id, "gate", 0) == decided and store.approval(run_id, "gate", 1) is None


def test_leases(store: Store) -> None:
    run_id = _run(store)
    assert store.acquire_lease(run_id, "a", "host", 30.0, lambda pid: True) is None
    held = store.lease(run_id)
    assert isinstance(held, LeaseRecord) and (held.owner, held.host) == ("a", "host") and held.until is not None
    assert "a (until" in str(store.acquire_lease(run_id, "b", "host", 30.0, lambda pid: True))
    assert store.acquire_lease(run_id, "b", "host", 30.0, lambda pid: False) is None  # a's process died
    store.release_lease(run_id, "a")  # not a's any more: nothing happens
    assert store.lease(run_id).owner == "b"
    store.release_lease(run_id, "b")
    assert (store.lease(run_id).owner, store.lease(run_id).until) == (None, None)


def test_the_runs_list_filters_and_pages(store: Store) -> None:
    for issue in range(3):
        _run(store, repo="o/r", issue=issue)
    store.update_run(store.run("latest").id, status=RunStatus.FAILED)
    assert list_runs(store.paths, RunFilter(), limit=2, offset=0).total == 3
    page = list_runs(store.paths, RunFilter(status="failed"), limit=2, offset=0)
    assert (page.total, [r.inputs["issue"] for r in page.runs], page.pipelines) == (1, [2], ["p"])
    assert list_runs(store.paths, RunFilter(repository="o/r", issue="1"), limit=5, offset=0).total == 1
    elsewhere = list_runs(StateDir(store.paths.root / "none"), RunFilter(), limit=5, offset=0).total
    assert elsewhere == (0 if store.sqlite else 3)  # PostgreSQL: one database, whatever the state directory


def test_the_runs_list_of_a_database_no_command_made_is_empty_and_makes_nothing(tmp_path: Path) -> None:
    """`pipe ui` may list runs before any command has opened the store: no state.db on SQLite, a
    database without pipe's tables on PostgreSQL. The page is empty, and reading it creates nothing."""
    paths = StateDir(tmp_path / "state")
    page = list_runs(paths, RunFilter(), limit=5, offset=0)
    assert (page.runs, page.total, page.pipelines) == ([], 0, [])
    url = engines.store_url(paths)
    if url.startswith("sqlite"):
        assert not paths.db.exists()
    else:
        with engines.engine(url).connect() as db:
            assert inspect(db).get_table_names() == []


def test_the_state_directory_spells_its_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = StateDir(tmp_path)
    run = paths.run("r1")
    assert (paths.db, paths.objects, run.workspace) == (
        tmp_path / "state.db",
        tmp_path / "objects",
        tmp_path / "runs" / "r1" / "workspace",
    )
    assert run.attempt_file("s", 0, 2) == tmp_path / "runs" / "r1" / "logs" / "s.2.log"
    assert run.attempt_file("s", 3, 1, "traceback") == tmp_path / "runs" / "r1" / "logs" / "s.3.1.traceback"
    monkeypatch.setenv("PIPE_HOME", "relative/home")
    assert default_state_dir() == Path.cwd() / "relative" / "home"
    assert StateDir.default(tmp_path).root == tmp_path
