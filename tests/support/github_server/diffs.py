"""Unified diffs as GitHub reads them for review comments: hunks of one file's diff, which lines
can carry a comment (RIGHT: added and context lines of the new side; LEFT: deleted lines of the old
side), the `diff_hunk` and `position` of a comment, and where a line moved to in a later commit."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Hunk:
    """One hunk: its header line, old and new start and length, and its body lines (each with its
    " ", "+" or "-" prefix); `position` is the header's position in the file's diff (first = 0)."""

    header: str
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: tuple[str, ...]
    position: int


@dataclass(frozen=True)
class Spot:
    """A commentable line: the hunk it is in and its index among the hunk's lines."""

    hunk: Hunk
    index: int

    @property
    def diff_hunk(self) -> str:
        """What GitHub shows above a comment: the hunk's header and its lines down to this one."""
        return "\n".join((self.hunk.header, *self.hunk.lines[: self.index + 1]))

    @property
    def position(self) -> int:
        """Lines below the file's first hunk header (GitHub's deprecated `position`)."""
        return self.hunk.position + self.index + 1


def hunks(diff: str) -> list[Hunk]:
    """The hunks of one file's unified diff (`git diff -- PATH` output); [] when it has none."""
    found: list[Hunk] = []
    header: re.Match[str] | None = None
    body: list[str] = []
    position = 0

    def close() -> None:
        nonlocal position
        if header is not None:
            old, new = header.group(2), header.group(4)
            found.append(
                Hunk(
                    header.string,
                    int(header.group(1)),
                    1 if old is None else int(old),
                    int(header.group(3)),
                    1 if new is None else int(new),
                    tuple(body),
                    position,
                )
            )
            position += len(body) + 1

    for line in diff.splitlines():
        match = _HEADER.match(line)
        if match:
            close()
            header, body = match, []
        elif header is not None and line[:1] in (" ", "+", "-"):
            body.append(line)
    close()
    return found


def locate(found: list[Hunk], line: int, side: str) -> Spot | None:
    """Where `line` of `side` ("RIGHT" = the new file, "LEFT" = the old one) is commentable."""
    for hunk in found:
        old, new = hunk.old_start, hunk.new_start
        for index, text in enumerate(hunk.lines):
            kind = text[:1]
            if side == "RIGHT" and kind in (" ", "+") and new == line:
                return Spot(hunk, index)
            if side == "LEFT" and kind == "-" and old == line:
                return Spot(hunk, index)
            old += kind in (" ", "-")
            new += kind in (" ", "+")
    return None


def at_position(found: list[Hunk], position: int) -> tuple[int, str] | None:
    """The (line, side) at a diff `position`, or None when no commentable line is there."""
    for hunk in found:
        if hunk.position < position <= hunk.position + len(hunk.lines):
            index = position - hunk.position - 1
            before = hunk.lines[:index]
            kind = hunk.lines[index][:1]
            if kind == "-":
                return hunk.old_start + sum(t[:1] in (" ", "-") for t in before), "LEFT"
            return hunk.new_start + sum(t[:1] in (" ", "+") for t in before), "RIGHT"
    return None


def follow(changes: str, line: int) -> int | None:
    """Where `line` of a file is after `changes` (its zero-context diff to a later commit), or None
    when the line itself was changed or deleted (the comment on it is then outdated)."""
    shift = 0
    for hunk in hunks(changes):
        if hunk.old_count == 0:  # lines inserted after old_start
            if line > hunk.old_start:
                shift += hunk.new_count
            continue
        end = hunk.old_start + hunk.old_count - 1
        if hunk.old_start <= line <= end:
            return None
        if line > end:
            shift += hunk.new_count - hunk.old_count
    return line + shift
