"""What the run command decides before it starts anything: Redis, ports, paths, the mode.

Every check here fails within seconds and names its cause, before a process is started or a key
is written: a REDIS_URL that does not answer, a port another process holds. Nothing writes into
a Redis the run command did not start unless REDIS_URL (environment or `.env`) names it.
Per-checkout paths (metrics directories, the beat schedule, the embedded Redis's data) live in
the checkout's `.run/`, so two checkouts on one machine never touch each other's files.
"""

from __future__ import annotations

import fcntl
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from core.ground.settings import Settings
from scripts import embedded_redis

LOOPBACK = "127.0.0.1"


class SetupError(SystemExit):
    """The run command cannot start: the message names the cause and what to change."""

    def __init__(self, message: str) -> None:
        super().__init__(f"! {message}")


@dataclass(frozen=True)
class Port:
    """A port one role listens on: its setting, its default, and whether a user chose it."""

    setting: str
    default: int
    role: str


# The ports the run command uses (docs: README "Quick start"). The API's port is the one the
# printed links name, so a busy one is an error; the others move to a free port when only their
# default is taken.
PORTS = (
    Port("SERVICE_PORT", 5000, "web"),
    Port("EXECUTION_PLATFORM_PORT", 8000, "platform"),
    Port("FLOWER_PORT", 5555, "flower"),
    Port("WORKER_METRICS_PORT", 9808, "worker"),
)
MOVABLE = {"EXECUTION_PLATFORM_PORT", "FLOWER_PORT", "WORKER_METRICS_PORT"}


@dataclass
class Plan:
    """The environment the roles get, and what to say about it."""

    env: dict[str, str]
    notes: list[str] = field(default_factory=list)


def listening(port: int, host: str = LOOPBACK) -> bool:
    """Whether some process accepts connections on host:port."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def bindable(port: int, host: str = LOOPBACK) -> bool:
    """Whether this process could listen on host:port now."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def choose_ports(env: dict[str, str], roles: list[str]) -> list[str]:
    """Set every port the chosen roles use in `env`; notes on ports that moved.

    Raises SetupError for a busy SERVICE_PORT, or any busy port a user set explicitly.
    """
    notes = []
    for port in PORTS:
        if port.role not in roles:
            continue
        chosen = env.get(port.setting)
        value = int(chosen) if chosen else port.default
        if not listening(value) and bindable(value):
            env[port.setting] = str(value)
            continue
        if chosen or port.setting not in MOVABLE:
            raise SetupError(
                f"port {value} ({port.setting}, the {port.role} role) is already in use, "
                f"perhaps by another run of this command; stop it or set {port.setting} to a "
                "free port")
        env[port.setting] = str(embedded_redis.free_port())
        notes.append(f"{port.setting} {port.default} is in use: using {env[port.setting]}")
    return notes


def lock_checkout(workdir: Path) -> object:
    """Hold `.run/run.lock` for this run: a second run in the same checkout would share its
    Redis data, metrics and schedule files. Keep the returned file open while running."""
    handle = open(workdir / "run.lock", "a+")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise SetupError(f"another run of this command is using this checkout ({workdir}); "
                         "stop it first (each checkout runs one instance)") from None
    return handle


def checkout_paths(env: dict[str, str], workdir: Path) -> None:
    """Per-checkout metrics directories and beat schedule, unless set."""
    env.setdefault("WEB_METRICS_DIR", str(workdir / "metrics" / "web"))
    env.setdefault("WORKER_METRICS_DIR", str(workdir / "metrics" / "worker"))
    env.setdefault("BEAT_SCHEDULE_FILE", str(workdir / "celerybeat-schedule"))


def configured_redis(env: dict[str, str]) -> str | None:
    """The Redis a user named (REDIS_URL in the environment or `.env`), else None."""
    if env.get("REDIS_URL"):
        return env["REDIS_URL"]
    settings = Settings()
    if "redis_url" in settings.model_fields_set:
        return settings.redis_url
    return None


def check_redis(url: str) -> None:
    """SetupError unless a Redis answers PING at `url` within two seconds."""
    if not embedded_redis.answers(url, timeout=2.0):
        raise SetupError(f"no Redis answers at REDIS_URL={url} (refused, unreachable or not "
                         "Redis); fix REDIS_URL, or unset it to let this command start its own")


def start_redis(env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    """An embedded redis-server of this checkout, on RUN_REDIS_PORT (default: a free port)."""
    wanted = env.get("RUN_REDIS_PORT")
    port = int(wanted) if wanted else embedded_redis.free_port()
    if wanted and (listening(port) or not bindable(port)):
        raise SetupError(f"port {port} (RUN_REDIS_PORT, the embedded Redis) is already in use; "
                         "set RUN_REDIS_PORT to a free port, or unset it")
    proc = embedded_redis.start(port, workdir / "redis", appendonly=True)
    env["REDIS_URL"] = f"redis://{LOOPBACK}:{port}"
    return proc


def demo_mode(env: dict[str, str]) -> bool:
    """Whether this run is the demo mode: authentication off and every role on loopback.

    The demo mode applies unless AUTH_ENABLED is configured (environment or `.env`).
    """
    settings = Settings(redis_url=env["REDIS_URL"])
    if "auth_enabled" in settings.model_fields_set or env.get("AUTH_ENABLED"):
        return False
    env["AUTH_ENABLED"] = "false"
    for host in ("SERVICE_HOST", "FLOWER_HOST", "WORKER_METRICS_HOST",
                 "EXECUTION_PLATFORM_HOST"):
        env[host] = LOOPBACK
    return True
