"""Shared by the browser tests: Debian's Chromium driven by playwright (never downloaded).

The browser is installed by scripts/test-deps.sh; `executable_path` points playwright at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
TIMEOUT_MS = 60_000


def launch() -> Iterator[Browser]:
    """The system Chromium, headless; closed when the generator ends."""
    # Generous waits: CI shares two cores among the API, the worker, Redis and the browser.
    expect.set_options(timeout=30_000)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def phone_page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh phone-sized context; fails the test on any JavaScript error."""
    # A phone-sized viewport: the page must read on a phone.
    context = browser.new_context(viewport={"width": 390, "height": 844})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(TIMEOUT_MS)
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def transcript(page: Page) -> list[tuple[int, str, str]]:
    """(seq, kind, text) of every committed message shown, in page order."""
    return page.eval_on_selector_all(
        "#transcript li.msg:not(.draft)",
        "els => els.map(e => [Number(e.dataset.seq), e.querySelector('.kind').textContent,"
        " e.querySelector('.text').textContent])")
