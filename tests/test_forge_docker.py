"""Git and GitHub actions for real: sandboxes clone and push over smart HTTP to the test GitHub
server, forge writes stay idempotent under faults, rollback undoes them, and the local forge runs
the same flow with no token at all."""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from pathlib import Path

import pytest

from runner.store import RunRecord, Store
from tests.support.cli import Cli, CliResult
from tests.support.github import TOKEN
from tests.support.github_server import GitHubServer, Repo
from tests.support.pipelines import write_pipeline
from tests.support.records import present
from tests.support.trees import git_environment

pytestmark = pytest.mark.docker

FLOW = """\
version: 1
name: fix-issue
inputs:
  issue: {type: integer, required: true}
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
    run: |
      sed -i 's/a - b/a + b/' calc.py
      echo "run {{ run.id }}" >> notes.txt
  - id: commit
    uses: git/commit
    with: {message: "Fix #{{ inputs.issue }}: {{ steps.issue.outputs.title }}"}
  - id: push
    uses: git/push
  - id: pr
    uses: github/pull-request
    with:
      title: "Fix #{{ inputs.issue }}: {{ steps.issue.outputs.title }}"
      body: "Fixes #{{ inputs.issue }}"
      labels: [pipe]
  - id: comment
    uses: github/comment
    with: {issue: "{{ inputs.issue }}", body: "Opened {{ steps.pr.outputs.url }}"}
"""


def make_repo(github: GitHubServer) -> Repo:
    repo = github.create_repo("octo/demo", {"README.md": "# demo\n", "calc.py": "def add(a, b):\n    return a - b\n"})
    repo.add_issue("add() subtracts", "`add(2, 3)` returns -1.", ("bug",))
    return repo


def run_flow(
    cli: Cli, tmp_path: Path, github: GitHubServer, text: str = FLOW, *extra: str
) -> tuple[CliResult, RunRecord]:
    path = write_pipeline(tmp_path, text)
    result = cli(
        "run",
        str(path),
        "-i",
        "issue=1",
        "--repo",
        "octo/demo",
        "--api-url",
        github.api_url,
        "--state-dir",
        str(tmp_path / "state"),
        *extra,
    )
    return result, Store(tmp_path / "state").run("latest")


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.delenv("GH_TOKEN", raising=False)


def test_issue_to_pr_over_smart_http_leaves_the_token_nowhere(cli: Cli, tmp_path: Path, github: GitHubServer) -> None:
    repo = make_repo(github)
    result, record = run_flow(cli, tmp_path, github)
    assert result.code == 0, result.out + result.err
    assert repo.sha("fix/issue-1") is not None and repo.sha("main") != repo.sha("fix/issue-1")
    assert repo.git("show", "fix/issue-1:calc.py") == "def add(a, b):\n    return a + b\n"
    (pull,) = repo.pulls.values()
    assert (pull["head"]["ref"], pull["base"]["ref"], pull["draft"]) == ("fix/issue-1", "main", True)
    assert [label["name"] for label in pull["labels"]] == ["pipe"]
    bodies = [c["body"] for c in repo.comments.values()]
    assert any(b.startswith(f"Opened {pull['html_url']}") for b in bodies)
    progress = next(b for b in bodies if b.startswith("### pipe: fix-issue"))
    assert "(succeeded)" in progress and "- [x] ✅ `push` success" in progress
    assert f"Pull request: {pull['html_url']}" in progress
    workspace = Path(record.workspace)
    assert "x-access-token" not in (workspace / ".git" / "config").read_text()
    for root in (workspace, tmp_path / "state"):
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert TOKEN.encode() not in path.read_bytes(), path
    assert TOKEN not in result.out


def test_a_second_run_and_a_resume_update_instead_of_duplicating(
    cli: Cli, tmp_path: Path, github: GitHubServer
) -> None:
    repo = make_repo(github)
    assert run_flow(cli, tmp_path, github)[0].code == 0
    first_sha = present(repo.sha("fix/issue-1"), "fix/issue-1")
    second, _ = run_flow(cli, tmp_path, github)
    assert second.code == 0, second.out + second.err
    assert len(repo.pulls) == 1 and len(repo.comments) == 2
    assert repo.git("rev-list", "--count", "fix/issue-1") == "3\n", "the second run continued the branch"
    assert repo.git("merge-base", "--is-ancestor", first_sha, "fix/issue-1") == ""
    third, record = run_flow(cli, tmp_path, github, FLOW + "  - id: boom\n    run: exit 1\n")
    assert third.code == 1
    resumed = cli("resume", record.id, "--from", "pr", "--state-dir", str(tmp_path / "state"))
    assert resumed.code == 1  # boom fails again, after pr and comment ran again
    assert len(repo.pulls) == 1 and len(repo.comments) == 2
    assert github.count("POST", r"/pulls$") == 1


