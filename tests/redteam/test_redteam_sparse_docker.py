"""Red team: a sparse file a step makes costs the host its whole apparent size after the step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pipelines import write_pipeline

pytestmark = pytest.mark.docker

SPARSE = """\
version: 1
name: sparse
sandbox: {network: none}
steps:
  - id: sparse
    timeout: 10s
    run: truncate -s 15T huge
"""


def test_redteam_a_sparse_file_holds_the_host_past_the_steps_time_limit(tmp_path: Path) -> None:
    """Recording hashes every byte of a 15 TiB sparse file (no size or time cap): the run hangs past `timeout:`."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    pipeline = write_pipeline(tmp_path, SPARSE)
    command = [sys.executable, "-m", "runner", "run", str(pipeline), "--workspace", str(workspace)]
    process = subprocess.Popen(
        [*command, "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # 120s is 12 times the step's limit; reading 15 TiB of holes takes about a day here (8 GiB took 45s).
        out, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("pipe was still recording the step's changes 120s after a step limited to 10s")
    assert process.returncode in (0, 1), out.decode(errors="replace")
