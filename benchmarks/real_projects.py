"""The real-input suite of verify: real projects taken from their registries at a release, the next
release's change proposed in an issue as a ```diff, run through the shipped issue-to-pr.yml with no
pipeline edits. For each project it prints pipe's test counts next to those of the project's own
test command run by hand in the same image, whether the branch equals the upstream change, and the
time of a first and of a second (cached) run.

    .venv/bin/python benchmarks/real_projects.py [NAME ...]

Python projects come from the package index pip is configured with, Node ones through `npm pack`
(npm's configured registry), Go and Rust ones from Debian's packaged sources (`apt-get download`),
since no Go proxy or crates registry may be reachable; those run in an image with Debian's
toolchains (TOOLCHAINS below) and, Debian holding one release, with a documentation change as the
issue. HTTPS in sandboxes uses the host's CA bundle (--ca-bundle).

Both releases are compared as a repository would hold them (what their .gitignore leaves out, such
as a generated _version.py or a shipped .pytest_cache, is in neither), by git's diff of text files,
leaving out .github/workflows (which pipe does not let an agent change). Counts on both sides are
written alike (`P passed, F failed[, E errors][, S skipped]`) and must be equal. The CI subset is
tests/test_real_projects_docker.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.cli import main
from runner.resources import data_path
from tests.support.pypi import sdist
from tests.support.trees import bare_origin, git_environment

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PROTECTED = ".github/workflows"
# Debian's toolchains, and cargo pointed at Debian's packaged crates (the crates a project
# declares must be packaged: librust-serde-dev for semver's optional `serde`). The cargo
# configuration lies in /.cargo, which cargo reads for any directory under it, for any user.
TOOLCHAINS_DOCKERFILE = (
    "FROM pipe-sandbox:latest\nUSER root\n"
    "RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm golang-go cargo rustc"
    " librust-serde-dev && rm -rf /var/lib/apt/lists/*"
    " && mkdir -p /.cargo && printf '%s\\n' '[source.crates-io]' 'replace-with = \"debian\"'"
    " '[source.debian]' 'directory = \"/usr/share/cargo/registry\"' > /.cargo/config.toml\nUSER pipe\n"
)
TOOLCHAINS = "pipe-real-projects-toolchains:" + hashlib.sha256(TOOLCHAINS_DOCKERFILE.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Project:
    """`by_hand` is the project's own test command (with what it needs installed), run in `image`."""

    name: str
    ecosystem: str  # python | node | go | rust
    old: str  # release (or Debian package) with the bug
    new: str  # the next release ("" for Debian sources: a documentation change is proposed)
    by_hand: str
    image: str = "pipe-sandbox"


VENV = "python3 -m venv --system-site-packages /tmp/v && . /tmp/v/bin/activate && "
PROJECTS = [
    Project("idna", "python", "3.7", "3.8", "python3 -m pytest -q -p no:cacheprovider"),
    Project(
        "packaging",  # src layout, tests/requirements.txt
        "python",
        "24.1",
        "24.2",
        VENV + "pip install -q -r tests/requirements.txt && PYTHONPATH=src python3 -m pytest -q -p no:cacheprovider",
    ),
    Project(
        "pluggy",  # src layout, test extra `testing`
        "python",
        "1.4.0",
        "1.5.0",
        VENV + "pip install -q pytest pytest-benchmark && PYTHONPATH=src python3 -m pytest -q -p no:cacheprovider",
    ),
    Project("six", "python", "1.16.0", "1.17.0", "python3 -m pytest -q -p no:cacheprovider"),
    Project("minimist", "node", "1.2.7", "1.2.8", "npm install --no-audit --no-fund -q && npm test", TOOLCHAINS),
    Project(
        "golang-github-google-go-cmp-dev",
        "go",
        "debian",
        "",
        "GOFLAGS=-mod=mod GOPROXY=off go test -v ./...",
        TOOLCHAINS,
    ),
    Project(  # no go.mod: a GOPATH-era package
        "golang-github-pmezard-go-difflib-dev", "go", "debian", "", "GO111MODULE=off go test -v ./...", TOOLCHAINS
    ),
    Project("librust-semver-dev", "rust", "debian", "", "cargo test --offline", TOOLCHAINS),
]


