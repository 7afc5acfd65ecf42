"""The store tests' two databases: SQLite in the test's state directory, and PostgreSQL when a
server is given (`pytest --store-url postgresql://...` or $PIPE_TEST_POSTGRES_URL; scripts/setup.sh
`setup_postgres` starts one on loopback). Each PostgreSQL test gets a fresh schema of that database
(named on the URL's search_path), dropped afterwards."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from runner.store import Store, engines

POSTGRES_ENV = "PIPE_TEST_POSTGRES_URL"


def postgres_server(option: str | None) -> str | None:
    """The PostgreSQL server URL the tests may use, or None."""
    url = option or os.environ.get(POSTGRES_ENV) or None
    if url is None:
        return None
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def postgres_problem(server: str) -> str | None:
    """Why the server cannot be used (its error), or None when it answers."""
    try:
        with create_engine(server, poolclass=NullPool).connect() as db:
            db.execute(text("SELECT 1"))
    except Exception as error:  # any reason it does not answer is the test's skip reason
        return f"PostgreSQL at {engines.shown(server)} does not answer: {str(error).splitlines()[0]}"
    return None


@contextmanager
def fresh_schema(server: str) -> Iterator[str]:
    """A new, empty schema on `server`; yields the store URL that uses it (its search_path)."""
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(server, poolclass=NullPool)
    with admin.begin() as db:
        db.execute(text(f"CREATE SCHEMA {schema}"))
    url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    store_url = url.render_as_string(hide_password=False)
    try:
        yield store_url
    finally:
        engines.dispose(store_url)
        with admin.begin() as db:
            db.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def check_list(store: Store, table: str, column: str) -> set[str]:
    """The values the database's CHECK constraint on `table.column` allows (SQLite keeps `x IN
    ('a', 'b')`; PostgreSQL reflects it as `x = ANY (ARRAY['a'::text, ...])`)."""
    with store.transaction() as db:
        constraints = inspect(db).get_check_constraints(table)
    for constraint in constraints:
        sql = str(constraint["sqltext"])
        if re.match(rf"\(*\s*{column}\b", sql):
            return set(re.findall(r"'([^']*)'", sql))
    raise AssertionError(f"no CHECK on {table}.{column}: {constraints}")


def race(state_dir: str, what: str, key: str, index: int, start: Any, results: Any) -> None:
    """One of several processes racing for one thing in the store of `state_dir` (the database
    $PIPE_STORE_URL names, inherited): `group` (create a run holding concurrency group `key`),
    `lease` (acquire run `key`'s lease) or `approve` (decide run `key`'s open approval). Puts
    (index, "won" | "lost: <why>") on `results`. Started with multiprocessing's spawn context."""
    from runner.errors import UsageError
    from runner.store import GroupBusy

    store = Store(Path(state_dir))
    try:
        start.wait(30)
        owner, host = f"racer-{index}", f"host-{index}"  # other hosts: no process check, leases count
        try:
            if what == "group":
                pipeline = store.add_pipeline("p", "p.yml", "digest", "version: 1")
                store.create_run(pipeline, {}, group=key, lease=(owner, host, 60.0), is_alive=lambda _pid: True)
                outcome = "won"
            elif what == "lease":
                holder = store.acquire_lease(key, owner, host, 60.0, lambda _pid: True)
                outcome = "won" if holder is None else f"lost: {holder}"
            else:
                store.decide(key, "approved", None, owner)
                outcome = "won"
        except (GroupBusy, UsageError) as error:
            outcome = f"lost: {error}"
        results.put((index, outcome))
    finally:
        store.close()
