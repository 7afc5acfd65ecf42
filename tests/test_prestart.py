"""Prestarting sandboxes (issue 21): how many follow the run's own measures, and only steps that will
take a warm sandbox get one (not action steps, not steps that run only after a failure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.engine import sandboxing
from runner.engine.sandboxing import DEFAULTS, INITIAL_AHEAD, MAX_AHEAD, Sandboxes, SandboxPlan, prestart_depth
from runner.pipeline.model import SandboxSettings, Step


class Started:
    def __init__(self, spec: Any) -> None:
        self.spec = spec

    def discard(self, wait: bool = False) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


class Recording:
    name = "recording"

    def __init__(self, clock: Clock | None = None, start: float = 0.0) -> None:
        self.steps: list[str] = []
        self._clock, self._start = clock, start

    def prepare(self, spec: Any) -> Started:
        self.steps.append(spec.labels["step"])
        if self._clock is not None:
            self._clock.now += self._start
        return Started(spec)


def sandboxes(tmp_path: Path, backend: Recording, ahead: int | None) -> Sandboxes:
    def plan(step: Step) -> SandboxPlan:
        return SandboxPlan(DEFAULTS.overlay(SandboxSettings()), {}, {"step": step.id})

    return Sandboxes(backend, tmp_path, tmp_path / "control", plan, lambda image: image, ahead=ahead)  # type: ignore[arg-type]


def test_depth_covers_the_start_time_over_the_step_time() -> None:
    assert prestart_depth(None, None) == prestart_depth(1.0, None) == INITIAL_AHEAD
    assert prestart_depth(0.3, 0.1) == 4  # started as a step begins, ready three steps later, plus one
    assert prestart_depth(0.2, 5.0) == 2  # long steps: the next one only
    assert prestart_depth(2.0, 0.001) == MAX_AHEAD


def test_only_steps_that_take_a_warm_sandbox_get_one(tmp_path: Path) -> None:
    backend = Recording()
    warm = sandboxes(tmp_path, backend, ahead=2)
    steps = [
        Step(id="action", line=1, uses="git/commit"),
        Step(id="on-failure", line=2, run="true", condition="failure()"),
        Step(id="a", line=3, run="true"),
        Step(id="b", line=4, run="true"),
        Step(id="c", line=5, run="true"),
    ]
    warm.warm(steps)
    warm.take(steps[2])
    warm.close()
    assert sorted(backend.steps) == ["a", "b"]  # two ahead, neither the action nor the failure step


def test_unset_prestart_adapts_to_what_was_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sandboxes that take 0.5 s to start and steps that take 0.125 s: five started ahead."""
    clock = Clock()
    monkeypatch.setattr(sandboxing, "time", clock)
    backend = Recording(clock, start=0.5)
    warm = sandboxes(tmp_path, backend, ahead=None)
    steps = [Step(id=f"s{i}", line=i + 1, run="true") for i in range(MAX_AHEAD + 4)]
    assert warm.depth() == INITIAL_AHEAD  # nothing measured yet
    warm.take(steps[0])
    clock.now += 0.125
    warm.take(steps[1])
    assert warm.depth() == 5
    warm.warm(steps[2:])
    warm.close()
    assert backend.steps == ["s0", "s1"] + sorted(backend.steps[2:]) and len(backend.steps) == 2 + 5
