"""`pipe ui`'s run page, timeline and run tree in a real browser (Debian's chromium through
Playwright): a failed run with a retry (its log opened and searched, a line linked), `pipe demo`'s
issue-to-pr run (the pull request link, the trigger, git internals folded), a milestone with six
children (one failed, one skipped) whose graph links to the failed child, and keyboard-only
navigation reaching every action. Screenshots are kept in tests/artifacts/."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runner.store import StepRecord, Store
from tests.support.cli import Cli
from tests.support.pipelines import write_pipeline
from tests.support.records import present
from tests.test_ui_browser import ARTIFACTS, page, server

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.docker, pytest.mark.browser]
__all__ = ["page", "server"]

RETRIED = """\
version: 1
name: flaky
sandbox: {network: none}
steps:
  - id: prepare
    run: printf 'alpha\\nbeta\\nthe known line 42\\ngamma\\n'
  - id: flaky
    retry: {attempts: 2, backoff: {initial: 1s}}
    run: "echo 'try failed: no luck' && exit 1"
"""


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_a_failed_run_shows_its_retry_and_its_logs(tmp_path: Path, server: str, page: Page, cli: Cli) -> None:
    path = write_pipeline(tmp_path, RETRIED)
    state = tmp_path / "state"
    assert cli("run", str(path), "--state-dir", str(state)).code == 1
    run_id = Store(state).run("latest").id
    page.goto(f"{server}/runs/{run_id}")
    assert page.inner_text("#run-status") == "failed"
    assert page.locator("#timeline rect.bar.retry").count() == 1  # the second attempt of flaky
    assert "retry 2" in page.inner_text("#timeline")
    page.click("#step-prepare details.log summary")
    page.wait_for_selector("#step-prepare .line:has-text('the known line 42')")
    page.fill("#step-prepare .log-search", "known line")
    assert page.inner_text("#step-prepare .log-count") == "1 matching line(s)"
    line = page.locator("#step-prepare .line:not([hidden])")
    assert line.count() == 1
    line_id = line.get_attribute("id")
    shot(page, "ui-failed-run.png")
    page.goto(f"{server}/runs/{run_id}#{line_id}")  # a link to the line opens its log there
    page.wait_for_selector(f"#{line_id}.target")
    assert "the known line 42" in page.inner_text(f"#{line_id}")
    page.click("#step-flaky details.log >> nth=1")
    page.wait_for_selector("#step-flaky .line:has-text('try failed: no luck')")


def test_the_demo_run_page_shows_the_issue_and_its_pull_request(
    tmp_path: Path, server: str, page: Page, cli: Cli
) -> None:
    state = tmp_path / "state"
    result = cli("demo", "--state-dir", str(state))
    assert result.code == 0, result.out + result.err
    run_id = Store(state).run("latest").id
    page.goto(server + "/?issue=1&pipeline=issue-to-pr")
    assert page.inner_text(f"tr[data-run='{run_id}'] td:nth-child(4)") == "demo"
    assert page.inner_text("#count").startswith("1 run(s)")
    shot(page, "ui-runs-filtered.png")
    page.click(f"text={run_id}")
    page.wait_for_selector("#pr-link")
    assert page.get_attribute("#pr-link", "href") and page.inner_text("#pr-link").startswith("#")
    assert page.inner_text("#issue").startswith("#1 ")
    assert page.inner_text("#branch") == "fix/issue-1"
    assert page.inner_text("#trigger") == "demo"
    assert "tests: passed" in page.inner_text("#badges").lower(), page.inner_text("#badges")
    page.click("#step-checkout > details:last-of-type > summary")  # its changes
    folded = page.inner_text("#step-checkout .folded")
    assert folded.startswith("git: ") and "refs: +fix/issue-1" in folded, folded
    assert ".git/" not in page.inner_text("#step-checkout")
    assert page.locator("details.iteration").count() >= 1  # the develop group and its iteration
    shot(page, "ui-demo-run.png")


def milestone(state: Path) -> tuple[str, dict[str, str]]:
    """A finished milestone run with six children (a -> b -> c, a -> d, e, f): d failed, c skipped."""
    store = Store(state)
    parent_pipeline = store.add_pipeline("milestone", "pipelines/milestone.yml", "d1", "version: 1")
    child_pipeline = store.add_pipeline("issue-to-pr", "pipelines/issue-to-pr.yml", "d2", "version: 1")
    parent = store.create_run(parent_pipeline, {"milestone": "m1"})
    now = time.time()
    needs = {"1": [], "2": ["1"], "3": ["2"], "4": ["1"], "5": [], "6": []}
    statuses = {"1": "succeeded", "2": "succeeded", "4": "failed", "5": "succeeded", "6": "succeeded"}
    runs: dict[str, str] = {}
    for key, status in statuses.items():
        child = store.create_run(child_pipeline, {"issue": key}, "parent", parent=(parent, key))
        store.update_run(child, status=status, started_at=now - 5, finished_at=now - 1, workspace=str(state))
        runs[key] = child
    items = [{"id": key, "needs": need, "inputs": {"issue": key}} for key, need in needs.items()]
    results = [
        {"key": key, "status": statuses.get(key, "skipped"), "run": runs.get(key, ""), "reason": "", "pull_request": ""}
        for key in needs
    ]
    store.record_step(
        parent,
        StepRecord("issues", 0, 0, "success", "success", 1, now - 6, now - 5, {"children": json.dumps(items)}, None),
    )
    store.record_step(
        parent,
        StepRecord(
            "resolve", 0, 1, "failure", "failure", 1, now - 5, now, {"children": json.dumps(results)}, "1 failed"
        ),
    )
    store.update_run(parent, status="failed", started_at=now - 6, finished_at=now, workspace=str(state))
    store.close()
    return parent, runs


def test_the_run_tree_shows_progress_and_follows_the_failed_child(tmp_path: Path, server: str, page: Page) -> None:
    parent, runs = milestone(tmp_path / "state")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{server}/runs/{parent}")
    page.wait_for_selector("svg.dag[data-layout=dagre]")  # the vendored dagre laid the graph out
    assert all(url.startswith(server + "/") for url in requested), requested  # nothing left the machine
    assert f"{server}/static/vendor/dagre-3.1.3.min.js" in requested
    assert page.locator("#tree .node").count() == 6
    assert page.locator("#tree path.edge").count() == 3
    progress = page.inner_text("#progress")
    assert "done 4 (67%)" in progress and "failed 1 (17%)" in progress and "skipped 1 (17%)" in progress
    assert page.locator("#tree [data-child='3'] .node.skipped").count() == 1
    shot(page, "ui-run-tree.png")
    for _ in range(40):  # the keyboard reaches the graph's nodes: Tab to the failed child, Enter
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('data-child')") == "4":
            break
    else:
        raise AssertionError("Tab never reached the failed child's node")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/runs/{runs['4']}")
    assert page.inner_text("#run-status") == "failed"
    assert runs["4"] in page.url


GATED = """\
version: 1
name: gated
sandbox: {network: none}
steps:
  - id: build
    run: echo built
  - id: gate
    uses: wait/approval
    with: {prompt: "Ship it?"}
  - id: ship
    run: echo shipped
