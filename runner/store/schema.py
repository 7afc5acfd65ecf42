"""LEGACY, kept only for the bridge of runner/store/migrate.py: the hand-written SQLite migrations
pipe used before Alembic. MIGRATIONS[n - 1] took a database from `PRAGMA user_version` n - 1 to n;
a migration is `;`-separated statements run in one transaction. An older SQLite state directory is
brought to version 8 by these once, then stamped at the Alembic baseline (runner/store/migrations/
versions/0008_baseline.py, the same schema). Never edit or extend them: the schema is
runner/store/tables.py and changes by Alembic revision.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE pipelines (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        digest TEXT NOT NULL UNIQUE,
        definition TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        pipeline_id INTEGER NOT NULL REFERENCES pipelines(id),
        status TEXT NOT NULL CHECK (status IN ('pending','running','waiting','succeeded','failed','cancelled')),
        current_step TEXT,
        inputs TEXT NOT NULL,
        outputs TEXT,
        error TEXT,
        workspace TEXT NOT NULL,
        trigger TEXT NOT NULL DEFAULT 'cli',
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        heartbeat_at REAL,
        pid INTEGER
    );
    CREATE INDEX runs_by_time ON runs(created_at);
    CREATE TABLE steps (
        run_id TEXT NOT NULL REFERENCES runs(id),
        step_id TEXT NOT NULL,
        iteration INTEGER NOT NULL DEFAULT 0,
        position INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        conclusion TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        started_at REAL,
        finished_at REAL,
        outputs TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        PRIMARY KEY (run_id, step_id, iteration)
    );
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        step_id TEXT NOT NULL,
        iteration INTEGER NOT NULL DEFAULT 0,
        number INTEGER NOT NULL,
        status TEXT NOT NULL,
        exit_code INTEGER,
        started_at REAL NOT NULL,
        finished_at REAL,
        log_path TEXT,
        outputs TEXT,
        error TEXT
    );
    CREATE INDEX attempts_by_run ON attempts(run_id, id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        step_id TEXT,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_by_run ON events(run_id, id);
    """,
    """
    CREATE TABLE changes (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        step_id TEXT NOT NULL,
        iteration INTEGER NOT NULL DEFAULT 0,
        attempt INTEGER NOT NULL DEFAULT 0,
        type TEXT NOT NULL,
        target TEXT NOT NULL,
        data TEXT NOT NULL,
        recorded_at REAL NOT NULL,
        undone_at REAL
    );
    CREATE INDEX changes_by_run ON changes(run_id, id);
    CREATE TABLE manifest (
        run_id TEXT NOT NULL REFERENCES runs(id),
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        mode INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        gid INTEGER NOT NULL,
        size INTEGER NOT NULL,
        digest TEXT,
        target TEXT,
        ctime_ns INTEGER NOT NULL,
        st_size INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        st_mode INTEGER NOT NULL,
        links INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (run_id, path)
    ) WITHOUT ROWID;
    ALTER TABLE steps ADD COLUMN start_mark INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE steps ADD COLUMN end_mark INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN lease_owner TEXT;
    ALTER TABLE runs ADD COLUMN lease_until REAL;
    ALTER TABLE runs ADD COLUMN host TEXT
    """,
    """
    CREATE TABLE approvals (
        run_id TEXT NOT NULL REFERENCES runs(id),
        step_id TEXT NOT NULL,
        iteration INTEGER NOT NULL DEFAULT 0,
        requested_at REAL NOT NULL,
        after_comment INTEGER NOT NULL DEFAULT 0,
        decision TEXT CHECK (decision IN ('approved', 'rejected')),
        comment TEXT,
        decided_by TEXT,
        decided_at REAL,
        PRIMARY KEY (run_id, step_id, iteration)
    )
    """,
    """
    CREATE TABLE concurrency_groups (
        name TEXT PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id)
    )
    """,
    """
    ALTER TABLE runs ADD COLUMN parent_id TEXT REFERENCES runs(id);
    ALTER TABLE runs ADD COLUMN child_key TEXT;
    CREATE INDEX runs_by_parent ON runs(parent_id, child_key)
    """,
    """
    ALTER TABLE attempts ADD COLUMN runtime TEXT
    """,
    # 7: `runs.outputs` held what a resume needs: renamed `resume_state`. attempts.status gets its
    # CHECK: the table is rebuilt and its rows copied, in the migration's one transaction.
    """
    ALTER TABLE runs RENAME COLUMN outputs TO resume_state;
    CREATE TABLE attempts_checked (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        step_id TEXT NOT NULL,
        iteration INTEGER NOT NULL DEFAULT 0,
        number INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN
            ('running','waiting','succeeded','failed','timeout','oom','cancelled','error','interrupted')),
        exit_code INTEGER,
        started_at REAL NOT NULL,
        finished_at REAL,
        log_path TEXT,
        outputs TEXT,
        error TEXT,
        runtime TEXT
    );
    INSERT INTO attempts_checked (id, run_id, step_id, iteration, number, status, exit_code, started_at,
        finished_at, log_path, outputs, error, runtime)
    SELECT id, run_id, step_id, iteration, number, status, exit_code, started_at,
        finished_at, log_path, outputs, error, runtime FROM attempts;
    DROP TABLE attempts;
    ALTER TABLE attempts_checked RENAME TO attempts;
    CREATE INDEX attempts_by_run ON attempts(run_id, id)
    """,
    # 8: threads (one conversation per repository issue), their specs and state transitions
    # (runner/threads/), and the webhook deliveries `pipe serve` has seen (replays ignored).
    """
    CREATE TABLE threads (
        id TEXT PRIMARY KEY,
        repo TEXT NOT NULL,
        issue INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('planning','working','waiting_for_feedback','archived')),
        branch TEXT,
        pull_request INTEGER,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (repo, issue)
    );
    CREATE INDEX threads_by_pull_request ON threads(repo, pull_request);
    CREATE TABLE specs (
        thread_id TEXT NOT NULL REFERENCES threads(id),
        version INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('initial','update')),
        target_branch TEXT,
        instructions TEXT,
        run_id TEXT REFERENCES runs(id),
        created_at REAL NOT NULL,
        PRIMARY KEY (thread_id, version)
    );
    CREATE INDEX specs_by_run ON specs(run_id);
    CREATE TABLE thread_transitions (
        id INTEGER PRIMARY KEY,
        thread_id TEXT NOT NULL REFERENCES threads(id),
        at REAL NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        run_id TEXT REFERENCES runs(id)
    );
    CREATE INDEX thread_transitions_by_thread ON thread_transitions(thread_id, id);
    CREATE TABLE deliveries (
        id TEXT PRIMARY KEY,
        event TEXT NOT NULL,
        action TEXT,
        received_at REAL NOT NULL,
        run_id TEXT
    )
    """,
    # 9: the SHA-256 of each delivery's body, unique: X-GitHub-Delivery is not signed, so a captured
    # body replayed under a new delivery id is a duplicate all the same (runner/serve/dispatch.py).
    """
    ALTER TABLE deliveries ADD COLUMN body_sha256 TEXT;
    CREATE UNIQUE INDEX deliveries_by_body ON deliveries(body_sha256)
    """,
    # 10: the Celery worker (`host:pid` name) that executed the run, NULL for an in-process run
    """
    ALTER TABLE runs ADD COLUMN worker TEXT
    """,
)
