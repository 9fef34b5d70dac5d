"""(d) the fan-out anchor: the least a WebSocket relay of a Redis stream can do, in asyncio.

Usage: python -m bench.ws_anchor PORT   (REDIS_URL from the environment; prints `ready`)
Serves `/v1/discussions/{id}/stream` with the `websockets` library on one event loop. A
viewer gets an `init` frame carrying the discussion's message count and the last event id,
then every later event of the discussion as `{"id", "type", "data"}`. One task reads every
watched stream with one XREAD (each entry is read once, whatever the number of viewers),
encodes each frame once and hands it to every viewer with `websockets.broadcast`. No
authentication, no resume, no posts, no per-viewer queue: the floor our stream is held to.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection, broadcast, serve

from core.storage import keys

PREFIX, SUFFIX = "/v1/discussions/", "/stream"


class Relay:
    """Viewers by discussion and the stream position read so far for each."""

    def __init__(self, r: aioredis.Redis) -> None:
        self.r = r
        self.viewers: dict[str, set[ServerConnection]] = {}
        self.positions: dict[str, str] = {}
        self.wake = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else ""
        if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
            await ws.close(4404, "not found")
            return
        did = path[len(PREFIX):-len(SUFFIX)]
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hget(keys.state(did), "seq")
            pipe.xrevrange(keys.events(did), count=1)
            seq, last = await pipe.execute()
        cursor = last[0][0] if last else "0-0"
        # Registered before the first await after the read: no event falls between.
        self.positions.setdefault(did, cursor)
        self.viewers.setdefault(did, set()).add(ws)
        self.wake.set()
        try:
            await ws.send(json.dumps({"id": cursor, "type": "init",
                                      "data": {"session": {"message_count": int(seq or 0)},
                                               "last_event_id": cursor}}))
            async for _ in ws:  # nothing is expected from a viewer; wait for it to leave
                pass
        finally:
            watching = self.viewers.get(did)
            if watching is not None:
                watching.discard(ws)
                if not watching:
                    del self.viewers[did]
                    self.positions.pop(did, None)

    async def pump(self) -> None:
        while True:
            if not self.positions:
                self.wake.clear()
                await self.wake.wait()
            names = {keys.events(did): did for did in self.positions}
            streams = {name: self.positions[did] for name, did in names.items()}
            for name, entries in await self.r.xread(streams, block=50) or []:
                did = names[name]
                for eid, fields in entries:
                    text = json.dumps({"id": eid, "type": fields.get("type", "unknown"),
                                       "data": json.loads(fields.get("data") or "{}")},
                                      separators=(",", ":"), ensure_ascii=False)
                    broadcast(self.viewers.get(did, ()), text)
                if did in self.positions and entries:
                    self.positions[did] = entries[-1][0]


async def main(port: int) -> None:
    r = aioredis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    relay = Relay(r)
    pump = asyncio.create_task(relay.pump())
    async with serve(relay.handler, "127.0.0.1", port, compression=None, ping_interval=None,
                     max_size=2**20, backlog=4096):
        print("ready", flush=True)
        await pump


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
