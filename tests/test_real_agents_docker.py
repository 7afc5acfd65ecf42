"""The real coding-agent CLIs (Claude Code, Codex, aider from their registries, at the versions
runner/agents/ pins) through `pipe run pipelines/issue-to-pr.yml -i agent=NAME` on a local forge.
Each CLI talks to tests/support/fake_model.py, started inside the sandbox on 127.0.0.1 by the
image's wrapper, so the model steps run with no network; the fake model reads its script from the
issue text, so a fix proves the prompt arrived, and it edits with each CLI's own tools.

The image is built once per content (tests/support/agents.real_agent_image: about 5 minutes the
first time on this machine, then reused)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.egress.keys import PLACEHOLDER
from runner.resources import data_path
from runner.store import RunRecord, Store
from tests.support.agents import real_agent_image
from tests.support.cli import Cli, CliResult
from tests.support.fake_model import requests
from tests.support.pipelines import write_pipeline
from tests.support.trees import bare_origin, git_environment, git_repository

pytestmark = pytest.mark.docker
PIPELINE = str(data_path("pipelines") / "issue-to-pr.yml")
PROJECT = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
    "pyproject.toml": "[project]\nname = 'calc'\nversion = '0'\n",
}
TITLE = "add() subtracts its arguments"


def script(**extra: object) -> str:
    found = {"file": "calc.py", "old": "    return a - b", "new": "    return a + b", "summary": "add() now adds."}
    return "FAKE-MODEL " + json.dumps({**found, **extra})


def forge(root: Path, **extra: object) -> Path:
    """A local forge: repo.git with the buggy project on main, issue 1 carrying the model's script."""
    work, place = root / "work", root / "forge"
    for name, text in PROJECT.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    (place / "issues").mkdir(parents=True)
    bare_origin(work, place / "repo.git")
    body = f"## Description\n\n`add(2, 3)` gives -1, it must give 5.\n\n{script(**extra)}\n"
    (place / "issues" / "1.md").write_text(f"---\nid: 1\ntitle: {TITLE}\nlabels: [bug]\n---\n{body}")
    return place


def run(cli: Cli, root: Path, agent: str, *args: str, **extra: object) -> tuple[CliResult, Store, RunRecord, Path]:
    place = forge(root, **extra)
    state = root / "state"
    result = cli(
        "run", PIPELINE, "-i", "issue=1", "-i", f"agent={agent}", "--forge-dir", str(place),
        "--state-dir", str(state), "--sandbox-image", real_agent_image(), *args,
    )  # fmt: skip
    store = Store(state)
    record = store.run("latest")
    return result, store, record, place


def git(place: Path, *args: str) -> str:
    command = ["git", f"--git-dir={place / 'repo.git'}", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True, env=git_environment()).stdout


def pull(state: Path) -> dict[str, Any]:
    records = json.loads(next((state / "forges").glob("*/records.json")).read_text())
    found: dict[str, Any]
    (found,) = records["pulls"].values()
    return found


def seen(cli: Cli, record_id: str, state: Path) -> list[dict[str, Any]]:
    shown = cli("logs", record_id, "implement", "--state-dir", str(state))
    return requests(shown.out)


@pytest.mark.parametrize("agent", ["claude", "codex", "aider", "opencode"])
def test_issue_to_pr_with_the_real_cli(cli: Cli, tmp_path: Path, agent: str) -> None:
    result, store, record, place = run(cli, tmp_path, agent)
    assert result.code == 0, result.out + result.err
    asked = seen(cli, record.id, tmp_path / "state")
    assert any(TITLE in entry.get("text", "") and "gives -1" in entry.get("text", "") for entry in asked), asked
    assert git(place, "diff", "--name-only", "main", "fix/issue-1").split() == ["calc.py"]
    assert "return a + b" in git(place, "show", "fix/issue-1:calc.py")
    assert git(place, "log", "--format=%an", "main..fix/issue-1").split("\n")[0] != "Your Name"
    body = pull(tmp_path / "state")["body"]
    assert "add() now adds." in body and "✅ Tests: 1 passed, 0 failed" in body, body
    implement = next(s for s in store.steps(record.id) if s.step_id == "implement")
    assert int(implement.outputs["turns"]) >= 1
    if agent != "opencode":  # opencode keeps its sessions in a database: its JSON events are the log
        kept = cli("logs", record.id, "implement", "--transcript", "--state-dir", str(tmp_path / "state"))
        assert kept.code == 0 and "=== round 1" in kept.out and TITLE in kept.out, kept.out[-2000:]
    shown = cli("show", record.id, "--state-dir", str(tmp_path / "state")).out
    assert "  agents: " in shown and "turn(s) in 1 agent step(s)" in shown
    if agent in ("claude", "aider", "opencode"):  # codex reports tokens, not cost
        assert float(implement.outputs["cost_usd"]) > 0
        assert "cost $" in body and "  agents: $" in shown


