"""The Alembic migrations build exactly runner/store/tables.py's schema, on SQLite and PostgreSQL;
the head revision is the one the store's fast path expects; and a database made by the old
hand-written migrations (version 8) is stamped at the baseline without being rebuilt."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from runner.store import Store
from runner.store.schema import MIGRATIONS
from runner.store.tables import HEAD_REVISION, metadata
from tests.support.cli import Cli


def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", "runner.store:migrations")
    return ScriptDirectory.from_config(config)


def test_the_head_revision_is_the_one_the_store_expects() -> None:
    assert _scripts().get_heads() == [HEAD_REVISION]


@pytest.mark.usefixtures("store_backend")
def test_a_new_database_equals_the_table_metadata(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        with store.transaction() as db:
            differences = compare_metadata(MigrationContext.configure(db), metadata)
        assert differences == []
        assert store.schema_version() == int(HEAD_REVISION)
    finally:
        store.close()


def test_a_version_8_database_is_stamped_at_the_baseline_and_keeps_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPE_STORE_URL", raising=False)  # SQLite's legacy bridge, whatever the suite's store
    tmp_path.mkdir(exist_ok=True)
    db = sqlite3.connect(tmp_path / "state.db")
    try:
        for script in MIGRATIONS[:8]:
            db.executescript(script)
        db.execute("PRAGMA user_version = 8")
        db.execute("INSERT INTO deliveries (id, event, received_at) VALUES ('d1', 'issues', 1)")
        db.commit()
    finally:
        db.close()
    store = Store(tmp_path)
    try:
        delivery = store.delivery("d1")
        assert store.schema_version() == int(HEAD_REVISION) and delivery is not None and delivery.event == "issues"
        assert store.record_delivery("d2", "push", None) and not store.record_delivery("d2", "push", None)
    finally:
        store.close()
    db = sqlite3.connect(tmp_path / "state.db")
    try:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD_REVISION,)]
    finally:
        db.close()


def test_a_database_the_last_hand_written_migrations_reached_is_stamped_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hand-written migrations 9 and 10 are revisions 0009 and 0010: such a database is stamped at
    its version and upgraded from there, never migrated twice."""
    monkeypatch.delenv("PIPE_STORE_URL", raising=False)
    db = sqlite3.connect(tmp_path / "state.db")
    try:
        for script in MIGRATIONS[:9]:
            db.executescript(script)
        db.execute("PRAGMA user_version = 9")
        db.commit()
    finally:
        db.close()
    store = Store(tmp_path)
    try:
        assert store.schema_version() == int(HEAD_REVISION)
        assert store.record_delivery("d1", "issues", None, "ab" * 32)
        assert not store.record_delivery("d2", "issues", None, "ab" * 32)  # the same body again
    finally:
        store.close()


def test_store_url_selects_the_database_and_a_foreign_one_is_exit_2(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPE_STORE_URL", "")  # empty: the default; put back after the test (--store-url sets it)
    elsewhere = tmp_path / "elsewhere.db"
    result = cli("--store-url", f"sqlite:///{elsewhere}", "runs", "--state-dir", str(tmp_path / "state"))
    assert result.code == 0, result.err
    assert elsewhere.exists() and not (tmp_path / "state" / "state.db").exists()
    result = cli("--store-url", "mysql://u@h/db", "runs", "--state-dir", str(tmp_path / "state"))
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "PIPE_STORE_URL: 'mysql' is not a store pipe supports (sqlite:///PATH, postgresql://...)"
    ]


def test_runs_submitted_before_revision_0012_are_on_the_default_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revision 0012 records the queue a run was submitted to; the runs a worker executed or `pipe
    submit` created before it were on the default queue, and a worker must still find them
    (Store.stale_pending_runs looks only at submitted runs); a run `pipe run` made has none."""
    from alembic import command
    from sqlalchemy import create_engine, text

    monkeypatch.delenv("PIPE_STORE_URL", raising=False)
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with engine.begin() as db:
        config = Config()
        config.set_main_option("script_location", "runner.store:migrations")
        config.attributes["connection"] = db
        command.upgrade(config, "0011")
        db.execute(
            text(
                "INSERT INTO pipelines (id, name, path, digest, definition, created_at)"
                " VALUES (1, 'p', 'p.yml', 'd', 'v', 1)"
            )
        )
        for run_id, trigger, worker in (
            ("submitted", "submit", None),
            ("child", "parent", "w@h"),
            ("local", "cli", None),
        ):
            db.execute(
                text(
                    "INSERT INTO runs (id, pipeline_id, status, inputs, workspace, trigger, created_at, worker)"
                    " VALUES (:id, 1, 'pending', '{}', '', :trigger, 1, :worker)"
                ),
                {"id": run_id, "trigger": trigger, "worker": worker},
            )
    engine.dispose()
    store = Store(tmp_path)
    try:
        assert store.schema_version() == int(HEAD_REVISION)
        assert [store.run(run_id).queue for run_id in ("submitted", "child", "local")] == ["pipe", "pipe", None]
        assert sorted(store.stale_pending_runs(0.0)) == ["child", "submitted"]
    finally:
        store.close()
