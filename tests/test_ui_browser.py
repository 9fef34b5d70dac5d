"""The viewer page in a real headless Chromium (Debian's), against a live server and worker.

Driven by playwright with the system browser (`executable_path`); the browser is installed by
scripts/test-deps.sh, never downloaded by playwright.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.helpers import wait_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Generous waits: CI shares two cores among the API, the worker, Redis and the browser.
    expect.set_options(timeout=30_000)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
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


def test_moderator_sees_offered_actions_and_the_token_travels(actions_server: str,
                                                              action_calls: list,
                                                              page: Page) -> None:
    body = {
        "topic": "Moderated retro",
        "agents": [{"persona": "Facilitator", "provider": "simulated",
                    "params": {"latency_ms": 3000}}],
        "humans": [{"user_id": "mo", "name": "Mo", "role": "moderator",
                    "permissions": ["read", "write", "moderate"]},
                   {"user_id": "pat", "name": "Pat"}],
        "protocol": "free_form",
        "max_rounds": 1,
    }
    session = requests.post(f"{actions_server}/v1/discussions", json=body, timeout=10).json()
    did = session["id"]
    mo, pat = (p["participant_id"] for p in session["participants"][1:])
    ws_urls: list[str] = []
    page.on("websocket", lambda ws: ws_urls.append(ws.url))
    page.goto(f"{actions_server}/ui/discussions/{did}?as={mo}#token=tok-xyz")
    expect(page.locator("#topic")).to_have_text("Moderated retro")
    assert "token" not in page.url  # taken out of the address bar once kept
    expect(page.locator("#mod-section")).to_be_visible()
    expect(page.locator("#vote-section")).to_be_hidden()  # not a consensus discussion
    form = page.locator("form.action-fake_hold")
    form.get_by_label("reason (optional)").fill("coffee break")
    form.get_by_role("button", name="Fake hold").click()
    expect(page.locator("#mod-status")).to_have_text("fake hold: done")
    assert action_calls == [{"action": "fake_hold", "discussion_id": did,
                             "auth": "Bearer tok-xyz",
                             "body": {"participant_id": mo, "reason": "coffee break"}}]
    assert ws_urls and all("access_token=tok-xyz" in u for u in ws_urls)
    # A moderation verb: Mo acts (`by`), the target is picked from the participants.
    mod = page.locator("form.action-fake_moderation")
    mod.get_by_label("action").select_option("spotlight")
    mod.get_by_label("participant id (optional)").select_option(pat)
    mod.get_by_role("button", name="Fake moderation").click()
    expect(page.locator("#mod-status")).to_have_text("fake moderation: done")
    assert action_calls[-1]["body"] == {"by": mo, "action": "spotlight", "participant_id": pat,
                                        "reason": None}

    # Pat has no `moderate` permission: no moderation controls for Pat.
    page.select_option("#as", pat)
    expect(page.locator("#mod-section")).to_be_hidden()
    # free_form: Pat may post any time, and sees the post in place at once.
    page.fill("#content", "Pat here")
    page.click("#send")
    expect(page.locator("#transcript li.msg-person .text", has_text="Pat here")).to_have_count(1)
    requests.delete(f"{actions_server}/v1/discussions/{did}", timeout=10)  # stop the slow agent


def test_network_cut_and_resync_after_trimmed_events(live_server: str, page: Page,
                                                     r) -> None:
    """The network goes away (all sockets cut, reconnects refused) while the discussion runs and
    its retained events are trimmed: the page reconnects, is told to resync, and still shows
    every message exactly once."""
    from core import keys
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
    from core.clock import iso
    from core.models import Message, ParticipantType
    from core.store import Commit

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


# WCAG 2 contrast of every visible text against its effective background (walking up to the
# first opaque background); large or bold-large text needs 3:1, the rest 4.5:1. Disabled
# controls are exempt, as in WCAG.
CONTRAST_JS = """
() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const bg = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0.9) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.offsetParent || el.closest(":disabled") || el.closest(".skip")) continue;
    const cs = getComputedStyle(el);
    const l1 = lum(rgb(cs.color)), l2 = lum(bg(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const what = `${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}"`;
    if (ratio < need) bad.push(`${what} ${ratio.toFixed(2)}`);
  }
  return bad;
}
"""


def test_contrast_labels_and_keyboard_order(live_server: str, page: Page) -> None:
    session = requests.post(f"{live_server}/v1/discussions", json={
        "topic": "Accessibility check", "max_rounds": 1,
        "agents": [{"persona": "Auditor", "role": "a11y", "provider": "simulated"}],
        "humans": [{"user_id": "kim", "name": "Kim", "permissions": ["read", "write"]}],
    }, timeout=10).json()
    did = session["id"]
    kim = session["participants"][1]["participant_id"]
    page.goto(f"{live_server}/ui/discussions/{did}?as={kim}")
    expect(page.locator("#turn-hint")).to_have_text("It is your turn.")
    # Keyboard: the skip link first, then the header, then the form in reading order.
    order = []
    for _ in range(8):
        page.keyboard.press("Tab")
        order.append(page.evaluate(
            "document.activeElement.id || document.activeElement.className || "
            "document.activeElement.tagName"))
    assert order[:3] == ["skip", "brand", "SUMMARY"]
    assert order.index("as") < order.index("content") < order.index("send")
    page.locator("details.people summary").click()
    assert page.evaluate(CONTRAST_JS) == []
    page.fill("#content", "Checked.")
    page.click("#send")
    expect(page.locator("#content")).to_be_focused()  # focus stays in the form after sending
    page.goto(f"{live_server}/ui/")
    expect(page.locator("#discussions li")).to_have_count(1)
    assert page.evaluate(CONTRAST_JS) == []


def test_person_votes_in_a_consensus_discussion(live_server: str, page: Page) -> None:
    body = {
        "topic": "Adopt passkeys", "protocol": "consensus", "max_rounds": 2,
        "consensus": {"decision_rule": "majority", "quorum": 0.5},
        "agents": [{"persona": "Security Expert", "provider": "simulated"},
                   {"persona": "Backend Developer", "provider": "simulated"}],
        "humans": [{"user_id": "alice", "name": "Alice"}],
    }
    resp = requests.post(f"{live_server}/v1/discussions", json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    session = resp.json()
    alice = session["participants"][2]["participant_id"]
    page.goto(f"{live_server}/ui/discussions/{session['id']}?as={alice}")
    expect(page.locator("#turn-hint")).to_have_text("It is your turn.")
    expect(page.locator("#vote-section")).to_be_visible()
    expect(page.locator("#mod-section")).to_be_hidden()  # Alice has no `moderate`
    form = page.locator("form.action-votes")
    form.get_by_label("vote", exact=True).select_option("yes")
    form.get_by_label("reason (optional)").fill("Passkeys resist phishing.")
    form.get_by_role("button", name="Cast vote").click()
    expect(page.locator("#vote-status")).to_have_text("Cast vote: done")
    expect(page.locator("#transcript li.msg-person")).to_contain_text("Passkeys resist phishing.")
    expect(page.locator("#status")).to_have_text("completed")
    expect(page.locator("#outcome")).to_contain_text("decision")
    final = requests.get(f"{live_server}/v1/discussions/{session['id']}", timeout=10).json()
    assert final["outcome"]["decision"] in page.locator("#outcome").inner_text()


def test_moderator_pauses_resumes_and_cancels(live_server: str, page: Page) -> None:
    body = {
        "topic": "Retro", "max_rounds": 5, "protocol": "moderated",
        "agents": [{"persona": "Facilitator", "provider": "simulated",
                    "params": {"latency_ms": 400}}],
        "humans": [{"user_id": "mo", "name": "Mo", "role": "moderator",
                    "permissions": ["read", "write", "moderate"]}],
    }
    session = requests.post(f"{live_server}/v1/discussions", json=body, timeout=10).json()
    did = session["id"]
    mo = session["participants"][1]["participant_id"]
    page.goto(f"{live_server}/ui/discussions/{did}?as={mo}")
    mod = page.locator("#mod-actions")
    expect(mod.get_by_role("button", name="Resume")).to_be_disabled()
    page.locator("form.action-pause").get_by_label("reason (optional)").fill("coffee")
    mod.get_by_role("button", name="Pause").click()
    expect(page.locator("#status")).to_have_text("paused")
    expect(mod.get_by_role("button", name="Pause")).to_be_disabled()
    mod.get_by_role("button", name="Resume").click()
    expect(page.locator("#status")).not_to_have_text("paused")
    # A moderation verb through the generic form: mute the facilitator.
    moderation = page.locator("form.action-moderation")
    moderation.get_by_label("action").select_option("mute")
    moderation.get_by_label("participant id (optional)").select_option(
        session["participants"][0]["participant_id"])
    moderation.get_by_role("button", name="Apply").click()
    expect(page.locator("#mod-status")).to_have_text("Apply: done")
    expect(page.locator("#transcript li.note", has_text="Moderation: mute")).to_have_count(1)
    mod.get_by_role("button", name="Cancel").click()
    expect(page.locator("#status")).to_have_text("cancelled")
    expect(page.locator("#outcome")).to_contain_text("cancelled")
    expect(page.locator("#mod-actions button").first).to_be_disabled()
    audit = requests.get(f"{live_server}/v1/discussions/{did}", timeout=10).json()
    assert audit["status"] == "cancelled"


def test_moderator_approves_a_held_post(live_server: str, browser: Browser) -> None:
    """Two tabs: Pat's post is held; Mo sees it listed and approves it; both see it appear."""
    body = {"topic": "Approvals", "protocol": "moderated", "max_rounds": 3,
            "require_approval": True,
            "agents": [{"persona": "Facilitator", "provider": "simulated",
                        "params": {"latency_ms": 5000}}],
            "humans": [{"user_id": "mo", "name": "Mo",
                        "permissions": ["read", "write", "moderate"]},
                       {"user_id": "pat", "name": "Pat"}]}
    resp = requests.post(f"{live_server}/v1/discussions", json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    session = resp.json()
    did = session["id"]
    mo, pat = (p["participant_id"] for p in session["participants"][1:])
    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        mod_page, pat_page = ctx.new_page(), ctx.new_page()
        mod_page.goto(f"{live_server}/ui/discussions/{did}?as={mo}")
        pat_page.goto(f"{live_server}/ui/discussions/{did}?as={pat}")
        expect(pat_page.locator("#send")).to_be_enabled()
        pat_page.fill("#content", "Can we talk about on-call?")
        pat_page.click("#send")
        expect(pat_page.locator("#post-status")).to_have_text("Held for a moderator's approval.")
        expect(mod_page.locator("#transcript li.note", has_text="held")).to_have_count(1)
        form = mod_page.locator("form.action-moderation")
        form.get_by_label("action").select_option("approve")
        held = form.get_by_label("held id (optional)")
        expect(held.locator("option", has_text="Can we talk about on-call?")).to_have_count(1)
        held.select_option(label="Pat: Can we talk about on-call?")
        form.get_by_role("button", name="Apply").click()
        expect(mod_page.locator("#mod-status")).to_have_text("Apply: done")
        for pg in (mod_page, pat_page):
            expect(pg.locator("#transcript li.msg-person .text",
                              has_text="Can we talk about on-call?")).to_have_count(1)
    finally:
        requests.delete(f"{live_server}/v1/discussions/{did}", timeout=10)
        ctx.close()
