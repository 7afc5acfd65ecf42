"""pipeline: run another pipeline as child runs, one per item of `for-each`, in dependency order, at
most `parallelism` at once.

Items are {"id": KEY, "needs": [KEYS], "inputs": {...}} (github/issues writes them from what blocks
each issue), or plain input mappings. A child starts once every item it needs has succeeded; when
one of them failed (or was skipped) it is skipped with that reason; needs outside the items are
ignored (a closed blocker). A cycle refuses the step (InputRefused: the run exits 2), naming its
items, before any child starts. With `fail-fast` (the default, as in a GitHub Actions matrix) no
child starts after one failed and the ones not started are skipped with that reason; with
`fail-fast: false` every child not blocked by a failure runs. Either way the step fails when a
child did not succeed, so the parent fails too (exit 1), its summary listing every child.
Children are ordinary runs (`pipe run --parent RUN --child-key KEY`, each its own process,
workspace and branch) linked to this run. When the step runs again (the parent resumed), children
that succeeded are kept, failed or interrupted ones are resumed (`pipe resume CHILD`, which
re-reads the forge: see runner/changes/resume.py), and skipped ones start.
Outputs: children (JSON: key, status, run, reason, pull_request), succeeded, failed, skipped, and
`markdown` (a summary table).

With a broker (PIPE_BROKER_URL, runner/workers/), a new child is not a local process: it is
created `pending` and enqueued (`ctx.submit_child`), a Celery worker runs it, and this step
watches its status in the store; `parallelism` still holds, as the parent submits no more than
that many at once. Such a child's secrets are the worker's own (its environment and secret
files), as nothing secret travels through the broker. A child resumed (the parent resumed) is
still a local `pipe resume`.

Secrets: a child gets its parent's secrets, all of them or only those `with: {secrets: [NAME...]}`
lists (the others are also taken out of its environment), whether they came from the environment
or a --secret-file. They and the child's inputs travel through a pipe the child reads once at
start (runner/pipeline/secrets.py `read_child_channel`), never through argv or a file; the child masks
every secret it was given, declared or not, so an input holding one is stored as `***`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.actions.action import action
from runner.actions.base import ActionContext, ActionResult
from runner.errors import InputRefused, UsageError
from runner.names import ChildStatus, RunStatus
from runner.pipeline.expressions import to_text
from runner.pipeline.secrets import CHANNEL_VARIABLE
from runner.resources import data_path
from runner.store import RunRecord

Popen = subprocess.Popen[bytes]

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class PipelineArgs:
    """`pipeline`'s `with:` (see the module docstring); `for_each` as given (a list, JSON text of
    one, or absent: one child with `inputs`); `secrets` None passes all of the run's."""

    pipeline: str
    inputs: dict[str, Any] = field(default_factory=dict)
    for_each: Any = None
    parallelism: int = 1
    fail_fast: bool = True
    secrets: tuple[str, ...] | None = None


@dataclass
class Child:
    """One child run as the step tracks it: its key, the keys it needs, its inputs and status."""

    key: str
    needs: list[str]
    inputs: dict[str, Any]
    status: ChildStatus = ChildStatus.PENDING
    run: str = ""
    reason: str = ""
    process: Popen | None = field(default=None, repr=False)
    resumed_after: int | None = None  # the child's last event id before it was resumed
    queued: bool = False  # submitted to the broker (ctx.submit_child), not yet finished


def plan(items: list[Any], common: dict[str, Any]) -> list[Child]:
    """The children of `items` (see the module's docstring); raises ValueError for duplicate keys."""
    children: list[Child] = []
    for index, item in enumerate(items, 1):
        if isinstance(item, dict) and ("inputs" in item or "id" in item or "needs" in item):
            key = str(item.get("id", index))
            needs = [str(n) for n in item.get("needs") or []]
            inputs = {**common, **(item.get("inputs") or {})}
        elif isinstance(item, dict):
            key, needs, inputs = str(index), [], {**common, **item}
        else:
            key, needs, inputs = str(index), [], {**common, "item": item}
        children.append(Child(key, needs, inputs))
    keys = [child.key for child in children]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"pipeline: for-each has the same id more than once: {', '.join(duplicates)}")
    for child in children:
        child.needs = [need for need in child.needs if need in keys]
    return children


def find_cycle(children: list[Child]) -> list[str] | None:
    """A dependency cycle as [a, b, ..., a], or None."""
    needs = {child.key: child.needs for child in children}
    state: dict[str, str] = {}
    trail: list[str] = []

    def visit(key: str) -> list[str] | None:
        state[key] = "open"
        trail.append(key)
        for need in needs[key]:
            if state.get(need) == "open":
                return [*trail[trail.index(need) :], need]
            if need not in state and (found := visit(need)) is not None:
                return found
        trail.pop()
        state[key] = "done"
        return None

    for child in children:
        if child.key not in state and (found := visit(child.key)) is not None:
            return found
    return None


