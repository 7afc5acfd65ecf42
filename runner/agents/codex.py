"""Codex (`codex`, npm @openai/codex 0.169.0, checked against that release).

`codex exec --json -` reads the prompt from stdin and prints JSON lines: `thread.started`
(thread_id, the session), `item.completed` items (the last `agent_message` holds the final text),
`turn.completed` with token usage, `turn.failed`/`error` on failure. Its own sandbox cannot start
inside pipe's (no user namespaces), and pipe's container is the sandbox, so
`--dangerously-bypass-approvals-and-sandbox`; `--skip-git-repo-check` for workspaces without git.
Schema retries continue with `codex exec resume ID`. Codex reports tokens, not cost.
"""

from __future__ import annotations

from runner.agents import STATE_DIR, AgentSpec, Report
from runner.agents._output import json_lines

FLAGS = ("--dangerously-bypass-approvals-and-sandbox", "--skip-git-repo-check", "--json")


def read(output: str) -> Report:
    """The last agent message, the thread id, the turns and the tokens from the JSON events."""
    text, session, turns, tokens, error = "", None, 0, 0, None
    for event in json_lines(output):
        kind, item = event.get("type"), event.get("item")
        if kind == "thread.started":
            session = str(event.get("thread_id") or "") or None
        elif kind == "item.completed" and isinstance(item, dict) and item.get("type") == "agent_message":
            text = str(item.get("text") or "")
        elif kind == "turn.completed":
            turns += 1
            usage = event.get("usage") or {}
            tokens += sum(int(usage.get(k) or 0) for k in ("input_tokens", "output_tokens"))
        elif kind == "turn.failed":
            error = f"codex turn failed: {(event.get('error') or {}).get('message', '')}".strip()
    if not text and session is None:
        return Report(output)
    return Report(text, turns=turns or None, session=session, tokens=tokens or None, error=error)


SPEC = AgentSpec(
    name="codex",
    argv=("codex", "exec", *FLAGS, "-"),
    read=read,
    version="0.169.0",
    package="npm:@openai/codex",
    binary="codex",
    secrets=("OPENAI_API_KEY", "CODEX_API_KEY"),
    housekeeping=(".codex/",),
    resume=lambda session: ("codex", "exec", "resume", *FLAGS, session, "-"),
    transcripts=(f"{STATE_DIR}/home/.codex/sessions/*.jsonl",),
)
