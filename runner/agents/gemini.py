"""Gemini CLI (`gemini`, npm @google/gemini-cli 0.61.0, checked against that release).

Prompt on stdin (headless mode); `--output-format json` prints one object {"session_id",
"response": TEXT, "stats": {"models": {NAME: {"tokens": {"total"}}}}, "error"}. `--yolo` approves
its tool calls and `--skip-trust` trusts the workspace (pipe's container is the sandbox). It needs
Node.js 20 or later: `pipe image build --agent gemini` adds a Node.js runtime. Reports tokens, not
cost; a schema retry sends the prompt again.
"""

from __future__ import annotations

from typing import Any

from runner.agents import AgentSpec, Report
from runner.agents._output import last_object_with


def _tokens(stats: Any) -> int | None:
    models = stats.get("models") if isinstance(stats, dict) else None
    if not isinstance(models, dict):
        return None
    total = 0
    for model in models.values():
        tokens = model.get("tokens") if isinstance(model, dict) else None
        if isinstance(tokens, dict) and isinstance(tokens.get("total"), int):
            total += tokens["total"]
    return total or None


def read(output: str) -> Report:
    """The `response` of the JSON envelope, its session and tokens; the raw output when there is none."""
    envelope = last_object_with(output, "session_id")
    if envelope is None or ("response" not in envelope and "error" not in envelope):
        return Report(output)
    error = envelope.get("error")
    return Report(
        str(envelope.get("response") or ""),
        session=str(envelope["session_id"]),
        tokens=_tokens(envelope.get("stats")),
        error=f"gemini: {error.get('message', error)}" if isinstance(error, dict) else None,
    )


SPEC = AgentSpec(
    name="gemini",
    argv=("gemini", "--yolo", "--skip-trust", "--output-format", "json"),
    read=read,
    version="0.61.0",
    package="npm:@google/gemini-cli",
    node_entry="bundle/gemini.js",
    secrets=("GEMINI_API_KEY",),
    housekeeping=(".gemini/",),
    transcripts=(".pipe-agent/home/.gemini/tmp/*.jsonl",),
)