def test_a_502_after_the_pull_request_was_made_leaves_exactly_one(
    cli: Cli, tmp_path: Path, github: GitHubServer
) -> None:
    repo = make_repo(github)
    github.fail("POST", r"/repos/octo/demo/pulls$", 502, after=True)
    result, _ = run_flow(cli, tmp_path, github)
    assert result.code == 0, result.out + result.err
    assert len(repo.pulls) == 1
    assert github.count("POST", r"/pulls$") == 1


def test_a_rate_limit_with_retry_after_waits_then_succeeds(cli: Cli, tmp_path: Path, github: GitHubServer) -> None:
    repo = make_repo(github)
    text = FLOW.replace('report: {issue-comment: {issue: "{{ inputs.issue }}", interval: 1s}}\n', "")
    github.fail("POST", r"/issues/1/comments$", 403, headers={"retry-after": "2"})
    result, record = run_flow(cli, tmp_path, github, text)
    assert result.code == 0, result.out + result.err
    attempt = next(a for a in Store(tmp_path / "state").attempts(record.id) if a.step_id == "comment")
    assert present(attempt.finished_at) - attempt.started_at >= 2.0
    assert len(repo.comments) == 1


def test_progress_edits_stay_within_the_rate(cli: Cli, tmp_path: Path, github: GitHubServer) -> None:
    make_repo(github)
    steps = "".join(f"  - id: quick{i}\n    run: sleep 0.1\n" for i in range(12))
    text = f"""\
version: 1
name: quick
inputs: {{issue: {{type: integer}}}}
report: {{issue-comment: {{issue: "{{{{ inputs.issue }}}}", interval: 1s}}}}
sandbox: {{network: none}}
steps:
{steps}"""
    started = time.monotonic()
    result, _ = run_flow(cli, tmp_path, github, text)
    elapsed = time.monotonic() - started
    assert result.code == 0, result.out + result.err
    writes = [
        r
        for r in github.requests
        if r.path.startswith("/api/v3/repos/octo/demo/issues/")
        and (r.method == "PATCH" or (r.method == "POST" and r.path.endswith("/comments")))
    ]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(writes)]
    assert len(writes) <= elapsed / 1.0 + 2, (len(writes), elapsed)
    assert all(gap >= 0.9 for gap in gaps[:-1]), gaps  # the last is the final edit, made at once
    (comment,) = [c for c in github.repos["octo/demo"].comments.values()]
    assert comment["body"].count("✅") == 12 and "(succeeded)" in comment["body"]


def test_push_to_the_default_branch_is_refused(cli: Cli, tmp_path: Path, github: GitHubServer) -> None:
    repo = make_repo(github)
    main = repo.sha("main")
    text = FLOW.replace("    uses: git/push\n", "    uses: git/push\n    with: {branch: main}\n")
    result, record = run_flow(cli, tmp_path, github, text)
    assert result.code == 1
    push = next(s for s in Store(tmp_path / "state").steps(record.id) if s.step_id == "push")
    assert push.error == "git/push: main is the repository's default branch; nothing was pushed"
    assert repo.sha("main") == main and github.count("POST", r"git-receive-pack") == 0


def test_sync_against_conflicting_changes_lists_them_and_keeps_the_branch(
    cli: Cli, tmp_path: Path, github: GitHubServer
) -> None:
    repo = make_repo(github)
    text = """\
version: 1
name: sync
inputs: {issue: {type: integer}}
credentials: [github]
steps:
  - id: checkout
    uses: git/checkout
    with: {branch: feature/x, ref: old}
  - id: edit
    run: printf 'def add(a, b):\\n    return b + a\\n' > calc.py
  - id: commit
    uses: git/commit
    with: {message: mine}
  - id: sync
    uses: git/sync
    with: {base: main}
  - id: after
    if: always()
    run: git rev-parse HEAD > head.txt && git status --porcelain --untracked-files=no > status.txt
"""
    repo.git("branch", "old", "main")
    work = tmp_path / "upstream"
    environment = git_environment()
    subprocess.run(["git", "clone", "-q", str(repo.git_dir), str(work)], check=True, env=environment)
    (work / "calc.py").write_text("def add(a, b):\n    return a.__add__(b)\n")
    subprocess.run(["git", "commit", "-qam", "upstream"], cwd=work, check=True, env=environment)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=work, check=True, env=environment)
    result, record = run_flow(cli, tmp_path, github, text)
    assert result.code == 1
    store = Store(tmp_path / "state")
    steps = {s.step_id: s for s in store.steps(record.id)}
    assert steps["sync"].error == "git/sync: conflicts with main in calc.py; the branch was left as it was"
    assert steps["sync"].outputs["conflicts"] == "calc.py"
    workspace = Path(record.workspace)
    assert (workspace / "head.txt").read_text().strip() == steps["commit"].outputs["sha"]
    assert (workspace / "status.txt").read_text() == ""


