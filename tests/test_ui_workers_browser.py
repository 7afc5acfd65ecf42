"""`pipe ui`'s workers page in a real browser (Debian's chromium through Playwright) against a
real Redis broker and a real `pipe worker`: the worker is listed with the run it executes and that
run's last heartbeat, and the queue shows the run waiting behind it. Without a broker the page says
so. A screenshot is kept in tests/artifacts/."""

from __future__ import annotations

import re
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runner.names import RunStatus
from runner.store import Store
from runner.ui.app import UI
from runner.workers.status import fleet_status
from tests.support.cli import Cli
from tests.support.pipelines import write_pipeline
from tests.support.uiserver import serving
from tests.support.workers import broker, flush_broker, workers
from tests.test_ui_browser import ARTIFACTS, page

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.redis]
__all__ = ["page"]

SLOW = """\
version: 1
name: slow-on-a-worker
steps:
  - id: nap
    sandbox: {network: none}
    run: sleep 20
"""


def test_the_workers_page_shows_a_worker_its_run_and_the_queue(
    cli: Cli, tmp_path: Path, page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    flush_broker()
    monkeypatch.setenv("PIPE_BROKER_URL", broker())
    state = tmp_path / "state"
    path = write_pipeline(tmp_path, SLOW)
    with workers(tmp_path, state, count=1, concurrency=1):
        first = cli("submit", str(path), "--state-dir", str(state))
        second = cli("submit", str(path), "--state-dir", str(state))
        aside = cli("submit", str(path), "--queue", "side", "--state-dir", str(state))  # no worker takes `side`
        assert first.code == 0 and second.code == 0 and aside.code == 0, first.err + second.err + aside.err
        running, waiting = first.out.strip(), second.out.strip()
        deadline = time.monotonic() + 60
        while Store(state).run(running).status != RunStatus.RUNNING:
            assert time.monotonic() < deadline, "the worker did not start the first run"
            time.sleep(0.3)
        time.sleep(6)  # at least one lease renewal
        with serving(UI(state, fleet=partial(fleet_status, broker(), state))) as url:
            page.goto(url + "/")
            page.click("#nav-workers")
            page.wait_for_selector(f"tr[data-run='{running}']")
            assert page.inner_text("#worker-count") == "1 worker(s) answered"
            row = page.locator(f"tr[data-run='{running}']")
            assert row.get_attribute("data-worker", timeout=5000).startswith("pipe.")  # type: ignore[union-attr]
            assert re.fullmatch(r"\d+(\.\d)? s ago", row.locator(".heartbeat").inner_text()), row.inner_text()
            assert float(row.locator(".heartbeat").inner_text().split()[0]) < 10
            assert page.inner_text("tr[data-queue='pipe'] .depth") == "1"  # the second run waits
            assert page.inner_text("tr[data-queue='side'] .depth") == "1"  # a queue a run was submitted to
            assert waiting not in page.content()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "ui-workers.png"), full_page=True)
    # a warm shutdown finishes the run under way and leaves the queued one to the next worker
    assert Store(state).run(running).status == RunStatus.SUCCEEDED
    assert Store(state).run(waiting).status == RunStatus.PENDING
    assert Store(state).run(aside.out.strip()).queue == "side"


def test_without_a_broker_the_page_says_so(tmp_path: Path, page: Page) -> None:
    with serving(UI(tmp_path / "state")) as url:
        page.goto(url + "/workers")
        assert "No broker is configured" in page.inner_text("#no-broker")
