"""Undoing what actions did outside the workspace (listed in runner.rollback.EXTERNAL_UNDO).

Each undo first checks that the forge still shows what the run left; when someone changed it
meanwhile (pushed to the branch, published the draft), it stops with RollbackConflict instead.
"""

from __future__ import annotations

from typing import Any

from runner.forges.base import ForgeError
from runner.rollback import RollbackConflict
from runner.store import ChangeRecord


def undo_push(change: ChangeRecord, forge: Any) -> None:
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


def undo_pr_create(change: ChangeRecord, forge: Any) -> None:
    pull = forge.pull_request(int(change.data["number"]))
    if pull.state == "open":
        forge.update_pull_request(pull.number, state="closed")


def undo_pr_update(change: ChangeRecord, forge: Any) -> None:
    forge.update_pull_request(int(change.data["number"]), title=change.data["title"], body=change.data["body"])


def undo_comment_create(change: ChangeRecord, forge: Any) -> None:
    try:
        forge.delete_comment(int(change.data["issue"]), int(change.data["comment_id"]))
    except ForgeError as error:
        if "404" not in str(error):
            raise


def undo_release_create(change: ChangeRecord, forge: Any) -> None:
    found = next((r for r in forge.releases() if r.id == int(change.data["release_id"])), None)
    if found is None:
        return
    if not found.draft:
        raise RollbackConflict(f"rollback stopped at release {found.tag}: it was published meanwhile; not deleting it")
    forge.delete_release(found.id)


def undo_label_add(change: ChangeRecord, forge: Any) -> None:
    issue = int(change.data["issue"])
    if change.data["label"] in forge.issue(issue).labels:
        forge.remove_label(issue, change.data["label"])
