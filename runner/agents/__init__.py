"""Coding agents by name: what pipe knows about each real CLI, one module per agent.

`agent: claude` (or `command: claude` in an `agent` step, so `-i agent=claude` works in the shipped
pipelines) runs the CLI of that name from the sandbox image's PATH with the invocation its module
declares: the argv (never a shell string), how the prompt is given (standard input, or a file path),
the flags that keep it non-interactive inside pipe's sandbox (pipe's container is the sandbox, so
the CLI's own sandbox and approval prompts are turned off), the environment it needs, the secrets
it reads (e.g. ANTHROPIC_API_KEY: declared by the pipeline, given only to agent steps), how its final
answer, cost and turns are read from its real output, how a schema retry continues its session,
which housekeeping files it leaves behind (never part of the change), and the CLI version it was
checked against (`version`, also the version `pipe image build --agent NAME` installs).

Each attempt runs with HOME at `/workspace/.pipe-agent/home` (AGENT_HOME) so that a CLI's session
survives from one attempt's sandbox to the next (resume) and its transcript can be kept; pipe
removes `.pipe-agent/` when the step ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

STATE_DIR = ".pipe-agent"
AGENT_HOME = f"/workspace/{STATE_DIR}/home"
PROMPT_FILE = "/pipe/prompt.md"
NODE_VERSION = "22.23.3"


@dataclass(frozen=True)
class Report:
    """What an attempt's output says: the model's final text (where the answer JSON is looked
    for), cost in USD and turns when the CLI reports them, the session id to resume, and tokens."""

    text: str
    cost_usd: float | None = None
    turns: int | None = None
    session: str | None = None
    tokens: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class AgentSpec:
    """One coding-agent CLI. `argv` is run with the prompt on stdin (`stdin=True`) or with
    PROMPT_FILE appended; `resume(session)` gives the argv continuing a session (None: the CLI
    cannot, the prompt is sent again); `max_turns(n)` the extra argv for a turn limit; `read`
    turns the attempt's merged output into a Report; `package` is how `pipe image build` installs
    it (`npm:NAME` or `pip:NAME`, at `version`); `binary` the executable to take from an npm
    package's platform files (None: the package's own bin)."""

    name: str
    argv: tuple[str, ...]
    read: Callable[[str], Report]
    version: str
    package: str
    stdin: bool = True
    env: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    housekeeping: tuple[str, ...] = ()
    resume: Callable[[str], tuple[str, ...]] | None = None
    max_turns: Callable[[int], tuple[str, ...]] | None = None
    binary: str | None = None
    transcripts: tuple[str, ...] = ()
    node_entry: str | None = None


def _registry() -> dict[str, AgentSpec]:
    from runner.agents import aider, claude, codex, gemini, opencode, patch

    return {spec.name: spec for spec in (claude.SPEC, codex.SPEC, aider.SPEC, gemini.SPEC, opencode.SPEC, patch.SPEC)}


def names() -> list[str]:
    """The known agent names, sorted."""
    return sorted(_registry())


def named(command: str) -> AgentSpec | None:
    """The agent a step's `command` names (the whole command is one known name), else None."""
    return _registry().get(command.strip())


def lookup(name: str) -> AgentSpec:
    """The agent called `name`; raises KeyError listing the known names."""
    found = _registry().get(name)
    if found is None:
        raise KeyError(f"unknown agent {name!r} (known: {', '.join(names())})")
    return found
