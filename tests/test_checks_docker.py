"""Issue 18, "Wait for the real CI" and review feedback, run for real against the test GitHub
server: github/checks waits for a check run the server completes after 3 s (a failing one fails
the step, a timeout gives timed_out); a push made with a GitHub App installation token is the
App's; github/review-threads and github/reply-threads answer two inline comments once."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from runner.store import StepRecord, Store
from tests.support.cli import Cli, CliResult
from tests.support.github import TOKEN
from tests.support.github_server import GitHubServer, Repo
from tests.support.pipelines import write_pipeline

pytestmark = pytest.mark.docker

CALC = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b  # subtract\n"

PUSH_AND_WAIT = """\
version: 1
name: push-and-wait
credentials: [github]
steps:
  - id: checkout
    uses: git/checkout
    with: {branch: fix/add}
  - id: change
    credentials: []
    run: sed -i 's/a - b/a + b/' calc.py
  - id: commit
    uses: git/commit
    with: {message: "Fix add"}
  - id: push
    uses: git/push
  - id: ci
    uses: github/checks
    with: {interval: 1s, timeout: 1m}
"""

WAIT = """\
version: 1
name: wait-for-ci
inputs:
  sha: {type: string, required: true}
steps:
  - id: ci
    uses: github/checks
    with: {sha: "{{ inputs.sha }}", interval: 1s, timeout: TIMEOUT}
"""

FEEDBACK = """\
version: 1
name: answer-feedback
inputs:
  pr: {type: integer, required: true}
  decisions: {type: string, required: true}
steps:
  - id: feedback
    uses: github/review-threads
    with: {pr: "{{ inputs.pr }}"}
  - id: reply
    if: steps.feedback.outputs.count != '0'
    uses: github/reply-threads
    with:
      pr: "{{ inputs.pr }}"
      decisions: "{{ inputs.decisions }}"
      commit: "{{ steps.feedback.outputs.head }}"
"""


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.delenv("GH_TOKEN", raising=False)


def run(
    cli: Cli, tmp_path: Path, github: GitHubServer, text: str, *extra: str
) -> tuple[CliResult, dict[str, StepRecord]]:
    path = write_pipeline(tmp_path, text)
    state = tmp_path / "state"
    result = cli(
        "run", str(path), "--repo", "octo/demo", "--api-url", github.api_url, "--state-dir", str(state), *extra
    )
    store = Store(state)
    try:
        steps = {step.step_id: step for step in store.steps(store.run("latest").id)}
    finally:
        store.close()
    return result, steps


def make_repo(github: GitHubServer) -> Repo:
    return github.create_repo("octo/demo", {"README.md": "# demo\n", "calc.py": CALC})


def test_a_push_as_the_app_then_waiting_for_its_check_run(
    cli: Cli, tmp_path: Path, github: GitHubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(github)
    app = github.register_app("pipe-app", ["octo/demo"])
    key = tmp_path / "app.pem"
    key.write_text(app.private_key)
    monkeypatch.delenv("GITHUB_TOKEN")  # the App's installation token is the only credential

    def ci() -> None:  # the repository's CI: a check run on each new head, done 3 s later
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and repo.sha("fix/add") is None:
            time.sleep(0.1)
        if repo.sha("fix/add") is not None:
            github.add_check_run("octo/demo", "fix/add", "tests", "success", seconds=3)

    watcher = threading.Thread(target=ci, daemon=True)
    watcher.start()
    started = time.monotonic()
    result, steps = run(
        cli, tmp_path, github, PUSH_AND_WAIT, "--github-app-id", str(app.id), "--github-app-key-file", str(key)
    )
    watcher.join(5)
    assert result.code == 0, result.out + result.err
    assert github.pushed_by("octo/demo", "refs/heads/fix/add") == "pipe-app[bot]"
    outputs = steps["ci"].outputs
    assert outputs["conclusion"] == "success" and steps["ci"].finished_at is not None
    assert steps["ci"].finished_at - (steps["ci"].started_at or 0) >= 1.5  # it waited for the run
    assert time.monotonic() - started >= 3
    (check,) = json.loads(outputs["checks"])
    assert (check["name"], check["kind"], check["conclusion"]) == ("tests", "check", "success")
    assert "x-access-token" not in result.out and "ghs_" not in result.out


def test_a_failing_check_fails_the_step_and_a_slow_one_times_out(
    cli: Cli, tmp_path: Path, github: GitHubServer
) -> None:
    repo = make_repo(github)
    head = repo.commit_to("fix/add", {"calc.py": FIXED}, "fix add")
    github.add_check_run("octo/demo", head, "tests", "failure", seconds=3)
    github.set_status("octo/demo", head, "success", "ci/lint")
    result, steps = run(cli, tmp_path, github, WAIT.replace("TIMEOUT", "1m"), "-i", f"sha={head}")
    assert result.code == 1
    assert steps["ci"].outputs["conclusion"] == "failure" and "failed: tests" in (steps["ci"].error or "")

    slow = repo.commit_to("slow", {"calc.py": FIXED}, "slow")
    github.add_check_run("octo/demo", slow, "tests", "success", seconds=600)
    result, steps = run(cli, tmp_path / "again", github, WAIT.replace("TIMEOUT", "3s"), "-i", f"sha={slow}")
    assert result.code == 1
    assert steps["ci"].outputs["conclusion"] == "timed_out" and "still running: tests" in steps["ci"].outputs["summary"]


def test_review_threads_and_replies_answer_two_inline_comments_once(
    cli: Cli, tmp_path: Path, github: GitHubServer
) -> None:
    repo = make_repo(github)
    head = repo.commit_to("fix/add", {"calc.py": FIXED}, "fix add")
    number = github._pull(repo, {"title": "Fix add", "head": "fix/add", "base": "main", "body": ""})["number"]
    comments = [
        {"path": "calc.py", "line": 2, "body": "Add a test for this."},
        {"path": "calc.py", "line": 6, "body": "Drop the comment."},
    ]
    github.review("octo/demo", number, "alice", "Please change", "REQUEST_CHANGES", comments)
    decisions = json.dumps(
        {
            "decisions": [
                {"thread": 1, "decision": "fix", "reason": ""},
                {"thread": 2, "decision": "decline", "reason": "The comment says why."},
            ]
        }
    )
    result, steps = run(cli, tmp_path, github, FEEDBACK, "-i", f"pr={number}", "-i", f"decisions={decisions}")
    assert result.code == 0, result.out + result.err
    assert steps["feedback"].outputs["count"] == "2" and steps["feedback"].outputs["round"] == "0"
    assert steps["reply"].outputs == {"replied": "2", "resolved": "1", "declined": "1", "human": "0"}
    first, second = github.review_threads("octo/demo", number)
    bodies = [[repo.review_comments[c].body for c in thread.comments] for thread in (first, second)]
    assert bodies[0][1].startswith(f"Fixed in {head}.") and first.resolved_by == "pipe-bot"
    assert bodies[1][1].startswith("The comment says why.") and second.resolved_by is None
    assert github.requested_reviewers("octo/demo", number) == ["alice"]

    result, steps = run(cli, tmp_path / "again", github, FEEDBACK, "-i", f"pr={number}", "-i", f"decisions={decisions}")
    assert result.code == 0, result.out + result.err
    assert steps["feedback"].outputs["count"] == "0" and steps["feedback"].outputs["round"] == "1"
    assert steps["reply"].conclusion == "skipped"
    assert [len(thread.comments) for thread in github.review_threads("octo/demo", number)] == [2, 2]
