"""pipe inside a container that talks to the host's Docker engine through its socket, with paths
the engine does not share (issue 16, item 5): runs (and `pipe demo`, with pipe installed in the
container from a wheel of this checkout) complete through the container's own mounts or a mapping
given by PIPE_HOST_ROOT or --host-root, a clear error when neither works, and never a directory
created on the host."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sandbox.errors import UsageError
from sandbox.hostpaths import PathMap, parse_host_root

REPO = Path(__file__).resolve().parent.parent
PIPELINE = """version: 1
name: inside
sandbox: {network: none}
steps:
  - id: a
    run: echo one > a.txt
  - id: b
    run: cat a.txt && echo two > b.txt
  - id: c
    run: cat b.txt
"""


def sandbox_image() -> str:
    from sandbox.docker import DockerBackend

    backend = DockerBackend()
    try:
        return backend.ensure_image("pipe-sandbox", lambda _: None)
    finally:
        backend.close()


def pipe_in_container(
    host_dir: Path, inside: str, state: str, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """`pipe run` in a container of the sandbox image with the engine's socket, pipe's code and
    Python at their own paths, and `host_dir` mounted at `inside` (a path the host does not have);
    `args` are added to the command line."""
    image = sandbox_image()
    (host_dir / "p.yml").write_text(PIPELINE)
    argv = ["docker", "run", "--rm", "--user", "0", "-e", "PYTHONDONTWRITEBYTECODE=1"]
    for name, value in env.items():
        argv += ["-e", f"{name}={value}"]
    code = {REPO, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    for path in sorted(code):
        argv += ["-v", f"{path}:{path}:ro"]
    argv += ["-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", f"{host_dir}:{inside}", image]
    argv += [sys.executable, "-m", "runner", "run", f"{inside}/p.yml", "--state-dir", state, *args]
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed_image() -> str:
    """An image FROM the sandbox image with pipe installed by pip from wheels of this checkout and
    its dependencies (made by the host's pip, so the build needs no network), tagged by the
    wheels' content hash: built once per change of pipe."""
    base = sandbox_image()
    with tempfile.TemporaryDirectory() as directory:
        context = Path(directory)
        wheels = context / "wheels"
        # async-timeout: redis needs it on Pythons before 3.11.3, such as the sandbox image's
        # (Debian's 3.11.2), while the host's pip, resolving for its own Python, may skip it
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheels), str(REPO), "async-timeout>=4.0.3"],
            check=True,
            capture_output=True,
        )
        digest = hashlib.sha256(base.encode())
        for wheel in sorted(wheels.glob("*.whl")):
            digest.update(wheel.name.encode() + wheel.read_bytes())
        tag = f"pipe-in-container:{digest.hexdigest()[:16]}"
        if subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode == 0:
            return tag
        (context / "Dockerfile").write_text(
            f"FROM {base}\nUSER root\nCOPY wheels /tmp/wheels\n"
            "RUN pip install -q --no-index --find-links /tmp/wheels pipe-runner && rm -rf /tmp/wheels\n"
            "LABEL pipe.test=pipe-in-container\n"
        )
        subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], check=True, capture_output=True)
    return tag


@pytest.mark.docker
def test_runs_through_the_containers_own_mounts(tmp_path: Path) -> None:
    inside = f"/pipe-data-{secrets.token_hex(4)}"
    done = pipe_in_container(tmp_path, inside, f"{inside}/state", {})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "c | two" in done.stdout
    (workspace,) = (tmp_path / "state" / "runs").glob("*/workspace")
    assert (workspace / "b.txt").read_text() == "two\n"
    assert not Path(inside).exists()  # nothing created on the host at the container's path


@pytest.mark.docker
def test_runs_through_a_given_host_root(tmp_path: Path) -> None:
    inside = f"/pipe-data-{secrets.token_hex(4)}"
    done = pipe_in_container(tmp_path, inside, f"{inside}/state", {"PIPE_HOST_ROOT": f"{inside}={tmp_path}"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert not Path(inside).exists()


@pytest.mark.docker
def test_runs_through_the_host_root_flag(tmp_path: Path) -> None:
    inside = f"/pipe-data-{secrets.token_hex(4)}"
    done = pipe_in_container(tmp_path, inside, f"{inside}/state", {}, "--host-root", f"{inside}={tmp_path}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "c | two" in done.stdout
    assert not Path(inside).exists()
    # The flag is what maps: a wrong one is refused, where the container's own mounts would work.
    wrong = pipe_in_container(tmp_path, inside, f"{inside}/state", {}, "--host-root", f"{inside}=/nonexistent-pipe")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert f"the Docker engine does not see {inside}/state/runs/" in wrong.stdout
    assert "through the --host-root mapping" in wrong.stdout
    assert not Path("/nonexistent-pipe").exists() and not Path(inside).exists()


@pytest.mark.docker
def test_pipe_demo_completes_in_a_container_with_other_paths(tmp_path: Path, installed_image: str) -> None:
    """pipe installed in a container (no checkout, no host Python), its state at a path the host
    does not have, the engine reached through the socket: `pipe demo` runs issue-to-pr to the end."""
    inside = f"/pipe-home-{secrets.token_hex(4)}"
    argv = ["docker", "run", "--rm", "--user", "0", "-e", "PYTHONDONTWRITEBYTECODE=1"]
    argv += ["-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", f"{tmp_path}:{inside}", installed_image]
    argv += ["pipe", "demo", "--state-dir", f"{inside}/state"]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The fix is on branch fix/issue-1" in done.stdout
    forge = tmp_path / "state" / "demo" / "forge" / "repo.git"
    branch = subprocess.run(
        ["git", "--git-dir", str(forge), "log", "--format=%s", "-1", "fix/issue-1"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert branch.stdout.strip()
    assert not Path(inside).exists()  # nothing created on the host at the container's path


@pytest.mark.docker
def test_a_directory_the_engine_cannot_see_is_a_clear_error_and_creates_nothing(tmp_path: Path) -> None:
    inside = f"/pipe-data-{secrets.token_hex(4)}"
    unseen = f"/pipe-unseen-{secrets.token_hex(4)}"  # in the container's own layer: no host path
    done = pipe_in_container(tmp_path, inside, f"{unseen}/state", {})
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"the Docker engine does not see {unseen}/state/runs/" in done.stdout
    assert "--host-root LOCAL=HOST" in done.stdout
    assert not Path(unseen).exists() and not Path(inside).exists()


def test_host_root_pairs() -> None:
    pairs = parse_host_root("/data=/srv/pipe, /data/deep=/mnt/deep")
    paths = PathMap(pairs)
    assert paths.engine_path(Path("/data/state/x")) == "/srv/pipe/state/x"
    assert paths.engine_path(Path("/data/deep/y")) == "/mnt/deep/y"  # the longest prefix wins
    assert PathMap().engine_path(Path("/a/b")) == "/a/b"
    with pytest.raises(UsageError, match="'data=/srv' is not LOCAL=HOST"):
        parse_host_root("data=/srv")
