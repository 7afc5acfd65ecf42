"""How many processes `pipe serve` lets run: at most `limit` at once over the whole serve process,
and per key (a thread and a pipeline) at most PER_KEY = 2: one running and one queued (a started
`pipe run` waiting in the pipeline's concurrency group, or one waiting here for a free slot). An
event for a key that has both is merged into the queued one: that run reads the thread's state
when it starts (a pr-feedback round reads every unanswered review thread), so a review with twenty
inline comments mentioning the bot is one round, not twenty-one processes. Jobs without a key (a
`/pipe approve` deciding a waiting run) count toward `limit` only.

Pure bookkeeping, no processes and no lock: runner/serve/launcher.py holds its lock around every
call and starts what `offer` and `finish` return.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

DEFAULT_LIMIT = 4  # processes at once; each is a pipeline run with its own sandboxes
PER_KEY = 2  # one running and one queued behind it


@dataclass(frozen=True)
class Job:
    """One process to start for delivery `delivery`: `argv`, under `key` (None: no per-key limit)."""

    key: str | None
    delivery: str
    argv: tuple[str, ...]


@dataclass
class Slots:
    """The running and waiting jobs (see the module docstring); `limit` >= 1."""

    limit: int = DEFAULT_LIMIT
    running: int = 0
    held: Counter[str] = field(default_factory=Counter)
    waiting: deque[Job] = field(default_factory=deque)

    def offer(self, job: Job) -> str:
        """Take `job`: "started" (the caller starts it now), "queued" (it starts when a slot frees)
        or "merged" (its key has a job running and one queued already: dropped)."""
        if job.key is not None:
            if self.held[job.key] >= PER_KEY:
                return "merged"
            self.held[job.key] += 1
        if self.running < self.limit:
            self.running += 1
            return "started"
        self.waiting.append(job)
        return "queued"

    def finish(self, job: Job) -> list[Job]:
        """`job` (one offer answered "started" for, or finish returned) ended; the jobs to start
        now, in the order they were offered."""
        self.running -= 1
        if job.key is not None:
            self.held[job.key] -= 1
            if self.held[job.key] <= 0:
                del self.held[job.key]
        ready: list[Job] = []
        while self.waiting and self.running < self.limit:
            ready.append(self.waiting.popleft())
            self.running += 1
        return ready
