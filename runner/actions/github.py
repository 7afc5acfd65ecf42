"""github/issue, github/comment, github/pull-request, github/labels, github/pr-diff, github/review,
github/release: forge reads and writes, made on the host (they never touch the workspace).

Writes are idempotent: each body carries a hidden marker, and a write first looks for its marker,
so a retry after an ambiguous failure (a 502 after the write happened), a second run or a resume
updates what exists instead of duplicating it. Under --no-publish writes are printed, not made.
Every write that creates something is recorded with what undoes it (see runner/actions/undo.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from runner.actions import undo
from runner.actions.action import action
from runner.actions.base import ActionContext, ActionResult
from runner.actions.prbody import with_diff_changes
from runner.forges.base import ForgeError, ReviewComment, has_marker, with_marker
from runner.forges.stamp import stamp

T = TypeVar("T")
ENSURE_ATTEMPTS = 4


def ensure(
    find: Callable[[], T | None], create: Callable[[], T], sleep: Callable[[float], None] = time.sleep
) -> tuple[T, bool]:
    """(the existing thing, False), or (a new one, True). After a failed create it looks again
    before trying again: the failure may have come after the write was made."""
    for attempt in range(1, ENSURE_ATTEMPTS + 1):
        found = find()
        if found is not None:
            return found, False
        try:
            return create(), True
        except ForgeError:
            if attempt == ENSURE_ATTEMPTS:
                raise
            sleep(min(2.0 ** (attempt - 1), 10.0))
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class NumberArgs:
    """`with: {number}`: an issue or pull request (`12` or `#12`)."""

    number: int


@dataclass(frozen=True)
class IssuesArgs:
    """github/issues' `with:`: which issues."""

    state: Literal["open", "closed", "all"] = "open"
    milestone: str = ""
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class CreateIssuesArgs:
    """github/create-issues' `with:`; `tasks` a list (or JSON text of one) of {id, title,
    description, blocked_by}."""

    tasks: Any
    labels: tuple[str, ...] = ()
    milestone: str = ""
    key: str = ""


@dataclass(frozen=True)
class CommentArgs:
    """github/comment's `with:`."""

    issue: int
    body: str
    mode: Literal["update", "create"] = "update"


@dataclass(frozen=True)
class PullRequestArgs:
    """github/pull-request's `with:` (head and base default to the run's branch and its base)."""

    title: str
    body: str = ""
    head: str = ""
    base: str = ""
    draft: bool = True
    labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelsArgs:
    """github/labels' `with:`."""

    issue: int
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewArgs:
    """github/review's `with:`; `result` a review-result JSON text."""

    number: int
    result: str = ""
    body: str = ""
    event: Literal["COMMENT", "APPROVE", "REQUEST_CHANGES", "auto"] = "auto"


@dataclass(frozen=True)
class ReleaseArgs:
    """github/release's `with:` (`name` defaults to the tag)."""

    tag: str
    name: str = ""
    body: str = ""
    target: str = ""
    draft: bool = True


@action("github/issue", NumberArgs, needs_forge=True)
def issue(ctx: ActionContext, args: NumberArgs) -> ActionResult:
    """Outputs number, title, body, labels (comma-separated), labels_json, author, url, milestone."""
    found = ctx.need_forge().issue(args.number)
    return ActionResult(
        {
            "number": str(found.number),
            "title": found.title,
            "body": found.body,
            "labels": ",".join(found.labels),
            "labels_json": json.dumps(list(found.labels)),
            "author": found.author,
            "url": found.url,
            "milestone": found.milestone or "",
            "blocked_by": ",".join(str(n) for n in found.blocked_by),
        }
    )


@action("github/issues", IssuesArgs, needs_forge=True)
def issues(ctx: ActionContext, args: IssuesArgs) -> ActionResult:
    """Issues of a milestone (or all), with what blocks them. Outputs issues (JSON: number, title,
    labels, blocked_by, url), count, and children (JSON items for `uses: pipeline`: {id, needs,
    inputs: {issue}})."""
    milestone, wanted = args.milestone, set(args.labels)
    found = [
        issue
        for issue in ctx.need_forge().issues(args.state)
        if (not milestone or issue.milestone == milestone) and wanted <= set(issue.labels)
    ]
    found.sort(key=lambda issue: issue.number)
    listed = [
        {"number": i.number, "title": i.title, "labels": list(i.labels), "blocked_by": list(i.blocked_by), "url": i.url}
        for i in found
    ]
    children = [{"id": i.number, "needs": list(i.blocked_by), "inputs": {"issue": i.number}} for i in found]
    return ActionResult({"issues": json.dumps(listed), "count": str(len(found)), "children": json.dumps(children)})


