"""(d) the viewer load process: many WebSocket viewers on one asyncio loop (`websockets`).

Usage: python -m bench.ws_client WS_BASE SPEC_JSON
SPEC_JSON is [[discussion_id, viewers], ...]. Prints `ready` once every viewer has its `init`
frame, then watches until each discussion reaches a terminal status and prints one JSON line:
{"latencies_ms": [...], "viewers": [[discussion_id, init_count, seqs, dups], ...],
 "frames": n, "cpu_s": s, "errors": n}. Latency is receive time minus the commit time carried
in the event id (Redis's clock, same machine). The client is the cheapest we could make, since
on a small machine it shares the cores with the server it measures.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

TERMINAL = {"completed", "failed", "cancelled"}


class Viewer:
    def __init__(self, url: str, did: str) -> None:
        self.url, self.did = url, did
        self.ws = None
        self.init_count = -1
        self.seqs: set[int] = set()
        self.dups = 0
        self.frames = 0
        self.latencies: list[float] = []
        self.error = ""

    async def connect(self) -> None:
        for attempt in range(5):
            try:
                self.ws = await connect(self.url, open_timeout=60, ping_interval=None,
                                        max_size=None, compression=None)
                init = json.loads(await self.ws.recv())
                self.init_count = init["data"]["session"]["message_count"]
                self.error = ""  # an earlier attempt's failure is not this viewer's error
                return
            except (TimeoutError, OSError, WebSocketException, ValueError, KeyError) as exc:
                self.error = repr(exc)
                await asyncio.sleep(0.2 * (attempt + 1))
        raise RuntimeError(f"viewer of {self.did} could not connect: {self.error}")

    async def watch(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                now = time.time() * 1000
                frame = json.loads(raw)
                self.frames += 1
                kind = frame.get("type")
                if kind == "message":
                    seq = frame["data"]["seq"]
                    if seq in self.seqs:
                        self.dups += 1
                    self.seqs.add(seq)
                    self.latencies.append(now - int(frame["id"].split("-")[0]))
                elif kind == "status" and frame["data"].get("status") in TERMINAL:
                    return
        except (OSError, WebSocketException, ValueError) as exc:
            self.error = repr(exc)
        finally:
            await self.ws.close()


async def main(base: str, spec: list[list]) -> None:
    viewers = [Viewer(f"{base}/v1/discussions/{did}/stream", did)
               for did, count in spec for _ in range(int(count))]
    # Connect in waves so the accept backlog is never the bottleneck being measured.
    for i in range(0, len(viewers), 100):
        await asyncio.gather(*(v.connect() for v in viewers[i:i + 100]))
    watchers = [asyncio.create_task(v.watch()) for v in viewers]
    print("ready", flush=True)
    await asyncio.gather(*watchers)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "latencies_ms": [x for v in viewers for x in v.latencies],
        "viewers": [[v.did, v.init_count, sorted(v.seqs), v.dups] for v in viewers],
        "frames": sum(v.frames for v in viewers),
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "errors": sum(1 for v in viewers if v.error),
        "error_samples": [v.error for v in viewers if v.error][:3],
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
