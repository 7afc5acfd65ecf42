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
re-reads the forge: see runner/resume.py), and skipped ones start.
Outputs: children (JSON: key, status, run, reason, pull_request), succeeded, failed, skipped, and
`markdown` (a summary table).

Secrets: a child gets its parent's secrets, all of them or only those `with: {secrets: [NAME...]}`
lists (the others are also taken out of its environment), whether they came from the environment
or a --secret-file. They and the child's inputs travel through a pipe the child reads once at
start (runner/secrets.py `read_child_channel`), never through argv or a file; the child masks
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

from runner.actions import ActionContext, ActionResult
from runner.errors import InputRefused, UsageError
from runner.pipeline.expressions import to_text
from runner.pipeline.secrets import CHANNEL_VARIABLE
from runner.resources import data_path
from runner.store import RunRecord

Popen = subprocess.Popen[bytes]

POLL_SECONDS = 0.2
DONE = ("succeeded", "failed", "skipped", "cancelled", "waiting")


@dataclass
class Child:
    key: str
    needs: list[str]
    inputs: dict[str, Any]
    status: str = "pending"
    run: str = ""
    reason: str = ""
    process: Popen | None = field(default=None, repr=False)
    resumed_after: int | None = None  # the child's last event id before it was resumed


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


def fail_fast_option(value: Any) -> bool:
    """`fail-fast` as given (a boolean, or a template's "true"/"false"); raises UsageError otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise UsageError(f"pipeline: fail-fast: {value!r} is not true or false")
    return text == "true"


def _child_pipeline(ctx: ActionContext) -> Path:
    reference = str(ctx.args["pipeline"])
    for candidate in (ctx.base_dir / reference, data_path("pipelines") / reference):
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(f"pipeline: {reference} not found (looked in {ctx.base_dir} and pipe's pipelines/)")


def passed_secrets(ctx: ActionContext) -> dict[str, str]:
    """The parent's secrets a child gets: all, or those `with: secrets` names. Raises UsageError
    for a name the run has no value for."""
    secrets = dict(ctx.options.secrets)
    names = ctx.args.get("secrets")
    if names is None:
        return secrets
    unknown = [str(name) for name in names if str(name) not in secrets]
    if unknown:
        raise UsageError(f"pipeline: secrets: the run has no secret {', '.join(unknown)}")
    return {str(name): secrets[str(name)] for name in names}


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
    options = ctx.options
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
    command += ["--state-dir", str(options.state_dir)]
    if options.token_file is not None:
        command += ["--token-file", str(options.token_file)]
    return command


def pipeline(ctx: ActionContext) -> ActionResult:
    path = _child_pipeline(ctx)
    items = ctx.args.get("for-each")
    if isinstance(items, str):
        items = json.loads(items) if items.strip() else []
    children = plan(list(items) if items is not None else [{}], dict(ctx.args.get("inputs") or {}))
    cycle = find_cycle(children)
    if cycle is not None:
        raise InputRefused("pipeline: dependency cycle: " + " -> ".join(cycle) + "; no child was started")
    limit = max(int(str(ctx.args.get("parallelism") or 1)), 1)
    fail_fast = fail_fast_option(ctx.args.get("fail-fast", True))
    # The latest run of each key (children() is oldest first).
    previous: dict[str, RunRecord] = {run.child_key or "": run for run in ctx.store.children(ctx.run_id)}
    secrets = passed_secrets(ctx)
    env = {name: value for name, value in os.environ.items() if name in secrets or name not in ctx.options.secrets}
    env.pop(CHANNEL_VARIABLE, None)
    if ctx.options.default_image:
        env["PIPE_SANDBOX_IMAGE"] = ctx.options.default_image
    if ctx.options.ca_bundle is not None:  # the person's CA bundle, as given to the parent
        env["PIPE_CA_BUNDLE"] = str(ctx.options.ca_bundle)
    logs = ctx.options.state_dir / "runs" / ctx.run_id / "children"
    logs.mkdir(parents=True, exist_ok=True)
    by_key = {child.key: child for child in children}
    while any(child.status not in DONE for child in children):
        for child in children:
            if child.process is not None and child.process.poll() is not None:
                child.process = None
                runs = [r for r in ctx.store.children(ctx.run_id) if r.child_key == child.key]
                record = runs[-1] if runs else None
                child.run = record.id if record else child.run
                child.status = record.status if record and record.status in DONE else "failed"
                if child.resumed_after is not None and record is not None:
                    child.reason = _changed_inputs(ctx, record.id, child.resumed_after)
                note = f"; {child.reason}" if child.reason else ""
                ctx.log(f"child {child.key}: {child.status} (run {child.run}{note})")
        running = sum(1 for child in children if child.process is not None)
        failed = next((c for c in children if c.status in ("failed", "cancelled")), None)
        for child in children:
            if child.status != "pending":
                continue
            blockers = [by_key[need] for need in child.needs]
            stopped = [b for b in blockers if b.status in DONE and b.status != "succeeded"]
            if stopped:
                child.status = "skipped"
                blocker = stopped[0]
                how = "was skipped" if blocker.status == "skipped" else blocker.status
                child.reason = f"blocked by {blocker.key}, which {how}"
                ctx.log(f"child {child.key}: skipped ({child.reason})")
                continue
            if any(b.status != "succeeded" for b in blockers) or running >= limit:
                continue
            prior = previous.get(child.key)
            if prior is not None and prior.status == "succeeded":
                child.status, child.run = "succeeded", prior.id
                ctx.log(f"child {child.key}: succeeded earlier (run {prior.id})")
                continue
            if fail_fast and failed is not None:
                child.status, child.reason = "skipped", f"not started: {failed.key} {failed.status} (fail-fast)"
                ctx.log(f"child {child.key}: skipped ({child.reason})")
                continue
            channel = {"secrets": secrets, "inputs": {} if prior else {k: to_text(v) for k, v in child.inputs.items()}}
            command = _command(ctx, _child_pipeline(ctx), child, prior)
            if prior is not None:
                child.resumed_after = max((event[0] for event in ctx.store.events(prior.id)), default=0)
            child.process = _start(command, env, channel, logs / f"{child.key}.log")
            child.status = "running"
            running += 1
            ctx.log(f"child {child.key}: {'resumed run ' + prior.id if prior else 'started'}")
        time.sleep(POLL_SECONDS)
    return _result(ctx, children, path)


def _changed_inputs(ctx: ActionContext, run_id: str, after: int) -> str:
    """What a resumed child said changed in its forge reads ("" when nothing did)."""
    found = [data for _, _, kind, _, data in ctx.store.events(run_id, after) if kind == "inputs_changed"]
    if not found:
        return ""
    steps = found[-1].get("steps", {})
    return "resumed; read again: " + "; ".join(f"{step} ({', '.join(names)})" for step, names in steps.items())


def _result(ctx: ActionContext, children: list[Child], path: Path) -> ActionResult:
    rows: list[dict[str, Any]] = []
    for child in children:
        pull, verification, review = "", "", ""
        if child.run:
            state = ctx.store.run(child.run).outputs.get("state", {})
            pull = state.get("pull_request_url") or ""
            for step in ctx.store.steps(child.run):  # the latest iteration's verify and review, when it has them
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
    counts = {status: sum(1 for r in rows if r["status"] == status) for status in ("succeeded", "failed", "skipped")}
    outputs = {"children": json.dumps(rows), "markdown": "\n".join(table), **{k: str(v) for k, v in counts.items()}}
    ctx.log("\n".join(table))
    bad = [r for r in rows if r["status"] != "succeeded"]
    if bad:
        return ActionResult(
            outputs,
            error=f"pipeline {path.name}: {len(bad)} of {len(rows)} children did not succeed: "
            + ", ".join(f"{r['key']} {r['status']}" for r in bad),
        )
    return ActionResult(outputs)
