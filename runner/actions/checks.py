"""github/checks: wait for the real CI of a commit, so a pipeline can count green CI as part of
its verification.

The commit is `sha`, else the head the run last pushed (`state.remote_sha`), else the head of the
run's pull request. Every check run and commit status (the newest per context) of it is read each
`interval` until all are completed, or until `timeout`. A commit nothing reports on is waited for
up to NO_CHECKS_GRACE (CI needs a moment to register a push), then counts as success with a
summary that says so. Conclusions success, neutral and skipped pass; any other fails.

Outputs: conclusion (success | failure | timed_out), checks (JSON list: name, kind check|status,
status, conclusion, url), summary (one line). The step fails unless success or `allow-failure`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass

from runner.actions.action import action
from runner.actions.args import Duration
from runner.actions.base import ActionContext, ActionResult
from runner.forges.base import CheckState

PASSING = ("success", "neutral", "skipped")
NO_CHECKS_GRACE = 30.0  # seconds a commit without any check is waited for
TIMEOUT = Duration(600.0, "10m")
INTERVAL = Duration(5.0, "5s")


@dataclass(frozen=True)
class ChecksArgs:
    """github/checks' `with:` (see the module docstring)."""

    sha: str = ""
    timeout: Duration = TIMEOUT
    interval: Duration = INTERVAL
    allow_failure: bool = False


def conclusion_of(found: list[CheckState]) -> str:
    """success when every check passed (or there is none), else failure; call when all completed."""
    return "success" if all(check.conclusion in PASSING for check in found) else "failure"


def summary_of(found: list[CheckState], conclusion: str, sha: str) -> str:
    """One line: how many checks, by conclusion, and the names of those that did not pass."""
    if not found:
        return f"no checks reported on {sha[:12]}"
    tally = Counter(check.conclusion or check.status for check in found)
    counted = ", ".join(f"{n} {what}" for what, n in sorted(tally.items()))
    failing = [check.name for check in found if check.status == "completed" and check.conclusion not in PASSING]
    waiting = [check.name for check in found if check.status != "completed"]
    named = f"; failed: {', '.join(failing)}" if failing else ""
    named += f"; still running: {', '.join(waiting)}" if conclusion == "timed_out" and waiting else ""
    return f"{conclusion}: {len(found)} check(s) on {sha[:12]} ({counted}){named}"


def wait_for_checks(
    read: Callable[[], list[CheckState]],
    timeout: float,
    interval: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, list[CheckState]]:
    """(conclusion, the checks as last read): read until every check completed (success or
    failure) or `timeout` seconds passed (timed_out); none at all counts as complete once
    NO_CHECKS_GRACE (or the timeout, when shorter) has passed."""
    start = clock()
    while True:
        found = read()
        waited = clock() - start
        if found and all(check.status == "completed" for check in found):
            return conclusion_of(found), found
        if not found and waited >= min(NO_CHECKS_GRACE, timeout):
            return "success", found
        if waited >= timeout:
            return "timed_out", found
        sleep(max(0.0, min(interval, timeout - waited)))


@action("github/checks", ChecksArgs, needs_forge=True)
def checks(ctx: ActionContext, args: ChecksArgs) -> ActionResult:
    """Wait for the commit's checks (see the module docstring)."""
    forge = ctx.need_forge()
    sha = args.sha.strip() or ctx.state.remote_sha or ""
    if not sha and ctx.state.pull_request is not None:
        sha = forge.pull_request(ctx.state.pull_request).head_sha
    if not sha:
        return ActionResult(error="github/checks: no commit (give sha, or push or open a pull request first)")
    ctx.log(f"waiting for the checks of {sha[:12]} (at most {args.timeout})")
    conclusion, found = wait_for_checks(lambda: forge.checks(sha), args.timeout.seconds, args.interval.seconds)
    summary = summary_of(found, conclusion, sha)
    ctx.log(summary)
    outputs = {"conclusion": conclusion, "checks": json.dumps([asdict(check) for check in found]), "summary": summary}
    if conclusion == "success" or args.allow_failure:
        return ActionResult(outputs)
    return ActionResult(outputs, error=f"github/checks: {summary}")
