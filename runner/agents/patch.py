"""pipe-patch-agent: ships in the default sandbox image (sandbox/agents/); applies the patch
proposed in its prompt and needs no model, no key and no network."""

from __future__ import annotations

from runner.agents import AgentSpec, Report


def read(output: str) -> Report:
    """The whole output: its last line is the agent-result JSON."""
    return Report(output)


SPEC = AgentSpec(name="pipe-patch-agent", argv=("pipe-patch-agent",), read=read, version="", package="")
