"""`pipe ui` in a real browser (Debian's chromium driven by Playwright) against a real server and
real runs: the list loads, a running step's status and log change on the page without a reload,
Approve finishes a waiting run, and a page of another origin cannot approve it. Screenshots are kept
in tests/artifacts/."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runner.store import Store
from runner.ui.app import UI
from tests.support.cli import Cli
from tests.support.pipelines import write_pipeline
from tests.support.records import present
from tests.support.uiserver import serving

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.docker, pytest.mark.browser]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A `pipe ui` server on a free loopback port, for the state in tmp_path/state."""
    ui = UI(tmp_path / "state")
    with serving(ui) as url:
        yield url
    ui.wait_for_actions()


@pytest.fixture
def page() -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1100, "height": 900})
        browser.close()


def test_the_page_follows_a_run_live_without_reloading(tmp_path: Path, server: str, page: Page) -> None:
    (tmp_path / "state").mkdir()
    path = write_pipeline(
        tmp_path,
        """\
        version: 1
        name: slow
        sandbox: {network: none}
        steps:
          - id: first
            run: echo one
          - id: second
            run: sleep 3 && echo two
          - id: third
            run: echo three
        """,
    )
    with subprocess.Popen(
        [sys.executable, "-m", "runner", "run", str(path), "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as process:
        page.goto(server + "/")
        row = page.wait_for_selector("tr[data-run] a", timeout=30_000)
        run_id = present(row, "the run's row").inner_text()
        page.click(f"text={run_id}")
        page.wait_for_selector("#step-second .status[data-outcome=running]", timeout=30_000)
        page.evaluate("window.__notReloaded = true")
        page.wait_for_selector("#step-second .status[data-outcome=success]", timeout=30_000)
        page.wait_for_selector("#run-status.succeeded", timeout=30_000)
        page.wait_for_selector("#log:has-text('three')", timeout=30_000)  # the log streamed too
        assert page.evaluate("window.__notReloaded") is True
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-run.png"), full_page=True)
        assert process.wait(timeout=60) == 0
    page.goto(server + "/")
    assert page.inner_text(f"tr[data-run='{run_id}'] .status") == "succeeded"
    page.screenshot(path=str(ARTIFACTS / "ui-runs.png"))


GATED = """\
version: 1
name: gated
sandbox: {network: none}
steps:
  - id: gate
    uses: wait/approval
    with: {prompt: "Ship it?"}
  - id: ship
    run: echo shipped
"""


def test_a_page_of_another_origin_cannot_approve(tmp_path: Path, server: str, page: Page, cli: Cli) -> None:
    path = write_pipeline(tmp_path, GATED)
    state = tmp_path / "state"
    assert cli("run", str(path), "--state-dir", str(state)).code == 3
    run_id = Store(state).run("latest").id
    page.goto(f"{server}/runs/{run_id}")  # the person has the UI open: its session cookie exists
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "index.html").write_text(
        f'<form id="f" method="post" action="{server}/api/runs/{run_id}/approve">'
        '<input name="comment" value="evil"><input name="csrf" value="guess"></form>'
        '<script>document.getElementById("f").submit()</script>'
    )
    # Another port on the same address: the same site, but another origin.
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(evil))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as other:
        threading.Thread(target=other.serve_forever, daemon=True).start()
        try:
            with page.expect_response(f"{server}/api/runs/{run_id}/approve") as answer:
                page.goto(f"http://127.0.0.1:{other.server_address[1]}/index.html")
            assert answer.value.status == 403
        finally:
            other.shutdown()
    time.sleep(1)
    assert Store(state).run(run_id).status == "waiting"
    assert not (state / "ui-actions.log").exists()


def test_approve_in_the_browser_finishes_a_waiting_run(tmp_path: Path, server: str, page: Page, cli: Cli) -> None:
    path = write_pipeline(tmp_path, GATED)
    assert cli("run", str(path), "--state-dir", str(tmp_path / "state")).code == 3
    run_id = Store(tmp_path / "state").run("latest").id
    page.goto(f"{server}/runs/{run_id}")
    page.fill("input[name=comment]", "from the browser")
    page.click("#approve")
    page.wait_for_selector("#run-status.succeeded", timeout=60_000)
    assert page.inner_text("#step-ship .status") == "success"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-approved.png"), full_page=True)
    gate = next(s for s in Store(tmp_path / "state").steps(run_id) if s.step_id == "gate")
    assert gate.outputs["comment"] == "from the browser"
