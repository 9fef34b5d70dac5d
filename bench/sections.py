"""The table's sections: each runs its shape and its anchor or floor in the same invocation.

Every target is a ratio to a figure measured in the same run on the same cores (never an
absolute threshold), and every rate has its CPU per unit beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import autogen_bench
from bench.engine_bench import run_engine
from bench.fanout_bench import FanoutRun, run_fanout
from bench.harness import Row, fmt, group_cpu_s, private_redis, verdict
from bench.http_bench import HttpRun, run_floor, run_http
from bench.redis_bench import run_redis_benchmark
from bench.redis_loop import run_loop
from bench.stats import TurnStats
from bench.stored_bench import OPERATIONS, compare, prepare, run_memory
from bench.wait_bench import run_wait
from core.ground.settings import Settings


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
    stored: tuple[int, ...]  # stored discussions for the cost-vs-data section
    stored_samples: int  # requests timed per operation at each size
    wait: tuple[int, int] = (20, 250)  # discussions, turns: WAIT's cost per turn


FULL = Shapes(long=(1, 1000), many=(100, 50), io=(1000, 10, 500), io_workers=2,
              io_concurrency=500, fan_one=1000, fan_many=(100, 10), fan_turns=30,
              fan_latency_ms=250, http_clients=32, http_seconds=10, redis_requests=100_000,
              stored=(1_000, 100_000), stored_samples=200)
QUICK = Shapes(long=(1, 30), many=(4, 10), io=(6, 3, 50), io_workers=1, io_concurrency=20,
               fan_one=4, fan_many=(2, 2), fan_turns=3, fan_latency_ms=20, http_clients=2,
               http_seconds=1, redis_requests=2000, stored=(1_000, 10_000), stored_samples=10,
               wait=(2, 10))


def _times(ours: float, anchor: float) -> str:
    """Our CPU per unit as a multiple of the anchor's ("n/a" when too short to measure)."""
    return f"{ours / anchor:.2f}x" if anchor > 0 and ours > 0 else "n/a"


def _turn_row(bench: str, shape: str, system: str, s: TurnStats, cpu: str = "") -> Row:
    return Row(bench, shape, system, rate=fmt(s.per_s, " turns/s"), cpu=cpu,
               p50=fmt(s.p50_ms, " ms", 2), p99=fmt(s.p99_ms, " ms", 2),
               extra=f"last/first {s.last_first:.2f}" if s.last_first else "")


def throughput(sh: Shapes, autogen: bool) -> list[Row]:
    """(a) and (b): the engine against AutoGen and the plain Redis loop, same shapes."""
    rows: list[Row] = []
    window = Settings().context_window_messages
    # One discussion runs on one worker whatever the pool; many use one worker per core.
    for key, (n, turns), workers in (("long", sh.long, 1), ("many", sh.many, sh.io_workers)):
        shape = f"{n:,} x {turns:,} turns"
        with private_redis() as env:
            run = run_engine(env, name=f"a-{key}", discussions=n, turns=turns,
                             concurrency=500, workers=workers)
        engine = run.stats
        with private_redis() as env:
            loop = run_loop(env.url, n, turns, lambda e=env: group_cpu_s(0, pid=e.redis_pid))
        bounded = autogen_bench.run_autogen(n, turns, window) if autogen else None
        default = autogen_bench.run_autogen(n, turns) if autogen else None
        ratios, targets, oks = [], [], []
        if bounded and default:
            # The higher of the two AutoGen figures is the anchor (normally the bounded one).
            top = max(bounded.stats.per_s, default.stats.per_s)
            ratios.append(f"{engine.per_s / top:.2f}x AutoGen (CPU/turn "
                          f"{_times(run.cpu_us_per_turn, bounded.cpu_us_per_turn)} the "
                          "bounded AutoGen's)")
            targets.append(">= 2x AutoGen")
            oks.append(engine.per_s >= 2 * top)
        if key == "long":
            loop_cpu = loop.cpu_us_per_turn + loop.redis_cpu_us_per_turn
            ratios.append(f"{engine.per_s / loop.stats.per_s:.0%} of loop (CPU/turn "
                          f"{_times(run.cpu_us_per_turn, loop_cpu)} the loop's)")
            targets += [">= 50% of loop", "last/first <= 1.3"]
            oks += [engine.per_s >= loop.stats.per_s / 2, 0 < engine.last_first <= 1.3]
        row = _turn_row("a engine", shape, f"engine, {workers} worker{'s' * (workers > 1)}",
                        engine, f"{run.worker_cpu_us_per_turn:.0f} us worker + "
                                 f"{run.redis_cpu_us_per_turn:.0f} us Redis /turn")
        row.ratio, row.target = "; ".join(ratios), "; ".join(targets)
        # Without AutoGen the 100 x 50 shape has no anchor, so nothing to judge it by.
        row.met = verdict(all(oks) and run.failed == 0) if oks else ""
        if run.failed:
            row.extra += f"; {run.failed} not completed"
        rows.append(row)
        if bounded and default:
            rows.append(_turn_row("b AutoGen", shape,
                                  f"RoundRobinGroupChat, BufferedChatCompletionContext({window})",
                                  bounded.stats, f"{bounded.cpu_us_per_turn:.0f} us /turn"))
            rows.append(_turn_row("b AutoGen", shape, "RoundRobinGroupChat, default context",
                                  default.stats, f"{default.cpu_us_per_turn:.0f} us /turn"))
        else:
            rows.append(Row("b AutoGen", shape, "RoundRobinGroupChat",
                            extra="skipped: no bench/.venv-autogen"))
        rows.append(_turn_row("b floor", shape, "plain Redis commit loop", loop.stats,
                              f"{loop.cpu_us_per_turn:.0f} us loop + "
                              f"{loop.redis_cpu_us_per_turn:.0f} us Redis /turn"))
    return rows


