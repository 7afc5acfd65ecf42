"""git/checkout, git/commit, git/push, git/sync: git commands run in the step's sandbox.

Before each, the host rewrites the workspace repository's `.git/config` to a minimal known-good one
(no include, filter, fsmonitor, sshCommand or hooks settings a previous step could have planted),
and git runs with hooks disabled, so nothing written by an earlier step runs while a token is
present. The token reaches git only through an askpass helper that reads GITHUB_TOKEN from the
environment: never a URL, argv or `.git/config`. Pushes go only to the run's own branch, never to
the default branch or a protected one, always with --force-with-lease against the commit pipe last
saw on the remote.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from runner.actions import ActionContext, ActionResult
from runner.snapshot import Workspace
from sandbox.base import ExecStatus

PROTECTED = ("main", "master", "develop", "trunk", "release/*", "releases/*")

PRELUDE = r"""set -eu
askpass=$(mktemp)
cat > "$askpass" <<'ASKPASS'
#!/bin/sh
case "$1" in
  Username*) echo x-access-token ;;
  *) printf '%s\n' "${GITHUB_TOKEN:-}" ;;
esac
ASKPASS
chmod 700 "$askpass"
export GIT_ASKPASS="$askpass" GIT_TERMINAL_PROMPT=0 GIT_CONFIG_GLOBAL=/dev/null
g() { git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c advice.detachedHead=false \
        -c init.defaultBranch=main -c protocol.file.allow=always "$@"; }
out() { printf '%s=%s\n' "$1" "$2" >> "$PIPE_OUTPUT"; }
"""


def sanitize_repository(workspace: Path, origin: str | None, branch: str | None) -> None:
    """Replace `.git/config` by a minimal one (origin and branch tracking only)."""
    git_dir = workspace / ".git"
    if not git_dir.is_dir() or git_dir.is_symlink():
        return
    lines = [
        "[core]",
        "\trepositoryformatversion = 0",
        "\tfilemode = true",
        "\tbare = false",
        "\tlogallrefupdates = true",
    ]
    if origin:
        lines += ['[remote "origin"]', f"\turl = {origin}", "\tfetch = +refs/heads/*:refs/remotes/origin/*"]
    if branch:
        lines += [f'[branch "{branch}"]', "\tremote = origin", f"\tmerge = refs/heads/{branch}"]
    owner = os.stat(workspace)
    Workspace(workspace).write_file(
        ".git/config", ("\n".join(lines) + "\n").encode(), 0o644, owner.st_uid, owner.st_gid
    )


def _run(ctx: ActionContext, script: str, env: dict[str, str]) -> tuple[bool, dict[str, str], int | None]:
    forge = ctx.need_forge()
    source = forge.clone_source()
    if source.mounts and hasattr(forge, "share_with"):
        owner = os.stat(ctx.workspace)
        forge.share_with(owner.st_uid, owner.st_gid)
    sanitize_repository(ctx.workspace, source.url, ctx.state.branch)
    ran = ctx.run_in_sandbox(PRELUDE + script, {"PIPE_CLONE_URL": source.url, **env}, source.mounts)
    return ran.result.status is ExecStatus.SUCCEEDED, ran.outputs, ran.result.exit_code


def checkout(ctx: ActionContext) -> ActionResult:
    """Clone the forge repository into the workspace and put the run's branch there: a new branch
    from the default branch, or (mode update, or auto when the branch exists on the forge) the
    existing branch, to continue its pull request. Outputs branch, base, sha, remote_sha, mode."""
    forge = ctx.need_forge()
    base = str(ctx.args.get("ref") or forge.default_branch())
    branch = str(ctx.args.get("branch") or f"pipe/{ctx.run_id}")
    mode = str(ctx.args.get("mode") or "auto")
    remote_sha = forge.branch_sha(branch)
    if mode == "auto":
        mode = "update" if remote_sha else "new"
    if mode == "update" and remote_sha is None:
        return ActionResult(error=f"git/checkout: branch {branch} does not exist on the forge (mode update)")
    start = f"origin/{branch}" if mode == "update" else f"origin/{base}"
    tags = "--tags" if _true(ctx.args.get("tags")) else "--no-tags"
    script = f"""
