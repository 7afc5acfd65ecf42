"""Undoing what actions did outside the workspace: each function is the undo of one change type,
registered with the actions that record it (their `effects`, runner/actions/registry.py) and
called by rollback (runner/changes/external.py) as `undo(change, forge, origin)`.

Each undo first checks that the forge still shows what the run left; when someone changed it
meanwhile (pushed to the branch, published the draft, or a later run rewrote the pull request or a
comment: its body carries that run's stamp, see runner/forges/stamp.py), it stops with
RollbackConflict instead, e.g. "the PR body was changed by run R2 at 2026-11-23 11:30:02".
"""

from __future__ import annotations

import time

from runner.changes.external import Origin, RollbackConflict
from runner.forges.base import Forge, ForgeError
from runner.forges.stamp import written_by
from runner.store import ChangeRecord

__all__ = [
    "Origin",
    "RollbackConflict",
    "check_written_by_run",
    "undo_comment_create",
    "undo_label_add",
    "undo_pr_create",
    "undo_pr_update",
    "undo_push",
    "undo_release_create",
    "undo_thread_reply",
    "undo_thread_resolve",
]


def check_written_by_run(what: str, body: str | None, target: str, origin: Origin) -> None:
    """Raise RollbackConflict unless `body` (the forge's current one) was last written by `origin`'s run."""
    writer = written_by(body)
    if writer == origin.run_id:
        return
    if writer is None:
        raise RollbackConflict(
            f"rollback stopped at {target}: the {what} was changed since run {origin.run_id} wrote it (not by pipe); "
            "not undoing it"
        )
    at = origin.written_at(writer, target)
    when = f" at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(at))}" if at is not None else ""
    raise RollbackConflict(
        f"rollback stopped at {target}: the {what} was changed by run {writer}{when}; roll that run back first"
    )


def undo_push(change: ChangeRecord, forge: Forge, origin: Origin) -> None:
    """Put the remote branch back where it was (delete it when the run created it)."""
    data = change.data
    branch, before, after = data["branch"], data.get("before"), data["after"]
    current = forge.branch_sha(branch)
    if current is None and before is None:
        return
    if current == before:
        return
    if current != after:
        raise RollbackConflict(
            f"rollback stopped at push {branch}: the forge has it at {current or 'nothing'}, not at {after} as the "
            f"run left it; someone pushed meanwhile"
        )
    if before is None:
        forge.delete_branch(branch)
    else:
        forge.set_branch(branch, before)


def undo_pr_create(change: ChangeRecord, forge: Forge, origin: Origin) -> None:
    """Close the pull request the run opened (unless someone else wrote its body since)."""
    pull = forge.pull_request(int(change.data["number"]))
    if pull.state == "open":
        check_written_by_run("PR body", pull.body, change.target, origin)
        forge.update_pull_request(pull.number, state="closed")


def undo_pr_update(change: ChangeRecord, forge: Forge, origin: Origin) -> None:
    """Put the pull request's title and body back as they were before the run updated them."""
    pull = forge.pull_request(int(change.data["number"]))
    if pull.body == change.data["body"]:
        return  # already put back (a rollback interrupted and started again)
    check_written_by_run("PR body", pull.body, change.target, origin)
    forge.update_pull_request(pull.number, title=change.data["title"], body=change.data["body"])


def undo_comment_create(change: ChangeRecord, forge: Forge, origin: Origin) -> None:
    """Delete the comment the run made (unless a later run rewrote it)."""
    issue, comment_id = int(change.data["issue"]), int(change.data["comment_id"])
    current = next((c for c in forge.comments(issue) if c.id == comment_id), None)
    if current is None:
        return
    check_written_by_run(f"comment {comment_id}", current.body, change.target, origin)
    try:
        forge.delete_comment(issue, comment_id)
    except ForgeError as error:
        if "404" not in str(error):
            raise


def undo_release_create(change: ChangeRecord, forge: Forge, origin: Origin) -> None:
    """Delete the draft release the run made; a published one stops the rollback."""
    found = next((r for r in forge.releases() if r.id == int(change.data["release_id"])), None)
    if found is None:
        return
    if not found.draft:
        raise RollbackConflict(f"rollback stopped at release {found.tag}: it was published meanwhile; not deleting it")
    forge.delete_release(found.id)


def undo_label_add(change: ChangeRecord, forge: Forge, origin: Origin) -> None:
    """Remove the label the run added (when it is still there)."""
    issue = int(change.data["issue"])
    if change.data["label"] in forge.issue(issue).labels:
        forge.remove_label(issue, change.data["label"])


def undo_thread_reply(change: ChangeRecord, forge: Forge, origin: Origin) -> None:
    """Delete the reply the run made in a review thread (unless someone edited it since)."""
    thread_id, comment_id = change.data["thread"], int(change.data["comment_id"])
    thread = next((t for t in forge.review_threads(int(change.data["pull_request"])) if t.id == thread_id), None)
    current = next((c for c in thread.comments if c.id == comment_id), None) if thread is not None else None
    if current is None:
        return
    check_written_by_run(f"reply {comment_id}", current.body, change.target, origin)
    forge.delete_review_comment(comment_id)


def undo_thread_resolve(change: ChangeRecord, forge: Forge, origin: Origin) -> None:
    """Mark the review thread the run resolved unresolved again (when it still is resolved)."""
    thread_id = change.data["thread"]
    thread = next((t for t in forge.review_threads(int(change.data["pull_request"])) if t.id == thread_id), None)
    if thread is not None and thread.resolved:
        forge.unresolve_thread(thread_id)
