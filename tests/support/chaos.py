"""Kill pipe at a random moment, resume, and compare with a run nobody interrupted.

One trial: a fresh test GitHub server and repository; `pipe run` of CHAOS_PIPELINE (writes files,
commits, pushes, opens a pull request, comments, reports progress, sees a secret) in a subprocess;
SIGKILL or SIGTERM after `delay` seconds; then `pipe resume` (or a new `pipe run` when the process
died before recording the run) until the run ends. The outcome (`Outcome`) holds what must equal
the uninterrupted run's: the branch's tree, the forge's branches, pull requests and comments, and
the checks that hold whatever happened: store integrity, no container left, no secret on disk.
Used by tests/test_chaos_docker.py (a few seeded trials in CI) and benchmarks/chaos.py (30 + 10).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from runner.store import Store
from tests.support.github import TOKEN, start_github
from tests.support.leaks import leaks

SECRET = "chaos-secret-0f9e8d7c6b5a49382716"
PIPE = [sys.executable, "-m", "runner"]

CHAOS_PIPELINE = """\
version: 1
name: chaos
inputs:
  issue: {type: integer, required: true}
secrets:
  DEPLOY_KEY: {required: true}
credentials: [github]
report: {issue-comment: {issue: "{{ inputs.issue }}", interval: 1s}}
steps:
  - id: issue
    uses: github/issue
    with: {number: "{{ inputs.issue }}"}
  - id: checkout
    uses: git/checkout
    with: {branch: "fix/issue-{{ inputs.issue }}"}
  - id: change
    credentials: []
    env: {KEY: "{{ secrets.DEPLOY_KEY }}"}
    run: |
      echo "using key $KEY"
      sed -i 's/a - b/a + b/' calc.py
      mkdir -p docs
      for n in 1 2 3 4 5; do echo "note $n" > "docs/note-$n.md"; done
      rm README.md
      sleep 0.5
  - id: commit
    uses: git/commit
    with: {message: "Fix #{{ inputs.issue }}: {{ steps.issue.outputs.title }}"}
  - id: push
    uses: git/push
  - id: pr
    uses: github/pull-request
    with:
      title: "Fix #{{ inputs.issue }}"
      body: "Fixes #{{ inputs.issue }}"
  - id: comment
    uses: github/comment
    with: {issue: "{{ inputs.issue }}", body: "Opened pull request #{{ steps.pr.outputs.number }}"}
"""


@dataclass(frozen=True)
class Outcome:
    """What a trial left: `comparable` must equal the uninterrupted run's; `problems` must be empty."""

    comparable: dict[str, object]
    problems: list[str]
    resumes: int
    seconds: float


def _pipe(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PIPE, *args], check=False, capture_output=True, text=True, timeout=timeout, env=env)


def _containers(run_ids: list[str]) -> list[str]:
    import docker

    client = docker.from_env()
    try:
        left: list[str] = []
        for run_id in run_ids:
            listed = client.containers.list(all=True, filters={"label": f"pipe.run={run_id}"})
            left += [c.id for c in listed if c.id is not None]
        return left
    finally:
        client.close()