def npm_package(name: str, version: str, into: Path) -> Path:
    """`npm pack` NAME@VERSION (npm's configured registry), unpacked into `into`/NAME-VERSION."""
    subprocess.run(["npm", "pack", "-q", f"{name}@{version}", "--pack-destination", str(into)], check=True)
    archive = next(into.glob(f"{name}-{version}.tgz"))
    target = into / f"{name}-{version}"
    with tarfile.open(archive) as tar:
        tar.extractall(into / "x", filter="data")
    (into / "x" / "package").rename(target)
    return target


def debian_source(package: str, into: Path) -> Path:
    """The source a Debian -dev package ships (Go under /usr/share/gocode/src, Rust under
    /usr/share/cargo/registry), from `apt-get download` with apt's configured mirror."""
    subprocess.run(["apt-get", "download", "-q", package], cwd=into, check=True, capture_output=True)
    deb = next(into.glob(f"{package}_*.deb"))
    root = into / "deb"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    modules = [p.parent for p in root.rglob("go.mod")] or [p.parent for p in root.rglob("Cargo.toml")]
    modules = modules or list((root / "usr/share/gocode/src").glob("*/*/*"))  # GOPATH layout: host/owner/name
    source = min(modules, key=lambda p: len(p.parts))
    target = into / "old"
    shutil.copytree(source, target, symlinks=False)
    return target


def trees(project: Project, into: Path) -> tuple[Path, Path]:
    """(old tree, new tree) of `project`."""
    if project.ecosystem == "python":
        return sdist(project.name, project.old, into), sdist(project.name, project.new, into)
    if project.ecosystem == "node":
        return npm_package(project.name, project.old, into), npm_package(project.name, project.new, into)
    old = debian_source(project.name, into)
    new = into / "new"
    shutil.copytree(old, new)
    readme = next((p for p in new.iterdir() if p.name.lower().startswith("readme")), new / "README.md")
    readme.write_text((readme.read_text() if readme.exists() else "") + "\nVerified with pipe.\n")
    return old, new


def git(repository: Path, *argv: str) -> str:
    """The output of git `argv` in `repository` (a work tree or a bare one), with no user config."""
    where = ["--git-dir", str(repository)] if repository.suffix == ".git" else ["-C", str(repository)]
    return subprocess.run(
        ["git", *where, *argv], capture_output=True, text=True, check=True, env=git_environment()
    ).stdout


def upstream(old: Path, new: Path, into: Path) -> tuple[Path, str]:
    """(the old tree as its repository holds it, the upstream change as a diff). Both releases are
    committed the way a repository would hold them (what their .gitignore leaves out, such as a
    generated _version.py or a shipped .pytest_cache, is not part of either); the diff is git's
    (exact about line ends and missing final newlines), of text files only."""
    repository = into / "upstream"
    shutil.copytree(old, repository, symlinks=True)
    bare_origin(repository, into / "upstream.git")
    git(repository, "checkout", "-qb", "upstream")
    git(repository, "rm", "-rq", "--cached", ".")
    for entry in repository.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    shutil.copytree(new, repository, symlinks=True, dirs_exist_ok=True)
    git(repository, "add", "-A")
    git(repository, "commit", "-qm", "upstream", "--allow-empty")
    tracked = into / "old"
    tracked.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive(repository, "main"))) as tar:
        tar.extractall(tracked, filter="data")
    return tracked, change(repository, "main", "upstream")


def archive(repository: Path, ref: str) -> bytes:
    where = ["--git-dir", str(repository)] if repository.suffix == ".git" else ["-C", str(repository)]
    return subprocess.run(
        ["git", *where, "archive", ref], capture_output=True, check=True, env=git_environment()
    ).stdout


