"""Issue 13, finding 1: batch and schedule templates cannot amplify what a request stores.

Topics are filled by plain `{name}` substitution (no format specs, no attribute access), each
filled discussion is validated as a direct create would be, a batch stores at most a small
multiple of what was sent, and a batch can be deleted.
"""

from __future__ import annotations

import json

import redis

from core.storage import keys
from tests.helpers import agent_body


def _used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def _template(topic: str) -> dict:
    return {**agent_body(1, 1), "topic": topic}


def test_format_spec_cannot_blow_up_storage(sec_client, users, r) -> None:
    h = users.headers("alice")
    before = _used_memory(r)
    body = {"template": _template("T {x:>100000000}"), "variables": [{"x": "1"}]}
    sent = len(json.dumps(body))
    resp = sec_client.post("/v1/batches", json=body, headers=h)
    after = _used_memory(r)
    print(f"batch with a format spec: sent {sent} B, answered {resp.status_code}, "
          f"Redis used_memory {before} -> {after} ({after - before:+d} B)")
    assert resp.status_code == 422, resp.json
    assert "{x:>100000000}" in resp.json["message"] or "placeholder" in resp.json["message"]
    assert after - before < 256 * 1024  # the old main stored the 100 MB topic twice


def test_attribute_access_is_a_422_not_a_500(sec_client, users) -> None:
    h = users.headers("alice")
    for topic in ("T {x.nope}", "T {x[0]}", "T {x!r}", "T {0}", "T {}"):
        resp = sec_client.post("/v1/batches", json={"template": _template(topic),
                                                    "variables": [{"x": "1"}]}, headers=h)
        assert resp.status_code == 422, (topic, resp.status_code, resp.json)
    # A plain placeholder still fills, and literal braces that name no variable are refused.
    ok = sec_client.post("/v1/batches", json={"template": _template("Review {x}"),
                                              "variables": [{"x": "the auth API"}],
                                              "concurrency": 1}, headers=h)
    assert ok.status_code == 201, ok.json
    assert ok.json["items"][0]["topic"] == "Review the auth API"
    missing = sec_client.post("/v1/batches", json={"template": _template("Review {y}"),
                                                   "variables": [{"x": "1"}]}, headers=h)
    assert missing.status_code == 422


def test_each_filled_topic_is_validated_like_a_direct_create(sec_client, users) -> None:
    h = users.headers("alice")
    # 1,800 characters of template, 3 per value: every topic would be 2,400 characters,
    # past the 2,000 a direct create allows.
    template = _template("{x}" * 600)
    resp = sec_client.post("/v1/batches", json={"template": template,
                                                "variables": [{"x": "abcd"}]}, headers=h)
    assert resp.status_code == 422, resp.json
    direct = sec_client.post("/v1/discussions", json={**template, "topic": "abcd" * 600},
                             headers=h)
    assert direct.status_code == 422  # the same rule, the same answer


def test_stored_size_is_a_small_multiple_of_what_was_sent(sec_client, users, r) -> None:
    h = users.headers("alice")
    # Many placeholders in the template, short values: a filled-in copy per item would be
    # ~1,900 bytes each while the request sends ~15 bytes per item.
    body = {"template": _template("{x}" * 630), "variables": [{"x": str(i % 3)}
                                                            for i in range(1000)],
            "concurrency": 1}
    sent = len(json.dumps(body))
    before = _used_memory(r)
    resp = sec_client.post("/v1/batches", json=body, headers=h)
    assert resp.status_code == 201, resp.json
    bid = resp.json["id"]
    stored = sum(r.memory_usage(k) or 0 for k in keys.batch_keys(bid) if r.exists(k))
    after = _used_memory(r)
    print(f"1000-item batch: sent {sent} B, batch keys {stored} B, "
          f"used_memory {after - before:+d} B (one discussion started)")
    assert stored <= 4 * sent + 16 * 1024


def test_a_batch_can_be_deleted(sec_client, users, r) -> None:
    h = users.headers("alice")
    resp = sec_client.post("/v1/batches", json={"topics": ["a", "b", "c"], "concurrency": 1,
                                                "template": _template("t")}, headers=h)
    assert resp.status_code == 201
    bid = resp.json["id"]
    started = resp.json["items"][0]["discussion_id"]
    assert sec_client.delete(f"/v1/batches/{bid}", headers=users.headers("bob")).status_code \
        == 404  # only the owner
    gone = sec_client.delete(f"/v1/batches/{bid}", headers=h)
    assert gone.status_code == 200, gone.json
    assert gone.json == {"id": bid, "deleted": True}
    assert sec_client.get(f"/v1/batches/{bid}", headers=h).status_code == 404
    assert not any(r.exists(k) for k in keys.batch_keys(bid))
    assert bid not in sec_client.get("/v1/batches", headers=h).json["batches"]
    # Its running discussion was cancelled, not left running unowned by any batch.
    assert sec_client.get(f"/v1/discussions/{started}", headers=h).json["status"] == "cancelled"
    assert sec_client.delete(f"/v1/batches/{bid}", headers=h).status_code == 404


def test_schedule_topics_are_filled_plainly_and_validated(sec_client, users) -> None:
    h = users.headers("alice")
    bad = ("Review {date:>100000000}", "Review {date.year}", "Review {sprint}",
           "{date}" * 300)  # 1,800 characters that would fill to 3,000
    for topic in bad:
        resp = sec_client.post("/v1/schedules", json={"name": "s", "interval_s": 3600,
                                                      "template": _template(topic)}, headers=h)
        assert resp.status_code == 422, (topic[:40], resp.status_code, resp.json)
    ok = sec_client.post("/v1/schedules", json={"name": "s", "interval_s": 3600,
                                                "template": _template("Review of {date} {{x}}")},
                         headers=h)
    assert ok.status_code == 201, ok.json