def test_a_key_given_as_secret_never_reaches_the_agent(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key stays in the run's key proxy (issue 14): the agent, here talking to the model the
    image's wrapper starts inside the sandbox, holds only the placeholder."""
    key = "sk-ant-test-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:24]
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    # the agent prints its key into its own session: it only ever had the placeholder
    result, _, record, place = run(cli, tmp_path, "claude", bash='echo "the key is $ANTHROPIC_API_KEY"')
    assert result.code == 0, result.out + result.err
    state = tmp_path / "state"
    kept = cli("logs", record.id, "implement", "--transcript", "--state-dir", str(state)).out
    assert f"the key is {PLACEHOLDER}" in kept and key not in kept
    asked = seen(cli, record.id, state)
    assert {entry.get("key_sha256") for entry in asked} == {hashlib.sha256(PLACEHOLDER.encode()).hexdigest()}
    for path in state.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    shown = cli("show", record.id, "--state-dir", str(state))
    assert key not in shown.out + shown.err and key not in result.out + result.err
    assert key not in git(place, "log", "-p", "--all")
    assert key not in json.dumps(record.inputs)


@pytest.mark.parametrize("agent", ["claude", "codex"])
def test_an_invalid_answer_is_asked_again_in_the_same_session(cli: Cli, tmp_path: Path, agent: str) -> None:
    result, store, record, _ = run(cli, tmp_path, agent, invalid_first=True)
    assert result.code == 0, result.out + result.err
    implement = next(s for s in store.steps(record.id) if s.step_id == "implement")
    assert implement.outputs["rounds"] == "2"
    asked = [entry for entry in seen(cli, record.id, tmp_path / "state") if "FAKE-MODEL" in entry.get("text", "")]
    last = asked[-1]
    assert "did not match the required JSON schema" in last["text"]
    assert "Done, I think." in last["text"]  # the first session's answer: the conversation continued
    assert last["items"] > asked[0]["items"]


def test_an_agents_own_commit_is_folded_into_pipes_commit(cli: Cli, tmp_path: Path) -> None:
    result, _, _, place = run(cli, tmp_path, "claude", commit=True)
    assert result.code == 0, result.out + result.err
    assert git(place, "diff", "--name-only", "main", "fix/issue-1").split() == ["calc.py"]
    authors = git(place, "log", "--format=%an <%ae>|%s", "main..fix/issue-1").splitlines()
    assert len(authors) == 1 and "Your Name" not in authors[0] and authors[0].endswith(f"|Fix #1: {TITLE}")


def test_an_agent_cannot_make_pipe_read_or_remove_host_files_through_its_state(cli: Cli, tmp_path: Path) -> None:
    """Attack: the agent points its transcript file, and its state directory, at files of the host;
    pipe keeps transcripts and tidies `.pipe-agent/` on the host, so it must follow no link."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret.txt").write_text("HOST-ONLY-CONTENT\n")
    (host / "session.jsonl").write_text("HOST-ONLY-CONTENT\n")
    attack = (
        'mkdir -p "$HOME/.claude/projects/evil" && '
        f'ln -s {host / "secret.txt"} "$HOME/.claude/projects/evil/stolen.jsonl" && '
        f'ln -s {host} "$HOME/.claude/projects/linked" && ln -s {host} .pipe-agent/hostdir'
    )
    result, _, record, place = run(cli, tmp_path, "claude", bash=attack)
    assert result.code == 0, result.out + result.err
    kept = cli("logs", record.id, "implement", "--transcript", "--state-dir", str(tmp_path / "state"))
    assert kept.code == 0 and TITLE in kept.out
    assert "HOST-ONLY-CONTENT" not in kept.out
    assert sorted(p.name for p in host.iterdir()) == ["secret.txt", "session.jsonl"]
    assert git(place, "diff", "--name-only", "main", "fix/issue-1").split() == ["calc.py"]


def test_housekeeping_anywhere_is_dropped_but_never_hides_a_protected_path(cli: Cli, tmp_path: Path) -> None:
    made = "mkdir -p tests/.claude && echo '{}' > tests/.claude/settings.local.json"
    result, _, _, place = run(cli, tmp_path / "drop", "claude", bash=made)
    assert result.code == 0, result.out + result.err
    assert git(place, "diff", "--name-only", "main", "fix/issue-1").split() == ["calc.py"]
    hidden = "mkdir -p .github/workflows/.claude && echo 'on: push' > .github/workflows/.claude/evil.yml"
    result, store, record, _ = run(cli, tmp_path / "hide", "claude", bash=hidden)
    implement = next(s for s in store.steps(record.id) if s.step_id == "implement")
    assert result.code == 1 and implement.error is not None
    assert "touched protected paths: .github/workflows/.claude/evil.yml" in implement.error


def test_a_budget_overrun_stops_the_step_and_keeps_its_changes(cli: Cli, tmp_path: Path) -> None:
    result, store, record, _ = run(cli, tmp_path, "claude", "-i", "max-cost-usd=1", usage=300_000)
    assert result.code == 1
    implement = next(s for s in store.steps(record.id) if s.step_id == "implement")
    assert implement.error is not None and "more than max-cost-usd $1" in implement.error, implement.error
    changed = {c.target for c in store.changes(record.id) if c.step_id == "implement"}
    assert "calc.py" in changed
    first, second = [a for a in store.attempts(record.id) if a.step_id == "implement"]
    assert first.error is not None and first.error.startswith("agent stopped: it cost $")
    assert second.error is not None and second.error.startswith("agent not started: the step's earlier attempts")
    assert len([e for e in seen(cli, record.id, tmp_path / "state") if "FAKE-MODEL" in e.get("text", "")]) == 3


def test_a_named_agent_missing_from_the_image_says_what_to_run(cli: Cli, tmp_path: Path) -> None:
    place = forge(tmp_path)
    result = cli(
        "run", PIPELINE, "-i", "issue=1", "-i", "agent=claude", "--forge-dir", str(place),
        "--state-dir", str(tmp_path / "state"),
    )  # fmt: skip
    assert result.code == 2
    assert "pipe image build --agent claude" in result.out + result.err


ONE_STEP = """\
version: 1
name: agent-starts
sandbox: {image: IMAGE, network: none}
steps:
  - id: implement
    uses: agent
    credentials: []
    with:
      command: NAME
      output-schema: agent-result.schema.json
      prompt: |
        Fix add() in calc.py: TITLE.
        SCRIPT
"""


def test_gemini_starts_in_the_image_receives_the_prompt_and_its_answer_is_read(cli: Cli, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    git_repository(workspace, PROJECT)
    text = ONE_STEP.replace("IMAGE", real_agent_image()).replace("NAME", "gemini").replace("TITLE", TITLE)
    path = write_pipeline(tmp_path, text.replace("SCRIPT", script()))
    state = tmp_path / "state"
    result = cli("run", str(path), "--workspace", str(workspace), "--state-dir", str(state))
    assert result.code == 0, result.out + result.err
    record = Store(state).run("latest")
    (step,) = Store(state).steps(record.id)
    assert step.outputs["summary"] == "add() now adds." and int(step.outputs["rounds"]) == 1
    asked = seen(cli, record.id, state)
    assert any(f"Fix add() in calc.py: {TITLE}." in entry.get("text", "") for entry in asked), asked
    assert not (workspace / ".pipe-agent").exists() and not (workspace / ".gemini").exists()


def test_max_turns_bounds_claude_and_its_error_fails_the_step(cli: Cli, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    git_repository(workspace, PROJECT)
    text = ONE_STEP.replace("IMAGE", real_agent_image()).replace("NAME", "claude").replace("TITLE", TITLE)
    text = text.replace("      output-schema:", "      max-turns: 1\n      output-schema:")
    path = write_pipeline(tmp_path, text.replace("SCRIPT", script()))
    result = cli("run", str(path), "--workspace", str(workspace), "--state-dir", str(tmp_path / "state"))
    assert result.code == 1
    (step,) = Store(tmp_path / "state").steps(Store(tmp_path / "state").run("latest").id)
    assert step.error is not None and step.error.startswith("agent failed: claude reported an error (error_max_turns")
    assert step.outputs["turns"] == "2"
