"""git/checkout, git/commit, git/push, git/sync: git commands run in the step's sandbox.

Before each, the host refuses a workspace repository that sends git elsewhere (a `.git` file or
symlink, commondir, alternates, symlinks inside `.git`: runner/changes/gitsafety.py) and rewrites its
`.git/config` to a minimal known-good one; git then runs with its git dir and work tree pinned, no
system or global config, hooks and fsmonitor off. So nothing an earlier step wrote runs, and git
only ever acts on the workspace's own repository.

Only the sandbox that talks to the remote (fetch, push) gets GITHUB_TOKEN, through an askpass
helper (never a URL, argv or `.git/config`); committing, checking out and rebasing run with the
token withheld. With the local forge, fetch and push run on the host (pinned the same way), so its
bare repository is never mounted into a sandbox. Pushes go only to the run's own branch, never to
the default branch or a protected one, always with --force-with-lease against the commit pipe last
saw on the remote.

git/commit refuses to commit when what it would stage, or the commits the branch would push since
pipe last saw it on the forge (or, for a new branch, since its base), touch a `protect` glob
(default `.github/workflows/**`, runner/changes/protected.py): every step after the agent's (verify
runs the agent's tests and scripts) could have changed the work tree. Git on the host (pinned,
read-only) answers before the sandbox stages anything, and again after the commit, which is taken
back (`reset --soft`) should it touch one after all. Nothing is committed; the changes stay in the
work tree, unstaged, for a person to see (`pipe show --changes`) or put back (`pipe rollback`).
"""

from __future__ import annotations

import fnmatch
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from runner.actions import undo
from runner.actions.action import action
from runner.actions.base import ActionContext, ActionResult
from runner.changes import gitsafety
from runner.changes.gitrefs import branch_problem
from runner.changes.protected import protected_paths
from runner.forges.base import Forge
from sandbox.base import ExecStatus

A = TypeVar("A")

PROTECTED = ("main", "master", "develop", "trunk", "release/*", "releases/*")

PRELUDE = r"""set -eu
export GIT_DIR=/workspace/.git GIT_WORK_TREE=/workspace GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_ATTR_NOSYSTEM=1 GIT_NO_REPLACE_OBJECTS=1 GIT_TERMINAL_PROMPT=0
if [ -n "${GITHUB_TOKEN:-}" ]; then
  askpass=$(mktemp)
  cat > "$askpass" <<'ASKPASS'
#!/bin/sh
case "$1" in
  Username*) echo x-access-token ;;
  *) printf '%s\n' "${GITHUB_TOKEN:-}" ;;
esac
ASKPASS
  chmod 700 "$askpass"
  export GIT_ASKPASS="$askpass"
else
  unset GITHUB_TOKEN GH_TOKEN 2>/dev/null || true
fi
g() { git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c core.askPass= -c credential.helper= \
        -c advice.detachedHead=false -c init.defaultBranch=main "$@"; }
out() { printf '%s=%s\n' "$1" "$2" >> "$PIPE_OUTPUT"; }
"""


@dataclass(frozen=True)
class CheckoutArgs:
    """git/checkout's `with:` (`ref` defaults to the default branch, `branch` to pipe/RUN_ID)."""

    ref: str = ""
    branch: str = ""
    mode: Literal["new", "update", "auto"] = "auto"
    tags: bool = False


@dataclass(frozen=True)
class CommitArgs:
    """git/commit's `with:` (all changes unless `paths`; author pipe <pipe@localhost> by default;
    `protect` empty means the default, runner/changes/protected.py: PROTECT)."""

    message: str
    paths: tuple[str, ...] = ()
    author_name: str = ""
    author_email: str = ""
    require_changes: bool = False
    protect: tuple[str, ...] = ()


@dataclass(frozen=True)
class PushArgs:
    """git/push's `with:` (`branch` defaults to the run's)."""

    branch: str = ""


@dataclass(frozen=True)
class SyncArgs:
    """git/sync's `with:` (`base` defaults to the branch checked out from, else the default one)."""

    strategy: Literal["rebase", "merge"] = "rebase"
    base: str = ""


class _Refused(Exception):
    """An action's one-line refusal, turned into a failed step."""


def _local_repo(forge: Forge) -> Path | None:
    """The local forge's bare repository on the host (None for a remote forge)."""
    return Path(forge.clone_source().url) if forge.name == "local" else None


