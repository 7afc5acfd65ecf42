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
