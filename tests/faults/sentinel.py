"""A real Redis Sentinel topology on loopback: a primary, a replica and three Sentinels.

Every process is the system's `redis-server` binary (a Sentinel is `redis-server conf
--sentinel`), started by the test on free ports and stopped in `close()`. The service reaches
it with REDIS_SENTINELS / REDIS_SENTINEL_MASTER (see `env()`), as a deployment would.
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from redis.sentinel import Sentinel

from scripts import embedded_redis

MASTER = "mymaster"
# The test's own Sentinels call a silent primary down after 3 s instead of the default 30 s
# so that a CI run does not sit idle for half a minute per failover; the failover timeout is
# shortened (default 180 s) so a second failover in the same run is not held back. Neither is
# a setting of the service: it follows whatever the Sentinels decide, whenever they decide it.
DOWN_AFTER_MS = 3000
FAILOVER_TIMEOUT_MS = 5000


class SentinelTopology:
    """Primary + replica + 3 Sentinels, all real processes on free loopback ports."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sentinel-"))
        self.data_ports = [embedded_redis.free_port(), embedded_redis.free_port()]
        self.sentinel_ports = [embedded_redis.free_port() for _ in range(3)]
        self.servers: dict[int, subprocess.Popen[bytes]] = {}
        self.sentinels: list[subprocess.Popen[bytes]] = []
        self._manager: Sentinel | None = None

    # ------------------------------------------------------------ processes

    def start(self) -> None:
        """Start the primary, its replica, then the Sentinels; wait until they agree."""
        primary, replica = self.data_ports
        self.start_server(primary)
        self.start_server(replica, replica_of=primary)
        binary = embedded_redis.find_redis_server()
        assert binary is not None, "no redis-server binary"
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.dir}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n")
            log = open(self.dir / f"sentinel-{port}.log", "ab")  # noqa: SIM115 - with the process
            self.sentinels.append(subprocess.Popen([binary, str(conf), "--sentinel"],
                                                   stdout=log, stderr=subprocess.STDOUT))
        self.wait_agreed(primary, replicas=1)

    def start_server(self, port: int, *, replica_of: int | None = None) -> None:
        """Start a data server on `port` (a restarted old primary is told its role by the
        Sentinels)."""
        extra = ["--replica-announce-ip", "127.0.0.1"]
        if replica_of is not None:
            extra += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.servers[port] = embedded_redis.start(port, self.dir / f"data-{port}",
                                                  extra_args=extra)

    def kill(self, port: int) -> None:
        """SIGKILL the data server on `port` (the host dies)."""
        proc = self.servers.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def close(self) -> None:
        for proc in [*self.servers.values(), *self.sentinels]:
            proc.kill()
            proc.wait(timeout=10)
        self.servers.clear()
        self.sentinels.clear()
        if self._manager is not None:
            self._manager.close()

    def __enter__(self) -> SentinelTopology:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ what the Sentinels say

    def env(self) -> dict[str, str]:
        """The service's settings for this topology."""
        return {"REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports),
                "REDIS_SENTINEL_MASTER": MASTER,
                # Unused with Sentinel except for a password; points nowhere on purpose.
                "REDIS_URL": "redis://127.0.0.1:1/0"}

    def manager(self) -> Sentinel:
        if self._manager is None:
            self._manager = Sentinel([("127.0.0.1", p) for p in self.sentinel_ports],
                                     socket_timeout=1, socket_connect_timeout=1)
        return self._manager

    def client(self) -> redis.Redis:
        """A client that follows the primary (for the test's own reads)."""
        return self.manager().master_for(MASTER, socket_timeout=5, socket_connect_timeout=1,
                                         decode_responses=True)

    def primary_port(self) -> int | None:
        """The port the Sentinels currently name primary (None if none answers)."""
        for port in self.sentinel_ports:
            try:
                addr = redis.Redis(port=port, socket_timeout=1).sentinel_get_master_addr_by_name(
                    MASTER)
            except redis.RedisError:
                continue
            if addr:
                return int(addr[1])
        return None

    def wait_agreed(self, primary: int, *, replicas: int, timeout: float = 30) -> None:
        """Until every Sentinel names `primary`, knows the other two and `replicas` replicas
        that are up and in sync."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._agrees(p, primary, replicas) for p in self.sentinel_ports):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Sentinels did not agree on {primary}; see {self.dir}")

    def _agrees(self, sentinel_port: int, primary: int, replicas: int) -> bool:
        try:
            s = redis.Redis(port=sentinel_port, socket_timeout=1, decode_responses=True)
            master = s.sentinel_master(MASTER)
            if int(master["port"]) != primary or master.get("num-other-sentinels", 0) < 2:
                return False
            up = [r for r in s.sentinel_slaves(MASTER)
                  if "s_down" not in r["flags"] and r.get("master-link-status") == "ok"]
            return len(up) >= replicas
        except (redis.RedisError, KeyError, ValueError):
            return False

    def wait_failover(self, old: int, timeout: float = 60) -> float:
        """Seconds until the Sentinels name a primary other than `old`."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            now = self.primary_port()
            if now is not None and now != old:
                return time.monotonic() - started
            time.sleep(0.05)
        raise RuntimeError(f"no failover within {timeout} s; see {self.dir}")
