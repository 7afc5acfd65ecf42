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
from dataclasses import dataclass
from typing import Literal

from runner.actions.action import action
from runner.actions.args import Duration
from runner.actions.base import ActionContext, ActionResult
from runner.forges.base import with_marker
from runner.names import Decision

COMMANDS = {"/approve": Decision.APPROVED, "/reject": Decision.REJECTED}
DEFAULT_PROMPT = "Approve this run?"
NO_POLLING = Duration(0.0, "0")
POLL_EVERY = Duration(10.0, "10s")


@dataclass(frozen=True)
class ApprovalArgs:
    """wait/approval's `with:` (see the module docstring)."""

    prompt: str = DEFAULT_PROMPT
    timeout: Duration | None = None
    on_timeout: Literal["fail", "continue"] = "fail"
    approvers: tuple[str, ...] = ()
    issue: int | None = None
    poll_for: Duration = NO_POLLING
    poll_every: Duration = POLL_EVERY
    on_reject: Literal["fail", "continue"] = "fail"


def _comment_decision(
    ctx: ActionContext, issue: int, after: int, approvers: tuple[str, ...]
) -> tuple[str, str, str] | None:
    """(decision, comment, author) from the first /approve or /reject by an approver after `after`."""
    for comment in ctx.need_forge().comments(issue):
        if comment.id <= after or comment.author not in approvers:
            continue
        word, _, rest = comment.body.strip().partition(" ")
        if word in COMMANDS:
            return COMMANDS[word], rest.strip(), comment.author
    return None


@action("wait/approval", ApprovalArgs, forge_when=("issue",))
def approval(ctx: ActionContext, args: ApprovalArgs) -> ActionResult:
    """Wait for a decision (see the module docstring); `waiting` when the run must stop for it."""
    approvals, run, step, iteration = ctx.need_approvals(), ctx.run_id, ctx.step_id, ctx.iteration
    prompt = args.prompt or DEFAULT_PROMPT
    issue = args.issue
    use_forge = ctx.forge is not None and issue is not None and bool(args.approvers)
    record = approvals.current()
    if record is None:
        after = 0
        if use_forge and issue is not None:
            after = max((c.id for c in ctx.need_forge().comments(issue)), default=0)
        record = approvals.request(after)
        if use_forge and issue is not None and ctx.publish:
            body = (
                f"⏸️ **pipe is waiting for approval** ({ctx.pipeline}, run `{run}`)\n\n{prompt}\n\n"
                f"Reply `/approve` or `/reject` (from: {', '.join(args.approvers)})."
            )
            ctx.need_forge().create_comment(issue, with_marker(body, "approval", f"{run}/{step}/{iteration}"))
        ctx.log(f"waiting for approval: {prompt}\n  decide with: pipe approve {run}   or   pipe reject {run}")
    deadline = time.monotonic() + args.poll_for.seconds
    while True:
        found = approvals.current()
        assert found is not None
        record = found
        if record.decision is None and use_forge and issue is not None:
            decided = _comment_decision(ctx, issue, record.after_comment, args.approvers)
            if decided is not None:
                record = approvals.decide(*decided)
        said = {"comment": record.comment or "", "by": record.decided_by or ""}
        if record.decision == Decision.APPROVED:
            ctx.log(f"approved by {record.decided_by}" + (f": {record.comment}" if record.comment else ""))
            return ActionResult({"decision": Decision.APPROVED.value, **said})
        if record.decision == Decision.REJECTED:
            note = f": {record.comment}" if record.comment else ""
            if args.on_reject == "continue":  # e.g. back to an earlier phase
                ctx.log(f"rejected by {record.decided_by}{note}; going on as asked (on-reject: continue)")
                return ActionResult({"decision": Decision.REJECTED.value, **said})
            return ActionResult(
                {"decision": Decision.REJECTED.value, **said}, error=f"rejected by {record.decided_by}{note}"
            )
        if args.timeout is not None and time.time() > record.requested_at + args.timeout.seconds:
            if args.on_timeout == "continue":
                return ActionResult({"decision": "timeout", "comment": "", "by": ""})
            return ActionResult({"decision": "timeout"}, error=f"no decision within {args.timeout}")
        if time.monotonic() >= deadline:
            return ActionResult(waiting=True)
        time.sleep(min(args.poll_every.seconds, max(deadline - time.monotonic(), 0.0)))
