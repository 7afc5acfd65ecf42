"""What a verified webhook delivery asks for, decided from its event name and payload alone (no
store, no network): start a rule's pipeline (`Launch`), a `/pipe` command (`Command`), archive a
thread (`Archive`), or nothing (`Ignore`, with the reason logged and answered).

Events (payloads as GitHub sends them):
- `issues` `labeled` with a rule's label -> that rule (inputs repo, issue), unless the sender
  labelled their own issue and its `author_association` is not allowed (an issue form's
  `labels:`, or triage given widely: an outsider's text must not start an agent run; labelling
  someone else's issue takes triage access already);
- `pull_request_review` `submitted` with state changes_requested -> changes-requested rules (repo, pr);
- `pull_request_review_comment` `created` mentioning @BOT -> mention rules (repo, pr);
- `issue_comment` `created` with a line `/pipe retry`, `/pipe approve` or `/pipe reject` -> Command
  (a line inside a fenced code block or quoted with `>` is not a command: it shows one);
- `pull_request` `closed` -> Archive (merged or not).
Events whose `sender` is the bot itself are ignored (no loops), except a pull request closed (a
merge pipe made still ends its thread, and archiving starts nothing); reviews, mentions, commands
and labels on one's own issue count only from authors whose `author_association` the config
allows; a rule's string inputs are templates over `event` (the payload), `repo` (OWNER/NAME) and
`number`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.errors import TemplateError
from runner.pipeline.expressions import Expressions
from runner.serve.config import Rule, ServeConfig

COMMANDS = ("retry", "approve", "reject")
_COMMAND = re.compile(r"[ \t]*/pipe[ \t]+(retry|approve|reject)\b[ \t]*(.*)", re.IGNORECASE)
_FENCE = re.compile(r"[ ]{0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class Launch:
    """Start `rules` (each its own run) for issue or pull request `number` of `repo`;
    `pull_request` says which it is. `inputs` holds each rule's rendered inputs, in order."""

    repo: str
    number: int
    pull_request: bool
    rules: tuple[Rule, ...]
    inputs: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Command:
    """A `/pipe NAME` comment by `by` on issue or pull request `number` of `repo`; `note` is the
    rest of its line (kept with an approval)."""

    name: str
    repo: str
    number: int
    pull_request: bool
    by: str
    note: str = ""


@dataclass(frozen=True)
class Archive:
    """Pull request `number` of `repo` was closed, `merged` or not."""

    repo: str
    number: int
    merged: bool


@dataclass(frozen=True)
class Ignore:
    """Nothing to do, and why (one line)."""

    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)


Decision = Launch | Command | Archive | Ignore


def decide(config: ServeConfig, bot: str, event: str, payload: Mapping[str, Any]) -> Decision:
    """What the delivery of `event` with `payload` asks for (see the module docstring). `bot` is
    pipe's own login. Never raises for an odd payload: what it cannot read is an Ignore."""
    try:
        return _decide(config, bot, event, payload)
    except (KeyError, TypeError, ValueError) as error:
        return Ignore(f"{event}: payload not understood ({type(error).__name__}: {error})")


def _login(value: Any) -> str:
    return str(value.get("login") or "") if isinstance(value, Mapping) else ""


def _same_login(one: str, other: str) -> bool:
    return one.lower().removesuffix("[bot]") == other.lower().removesuffix("[bot]")


