"""agent: run a coding-agent CLI in the sandbox (`codex exec`, `claude -p`, `aider --message-file`,
anything), with its prompt handed over as a file or on stdin, never inside a shell string.

The prompt file is `/pipe/prompt.md` in the sandbox (also in PIPE_PROMPT_FILE): with `prompt-via:
file` (the default) its path is the command's last argument; with `stdin` it is the standard input.
`command` is run by the shell as written in the pipeline: keep untrusted text (issue bodies) in the
prompt, never in the command. With `output-schema`, the final JSON (see runner/agents/result.py, or
`result-file` in the workspace) must satisfy the schema: an invalid one is asked for again with the
errors added to the prompt, `max-invalid` times (default 2), then the step fails naming each error's
path. The result's fields become outputs (`result` holds the whole JSON). A step that touches a
`protect` glob (default `.github/workflows/**`, runner/changes/protected.py) or changes more than
`max-changed-files` files fails and its changes are put back. Both limits count what a later
git/commit and git/push would carry, not only the work tree: the index and every new or moved ref
of the workspace repository, compared by git on the host (runner/changes/gitsafety.py) with where
HEAD was before the step; an agent that leaves a repository sending git elsewhere fails the same
way. git/commit checks `protect` again on what it commits (later steps run the agent's code).

A `command` that is exactly an agent's name (runner/agents/: claude, codex, aider, gemini, opencode,
pipe-patch-agent) runs that CLI the way its module says: argv shell-quoted by pipe, prompt on stdin
or as a file, its environment, HOME in `.pipe-agent/` of the workspace, empty key variables unset,
a CLI missing from the image refused (InputRefused) with the `pipe image build` command to run. Its
answer, cost and turns are read from the CLI's real output; a schema retry continues the CLI's
session where it can (`resume`); `max-turns` and `max-cost-usd` bound it (an overrun fails the
step, its changes kept and recorded; the cost counts the step's earlier attempts, so a retry of an
overrun starts nothing); its transcript is kept beside the attempt's log
(runner/agents/transcript.py). When the step ends, the housekeeping it left at the workspace root
is removed (never part of the change) and commits it made are folded back into the work tree.
Outputs: the result's fields, `result`, `changed_files`, `rounds`, and `cost_usd`/`turns` when
reported.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runner import agents
from runner.actions.action import action
from runner.actions.base import ActionContext, ActionResult
from runner.agents import transcript
from runner.agents.result import final_result, schema_errors
from runner.changes import gitsafety
from runner.changes.protected import protected_paths
from runner.changes.snapshot import Workspace
from runner.errors import InputRefused
from runner.masking import Masker
from runner.names import AttemptStatus
from runner.pipeline.expressions import to_text
from runner.resources import data_path
from sandbox.base import ExecStatus

SCRIPT = r"""set -u
export PIPE_PROMPT_FILE=/pipe/prompt.md
if [ -n "${PIPE_AGENT_NAME:-}" ]; then
  if ! command -v "$PIPE_AGENT_NAME" >/dev/null 2>&1; then
    echo "pipe: agent CLI $PIPE_AGENT_NAME not found on the image's PATH" >&2
    exit 127
  fi
  mkdir -p "$HOME"
  for name in ${PIPE_AGENT_SECRETS:-}; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || unset "$name"
  done
  unset value
fi
if [ "$PIPE_PROMPT_VIA" = stdin ]; then
  eval "$PIPE_AGENT_COMMAND" < "$PIPE_PROMPT_FILE"
else
  eval "$PIPE_AGENT_COMMAND \"\$PIPE_PROMPT_FILE\""
