"""(g) what one request costs with 1,000 and with 100,000 discussions stored, and (h) Redis
bytes per stored message and per finished discussion.

(g) Each size gets its own Redis, filled with other users' discussions (500 owners) through
the store's own create, a pipeline at a time; then its own API (gunicorn -k gevent -w 2, as
the Procfile runs it) with authentication on, and one user with an API key who owns a few
discussions. One client times each operation, sending one request to each size in turn (so
the machine's load falls on both alike): list (the user's first page), get, post, delete,
and a `/metrics` scrape. The figure compared across sizes is the median latency, with the
API's and Redis's CPU per request beside it.

(h) Discussions of known content go through the real commit path, finish, and get their
events trimmed as beat's tick does; `used_memory` before and after, divided out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests

from bench.harness import Env, group_cpu_s, start_api
from bench.stats import percentile
from core.ground.clock import iso
from core.ground.ids import new_id
from core.ground.models import (
    AgentInput,
    CreateDiscussion,
    HumanInput,
    Message,
    ParticipantType,
    Status,
)
from core.ground.settings import Settings
from core.operations import retention
from core.services.auth import create_api_key
from core.services.context import build_services
from core.services.discussions import create_discussion
from core.storage.redis_client import make_redis
from core.storage.store import Commit, Store

USER = "bench-user"
OWNERS = 500
FILL_BATCH = 500
OPERATIONS = ("list", "get", "post", "delete", "scrape")

METRICS_TOKEN = "bench-scrape-token"  # the scrape token of the APIs this section starts


@dataclass
class OpCost:
    p50_ms: float
    p99_ms: float
    api_cpu_us: float  # per request
    redis_cpu_us: float


def _store(env: Env) -> tuple[Settings, Store]:
    settings = Settings(redis_url=env.url, redis_max_connections=10)
    return settings, Store(make_redis(settings))


def _body(user: str) -> CreateDiscussion:
    return CreateDiscussion(
        topic="Design the authentication API for a multi-tenant SaaS product",
        protocol="free_form",
        agents=[AgentInput(persona="Backend Developer", provider="simulated")],
        humans=[HumanInput(user_id=user, name="Pat")], max_rounds=1000)


def fill(env: Env, count: int) -> None:
    """Store `count` discussions of other users, a pipeline of creates at a time."""
    settings, store = _store(env)
    svc = build_services(settings, store, lambda did: None)
    template = create_discussion(svc, _body("filler0"), owner="filler0")
    config, participants = store.members(template.id)
    for start in range(1, count, FILL_BATCH):
        pipe = store.r.pipeline(transaction=False)
        for i in range(start, min(start + FILL_BATCH, count)):
            owner = f"filler{i % OWNERS}"
            cfg = config.model_copy(update={"id": new_id("disc"), "owner": owner,
                                            "created_at": iso()})
            store.create(cfg, participants, status=Status.PENDING, users=[owner],
                         pipeline=pipe)
        pipe.execute()


@dataclass
class Target:
    """One filled Redis and its API, with the user's discussions in it."""

    env: Env
    base: str
    api_pgid: int
    session: requests.Session
    keep: list[tuple[str, str]]  # (discussion, participant) the user reads and posts to
    doomed: list[str]  # discussions the user deletes


def prepare(env: Env, stored: int, samples: int) -> Target:
    """Fill to `stored`, start the API with authentication on, give the user a key and
    `samples + 3` discussions of their own."""
    fill(env, stored)
    settings, store = _store(env)
    key = create_api_key(store.r, settings, USER, "bench")
    # The user creates `samples + 3` discussions to read, post to and delete: more than the
    # default cap of unfinished ones per user, which this section does not measure.
    # With authentication on, /metrics answers only the scrape token (docs/security.md).
    base = start_api(env, f"api-g{stored}", AUTH_ENABLED="true",
                     MAX_ACTIVE_DISCUSSIONS_PER_USER=str(samples + 10),
                     METRICS_TOKEN=METRICS_TOKEN)
    s = requests.Session()
    s.headers["X-API-Key"] = key
    mine = []
    for _ in range(samples + 3):
        resp = s.post(base + "/v1/discussions", json=_body(USER).model_dump(mode="json"),
                      timeout=30)
        resp.raise_for_status()
        data = resp.json()
        human = next(p for p in data["participants"] if p["participant_type"] == "human")
        mine.append((data["id"], human["participant_id"]))
    return Target(env, base, env.api_pgid, s, mine[:3], [d for d, _ in mine[3:]])