def io_bound(sh: Shapes) -> list[Row]:
    """(c): many discussions with slow agents, against the ideal rate."""
    n, turns, latency = sh.io
    with private_redis() as env:
        run = run_engine(env, name="c-io", discussions=n, turns=turns, latency_ms=latency,
                         concurrency=sh.io_concurrency, workers=sh.io_workers)
    ideal = n / (latency / 1000)
    share = run.stats.per_s / ideal
    # No steady window when the last discussion started after the first one finished.
    steady = (f"steady {run.stats.steady_per_s / ideal:.0%}" if run.stats.steady_per_s
              else "no steady window")
    ok = share >= 0.9 and run.peak_rss_mb < 1024 and run.failed == 0
    return [Row("c I/O", f"{n:,} x 3 agents x {turns} turns, {latency:.0f} ms",
                f"engine, {sh.io_workers} workers", rate=fmt(run.stats.per_s, " turns/s"),
                cpu=f"{run.worker_cpu_us_per_turn:.0f} us worker + "
                    f"{run.redis_cpu_us_per_turn:.0f} us Redis /turn",
                extra=f"{steady}; peak RSS {fmt(run.peak_rss_mb)} MB"
                      f"{'; ' + str(run.failed) + ' not completed' if run.failed else ''}",
                ratio=f"{share:.0%} of ideal {fmt(ideal)}",
                target=">= 90% of ideal (start-up included), < 1 GB", met=verdict(ok))]


def _fan_row(system: str, shape: str, run: FanoutRun) -> Row:
    return Row("d fan-out", shape, system, rate=f"{run.frames:,} message frames",
               cpu=f"{run.api_cpu_us_per_frame:.0f} us server /frame",
               p50=fmt(run.p50_ms, " ms", 1), p99=fmt(run.p99_ms, " ms", 1),
               extra=f"lost {run.lost}, dup {run.duplicates}, errors {run.errors}"
                     + (f" ({run.error_samples[0][:80]})" if run.error_samples else ""))


def fanout(sh: Shapes) -> list[Row]:
    """(d): viewers per discussion, against the asyncio relay on the same shape."""
    rows = []
    for n, each in ((1, sh.fan_one), sh.fan_many):
        with private_redis() as env:
            ours, anchor = run_fanout(env, discussions=n, viewers_each=each,
                                      turns=sh.fan_turns, latency_ms=sh.fan_latency_ms)
        shape = f"{n:,} disc. x {each:,} viewers"
        ok = (ours.p99_ms <= 2 * anchor.p99_ms and ours.lost == 0 and ours.duplicates == 0
              and ours.errors == 0)
        row = _fan_row("gunicorn -k gevent -w 2", shape, ours)
        row.ratio = (f"p99 {ours.p99_ms / max(anchor.p99_ms, 1e-9):.2f}x anchor (CPU/frame "
                     f"{_times(ours.api_cpu_us_per_frame, anchor.api_cpu_us_per_frame)})")
        row.target, row.met = "p99 <= 2x anchor, lost 0", verdict(ok)
        rows += [row, _fan_row("d anchor: asyncio websockets relay", shape, anchor)]
        rows[-1].bench = "d anchor"
        rows[-1].system = "asyncio websockets relay"
    return rows


def _http_row(bench: str, system: str, run: HttpRun) -> Row:
    return Row(bench, f"{run.clients} clients, POST messages", system,
               rate=fmt(run.posts_per_s, " posts/s"),
               cpu=f"{run.api_cpu_us_per_post:.0f} us server + "
                   f"{run.redis_cpu_us_per_post:.0f} us Redis /post",
               p50=fmt(run.p50_ms, " ms", 1), p99=fmt(run.p99_ms, " ms", 1),
               extra=f"errors {run.errors}")