def _child_pipeline(ctx: ActionContext, reference: str) -> Path:
    """The child pipeline file: relative to the pipeline's directory, or a shipped one."""
    for candidate in (ctx.base_dir / reference, data_path("pipelines") / reference):
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(f"pipeline: {reference} not found (looked in {ctx.base_dir} and pipe's pipelines/)")


def passed_secrets(ctx: ActionContext, names: tuple[str, ...] | None) -> dict[str, str]:
    """The parent's secrets a child gets: all (`names` None), or those named. Raises UsageError
    for a name the run has no value for."""
    secrets = dict(ctx.secrets)
    if names is None:
        return secrets
    unknown = [name for name in names if name not in secrets]
    if unknown:
        raise UsageError(f"pipeline: secrets: the run has no secret {', '.join(unknown)}")
    return {name: secrets[name] for name in names}


def _start(command: list[str], env: dict[str, str], channel: dict[str, Any], log: Path) -> Popen:
    """Start a child process, handing it `channel` (secrets and inputs) through a pipe it reads
    once; `env` gets PIPE_CHILD_CHANNEL, the pipe's descriptor."""
    data = json.dumps(channel).encode()
    reader, writer = os.pipe()
    try:
        with open(log, "ab") as output:
            process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**env, CHANNEL_VARIABLE: str(reader)},
                pass_fds=(reader,),
            )
    except BaseException:
        os.close(writer)
        raise
    finally:
        os.close(reader)

    def write() -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(writer, view) :]
        except OSError:
            pass  # the child died before reading: its exit says what happened
        finally:
            os.close(writer)

    threading.Thread(target=write, daemon=True).start()
    return process


def _command(ctx: ActionContext, path: Path, child: Child, previous: RunRecord | None) -> list[str]:
    """The child's command line: `pipe run` of the child pipeline, or `pipe resume` of `previous`."""
    base = [sys.executable, "-m", "runner"]
    if previous is not None:
        command = [*base, "resume", previous.id]
    else:
        command = [*base, "run", str(path), "--parent", ctx.run_id, "--child-key", child.key]
        settings = ctx.forge.describe() if ctx.forge is not None else {}
        if settings.get("forge") == "local":
            command += ["--forge-dir", settings["directory"]]
        elif settings.get("forge") == "github":
            command += ["--repo", settings["repo"], "--api-url", settings["api_url"]]
        if not ctx.publish:
            command.append("--no-publish")
    command += ["--state-dir", str(ctx.need_state_dir().root)]
    if ctx.token_file is not None:
        command += ["--token-file", str(ctx.token_file)]
    return command


def _items(for_each: Any) -> list[Any]:
    """The items of `for-each`: a list, JSON text of one ("" is none), or absent: one item."""
    if for_each is None:
        return [{}]
    if isinstance(for_each, str):
        return list(json.loads(for_each)) if for_each.strip() else []
    return list(for_each)


@action("pipeline", PipelineArgs)
def pipeline(ctx: ActionContext, args: PipelineArgs) -> ActionResult:
    """Run the child pipeline once per item (see the module docstring)."""
    path = _child_pipeline(ctx, args.pipeline)
    children = plan(_items(args.for_each), dict(args.inputs))
    cycle = find_cycle(children)
    if cycle is not None:
        raise InputRefused("pipeline: dependency cycle: " + " -> ".join(cycle) + "; no child was started")
    limit = max(args.parallelism, 1)
    runs = ctx.need_children()
    # The latest run of each key (runs() is oldest first).
    previous: dict[str, RunRecord] = {run.child_key or "": run for run in runs.runs()}
    secrets = passed_secrets(ctx, args.secrets)
    env = {name: value for name, value in os.environ.items() if name in secrets or name not in ctx.secrets}
    env.pop(CHANNEL_VARIABLE, None)
    if ctx.default_image:
        env["PIPE_SANDBOX_IMAGE"] = ctx.default_image
    if ctx.ca_bundle is not None:  # the person's CA bundle, as given to the parent
        env["PIPE_CA_BUNDLE"] = str(ctx.ca_bundle)
    logs = ctx.need_state_dir().run(ctx.run_id).children
    logs.mkdir(parents=True, exist_ok=True)
    by_key = {child.key: child for child in children}
    while any(not child.status.done for child in children):
        for child in children:
            if child.queued:
                _poll_queued(ctx, child)
            if child.process is not None and child.process.poll() is not None:
                child.process = None
                mine = [r for r in runs.runs() if r.child_key == child.key]
                record = mine[-1] if mine else None
                child.run = record.id if record else child.run
                ended = ChildStatus(record.status) if record else ChildStatus.FAILED
                child.status = ended if ended.done else ChildStatus.FAILED
                if child.resumed_after is not None and record is not None:
                    child.reason = _changed_inputs(runs.changed_inputs(record.id, child.resumed_after))
                note = f"; {child.reason}" if child.reason else ""
                ctx.log(f"child {child.key}: {child.status} (run {child.run}{note})")
        running = sum(1 for child in children if child.process is not None or child.queued)
        failed = next((c for c in children if c.status in (ChildStatus.FAILED, ChildStatus.CANCELLED)), None)
        for child in children:
            if child.status != ChildStatus.PENDING:
                continue
            blockers = [by_key[need] for need in child.needs]
            stopped = [b for b in blockers if b.status.done and b.status != ChildStatus.SUCCEEDED]
            if stopped:
                child.status = ChildStatus.SKIPPED
                blocker = stopped[0]
                how = "was skipped" if blocker.status == ChildStatus.SKIPPED else blocker.status
                child.reason = f"blocked by {blocker.key}, which {how}"
                ctx.log(f"child {child.key}: skipped ({child.reason})")
                continue
            if any(b.status != ChildStatus.SUCCEEDED for b in blockers) or running >= limit:
                continue
            prior = previous.get(child.key)
            if prior is not None and prior.status == RunStatus.SUCCEEDED:
                child.status, child.run = ChildStatus.SUCCEEDED, prior.id
                ctx.log(f"child {child.key}: succeeded earlier (run {prior.id})")
                continue
            if args.fail_fast and failed is not None:
                child.status = ChildStatus.SKIPPED
                child.reason = f"not started: {failed.key} {failed.status} (fail-fast)"
                ctx.log(f"child {child.key}: skipped ({child.reason})")
                continue
            if prior is None and ctx.submit_child is not None:  # a broker: a worker runs it
                given = {k: to_text(v) for k, v in child.inputs.items()}
                child.run = ctx.submit_child(path, given, (ctx.run_id, child.key))
                child.queued, child.status = True, ChildStatus.RUNNING
                running += 1
                ctx.log(f"child {child.key}: submitted (run {child.run})")
                continue
            channel = {"secrets": secrets, "inputs": {} if prior else {k: to_text(v) for k, v in child.inputs.items()}}
            command = _command(ctx, path, child, prior)
            if prior is not None:
                child.resumed_after = runs.last_event(prior.id)
            child.process = _start(command, env, channel, logs / f"{child.key}.log")
            child.status = ChildStatus.RUNNING
            running += 1
            ctx.log(f"child {child.key}: {'resumed run ' + prior.id if prior else 'started'}")
        time.sleep(POLL_SECONDS)
    return _result(ctx, children, path)


