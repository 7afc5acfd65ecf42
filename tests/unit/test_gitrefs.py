"""runner.changes.gitrefs: branch names checked as strictly as git does, and branch refs read,
moved and deleted through the repository's files (loose refs and packed-refs) without running git."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.changes.gitrefs import branch_problem, delete_branch, head_branch, read_branch, write_branch

A = "a" * 40
B = "b" * 40
C = "0123456789abcdef0123456789abcdef01234567"


def _packed(git_dir: Path, *lines: str) -> None:
    (git_dir / "packed-refs").write_text("# pack-refs with: peeled fully-peeled sorted \n" + "".join(lines))


@pytest.mark.parametrize("branch", ["main", "fix/issue-12", "feature/a.b", "v1.2.3", "user@host", "a-b_c"])
def test_ordinary_branch_names_are_valid(branch: str) -> None:
    assert branch_problem(branch) is None


@pytest.mark.parametrize(
    ("branch", "problem"),
    [
        ("", "is empty"),
        ("a..b", "contains '..'"),
        ("has space", "contains ' '"),
        ("tilde~1", "contains '~'"),
        ("caret^", "contains '^'"),
        ("co:lon", "contains ':'"),
        ("what?", "contains '?'"),
        ("star*", "contains '*'"),
        ("br[acket", "contains '['"),
        ("back\\slash", "contains '\\\\'"),
        ('quo"te', "contains '\"'"),
        ("del\x7f", "contains '\\x7f'"),
        ("tab\tname", "contains '\\t'"),
        ("new\nline", "contains '\\n'"),
        ("at@{1}", "contains '@{'"),
        ("@", "is '@'"),
        ("HEAD", "is 'HEAD'"),
        ("-option", "starts with '-'"),
        ("/lead", "has an empty path component"),
        ("trail/", "has an empty path component"),
        ("dou//ble", "has an empty path component"),
        ("dot.", "ends with '.'"),
        ("a/.hidden", "has a component starting with '.' ('.hidden')"),
        (".start", "has a component starting with '.' ('.start')"),
        ("x/y.lock/z", "has a component ending with '.lock' ('y.lock')"),
    ],
)
def test_invalid_branch_names_say_why(branch: str, problem: str) -> None:
    assert branch_problem(branch) == problem


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_every_name_git_refuses_is_refused_here_too() -> None:
    rng = random.Random(12)
    pieces = ["a", "b", "/", ".", "..", "-", "@", "{", "~", "lock", ".lock", " ", "x", "_", "\\", "*"]
    names = {"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 5))) for _ in range(120)}
    refused_by_git = set()
    for name in sorted(names):
        done = subprocess.run(["git", "check-ref-format", f"refs/heads/{name}"], capture_output=True, check=False)
        if done.returncode != 0:
            refused_by_git.add(name)
            assert branch_problem(name) is not None, name
    assert refused_by_git, "the generated names include some git refuses"
    assert names - refused_by_git, "and some it accepts"


def test_a_loose_ref_is_read_and_wins_over_packed_refs(tmp_path: Path) -> None:
    _packed(tmp_path, f"{A} refs/heads/main\n", f"{B} refs/heads/other\n")
    (tmp_path / "refs" / "heads").mkdir(parents=True)
    (tmp_path / "refs" / "heads" / "main").write_text(C + "\n")
    assert read_branch(tmp_path, "main") == C
    assert read_branch(tmp_path, "other") == B
    assert read_branch(tmp_path, "missing") is None


def test_a_packed_ref_needs_an_exact_name_and_a_full_sha(tmp_path: Path) -> None:
    _packed(tmp_path, f"{A} refs/heads/main-2\n", "abc123 refs/heads/short\n", f"^{B}\n")
    assert read_branch(tmp_path, "main") is None
    assert read_branch(tmp_path, "short") is None
    assert read_branch(tmp_path, "main-2") == A


def test_a_loose_ref_that_is_not_a_sha_reads_as_missing(tmp_path: Path) -> None:
    (tmp_path / "refs" / "heads").mkdir(parents=True)
    (tmp_path / "refs" / "heads" / "main").write_text("ref: refs/heads/other\n")
    assert read_branch(tmp_path, "main") is None


def test_symlinked_refs_are_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text(A + "\n")
    git_dir = tmp_path / "repo.git"
    (git_dir / "refs" / "heads").mkdir(parents=True)
    (git_dir / "refs" / "heads" / "main").symlink_to(outside)
    (git_dir / "packed-refs").symlink_to(tmp_path / "outside-packed")
    (tmp_path / "outside-packed").write_text(f"{B} refs/heads/other\n")
    assert read_branch(git_dir, "main") is None
    assert read_branch(git_dir, "other") is None


def test_reading_or_moving_an_invalid_branch_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"invalid branch name '\.\./x': contains '\.\.'"):
        read_branch(tmp_path, "../x")
    with pytest.raises(ValueError, match="invalid branch name"):
        write_branch(tmp_path, "a b", A)
    with pytest.raises(ValueError, match="invalid branch name"):
        delete_branch(tmp_path, "-x")
    assert not (tmp_path / "refs").exists()


@pytest.mark.parametrize("sha", ["", "abc", A.upper(), A + "0", "g" * 40])
def test_writing_refuses_anything_but_a_full_lowercase_sha(tmp_path: Path, sha: str) -> None:
    with pytest.raises(ValueError, match="invalid commit id"):
        write_branch(tmp_path, "main", sha)
    assert not (tmp_path / "refs").exists()


def test_a_written_branch_is_read_back_over_its_packed_value(tmp_path: Path) -> None:
    _packed(tmp_path, f"{A} refs/heads/fix/issue-1\n")
    write_branch(tmp_path, "fix/issue-1", C)
    assert (tmp_path / "refs" / "heads" / "fix" / "issue-1").read_text() == C + "\n"
    assert read_branch(tmp_path, "fix/issue-1") == C
    assert not list((tmp_path / "refs" / "heads" / "fix").glob(".pipe-*")), "no temporary file is left"


def test_deleting_removes_the_loose_ref_the_packed_line_and_its_peeled_line(tmp_path: Path) -> None:
    _packed(tmp_path, f"{A} refs/heads/main\n", f"{B} refs/heads/gone\n", f"^{C}\n", f"{C} refs/tags/v1\n", f"^{A}\n")
    write_branch(tmp_path, "gone", A)
    delete_branch(tmp_path, "gone")
    assert read_branch(tmp_path, "gone") is None
    assert not (tmp_path / "refs" / "heads" / "gone").exists()
    assert (tmp_path / "packed-refs").read_text().splitlines() == [
        "# pack-refs with: peeled fully-peeled sorted ",
        f"{A} refs/heads/main",
        f"{C} refs/tags/v1",
        f"^{A}",
    ]


def test_deleting_a_missing_branch_leaves_packed_refs_untouched(tmp_path: Path) -> None:
    _packed(tmp_path, f"{A} refs/heads/main\n")
    before = (tmp_path / "packed-refs").stat()
    delete_branch(tmp_path, "nothing")
    after = (tmp_path / "packed-refs").stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_head_branch_reads_a_symbolic_head_only(tmp_path: Path) -> None:
    assert head_branch(tmp_path) is None
    (tmp_path / "HEAD").write_text("ref: refs/heads/trunk\n")
    assert head_branch(tmp_path) == "trunk"
    (tmp_path / "HEAD").write_text(A + "\n")  # detached
    assert head_branch(tmp_path) is None


def _git(git_dir: Path, *args: str, stdin: bytes = b"") -> str:
    command = ["git", f"--git-dir={git_dir}", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, input=stdin, capture_output=True, check=True).stdout.decode().strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_agrees_with_what_was_written_and_deleted(tmp_path: Path) -> None:
    git_dir = tmp_path / "repo.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(git_dir)], check=True)
    commit = _git(git_dir, "commit-tree", _git(git_dir, "hash-object", "-t", "tree", "-w", "--stdin"), stdin=b"m")
    write_branch(git_dir, "feature/x", commit)
    assert _git(git_dir, "rev-parse", "--verify", "refs/heads/feature/x") == commit
    _git(git_dir, "pack-refs", "--all")
    assert not (git_dir / "refs" / "heads" / "feature" / "x").exists()
    assert read_branch(git_dir, "feature/x") == commit
    assert head_branch(git_dir) == "main"
    delete_branch(git_dir, "feature/x")
    assert _git(git_dir, "for-each-ref", "refs/heads") == ""
