"""Reading a step's log for `pipe ui`: bounded chunks from a byte offset, opened without following
symlinks (logs live in the state dir, beside what steps write), shown free of terminal control
characters (runner.terminal.printable)."""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from runner.names import FINISHED
from runner.store import Store
from runner.terminal import printable

CHUNK = 64 * 1024  # bytes read per event, and the most of a log a page shows when it opens


def read_chunk(path: str | Path, offset: int, *, final: bool, limit: int = CHUNK) -> tuple[str, int, int]:
    """Up to `limit` bytes of the log at `path` from byte `offset`, decoded and made printable.

    Returns (text, the offset after it, the file's size). A multi-byte character cut by the limit
    is left for the next read unless `final` (nothing more will be written), and so is a carriage
    return at the end (its line feed may follow, and `\r\n` stays as it is). A missing file reads
    as empty; a symlink, FIFO or other non-regular file raises OSError without being read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return "", offset, 0
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path}: not a regular file")
        offset = min(max(offset, 0), info.st_size)
        data = os.pread(fd, min(limit, info.st_size - offset), offset)
    finally:
        os.close(fd)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text = decoder.decode(data, final=final)
    pending = len(decoder.getstate()[0])
    if text.endswith("\r") and not final:
        text, pending = text[:-1], pending + 1
    return printable(text), offset + len(data) - pending, info.st_size


def read_tail(path: str | Path) -> tuple[str, int]:
    """The last CHUNK bytes (at most) of a log, from a line start when one is near, and the offset
    where the file ended; ("", 0) for a log that cannot be read."""
    try:
        size = os.stat(path, follow_symlinks=False).st_size
        start = max(0, size - CHUNK)
        text, end, _ = read_chunk(path, start, final=False)
    except OSError:
        return "", 0
    if start and "\n" in text:
        text = text.split("\n", 1)[1]
    return text, end


async def follow_log(
    open_store: Callable[[], Store], run_id: str, attempt: int, offset: int, poll: float
) -> AsyncIterator[str]:
    """Server-Sent Events of a run's log: attempt `attempt` (0 or unknown: the newest) from byte
    `offset`. Each event holds at most CHUNK bytes as JSON {attempt, step, offset (after it), text}
    and the id `ATTEMPT:OFFSET`; when the attempt has ended and a newer one exists the stream goes
    on with that one from 0; `event: done` once the run has finished and its log is read. Only the
    offset is kept between reads, so memory stays bounded however long the log grows."""
    while True:
        store = open_store()
        try:
            finished = store.run(run_id).status in FINISHED  # read before the log: then it is whole
            attempts = store.attempts(run_id)
        finally:
            store.close()
        current = next((a for a in attempts if a.id == attempt), attempts[-1] if attempts else None)
        if current is None:
            if finished:
                yield "event: done\ndata: {}\n\n"
                return
            await asyncio.sleep(poll)
            continue
        if current.id != attempt:
            attempt, offset = current.id, offset if attempt == 0 else 0
        ended = finished or current.finished_at is not None
        try:
            text, after, size = read_chunk(current.log_path, offset, final=ended) if current.log_path else ("", 0, 0)
        except OSError:
            yield "event: done\ndata: " + json.dumps({"error": "the log is not a regular file"}) + "\n\n"
            return
        if after != offset or text:
            offset = after
            event = {"attempt": attempt, "step": current.step_id, "offset": offset, "text": text}
            yield f"id: {attempt}:{offset}\ndata: {json.dumps(event)}\n\n"
            if offset < size:
                await asyncio.sleep(0)
                continue
        if ended:
            newer = [a for a in attempts if a.id > attempt]
            if newer:
                attempt, offset = newer[0].id, 0
                continue
            if finished:
                yield "event: done\ndata: {}\n\n"
                return
        await asyncio.sleep(poll)
