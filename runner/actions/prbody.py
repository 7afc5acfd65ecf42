"""The `## Changes` section of a pull request body, made from the branch's diff against its base
(each path with a one-line summary), enriched by the descriptions the agent gave, or that the pull
request already carried, for the same paths. Pure functions over text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from runner.forges.base import FileDiff

HEADING = "## Changes"
_ITEM = re.compile(r"^\s*[-*] `(?P<path>[^`]+)`(?: \([^)]*\))?: (?P<text>.+?)\s*$")
_NEXT_SECTION = re.compile(r"^(## |---\s*$|<!-- pipe:)")


def _section(body: str) -> tuple[int, int] | None:
    """(start, end) character offsets of the Changes section's lines below its heading, or None."""
    lines = body.splitlines(keepends=True)
    offset = 0
    for index, line in enumerate(lines):
        if line.rstrip() == HEADING:
            start = offset + len(line)
            end = start
            for following in lines[index + 1 :]:
                if _NEXT_SECTION.match(following):
                    break
                end += len(following)
            return start, end
        offset += len(line)
    return None


def descriptions(body: str | None) -> dict[str, str]:
    """path -> description from the `- `path`: description` lines of a body's Changes section."""
    where = _section(body or "")
    if where is None:
        return {}
    found: dict[str, str] = {}
    for line in (body or "")[where[0] : where[1]].splitlines():
        match = _ITEM.match(line)
        if match:
            found[match["path"]] = match["text"]
    return found


def summary(diff: FileDiff) -> str:
    """One line about a changed file, e.g. `modified, +3 -1`."""
    return f"{diff.status}, +{diff.additions} -{diff.deletions}"


def changes_section(files: Iterable[FileDiff], described: Mapping[str, str]) -> str:
    """The section's lines (no heading): every changed path with its description when one is
    known, and its summary; a line saying so when the branch changes nothing."""
    lines = []
    for diff in files:
        text = described.get(diff.path)
        lines.append(f"- `{diff.path}`: {text} ({summary(diff)})" if text else f"- `{diff.path}`: {summary(diff)}")
    return "\n".join(lines or ["- (no file differs from the base branch)"]) + "\n"


def with_diff_changes(body: str, files: Iterable[FileDiff], previous: str | None = None) -> str:
    """`body` with its Changes section made from `files` (the branch's diff against its base), the
    descriptions taken from `body` first, then from `previous` (the pull request's current body).
    A body without a Changes section is returned as it is."""
    where = _section(body)
    if where is None:
        return body
    described = {**descriptions(previous), **descriptions(body)}
    return f"{body[: where[0]]}\n{changes_section(files, described)}\n{body[where[1] :].lstrip(chr(10))}"
