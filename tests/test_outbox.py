"""The reporters' outbox: a hung destination never blocks the caller, jobs of one key coalesce, and
closing gives up after its grace with exactly one warning."""

from __future__ import annotations

import functools
import re
import threading

from runner.reporters.outbox import Outbox


def test_a_hung_write_never_blocks_submit_and_close_warns_once() -> None:
    release = threading.Event()
    warnings: list[str] = []
    outbox = Outbox("progress comment on issue #3", grace=0.2, warn=warnings.append)
    calls: list[int] = []

    def hang() -> None:
        calls.append(1)
        release.wait()

    for _ in range(50):
        outbox.submit("comment", hang)  # returns at once although the first write never ends
    outbox.close()
    release.set()
    assert len(warnings) == 1
    assert re.match(r"[12] update\(s\) of the progress comment on issue #3 were not written", warnings[0])
    assert len(calls) == 1  # the 49 later states coalesced behind the hung write


def test_failures_are_retried_within_the_budget_then_dropped() -> None:
    warnings: list[str] = []
    outbox = Outbox("webhook", budget=0.3, grace=1.0, warn=warnings.append)
    attempts: list[int] = []

    def fail() -> None:
        attempts.append(1)
        raise OSError("connection refused")

    outbox.submit("events", fail)
    outbox.close()
    assert len(attempts) >= 2  # retried
    assert outbox.exhausted or outbox.failures == len(attempts)
    assert len(warnings) == 1 and "OSError: connection refused" in warnings[0]


def test_jobs_of_one_key_coalesce_and_all_are_written() -> None:
    written: list[str] = []
    outbox = Outbox("comment", warn=lambda message: written.append(f"warning {message}"))
    for index in range(5):
        outbox.submit("a", functools.partial(written.append, f"a{index}"))
    outbox.submit("b", lambda: written.append("b"))
    outbox.close()
    assert written[-1] == "b" and written[-2] == "a4"
    assert not [line for line in written if line.startswith("warning")]


def test_settle_writes_what_is_pending_now_and_keeps_the_outbox_open() -> None:
    from runner.reporters.outbox import Outbox

    written: list[str] = []
    outbox = Outbox("test", spacing=30.0, warn=lambda message: None)
    outbox.submit("a", lambda: written.append("first"))
    outbox.settle()
    outbox.submit("a", lambda: written.append("second"))  # within the spacing: would wait 30 s
    outbox.settle()
    assert written == ["first", "second"]
    outbox.close()
