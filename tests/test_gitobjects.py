"""Git objects of a worker's run kept and put back (runner/changes/gitobjects.py) with real git
repositories: a repository whose objects were lost is whole again after `restore`; objects a
sandbox planted as symlinks, FIFOs or under other names, and a listing naming other paths, are
never followed, read or written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from runner.changes.gitobjects import GitObjects, read_listing, restore
from runner.changes.objects import ObjectStore
from runner.changes.snapshot import Workspace
from tests.support.trees import git_environment


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=git_environment(), capture_output=True, text=True, check=True)
    return done.stdout


def repository(root: Path) -> Path:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for number in range(3):
        (root / f"f{number}.txt").write_text(f"version {number}\n")
        git(root, "add", ".")
        git(root, "commit", "-q", "-m", f"commit {number}")
    git(root, "repack", "-q", "-d")  # a pack, and loose objects after it
    (root / "late.txt").write_text("late\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "late")
    return root


def test_a_repository_without_its_objects_is_whole_after_restore(tmp_path: Path) -> None:
    source = repository(tmp_path / "ws")
    objects = ObjectStore(tmp_path / "objects")
    kept = GitObjects(Workspace(source), objects)
    assert kept.keep() and kept.digest is not None
    assert any(path.startswith("pack/") for path in kept.listing) and any(p[2] == "/" for p in kept.listing)
    assert not kept.keep()  # nothing new
    again = GitObjects(Workspace(source), objects, kept.digest)  # a run that continues reads it back
    assert again.listing == kept.listing and not again.keep()

    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(source), str(copy)], check=True)
    subprocess.run(["rm", "-rf", str(copy / ".git" / "objects")], check=True)
    (copy / ".git" / "objects").mkdir()
    written = restore(Workspace(copy), objects, read_listing(objects, kept.digest))
    assert written == len(kept.listing)
    git(copy, "fsck", "--strict", "--no-progress")
    assert git(copy, "log", "--format=%s") == "late\ncommit 2\ncommit 1\ncommit 0\n"
    mode = os.stat(copy / ".git" / "objects" / next(iter(kept.listing))).st_mode & 0o777
    assert mode == 0o444


def test_planted_paths_are_not_followed_or_read(tmp_path: Path) -> None:
    source = repository(tmp_path / "ws")
    host_secret = tmp_path / "host-secret"
    host_secret.write_text("the host's secret\n")
    loose = source / ".git" / "objects" / "ab"
    loose.mkdir(exist_ok=True)
    (loose / ("c" * 38)).symlink_to(host_secret)
    os.mkfifo(loose / ("d" * 38))  # opening it to read would block a careless reader forever
    (source / ".git" / "objects" / "info" / "alternates").write_text(str(tmp_path) + "\n")
    (source / ".git" / "objects" / "zz").mkdir()
    (source / ".git" / "objects" / "zz" / ("e" * 38)).write_text("not a git object's folder\n")
    objects = ObjectStore(tmp_path / "objects")
    kept = GitObjects(Workspace(source), objects)
    kept.keep()
    assert not any(name.startswith(("ab/", "zz/", "info/")) for name in kept.listing), sorted(kept.listing)
    stored = b"".join(path.read_bytes() for path in (tmp_path / "objects").rglob("*") if path.is_file())
    assert b"the host's secret" not in stored

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / ".git").mkdir()
    (linked / ".git" / "objects").symlink_to(elsewhere)  # restore must not write through it
    assert restore(Workspace(linked), objects, kept.listing) == 0
    assert list(elsewhere.iterdir()) == []
    assert GitObjects(Workspace(linked), objects).keep() is False


def test_a_listing_naming_other_paths_is_ignored(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    digest = objects.put(b'{"../../escape": "x", "pack/pack-1.pack": "y", "ab/' + b"0" * 38 + b'": "z"}')
    assert read_listing(objects, digest) == {"ab/" + "0" * 38: "z"}
