"""The typed, immutable records a pipeline is made of once loaded (see runner/pipeline/spec.py).

Field names are the schema's keys in snake_case (`continue-on-error` -> `continue_on_error`), with
two exceptions that are Python keywords: `with` -> `with_` and `if` -> `condition`.
Durations are seconds (float), sizes are bytes (int).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from runner.pipeline.egress import EgressPolicy

RENAMED = {"with": "with_", "if": "condition"}


def field_name(key: str) -> str:
    """The record field holding schema key `key`."""
    return RENAMED.get(key, key.replace("-", "_"))


def frozen_mapping(values: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """A read-only copy of `values` (empty when None)."""
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class Input:
    """A declared input. `type` is string, integer, number or boolean."""

    name: str
    type: str = "string"
    required: bool = False
    default: Any = None
    enum: tuple[Any, ...] | None = None
    description: str = ""


@dataclass(frozen=True)
class Secret:
    """A declared secret, read from the environment or a secret file and masked everywhere."""

    name: str
    description: str = ""
    required: bool = True


@dataclass(frozen=True)
class SandboxSettings:
    """Sandbox settings; None means "not set here" so step settings can overlay pipeline ones."""

    image: str | None = None
    network: str | None = None  # none, bridge, or egress (an allow-list: see `egress`)
    egress: EgressPolicy | None = None  # set together with `network` by the loader
    memory: int | None = None
    cpus: float | None = None
    pids: int | None = None
    timeout: float | None = None
    read_only: bool | None = None
    workdir: str | None = None
    runtime: str | None = None  # the engine's container runtime: auto, runc, crun, runsc or another name

    def overlay(self, other: SandboxSettings | None) -> SandboxSettings:
        """These settings with every field `other` sets replaced by other's value."""
        if other is None:
            return self
        changes = {f.name: getattr(other, f.name) for f in fields(other) if getattr(other, f.name) is not None}
        return replace(self, **changes)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: wait `initial` seconds, then multiply by `factor`, never above `max`."""

    initial: float = 1.0
    factor: float = 2.0
    max: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How often a step is tried and on what. `on` holds "failure", "timeout" and/or exit codes."""

    attempts: int = 1
    backoff: Backoff = field(default_factory=Backoff)
    on: frozenset[str | int] = frozenset({"failure", "timeout"})


@dataclass(frozen=True)
class Repeat:
    """A repeat group: `steps` run again until `until` holds or `max` iterations are done."""

    max: int
    steps: tuple[Step, ...]
    until: str | None = None


@dataclass(frozen=True)
class Step:
    """One step: exactly one of `run` (a script), `uses` (an action with `with_`) or `repeat`."""

    id: str
    line: int
    name: str | None = None
    run: str | None = None
    uses: str | None = None
    with_: Mapping[str, Any] = field(default_factory=frozen_mapping)
    repeat: Repeat | None = None
    condition: str | bool | None = None
    env: Mapping[str, str] = field(default_factory=frozen_mapping)
    timeout: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    continue_on_error: bool = False
    credentials: tuple[str, ...] | None = None
    sandbox: SandboxSettings | None = None

    @property
    def kind(self) -> str:
        """`run`, `repeat`, or the action's name."""
        if self.run is not None:
            return "run"
        if self.repeat is not None:
            return "repeat"
        assert self.uses is not None
        return self.uses

    @property
    def display_name(self) -> str:
        """The name shown to people (the `name:` template unrendered, else the id)."""
        return self.name or self.id


@dataclass(frozen=True)
class Concurrency:
    """A concurrency group template and what a new run does while the group is busy (wait|skip)."""

    group: str
    if_running: str = "wait"


@dataclass(frozen=True)
class OnFailure:
    """The automatic rollback when a run fails: none, soft, partial (last `steps`) or hard."""

    rollback: str = "none"
    steps: int | None = None


@dataclass(frozen=True)
class IssueCommentReport:
    """Progress as one comment on an issue, edited at most once per `interval` seconds."""

    issue: int | str
    interval: float = 10.0


@dataclass(frozen=True)
class WebhookReport:
    """Progress events POSTed as JSON to `url`, at most once per `interval` seconds."""

    url: str
    interval: float = 10.0


@dataclass(frozen=True)
class Report:
    """Where progress goes besides the console."""

    issue_comment: IssueCommentReport | None = None
    webhook: WebhookReport | None = None


@dataclass(frozen=True)
class ThreadBinding:
    """The thread a pipeline's runs belong to (`thread:`, runner/threads/): the one of issue
    `issue`, or the one owning pull request `pull_request`, of `repo` (OWNER/NAME; empty: the run's
    forge's repository). These three are templates of `inputs` only; `instructions` (a template
    rendered at the run's end, with its steps) is what the agent was given, kept with the spec."""

    repo: str
    issue: int | str | None = None
    pull_request: int | str | None = None
    instructions: str | None = None


@dataclass(frozen=True)
class Pipeline:
    """A loaded, validated pipeline. `path` is the file as named by the user; `digest` is the
    SHA-256 of its bytes; `source` its text."""

    version: int
    name: str
    steps: tuple[Step, ...]
    path: str
    source: str
    digest: str
    description: str = ""
    inputs: tuple[Input, ...] = ()
    env: Mapping[str, str] = field(default_factory=frozen_mapping)
    secrets: tuple[Secret, ...] = ()
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    credentials: tuple[str, ...] = ()
    concurrency: Concurrency | None = None
    on_failure: OnFailure = field(default_factory=OnFailure)
    report: Report = field(default_factory=Report)
    thread: ThreadBinding | None = None

    def all_steps(self) -> list[Step]:
        """Every step in document order, the steps of repeat groups right after their group."""
        found: list[Step] = []

        def walk(steps: tuple[Step, ...]) -> None:
            for step in steps:
                found.append(step)
                if step.repeat is not None:
                    walk(step.repeat.steps)

        walk(self.steps)
        return found
