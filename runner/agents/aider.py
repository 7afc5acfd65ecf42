"""aider (`aider`, PyPI aider-chat 0.86.2, checked against that release).

The prompt file is given with `--message-file` (one exchange, then exit). Without pretty output
and with a very wide COLUMNS its reply is printed unwrapped, so the final JSON survives; it must
not commit (pipe commits), touch .gitignore, check for updates or fetch litellm's price list.
Cost is the last "Cost: ... $X session." line; each "Tokens:" line is one model turn. aider has no
session to resume: a schema retry sends the prompt again. The model comes from AIDER_MODEL (or
aider's own defaults for the key given).
"""

from __future__ import annotations

import re

from runner.agents import AgentSpec, Report

COST = re.compile(r"Cost: .*?\$(\d+(?:\.\d+)?) session", re.MULTILINE)
TOKENS = re.compile(r"^Tokens: ", re.MULTILINE)


def read(output: str) -> Report:
    """The whole output (the reply is in it), the session cost and the number of model turns."""
    costs = COST.findall(output)
    turns = len(TOKENS.findall(output))
    return Report(output, cost_usd=float(costs[-1]) if costs else None, turns=turns or None)


SPEC = AgentSpec(
    name="aider",
    argv=(
        "aider",
        "--yes-always",
        "--no-pretty",
        "--no-stream",
        "--no-fancy-input",
        "--no-auto-commits",
        "--no-dirty-commits",
        "--no-gitignore",
        "--no-auto-lint",
        "--no-check-update",
        "--no-show-release-notes",
        "--no-analytics",
        "--message-file",
    ),
    read=read,
    version="0.86.2",
    package="pip:aider-chat",
    stdin=False,
    env={"COLUMNS": "100000", "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    secrets=("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"),
    housekeeping=(".aider*",),
    transcripts=(".aider.chat.history.md",),
)
