"""Run every bench and print one table: `python -m bench` (or `--quick` for a smoke run).

Each section starts its own private redis-server and processes and stops them afterwards.
Targets are ratios to figures measured in the same run (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass

from bench import autogen_bench
from bench.engine_bench import run_engine
from bench.fanout_bench import run_fanout
from bench.harness import Row, fmt, print_table, private_redis, verdict
from bench.http_bench import run_http
from bench.redis_bench import run_redis_benchmark
from bench.redis_loop import run_loop
from bench.stats import TurnStats
from bench.wait_bench import run_wait


@dataclass
class Shapes:
    long: tuple[int, int]  # discussions, turns
    many: tuple[int, int]
    io: tuple[int, int, float]  # discussions, turns, latency ms
    io_workers: int
    io_concurrency: int
    fan_one: int  # viewers of one discussion
    fan_many: tuple[int, int]  # discussions, viewers each
    fan_turns: int
    fan_latency_ms: float
    http_clients: int
    http_seconds: float
    redis_requests: int
    wait: tuple[int, int] = (20, 250)  # discussions, turns: WAIT's cost per turn


FULL = Shapes(long=(1, 1000), many=(100, 50), io=(1000, 10, 500), io_workers=2,
              io_concurrency=500, fan_one=1000, fan_many=(100, 10), fan_turns=30,
              fan_latency_ms=250, http_clients=32, http_seconds=10, redis_requests=100_000)
QUICK = Shapes(long=(1, 30), many=(4, 10), io=(6, 3, 50), io_workers=1, io_concurrency=20,
               fan_one=4, fan_many=(2, 2), fan_turns=3, fan_latency_ms=20, http_clients=2,
               http_seconds=1, redis_requests=2000, wait=(2, 10))


def _shape(n: int, turns: int) -> str:
    return f"{n:,} x {turns:,} turns"


def _turn_row(bench: str, shape: str, system: str, s: TurnStats, target: str = "",
              met: str = "") -> Row:
    return Row(bench, shape, system, rate=fmt(s.per_s, " turns/s"), p50=fmt(s.p50_ms, " ms", 2),
               p99=fmt(s.p99_ms, " ms", 2),
               extra=f"last/first {s.last_first:.2f}" if s.last_first else "",
               target=target, met=met)


def throughput(sh: Shapes, autogen: bool) -> list[Row]:
    """(a) and (b): the engine against AutoGen and the plain Redis loop, same shapes."""
    rows: list[Row] = []
    # One discussion runs on one worker whatever the pool; many use one worker per core.
    for key, (n, turns), workers in (("long", sh.long, 1), ("many", sh.many, sh.io_workers)):
        shape = _shape(n, turns)
        with private_redis() as env:
            run = run_engine(env, name=f"a-{key}", discussions=n, turns=turns,
                             concurrency=500, workers=workers)
        engine = run.stats
        with private_redis() as env:
            loop = run_loop(env.url, n, turns)
        ag = autogen_bench.run_autogen(n, turns) if autogen else None
        targets, oks = [], []
        if ag:
            targets.append(f">= 2x AutoGen ({fmt(2 * ag.per_s)})")
            oks.append(engine.per_s >= 2 * ag.per_s)
        if key == "long":
            targets.append(f">= 1/2 loop ({fmt(loop.per_s / 2)})")
            oks.append(engine.per_s >= loop.per_s / 2)
            targets.append("last/first <= 1.3")
            oks.append(0 < engine.last_first <= 1.3)
        row = _turn_row("a engine", shape, f"engine, {workers} worker{'s' * (workers > 1)}",
                        engine,
                        "; ".join(targets), verdict(all(oks) and run.failed == 0))
        row.extra = "; ".join(filter(None, [
            row.extra, f"CPU/turn worker {run.worker_cpu_us_per_turn:.0f} us, "
                       f"Redis {run.redis_cpu_us_per_turn:.0f} us"]))
        if run.failed:
            row.extra += f"; {run.failed} not completed"
        rows.append(row)
        if ag:
            rows.append(_turn_row("b anchor", shape, "AutoGen RoundRobinGroupChat", ag))
        else:
            rows.append(Row("b anchor", shape, "AutoGen RoundRobinGroupChat",
                            extra="skipped: no bench/.venv-autogen"))
        rows.append(_turn_row("b floor", shape, "plain Redis commit loop", loop))
    return rows


def io_bound(sh: Shapes) -> list[Row]:
    """(c): many discussions with slow agents."""
    n, turns, latency = sh.io
    with private_redis() as env:
        run = run_engine(env, name="c-io", discussions=n, turns=turns, latency_ms=latency,
                         concurrency=sh.io_concurrency, workers=sh.io_workers)
    ideal = n / (latency / 1000)
    share = run.stats.per_s / ideal
    # No steady window when the last discussion started after the first one finished.
    steady = (f"steady {run.stats.steady_per_s / ideal:.0%}" if run.stats.steady_per_s
              else "no steady window: start-up outlasted a discussion")
    ok = share >= 0.8 and run.peak_rss_mb < 1024 and run.failed == 0
    return [Row("c I/O", f"{n:,} x 3 agents x {turns} turns, {latency:.0f} ms",
                f"engine, {sh.io_workers} workers",
                rate=fmt(run.stats.per_s, " turns/s"),
                extra=f"{share:.0%} of ideal {fmt(ideal)} ({steady}); peak RSS "
                      f"{fmt(run.peak_rss_mb)} MB; CPU/turn worker "
                      f"{run.worker_cpu_us_per_turn:.0f} us, Redis "
                      f"{run.redis_cpu_us_per_turn:.0f} us"
                      f"{'; ' + str(run.failed) + ' not completed' if run.failed else ''}",
                target=">= 80% ideal, < 1 GB", met=verdict(ok))]


def fanout(sh: Shapes) -> list[Row]:
    """(d): viewers per discussion."""
    rows = []
    for n, each in ((1, sh.fan_one), sh.fan_many):
        with private_redis() as env:
            run = run_fanout(env, discussions=n, viewers_each=each, turns=sh.fan_turns,
                             latency_ms=sh.fan_latency_ms)
        ok = run.p99_ms <= 150 and run.lost == 0 and run.duplicates == 0 and run.errors == 0
        rows.append(Row("d fan-out", f"{n:,} disc. x {each:,} viewers",
                        "gunicorn -k gevent -w 2",
                        rate=f"{run.frames:,} message frames",
                        p50=fmt(run.p50_ms, " ms", 1), p99=fmt(run.p99_ms, " ms", 1),
                        extra=f"lost {run.lost}, dup {run.duplicates}, errors {run.errors}; "
                              f"API CPU {run.api_cpu_us_per_frame:.0f} us/frame",
                        target="p99 <= 150 ms, lost 0", met=verdict(ok)))
    return rows


def http(sh: Shapes) -> list[Row]:
    """(e): posts per second at a fixed concurrency."""
    with private_redis() as env:
        run = run_http(env, clients=sh.http_clients, seconds=sh.http_seconds)
    ok = run.posts_per_s >= 1000 and run.p99_ms < 50 and run.errors == 0
    return [Row("e HTTP", f"{run.clients} clients, POST messages", "gunicorn -k gevent -w 2",
                rate=fmt(run.posts_per_s, " posts/s"), p50=fmt(run.p50_ms, " ms", 1),
                p99=fmt(run.p99_ms, " ms", 1),
                extra=f"errors {run.errors}; API CPU {run.api_cpu_us_per_post:.0f} us/post",
                target=">= 1,000/s, p99 < 50 ms", met=verdict(ok))]


def redis_rate(sh: Shapes) -> list[Row]:
    """(f): redis-benchmark for context."""
    with private_redis() as env:
        rates = run_redis_benchmark(env.url, sh.redis_requests)
    if not rates:
        return [Row("f Redis", "redis-benchmark", "redis-server", extra="no redis-benchmark")]
    return [Row("f Redis", "redis-benchmark -c 50", "redis-server",
                rate=", ".join(f"{k} {fmt(v)}/s" for k, v in rates.items()))]


def wait_cost(sh: Shapes) -> list[Row]:
    """(g): REDIS_WAIT_REPLICAS=1 against the same run without it, with a real replica."""
    n, turns = sh.wait
    run = run_wait(n, turns, latency_ms=0)
    rows = []
    for label, r in (("no WAIT (replica attached)", run.plain),
                     ("REDIS_WAIT_REPLICAS=1", run.waiting)):
        rows.append(Row("g WAIT", _shape(n, turns), f"engine, 1 worker, {label}",
                        rate=fmt(r.stats.per_s, " turns/s"), p50=fmt(r.stats.p50_ms, " ms", 2),
                        p99=fmt(r.stats.p99_ms, " ms", 2),
                        extra=f"CPU/turn worker {r.worker_cpu_us_per_turn:.0f} us, primary "
                              f"{r.redis_cpu_us_per_turn:.0f} us"
                              + (f"; {r.failed} not completed" if r.failed else "")))
    rows[-1].extra += f"; {run.ratio:.0%} of the rate without WAIT"
    rows[-1].target = "measured, no target"
    return rows


SECTIONS = {"a": throughput, "c": io_bound, "d": fanout, "e": http, "f": redis_rate,
            "g": wait_cost}


def machine() -> str:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(int(x.split()[1]) for x in open("/proc/meminfo") if x.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem = 0
    return (f"{os.cpu_count()} CPUs ({model}), {mem / 1024 / 1024:.0f} GB RAM, "
            f"Python {platform.python_version()}")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes: a smoke run in seconds, figures meaningless")
    parser.add_argument("--only", default="acdefg",
                        help="sections to run, e.g. 'ad' (a includes b)")
    parser.add_argument("--no-autogen", action="store_true",
                        help="skip AutoGen (otherwise installed into bench/.venv-autogen)")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every section stops its Redis and processes.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    shapes = QUICK if args.quick else FULL
    autogen = not args.no_autogen
    if autogen and "a" in args.only:
        if args.quick and not autogen_bench.venv_python().exists():
            autogen = False  # a smoke run never installs anything
        else:
            autogen_bench.ensure_venv()
    rows: list[Row] = []
    started = time.monotonic()
    for key in args.only:
        if key not in SECTIONS:
            parser.error(f"unknown section {key!r}")
        print(f"running {key} ...", file=sys.stderr, flush=True)
        rows += SECTIONS[key](shapes, autogen) if key == "a" else SECTIONS[key](shapes)
    print(f"machine: {machine()}; took {time.monotonic() - started:.0f} s")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