def _prepare(ctx: ActionContext, action: str) -> bool:
    """Check and sanitize the workspace repository; True when there is one. Raises _Refused."""
    try:
        exists = gitsafety.check_repository(ctx.workspace)
    except gitsafety.UnsafeRepository as problem:
        raise _Refused(
            f"{action}: refused: the workspace's git repository is unsafe ({problem}); nothing was run or pushed"
        ) from None
    if exists:
        forge = ctx.need_forge()
        origin = None if _local_repo(forge) else forge.clone_source().url
        gitsafety.sanitize_repository(ctx.workspace, origin, ctx.state.branch)
    return exists


def _host(ctx: ActionContext, action: str, *args: str) -> str:
    """git on the host for the (checked, sanitized) workspace repository; raises _Refused."""
    try:
        return gitsafety.host_git(ctx.workspace, *args)
    except gitsafety.UnsafeRepository as problem:
        raise _Refused(f"{action}: {problem}") from None


def _run(
    ctx: ActionContext, action: str, script: str, env: dict[str, str], *, token: bool = False
) -> tuple[bool, dict[str, str], int | None]:
    """Run `script` in a sandbox of the step after _prepare; GITHUB_TOKEN only when `token`."""
    _prepare(ctx, action)
    forge = ctx.need_forge()
    url = "" if _local_repo(forge) else forge.clone_source().url
    ran = ctx.run_in_sandbox(PRELUDE + script, {"PIPE_CLONE_URL": url, **env}, (), credentials=token)
    return ran.result.status is ExecStatus.SUCCEEDED, ran.outputs, ran.result.exit_code


def _fetch(ctx: ActionContext, action: str, branches: list[str], tags: bool) -> bool:
    """Fetch `branches` of the forge into refs/remotes/origin/ (creating the repository when there
    is none): on the host for the local forge, else in a sandbox holding the token."""
    refspecs = [f"+refs/heads/{b}:refs/remotes/origin/{b}" for b in branches]
    local = _local_repo(ctx.need_forge())
    if local is not None:
        _prepare(ctx, action)
        try:
            gitsafety.fetch(ctx.workspace, str(local), refspecs, tags)
        except gitsafety.UnsafeRepository as problem:
            raise _Refused(f"{action}: {problem}") from None
        gitsafety.give_back(ctx.workspace, *ctx.sandbox_user)
        return True
    script = '[ -d "$GIT_DIR" ] || g init --quiet\ng fetch --quiet ' + ("--tags" if tags else "--no-tags")
    script += ' "$PIPE_CLONE_URL" ' + " ".join(_quote(r) for r in refspecs) + "\n"
    ok, _, _ = _run(ctx, action, script, {}, token=True)
    return ok


def _refusing(
    function: Callable[[ActionContext, A], ActionResult],
) -> Callable[[ActionContext, A], ActionResult]:
    """`function`, with a _Refused turned into a failed step with its message."""

    @functools.wraps(function)
    def wrapped(ctx: ActionContext, args: A) -> ActionResult:
        try:
            return function(ctx, args)
        except _Refused as refusal:
            return ActionResult(error=str(refusal))

    return wrapped


@action("git/checkout", CheckoutArgs, needs_forge=True)
@_refusing
def checkout(ctx: ActionContext, args: CheckoutArgs) -> ActionResult:
    """Clone the forge repository into the workspace and put the run's branch there: a new branch
    from the default branch, or (mode update, or auto when the branch exists on the forge) the
    existing branch, to continue its pull request. Outputs branch, base, sha, remote_sha, mode."""
    forge = ctx.need_forge()
    base = args.ref or forge.default_branch()
    branch = args.branch or f"pipe/{ctx.run_id}"
    for name in (branch, base):
        problem = branch_problem(name)
        if problem:
            return ActionResult(error=f"git/checkout: invalid branch name {name!r}: {problem}")
    mode: str = args.mode
    remote_sha = forge.branch_sha(branch)
    if mode == "auto":
        mode = "update" if remote_sha else "new"
    if mode == "update" and remote_sha is None:
        return ActionResult(error=f"git/checkout: branch {branch} does not exist on the forge (mode update)")
    start = f"origin/{branch}" if mode == "update" else f"origin/{base}"
    if not _prepare(ctx, "git/checkout") and os.listdir(ctx.workspace):
        return ActionResult(error="git/checkout: the workspace is not empty and not a git repository")
    if not _fetch(ctx, "git/checkout", [base, branch] if mode == "update" else [base], args.tags):
        return ActionResult(error=f"git/checkout of {branch} failed while fetching (see the step log)")
    script = """
g checkout --quiet -B "$PIPE_BRANCH" "$PIPE_START"
out branch "$PIPE_BRANCH"; out base "$PIPE_BASE"; out mode "$PIPE_MODE"; out sha "$(g rev-parse HEAD)"
"""
    env = {"PIPE_BASE": base, "PIPE_BRANCH": branch, "PIPE_MODE": mode, "PIPE_START": start}
    ok, outputs, _ = _run(ctx, "git/checkout", script, env)
    if not ok:
        return ActionResult(outputs, error=f"git/checkout of {branch} failed (see the step log)")
    ctx.state.branch, ctx.state.base, ctx.state.remote_sha = branch, base, remote_sha
    pull = forge.find_pull_request(branch)
    if pull is not None:
        ctx.state.pull_request, ctx.state.pull_request_url = pull.number, pull.url
    outputs["remote_sha"] = remote_sha or ""
    outputs["pr"] = str(pull.number) if pull else ""
    return ActionResult(outputs)


