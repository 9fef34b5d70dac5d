"""Run the whole service locally: Redis, every Procfile role, a demo discussion.

`python -m scripts.run [--no-demo] [--roles web,worker]` reads the Procfile (the one source of
truth for process roles), checks its Redis and ports (scripts/run_setup.py: a wrong REDIS_URL or
a busy port fails at once, before anything starts), starts a Redis of its own unless REDIS_URL
names one, starts each role with the venv's binaries on PATH, waits for /health, creates a demo
discussion and prints every address. Ctrl-C stops all and says what it stopped.
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
from scripts import run_setup as setup

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
    roles = procfile_roles(ROOT / "Procfile")
    wanted = [r for r in args.roles.split(",") if r] or list(roles)
    unknown = [r for r in wanted if r not in roles]
    if unknown:
        raise setup.SetupError(f"unknown role {', '.join(unknown)}; the Procfile has "
                               f"{', '.join(roles)}")
    if "platform" in wanted and (env.get("EXECUTION_PLATFORM_URL")
                                 or "execution_platform_url" in Settings().model_fields_set):
        wanted.remove("platform")  # a real platform is configured: do not start ours
    # Everything that can fail is checked before anything starts or is written.
    lock = setup.lock_checkout(workdir)  # noqa: F841 - held until this process exits
    redis_url = setup.configured_redis(env)
    if redis_url:
        setup.check_redis(redis_url)
        env["REDIS_URL"] = redis_url
    notes = setup.choose_ports(env, wanted)
    setup.checkout_paths(env, workdir)
    stopped: list[str] = []
    procs: dict[str, subprocess.Popen[bytes]] = {}
    redis_proc = None
    try:
        if redis_url:
            print(f"* Redis: {redis_url} (from REDIS_URL)")
        else:
            redis_proc = setup.start_redis(env, workdir)
            procs_note = f"data in {workdir / 'redis'}"
            print(f"* Redis: embedded redis-server at {env['REDIS_URL']} ({procs_note})")
        demo_mode = setup.demo_mode(env)
        headers = _auth(env, demo_mode)
        if "platform" in wanted:
            env["EXECUTION_PLATFORM_URL"] = (
                f"http://{setup.LOOPBACK}:{env['EXECUTION_PLATFORM_PORT']}")
        for note in notes:
            print(f"* {note}")
        for role in wanted:
            log = open(workdir / f"{role}.log", "ab")  # noqa: SIM115 - lives as long as the child
            procs[role] = subprocess.Popen(["bash", "-c", f"exec {roles[role]}"], cwd=ROOT,
                                           env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)
            print(f"* {role}: started (log: .run/{role}.log)")
        port = int(env.get("SERVICE_PORT") or 5000)
        base = f"http://127.0.0.1:{port}"
        if "web" in procs:
            _wait_healthy(base, procs, "web")
        if "platform" in procs:
            _wait_healthy(env["EXECUTION_PLATFORM_URL"], procs, "platform")
        _addresses(env, base, procs, headers)
        if not args.no_demo and "web" in procs:
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
        if procs or redis_proc is not None:
            print("\nStopping everything started here…")
        for role, proc in procs.items():
            if _stop(proc):
                stopped.append(role)
        if redis_proc is not None and _stop(redis_proc):
            stopped.append(f"the embedded Redis (data kept in {workdir / 'redis'})")
        if stopped:
            print(f"\nStopped: {', '.join(stopped)}.")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait_healthy(base: str, procs: dict[str, subprocess.Popen[bytes]], role: str) -> None:
    """Wait for `role`'s /health; its own process exiting ends the wait at once."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        proc = procs[role]
        if proc.poll() is not None:
            tail = _tail(ROOT / ".run" / f"{role}.log")
            raise setup.SetupError(f"the {role} process exited with {proc.returncode}; "
                                   f"last lines of .run/{role}.log:\n{tail}")
        try:
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise setup.SetupError(f"{role} did not answer {base}/health within 60 s; see "
                           f".run/{role}.log")


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _auth(env: dict[str, str], demo_mode: bool) -> dict[str, str]:
    """The headers the demo requests carry: none in the demo mode; else a key for user `demo`,
    made in this run's Redis and printed."""
    if demo_mode:
        print("* Mode: demo (authentication off, every role on 127.0.0.1; AUTH_ENABLED=true "
              "turns authentication on; docs/security.md)")
        return {}
    settings = Settings(redis_url=env["REDIS_URL"])
    if not settings.auth_enabled:
        print("* Authentication: off (AUTH_ENABLED=false)")
        return {}
    key = create_api_key(make_redis(settings), settings, "demo", "scripts/run.py")
    print(f"* Authentication: on; an API key for user `demo`: {key}")
    return {"Authorization": f"Bearer {key}"}


def _addresses(env: dict[str, str], base: str, procs: dict[str, subprocess.Popen[bytes]],
               headers: dict[str, str]) -> None:
    """Where everything this run started can be reached."""
    print(f"\nService:   {base}   API docs: {base}/docs   ReDoc: {base}/redoc")
    if "flower" in procs:
        print(f"Flower:    http://{env.get('FLOWER_HOST') or '127.0.0.1'}:{env['FLOWER_PORT']}")
    if "worker" in procs:
        print(f"Worker metrics: http://127.0.0.1:{env['WORKER_METRICS_PORT']}/metrics")
    if "platform" in procs:
        print(f"Execution Platform (reference): {env['EXECUTION_PLATFORM_URL']}")
    print(f"Redis:     {env['REDIS_URL']}")
    venv_bin = Path(sys.executable).parent
    print(f"API keys:  REDIS_URL={env['REDIS_URL']} {venv_bin}/orchestrator-admin keys create "
          "--user alice")
    token = headers.get("Authorization", "").removeprefix("Bearer ")
    print(f"CLI:       {venv_bin}/orchestrator --url {base}"
          + (f" --token {token}" if token else "") + " list")


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
    token = (headers or {}).get("Authorization", "").removeprefix("Bearer ")
    # The page keeps a #token= for its tab and takes it out of the address bar (never sent).
    print(f"  watch the page:  {base}/ui/discussions/{did}" + (f"#token={token}" if token
                                                                else ""))
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


def _stop(proc: subprocess.Popen[bytes]) -> bool:
    """Stop a child and its process group; whether it was still running."""
    if proc.poll() is not None:
        return False
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    return True


if __name__ == "__main__":
    sys.exit(main())