def _calls(t: Target, op: str, samples: int) -> list[tuple[str, str, dict, int]]:
    did = t.keep[0][0]
    if op == "list":
        return [("GET", t.base + "/v1/discussions?limit=20", {}, 200)] * samples
    if op == "get":
        return [("GET", f"{t.base}/v1/discussions/{did}", {}, 200)] * samples
    if op == "post":
        return [("POST", f"{t.base}/v1/discussions/{d}/messages",
                 {"json": {"participant_id": p, "content": f"post {i}"}}, 201)
                for i, (d, p) in enumerate((t.keep * samples)[:samples])]
    if op == "delete":
        return [("DELETE", f"{t.base}/v1/discussions/{d}", {}, 200) for d in t.doomed]
    scrape = {"headers": {"Authorization": f"Bearer {METRICS_TOKEN}"}}
    return [("GET", t.base + "/metrics", scrape, 200)] * samples


def compare(targets: list[Target], samples: int) -> list[dict[str, OpCost]]:
    """Each operation on every target, requests interleaved (one to each in turn) so that
    the machine's load falls on all sizes alike; cost by operation, per target."""
    out: list[dict[str, OpCost]] = [{} for _ in targets]
    # Warm each API's code paths and connections. The first scrape after a bulk fill also
    # builds the status counts once (indexes.REBUILD_COUNTS, as after an upgrade): a one-off,
    # not the cost of a scrape.
    for t in targets:
        for method, url, kwargs, _ in (_calls(t, "list", 3) + _calls(t, "get", 3)
                                       + _calls(t, "scrape", 1)):
            t.session.request(method, url, timeout=30, **kwargs)
    for op in OPERATIONS:
        calls = [_calls(t, op, samples) for t in targets]
        lat: list[list[float]] = [[] for _ in targets]
        cpu = [(group_cpu_s(t.api_pgid), group_cpu_s(0, pid=t.env.redis_pid)) for t in targets]
        for i in range(len(calls[0])):
            for k, t in enumerate(targets):
                method, url, kwargs, status = calls[k][i]
                started = time.perf_counter()
                resp = t.session.request(method, url, timeout=30, **kwargs)
                lat[k].append((time.perf_counter() - started) * 1000)
                if resp.status_code != status:
                    raise RuntimeError(f"{method} {url}: {resp.status_code} {resp.text[:200]}")
        for k, t in enumerate(targets):
            n = max(len(calls[k]), 1)
            out[k][op] = OpCost(
                p50_ms=percentile(lat[k], 50), p99_ms=percentile(lat[k], 99),
                api_cpu_us=(group_cpu_s(t.api_pgid) - cpu[k][0]) / n * 1e6,
                redis_cpu_us=(group_cpu_s(0, pid=t.env.redis_pid) - cpu[k][1]) / n * 1e6)
    return out


@dataclass
class MemoryRun:
    per_discussion_b: float  # a finished discussion with no messages, every index included
    per_content_b: float  # each further message: this many bytes per byte of its content ...
    per_message_b: float  # ... plus this many (its other fields and the list entry)
    tail: int


def run_memory(env: Env, discussions: int = 100, messages: int = 30) -> MemoryRun:
    """Bytes a finished discussion and each of its messages keep once beat's tick trimmed its
    events: `used_memory` around storing discussions with no messages, and with `messages`
    and twice as many of two content sizes (more than the events tail, which is thus in the
    fixed part)."""
    settings, store = _store(env)
    svc = build_services(settings, store, lambda did: None)
    r = store.r

    def used() -> int:
        return int(r.info("memory")["used_memory"])

    def make(count: int, chars: int) -> int:
        before = used()
        for _ in range(discussions):
            session = create_discussion(svc, _body("mem-user"), owner="mem-user")
            human = next(p for p in session.participants
                         if p.participant_type == ParticipantType.HUMAN)
            for i in range(count):
                text = (f"{i} " + "words " * chars)[:chars]
                msg = Message(message_id=new_id("msg"), participant_id=human.participant_id,
                              participant_name=human.name,
                              participant_type=ParticipantType.HUMAN,
                              content=text, timestamp=iso())
                store.commit(session.id, Commit(message=msg))
            store.commit(session.id, Commit(updates={"status": Status.COMPLETED},
                                            events=[("status", {"status": "completed"})]))
        retention.trim_finished_events(store, 0, settings.events_finished_tail)
        return used() - before

    make(0, 0)  # one-time costs (scripts, buffers, first keys) out of the figures
    empty = make(0, 0)
    # Past the tail: the difference between `messages` and 2 x `messages` per discussion is
    # what each message adds once the tail (in the fixed part) is full.
    small, large = 200, 2000
    per = {}
    for chars in (small, large):
        per[chars] = (make(2 * messages, chars) - make(messages, chars)) / (
            discussions * messages)
    slope = (per[large] - per[small]) / (large - small)
    return MemoryRun(per_discussion_b=empty / discussions, per_content_b=slope,
                     per_message_b=per[small] - slope * small,
                     tail=settings.events_finished_tail)
