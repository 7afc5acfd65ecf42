"""A script that ends between the host's look at the result FIFO and its look at the container
is a success, not "exited with code 0" as a failure (a race seen in CI)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from sandbox.base import ExecStatus, Payload
from sandbox.channel import Channel
from sandbox.prepared import DockerPrepared


class ScriptEndsWhileLooking:
    """Stands in for a docker container: when the host asks whether it still runs, the script has
    just written its result and the container has stopped."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.attrs: dict[str, Any] = {"State": {"Running": True}}

    def reload(self) -> None:
        with open(self.channel.directory / "result", "wb") as result:
            result.write(b"0\n")
        self.attrs = {"State": {"Running": False, "ExitCode": 0, "OOMKilled": False}}

    def kill(self) -> None:
        pass

    def remove(self, force: bool = False) -> None:
        pass


def test_a_result_written_just_before_the_container_stopped_counts(tmp_path: Path) -> None:
    channel = Channel(tmp_path / "control", "step", os.getuid(), os.getgid())
    reader = threading.Thread(target=(channel.directory / "go").read_bytes)
    reader.start()
    container = ScriptEndsWhileLooking(channel)
    prepared = DockerPrepared(None, container, channel, {}, 1024)  # type: ignore[arg-type]
    result = prepared.execute(Payload("true"), timeout=30, on_output=lambda data: None)
    reader.join(timeout=5)
    channel.close()
    assert (result.status, result.exit_code) == (ExecStatus.SUCCEEDED, 0)