@action("github/create-issues", CreateIssuesArgs, needs_forge=True)
def create_issues(ctx: ActionContext, args: CreateIssuesArgs) -> ActionResult:
    """Open an issue per task ({id, title, description, blocked_by: [task ids]}), blockers first so
    each issue can name the issues it is blocked by. Idempotent: a task whose issue exists (found by
    its marker) is not opened again. Outputs issues (JSON: task id -> number) and count."""
    forge = ctx.need_forge()
    tasks = json.loads(args.tasks) if isinstance(args.tasks, str) else list(args.tasks)
    by_id = {str(task["id"]): task for task in tasks}
    order: list[str] = []

    def visit(task_id: str, trail: tuple[str, ...]) -> None:
        if task_id in order:
            return
        if task_id in trail:
            raise ForgeError(
                "github/create-issues: the tasks' blocked_by form a cycle: " + " -> ".join((*trail, task_id))
            )
        for blocker in by_id[task_id].get("blocked_by") or []:
            if str(blocker) in by_id:
                visit(str(blocker), (*trail, task_id))
        order.append(task_id)

    for task_id in by_id:
        visit(task_id, ())
    labels = list(args.labels)
    milestone = args.milestone or None
    key = args.key or ctx.pipeline
    numbers: dict[str, int] = {}
    if not ctx.publish:
        ctx.log("--no-publish: would open issues for tasks " + ", ".join(order))
        return ActionResult({"issues": "{}", "count": "0", "published": "false"})
    existing = {}
    for found in forge.issues("all"):
        for task_id in order:
            if has_marker(found.body, "task", f"{key}/{task_id}"):
                existing[task_id] = found.number
    for task_id in order:
        task = by_id[task_id]
        if task_id in existing:
            numbers[task_id] = existing[task_id]
            continue
        blockers = [numbers[str(b)] for b in task.get("blocked_by") or [] if str(b) in numbers]
        body = with_marker(str(task.get("description") or ""), "task", f"{key}/{task_id}")
        created = forge.create_issue(str(task["title"]), body, labels, milestone, blockers)
        numbers[task_id] = created.number
        ctx.log(f"task {task_id}: issue #{created.number}" + (f" (blocked by {blockers})" if blockers else ""))
    return ActionResult({"issues": json.dumps(numbers), "count": str(len(numbers))})


@action("github/comment", CommentArgs, needs_forge=True, effects={"comment_create": undo.undo_comment_create})
def comment(ctx: ActionContext, args: CommentArgs) -> ActionResult:
    """Comment on an issue; with mode update (the default) edit the comment this step made before
    (in this or an earlier run for the same issue) in place. Outputs id, url, created."""
    forge = ctx.need_forge()
    number = args.issue
    key = f"{ctx.pipeline}/{ctx.step_id}/{number}"
    body = stamp(with_marker(args.body, "comment", key), ctx.run_id)
    if not ctx.publish:
        ctx.log(f"--no-publish: would comment on #{number}:\n{body}")
        return ActionResult({"id": "", "url": "", "created": "false", "published": "false"})

    def find() -> Any:
        if args.mode == "create":
            return None
        return next((c for c in forge.comments(number) if has_marker(c.body, "comment", key)), None)

    found, created = ensure(find, lambda: forge.create_comment(number, body))
    if created:
        ctx.record("comment_create", f"#{number}", {"issue": number, "comment_id": found.id})
    elif found.body != body:
        found = forge.update_comment(number, found.id, body)
    return ActionResult({"id": str(found.id), "url": found.url, "created": str(created).lower()})


@action(
    "github/pull-request",
    PullRequestArgs,
    needs_forge=True,
    effects={"pr_create": undo.undo_pr_create, "pr_update": undo.undo_pr_update, "label_add": undo.undo_label_add},
)
def pull_request(ctx: ActionContext, args: PullRequestArgs) -> ActionResult:
    """Open the pull request for the run's branch, or update the open one (title, body); add
    labels and reviewers. Outputs number, url, created."""
    forge = ctx.need_forge()
    head = args.head or ctx.state.branch or ""
    if not head:
        return ActionResult(error="github/pull-request: no branch (run git/checkout first, or give head)")
    base = args.base or ctx.state.base or forge.default_branch()
    title, draft = args.title, args.draft
    body = with_marker(args.body, "pull-request", f"{ctx.pipeline}/{head}")
    labels, reviewers = list(args.labels), list(args.reviewers)
    if not ctx.publish:
        ctx.log(f"--no-publish: would open or update the pull request {head} -> {base}: {title}\n{body}")
        return ActionResult({"number": "", "url": "", "created": "false", "published": "false"})
    found, created = ensure(
        lambda: forge.find_pull_request(head), lambda: forge.create_pull_request(title, body, head, base, draft)
    )
    if created:
        ctx.record("pr_create", f"#{found.number}", {"number": found.number})
    # The Changes section lists what the branch changes against its base, with the descriptions the
    # agent gave now or the pull request carried before (a run that changed nothing new keeps them).
    body = with_diff_changes(body, forge.pull_request_files(found.number), None if created else found.body)
    body = stamp(body, ctx.run_id)
    if (found.title, found.body) != (title, body):
        if not created:
            data = {"number": found.number, "title": found.title, "body": found.body}
            ctx.record("pr_update", f"#{found.number}", data)
        found = forge.update_pull_request(found.number, title=title, body=body)
    added = [label for label in labels if label not in found.labels]
    if added:
        forge.add_labels(found.number, added)
        for label in added:
            ctx.record("label_add", f"#{found.number}", {"issue": found.number, "label": label})
    if reviewers:
        forge.request_reviewers(found.number, reviewers)
    ctx.state.pull_request, ctx.state.pull_request_url = found.number, found.url
    return ActionResult({"number": str(found.number), "url": found.url, "created": str(created).lower()})