@action("git/commit", CommitArgs, needs_forge=True)
@_refusing
def commit(ctx: ActionContext, args: CommitArgs) -> ActionResult:
    """Commit all changes (or `paths`) with `message`. Nothing to commit is the outcome
    `committed=false`, a failure only with `require-changes`. Outputs committed, sha, files."""
    paths = list(args.paths)
    head = None
    if _prepare(ctx, "git/commit"):
        head = _resolve(ctx, "HEAD")
        refusal = _touches_protected(ctx, args, paths)
        if refusal:
            return ActionResult(error=f"{refusal}; nothing was committed, the changes stay in the work tree")
    add = "g add -A -- " + " ".join(_quote(p) for p in paths) if paths else "g add -A"
    script = f"""
{add}
if g diff --cached --quiet; then out committed false; out sha "$(g rev-parse HEAD)"; out files 0; exit 0; fi
files=$(g diff --cached --name-only | wc -l)
printf '%s' "$PIPE_MESSAGE" | g -c user.name="$PIPE_AUTHOR_NAME" -c user.email="$PIPE_AUTHOR_EMAIL" commit --quiet -F -
out committed true; out sha "$(g rev-parse HEAD)"; out files "$files"
"""
    env = {
        "PIPE_MESSAGE": args.message,
        "PIPE_AUTHOR_NAME": args.author_name or "pipe",
        "PIPE_AUTHOR_EMAIL": args.author_email or "pipe@localhost",
    }
    ok, outputs, _ = _run(ctx, "git/commit", script, env)
    if not ok:
        return ActionResult(outputs, error="git/commit failed (see the step log)")
    if outputs.get("committed") == "true" and _touches_protected(ctx, args, paths):
        _take_back(ctx, head)
        return ActionResult(error="git/commit: refused: the commit touched protected paths; it was taken back")
    if outputs.get("committed") == "false" and args.require_changes:
        return ActionResult(outputs, error="git/commit: nothing to commit")
    return ActionResult(outputs)


def _pushed_since(ctx: ActionContext) -> str | None:
    """The commit a push of the run's branch builds on: the branch as pipe last saw it on the
    forge, else the remote-tracking ref of the base it was checked out from; None when neither
    resolves (then only what this commit adds counts)."""
    candidates = [ctx.state.remote_sha or "", f"refs/remotes/origin/{ctx.state.base}" if ctx.state.base else ""]
    for candidate in filter(None, candidates):
        found = _resolve(ctx, candidate)
        if found:
            return found
    return None