if [ ! -d .git ]; then
  if [ -n "$(ls -A)" ]; then echo "git/checkout: the workspace is not empty and not a git repository" >&2; exit 2; fi
  g clone --quiet --no-checkout {tags} "$PIPE_CLONE_URL" .
fi
g remote set-url origin "$PIPE_CLONE_URL"
g fetch --quiet {tags} origin "+refs/heads/$PIPE_BASE:refs/remotes/origin/$PIPE_BASE"
if [ "$PIPE_MODE" = update ]; then
  g fetch --quiet origin "+refs/heads/$PIPE_BRANCH:refs/remotes/origin/$PIPE_BRANCH"
fi
g checkout --quiet -B "$PIPE_BRANCH" "$PIPE_START"
out branch "$PIPE_BRANCH"; out base "$PIPE_BASE"; out mode "$PIPE_MODE"; out sha "$(g rev-parse HEAD)"
"""
    env = {"PIPE_BASE": base, "PIPE_BRANCH": branch, "PIPE_MODE": mode, "PIPE_START": start}
    ok, outputs, _ = _run(ctx, script, env)
    if not ok:
        return ActionResult(outputs, error=f"git/checkout of {branch} failed (see the step log)")
    ctx.state.branch, ctx.state.base, ctx.state.remote_sha = branch, base, remote_sha
    pull = forge.find_pull_request(branch)
    if pull is not None:
        ctx.state.pull_request, ctx.state.pull_request_url = pull.number, pull.url
    outputs["remote_sha"] = remote_sha or ""
    outputs["pr"] = str(pull.number) if pull else ""
    return ActionResult(outputs)


def commit(ctx: ActionContext) -> ActionResult:
    """Commit all changes (or `paths`) with `message`. Nothing to commit is the outcome
    `committed=false`, a failure only with `require-changes`. Outputs committed, sha, files."""
    paths = [str(p) for p in ctx.args.get("paths") or []]
    add = "g add -A -- " + " ".join(_quote(p) for p in paths) if paths else "g add -A"
    script = f"""
{add}
if g diff --cached --quiet; then out committed false; out sha "$(g rev-parse HEAD)"; out files 0; exit 0; fi
files=$(g diff --cached --name-only | wc -l)
printf '%s' "$PIPE_MESSAGE" | g -c user.name="$PIPE_AUTHOR_NAME" -c user.email="$PIPE_AUTHOR_EMAIL" commit --quiet -F -
out committed true; out sha "$(g rev-parse HEAD)"; out files "$files"
"""
    env = {
        "PIPE_MESSAGE": str(ctx.args["message"]),
        "PIPE_AUTHOR_NAME": str(ctx.args.get("author-name") or "pipe"),
        "PIPE_AUTHOR_EMAIL": str(ctx.args.get("author-email") or "pipe@localhost"),
    }
    ok, outputs, _ = _run(ctx, script, env)
    if not ok:
        return ActionResult(outputs, error="git/commit failed (see the step log)")
    if outputs.get("committed") == "false" and _true(ctx.args.get("require-changes")):
        return ActionResult(outputs, error="git/commit: nothing to commit")
    return ActionResult(outputs)


def _true(value: object) -> bool:
    return value is True or str(value).lower() == "true"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def push(ctx: ActionContext) -> ActionResult:
    """Push HEAD to the run's branch with --force-with-lease; refuses the default branch, protected
    branches and any branch but the run's own. Outputs branch, sha, before."""
    forge = ctx.need_forge()
    branch = str(ctx.args.get("branch") or ctx.state.branch or "")
    refusal = _refuse_push(branch, ctx.state.branch, forge.default_branch())
    if refusal:
        return ActionResult(error=f"git/push: {refusal}; nothing was pushed")
    lease = ctx.state.remote_sha or ""
    if not ctx.publish:
        ok, outputs, _ = _run(ctx, 'out sha "$(g rev-parse HEAD)"', {})
        ctx.log(f"--no-publish: would push {outputs.get('sha', 'HEAD')} to {branch} (lease {lease or 'new branch'})")
        return ActionResult({"branch": branch, "sha": outputs.get("sha", ""), "before": lease, "published": "false"})
    script = """
sha=$(g rev-parse HEAD)
g push --quiet --force-with-lease="refs/heads/$PIPE_BRANCH:$PIPE_LEASE" origin "HEAD:refs/heads/$PIPE_BRANCH"
out sha "$sha"; out branch "$PIPE_BRANCH"
"""
    ok, outputs, _ = _run(ctx, script, {"PIPE_BRANCH": branch, "PIPE_LEASE": lease})
    if not ok:
        return ActionResult(
            outputs,
            error=f"git/push to {branch} failed (see the step log); the remote branch may have moved since pipe saw it",
        )
    sha = outputs["sha"]
    if sha != lease:
        ctx.record("push", branch, {"branch": branch, "before": lease or None, "after": sha})
    ctx.state.remote_sha = sha
    outputs.update(before=lease, published="true")
    return ActionResult(outputs)


