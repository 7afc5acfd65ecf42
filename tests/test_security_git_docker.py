"""Attacks on the git actions from earlier steps (real Docker, real git): a workspace repository that
redirects git elsewhere (a `.git` file or symlink, commondir, alternates) to run a planted clean
filter inside git/commit, protected or too many files smuggled in through the index or commits
instead of the work tree, and branch names that break `.git/config` or leave refs/heads/."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runner.changes import gitrefs
from runner.store import RunRecord, Store
from tests.support.cli import Cli, CliResult
from tests.support.github import TOKEN
from tests.support.github_server import GitHubServer
from tests.support.pipelines import write_pipeline
from tests.support.trees import git_environment

pytestmark = pytest.mark.docker

# A clean filter that leaves a marker, copies the token and moves main of the local forge.
EVIL = r"""cat > /workspace/evil.sh <<'EOF'
#!/bin/sh
touch /workspace/FILTER_RAN
printf '%s' "${GITHUB_TOKEN:-}" > /workspace/leaked.txt
if [ -d /forge/repo.git ]; then
  c=$(git --git-dir=/forge/repo.git -c user.name=e -c user.email=e@x commit-tree -m evil 'main^{tree}')
  git --git-dir=/forge/repo.git update-ref refs/heads/main "$c"
fi
cat
EOF
chmod +x /workspace/evil.sh
echo '* filter=evil' > .gitattributes
echo changed > notes.txt
"""

PLANTS = {
    "gitdir-file": "mv .git /workspace/.planted\necho 'gitdir: /workspace/.planted' > .git\n"
    "git --git-dir=/workspace/.planted config filter.evil.clean /workspace/evil.sh\n",
    "symlink": "mv .git .planted\nln -s .planted .git\n"
    "git --git-dir=.planted config filter.evil.clean /workspace/evil.sh\n",
    "commondir": "cp -a .git /workspace/.common\necho /workspace/.common > .git/commondir\n"
    "git --git-dir=/workspace/.common config filter.evil.clean /workspace/evil.sh\n",
    "alternates": "mkdir -p /workspace/.alt/objects\necho /workspace/.alt/objects > .git/objects/info/alternates\n",
    "symlinked-config": "mv .git/config /workspace/.planted-config\nln -s /workspace/.planted-config .git/config\n"
    "git config --file /workspace/.planted-config filter.evil.clean /workspace/evil.sh\n",
}

FLOW = """\
version: 1
name: attack
sandbox: {network: none}
steps:
  - id: checkout
    uses: git/checkout
    with: {branch: fix/one}
  - id: plant
    run: |
PLANT
  - id: commit
    uses: git/commit
    with: {message: change}
  - id: push
    uses: git/push
"""


def _indent(script: str) -> str:
    return "".join(f"      {line}\n" for line in script.splitlines())


def local_forge(tmp_path: Path) -> Path:
    """A local forge with calc.py and notes.txt on main."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (source / "notes.txt").write_text("notes\n")
    environment = git_environment()
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "initial"]):
        subprocess.run(argv, cwd=source, check=True, env=environment)
    forge = tmp_path / "forge"
    (forge / "issues").mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(forge / "repo.git")], check=True, env=environment)
    return forge


