"""The page's controls in a real headless Chromium: offered actions and the token, votes,
lifecycle and moderation, held posts, and accessibility (contrast, labels, keyboard order)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.browser import launch, phone_page


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    yield from phone_page(browser)


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
