"""A script that ends between the host's look for its status file and its look at the container
is a success, not "exited with code 0" as a failure (a race seen in CI)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from sandbox.base import ExecStatus, Payload
from sandbox.docker import DockerPrepared


class ScriptEndsWhileLooking:
    """Stands in for a docker container: when the host asks whether it still runs, the script has
    just written its status and the container has stopped."""

    def __init__(self, control: Path) -> None:
        self.control = control
        self.attrs: dict[str, Any] = {"State": {"Running": True}}

    def reload(self) -> None:
        (self.control / "status").write_text("0\n")
        self.attrs = {"State": {"Running": False, "ExitCode": 0, "OOMKilled": False}}

    def kill(self) -> None:
        pass

    def remove(self, force: bool = False) -> None:
        pass


def test_a_status_written_just_before_the_container_stopped_counts(tmp_path: Path) -> None:
    control = tmp_path / "control"
    control.mkdir()
    os.mkfifo(control / "go")
    reader = threading.Thread(target=(control / "go").read_bytes)
    reader.start()
    prepared = DockerPrepared(None, ScriptEndsWhileLooking(control), control)  # type: ignore[arg-type]
    result = prepared.execute(Payload("true"), timeout=30, on_output=lambda data: None)
    reader.join(timeout=5)
    assert (result.status, result.exit_code) == (ExecStatus.SUCCEEDED, 0)