def http(sh: Shapes) -> list[Row]:
    """(e): posts per second at a fixed concurrency, against the floor app."""
    with private_redis() as env:
        ours = run_http(env, clients=sh.http_clients, seconds=sh.http_seconds)
    with private_redis() as env:
        floor = run_floor(env, clients=sh.http_clients, seconds=sh.http_seconds)
    rate = ours.posts_per_s / max(floor.posts_per_s, 1e-9)
    tail = ours.p99_ms / max(floor.p99_ms, 1e-9)
    ok = rate >= 0.6 and tail <= 2 and ours.errors == 0
    row = _http_row("e HTTP", "API, gunicorn -k gevent -w 2", ours)
    cpu = _times(ours.api_cpu_us_per_post + ours.redis_cpu_us_per_post,
                 floor.api_cpu_us_per_post + floor.redis_cpu_us_per_post)
    row.ratio = f"{rate:.0%} of floor rate; p99 {tail:.2f}x floor (CPU/post {cpu})"
    row.target, row.met = ">= 60% of floor rate, p99 <= 2x floor", verdict(ok)
    return [row, _http_row("e floor", "Flask app, 1 MULTI/EXEC per post, same gunicorn", floor)]


def redis_rate(sh: Shapes) -> list[Row]:
    """(f): redis-benchmark for context."""
    with private_redis() as env:
        rates = run_redis_benchmark(env.url, sh.redis_requests)
    if not rates:
        return [Row("f Redis", "redis-benchmark", "redis-server", extra="no redis-benchmark")]
    return [Row("f Redis", "redis-benchmark -c 50", "redis-server",
                rate=", ".join(f"{k} {fmt(v)}/s" for k, v in rates.items()))]


def stored(sh: Shapes) -> list[Row]:
    """(g): one request's cost with few and with many discussions stored."""
    small, large = sh.stored
    with private_redis() as env_small, private_redis() as env_large:
        targets = [prepare(env_small, small, sh.stored_samples),
                   prepare(env_large, large, sh.stored_samples)]
        measured = compare(targets, sh.stored_samples)
    costs = {small: measured[0], large: measured[1]}
    rows = []
    for op in OPERATIONS:
        a, b = costs[small][op], costs[large][op]
        ratio = b.p50_ms / max(a.p50_ms, 1e-9)
        for size, c in ((small, a), (large, b)):
            row = Row("g stored", f"{op}, {size:,} stored", "API, gunicorn -k gevent -w 2",
                      cpu=f"{c.api_cpu_us:.0f} us API + {c.redis_cpu_us:.0f} us Redis /request",
                      p50=fmt(c.p50_ms, " ms", 2), p99=fmt(c.p99_ms, " ms", 2))
            if size == large:
                row.ratio = f"p50 {ratio:.2f}x the {small:,} figure"
                row.target, row.met = f"<= 2x at {small:,}", verdict(ratio <= 2)
            rows.append(row)
    return rows


def memory(sh: Shapes) -> list[Row]:
    """(h): Redis bytes kept per finished discussion and per message, events trimmed."""
    with private_redis() as env:
        run = run_memory(env, discussions=10 if sh is QUICK else 100,
                         messages=15 if sh is QUICK else 30)
    return [Row("h memory", f"finished discussions, events trimmed to the last {run.tail}",
                "redis-server used_memory",
                rate=f"{fmt(run.per_discussion_b)} B /discussion + per message "
                     f"{run.per_content_b:.2f} x content + {fmt(run.per_message_b)} B",
                extra=f"fixed part: every key and index entry of a discussion with no "
                      f"messages, plus up to {run.tail} events kept",
                ratio=f"{run.per_content_b:.2f}x content",
                target="<= 1.5x content + fixed", met=verdict(run.per_content_b <= 1.5))]


def wait_cost(sh: Shapes) -> list[Row]:
    """(w): REDIS_WAIT_REPLICAS=1 against the same run without it, with a real replica."""
    n, turns = sh.wait
    run = run_wait(n, turns, latency_ms=0)
    rows = []
    for label, r in (("no WAIT (replica attached)", run.plain),
                     ("REDIS_WAIT_REPLICAS=1", run.waiting)):
        rows.append(Row("w WAIT", f"{n:,} x {turns:,} turns", f"engine, 1 worker, {label}",
                        rate=fmt(r.stats.per_s, " turns/s"), p50=fmt(r.stats.p50_ms, " ms", 2),
                        p99=fmt(r.stats.p99_ms, " ms", 2),
                        extra=f"CPU/turn worker {r.worker_cpu_us_per_turn:.0f} us, primary "
                              f"{r.redis_cpu_us_per_turn:.0f} us"
                              + (f"; {r.failed} not completed" if r.failed else "")))
    rows[-1].extra += f"; {run.ratio:.0%} of the rate without WAIT"
    rows[-1].target = "measured, no target"
    return rows

