"""`pipe ui` through Starlette's test client: pages, JSON, read-only and the token."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from runner.commands.ui import is_loopback
from runner.store import Store
from runner.ui.app import UI
from tests.support.runs import fake_runs

BASE = "http://127.0.0.1:8765"


def test_pages_and_json(tmp_path: Path) -> None:
    ids = fake_runs(tmp_path, 3) + fake_runs(tmp_path, 1, status="failed", pipeline="other")
    client = TestClient(UI(tmp_path).application(), base_url=BASE)
    page = client.get("/")
    assert page.status_code == 200 and page.text.count('<tr data-run="') == 4
    assert client.get("/?status=failed").text.count('<tr data-run="') == 1
    assert client.get("/?pipeline=hello").text.count('<tr data-run="') == 3
    detail = client.get(f"/api/runs/{ids[0]}").json()
    assert [s["id"] for s in detail["steps"]] == ["greet", "count"] and detail["run"]["status"] == "succeeded"
    run_page = client.get(f"/runs/{ids[0]}").text
    assert 'id="step-greet"' in run_page and "Rollback" in run_page
    assert client.get("/runs/nope").status_code == 404


def test_read_only_refuses_every_action_and_hides_them(tmp_path: Path) -> None:
    (run_id,) = fake_runs(tmp_path, 1, status="waiting")
    client = TestClient(UI(tmp_path, read_only=True).application(), base_url=BASE)
    for action in ("approve", "reject", "rollback", "resume", "anything"):
        response = client.post(f"/api/runs/{run_id}/{action}", data={"comment": "x", "mode": "hard"})
        assert response.status_code == 403, action
    page = client.get(f"/runs/{run_id}").text
    assert "Approve" not in page and "Rollback" not in page
    assert Store(tmp_path).run(run_id).status == "waiting"
    assert not (tmp_path / "ui-actions.log").exists()


def test_a_token_is_required_when_set(tmp_path: Path) -> None:
    fake_runs(tmp_path, 1)
    client = TestClient(UI(tmp_path, token="s3cret").application(), base_url=BASE)
    assert client.get("/").status_code == 401
    assert client.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/?token=wrong").status_code == 401
    response = client.get("/?token=s3cret")
    assert response.status_code == 200 and "pipe_token" in client.cookies
    assert client.get("/").status_code == 200


def test_only_loopback_goes_without_a_token() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_the_runs_list_filters_and_pages_in_the_database(tmp_path: Path) -> None:
    from runner.ui.query import PAGE_SIZE

    fake_runs(tmp_path, PAGE_SIZE + 5)
    fake_runs(tmp_path, 2, status="failed", pipeline="other")
    store = Store(tmp_path)
    pipeline_id = store.add_pipeline("fix", "fix.yml", "digest-fix", "version: 1")
    store.create_run(pipeline_id, {"repo": "octo/cat", "issue": 7})
    store.close()
    client = TestClient(UI(tmp_path).application(), base_url=BASE)
    first = client.get("/")
    assert first.text.count('<tr data-run="') == PAGE_SIZE and "58 run(s) · page 1 of 2" in first.text
    second = client.get("/?page=2")
    assert second.text.count('<tr data-run="') == 8 and 'id="previous-page"' in second.text
    assert client.get("/?page=x").status_code == 200  # not a number: page 1
    assert client.get("/?issue=7").text.count('<tr data-run="') == 1
    assert client.get("/?repository=octo/cat&status=pending").text.count('<tr data-run="') == 1
    assert client.get("/?repository=octo/dog").text.count('<tr data-run="') == 0
    listing = client.get("/api/runs?pipeline=other").json()
    assert listing["total"] == 2 and {run["status"] for run in listing["runs"]} == {"failed"}


def test_git_internals_fold_into_one_line() -> None:
    from runner.store import ChangeRecord
    from runner.ui.runview import fold_git

    def change(kind: str, target: str, **data: str) -> ChangeRecord:
        return ChangeRecord(1, "checkout", 0, 1, kind, target, dict(data), 0.0, None)

    kept, line = fold_git(
        [
            change("file_create", ".git/objects/ab/cdef"),
            change("file_modify", ".git/index"),
            change("branch_create", ".git/refs/heads/fix/issue-1", ref="refs/heads/fix/issue-1"),
            change("file_modify", "wordcount/__init__.py"),
        ]
    )
    assert [c.target for c in kept] == ["wordcount/__init__.py"]
    assert line == "git: 2 internal file(s) · refs: +fix/issue-1"


def test_a_finished_attempts_log_is_served_in_chunks_from_an_offset(tmp_path: Path) -> None:
    from runner.ui.logs import CHUNK

    (run_id,) = fake_runs(tmp_path, 1)
    store = Store(tmp_path)
    attempt = store.attempts(run_id)[0]
    store.close()
    Path(attempt.log_path or "").write_bytes(b"x" * CHUNK + b"\x1b[31mend\n")
    client = TestClient(UI(tmp_path).application(), base_url=BASE)
    url = f"/api/runs/{run_id}/attempts/{attempt.id}/log"
    first = client.get(url).json()
    assert first["offset"] == CHUNK and first["size"] == CHUNK + 9 and first["ended"] is True
    rest = client.get(f"{url}?offset={first['offset']}").json()
    assert "\x1b" not in rest["text"] and rest["text"].endswith("end\n")
    assert client.get(f"{url}?offset=-1").status_code == 400
    assert client.get(f"/api/runs/{run_id}/attempts/999999/log").status_code == 404
    assert client.get(url, headers={"Host": "evil.example:8765"}).status_code == 400


def test_the_vendored_library_is_served_under_the_same_host_rules(tmp_path: Path) -> None:
    client = TestClient(UI(tmp_path).application(), base_url=BASE)
    served = client.get("/static/vendor/dagre-3.1.3.min.js")
    assert served.status_code == 200 and "dagre" in served.text and "sourceMappingURL" not in served.text
    assert client.get("/static/vendor/dagre-3.1.3.min.js", headers={"Host": "evil.example:8765"}).status_code == 400
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/vendor/%2e%2e/%2e%2e/app.py").status_code == 404