def change(repository: Path, base: str, head: str) -> str:
    """git's diff of the text files between `base` and `head`, leaving out binary files and the CI
    workflows pipe does not let an agent change (the agent step's `protect` default)."""
    binary = [
        line.split("\t", 2)[2]
        for line in git(repository, "diff", "--no-renames", "--numstat", base, head).splitlines()
        if line.startswith("-\t-\t")
    ]
    excluded = [f":(exclude,literal){path}" for path in binary] + [f":(exclude){PROTECTED}"]
    return git(repository, "diff", "--no-renames", "--full-index", "--no-color", base, head, "--", ".", *excluded)


def forge_for(root: Path, tree: Path, diff: str) -> Path:
    forge = root / "forge"
    (forge / "issues").mkdir(parents=True)
    work = root / "work"
    shutil.copytree(tree, work)
    bare_origin(work, forge / "repo.git")
    issue = f"---\nid: 1\ntitle: Apply the next release's fix\n---\n## Proposed patch\n\n```diff\n{diff}```\n"
    (forge / "issues" / "1.md").write_text(issue)
    return forge


def run_pipe(forge: Path, state: Path, image: str) -> tuple[int, float, str]:
    """(exit code, seconds, PR body) of issue-to-pr on issue 1."""
    argv = ["run", str(data_path("pipelines") / "issue-to-pr.yml"), "-i", "issue=1"]
    if image != "pipe-sandbox":
        argv += ["-i", f"image={image}"]
    argv += ["--forge-dir", str(forge), "--state-dir", str(state), "--ca-bundle", CA_BUNDLE]
    started = time.monotonic()
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        code = main(argv)
    seconds = time.monotonic() - started
    (forge.parent / "pipe.log").write_text(output.getvalue())  # what pipe printed, to see why a run failed
    records = json.loads(next((state / "forges").glob("*/records.json")).read_text())
    bodies = [p["body"] for p in records.get("pulls", {}).values()]
    return code, seconds, bodies[-1] if bodies else ""


