"""The threads pages of `pipe ui` through Starlette's test client: the list (filtered by state), a
thread's page with its specs, runs and transitions, its JSON, and an unknown thread."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from runner.names import SpecKind, ThreadState
from runner.store import Store
from runner.threads import thread_for_issue, transition
from runner.ui.app import UI

BASE = "http://127.0.0.1:8765"


def _threads(state_dir: Path) -> tuple[str, str, str]:
    """Two threads: one through a first round (a run, a pull request), one just created."""
    store = Store(state_dir)
    try:
        run_id = store.create_run(store.add_pipeline("issue-to-pr", "i.yml", "d", "version: 1"), {"issue": 3})
        thread = thread_for_issue(store, "octo/demo", 3)
        store.add_spec(thread.id, SpecKind.INITIAL, None, run_id, "Fix <b>the</b> bug\x1b[31m")
        transition(store, thread.id, ThreadState.WORKING, "run applies spec 1", run_id)
        transition(
            store,
            thread.id,
            ThreadState.WAITING_FOR_FEEDBACK,
            "run succeeded",
            run_id,
            branch="fix/issue-3",
            pull_request=4,
        )
        other = thread_for_issue(store, "octo/demo", 5)
        return thread.id, other.id, run_id
    finally:
        store.close()


def test_the_threads_list_and_a_threads_page(tmp_path: Path) -> None:
    thread_id, other_id, run_id = _threads(tmp_path)
    client = TestClient(UI(tmp_path).application(), base_url=BASE)
    listing = client.get("/threads")
    assert listing.status_code == 200 and listing.text.count('<tr data-thread="') == 2
    assert 'id="nav-threads"' in client.get("/").text
    waiting = client.get("/threads?state=waiting_for_feedback").text
    assert f'data-thread="{thread_id}"' in waiting and other_id not in waiting
    assert client.get("/threads?state=nonsense").text.count('<tr data-thread="') == 2  # unknown: all

    page = client.get(f"/threads/{thread_id[:8]}")
    assert page.status_code == 200
    assert "octo/demo#3" in page.text and "fix/issue-3" in page.text and "#4" in page.text
    assert '<tr data-spec="1">' in page.text and f'href="/runs/{run_id}"' in page.text
    assert page.text.count('<tr data-transition="') == 3 and "waiting_for_feedback" in page.text
    assert "Fix &lt;b&gt;the&lt;/b&gt; bug" in page.text and "\x1b" not in page.text  # escaped, printable

    detail = client.get(f"/api/threads/{thread_id}").json()
    assert detail["thread"]["state"] == "waiting_for_feedback"
    assert [(s["version"], s["kind"], s["run_status"]) for s in detail["specs"]] == [(1, "initial", "pending")]
    assert [(t["from_state"], t["to_state"]) for t in detail["transitions"]] == [
        (None, "planning"),
        ("planning", "working"),
        ("working", "waiting_for_feedback"),
    ]
    assert client.get("/threads/t-nope").status_code == 404
    assert client.get("/api/threads/t-nope").status_code == 404
    assert client.get("/threads", headers={"Host": "evil.example:8765"}).status_code == 400
