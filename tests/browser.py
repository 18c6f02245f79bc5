"""A real browser for the console's tests: Debian's Chromium driven by Playwright.

Skipped, saying why, where no Chromium is found (`FIREBREAK_CHROMIUM` names another); `.ci/run`
installs Debian's `chromium` when it is missing. A test that fails leaves a screenshot and the
page's HTML of each page it had open in var/test-output/<test>/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "var" / "test-output"
SCREENSHOTS = REPO / "var" / "screenshots"


def chromium_path() -> str | None:
    named = os.environ.get("FIREBREAK_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


# Per module: while Playwright's sync API is open it keeps an event loop running in this
# thread, and the async tests of other modules could not run theirs.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.skip(
            "browser tests skipped: no Chromium found (install Debian's `chromium` package, "
            "or set FIREBREAK_CHROMIUM to a Chromium binary)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


def keep_pages_of_failure(request: pytest.FixtureRequest, pages: list[Page]) -> None:
    """After the test: if it failed, a screenshot and the HTML of every page it opened."""
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.failed:
        return
    folder = OUTPUT / re.sub(r"[^\w.-]+", "_", request.node.nodeid)
    folder.mkdir(parents=True, exist_ok=True)
    for number, page in enumerate(pages):
        try:
            page.screenshot(path=str(folder / f"page-{number}.png"), full_page=True)
            (folder / f"page-{number}.html").write_text(page.content())
        except Exception as error:  # a closed page has nothing to keep
            (folder / f"page-{number}.error.txt").write_text(str(error))
    print(f"\nthe failing test's pages are in {folder}")
