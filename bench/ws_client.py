"""(d) the viewer load process: many WebSocket viewers on gevent greenlets.

Usage: python -m bench.ws_client WS_BASE SPEC_JSON
SPEC_JSON is [[discussion_id, viewers], ...]. Prints `ready` once every viewer has its `init`
frame, then watches until each discussion reaches a terminal status and prints one JSON line:
{"latencies_ms": [...], "viewers": [[discussion_id, init_count, seqs_received, dup], ...],
 "errors": n}. Latency is receive time minus the commit time carried in the event id (Redis's
clock, same machine).
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import websocket  # noqa: E402

TERMINAL = {"completed", "failed", "cancelled"}


class Viewer:
    def __init__(self, url: str, did: str) -> None:
        self.url, self.did = url, did
        self.ws = None
        self.init_count = -1
        self.seqs: set[int] = set()
        self.dups = 0
        self.latencies: list[float] = []
        self.error = ""

    def connect(self) -> None:
        for attempt in range(5):
            try:
                self.ws = websocket.create_connection(self.url, timeout=120)
                init = json.loads(self.ws.recv())
                self.init_count = init["data"]["session"]["message_count"]
                return
            except (OSError, websocket.WebSocketException, ValueError, KeyError) as exc:
                self.error = repr(exc)
                gevent.sleep(0.2 * (attempt + 1))
        raise RuntimeError(f"viewer of {self.did} could not connect: {self.error}")

    def watch(self) -> None:
        assert self.ws is not None
        try:
            while True:
                raw = self.ws.recv()
                now = time.time() * 1000
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "message":
                    seq = frame["data"]["seq"]
                    if seq in self.seqs:
                        self.dups += 1
                    self.seqs.add(seq)
                    self.latencies.append(now - int(frame["id"].split("-")[0]))
                elif kind == "status" and frame["data"].get("status") in TERMINAL:
                    return
        except (OSError, websocket.WebSocketException, ValueError) as exc:
            self.error = repr(exc)
        finally:
            self.ws.close()


def main(base: str, spec: list[list]) -> None:
    viewers = [Viewer(f"{base}/v1/discussions/{did}/stream", did)
               for did, count in spec for _ in range(int(count))]
    # Connect in waves so the accept backlog is never the bottleneck being measured.
    for i in range(0, len(viewers), 100):
        gevent.joinall([gevent.spawn(v.connect) for v in viewers[i:i + 100]], raise_error=True)
    watchers = [gevent.spawn(v.watch) for v in viewers]
    print("ready", flush=True)
    gevent.joinall(watchers)
    result = {
        "latencies_ms": [x for v in viewers for x in v.latencies],
        "viewers": [[v.did, v.init_count, sorted(v.seqs), v.dups] for v in viewers],
        "errors": sum(1 for v in viewers if v.error),
        "error_samples": [v.error for v in viewers if v.error][:3],
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
