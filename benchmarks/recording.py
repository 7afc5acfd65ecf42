"""Cost of recording a step's changes on a 10,000-file workspace where the step changed 10 files,
beside `git status` on the same tree, as a ratio (target: 1.5 or less). Measured as the engine
records (inotify watches naming the changed paths), and for the full walk it falls back to.

Run: python benchmarks/recording.py [FILES] [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runner.changes.objects import ObjectStore
from runner.changes.recording import Recorder
from runner.changes.snapshot import Workspace
from runner.changes.watch import Watcher
from runner.store import Store


def make_tree(root: Path, files: int) -> None:
    per_directory = 50
    for index in range(files):
        directory = root / f"pkg{index // per_directory:04d}"
        directory.mkdir(exist_ok=True)
        (directory / f"module{index % per_directory}.py").write_text(f"value = {index}\n" * 3)
    environment = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    # no background `git gc --auto`: its files would count as changes of the measured step
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=environment)
    subprocess.run(["git", "config", "gc.auto", "0"], cwd=root, check=True, env=environment)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=environment)
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "x"],
        cwd=root,
        check=True,
        env=environment,
    )


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory) / "ws"
        root.mkdir()
        make_tree(root, files)
        os.sync()  # let git's writes settle, so they do not slow what is measured
        store = Store(Path(directory) / "state")
        pipeline = store.add_pipeline("bench", "bench.yml", "digest", "")
        run_id = store.create_run(pipeline, {})
        recorder = Recorder(store, ObjectStore(Path(directory) / "state" / "objects"), Workspace(root), run_id)
        watcher = Watcher(root)
        start = time.perf_counter()
        assert watcher.start(), "inotify is unavailable here"
        recorder.baseline()
        watcher.take()
        baseline = time.perf_counter() - start
        watched, walked, status = [], [], []
        for round_ in range(rounds * 2):
            for index in range(10):
                path = root / f"pkg{index * 7:04d}" / f"module{round_ % 50}.py"
                path.write_text(path.read_text() + f"# round {round_}\n")
            start = time.perf_counter()
            if round_ % 2 == 0:
                changes = recorder.record("step", 0, round_ + 1, watcher.take())
                watched.append(time.perf_counter() - start)
            else:
                changes = recorder.record("step", 0, round_ + 1, None)
                walked.append(time.perf_counter() - start)
                watcher.take()
            assert len(changes) == 10, [c.path for c in changes]
            start = time.perf_counter()
            subprocess.run(["git", "status", "--porcelain"], cwd=root, check=True, capture_output=True)
            status.append(time.perf_counter() - start)
            watcher.take()  # git status rewrites .git/index; not part of the next measured step
            recorder.record("git-status", 0, 0, None)
        watcher.close()
        store.close()
    watch_time, walk_time = statistics.median(watched), statistics.median(walked)
    status_time = statistics.median(status)
    print(f"workspace: {files} files; baseline and watches (once per run): {baseline * 1000:.0f} ms")
    print(
        f"git status on the same tree:                        {status_time * 1000:6.1f} ms  (median of {len(status)})"
    )
    print(f"recording a step that changed 10 files (watched):   {watch_time * 1000:6.1f} ms  (median of {rounds})")
    print(f"recording the same, full walk (fallback):           {walk_time * 1000:6.1f} ms  (median of {rounds})")
    print(f"ratio: {watch_time / status_time:.2f} watched, {walk_time / status_time:.2f} full walk  (target <= 1.50)")


if __name__ == "__main__":
    main()
