"""The flagship pipelines end to end: the README's main job, issue-to-pr on a real project from
PyPI, pr-review, bug-triage and release-notes against the test GitHub server with the fake agent,
a simulated GitHub Actions job, and two release-notes runs at once."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.resources import data_path
from runner.store import Store
from tests.support.agents import agent_image
from tests.support.cli import Cli, CliResult
from tests.support.github import TOKEN
from tests.support.github_server import GitHubServer, Repo
from tests.support.pypi import sdist, tree_diff
from tests.support.trees import bare_origin, git_environment

pytestmark = pytest.mark.docker
PIPELINES = data_path("pipelines")


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)


def local_forge(root: Path, tree: Path, issues: dict[int, str]) -> Path:
    """A local forge whose repo.git holds `tree` on main, with issues (id -> markdown file text)."""
    forge = root / "forge"
    (forge / "issues").mkdir(parents=True)
    work = root / "work"
    shutil.copytree(tree, work)
    bare_origin(work, forge / "repo.git")
    for number, text in issues.items():
        (forge / "issues" / f"{number}.md").write_text(text)
    return forge


def records(state: Path) -> dict[str, Any]:
    """The local forge's records.json under `state`, as parsed JSON."""
    found: dict[str, Any] = json.loads(next((state / "forges").glob("*/records.json")).read_text())
    return found


def test_the_readme_main_job_completes(cli: Cli, tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = cli("demo", "--state-dir", str(state))
    assert result.code == 0, result.out + result.err
    shown = subprocess.run(
        ["git", f"--git-dir={state / 'demo/forge/repo.git'}", "show", "fix/issue-1:wordcount/__init__.py"],
        capture_output=True,
        text=True,
        check=True,
        env=git_environment(),
    ).stdout
    assert "return len(text.split())" in shown
    (pull,) = records(state)["pulls"].values()
    assert pull["head"] == "fix/issue-1" and pull["draft"] is True
    assert pull["body"].startswith("Fixes #1\n") and "✅ Tests: 4 passed, 0 failed" in pull["body"]
    comments = [c["body"] for c in records(state)["comments"] if c["issue"] == 1]
    assert any(body.startswith("I opened a draft pull request for this issue: ") for body in comments)
    assert "The fix is on branch fix/issue-1" in result.out


def test_issue_to_pr_applies_six_117_to_six_116_and_reports_its_real_tests(cli: Cli, tmp_path: Path) -> None:
    downloads = tmp_path / "pypi"
    downloads.mkdir()
    old, new = sdist("six", "1.16.0", downloads), sdist("six", "1.17.0", downloads)
    changes = (new / "CHANGES").read_text()
    entry = re.search(r"^1\.17\.0\n-+\n(.*?)\n\S+\n-+\n", changes, re.MULTILINE | re.DOTALL)
    assert entry is not None
    issue = (
        "---\nid: 1\ntitle: Release six 1.17.0\nlabels: [enhancement]\n---\n"
        f"## Requirements\n\nThe changes of 1.17.0:\n\n{entry.group(1).strip()}\n\n"
        f"## Proposed patch\n\n```diff\n{tree_diff(old, new)}```\n"
    )
    forge = local_forge(tmp_path, old, {1: issue})
    state = tmp_path / "state"
    result = cli(
        "run", str(PIPELINES / "issue-to-pr.yml"), "-i", "issue=1", "--forge-dir", str(forge), "--state-dir", str(state)
    )
    assert result.code == 0, result.out + result.err
    (pull,) = records(state)["pulls"].values()
    assert pull["head"] == "feature/issue-1"
    counts = re.search(r"✅ Tests: (\d+) passed, 0 failed", pull["body"])
    assert counts is not None, pull["body"]
    record = Store(state).run("latest")
    verify = next(s for s in Store(state).steps(record.id) if s.step_id == "verify")
    assert json.loads(verify.outputs["tests_counts"])["passed"] == int(counts.group(1)) > 150
    shown = subprocess.run(
        ["git", f"--git-dir={forge / 'repo.git'}", "show", "feature/issue-1:six.py"],
        capture_output=True,
        text=True,
        check=True,
        env=git_environment(),
    ).stdout
    assert '__version__ = "1.17.0"' in shown


def run_shipped(cli: Cli, tmp_path: Path, github: GitHubServer, pipeline: str, *args: str) -> CliResult:
    result = cli(
        "run",
        str(PIPELINES / pipeline),
        "--repo",
        "octo/demo",
        "--api-url",
        github.api_url,
        "--sandbox-image",
        agent_image(),
        "--state-dir",
        str(tmp_path / "state"),
        *args,
    )
    return result


def demo_repo(github: GitHubServer) -> Repo:
    return github.create_repo("octo/demo", {"calc.py": "def add(a, b):\n    return a - b\n", "README.md": "# demo\n"})


def test_pr_review_posts_a_review_that_requests_changes(cli: Cli, tmp_path: Path, github: GitHubServer) -> None:
    repo = demo_repo(github)
    work = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo.git_dir), str(work)], check=True, env=git_environment())
    (work / "calc.py").write_text("def add(a, b):\n    return a + b  # fixed\n")
    for argv in (
        ["git", "checkout", "-qb", "fix"],
        ["git", "commit", "-qam", "fix add"],
        ["git", "push", "-q", "origin", "fix"],
    ):
        subprocess.run(argv, cwd=work, check=True, env=git_environment())
    number = github.repos["octo/demo"].add_issue("x", "x")["number"]  # PRs and issues share numbers
    pull = github._pull(repo, {"title": "Fix add", "head": "fix", "base": "main", "body": "Fixes it"})
    assert pull["number"] == number + 1
    verdict = {
        "status": "changes_required",
        "summary": "Drop the comment.",
        "confidence": 0.8,
        "issues": [
            {
                "severity": "minor",
                "title": "Noise",
                "details": "The comment adds nothing.",
                "path": "calc.py",
                "line": 2,
            }
        ],
    }
    instructions = f"FORMAT codex\nRESULT\n```json\n{json.dumps(verdict)}\n```"
    result = run_shipped(
        cli,
        tmp_path,
        github,
        "pr-review.yml",
        "-i",
        f"pr={pull['number']}",
        "-i",
        "agent=fake-agent",
        "-i",
        f"instructions={instructions}",
    )
    assert result.code == 0, result.out + result.err
    (review,) = repo.reviews
    assert review["state"] == "CHANGES_REQUESTED" and review["body"].startswith("Drop the comment.")
    assert review["comments"] == [
        {"path": "calc.py", "line": 2, "body": "**minor**: Noise\n\nThe comment adds nothing."}
    ]