fi
"""
MISSING = "pipe: agent CLI "
RESUME_NOTE = (
    "Your previous reply did not match the required JSON schema:\n{errors}\n"
    "Reply again, ending with one JSON object that matches the schema."
)
RETRY_NOTE = (
    "\n\n---\nYour previous reply did not match the required JSON schema:\n{errors}\n"
    "Reply again, ending with one JSON object that matches the schema."
)


@dataclass(frozen=True)
class AgentArgs:
    """agent's `with:` (see the module docstring); `protect` empty means the default
    (runner/changes/protected.py: PROTECT)."""

    command: str
    prompt: str
    prompt_via: Literal["stdin", "file"] = "file"
    output_schema: str = ""
    result_file: str = ""
    max_invalid: int = 2
    protect: tuple[str, ...] = ()
    max_changed_files: int | None = None
    max_turns: int | None = None
    max_cost_usd: float | None = None
    unsafe_github_token: bool = False


def load_schema(reference: str, base: Path) -> dict[str, Any]:
    """A JSON schema by path (relative to the pipeline's directory) or by the name of a shipped one."""
    candidates = [base / reference, data_path("schemas") / Path(reference).name]
    for candidate in candidates:
        if candidate.is_file():
            loaded: dict[str, Any] = json.loads(candidate.read_text(encoding="utf-8"))
            return loaded
    raise FileNotFoundError(f"agent: output-schema {reference!r} not found (looked in {base} and pipe's schemas/)")


def _housekeeping(path: str, spec: agents.AgentSpec | None) -> str | None:
    """The leading part of `path` that is an agent's housekeeping (its state dir, caches: any
    component matching one of its globs, a glob ending in `/` naming a directory), else None."""
    if spec is None:
        return None
    globs = (agents.STATE_DIR + "/", *spec.housekeeping)
    parts = path.split("/")
    for depth, part in enumerate(parts):
        if any(fnmatch.fnmatch(part + "/", g) if g.endswith("/") else fnmatch.fnmatch(part, g) for g in globs):
            return "/".join(parts[: depth + 1])
    return None


def _made_housekeeping(ctx: ActionContext, spec: agents.AgentSpec | None) -> dict[str, str]:
    """Paths the attempt created that are housekeeping -> the housekeeping entry holding them."""
    found: dict[str, str] = {}
    if spec is None:
        return found
    for change in ctx.pending_changes():
        top = _housekeeping(change.path, spec) if change.before is None else None
        if top is not None:
            found[change.path] = top
    return found


def _changed_files(ctx: ActionContext) -> list[str]:
    """Files (not directories, not git's own) the attempt changed so far."""
    found = set()
    for change in ctx.pending_changes():
        entry = change.after or change.before
        if change.path != ".git" and not change.path.startswith(".git/") and entry.kind != "dir":
            found.add(change.path)
    return sorted(found)


def _tidy(ctx: ActionContext, spec: agents.AgentSpec, before: dict[str, str] | None) -> None:
    """Remove the housekeeping the agent created (never part of the change; links are removed,
    never followed), and fold the agent's own commits back into the work tree (`git reset
    --soft`), so pipe's commit carries its changes with pipe's author."""
    for top in sorted(set(_made_housekeeping(ctx, spec).values())):
        parts = top.split("/")
        if any((ctx.workspace / "/".join(parts[:depth])).is_symlink() for depth in range(1, len(parts))):
            continue
        entry = ctx.workspace / top
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_symlink() or entry.exists():
            entry.unlink(missing_ok=True)
    head = (before or {}).get("HEAD")
    if head:
        now = _repository_refs(ctx).get("HEAD")  # checked and sanitized before git runs on the host
        if now and now != head:
            gitsafety.host_git(ctx.workspace, "reset", "--soft", head)
            ctx.log(f"agent {spec.name} committed by itself; its commits were folded into the work tree")
            owner = ctx.workspace.stat()
            gitsafety.give_back(ctx.workspace, owner.st_uid, owner.st_gid)


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


def _invocation(spec: agents.AgentSpec, session: str | None, max_turns: int | None) -> str:
    """The shell-quoted command for a named agent (a new session, or `session` continued)."""
    argv = spec.resume(session) if session and spec.resume else spec.argv
    if max_turns is not None and spec.max_turns is not None:
        argv = (*argv, *spec.max_turns(max_turns))
    return shlex.join(argv)


def _earlier_cost(ctx: ActionContext) -> float | None:
    """The cost (USD) the step's earlier attempts in this iteration reported, None when none did."""
    costs = [
        float(a.outputs["cost_usd"])
        for a in ctx.step_attempts()
        if a.status != AttemptStatus.RUNNING and a.outputs.get("cost_usd")
    ]
    return sum(costs) if costs else None


def _attempt_log(ctx: ActionContext) -> Path | None:
    """The log file of the attempt running this action (the transcript is kept beside it)."""
    running = [a.log_path for a in ctx.step_attempts() if a.status == AttemptStatus.RUNNING and a.log_path]
    return Path(running[-1]) if running and running[-1] else None


def _usage(outputs: dict[str, str], cost: float | None, turns: int | None, rounds: int) -> dict[str, str]:
    """`outputs` with the usage outputs added: rounds, and cost_usd/turns when known."""
    outputs.update(rounds=str(rounds))
    if cost is not None:
        outputs["cost_usd"] = f"{cost:.6f}"
    if turns is not None:
        outputs["turns"] = str(turns)
    return outputs


@action("agent", AgentArgs)
def agent(ctx: ActionContext, args: AgentArgs) -> ActionResult:
    """Run the agent (see the module docstring); a named agent is also tidied up afterwards."""
    spec = agents.named(args.command)
    if spec is None:
        return _agent(ctx, args, None)
    try:
        before: dict[str, str] | None = _repository_refs(ctx)
    except gitsafety.UnsafeRepository:
        before = None
    try:
        return _agent(ctx, args, spec)
    finally:
        try:
            _tidy(ctx, spec, before)
        except (OSError, gitsafety.UnsafeRepository) as problem:
            ctx.log(f"agent {spec.name}: could not tidy up: {problem}")


def _agent(ctx: ActionContext, args: AgentArgs, spec: agents.AgentSpec | None) -> ActionResult:
    """The agent's rounds: run it, check its changes and its result, ask again while invalid."""
    command, prompt = args.command, args.prompt
    via = "stdin" if spec and spec.stdin else "file" if spec else args.prompt_via
    schema = load_schema(args.output_schema, ctx.base_dir) if args.output_schema else None
    limit = args.max_invalid
    max_files, max_turns, max_cost = args.max_changed_files, args.max_turns, args.max_cost_usd
    result_file = args.result_file
    current = prompt
    errors: list[str] = []
    session: str | None = None
    turns_total: int | None = None
    try:
        before: dict[str, str] | None = _repository_refs(ctx)
    except gitsafety.UnsafeRepository as problem:
        return ActionResult(error=f"agent: refused: the workspace's git repository is unsafe ({problem})")
    log_path = _attempt_log(ctx)
    cost_total = _earlier_cost(ctx) if spec is not None else None
    if max_cost is not None and cost_total is not None and cost_total > max_cost:
        return ActionResult(
            _usage({}, cost_total, None, 0),
            error=f"agent not started: the step's earlier attempts cost ${cost_total:.4f}, "
            f"more than max-cost-usd ${max_cost:g}",
        )
    offsets: dict[str, int] = {}
    masker = Masker(ctx.secrets.values())
    for round_ in range(1, limit + 2):
        env = {"PIPE_AGENT_COMMAND": command, "PIPE_PROMPT_VIA": via}
        if spec is not None:
            env.update(spec.env)
            env.update(
                PIPE_AGENT_COMMAND=_invocation(spec, session, max_turns),
                PIPE_AGENT_NAME=spec.argv[0],
                PIPE_AGENT_SECRETS=" ".join(spec.secrets),
                HOME=agents.AGENT_HOME,
            )
        ran = ctx.run_in_sandbox(SCRIPT, env, (), {"prompt.md": current.encode()})
        if spec is not None and spec.transcripts and log_path is not None:
            kept = transcript.collect(ctx.workspace, spec.transcripts, offsets, masker.mask, f"round {round_}")
            transcript.append(log_path, kept)
        try:
            everything = sorted(set(_changed_files(ctx)) | _committable(ctx, before))
            unsafe = None
        except gitsafety.UnsafeRepository as problem:
            everything, unsafe = _changed_files(ctx), str(problem)
        made = _made_housekeeping(ctx, spec)  # removed when the step ends: not part of the change
        changed = [path for path in everything if path not in made]
        touched = protected_paths(everything, args.protect)
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
        if spec is not None and ran.result.exit_code == 127 and MISSING in ran.output:
            raise InputRefused(
                f"agent {spec.name}: the `{spec.argv[0]}` CLI is not in the sandbox image; build an image with "
                f"it: `pipe image build --agent {spec.name}`, and run with the --sandbox-image it prints"
            )
        report = spec.read(ran.output) if spec is not None else agents.Report(ran.output)
        if report.cost_usd is not None:
            cost_total = (cost_total or 0.0) + report.cost_usd
        if report.turns is not None:
            turns_total = (turns_total or 0) + report.turns
        usage = _usage({"changed_files": str(len(changed))}, cost_total, turns_total, round_)
        if max_cost is not None and cost_total is not None and cost_total > max_cost:
            return ActionResult(
                usage,
                error=f"agent stopped: it cost ${cost_total:.4f}, more than max-cost-usd ${max_cost:g}; "
                f"its changes ({len(changed)} file(s)) are kept in the workspace and recorded",
            )
        if ran.result.status is not ExecStatus.SUCCEEDED or report.error:
            detail = ran.result.detail or f"exit code {ran.result.exit_code}"
            said = f": {report.error}" if report.error else ""
            return ActionResult(usage, error=f"agent failed{said} ({ran.result.status.value}, {detail})")
        text = report.text
        if result_file:
            try:
                data, _ = Workspace(ctx.workspace).read(result_file)
                text = data.decode("utf-8", errors="replace")
            except OSError as error:
                return ActionResult(error=f"agent: result-file {result_file}: {error.strerror or error}")
        result = final_result(text)
        if schema is None:
            outputs = {key: to_text(value) for key, value in (result or {}).items()}
            outputs.update(result=json.dumps(result) if result is not None else "", **usage)
            return ActionResult(outputs)
        errors = ["$: no JSON object in the agent's output"] if result is None else schema_errors(schema, result)
        if not errors:
            assert result is not None
            outputs = {key: to_text(value) for key, value in result.items()}
            outputs.update(result=json.dumps(result), **usage)
            return ActionResult(outputs)
        ctx.log(f"agent result does not match the schema (round {round_}):\n" + "\n".join(errors))
        listed = "\n".join(f"- {e}" for e in errors)
        if spec is not None and spec.resume is not None and report.session:
            session, current = report.session, RESUME_NOTE.format(errors=listed)
            ctx.log(f"agent {spec.name}: asking again in the same session ({session})")
        else:
            session, current = None, prompt + RETRY_NOTE.format(errors=listed)
    return ActionResult(error=f"agent result invalid after {limit + 1} tries: " + "; ".join(errors))
