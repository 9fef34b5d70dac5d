"""The viewer page with authentication on, in a real headless Chromium against a live server and
the real worker: the link the run command prints (`#token=`) opens the page signed in, a person
posts in turn, nothing is requested from anywhere but the service, and the API docs stay
offline too."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from core.ground.settings import Settings
from tests.browser import ARTIFACTS, launch, phone_page
from tests.security.conftest import Users, serve


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    yield from phone_page(browser)


@pytest.fixture
def auth_server(sec_settings: Settings, r, celery_app, celery_worker) -> Iterator[str]:
    """Authentication on, steps run by the real worker."""
    from api import create_app

    app = create_app({"TESTING": True}, settings=sec_settings, redis_client=r,
                     dispatch=lambda did: celery_app.send_task("discussion.step", args=[did]))
    base, server, thread = serve(app)
    yield base
    app.extensions["orchestrator"].hub.stop()
    server.shutdown()
    thread.join(timeout=10)


def _hosts(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda req: seen.append(urlsplit(req.url).hostname or ""))
    return seen


def test_the_printed_link_opens_the_page_signed_in(auth_server: str, users: Users,
                                                   page: Page) -> None:
    body = {"topic": "Adopt passkeys?", "protocol": "round_robin", "max_rounds": 2,
            "agents": [{"persona": "Security Expert", "params": {"latency_ms": 200}}],
            "humans": [{"user_id": "alice", "name": "Alice"}],
            "human_turn_timeout_s": 300}
    resp = requests.post(f"{auth_server}/v1/discussions", json=body,
                         headers=users.headers("alice"), timeout=10)
    assert resp.status_code == 201, resp.text
    did = resp.json()["id"]
    hosts = _hosts(page)
    # Without the token the page asks for one; with the printed #token= it is signed in.
    page.goto(f"{auth_server}/ui/discussions/{did}")
    expect(page.locator("body")).to_contain_text("access token")
    page.goto(f"{auth_server}/ui/discussions/{did}#token={users.key('alice')}")
    page.reload()  # the token stays for this tab, out of the address bar
    assert "token" not in page.url
    expect(page.locator("#topic")).to_have_text("Adopt passkeys?")
    expect(page.locator("#conn")).to_have_text("live")
    expect(page.locator("#turn-hint")).to_have_text("It is your turn.")
    expect(page.locator("#waiting .countdown")).to_contain_text("left")  # local, counting down
    page.fill("#content", "Passkeys first, passwords as a fallback.")
    page.click("#send")
    expect(page.locator("#transcript li.msg-person .text",
                        has_text="Passkeys first")).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-auth.png"), full_page=True)
    # Another user's key sees nothing of it.
    page.goto(f"{auth_server}/ui/discussions/{did}#token={users.key('mallory')}")
    page.reload()
    expect(page.locator("#conn")).not_to_have_text("live")
    assert set(hosts) == {"127.0.0.1"}, hosts  # no CDN, nothing from elsewhere


def test_the_api_docs_request_nothing_from_elsewhere(auth_server: str, page: Page) -> None:
    # ReDoc's bundle draws Redocly's logo from a CDN; the docs pages' policy must stop that
    # request inside the browser, before it reaches the network.
    reached: list[str] = []
    page.on("requestfinished", lambda req: reached.append(req.url))
    blocked: list[tuple[str, str]] = []
    page.on("requestfailed", lambda req: blocked.append((req.url, req.failure or "")))
    for path in ("/redoc", "/docs"):
        page.goto(f"{auth_server}{path}")
        page.wait_for_load_state("networkidle")
        expect(page.locator("body")).to_contain_text("Discussion Orchestrator")
    assert {urlsplit(u).hostname for u in reached if u.startswith("http")} == {"127.0.0.1"}
    # Without the policy the logo request leaves (and fails with a network error offline).
    assert all("csp" in why.lower() or "blocked" in why.lower() for _, why in blocked), blocked
