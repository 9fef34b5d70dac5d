"""`python -m refplatform [--port 8000] [--latency-ms 200 --error-rate 0.1 --error-mode 503 ...]`"""

from __future__ import annotations

import argparse
import logging
import os

from werkzeug.serving import make_server

from refplatform import create_app
from refplatform.faults import MODES, Faults


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m refplatform", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("EXECUTION_PLATFORM_PORT",
                                                                 8000)))
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before every reply")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="extra random delay, up to")
    p.add_argument("--error-rate", type=float, default=0.0, help="probability a call faults")
    p.add_argument("--error-mode", choices=MODES, default="500", help="what a fault does")
    p.add_argument("--fail-first", type=int, default=0,
                   help="fault the first N calls of every agent and turn")
    p.add_argument("--retry-after-s", type=float, default=1.0, help="Retry-After of a 429")
    p.add_argument("--hang-s", type=float, default=30.0, help="how long a `hang` fault sleeps")
    p.add_argument("--chunk-delay-ms", type=float, default=0.0,
                   help="delay between streamed chunks")
    p.add_argument("--seed", type=int, default=None, help="seed of the fault dice")
    a = p.parse_args()
    faults = Faults(latency_ms=a.latency_ms, jitter_ms=a.jitter_ms, error_rate=a.error_rate,
                    error_mode=a.error_mode, fail_first=a.fail_first,
                    retry_after_s=a.retry_after_s, hang_s=a.hang_s,
                    chunk_delay_ms=a.chunk_delay_ms)
    logging.basicConfig(level=logging.INFO)
    print(f"Reference Execution Platform on http://{a.host}:{a.port} with {faults}")
    # A threaded server of its own, without run_simple's development-server banner: this is a
    # stand-in for a real platform, run on loopback by the run command.
    server = make_server(a.host, a.port, create_app(faults, seed=a.seed), threaded=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
