"""The original README's walkthrough as written, and free-form as a conversation, end to end:
the live server, the real Celery worker, real HTTP."""

from __future__ import annotations

import time

import redis
import requests

from core.storage import keys
from tests.e2e import Api, people
from tests.helpers import wait_for


def _idle(r: redis.Redis, api: Api, did: str, messages: int) -> dict:
    """Wait for `messages` messages with no step holding the discussion, then check that
    nothing more comes: it stays active, idle, with the same messages."""
    def check() -> dict | None:
        s = api.get(did)
        return s if (s["status"] == "active" and s["message_count"] == messages
                     and not r.exists(keys.lock(did))) else None

    wait_for(check, timeout=30)
    time.sleep(1.0)  # a step that was about to run would have added a message by now
    again = api.get(did)
    assert again["message_count"] == messages and again["status"] == "active"
    assert not r.exists(keys.lock(did))
    return again


def test_the_seed_walkthrough_works_as_written(live_server: str, r: redis.Redis) -> None:
    base = live_server
    health = requests.get(f"{base}/health", timeout=5)
    assert health.status_code == 200
    created = requests.post(f"{base}/v1/discussions", headers={
        "Content-Type": "application/json"}, data="""{
        "topic": "Test discussion",
        "agents": [{"persona": "Test Agent"}],
        "protocol": "free_form"
      }""", timeout=5)
    assert created.status_code == 201, created.text
    did = created.json()["id"]
    agent_id = created.json()["participants"][0]["participant_id"]
    api = Api(base)
    _idle(r, api, did, 1)  # the agent opened, and does not answer itself
    assert requests.get(f"{base}/v1/discussions/{did}", timeout=5).status_code == 200
    sent = requests.post(f"{base}/v1/discussions/{did}/messages", headers={
        "Content-Type": "application/json"},
        data=f'{{"participant_id": "{agent_id}", "content": "Test message"}}', timeout=5)
    assert sent.status_code == 201, sent.text
    _idle(r, api, did, 2)  # its own post leaves it nothing to answer
    assert requests.delete(f"{base}/v1/discussions/{did}", timeout=5).status_code == 200


def test_free_form_answers_each_post_then_waits(live_server: str, r: redis.Redis,
                                                settings) -> None:
    api = Api(live_server)
    per_post = settings.free_form_agent_turns_per_post  # the default, 3
    s = api.create({
        "topic": "Design API for user authentication", "protocol": "free_form",
        "max_rounds": 50,
        "agents": [{"persona": "Security Expert"}, {"persona": "Backend Developer"}],
        "humans": [{"user_id": "john", "name": "John",
                    "permissions": ["read", "write", "moderate"]}]})
    did, ids = s["id"], people(s)
    _idle(r, api, did, per_post)  # the agents' say before anyone posted
    resp = api.post(did, "messages", {"participant_id": ids["John"],
                                      "content": "@Backend Developer how do we store tokens?"})
    assert resp.status_code == 201 and resp.json()["turn"] is None
    _idle(r, api, did, per_post + 1 + per_post)  # at most per_post answers, then it waits
    msgs = api.messages(did)
    answers = [m for m in msgs if m["seq"] > resp.json()["seq"]]
    assert len(answers) == per_post
    assert answers[0]["participant_name"] == "Backend Developer"  # the addressee first
    # Every agent answers the message before it, never itself.
    for before, reply in zip(msgs, msgs[1:], strict=False):
        if reply["participant_type"] == "agent":
            assert reply["participant_id"] != before["participant_id"]
            assert reply["metadata"]["replying_to"] == before["participant_id"]
    ended = api.post(did, "moderation", {"action": "end", "by": ids["John"]})
    assert ended.status_code == 200, ended.text
    assert api.finished(did)["stop_reason"] == "moderator"


def test_an_external_agent_takes_its_turn_like_a_person(live_server: str) -> None:
    api = Api(live_server)
    s = api.create({
        "topic": "Pick a database", "protocol": "round_robin", "max_rounds": 2,
        "agents": [{"persona": "Security Expert"},
                   {"persona": "Review Bot", "provider": "external"}],
        "human_turn_timeout_s": 1.0, "human_turn_policy": "skip"})
    did, ids = s["id"], people(s)
    bot, expert = ids["Review Bot"], ids["Security Expert"]
    waiting = api.wait_status(did, "waiting_for_human")
    assert waiting["waiting_for"] == bot
    # Posts as an agent follow a person's rules: the called agent is never waited for.
    assert api.post(did, "messages", {"participant_id": expert,
                                      "content": "me again"}).status_code == 409
    resp = api.post(did, "messages", {"participant_id": bot, "content": "Postgres, surely."})
    assert resp.status_code == 201 and resp.json()["turn"] == 1
    # Its second turn passes unanswered: the deadline and policy apply (skip).
    done = api.finished(did)
    assert done["status"] == "completed" and done["message_count"] == 3
    assert [m["participant_name"] for m in api.messages(did)] == [
        "Security Expert", "Review Bot", "Security Expert"]


def test_posts_as_an_agent_are_refused_when_paused_like_a_persons(live_server: str) -> None:
    api = Api(live_server)
    s = api.create({
        "topic": "Pick a database", "protocol": "round_robin", "max_rounds": 3,
        "agents": [{"persona": "Security Expert", "params": {"latency_ms": 300}},
                   {"persona": "Review Bot", "provider": "external"}],
        "humans": [{"user_id": "john", "name": "John"}]})
    did, ids = s["id"], people(s)
    api.wait_status(did, "waiting_for_human")
    assert api.post(did, "pause").status_code == 200
    for who in ("Review Bot", "John", "Security Expert"):
        refused = api.post(did, "messages", {"participant_id": ids[who], "content": "x"})
        assert refused.status_code == 409, (who, refused.text)
    api.post(did, "cancel")