def _poll_queued(ctx: ActionContext, child: Child) -> None:
    """Look at a submitted child's run in the store: once it finished (or waits at a wait point),
    the child ends with its status. Which worker runs it is the broker's business; the parent only
    counts it against `parallelism` until then."""
    record = next((r for r in ctx.need_children().runs() if r.id == child.run), None)
    if record is None or not ChildStatus(record.status).done:
        return
    child.queued, child.status = False, ChildStatus(record.status)
    worker = f", worker {record.worker}" if record.worker else ""
    ctx.log(f"child {child.key}: {child.status} (run {child.run}{worker})")


def _changed_inputs(steps: dict[str, list[str]]) -> str:
    """What a resumed child said changed in its forge reads ("" when nothing did)."""
    if not steps:
        return ""
    return "resumed; read again: " + "; ".join(f"{step} ({', '.join(names)})" for step, names in steps.items())


def _result(ctx: ActionContext, children: list[Child], path: Path) -> ActionResult:
    """The step's outputs (children, counts, a markdown table); an error when a child did not succeed."""
    runs = ctx.need_children()
    rows: list[dict[str, Any]] = []
    for child in children:
        pull, verification, review = "", "", ""
        if child.run:
            pull = runs.pull_request_url(child.run)
            for step in runs.steps(child.run):  # the latest iteration's verify and review, when it has them
                if step.step_id == "verify" and "markdown" in step.outputs:
                    verification = "; ".join(step.outputs["markdown"].splitlines()[1:])
                elif step.step_id == "review" and "status" in step.outputs:
                    review = step.outputs["status"]
        rows.append(
            {
                "key": child.key,
                "status": child.status,
                "run": child.run,
                "reason": child.reason,
                "pull_request": pull,
                "verification": verification,
                "review": review,
                "inputs": child.inputs,
            }
        )
    table = ["| item | status | pull request | verification | review |", "| --- | --- | --- | --- | --- |"]
    table += [
        f"| {r['key']} | {r['status']}{' (' + r['reason'] + ')' if r['reason'] else ''} "
        f"| {r['pull_request'] or '-'} | {r['verification'] or '-'} | {r['review'] or '-'} |"
        for r in rows
    ]
    statuses = (ChildStatus.SUCCEEDED, ChildStatus.FAILED, ChildStatus.SKIPPED)
    counts = {str(status): sum(1 for r in rows if r["status"] == status) for status in statuses}
    outputs = {"children": json.dumps(rows), "markdown": "\n".join(table), **{k: str(v) for k, v in counts.items()}}
    ctx.log("\n".join(table))
    bad = [r for r in rows if r["status"] != ChildStatus.SUCCEEDED]
    if bad:
        return ActionResult(
            outputs,
            error=f"pipeline {path.name}: {len(bad)} of {len(rows)} children did not succeed: "
            + ", ".join(f"{r['key']} {r['status']}" for r in bad),
        )
    return ActionResult(outputs)