def test_bug_triage_labels_reproduces_and_comments(cli: Cli, tmp_path: Path, github: GitHubServer) -> None:
    repo = demo_repo(github)
    repo.add_issue("add() subtracts", "add(2, 3) is -1", ("bug",))
    repo.add_issue("Add a logo", "please", ("enhancement",))
    verdict = {
        "severity": "high",
        "area": "calc",
        "summary": "add() subtracts its arguments.",
        "reproduction": "python3 repro.py",
        "labels": ["confirmed"],
    }
    instructions = (
        "WRITE repro.py\n```\nfrom calc import add\nassert add(2, 3) == 5, add(2, 3)\n```\n"
        f"RESULT\n```json\n{json.dumps(verdict)}\n```"
    )
    for issue in (1, 2):
        result = run_shipped(
            cli,
            tmp_path,
            github,
            "bug-triage.yml",
            "-i",
            f"issue={issue}",
            "-i",
            "agent=fake-agent",
            "-i",
            f"instructions={instructions}",
        )
        assert result.code == 0, result.out + result.err
    assert [label["name"] for label in repo.issues[1]["labels"]] == ["bug", "severity:high", "area:calc", "confirmed"]
    (comment,) = repo.comments.values()
    assert comment["number"] == 1
    assert "severity **high**, area **calc**" in comment["body"]
    assert "Reproduced: `python3 repro.py` fails while the bug is there." in comment["body"]
    assert [label["name"] for label in repo.issues[2]["labels"]] == ["enhancement"]


def history_repo(github: GitHubServer, tmp_path: Path) -> Repo:
    repo = demo_repo(github)
    work = tmp_path / "history"
    environment = git_environment()
    subprocess.run(["git", "clone", "-q", str(repo.git_dir), str(work)], check=True, env=environment)
    subprocess.run(["git", "tag", "v1.0.0"], cwd=work, check=True, env=environment)
    for index, message in enumerate(
        [
            "feat(cli): add --json (#3)",
            "fix: crash on empty input (#4)",
            "feat!: drop Python 3.8\n\nBREAKING CHANGE: needs 3.9",
            "docs: fix a typo",
        ]
    ):
        (work / f"change{index}.txt").write_text(message)
        subprocess.run(["git", "add", "-A"], cwd=work, check=True, env=environment)
        subprocess.run(["git", "commit", "-qm", message], cwd=work, check=True, env=environment)
    subprocess.run(["git", "push", "-q", "--tags", "origin", "main"], cwd=work, check=True, env=environment)
    return repo


