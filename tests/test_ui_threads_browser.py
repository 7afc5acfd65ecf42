"""`pipe ui`'s threads pages in a real browser (Debian's chromium through Playwright): from the
header to the threads list, filtered by state, then one thread's page with its spec and its
transitions. A screenshot is kept in tests/artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.test_ui_browser import ARTIFACTS, page, server
from tests.test_ui_threads import _threads

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser
__all__ = ["page", "server"]


def test_the_threads_list_leads_to_a_threads_page(tmp_path: Path, server: str, page: Page) -> None:
    thread_id, other_id, run_id = _threads(tmp_path / "state")
    page.goto(server + "/")
    page.click("#nav-threads")
    page.wait_for_selector(f"tr[data-thread='{other_id}']")
    page.select_option("select[name=state]", "waiting_for_feedback")
    page.click("#apply-thread-filters")
    page.wait_for_selector(f"tr[data-thread='{other_id}']", state="detached")
    assert page.inner_text("#thread-count") == "1 thread(s)"
    page.click(f"tr[data-thread='{thread_id}'] a")
    page.wait_for_selector("#thread-state")
    assert page.inner_text("#thread-state") == "waiting_for_feedback"
    assert page.locator("#transitions tbody tr").count() == 3
    assert page.get_attribute("#specs tr[data-spec='1'] a", "href") == f"/runs/{run_id}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-thread.png"), full_page=True)
