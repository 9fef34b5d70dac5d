"""Run the whole service locally: Redis (embedded when none answers), every Procfile role, a demo.

`python -m scripts.run [--no-demo] [--roles web,worker]` reads the Procfile (the one source of
truth for process roles), starts each role with the venv's binaries on PATH, waits for /health,
creates a demo discussion of simulated agents and prints where to watch it. Ctrl-C stops all.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from core.ground.settings import Settings
from core.services.auth import create_api_key
from core.storage.redis_client import make_redis
from scripts import embedded_redis

ROOT = Path(__file__).resolve().parent.parent

DEMO = {
    "topic": "Design the API for user authentication",
    "protocol": "round_robin",
    "max_rounds": 6,
    "agents": [
        {"persona": "Security Expert", "provider": "simulated", "params": {"latency_ms": 1500},
         "system_prompt": "You are an expert in security best practices."},
        {"persona": "Backend Developer", "provider": "simulated", "params": {"latency_ms": 1500}},
        {"persona": "Product Manager", "provider": "simulated", "params": {"latency_ms": 1500}},
    ],
}


def procfile_roles(path: Path) -> dict[str, str]:
    """Role -> command, in file order."""
    roles: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip())
        if m:
            roles[m.group(1)] = m.group(2)
    return roles


def ensure_redis(env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes] | None:
    """Use REDIS_URL when set; else the default Redis if it answers; else start an embedded one."""
    if os.environ.get("REDIS_URL"):
        print(f"* Redis: {env['REDIS_URL']} (from REDIS_URL)")
        return None
    settings = Settings()
    if settings.redis_url != Settings.model_fields["redis_url"].default:
        print(f"* Redis: {settings.redis_url} (from .env)")
        return None
    default = "redis://localhost:6379"
    if embedded_redis.answers(default):
        env["REDIS_URL"] = default
        print(f"* Redis: {default} (answering on the default address)")
        return None
    port = 6379 if _port_free(6379) else embedded_redis.free_port()
    proc = embedded_redis.start(port, workdir / "redis", appendonly=True)
    env["REDIS_URL"] = f"redis://127.0.0.1:{port}"
    print(f"* Redis: embedded redis-server on 127.0.0.1:{port} (data in {workdir / 'redis'})")
    return proc


def _reference_platform(env: dict[str, str]) -> None:
    """Point web and worker at the reference Execution Platform this run starts."""
    port = int(env.get("EXECUTION_PLATFORM_PORT") or 8000)
    if not _port_free(port):
        port = embedded_redis.free_port()
    env["EXECUTION_PLATFORM_PORT"] = str(port)
    env["EXECUTION_PLATFORM_URL"] = f"http://127.0.0.1:{port}"
    print(f"* Execution Platform: reference server on {env['EXECUTION_PLATFORM_URL']}")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-demo", action="store_true", help="do not create a demo discussion")
    parser.add_argument("--roles", default="", help="comma-separated Procfile roles to run")
    parser.add_argument("--exit-after-demo", action="store_true",
                        help="stop everything once the demo discussion finishes")
    args = parser.parse_args()
    # A SIGTERM (from a supervisor or `kill`) stops the children too, like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)

    workdir = ROOT / ".run"
    workdir.mkdir(exist_ok=True)
    env = {**os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    redis_proc = ensure_redis(env, workdir)
    headers = _auth_mode(env)
    port = int(env.get("SERVICE_PORT") or Settings().service_port)
    env["SERVICE_PORT"] = str(port)
    roles = procfile_roles(ROOT / "Procfile")
    wanted = [r for r in args.roles.split(",") if r] or list(roles)
    if "platform" in wanted:
        if env.get("EXECUTION_PLATFORM_URL"):
            wanted.remove("platform")  # a real platform is configured: do not start ours
        else:
            _reference_platform(env)
    try:
        for role in wanted:
            log = open(workdir / f"{role}.log", "ab")  # noqa: SIM115 - lives as long as the child
            procs[role] = subprocess.Popen(["bash", "-c", f"exec {roles[role]}"], cwd=ROOT,
                                           env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)
            print(f"* {role}: started (log: .run/{role}.log)")
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, procs)
        if "platform" in procs:
            _wait_healthy(env["EXECUTION_PLATFORM_URL"], procs)
        print(f"\nService: {base}   API docs: {base}/docs   ReDoc: {base}/redoc")
        if not args.no_demo:
            did = _demo(base, on_platform="platform" in procs, headers=headers)
            if args.exit_after_demo:
                return _wait_demo(base, did, headers)
        print("\nCtrl-C stops every process started here.")
        while True:
            for role, proc in procs.items():
                if proc.poll() is not None:
                    print(f"! {role} exited with {proc.returncode}; see .run/{role}.log")
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in procs.values():
            _stop(proc)
        if redis_proc is not None:
            _stop(redis_proc)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait_healthy(base: str, procs: dict[str, subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        web = procs.get("web")
        if web is not None and web.poll() is not None:
            raise SystemExit("the web process exited; see .run/web.log")
        time.sleep(0.5)
    raise SystemExit("the service did not become healthy within 60 s; see .run/*.log")


def _auth_mode(env: dict[str, str]) -> dict[str, str]:
    """The demo runs with authentication off on loopback unless AUTH_ENABLED is configured; with
    it on, a key for user `demo` is made and printed. The headers the demo requests carry."""
    settings = Settings(redis_url=env["REDIS_URL"]) if env.get("REDIS_URL") else Settings()
    if "auth_enabled" not in settings.model_fields_set:
        env["AUTH_ENABLED"] = "false"
        env.setdefault("SERVICE_HOST", "127.0.0.1")
        print("* Authentication: off, serving loopback only (AUTH_ENABLED=true turns it on; "
              "docs/security.md)")
        return {}
    if not settings.auth_enabled:
        print("* Authentication: off (AUTH_ENABLED=false)")
        return {}
    key = create_api_key(make_redis(settings), settings, "demo", "scripts/run.py")
    print(f"* Authentication: on; an API key for user `demo`: {key}")
    return {"Authorization": f"Bearer {key}"}


def _demo(base: str, on_platform: bool = False, headers: dict[str, str] | None = None) -> str:
    body = DEMO
    if on_platform:  # the same agents, run by the reference Execution Platform
        body = {**DEMO, "agents": [
            {**a, "provider": "execution_platform",
             "params": {"faults": {"latency_ms": a["params"]["latency_ms"]}}}
            for a in DEMO["agents"]]}
    resp = requests.post(f"{base}/v1/discussions", json=body, headers=headers, timeout=10)
    resp.raise_for_status()
    did = resp.json()["id"]
    ws = base.replace("http://", "ws://")
    kind = "Execution Platform" if on_platform else "simulated"
    print(f"\nDemo discussion {did} is running ({len(DEMO['agents'])} {kind} agents, "
          f"{DEMO['max_rounds']} rounds):")
    print(f"  watch the page:  {base}/ui/discussions/{did}")
    auth = "".join(f" -H '{k}: {v}'" for k, v in (headers or {}).items())
    print(f"  session:         curl{auth} {base}/v1/discussions/{did}")
    print(f"  transcript:      curl{auth} '{base}/v1/discussions/{did}/messages?limit=50'")
    print(f"  live stream:     {ws}/v1/discussions/{did}/stream")
    return did


def _wait_demo(base: str, did: str, headers: dict[str, str] | None = None) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        session = requests.get(f"{base}/v1/discussions/{did}", headers=headers, timeout=5).json()
        if session["status"] in ("completed", "failed", "cancelled"):
            print(f"Demo finished: {session['status']} ({session['stop_reason']}), "
                  f"{session['message_count']} messages")
            return 0 if session["status"] == "completed" else 1
        time.sleep(1)
    print("Demo did not finish within 120 s")
    return 1


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
