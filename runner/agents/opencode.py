"""opencode (`opencode`, npm opencode-ai 1.18.33, checked against that release).

`opencode run --format json --auto` reads the prompt from stdin and prints JSON events: `text`
parts (the last holds the final answer), `tool_use`, and `step_finish` with `cost` (USD) and
`tokens` per model turn; every event carries the `sessionID`. `--auto` approves its tool calls
(pipe's container is the sandbox). Schema retries continue with `--session ID`. The provider and
model come from its own configuration (e.g. OPENCODE_CONFIG_CONTENT) and the key given. It keeps
its sessions in a database, so its transcript is its JSON events, in the step's log.
"""

from __future__ import annotations

from typing import Any

from runner.agents import AgentSpec, Report
from runner.agents._output import json_lines, number

BASE = ("opencode", "run", "--format", "json", "--auto")


def read(output: str) -> Report:
    """The last text part, the summed cost, the turns (finished steps) and the session."""
    text, session, cost, turns, error = "", None, 0.0, 0, None
    for event in json_lines(output):
        found = event.get("part")
        part: dict[str, Any] = found if isinstance(found, dict) else {}
        session = str(event.get("sessionID") or session or "") or None
        if event.get("type") == "text" and isinstance(part.get("text"), str):
            text = part["text"]
        elif event.get("type") == "step_finish":
            turns += 1
            cost += number(part.get("cost")) or 0.0
        elif event.get("type") == "error":
            error = f"opencode: {event.get('error') or event}"
    if session is None:
        return Report(output)
    return Report(text, cost_usd=cost if turns else None, turns=turns or None, session=session, error=error)


SPEC = AgentSpec(
    name="opencode",
    argv=BASE,
    read=read,
    version="1.18.33",
    package="npm:opencode-ai",
    binary="opencode",
    secrets=("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"),
    housekeeping=(".opencode/",),
    resume=lambda session: (*BASE, "--session", session),
)
