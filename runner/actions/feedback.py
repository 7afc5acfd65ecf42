"""github/review-threads and github/reply-threads: read the review feedback on a pull request for
an agent, and answer it in the threads (made on the host; they never touch the workspace).

A thread's handle `n` is its 1-based place among all the pull request's review threads in creation
order, so the two actions (and the agent between them) agree on it even when new threads appear
during the round. Pipe's own identity (`Forge.viewer_login()`, "<slug>[bot]" for an App) is
compared without a "[bot]" suffix, since GitHub's GraphQL API drops it.

Only what people the pipeline trusts wrote reaches the agent: each comment's authorAssociation is
read, and threads opened by, and comments written by, authors outside `allow` (default OWNER,
MEMBER, COLLABORATOR, as `pipe serve`'s) are dropped (pipe's own comments are kept); the step log
says how many. github/review-threads outputs the ids of the threads it listed, and
github/reply-threads acts only on those (`ids`; without it, on the threads waiting for pipe now):
a decision naming any other thread is skipped, nothing is said or resolved there.

Replies are idempotent: each carries a hidden marker naming its thread and the comment it answers
(`<!-- pipe:reply PRRT_x/COMMENT_ID -->`, the thread's last comment by someone else), and a
thread where one of pipe's own comments has it is not answered again, so a retry or a resume never
replies twice while a reviewer's follow-up is answered in the next round. A marker in anyone
else's comment counts for nothing. Rounds are counted by the runs that replied (the `pipe:run`
stamp of pipe's replies), whether they committed or not. Each reply and each resolution is
recorded with its undo (delete the reply, unresolve the thread; runner/actions/undo.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from runner.actions import undo
from runner.actions.action import action
from runner.actions.base import ActionContext, ActionResult
from runner.forges.base import Forge, ReviewThread, has_marker, with_marker
from runner.forges.stamp import stamp, written_by

DECISIONS = ("fix", "decline", "human")
ALLOW = ("OWNER", "MEMBER", "COLLABORATOR")  # as runner/serve/config.py's DEFAULT_ALLOW
_REPLY_MARKER = re.compile(r"<!-- pipe:reply [^/\s]+/(\S+) -->")


@dataclass(frozen=True)
class ReviewThreadsArgs:
    """github/review-threads' `with:`: the pull request, and the author associations whose threads
    and comments count (see the module docstring)."""

    pr: int
    allow: tuple[str, ...] = ALLOW


@dataclass(frozen=True)
class ReplyThreadsArgs:
    """github/reply-threads' `with:` (see the module docstring); `decisions` the agent's result as
    JSON text: {"decisions": [{"thread": n, "decision": "fix"|"decline"|"human", "reason": ...}]}
    or the list itself; `ids` the node ids github/review-threads listed (its output `ids`)."""

    pr: int
    decisions: str
    commit: str = ""
    resolve: bool = True
    re_request: bool = True
    ids: tuple[str, ...] = ()
    allow: tuple[str, ...] = ALLOW


def same_login(a: str, b: str) -> bool:
    """Whether two logins name the same account (a bot's with or without "[bot]")."""
    return a.removesuffix("[bot]").lower() == b.removesuffix("[bot]").lower()


def pending(thread: ReviewThread, me: str) -> bool:
    """Whether `thread` waits for pipe: unresolved, not started by pipe, its last comment not pipe's."""
    if thread.resolved or not thread.comments:
        return False
    return not same_login(thread.comments[0].author, me) and not same_login(thread.comments[-1].author, me)


def answered_rounds(threads: Sequence[ReviewThread], me: str) -> int:
    """How many feedback rounds pipe answered: the distinct runs that stamped its replies (a reply
    without a stamp counts by its marker), with a commit or without."""
    rounds = {
        written_by(comment.body) or found
        for thread in threads
        for comment in thread.comments
        if same_login(comment.author, me)
        for found in _REPLY_MARKER.findall(comment.body)[:1]
    }
    return len(rounds)


def screen(threads: Sequence[ReviewThread], me: str, allow: Collection[str]) -> tuple[list[ReviewThread | None], int]:
    """`threads` as pipe may act on them: None for a thread opened by an author whose association
    is not in `allow` (upper case), the others without the comments of such authors (pipe's own
    are kept); and how many unresolved threads and comments were dropped."""
    screened: list[ReviewThread | None] = []
    dropped = 0
    for thread in threads:
        kept = tuple(c for c in thread.comments if same_login(c.author, me) or c.association.upper() in allow)
        if thread.comments and (not kept or kept[0] is not thread.comments[0]):
            screened.append(None)
            dropped += 0 if thread.resolved else len(thread.comments)
            continue
        dropped += 0 if thread.resolved else len(thread.comments) - len(kept)
        screened.append(replace(thread, comments=kept))
    return screened, dropped


def _allow(given: Sequence[str]) -> frozenset[str]:
    return frozenset(item.strip().upper() for item in given if item.strip()) or frozenset(ALLOW)


def _location(thread: ReviewThread) -> str:
    return f"{thread.path}:{thread.line}" if thread.line is not None else f"{thread.path} (outdated or whole file)"


def _prompt(numbered: list[tuple[int, ReviewThread]]) -> str:
    """The threads as markdown for the agent: a heading per thread and its comments, quoted."""
    if not numbered:
        return "No review threads are waiting for an answer.\n"
    parts = []
    for n, thread in numbered:
        lines = [f"### Thread {n}: {_location(thread)}", ""]
        for comment in thread.comments:
            quoted = "\n".join(f"> {line}" for line in comment.body.strip().splitlines()) or ">"
            lines += [f"**{comment.author}**:", quoted, ""]
        parts.append("\n".join(lines))
    return "\n".join(parts)


@action("github/review-threads", ReviewThreadsArgs, needs_forge=True)
def review_threads(ctx: ActionContext, args: ReviewThreadsArgs) -> ActionResult:
    """The review threads waiting for pipe, by the authors `allow` lets in. Outputs threads (JSON
    list: n, id, path, line, author, comments [{author, body}], url), ids (the listed threads' node
    ids, comma-separated, for github/reply-threads), count, prompt (markdown for the agent), branch
    and head (the pull request's head ref and sha), round (feedback rounds pipe already answered)."""
    forge = ctx.need_forge()
    pull = forge.pull_request(args.pr)
    me = forge.viewer_login()
    threads = forge.review_threads(args.pr)
    screened, dropped = screen(threads, me, _allow(args.allow))
    numbered = [(n, thread) for n, thread in enumerate(screened, start=1) if thread and pending(thread, me)]
    listed = [
        {
            "n": n,
            "id": thread.id,
            "path": thread.path,
            "line": thread.line,
            "author": thread.comments[0].author,
            "comments": [{"author": c.author, "body": c.body} for c in thread.comments],
            "url": thread.url,
        }
        for n, thread in numbered
    ]
    rounds = answered_rounds(threads, me)
    if dropped:
        ctx.log(
            f"#{args.pr}: dropped {dropped} comment(s) of review threads by authors outside allow"
            f" ({', '.join(sorted(_allow(args.allow)))})"
        )
    ctx.log(f"#{args.pr}: {len(numbered)} of {len(threads)} review thread(s) wait for an answer; round {rounds}")
    return ActionResult(
        {
            "threads": json.dumps(listed),
            "ids": ",".join(thread.id for _, thread in numbered),
            "count": str(len(numbered)),
            "prompt": _prompt(numbered),
            "branch": pull.head,
            "head": pull.head_sha,
            "round": str(rounds),
        }
    )


def parse_decisions(text: str) -> list[dict[str, Any]]:
    """The decisions in `text` (see ReplyThreadsArgs). Raises ValueError saying what is wrong."""
    data = json.loads(text) if text.strip() else []
    if isinstance(data, dict):
        data = data.get("decisions", [])
    if not isinstance(data, list):
        raise ValueError("decisions is not a list")
    found = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("thread"), int | str):
            raise ValueError(f"a decision without a thread number: {item!r}"[:200])
        if item.get("decision") not in DECISIONS:
            raise ValueError(
                f"thread {item.get('thread')}: decision {item.get('decision')!r} is not one of {DECISIONS}"
            )
        found.append(
            {"thread": int(item["thread"]), "decision": item["decision"], "reason": str(item.get("reason") or "")}
        )
    return found


