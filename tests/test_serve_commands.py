"""`/pipe` commands count only on lines a person wrote as commands: not inside a fenced code block,
not quoted (runner/serve/events.py); and serve's process limits (runner/serve/slots.py)."""

from __future__ import annotations

from runner.serve.events import command_line
from runner.serve.slots import Job, Slots


def test_commands_in_fenced_code_or_quoted_lines_do_not_count() -> None:
    assert command_line("```\n/pipe approve\n```") is None
    assert command_line("~~~~ text\n/pipe approve\n~~~\nstill inside\n~~~~") is None
    assert command_line("> /pipe approve\n>/pipe reject") is None
    quoted_then_real = command_line("> /pipe reject\n\n```sh\n/pipe retry\n```\n/pipe approve ship it")
    assert quoted_then_real is not None and quoted_then_real.groups() == ("approve", "ship it")
    assert command_line("Looks right.\n  /pipe Retry") is not None


def test_one_running_and_one_queued_per_key_and_a_global_cap() -> None:
    slots = Slots(limit=3)
    first, second, third = (Job("thread-1", f"d{n}", ("pipe",)) for n in range(3))
    # the second process starts and waits in the pipeline's concurrency group; the third is merged
    assert [slots.offer(first), slots.offer(second), slots.offer(third)] == ["started", "started", "merged"]
    other, decision = Job("thread-2", "d3", ()), Job(None, "d4", ())
    assert [slots.offer(other), slots.offer(decision)] == ["started", "queued"]  # the cap is 3
    assert slots.offer(Job("thread-2", "d5", ())) == "queued"
    assert slots.offer(Job("thread-2", "d6", ())) == "merged"
    assert slots.finish(first) == [decision]
    assert slots.offer(Job("thread-1", "d7", ())) == "queued"  # one running, one queued again