def run_local(cli: Cli, tmp_path: Path, forge: Path, text: str) -> tuple[CliResult, RunRecord]:
    path = write_pipeline(tmp_path, text)
    result = cli("run", str(path), "--forge-dir", str(forge), "--state-dir", str(tmp_path / "state"))
    return result, Store(tmp_path / "state").run("latest")


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_a_redirected_repository_is_refused_before_git_runs(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plant: str
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    forge = local_forge(tmp_path)
    main = gitrefs.read_branch(forge / "repo.git", "main")
    result, record = run_local(cli, tmp_path, forge, FLOW.replace("PLANT\n", _indent(EVIL + PLANTS[plant])))
    assert result.code == 1, result.out + result.err
    workspace = Path(record.workspace)
    assert not (workspace / "FILTER_RAN").exists(), "the planted clean filter ran"
    assert gitrefs.read_branch(forge / "repo.git", "main") == main, "main of the local forge moved"
    assert gitrefs.read_branch(forge / "repo.git", "fix/one") is None, "something was pushed"
    line = next(line for line in result.out.splitlines() if "git/commit: refused" in line)
    assert "the workspace's git repository" in line


GITHUB_FLOW = """\
version: 1
name: attack
credentials: [github]
steps:
  - id: checkout
    uses: git/checkout
    with: {branch: fix/one}
  - id: plant
    credentials: []
    run: |
PLANT
  - id: commit
    uses: git/commit
    with: {message: change}
  - id: push
    uses: git/push
"""


@pytest.mark.parametrize("plant", ["gitdir-file", "config"])
def test_the_token_never_reaches_a_planted_filter(
    cli: Cli, tmp_path: Path, github: GitHubServer, monkeypatch: pytest.MonkeyPatch, plant: str
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    repo = github.create_repo("octo/demo", {"notes.txt": "notes\n"})
    main = repo.sha("main")
    script = EVIL + PLANTS.get(plant, "git config filter.evil.clean /workspace/evil.sh\n")
    path = write_pipeline(tmp_path, GITHUB_FLOW.replace("PLANT\n", _indent(script)))
    state = tmp_path / "state"
    result = cli("run", str(path), "--repo", "octo/demo", "--api-url", github.api_url, "--state-dir", str(state))
    workspace = Path(Store(state).run("latest").workspace)
    assert not (workspace / "FILTER_RAN").exists(), "the planted clean filter ran"
    for file in workspace.rglob("*"):
        if file.is_file() and not file.is_symlink():
            assert TOKEN.encode() not in file.read_bytes(), file
    assert repo.sha("main") == main
    if repo.sha("fix/one") is not None:
        assert TOKEN not in repo.git("log", "-p", "fix/one")
    if plant == "gitdir-file":
        assert result.code == 1 and repo.sha("fix/one") is None


AGENT_FLOW = """\
version: 1
name: sneak
sandbox: {network: none}
steps:
  - id: checkout
    uses: git/checkout
    with: {branch: fix/one}
  - id: agent
    uses: agent
    with:
      prompt: go
      LIMITS
      command: |-
COMMAND
  - id: commit
    uses: git/commit
    with: {message: change}
  - id: push
    uses: git/push
"""

SKIP_WORKTREE = """\
set -e
for name in NAMES; do
  mkdir -p "$(dirname "$name")"
  echo sneaky > "$name"
  git add "$name"
  git update-index --skip-worktree "$name"
  rm "$name"
done
true"""

COMMITTED = """\
set -e
for name in NAMES; do mkdir -p "$(dirname "$name")"; echo sneaky > "$name"; git add "$name"; done
git -c user.name=a -c user.email=a@x commit -qm sneak
for name in NAMES; do git update-index --skip-worktree "$name"; rm "$name"; done
true"""


def _agent_flow(command: str, names: str, limits: str) -> str:
    body = "".join(f"        {line}\n" for line in command.replace("NAMES", names).splitlines())
    return AGENT_FLOW.replace("COMMAND\n", body).replace("LIMITS", limits)


@pytest.mark.parametrize(
    ("command", "names", "limits", "reason"),
    [
        (SKIP_WORKTREE, ".github/workflows/evil.yml", "", "touched protected paths: .github/workflows/evil.yml"),
        (COMMITTED, ".github/workflows/evil.yml", "", "touched protected paths: .github/workflows/evil.yml"),
        (SKIP_WORKTREE, "a.txt b.txt c.txt", "max-changed-files: 1", "changed 3 files, more than max-changed-files 1"),
        (COMMITTED, "a.txt b.txt c.txt", "max-changed-files: 1", "changed 3 files, more than max-changed-files 1"),
    ],
    ids=["protect-index", "protect-commit", "max-index", "max-commit"],
)
def test_limits_count_the_index_and_new_commits(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, names: str, limits: str, reason: str
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    forge = local_forge(tmp_path)
    result, _ = run_local(cli, tmp_path, forge, _agent_flow(command, names, limits))
    assert result.code == 1, result.out + result.err
    assert f"agent {reason}; its " in result.out, result.out
    assert gitrefs.read_branch(forge / "repo.git", "fix/one") is None, "something was pushed"


@pytest.mark.parametrize(
    ("branch", "problem"),
    [('fix/"quoted"', "contains '\"'"), ("fix/../main", "contains '..'")],
)
def test_a_bad_branch_name_is_one_line_naming_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, branch: str, problem: str
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    forge = local_forge(tmp_path)
    text = FLOW.replace("{branch: fix/one}", "{branch: BRANCH}").replace("PLANT\n", _indent("echo changed > notes.txt"))
    result, _ = run_local(cli, tmp_path, forge, text.replace("BRANCH", "'" + branch + "'"))
    assert result.code == 1, result.out + result.err
    expected = f"git/checkout: invalid branch name {branch!r}: {problem}"
    assert expected in result.out, result.out
    assert "Traceback" not in result.out + result.err and "bug in pipe" not in result.out + result.err
    assert gitrefs.read_branch(forge / "repo.git", "main") is not None
    heads = subprocess.run(
        ["git", f"--git-dir={forge / 'repo.git'}", "for-each-ref", "--format=%(refname)", "refs/heads"],
        capture_output=True,
        text=True,
        check=True,
        env=git_environment(),
    ).stdout
    assert heads == "refs/heads/main\n"


def test_branch_names_follow_check_ref_format() -> None:
    for good in ("fix/one", "pipe/20240101-abc", "feature/a.b", "a-b_c"):
        assert gitrefs.branch_problem(good) is None, good
    for bad in ("", "-x", "a..b", "a/.b", "a.lock", "a/", "/a", "a//b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[",
                "a\\b", "a@{1}", "@", "a.", "HEAD", "a\x01", 'a"b', "a\nb"):  # fmt: skip
        assert gitrefs.branch_problem(bad) is not None, bad
