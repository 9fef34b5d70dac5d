"""One discussion against a faulty reference Execution Platform, with its figures.

`python -m scripts.faulty_run [--rounds 10] [--seed 7]` starts a private redis-server and the
reference platform (both on free ports, stopped at the end), creates a round-robin discussion
of four platform agents, each with its own injected fault (500s, 429 with Retry-After,
replies slower than the turn's deadline, malformed JSON), runs it with the real engine in this
process, and prints what the platform received and what the session accounted.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import threading
import time
from pathlib import Path

from werkzeug.serving import make_server

from core.agents import Backends
from core.ground.models import CreateDiscussion
from core.ground.settings import Settings
from core.services.discussions import create_discussion
from core.storage.redis_client import make_redis
from core.storage.store import Store
from refplatform import create_app as create_platform
from scripts import embedded_redis
from workers.engine import Outcome, Runtime, run_step

AGENTS = [
    ("Security Expert", {"error_rate": 0.3, "error_mode": "500"}),
    ("Backend Developer", {"error_rate": 0.3, "error_mode": "429", "retry_after_s": 0.2}),
    ("Product Manager", {"error_rate": 0.15, "error_mode": "hang", "hang_s": 3}),
    ("Tester", {"error_rate": 0.1, "error_mode": "malformed"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    workdir = Path(tempfile.mkdtemp(prefix="faulty-run-"))
    port = embedded_redis.free_port()
    redis_proc = embedded_redis.start(port, workdir)
    platform = create_platform(seed=args.seed)
    server = make_server("127.0.0.1", 0, platform, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        settings = Settings(_env_file=None,  # type: ignore[call-arg]
                            redis_url=f"redis://127.0.0.1:{port}",
                            execution_platform_url=base, turn_deadline_s=2.0,
                            agent_read_timeout_s=1.5, agent_max_retries=3,
                            agent_backoff_base_s=0.1, agent_backoff_max_s=1.0,
                            model_prices={"ref-model": {"prompt": 2.5, "completion": 10.0}})
        store = Store(make_redis(settings))
        backends = Backends(settings)
        rt = Runtime(settings=settings, store=store, backends=backends, enqueue=lambda d: None)
        svc = rt.services()
        body = CreateDiscussion.model_validate({
            "topic": "Design the API for user authentication", "max_rounds": args.rounds,
            "agents": [{"persona": name, "model": "ref-model", "params": {"faults": faults}}
                       for name, faults in AGENTS]})
        started = time.monotonic()
        did = create_discussion(svc, body).id
        while run_step(rt, did) == Outcome.MORE:
            pass
        elapsed = time.monotonic() - started
        session = store.session(did)
        events = store.events_after(did, "0", count=100_000)
        state = platform.extensions["refplatform"]
        by_agent: dict[str, int] = {}
        for key, n in state.calls.items():
            agent_id = key.rsplit(":", 1)[0]
            by_agent[agent_id] = by_agent.get(agent_id, 0) + n
        print(json.dumps({
            "discussion": did,
            "status": session.status, "stop_reason": session.stop_reason,
            "seconds": round(elapsed, 2),
            "turns": store.state(did).turn,
            "messages": session.message_count,
            "turn_failed_events": sum(e.type == "turn_failed" for e in events),
            "platform_calls_received": sum(state.calls.values()),
            "platform_calls_by_agent": {p.name: by_agent.get(p.instance_id or "", 0)
                                        for p in session.participants},
            "usage_total": session.usage.total.model_dump(),
        }, indent=2))
    finally:
        server.shutdown()
        redis_proc.terminate()
        redis_proc.wait(timeout=10)


if __name__ == "__main__":
    main()