def branch_tree(forge: Path, into: Path) -> Path:
    """The tree of the branch pipe pushed (main when there is none), extracted into `into`."""
    repository = forge / "repo.git"
    branches = git(repository, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()
    into.mkdir()
    with tarfile.open(
        fileobj=io.BytesIO(archive(repository, next((b for b in branches if b != "main"), "main")))
    ) as tar:
        tar.extractall(into, filter="data")
    return into


def branch_change(forge: Path) -> str:
    """The diff of the branch pipe pushed against main (text files only, as `change` makes it)."""
    repository = forge / "repo.git"
    branches = git(repository, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()
    return change(repository, "main", next((b for b in branches if b != "main"), "main"))


def by_hand(project: Project, tree: Path) -> tuple[str, str]:
    """(counts, last line) of the project's own test command in the same image."""
    work = Path(tempfile.mkdtemp(prefix="pipe-by-hand-"))
    shutil.copytree(tree, work / "w")
    subprocess.run(["chown", "-R", "1000:1000", str(work)], check=False)
    argv = ["docker", "run", "--rm", "-v", f"{work / 'w'}:/workspace", "-v", f"{CA_BUNDLE}:/etc/pipe/ca.crt:ro"]
    for name in ("SSL_CERT_FILE", "PIP_CERT", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE"):
        argv += ["-e", f"{name}=/etc/pipe/ca.crt"]
    image = "pipe-sandbox:latest" if project.image == "pipe-sandbox" else project.image
    done = subprocess.run(
        [*argv, "-w", "/workspace", image, "bash", "-c", project.by_hand], capture_output=True, text=True, check=False
    )
    shutil.rmtree(work, ignore_errors=True)
    output = done.stdout + done.stderr
    return hand_counts(output), (output.strip().splitlines() or [""])[-1][:100]


def hand_counts(output: str) -> str:
    """The tool's own totals, read independently of pipe's parser, written the way a pull request
    shows them: `P passed, F failed[, E errors][, S skipped]` (`F failed, P passed` when F > 0)."""
    counts: dict[str, int] = {}
    if cargo := re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", output):
        counts = {k: sum(int(c[i]) for c in cargo) for i, k in enumerate(("passed", "failed", "skipped"))}
    elif match := re.findall(r"^=*\s*(.*\d+ (?:passed|failed).*) in [\d.]+s", output, re.M):
        words = {"error": "errors", "errors": "errors", "passed": "passed", "failed": "failed", "skipped": "skipped"}
        for number, word in re.findall(r"(\d+) (passed|failed|errors?|skipped)", match[-1]):
            counts[words[word]] = int(number)
    elif tap := re.search(r"^# pass\s+(\d+)", output, re.M):
        fails, skips = re.search(r"^# fail\s+(\d+)", output, re.M), re.search(r"^# skip\s+(\d+)", output, re.M)
        counts = {"passed": int(tap[1]), "failed": int(fails[1]) if fails else 0}
        counts["skipped"] = int(skips[1]) if skips else 0
    else:
        for word, key in (("PASS", "passed"), ("FAIL", "failed"), ("SKIP", "skipped")):
            counts[key] = len(re.findall(rf"^\s*--- {word}", output, re.M))
        if not counts["passed"] and not counts["failed"]:
            return "?"
    passed, failed = counts.get("passed", 0), counts.get("failed", 0)
    text = f"{failed} failed, {passed} passed" if failed else f"{passed} passed, {failed} failed"
    return ", ".join([text, *(f"{counts[k]} {k}" for k in ("errors", "skipped") if counts.get(k))])


def toolchains() -> None:
    found = subprocess.run(["docker", "image", "inspect", TOOLCHAINS], capture_output=True, check=False)
    if found.returncode != 0:
        subprocess.run(
            ["docker", "build", "-q", "-t", TOOLCHAINS, "-"], input=TOOLCHAINS_DOCKERFILE.encode(), check=True
        )


@dataclass(frozen=True)
class Outcome:
    """One project's figures: pipe's exit code and `Tests:` summary, the by-hand counts (same
    format, "?" when unread), whether the branch holds exactly the issue's change, and seconds of
    the first and the second (cached; 0 when not run) run."""

    code: int
    pipe: str
    hand: str
    same: bool
    first: float
    second: float
    second_code: int = 0

    @property
    def agree(self) -> bool:
        """Whether pipe's counts are the by-hand counts."""
        return self.hand != "?" and self.pipe == self.hand


def outcome(project: Project, root: Path, cached: bool = True) -> Outcome:
    """Take `project` from its registry into `root`, run issue-to-pr on it (twice with `cached`)
    and its own test command by hand on the branch pipe pushed."""
    downloads = root / "downloads"
    downloads.mkdir()
    released, new = trees(project, downloads)
    old, diff = upstream(released, new, root)
    state = root / "state"
    code, first, body = run_pipe(forge_for(root / "1", old, diff), state, project.image)
    second_code, second, _ = (
        run_pipe(forge_for(root / "2", old, diff), state, project.image) if cached else (0, 0.0, "")
    )
    tests = re.search(r"^(\S+) Tests: (.*)$", body, re.M)
    same = bool(diff) and branch_change(root / "1" / "forge") == diff
    hand, _ = by_hand(project, branch_tree(root / "1" / "forge", root / "branch"))
    return Outcome(code, tests.group(2) if tests else "(no Tests line)", hand, same, first, second, second_code)


def measure(project: Project) -> None:
    got = outcome(project, Path(tempfile.mkdtemp(prefix=f"pipe-real-{project.name}-")))
    fix = "equals upstream" if got.same and project.new else ("equals the issue's change" if got.same else "DIFFERS")
    print(
        f"{project.name:38} {project.ecosystem:6} exit {got.code}  pipe: {got.pipe:36} by hand: {got.hand:36} "
        f"agree: {'yes' if got.agree else 'NO':3}  branch {fix:25} first {got.first:6.1f}s  "
        f"cached {got.second:6.1f}s" + (f" (exit {got.second_code})" if got.second_code else ""),
        flush=True,
    )


def run(names: list[str]) -> int:
    chosen = [p for p in PROJECTS if not names or p.name in names]
    if any(p.image == TOOLCHAINS for p in chosen):
        toolchains()
    for project in chosen:
        try:
            measure(project)
        except Exception as problem:  # one project's trouble (a registry down) does not hide the rest
            print(f"{project.name:38} {project.ecosystem:6} not measured: {type(problem).__name__}: {problem}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
