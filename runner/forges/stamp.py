"""Which run last wrote a forge body: a hidden `<!-- pipe:run RUN_ID -->` stamp that pipe puts in every
pull request and comment body it writes, so a rollback can tell a later run's work from its own."""

from __future__ import annotations

import re

_STAMP = re.compile(r"\n?<!-- pipe:run ([A-Za-z0-9_.-]+) -->\n?")


def stamp(body: str, run_id: str) -> str:
    """`body` carrying the stamp of `run_id` (replacing any earlier one), at its end."""
    return f"{_STAMP.sub(chr(10), body).rstrip()}\n<!-- pipe:run {run_id} -->\n"


def written_by(body: str | None) -> str | None:
    """The run whose stamp `body` carries, or None (not written by pipe, or the stamp was removed)."""
    found = _STAMP.findall(body or "")
    return found[-1] if found else None