def test_the_same_flow_on_a_local_forge_needs_no_token(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    source = tmp_path / "src"
    source.mkdir()
    (source / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    environment = git_environment()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=source, check=True, env=environment)
    subprocess.run(["git", "add", "-A"], cwd=source, check=True, env=environment)
    subprocess.run(["git", "commit", "-qm", "initial"], cwd=source, check=True, env=environment)
    forge = tmp_path / "forge"
    (forge / "issues").mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(forge / "repo.git")], check=True, env=environment)
    (forge / "issues" / "1.md").write_text("---\nid: 1\ntitle: add() subtracts\nlabels: [bug]\n---\nIt subtracts.\n")
    path = write_pipeline(tmp_path, FLOW.replace("\nsteps:", "\nsandbox: {network: none}\nsteps:"))
    result = cli("run", str(path), "-i", "issue=1", "--forge-dir", str(forge), "--state-dir", str(tmp_path / "state"))
    assert result.code == 0, result.out + result.err
    shown = subprocess.run(
        ["git", f"--git-dir={forge / 'repo.git'}", "show", "fix/issue-1:calc.py"],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    ).stdout
    assert shown == "def add(a, b):\n    return a + b\n"
    records = next((tmp_path / "state" / "forges").glob("*/records.json")).read_text()
    assert '"head": "fix/issue-1"' in records and "Opened file://" in records and "### pipe: fix-issue" in records


def test_no_publish_runs_everything_but_writes_nothing(cli: Cli, tmp_path: Path, github: GitHubServer) -> None:
    repo = make_repo(github)
    result, _ = run_flow(cli, tmp_path, github, FLOW, "--no-publish")
    assert result.code == 0, result.out + result.err
    writes = [r for r in github.requests if r.method in ("POST", "PATCH", "DELETE") and "git-upload-pack" not in r.path]
    assert writes == []  # fetching (git-upload-pack) reads; pushing would be git-receive-pack
    assert repo.sha("fix/issue-1") is None and repo.pulls == {} and repo.comments == {}
    assert "--no-publish: would push" in result.out
    assert (
        "--no-publish: would open or update the pull request fix/issue-1 -> main: Fix #1: add() subtracts" in result.out
    )
    assert "--no-publish: would comment on #1:" in result.out


def test_hard_rollback_deletes_the_branch_closes_the_pr_and_deletes_comments(
    cli: Cli, tmp_path: Path, github: GitHubServer
) -> None:
    repo = make_repo(github)
    result, record = run_flow(cli, tmp_path, github)
    assert result.code == 0, result.out + result.err
    assert repo.comments and repo.sha("fix/issue-1")
    rollback = cli("rollback", record.id, "--hard", "--state-dir", str(tmp_path / "state"))
    assert rollback.code == 0, rollback.out + rollback.err
    assert repo.sha("fix/issue-1") is None
    assert [p["state"] for p in repo.pulls.values()] == ["closed"]
    assert repo.comments == {}
    assert [label["name"] for label in repo.issues[1]["labels"]] == ["bug"]


APPROVAL = """\
version: 1
name: gated
inputs: {issue: {type: integer}}
sandbox: {network: none}
steps:
  - id: gate
    uses: wait/approval
    with: {issue: "{{ inputs.issue }}", approvers: [maintainer], prompt: "Go ahead?", poll-for: POLL, poll-every: 0.2s}
  - id: after
    run: |
      by={{ steps.gate.outputs.by }} comment={{ steps.gate.outputs.comment }}
      echo "approved by $by: $comment"
"""


def test_an_approve_comment_by_an_approver_decides_while_polling(
    cli: Cli, tmp_path: Path, github: GitHubServer
) -> None:
    make_repo(github)

    def comment_later() -> None:
        time.sleep(1.0)
        github.comment_as("octo/demo", 1, "/approve from a stranger", "stranger")
        time.sleep(0.5)
        github.comment_as("octo/demo", 1, "/approve looks good", "maintainer")

    thread = threading.Thread(target=comment_later)
    thread.start()
    result, _ = run_flow(cli, tmp_path, github, APPROVAL.replace("POLL", "20s"))
    thread.join()
    assert result.code == 0, result.out + result.err
    assert "after | approved by maintainer: looks good" in result.out
    asked = [c["body"] for c in github.repos["octo/demo"].comments.values() if "waiting for approval" in c["body"]]
    assert len(asked) == 1 and "Go ahead?" in asked[0]


def test_a_reject_comment_is_seen_by_resume(cli: Cli, tmp_path: Path, github: GitHubServer) -> None:
    make_repo(github)
    result, record = run_flow(cli, tmp_path, github, APPROVAL.replace("POLL", "0s"))
    assert result.code == 3
    github.comment_as("octo/demo", 1, "/reject not this week", "maintainer")
    resumed = cli("resume", record.id, "--state-dir", str(tmp_path / "state"))
    assert resumed.code == 1
    gate = next(s for s in Store(tmp_path / "state").steps(record.id) if s.step_id == "gate")
    assert gate.error == "rejected by maintainer: not this week"
