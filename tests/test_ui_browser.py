"""The viewer page in a real headless Chromium against a live server and worker: watching,
posting in turn, dropped connections and network cuts, streamed drafts, the create form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.browser import ARTIFACTS, launch, phone_page, transcript
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    yield from phone_page(browser)


def test_watch_post_in_turn_and_survive_a_dropped_connection(live_server: str,
                                                               page: Page) -> None:
    body = {
        "topic": "Design the API for user authentication",
        "agents": [
            {"persona": "Security Expert", "role": "reviewer", "provider": "simulated",
             "params": {"latency_ms": 200, "stream": True}},
            {"persona": "Backend Developer", "role": "engineer", "provider": "simulated",
             "params": {"latency_ms": 200, "stream": True}},
        ],
        "humans": [{"user_id": "alice", "name": "Alice", "role": "product manager"}],
        "protocol": "round_robin",
        "max_rounds": 3,
    }
    session = requests.post(f"{live_server}/v1/discussions", json=body, timeout=10).json()
    did = session["id"]
    alice = next(p for p in session["participants"] if p["participant_type"] == "human")
    page.goto(f"{live_server}/ui/discussions/{did}?as={alice['participant_id']}")
    expect(page.locator("#topic")).to_have_text(body["topic"])
    expect(page.locator("#as")).to_have_value(alice["participant_id"])

    for rnd in (1, 2, 3):
        # Two agents speak, then the page shows it is Alice's turn (round-robin, people last).
        expect(page.locator("#turn-hint")).to_have_text("It is your turn.")
        expect(page.locator("#waiting")).to_contain_text("Alice (person)")
        expect(page.locator("#status")).to_have_text("waiting for human")
        expect(page.locator("#round")).to_have_text(f"{rnd} of 3")
        if rnd == 1:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "ui-your-turn.png"))
        text = f"Alice's point for round {rnd}: sessions expire after 15 minutes."
        page.fill("#content", text)
        page.click("#send")
        mine = page.locator("#transcript li.msg-person .text", has_text=text)
        expect(mine).to_have_count(1)
        if rnd == 2:
            # Drop the socket right after posting and stay away while the agents speak.
            before = len(transcript(page))
            page.evaluate("window.viewer.drop(1500)")
            expect(page.locator("#conn")).to_contain_text("offline")
            wait_for(lambda n=before: requests.get(f"{live_server}/v1/discussions/{did}",
                                                   timeout=5).json()["message_count"] > n,
                     timeout=30)
            expect(page.locator("#conn")).to_have_text("live")

    expect(page.locator("#status")).to_have_text("completed")
    expect(page.locator("#outcome")).to_contain_text("max rounds")
    expect(page.locator("#send")).to_be_disabled()

    rest = requests.get(f"{live_server}/v1/discussions/{did}/messages?limit=100",
                        timeout=10).json()["messages"]
    assert len(rest) == 9
    shown = transcript(page)
    assert [s for s, _, _ in shown] == list(range(1, 10))  # none lost, none doubled, in order
    assert [t for _, _, t in shown] == [m["content"] for m in rest]
    assert [k for _, k, _ in shown] == ["agent", "agent", "person"] * 3
    expect(page.locator("#count")).to_have_text("9")
    # The agents streamed: drafts grew from message_delta events, and none is left over.
    assert page.evaluate("window.viewer.state.deltas") > 0
    expect(page.locator("#transcript li.draft")).to_have_count(0)
    urls = page.evaluate("window.viewer.state.urls")
    assert len(urls) >= 2 and "last_event_id=" in urls[-1] and "last_event_id" not in urls[0]
    # Readable on a phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # Export downloads the service's Markdown transcript.
    with page.expect_download() as info:
        page.click("#export-md")
    download = info.value
    assert download.suggested_filename == f"{did}.md"
    md = Path(download.path()).read_text()
    assert md == requests.get(f"{live_server}/v1/discussions/{did}/export?format=markdown",
                              timeout=10).text
    assert "Alice's point for round 3" in md

    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "ui-discussion.png"), full_page=True)


def test_create_form_starts_a_discussion_and_the_list_shows_it(live_server: str,
                                                                 page: Page) -> None:
    page.goto(f"{live_server}/ui/")
    expect(page.locator("#list-status")).to_have_text("No discussions yet.")
    page.fill("#topic", "Weekly retro")
    page.select_option("#protocol", "round_robin")
    page.fill("#max_rounds", "2")
    page.fill("#agents", "Facilitator | host | simulated\nSRE | on call")
    page.click("button[type=submit].primary")
    page.wait_for_url("**/ui/discussions/disc_*")
    expect(page.locator("#topic")).to_have_text("Weekly retro")
    expect(page.locator("#status")).to_have_text("completed")
    expect(page.locator("#transcript li.msg")).to_have_count(4)
    expect(page.locator("#post-section")).to_be_hidden()  # no people: nobody to post as
    page.goto(f"{live_server}/ui/")
    expect(page.locator("#discussions li")).to_have_count(1)
    expect(page.locator("#discussions li a")).to_have_text("Weekly retro")
    expect(page.locator("#discussions li")).to_contain_text("completed")


def test_create_form_reports_a_refused_discussion(live_server: str, page: Page) -> None:
    page.goto(f"{live_server}/ui/")
    page.fill("#topic", "Nobody here")
    page.fill("#agents", "")
    page.click("button[type=submit].primary")
    expect(page.locator("#create-status")).to_contain_text("Not started")
    assert "/ui/discussions/" not in page.url


def test_network_cut_and_resync_after_trimmed_events(live_server: str, page: Page,
                                                     r) -> None:
    """The network goes away (all sockets cut, reconnects refused) while the discussion runs and
    its retained events are trimmed: the page reconnects, is told to resync, and still shows
    every message exactly once."""
    from core.storage import keys
    from tests.tcp_proxy import TcpProxy

    host, port = live_server.removeprefix("http://").split(":")
    proxy = TcpProxy(host, int(port))
    base = f"http://127.0.0.1:{proxy.port}"
    try:
        session = requests.post(f"{live_server}/v1/discussions",
                                json={"topic": "Long review", "max_rounds": 20,
                                      "agents": [{"persona": p, "provider": "simulated",
                                                  "params": {"latency_ms": 150}}
                                                 for p in ("Reviewer", "Author")]},
                                timeout=10).json()
        did = session["id"]
        page.goto(f"{base}/ui/discussions/{did}")
        expect(page.locator("#conn")).to_have_text("live")
        # Live, with a resume point from the stream (not only the first REST read).
        wait_for(lambda: page.evaluate("window.viewer.state.lastEventId !== null"), timeout=30)
        proxy.cut()
        expect(page.locator("#conn")).to_contain_text("offline")
        seen = page.evaluate("window.viewer.seqs().length")
        assert seen <= 30, "the discussion ran ahead of the test; nothing would be missed"
        # While the page is away, more messages land and old events are trimmed away.
        wait_for(lambda: requests.get(f"{live_server}/v1/discussions/{did}", timeout=5)
                 .json()["message_count"] >= seen + 6, timeout=30)
        r.xtrim(keys.events(did), maxlen=3, approximate=False)
        proxy.restore()
        expect(page.locator("#status")).to_have_text("completed", timeout=60_000)
        wait_for(lambda: page.evaluate("window.viewer.seqs().length") == 40, timeout=30)
        shown = transcript(page)
        assert [s for s, _, _ in shown] == list(range(1, 41))
        rest = requests.get(f"{live_server}/v1/discussions/{did}/messages?limit=100",
                            timeout=10).json()["messages"]
        assert [t for _, _, t in shown] == [m["content"] for m in rest]
        urls = page.evaluate("window.viewer.state.urls")
        assert any("last_event_id=" in u for u in urls[1:])
        assert page.evaluate("window.viewer.state.resyncs") >= 1  # told to resync, and did
    finally:
        proxy.close()


def test_streamed_text_grows_in_place_then_becomes_the_message(live_server: str, page: Page,
                                                               store) -> None:
    """`message_delta` events (from a streaming agent) grow one draft; the committed message of
    that turn replaces it in place."""
    from core.ground.clock import iso
    from core.ground.models import Message, ParticipantType
    from core.storage.store import Commit

    session = requests.post(f"{live_server}/v1/discussions", json={
        "topic": "Streaming", "protocol": "round_robin",
        "humans": [{"user_id": "ann", "name": "Ann"}]}, timeout=10).json()
    did = session["id"]
    page.goto(f"{live_server}/ui/discussions/{did}")
    # Subscribed: the init frame (with the stream cursor) has arrived.
    wait_for(lambda: page.evaluate("window.viewer.state.lastEventId !== null"), timeout=30)
    speaker = {"participant_id": "agent_stream", "participant_name": "Streamer", "turn": 7}
    for piece in ("Hello", ", wor", "ld"):
        store.commit(did, Commit(events=[("message_delta", {**speaker, "delta": piece})]))
    draft = page.locator("#transcript li.msg.draft .text")
    expect(draft).to_have_text("Hello, world")
    expect(page.locator("#transcript li.msg")).to_have_count(1)
    store.commit(did, Commit(message=Message(
        message_id="msg_stream1", participant_id="agent_stream", participant_name="Streamer",
        participant_type=ParticipantType.AGENT, content="Hello, world!", timestamp=iso(),
        turn=7)))
    expect(page.locator("#transcript li.msg.draft")).to_have_count(0)
    expect(page.locator("#transcript li.msg .text")).to_have_text(["Hello, world!"])