def trial(
    root: Path, delay: float | None, signal_number: int = signal.SIGKILL, *, after_recorded: bool = False
) -> Outcome:
    """Run CHAOS_PIPELINE under `root`, killed after `delay` seconds (None: never) counted from
    its start, or with `after_recorded` from the moment its run is in the store (the start-up
    window, where what a resume needs is still being written), then resumed until it ends.
    Returns its Outcome."""
    root.mkdir(parents=True, exist_ok=True)
    github = start_github(root / "github")
    try:
        repo = github.create_repo(
            "octo/chaos", {"README.md": "# chaos\n", "calc.py": "def add(a, b):\n    return a - b\n"}
        )
        repo.add_issue("add() subtracts", "`add(2, 3)` returns -1.", ("bug",))
        main = repo.sha("main")
        pipeline = root / "chaos.yml"
        pipeline.write_text(CHAOS_PIPELINE)
        (root / "secrets.env").write_text(f"DEPLOY_KEY={SECRET}\n")
        state = root / "state"
        env = {**os.environ, "GITHUB_TOKEN": TOKEN}
        env.pop("GH_TOKEN", None)
        run_args = [
            "run", str(pipeline), "-i", "issue=1", "--repo", "octo/chaos", "--api-url", github.api_url,
            "--state-dir", str(state), "--secret-file", str(root / "secrets.env"),
        ]  # fmt: skip
        started = time.monotonic()
        resumes = 0
        process = subprocess.Popen([*PIPE, *run_args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        if delay is not None:
            if after_recorded:
                wait_recorded(state, process)
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal_number)
        process.wait(timeout=120)
        problems: list[str] = []
        for _ in range(5):
            listed = _pipe(["runs", "--json", "--state-dir", str(state)], env)
            if '"id"' not in listed.stdout:
                done = _pipe(run_args, env)  # it died before recording the run
                if done.returncode != 0:
                    problems.append(f"a fresh run exited {done.returncode}: {done.stderr[-500:]}")
                break
            status = _status(state)
            if status == "succeeded":
                break
            resumes += 1
            done = _pipe(
                ["resume", "latest", "--state-dir", str(state), "--secret-file", str(root / "secrets.env")], env
            )
            if done.returncode != 0 and _status(state) != "succeeded":
                problems.append(f"resume {resumes} exited {done.returncode}: {(done.stdout + done.stderr)[-800:]}")
        seconds = time.monotonic() - started
        if _status(state) != "succeeded":
            problems.append(f"the run ended {_status(state)}")
        store = Store(state)  # the database $PIPE_STORE_URL names, as the pipe processes above used
        try:
            if store.sqlite and store.execute_text("PRAGMA integrity_check")[0]["integrity_check"] != "ok":
                problems.append("integrity_check failed")
            run_ids = [run.id for run in store.runs(limit=1000)]
            running = sum(a.status == "running" for run_id in run_ids for a in store.attempts(run_id))
        finally:
            store.close()
        if running:
            problems.append(f"{running} attempt(s) left running")
        if _containers(run_ids):
            problems.append("containers left")
        leaked = leaks(state, SECRET, TOKEN)
        if leaked:
            problems.append(f"a secret on disk in {leaked}")
        branch = "fix/issue-1"
        tree = repo.git("ls-tree", "-r", branch) if repo.sha(branch) else ""
        comparable: dict[str, object] = {
            "tree": tree,
            "commits on the branch": repo.git("rev-list", "--count", f"main..{branch}").strip() if tree else "0",
            "branches": repo.git("for-each-ref", "--format=%(refname)", "refs/heads").split(),
            "main moved": repo.sha("main") != main,
            "pull requests": sorted((p["head"]["ref"], p["title"], p["state"]) for p in repo.pulls.values()),
            "comments": sorted(_comment_kind(c["body"]) for c in repo.comments.values()),
        }
        return Outcome(comparable, problems, resumes, seconds)
    finally:
        github.stop()


def wait_recorded(
    state: Path, process: subprocess.Popen[bytes], seconds: float = 60, status: str | None = None
) -> bool:
    """Whether the run under `state` came to be in the store (in `status`, when given) before
    `process` ended or `seconds` passed; polls every 2 ms."""
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        if state.exists():
            try:
                found = _status(state)
            except Exception:  # the database is being created
                found = "none"
            if found != "none" and status in (None, found):
                return True
        time.sleep(0.002)
    return False


def _status(state: Path) -> str:
    store = Store(state)
    try:
        runs = store.runs(limit=1)
        return str(runs[0].status) if runs else "none"
    finally:
        store.close()


def _comment_kind(body: str) -> str:
    """A comment reduced to what must not change between runs (the progress comment's timings do)."""
    if body.startswith("### pipe: chaos"):
        return "progress: " + ("succeeded" if "(succeeded)" in body else "not finished")
    return body.split("<!--", maxsplit=1)[0].strip()