def _decide(config: ServeConfig, bot: str, event: str, payload: Mapping[str, Any]) -> Decision:
    action = str(payload.get("action") or "")
    sender = _login(payload.get("sender"))
    closing = event == "pull_request" and action == "closed"  # archiving starts nothing: no loop
    if sender and _same_login(sender, bot) and not closing:
        return Ignore(f"{event}.{action}: sent by pipe's own identity {sender}")
    repository = payload.get("repository")
    repo = str(repository["full_name"]) if isinstance(repository, Mapping) else ""
    if not repo:
        return Ignore(f"{event}: no repository in the payload")
    if not config.watches(repo):
        return Ignore(f"{event}: repository {repo} is not in the configuration's repositories")
    if event == "issues" and action == "labeled":
        label = str((payload.get("label") or {}).get("name") or "")
        issue = payload["issue"]
        if not isinstance(issue, Mapping):
            raise TypeError("issue is not an object")
        author = _login(issue.get("user"))
        if author and _same_login(author, sender) and not _allowed(config, issue):
            return Ignore(f"{event}: {sender} labelled their own issue and is {issue.get('author_association')}")
        rules = [rule for rule in config.rules_for("issue-labeled") if rule.label == label]
        return _launch(rules, repo, int(payload["issue"]["number"]), False, payload, f"label {label!r}")
    if event == "pull_request_review" and action == "submitted":
        review = payload["review"]
        if str(review.get("state") or "").lower() != "changes_requested":
            return Ignore(f"{event}: review state {review.get('state')!r}, not changes_requested")
        if not _allowed(config, review):
            return Ignore(f"{event}: reviewer {_login(review.get('user'))} is {review.get('author_association')}")
        number = int(payload["pull_request"]["number"])
        return _launch(config.rules_for("changes-requested"), repo, number, True, payload, "changes requested")
    if event == "pull_request_review_comment" and action == "created":
        comment = payload["comment"]
        if not mentions(str(comment.get("body") or ""), bot):
            return Ignore(f"{event}: the comment does not mention @{bot.removesuffix('[bot]')}")
        if not _allowed(config, comment):
            return Ignore(f"{event}: author {_login(comment.get('user'))} is {comment.get('author_association')}")
        number = int(payload["pull_request"]["number"])
        return _launch(config.rules_for("mention"), repo, number, True, payload, "mention")
    if event == "issue_comment" and action == "created":
        return _command(config, repo, payload)
    if closing:
        pull = payload["pull_request"]
        return Archive(repo, int(pull["number"]), bool(pull.get("merged")))
    return Ignore(f"{event}.{action}: no rule for it" if action else f"{event}: no rule for it")


def mentions(body: str, bot: str) -> bool:
    """Whether `body` mentions @`bot` (an App's login without its "[bot]"), as a whole word."""
    name = re.escape(bot.removesuffix("[bot]"))
    return re.search(rf"(?<![\w@-])@{name}(?![\w-])", body, re.IGNORECASE) is not None


def command_line(body: str) -> re.Match[str] | None:
    """The first `/pipe NAME ...` line of `body` outside fenced code blocks (``` or ~~~) and not
    quoted (`>`): group 1 the command, group 2 the rest of the line; None when there is none."""
    fence: str | None = None
    for line in body.splitlines():
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
            continue
        if fence is not None:
            closing = _FENCE.match(line)
            marks = closing.group(1) if closing else ""
            if marks[:1] == fence[0] and len(marks) >= len(fence) and not line.strip().lstrip(fence[0]):
                fence = None
            continue
        if line.lstrip().startswith(">"):
            continue
        found = _COMMAND.fullmatch(line)
        if found:
            return found
    return None


def _allowed(config: ServeConfig, item: Mapping[str, Any]) -> bool:
    return str(item.get("author_association") or "NONE").upper() in config.allow


def _launch(
    rules: list[Rule], repo: str, number: int, pull_request: bool, payload: Mapping[str, Any], what: str
) -> Decision:
    if not rules:
        return Ignore(f"no rule for {what}")
    defaults: dict[str, Any] = {"repo": repo, "pr" if pull_request else "issue": number}
    context = {"event": dict(payload), "repo": repo, "number": number}
    rendered: list[dict[str, Any]] = []
    for rule in rules:
        inputs = dict(defaults)
        for name, value in rule.inputs.items():
            try:
                inputs[name] = Expressions(context).render(value) if isinstance(value, str) else value
            except TemplateError as error:
                return Ignore(f"rule {rule.on} ({rule.pipeline}): input {name}: {error}")
        rendered.append(inputs)
    return Launch(repo, number, pull_request, tuple(rules), tuple(rendered))


def _command(config: ServeConfig, repo: str, payload: Mapping[str, Any]) -> Decision:
    comment = payload["comment"]
    found = command_line(str(comment.get("body") or ""))
    if found is None:
        return Ignore("issue_comment: no /pipe command")
    author = _login(comment.get("user"))
    if not _allowed(config, comment):
        return Ignore(f"issue_comment: /pipe {found.group(1)} by {author}, who is {comment.get('author_association')}")
    issue = payload["issue"]
    return Command(
        name=found.group(1).lower(),
        repo=repo,
        number=int(issue["number"]),
        pull_request=bool(issue.get("pull_request")),
        by=author,
        note=found.group(2).strip(),
    )