@action("github/labels", LabelsArgs, needs_forge=True, effects={"label_add": undo.undo_label_add})
def labels(ctx: ActionContext, args: LabelsArgs) -> ActionResult:
    """Add and remove labels of an issue or pull request. Outputs labels (comma-separated)."""
    forge = ctx.need_forge()
    number, add, remove = args.issue, list(args.add), list(args.remove)
    if not ctx.publish:
        ctx.log(f"--no-publish: would label #{number}: add {add}, remove {remove}")
        return ActionResult({"labels": "", "published": "false"})
    current = forge.issue(number).labels
    new = [label for label in add if label not in current]
    if new:
        forge.add_labels(number, new)
        for label in new:
            ctx.record("label_add", f"#{number}", {"issue": number, "label": label})
    for label in remove:
        if label in current:
            forge.remove_label(number, label)
    return ActionResult({"labels": ",".join(forge.issue(number).labels)})


@action("github/pr-diff", NumberArgs, needs_forge=True)
def pr_diff(ctx: ActionContext, args: NumberArgs) -> ActionResult:
    """The files and patch of a pull request, for reviews. Outputs files (JSON), patch, count."""
    files = ctx.need_forge().pull_request_files(args.number)
    summary = [{"path": f.path, "status": f.status, "additions": f.additions, "deletions": f.deletions} for f in files]
    patch = "\n".join(f"--- a/{f.path}\n+++ b/{f.path}\n{f.patch}" for f in files)
    return ActionResult({"files": json.dumps(summary), "patch": patch, "count": str(len(files))})


REVIEW_EVENTS = {"pass": "APPROVE", "changes_required": "REQUEST_CHANGES", "blocked": "REQUEST_CHANGES"}


@action("github/review", ReviewArgs, needs_forge=True)
def review(ctx: ActionContext, args: ReviewArgs) -> ActionResult:
    """Post a review; with `result` (a review-result JSON) its status picks the event
    (changes_required and blocked request changes) and its issues with a path and line become
    inline comments. Outputs id, event."""
    forge = ctx.need_forge()
    number = args.number
    result = json.loads(args.result) if args.result else {}
    event: str = args.event
    if event == "auto":
        event = REVIEW_EVENTS.get(str(result.get("status")), "COMMENT")
    body = str(args.body or result.get("summary") or "")
    comments = [
        ReviewComment(
            str(item["path"]),
            int(item["line"]),
            f"**{item.get('severity', 'note')}**: {item.get('title', '')}\n\n{item.get('details', '')}",
        )
        for item in result.get("issues", [])
        if item.get("path") and item.get("line")
    ]
    key = f"{ctx.pipeline}/{ctx.step_id}/{number}"
    body = with_marker(body, "review", key)
    if not ctx.publish:
        ctx.log(f"--no-publish: would review #{number} ({event}):\n{body}")
        return ActionResult({"id": "", "event": event, "published": "false"})
    found, _ = ensure(
        lambda: next((r for r in forge.reviews(number) if has_marker(r[1], "review", key)), None),
        lambda: (forge.create_review(number, body, event, comments), body),
    )
    return ActionResult({"id": str(found[0]), "event": event})


@action("github/release", ReleaseArgs, needs_forge=True, effects={"release_create": undo.undo_release_create})
def release(ctx: ActionContext, args: ReleaseArgs) -> ActionResult:
    """Create the draft release for `tag`, or update it when it exists (never a duplicate); a
    published release is left alone and fails the step. Outputs id, url, created."""
    forge = ctx.need_forge()
    tag, draft = args.tag, args.draft
    name = args.name or tag
    body = with_marker(args.body, "release", f"{ctx.pipeline}/{tag}")
    if not ctx.publish:
        ctx.log(f"--no-publish: would draft release {tag} ({name}):\n{body}")
        return ActionResult({"id": "", "url": "", "created": "false", "published": "false"})
    found, created = ensure(
        lambda: next((r for r in forge.releases() if r.tag == tag), None),
        lambda: forge.create_release(tag, name, body, draft, args.target or None),
    )
    if created:
        ctx.record("release_create", tag, {"release_id": found.id, "tag": tag})
    elif not found.draft:
        return ActionResult(error=f"github/release: release {tag} is already published; pipe only edits drafts")
    elif (found.name, found.body) != (name, body):
        found = forge.update_release(found.id, name=name, body=body)
    return ActionResult({"id": str(found.id), "url": found.url, "created": str(created).lower()})
