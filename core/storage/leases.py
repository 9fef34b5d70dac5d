"""Redis side of lease keeping and recovery: renew, break and adopt leases; worker liveness.

A step's lease (`discussion:{id}:lock`, taken by Store.acquire) lives a few seconds and is
renewed, fenced by its token, while the step works. The recovery sweep uses the rest: it
frees the leases of workers whose heartbeat stopped, and adopts discussions whose last lease
ended without its step (see lua.ADOPT) so it re-enqueues each exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import redis

from core.storage import keys, lua


class Leases:
    """The lease scripts on one client."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._renew = client.register_script(lua.RENEW)
        self._break = client.register_script(lua.BREAK)
        self._adopt = client.register_script(lua.ADOPT)

    def renew(self, held: Sequence[tuple[str, int]], ttl_ms: int) -> list[bool]:
        """Renew every (discussion id, token) in one round trip; False where it is stale."""
        if not held:
            return []
        pipe = self.r.pipeline(transaction=False)
        for did, token in held:
            self._renew(keys=[keys.lock(did)], args=[token, ttl_ms], client=pipe)
        return [bool(int(x)) for x in pipe.execute()]

    def break_lease(self, discussion_id: str, token: int, owner: str) -> bool:
        """Free the lease `token` of a dead `owner`; True if it was still theirs."""
        return bool(self._break(keys=[keys.lock(discussion_id), keys.state(discussion_id)],
                                args=[token, owner]))

    def adopt(self, discussion_id: str) -> bool:
        """True (once) when the discussion's last lease ended without its step."""
        return bool(self._adopt(keys=[keys.state(discussion_id), keys.lock(discussion_id)]))

    def claim_sweep(self, interval_s: float) -> bool:
        """True for the one worker per interval that runs the recovery sweep."""
        return bool(self.r.set(keys.RECOVERY_SWEEP, "1", nx=True,
                               px=max(1, int(interval_s * 1000) - 50)))


def owner_id(hostname: str, boot: str) -> str:
    """The identity a worker process writes as `lease_owner`: its name and this boot."""
    return f"{hostname}#{boot}"


def dead_owners(r: redis.Redis, owners: Iterable[str], ttl_s: float,
                now: float | None = None) -> set[str]:
    """The owners among `owners` known to be dead: their worker's heartbeat is older than
    `ttl_s`, or the worker started again since (its heartbeat carries a newer boot). A worker
    with no heartbeat entry at all (never started one, or shut down cleanly) is not judged:
    its leases expire by their TTL."""
    now = time.time() if now is None else now
    wanted = sorted({o for o in owners if "#" in o})
    if not wanted:
        return set()
    hosts = sorted({o.split("#", 1)[0] for o in wanted})
    pipe = r.pipeline(transaction=False)
    pipe.zmscore(keys.WORKER_HEARTBEATS, hosts)
    pipe.hmget(keys.WORKER_BOOTS, hosts)
    scores, boots = pipe.execute()
    seen = {h: (s, b) for h, s, b in zip(hosts, scores, boots, strict=True)}
    dead = set()
    for owner in wanted:
        host, boot = owner.split("#", 1)
        score, current = seen[host]
        if score is None:
            continue
        if now - float(score) > ttl_s or (current and current != boot):
            dead.add(owner)
    return dead