def _resolve(ctx: ActionContext, revision: str) -> str | None:
    """The commit `revision` names in the workspace repository, or None."""
    try:
        return gitsafety.host_git(ctx.workspace, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").strip()
    except gitsafety.UnsafeRepository:
        return None


def _touches_protected(ctx: ActionContext, args: CommitArgs, paths: list[str]) -> str | None:
    """Why committing `paths` (all when empty) would carry a protected path, or None. Raises _Refused."""
    try:
        changed = gitsafety.changed_since(ctx.workspace, _pushed_since(ctx), paths)
    except gitsafety.UnsafeRepository as problem:
        raise _Refused(f"git/commit: {problem}; nothing was committed") from None
    touched = protected_paths(changed, args.protect)
    if not touched:
        return None
    return f"git/commit: refused: the commit or the branch would touch protected paths: {', '.join(touched)}"


def _take_back(ctx: ActionContext, head: str | None) -> None:
    """Move the branch back to `head` (None: unborn), keeping the work tree; the index unstaged."""
    if head:
        _host(ctx, "git/commit", "reset", "--quiet", head)
    else:
        branch = _host(ctx, "git/commit", "symbolic-ref", "--quiet", "HEAD").strip()
        _host(ctx, "git/commit", "update-ref", "-d", branch)
        _host(ctx, "git/commit", "rm", "--cached", "-r", "--quiet", "--ignore-unmatch", ".")
    gitsafety.give_back(ctx.workspace, *ctx.sandbox_user)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@action("git/push", PushArgs, needs_forge=True, effects={"push": undo.undo_push})
@_refusing
def push(ctx: ActionContext, args: PushArgs) -> ActionResult:
    """Push HEAD to the run's branch with --force-with-lease; refuses the default branch, protected
    branches and any branch but the run's own. Outputs branch, sha, before."""
    forge = ctx.need_forge()
    branch = args.branch or ctx.state.branch or ""
    problem = branch_problem(branch) if branch else None
    if problem:
        return ActionResult(error=f"git/push: invalid branch name {branch!r}: {problem}; nothing was pushed")
    refusal = _refuse_push(branch, ctx.state.branch, forge.default_branch())
    if refusal:
        return ActionResult(error=f"git/push: {refusal}; nothing was pushed")
    lease = ctx.state.remote_sha or ""
    if not _prepare(ctx, "git/push"):
        return ActionResult(error="git/push: the workspace is not a git repository; nothing was pushed")
    sha = _host(ctx, "git/push", "rev-parse", "--verify", "HEAD^{commit}").strip()
    if not ctx.publish:
        ctx.log(f"--no-publish: would push {sha} to {branch} (lease {lease or 'new branch'})")
        return ActionResult({"branch": branch, "sha": sha, "before": lease, "published": "false"})
    failed = f"git/push to {branch} failed (see the step log); the remote branch may have moved since pipe saw it"
    lease_option = f"--force-with-lease=refs/heads/{branch}:{lease}"
    local = _local_repo(forge)
    if local is not None:
        try:
            gitsafety.host_git(ctx.workspace, "push", "--quiet", lease_option, str(local), f"{sha}:refs/heads/{branch}")
        except gitsafety.UnsafeRepository as problem:
            ctx.log(str(problem))
            return ActionResult({"sha": sha, "branch": branch}, error=failed)
        outputs = {"sha": sha, "branch": branch}
    else:
        script = """
lease="--force-with-lease=refs/heads/$PIPE_BRANCH:$PIPE_LEASE"
g push --quiet "$lease" "$PIPE_CLONE_URL" "$PIPE_SHA:refs/heads/$PIPE_BRANCH"
out sha "$PIPE_SHA"; out branch "$PIPE_BRANCH"
"""
        ok, outputs, _ = _run(
            ctx, "git/push", script, {"PIPE_BRANCH": branch, "PIPE_LEASE": lease, "PIPE_SHA": sha}, token=True
        )
        if not ok:
            return ActionResult(outputs, error=failed)
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


@action("git/sync", SyncArgs, needs_forge=True)
@_refusing
def sync(ctx: ActionContext, args: SyncArgs) -> ActionResult:
    """Bring the run's branch up to date with the default branch (rebase, or merge). A conflict
    fails the step with the conflicting files listed and leaves the branch as it was.
    Outputs updated, sha, conflicts (one path a line)."""
    forge = ctx.need_forge()
    base = args.base or ctx.state.base or forge.default_branch()
    problem = branch_problem(base)
    if problem:
        return ActionResult(error=f"git/sync: invalid branch name {base!r}: {problem}")
    if args.strategy == "rebase":
        integrate, abort = 'g rebase --quiet "origin/$PIPE_BASE"', "g rebase --abort"
    else:
        integrate, abort = 'g merge --quiet --no-edit "origin/$PIPE_BASE"', "g merge --abort"
    if not _fetch(ctx, "git/sync", [base], False):
        return ActionResult(error=f"git/sync with {base} failed while fetching (see the step log)")
    script = f"""
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
    ok, outputs, _ = _run(ctx, "git/sync", script, {"PIPE_BASE": base})
    if not ok:
        conflicts = [line for line in outputs.get("conflicts", "").splitlines() if line]
        if conflicts:
            return ActionResult(
                outputs,
                error=f"git/sync: conflicts with {base} in {', '.join(conflicts)}; the branch was left as it was",
            )
        return ActionResult(outputs, error=f"git/sync with {base} failed (see the step log)")
    return ActionResult(outputs)
