"""agent: run a coding-agent CLI in the sandbox (`codex exec`, `claude -p`, `aider --message-file`,
anything), with its prompt handed over as a file or on stdin, never inside a shell string.

The prompt file is `/pipe/prompt.md` in the sandbox (also in PIPE_PROMPT_FILE): with `prompt-via:
file` (the default) its path is the command's last argument; with `stdin` it is the standard input.
`command` is run by the shell as written in the pipeline: keep untrusted text (issue bodies) in the
prompt, never in the command. With `output-schema`, the final JSON (see runner/agentresult.py, or
`result-file` in the workspace) must satisfy the schema: an invalid one is asked for again with the
errors added to the prompt, `max-invalid` times (default 2), then the step fails naming each error's
path. The result's fields become outputs (`result` holds the whole JSON). A step that touches a
`protect` glob (default `.github/workflows/**`) or changes more than `max-changed-files` files fails
and its changes are put back. Both limits count what a later git/commit and git/push would carry,
not only the work tree: the index and every new or moved ref of the workspace repository, compared
by git on the host (runner/gitsafety.py) with where HEAD was before the step; an agent that leaves
a repository sending git elsewhere fails the same way.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

from runner import gitsafety
from runner.actions import ActionContext, ActionResult
from runner.agentresult import final_result, schema_errors
from runner.expressions import to_text
from runner.resources import data_path
from runner.snapshot import Workspace
from sandbox.base import ExecStatus

SCRIPT = r"""set -u
export PIPE_PROMPT_FILE=/pipe/prompt.md
if [ "$PIPE_PROMPT_VIA" = stdin ]; then
  eval "$PIPE_AGENT_COMMAND" < "$PIPE_PROMPT_FILE"
else
  eval "$PIPE_AGENT_COMMAND \"\$PIPE_PROMPT_FILE\""
fi
"""
PROTECT = (".github/workflows/**",)
RETRY_NOTE = (
    "\n\n---\nYour previous reply did not match the required JSON schema:\n{errors}\n"
    "Reply again, ending with one JSON object that matches the schema."
)


def load_schema(reference: str, base: Path) -> dict[str, Any]:
    """A JSON schema by path (relative to the pipeline's directory) or by the name of a shipped one."""
    candidates = [base / reference, data_path("schemas") / Path(reference).name]
    for candidate in candidates:
        if candidate.is_file():
            loaded: dict[str, Any] = json.loads(candidate.read_text(encoding="utf-8"))
            return loaded
    raise FileNotFoundError(f"agent: output-schema {reference!r} not found (looked in {base} and pipe's schemas/)")


def _changed_files(ctx: ActionContext) -> list[str]:
    """Files (not directories, not git's own) the attempt changed so far."""
    found = set()
    for change in ctx.pending_changes():
        entry = change.after or change.before
        if change.path != ".git" and not change.path.startswith(".git/") and entry.kind != "dir":
            found.add(change.path)
    return sorted(found)


def _repository_refs(ctx: ActionContext) -> dict[str, str]:
    """The refs of the workspace repository (checked and sanitized first); {} when there is none."""
    if not gitsafety.check_repository(ctx.workspace):
        return {}
    origin = ctx.forge.clone_source().url if ctx.forge is not None and ctx.forge.name != "local" else None
    gitsafety.sanitize_repository(ctx.workspace, origin, ctx.state.branch)
    return gitsafety.refs(ctx.workspace)


def _committable(ctx: ActionContext, before: dict[str, str] | None) -> set[str]:
    """What the repository would commit or push beyond `before` (raises UnsafeRepository)."""
    if before is None or not gitsafety.check_repository(ctx.workspace):
        return set()
    _repository_refs(ctx)
    return gitsafety.committable_paths(ctx.workspace, before)


def agent(ctx: ActionContext) -> ActionResult:
    command, prompt = str(ctx.args["command"]), str(ctx.args["prompt"])
    via = str(ctx.args.get("prompt-via") or "file")
    schema = load_schema(str(ctx.args["output-schema"]), ctx.base_dir) if ctx.args.get("output-schema") else None
    limit = int(ctx.args.get("max-invalid", 2))
    protect = [str(g) for g in ctx.args.get("protect") or PROTECT]
    max_files = int(ctx.args["max-changed-files"]) if ctx.args.get("max-changed-files") not in (None, "") else None
    result_file = str(ctx.args.get("result-file") or "")
    current = prompt
    errors: list[str] = []
    try:
        before: dict[str, str] | None = _repository_refs(ctx)
    except gitsafety.UnsafeRepository as problem:
        return ActionResult(error=f"agent: refused: the workspace's git repository is unsafe ({problem})")
    for round_ in range(1, limit + 2):
        env = {"PIPE_AGENT_COMMAND": command, "PIPE_PROMPT_VIA": via}
        ran = ctx.run_in_sandbox(SCRIPT, env, (), {"prompt.md": current.encode()})
        try:
            changed = sorted(set(_changed_files(ctx)) | _committable(ctx, before))
            unsafe = None
        except gitsafety.UnsafeRepository as problem:
            changed, unsafe = _changed_files(ctx), str(problem)
        touched = [path for path in changed if any(fnmatch.fnmatch(path, glob) for glob in protect)]
        if unsafe or touched or (max_files is not None and len(changed) > max_files):
            undone = ctx.undo_pending()
            reason = (
                f"left an unsafe git repository ({unsafe})"
                if unsafe
                else f"touched protected paths: {', '.join(touched)}"
                if touched
                else f"changed {len(changed)} files, more than max-changed-files {max_files}"
            )
            return ActionResult(
                {"changed_files": str(len(changed))}, error=f"agent {reason}; its {undone} change(s) were put back"
            )
        if ran.result.status is not ExecStatus.SUCCEEDED:
            detail = ran.result.detail or f"exit code {ran.result.exit_code}"
            return ActionResult(
                {"changed_files": str(len(changed))}, error=f"agent failed ({ran.result.status.value}, {detail})"
            )
        text = ran.output
        if result_file:
            try:
                data, _ = Workspace(ctx.workspace).read(result_file)
                text = data.decode("utf-8", errors="replace")
            except OSError as error:
                return ActionResult(error=f"agent: result-file {result_file}: {error.strerror or error}")
        result = final_result(text)
        if schema is None:
            outputs = {key: to_text(value) for key, value in (result or {}).items()}
            outputs.update(result=json.dumps(result) if result is not None else "", changed_files=str(len(changed)))
            return ActionResult(outputs)
        errors = ["$: no JSON object in the agent's output"] if result is None else schema_errors(schema, result)
        if not errors:
            assert result is not None
            outputs = {key: to_text(value) for key, value in result.items()}
            outputs.update(result=json.dumps(result), changed_files=str(len(changed)), rounds=str(round_))
            return ActionResult(outputs)
        ctx.log(f"agent result does not match the schema (round {round_}):\n" + "\n".join(errors))
        current = prompt + RETRY_NOTE.format(errors="\n".join(f"- {e}" for e in errors))
    return ActionResult(error=f"agent result invalid after {limit + 1} tries: " + "; ".join(errors))