"""


def test_the_keyboard_alone_reaches_every_action_and_approves(
    tmp_path: Path, server: str, page: Page, cli: Cli
) -> None:
    path = write_pipeline(tmp_path, GATED)
    state = tmp_path / "state"
    assert cli("run", str(path), "--state-dir", str(state)).code == 3
    run_id = Store(state).run("latest").id
    page.goto(f"{server}/runs/{run_id}")
    assert page.locator("#timeline rect.bar.wait").count() == 1  # the wait for a decision
    focused = "document.activeElement.id || document.activeElement.closest('[id]')?.id || ''"

    def tab_to(target: str) -> set[str]:
        reached = set()
        for _ in range(80):
            page.keyboard.press("Tab")
            reached.add(page.evaluate(focused))
            if target in reached:
                return reached
        raise AssertionError(f"Tab never reached {target}: {sorted(reached)}")

    reached = tab_to("rollback")
    assert {"approve", "reject"} <= reached and any(name.startswith("log-") for name in reached), reached
    page.keyboard.press("Enter")  # opens Rollback…
    tab_to("rollback-preview")
    page.keyboard.press("Enter")  # the plan is shown before anything is rolled back
    page.wait_for_selector("#rollback-plan:not([hidden])")
    assert page.is_visible("#rollback-confirm")
    shot(page, "ui-keyboard-plan.png")
    page.focus("input[name=comment]")
    page.keyboard.type("by keyboard")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the Approve button
    page.wait_for_selector("#run-status.succeeded", timeout=60_000)
    shot(page, "ui-keyboard-approved.png")
    gate = next(s for s in Store(state).steps(run_id) if s.step_id == "gate")
    assert gate.outputs["comment"] == "by keyboard"


STREAMED = """\
version: 1
name: streamed
sandbox: {network: none}
steps:
  - id: talk
    run: echo first line && sleep 4 && echo second line
"""


def test_an_open_log_streams_while_its_step_runs(tmp_path: Path, server: str, page: Page) -> None:
    import subprocess
    import sys

    path = write_pipeline(tmp_path, STREAMED)
    state = tmp_path / "state"
    state.mkdir()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    with subprocess.Popen(
        [sys.executable, "-m", "runner", "run", str(path), "--state-dir", str(state)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as process:
        page.goto(server + "/")
        run_id = present(page.wait_for_selector("tr[data-run] a", timeout=30_000), "the run's row").inner_text()
        page.goto(f"{server}/runs/{run_id}")
        page.wait_for_selector("#step-talk .status[data-outcome=running]", timeout=30_000)
        page.click("#step-talk details.log summary")
        page.wait_for_selector("#step-talk .line:has-text('first line')", timeout=30_000)
        page.wait_for_selector("#step-talk .line:has-text('second line')", timeout=30_000)
        assert process.wait(timeout=60) == 0
    page.wait_for_selector("#run-status.succeeded", timeout=30_000)
    time.sleep(1.5)  # any read still due has happened
    assert page.locator("#step-talk .line").all_inner_texts() == ["1first line", "2second line"]
    reads = [url for url in asked if "/attempts/" in url]
    assert len(reads) >= 2 and any(not url.endswith("offset=0") for url in reads), reads  # only what is new
    shot(page, "ui-streamed-log.png")
