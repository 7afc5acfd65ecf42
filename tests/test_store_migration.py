"""A state directory made by an older pipe (schema version 6: resume state in `runs.outputs`,
no CHECK on attempts.status) upgrades in place when a store opens it, its data kept."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from runner.names import AttemptStatus, RunStatus
from runner.store import ResumeState, RunState, Store
from runner.store.schema import MIGRATIONS
from runner.store.tables import HEAD_REVISION

RESUME: dict[str, Any] = {
    "state": {"branch": "fix/issue-1", "base": "main", "remote_sha": "abc", "pull_request": 7, "pull_request_url": "u"},
    "forge": {"forge": "local", "repo": "r", "directory": "/f"},
    "default_image": "img:1",
}


@pytest.fixture(autouse=True)
def _on_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bridge is SQLite's, whatever database the suite's stores use (PIPE_TEST_STORE)."""
    monkeypatch.delenv("PIPE_STORE_URL", raising=False)


def _version_6(state: Path) -> None:
    """A database as pipe with six migrations left it, holding one run with two attempts."""
    state.mkdir()
    db = sqlite3.connect(state / "state.db")
    try:
        for script in MIGRATIONS[:6]:
            db.executescript(script)
        db.execute("PRAGMA user_version = 6")
        db.execute(
            "INSERT INTO pipelines (id, name, path, digest, definition, created_at)"
            " VALUES (1, 'p', 'p.yml', 'd', 'v', 1)"
        )
        db.execute(
            "INSERT INTO runs (id, pipeline_id, status, inputs, outputs, workspace, created_at)"
            " VALUES ('r1', 1, 'waiting', '{\"issue\": 1}', ?, '/w', 2)",
            (json.dumps(RESUME),),
        )
        db.execute(
            "INSERT INTO runs (id, pipeline_id, status, inputs, workspace, created_at)"
            " VALUES ('r2', 1, 'failed', '{}', '', 3)"
        )
        for number, status in ((1, "failed"), (2, "waiting")):
            db.execute(
                "INSERT INTO attempts (run_id, step_id, number, status, started_at, log_path, outputs, runtime)"
                " VALUES ('r1', 'gate', ?, ?, 4, 'gate.log', '{\"k\": \"v\"}', 'runc')",
                (number, status),
            )
        db.commit()
    finally:
        db.close()


def test_a_version_6_database_upgrades_in_place_keeping_its_data(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _version_6(state)
    store = Store(state)
    try:
        assert store.schema_version() == int(HEAD_REVISION) == 12 and len(MIGRATIONS) == 10
        run = store.run("r1")
        assert run.status is RunStatus.WAITING and run.inputs == {"issue": 1} and run.workspace == "/w"
        assert run.resume_state == ResumeState(RunState("fix/issue-1", "main", "abc", 7, "u"), RESUME["forge"], "img:1")
        assert store.run("r2").resume_state == ResumeState()  # never saved: the defaults
        attempts = store.attempts("r1")
        assert [(a.number, a.status, a.outputs, a.runtime) for a in attempts] == [
            (1, AttemptStatus.FAILED, {"k": "v"}, "runc"),
            (2, AttemptStatus.WAITING, {"k": "v"}, "runc"),
        ]
        store.interrupt_attempts("r1", "gone")  # the rebuilt table still takes writes and keeps its ids
        assert store.start_attempt("r1", "gate", 0, 3, state / "gate.log", 5.0) == 3
    finally:
        store.close()
    db = sqlite3.connect(state / "state.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "attempts_by_run" in names
    finally:
        db.close()


def test_opening_an_upgraded_database_again_changes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _version_6(state)
    Store(state).close()
    store = Store(state)
    try:
        assert store.schema_version() == int(HEAD_REVISION) and store.run("r1").resume_state.default_image == "img:1"
    finally:
        store.close()
