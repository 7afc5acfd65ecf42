"""The sandboxing policy's pure parts: a sandbox asked for without credentials gets none of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.engine.sandboxing import DEFAULTS, Sandboxes, SandboxPlan
from runner.pipeline.model import SandboxSettings, Step


class Recording:
    name = "recording"

    def __init__(self) -> None:
        self.specs: list[Any] = []

    def prepare(self, spec: Any) -> Any:
        self.specs.append(spec)
        return spec


def test_credentials_are_withheld_from_a_sandbox_asked_for_without_them(tmp_path: Path) -> None:
    backend = Recording()
    env = {"PIPE_STEP": "commit", "GITHUB_TOKEN": "ghp_x", "GH_TOKEN": "ghp_x", "OTHER": "1"}

    def plan(step: Step) -> SandboxPlan:
        return SandboxPlan(DEFAULTS.overlay(SandboxSettings()), env, {}, frozenset({"GITHUB_TOKEN", "GH_TOKEN"}))

    sandboxes = Sandboxes(backend, tmp_path, tmp_path / "control", plan, lambda image: image)  # type: ignore[arg-type]
    step = Step(id="commit", line=1, uses="git/commit")
    sandboxes.fresh(step, credentials=False)
    sandboxes.fresh(step)
    sandboxes.close()
    assert dict(backend.specs[0].env) == {"PIPE_STEP": "commit", "OTHER": "1"}
    assert dict(backend.specs[1].env) == env
