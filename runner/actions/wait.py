"""wait/approval: pause the run until a person decides.

The first time a run reaches the wait point, the approval is requested (stored, and on a forge with
`issue` a comment asks for it); unless `poll-for` keeps the process waiting, the run stops with
status `waiting` and pipe exits 3. `pipe approve RUN [--comment TEXT]` or `pipe reject RUN` record
the decision and continue the run; so does an `/approve` or `/reject` comment on `issue` by one of
`approvers`, seen while polling or by `pipe resume`. Rejection fails the step (so `on-failure`
applies). After `timeout` without a decision, `on-timeout: fail` (default) fails the step and
`continue` lets the run go on. Outputs: decision (approved|timeout), comment, by.
"""

from __future__ import annotations

import time

from runner.actions import ActionContext, ActionResult
from runner.forges.base import with_marker
from runner.units import parse_duration

COMMANDS = {"/approve": "approved", "/reject": "rejected"}


def _comment_decision(ctx: ActionContext, issue: int, after: int, approvers: list[str]) -> tuple[str, str, str] | None:
    """(decision, comment, author) from the first /approve or /reject by an approver after `after`."""
    for comment in ctx.need_forge().comments(issue):
        if comment.id <= after or comment.author not in approvers:
            continue
        word, _, rest = comment.body.strip().partition(" ")
        if word in COMMANDS:
            return COMMANDS[word], rest.strip(), comment.author
    return None


def approval(ctx: ActionContext) -> ActionResult:
    store, run, step, iteration = ctx.store, ctx.run_id, ctx.step_id, ctx.iteration
    prompt = str(ctx.args.get("prompt") or "Approve this run?")
    approvers = [str(a) for a in ctx.args.get("approvers") or []]
    issue = int(str(ctx.args["issue"])) if ctx.args.get("issue") not in (None, "") else None
    use_forge = ctx.forge is not None and issue is not None and bool(approvers)
    timeout = parse_duration(ctx.args["timeout"]) if ctx.args.get("timeout") else None
    poll_for = parse_duration(ctx.args.get("poll-for") or 0)
    poll_every = parse_duration(ctx.args.get("poll-every") or "10s")
    record = store.approval(run, step, iteration)
    if record is None:
        after = max((c.id for c in ctx.need_forge().comments(issue)), default=0) if use_forge else 0
        record = store.request_approval(run, step, iteration, after)
        if use_forge and ctx.publish:
            assert issue is not None
            body = (
                f"⏸️ **pipe is waiting for approval** ({ctx.pipeline}, run `{run}`)\n\n{prompt}\n\n"
                f"Reply `/approve` or `/reject` (from: {', '.join(approvers)})."
            )
            ctx.need_forge().create_comment(issue, with_marker(body, "approval", f"{run}/{step}/{iteration}"))
        ctx.log(f"waiting for approval: {prompt}\n  decide with: pipe approve {run}   or   pipe reject {run}")
    deadline = time.monotonic() + poll_for
    while True:
        record = store.approval(run, step, iteration)
        assert record is not None
        if record.decision is None and use_forge:
            assert issue is not None
            found = _comment_decision(ctx, issue, record.after_comment, approvers)
            if found is not None:
                record = store.decide(run, found[0], found[1], found[2])
        if record.decision == "approved":
            ctx.log(f"approved by {record.decided_by}" + (f": {record.comment}" if record.comment else ""))
            return ActionResult(
                {"decision": "approved", "comment": record.comment or "", "by": record.decided_by or ""}
            )
        if record.decision == "rejected":
            note = f": {record.comment}" if record.comment else ""
            if str(ctx.args.get("on-reject") or "fail") == "continue":  # e.g. back to an earlier phase
                ctx.log(f"rejected by {record.decided_by}{note}; going on as asked (on-reject: continue)")
                return ActionResult(
                    {"decision": "rejected", "comment": record.comment or "", "by": record.decided_by or ""}
                )
            return ActionResult(
                {"decision": "rejected", "comment": record.comment or "", "by": record.decided_by or ""},
                error=f"rejected by {record.decided_by}{note}",
            )
        if timeout is not None and time.time() > record.requested_at + timeout:
            if str(ctx.args.get("on-timeout") or "fail") == "continue":
                return ActionResult({"decision": "timeout", "comment": "", "by": ""})
            return ActionResult({"decision": "timeout"}, error=f"no decision within {ctx.args['timeout']}")
        if time.monotonic() >= deadline:
            return ActionResult(waiting=True)
        time.sleep(min(poll_every, max(deadline - time.monotonic(), 0.0)))
