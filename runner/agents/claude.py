"""Claude Code (`claude`, npm @anthropic-ai/claude-code 2.1.328, checked against that release).

Prompt on stdin; `-p --output-format json` prints one envelope {"type": "result", "result": TEXT,
"total_cost_usd", "num_turns", "session_id", "is_error"}. `--permission-mode bypassPermissions`
lets it edit and run tests without asking (pipe's container is the sandbox; IS_SANDBOX=1 allows
that when the sandbox user is root). Schema retries continue the session with `--resume ID`;
`--max-turns N` bounds the turns. Its sessions live in $HOME/.claude (the agent home).
"""

from __future__ import annotations

from runner.agents import STATE_DIR, AgentSpec, Report
from runner.agents._output import last_object_with, number

BASE = ("claude", "-p", "--output-format", "json", "--permission-mode", "bypassPermissions")


def read(output: str) -> Report:
    """The result envelope's text, cost, turns and session; the raw output when there is none."""
    envelope = last_object_with(output, "session_id")
    if envelope is None or envelope.get("type") != "result":
        return Report(output)
    turns = envelope.get("num_turns")
    return Report(
        str(envelope.get("result") or ""),
        cost_usd=number(envelope.get("total_cost_usd")),
        turns=turns if isinstance(turns, int) else None,
        session=str(envelope["session_id"]),
        error=f"claude reported an error ({envelope.get('subtype')})" if envelope.get("is_error") else None,
    )


SPEC = AgentSpec(
    name="claude",
    argv=BASE,
    read=read,
    version="2.1.328",
    package="npm:@anthropic-ai/claude-code",
    binary="claude",
    env={"IS_SANDBOX": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1"},
    secrets=("ANTHROPIC_API_KEY",),
    housekeeping=(".claude/", "CLAUDE.local.md"),
    resume=lambda session: (*BASE, "--resume", session),
    max_turns=lambda turns: ("--max-turns", str(turns)),
    transcripts=(f"{STATE_DIR}/home/.claude/projects/*.jsonl",),
)
