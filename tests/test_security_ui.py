"""Attacks on `pipe ui` through Starlette's test client: cross-site POSTs, missing CSRF tokens,
foreign Host headers (DNS rebinding), actions and arguments outside the allow-list, and the log
stream (from an offset, bounded, no symlinks followed, no terminal control sequences)."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from runner.store import StepRecord, Store
from runner.ui.app import UI
from tests.support.cli import Cli
from tests.support.runs import fake_runs

BASE = "http://127.0.0.1:8765"  # the address `UI` is bound to by default, as `pipe ui` is
SAME_ORIGIN = {"Origin": BASE, "Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[UI]:
    """A UI whose actions really start (so a test sees what an attack would have started)."""
    instance = UI(tmp_path)
    yield instance
    instance.wait_for_actions()


def page_token(client: TestClient, run_id: str) -> str:
    """The CSRF token the run page embeds in its forms ("" when it has none)."""
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(f"/runs/{run_id}").text)
    return match.group(1) if match else ""


def spawned(ui: UI, state_dir: Path) -> bool:
    return bool(ui.actions) or (state_dir / "ui-actions.log").exists()


def test_a_cross_site_post_is_refused_and_the_run_still_waits(tmp_path: Path, ui: UI) -> None:
    (run_id,) = fake_runs(tmp_path, 1, status="waiting")
    client = TestClient(ui.application(), base_url=BASE)
    token = page_token(client, run_id)
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:9999"},  # same site, other origin
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        response = client.post(f"/api/runs/{run_id}/approve", data={"csrf": token}, headers=headers)
        assert response.status_code == 403, headers
    assert not spawned(ui, tmp_path)
    assert Store(tmp_path).run(run_id).status == "waiting"


def test_a_post_without_the_page_token_is_refused(tmp_path: Path, ui: UI) -> None:
    (run_id,) = fake_runs(tmp_path, 1, status="waiting")
    client = TestClient(ui.application(), base_url=BASE)
    other = TestClient(ui.application(), base_url=BASE)
    other_token = page_token(other, run_id)  # a token of another session
    page_token(client, run_id)
    for data in ({}, {"csrf": ""}, {"csrf": "x" * 64}, {"csrf": other_token}):
        response = client.post(f"/api/runs/{run_id}/approve", data=data, headers=SAME_ORIGIN)
        assert response.status_code == 403, data
    response = client.post(f"/api/runs/{run_id}/rollback", data={"mode": "hard"}, headers=SAME_ORIGIN)
    assert response.status_code == 403
    assert not spawned(ui, tmp_path)
    assert Store(tmp_path).run(run_id).status == "waiting"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1:9999", "localhost:80", "[::2]:8765"])
def test_a_foreign_host_header_is_refused_on_get_and_post(tmp_path: Path, ui: UI, host: str) -> None:
    (run_id,) = fake_runs(tmp_path, 1, status="waiting")
    client = TestClient(ui.application(), base_url=BASE)
    token = page_token(client, run_id)
    for path in ("/", f"/runs/{run_id}", f"/api/runs/{run_id}", f"/api/runs/{run_id}/events"):
        assert client.get(path, headers={"Host": host}).status_code in (400, 403, 421), path
    response = client.post(
        f"/api/runs/{run_id}/approve", data={"csrf": token}, headers={"Host": host, "Origin": f"http://{host}"}
    )
    assert response.status_code in (400, 403, 421)
    assert not spawned(ui, tmp_path)


def test_loopback_aliases_are_accepted_only_when_bound_to_loopback(tmp_path: Path) -> None:
    fake_runs(tmp_path, 1)
    client = TestClient(UI(tmp_path).application(), base_url=BASE)
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765"):
        assert client.get("/", headers={"Host": host}).status_code == 200, host
    exposed = TestClient(UI(tmp_path, host="192.0.2.7", token="t").application(), base_url="http://192.0.2.7:8765")
    auth = {"Authorization": "Bearer t"}
    assert exposed.get("/api/runs", headers=auth).status_code == 200
    for host in ("localhost:8765", "127.0.0.1:8765", "evil.example:8765"):
        assert exposed.get("/api/runs", headers={**auth, "Host": host}).status_code in (400, 403, 421), host


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("{run}/run", {}),  # `pipe run RUN`: any pipe command was reachable
        ("{run}/resume", {}),
        ("{run}/Approve", {}),
        ("{run}/..%2Frun", {}),
        ("{run}/rollback%3Fmode%3D--hard", {}),
        ("--help/approve", {}),  # a run id that is an option
        ("--token-file=token.txt/approve", {}),
        ("2%25/approve", {}),  # LIKE wildcard: not an exact run id
        ("{run}/rollback", {"mode": "--hard"}),
        ("{run}/rollback", {"mode": "bogus"}),  # used to fall back to --hard
        ("{run}/rollback", {}),
        ("{run}/rollback", {"mode": "steps", "steps": "1 --hard"}),
        ("{run}/rollback", {"mode": "steps", "steps": "0"}),
        ("{run}/rollback", {"mode": "to", "to": "--hard"}),  # not a step of the run
        ("{run}/rollback", {"mode": "to", "to": "nope"}),
        ("{run}/approve", {"comment": "\x1b]0;x\x07 \x00"}),  # control characters in an argument
    ],
)
def test_actions_outside_the_allow_list_start_nothing(tmp_path: Path, ui: UI, path: str, data: dict[str, str]) -> None:
    (run_id,) = fake_runs(tmp_path, 1, status="waiting")
    client = TestClient(ui.application(), base_url=BASE)
    token = page_token(client, run_id)
    response = client.post("/api/runs/" + path.format(run=run_id), data={"csrf": token, **data}, headers=SAME_ORIGIN)
    assert 400 <= response.status_code < 500
    assert not spawned(ui, tmp_path)


def test_the_rollback_plan_refuses_bad_options_without_a_server_error(tmp_path: Path) -> None:
    (run_id,) = fake_runs(tmp_path, 1, status="failed")
    client = TestClient(UI(tmp_path).application(), base_url=BASE)
    for query in ("mode=steps&steps=x", "mode=bogus", "mode=to&to=nope"):
        assert client.get(f"/api/runs/{run_id}/rollback-plan?{query}").status_code == 400, query
    assert client.get(f"/api/runs/{run_id}/rollback-plan?mode=to&to=greet").status_code == 200


def test_a_same_origin_post_with_the_page_token_starts_a_fixed_command(tmp_path: Path) -> None:
    started: list[list[str]] = []
    (run_id,) = fake_runs(tmp_path, 1, status="waiting")
    ui = UI(tmp_path, spawn=started.append)
    client = TestClient(ui.application(), base_url=BASE)
    token = page_token(client, run_id)
    assert token
    base = [sys.executable, "-m", "runner"]
    cases: list[tuple[str, dict[str, str], list[str]]] = [
        ("approve", {"comment": "looks --good"}, ["approve", "--state-dir", str(tmp_path), "--comment=looks --good"]),
        ("reject", {}, ["reject", "--state-dir", str(tmp_path)]),
        ("rollback", {"mode": "hard"}, ["rollback", "--state-dir", str(tmp_path), "--hard"]),
        ("rollback", {"mode": "soft"}, ["rollback", "--state-dir", str(tmp_path), "--soft"]),
        ("rollback", {"mode": "steps", "steps": "2"}, ["rollback", "--state-dir", str(tmp_path), "--steps=2"]),
        ("rollback", {"mode": "to", "to": "greet"}, ["rollback", "--state-dir", str(tmp_path), "--to=greet"]),
    ]
    for action, data, argv in cases:
        response = client.post(f"/api/runs/{run_id}/{action}", data={"csrf": token, **data}, headers=SAME_ORIGIN)
        assert response.status_code == 202, (action, response.text)
        assert started[-1] == [*base, *argv, "--", run_id]
    # The token also works as a header, and without Origin headers (a script, not a browser).
    response = client.post(f"/api/runs/{run_id}/reject", headers={"X-Pipe-CSRF": token})
    assert response.status_code == 202 and len(started) == len(cases) + 1


# ---- the log stream --------------------------------------------------------------------------


def run_with_log(state_dir: Path, log: Path, status: str = "succeeded") -> str:
    """A run with one attempt whose log is `log`."""
    store = Store(state_dir)
    try:
        run_id = store.create_run(store.add_pipeline("logged", "logged.yml", "digest-logged", "version: 1"), {})
        now = time.time()
        store.update_run(run_id, status=status, started_at=now - 1, finished_at=now)
        attempt = store.start_attempt(run_id, "talk", 0, 1, log, now - 1)
        store.finish_attempt(attempt, "succeeded", 0, now, {}, None)
    finally:
        store.close()
    return run_id


def log_events(client: TestClient, url: str, headers: dict[str, str] | None = None) -> list[dict[str, object]]:
    response = client.get(url, headers=headers or {})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    messages = [block for block in response.text.split("\n\n") if block.strip()]
    assert messages[-1].startswith("event: done")
    return [json.loads(block.split("data: ", 1)[1]) for block in messages[:-1]]


def test_the_log_stream_sends_only_the_bytes_after_the_offset(tmp_path: Path) -> None:
    log = tmp_path / "runs" / "logs" / "talk.1.log"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"hello\nworld \x1b[31mred\x1b[0m \x1b]0;title\x07\r\x08end\ttab\r\n")
    run_id = run_with_log(tmp_path, log)
    client = TestClient(UI(tmp_path).application(), base_url=BASE)
    events = log_events(client, f"/api/runs/{run_id}/log?offset=6")
    shown = r"world \x1b[31mred\x1b[0m \x1b]0;title\x07\x0d\x08end" + "\ttab\r\n"
    assert "".join(str(e["text"]) for e in events) == shown
    assert events[-1]["offset"] == log.stat().st_size
    # An EventSource reconnecting says where it was with Last-Event-ID.
    attempt = events[-1]["attempt"]
    events = log_events(
        client, f"/api/runs/{run_id}/log?offset=0", {"Last-Event-ID": f"{attempt}:{log.stat().st_size}"}
    )
    assert "".join(str(e["text"]) for e in events) == ""


def test_the_log_stream_reads_in_bounded_chunks(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    content = b"".join(b"line %06d \xc3\xa9\n" % n for n in range(20_000))  # about 300 KiB, multi-byte text
    log.write_bytes(content)
    run_id = run_with_log(tmp_path, log)
    events = log_events(TestClient(UI(tmp_path).application(), base_url=BASE), f"/api/runs/{run_id}/log?offset=0")
    assert len(events) >= 4 and all(len(str(e["text"]).encode()) <= 64 * 1024 for e in events)
    assert "".join(str(e["text"]) for e in events) == content.decode()


def test_the_log_stream_does_not_follow_a_symlink(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the secret\n")
    log = tmp_path / "talk.log"
    log.symlink_to(secret)
    finished, running = run_with_log(tmp_path, log), run_with_log(tmp_path, log, status="running")
    client = TestClient(UI(tmp_path).application(), base_url=BASE)
    response = client.get(f"/api/runs/{finished}/log?offset=0")
    assert response.status_code == 200 and "the secret" not in response.text
    assert "the secret" not in client.get(f"/runs/{running}").text


def test_the_run_page_shows_a_bounded_tail_of_a_running_log_and_no_control_characters(tmp_path: Path) -> None:
    log = tmp_path / "talk.log"
    log.write_bytes(b"x" * 100_000 + b"\nlast \x1b[2Jline\n")
    store = Store(tmp_path)
    (run,) = fake_runs(tmp_path, 1, status="failed")
    store.record_step(
        run, StepRecord("greet", 0, 0, "failure", "failure", 1, 1.0, 2.0, {"o": "\x1b]0;t\x07"}, "\x9b2J")
    )
    store.close()
    run_id = run_with_log(tmp_path, log, status="running")
    client = TestClient(UI(tmp_path).application(), base_url=BASE)
    page = client.get(f"/runs/{run_id}").text
    assert r"last \x1b[2Jline" in page and "\x1b" not in page and "x" * 70_000 not in page
    page = client.get(f"/runs/{run}").text  # outputs and errors too
    assert r"\x1b]0;t\x07" in page and r"\x9b2J" in page and "\x1b" not in page and "\x9b" not in page


@pytest.mark.docker
def test_approve_end_to_end_with_the_page_token(tmp_path: Path, cli: Cli) -> None:
    from tests.support.pipelines import write_pipeline

    path = write_pipeline(
        tmp_path,
        """\
        version: 1
        name: gated
        sandbox: {network: none}
        steps:
          - id: gate
            uses: wait/approval
          - id: ship
            run: echo shipped
        """,
    )
    state = tmp_path / "state"
    assert cli("run", str(path), "--state-dir", str(state)).code == 3
    run_id = Store(state).run("latest").id
    ui = UI(state)
    client = TestClient(ui.application(), base_url=BASE)
    response = client.post(
        f"/api/runs/{run_id}/approve", data={"csrf": page_token(client, run_id), "comment": "ok"}, headers=SAME_ORIGIN
    )
    assert response.status_code == 202
    ui.wait_for_actions(timeout=120)
    assert Store(state).run(run_id).status == "succeeded"


def test_resume_is_allowed_for_a_failed_run_only_from_one_of_its_steps(tmp_path: Path) -> None:
    started: list[list[str]] = []
    (run_id,) = fake_runs(tmp_path, 1, status="failed")
    (done_id,) = fake_runs(tmp_path / "other", 1, status="succeeded")
    ui = UI(tmp_path, spawn=started.append)
    client = TestClient(ui.application(), base_url=BASE)
    token = page_token(client, run_id)
    assert token and 'id="resume-form"' in client.get(f"/runs/{run_id}").text
    base = [sys.executable, "-m", "runner", "resume", "--state-dir", str(tmp_path)]
    for data, argv in (({}, base), ({"from": "count"}, [*base, "--from=count"])):
        response = client.post(f"/api/runs/{run_id}/resume", data={"csrf": token, **data}, headers=SAME_ORIGIN)
        assert response.status_code == 202, response.text
        assert started[-1] == [*argv, "--", run_id]
    for bad in ("--hard", "nope", "count --skip greet"):
        response = client.post(f"/api/runs/{run_id}/resume", data={"csrf": token, "from": bad}, headers=SAME_ORIGIN)
        assert response.status_code == 400, bad
    other = UI(tmp_path / "other", spawn=started.append)
    other_client = TestClient(other.application(), base_url=BASE)
    other_token = page_token(other_client, done_id)
    response = other_client.post(f"/api/runs/{done_id}/resume", data={"csrf": other_token}, headers=SAME_ORIGIN)
    assert response.status_code == 409
    assert len(started) == 2