def reply_body(decision: str, reason: str, commit: str) -> str:
    """What pipe says in a thread: "Fixed in <sha>." for a fix in a commit, else the reason."""
    if decision == "fix" and commit:
        return f"Fixed in {commit}." + (f"\n\n{reason}" if reason else "")
    if decision == "human":
        return "Leaving this one for a person" + (f": {reason}" if reason else ".")
    if decision == "fix":
        return f"Not changed in this round: {reason}" if reason else "Not changed in this round."
    return reason or "Not changing this."


@action(
    "github/reply-threads",
    ReplyThreadsArgs,
    needs_forge=True,
    effects={"thread_reply": undo.undo_thread_reply, "thread_resolve": undo.undo_thread_resolve},
)
def reply_threads(ctx: ActionContext, args: ReplyThreadsArgs) -> ActionResult:
    """Reply in each decided thread the round listed (`ids`, else the threads waiting for pipe now),
    resolve the fixed ones (with a commit), re-request review from those who reviewed (with a
    commit). Decisions for any other thread are skipped (logged). Outputs replied, resolved,
    declined, human (counts)."""
    forge = ctx.need_forge()
    try:
        decisions = parse_decisions(args.decisions)
    except (ValueError, TypeError) as error:
        return ActionResult(error=f"github/reply-threads: the decisions are not readable: {error}")
    commit = args.commit.strip()
    threads = forge.review_threads(args.pr)
    unknown = [d["thread"] for d in decisions if not 1 <= d["thread"] <= len(threads)]
    if unknown:
        return ActionResult(
            error=f"github/reply-threads: #{args.pr} has {len(threads)} review thread(s); no thread {unknown[0]}"
        )
    me = forge.viewer_login()
    screened, _ = screen(threads, me, _allow(args.allow))
    listed = set(args.ids)
    acting = {
        n
        for n, thread in enumerate(screened, start=1)
        if thread is not None and (thread.id in listed if listed else pending(thread, me))
    }
    skipped = [d["thread"] for d in decisions if d["thread"] not in acting]
    if skipped:
        ctx.log(
            f"skipped decisions for thread(s) {', '.join(map(str, skipped))}: not among the threads this round listed"
        )
    decisions = [d for d in decisions if d["thread"] in acting]
    counts = {"replied": 0, "resolved": 0, "declined": 0, "human": 0}
    for decided in decisions:
        counts["declined"] += decided["decision"] == "decline"
        counts["human"] += decided["decision"] == "human"
    if not ctx.publish:
        ctx.log(f"--no-publish: would answer {len(decisions)} review thread(s) of #{args.pr}")
        return ActionResult({**{k: "0" for k in counts}, "published": "false"})
    for decided in decisions:
        thread = screened[decided["thread"] - 1]
        assert thread is not None  # only screened threads are acted on
        fixed = decided["decision"] == "fix" and bool(commit)
        replied = _reply(ctx, forge, args.pr, thread, reply_body(decided["decision"], decided["reason"], commit), me)
        counts["replied"] += replied
        if fixed and args.resolve and not thread.resolved:
            forge.resolve_thread(thread.id)
            ctx.record("thread_resolve", f"#{args.pr} {thread.id}", {"pull_request": args.pr, "thread": thread.id})
            counts["resolved"] += 1
    if commit and decisions and args.re_request:
        _re_request(ctx, forge, args.pr)
    ctx.log(", ".join(f"{k} {v}" for k, v in counts.items()))
    return ActionResult({k: str(v) for k, v in counts.items()})


def _reply(ctx: ActionContext, forge: Forge, pr: int, thread: ReviewThread, text: str, me: str) -> bool:
    """Reply `text` in `thread` (screened) unless one of pipe's (`me`) comments already answers its
    last comment by someone else (see the module docstring); whether it replied."""
    answered = next((c.id for c in reversed(thread.comments) if not same_login(c.author, me)), 0)
    key = f"{thread.id}/{answered}"
    if any(same_login(c.author, me) and has_marker(c.body, "reply", key) for c in thread.comments):
        return False
    body = stamp(with_marker(text, "reply", key), ctx.run_id)
    made = forge.reply_to_thread(pr, thread.id, body)
    ctx.record("thread_reply", f"#{pr} {thread.id}", {"pull_request": pr, "thread": thread.id, "comment_id": made.id})
    return True


def _re_request(ctx: ActionContext, forge: Forge, pr: int) -> None:
    """Ask everyone who reviewed `pr` (but pipe and the author) to review again."""
    me = forge.viewer_login()
    author = forge.issue(pr).author
    again = [login for login in forge.reviewers(pr) if not same_login(login, me) and not same_login(login, author)]
    if again:
        forge.request_reviewers(pr, again)
        ctx.log(f"review requested again from {', '.join(again)}")