def test_release_notes_drafts_one_release_and_updates_it(cli: Cli, tmp_path: Path, github: GitHubServer) -> None:
    repo = history_repo(github, tmp_path)
    first = run_shipped(cli, tmp_path, github, "release-notes.yml")
    assert first.code == 0, first.out + first.err
    (release,) = repo.releases.values()
    assert (release["tag_name"], release["draft"]) == ("v2.0.0", True)
    body = release["body"]
    assert body.startswith("## What's changed since v1.0.0\n\n### ⚠️ Breaking changes\n\n- drop Python 3.8 by t")
    assert body.index("### ⚠️ Breaking changes") < body.index("### Features") < body.index("### Bug fixes")
    assert "- **cli**: add --json (#3) by t" in body and "- crash on empty input (#4) by t" in body
    assert "### Documentation" in body and "4 commit(s)." in body
    second = run_shipped(cli, tmp_path, github, "release-notes.yml")
    assert second.code == 0, second.out + second.err
    assert len(repo.releases) == 1 and github.count("POST", r"/releases$") == 1


def test_two_release_notes_runs_at_once_make_one_draft(tmp_path: Path, github: GitHubServer) -> None:
    repo = history_repo(github, tmp_path)
    argv = [
        sys.executable,
        "-m",
        "runner",
        "run",
        str(PIPELINES / "release-notes.yml"),
        "--repo",
        "octo/demo",
        "--api-url",
        github.api_url,
        "--state-dir",
        str(tmp_path / "state"),
    ]
    processes = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert len(repo.releases) == 1
    first, second = sorted(Store(tmp_path / "state").runs(), key=lambda run: run.started_at or 0)
    assert first.finished_at is not None and second.started_at is not None
    assert second.started_at >= first.finished_at, "the group kept the two runs apart"


def test_a_simulated_github_actions_job(
    cli: Cli, tmp_path: Path, github: GitHubServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    demo_repo(github).add_issue("Something", "body", ())
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps({"action": "labeled", "issue": {"number": 1}, "repository": {"full_name": "octo/demo"}})
    )
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs.txt"
    secret = "sk-live-VerySecretValue-123456"
    for name, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(outputs),
        "API_KEY": secret,
    }.items():
        monkeypatch.setenv(name, value)
    pipeline = tmp_path / "actions.yml"
    pipeline.write_text(
        "version: 1\nname: actions\ninputs: {issue: {type: integer, required: true}}\n"
        "secrets: {API_KEY: {}}\ncredentials: [github]\nsandbox: {network: none}\nsteps:\n"
        "  - id: read\n    uses: github/issue\n    with: {number: '{{ inputs.issue }}'}\n"
        "  - id: use\n    env: {KEY: '{{ secrets.API_KEY }}'}\n"
        '    run: echo "issue {{ inputs.issue }} key $KEY token $GITHUB_TOKEN"\n'
        "  - id: boom\n    continue-on-error: true\n    run: exit 7\n"
    )
    result = cli("run", str(pipeline), "--api-url", github.api_url, "--state-dir", str(tmp_path / "state"))
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    masks = [line for line in lines if line.startswith("::add-mask::")]
    assert f"::add-mask::{secret}" in masks and f"::add-mask::{TOKEN}" in masks
    assert "::group::use: use" in lines and lines.count("::endgroup::") == 3
    assert "  use | issue 1 key *** token ***" in lines
    assert "::warning title=pipe%3A step boom failed::exited with code 7" in lines
    for line in lines:
        if not line.startswith("::add-mask::"):
            assert secret not in line and TOKEN not in line
    record = Store(tmp_path / "state").run("latest")
    assert outputs.read_text() == f"run-id={record.id}\nstatus=succeeded\npull-request=\n"
    text = summary.read_text()
    assert text.startswith(f"### pipe run `{record.id}`: succeeded") and "| `boom` | ❌ failure | success | 1 |" in text
