"""The store's connection is shared by a run's threads (the outbox records the comments it makes):
writes from several threads at once never meet inside one transaction."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from runner.store import Store

pytestmark = pytest.mark.usefixtures("store_backend")  # each test on SQLite, then PostgreSQL


def test_writes_from_many_threads_at_once_all_land(tmp_path: Path) -> None:
    store = Store(tmp_path)
    pipeline = store.add_pipeline("p", "p.yml", "digest", "version: 1")
    run_id = store.create_run(pipeline, {})
    errors: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for index in range(50):
                store.add_event(run_id, "note", None, {"thread": thread, "index": index})
        except BaseException as error:  # collected, asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    assert errors == []
    assert len([e for e in Store(tmp_path).events(run_id) if e.kind == "note"]) == 300