def _refuse_push(branch: str, own: str | None, default: str) -> str | None:
    if not branch:
        return "no branch: run git/checkout first"
    if branch == default:
        return f"{branch} is the repository's default branch"
    if any(fnmatch.fnmatchcase(branch, pattern) for pattern in PROTECTED):
        return f"{branch} is a protected branch"
    if own is not None and branch != own:
        return f"{branch} is not this run's branch ({own})"
    return None


def sync(ctx: ActionContext) -> ActionResult:
    """Bring the run's branch up to date with the default branch (rebase, or merge). A conflict
    fails the step with the conflicting files listed and leaves the branch as it was.
    Outputs updated, sha, conflicts (one path a line)."""
    forge = ctx.need_forge()
    base = str(ctx.args.get("base") or ctx.state.base or forge.default_branch())
    strategy = str(ctx.args.get("strategy") or "rebase")
    if strategy == "rebase":
        integrate, abort = 'g rebase --quiet "origin/$PIPE_BASE"', "g rebase --abort"
    else:
        integrate, abort = 'g merge --quiet --no-edit "origin/$PIPE_BASE"', "g merge --abort"
    script = f"""
g fetch --quiet origin "+refs/heads/$PIPE_BASE:refs/remotes/origin/$PIPE_BASE"
before=$(g rev-parse HEAD)
export GIT_AUTHOR_NAME=pipe GIT_AUTHOR_EMAIL=pipe@localhost GIT_COMMITTER_NAME=pipe GIT_COMMITTER_EMAIL=pipe@localhost
if ! {integrate} >/dev/null 2>&1; then
  conflicts=$(g diff --name-only --diff-filter=U)
  {abort} || true
  g reset --quiet --hard "$before"
  {{ echo "conflicts<<PIPE_EOF"; echo "$conflicts"; echo "PIPE_EOF"; }} >> "$PIPE_OUTPUT"
  out updated false; out sha "$before"
  exit 1
fi
after=$(g rev-parse HEAD)
out sha "$after"; out conflicts ""
if [ "$after" = "$before" ]; then out updated false; else out updated true; fi
"""
    ok, outputs, _ = _run(ctx, script, {"PIPE_BASE": base})
    if not ok:
        conflicts = [line for line in outputs.get("conflicts", "").splitlines() if line]
        if conflicts:
            return ActionResult(
                outputs,
                error=f"git/sync: conflicts with {base} in {', '.join(conflicts)}; the branch was left as it was",
            )
        return ActionResult(outputs, error=f"git/sync with {base} failed (see the step log)")
    return ActionResult(outputs)
