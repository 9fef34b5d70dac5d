"""(b) AutoGen, run in its own virtual environment so it never touches the project's packages."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.harness import ROOT
from bench.stats import TurnStats, turn_stats

VENV = ROOT / "bench" / ".venv-autogen"
PINS = ["autogen-agentchat==0.7.5", "autogen-ext==0.7.5"]


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> Path:
    """Create bench/.venv-autogen with AutoGen pinned (needs PyPI the first time)."""
    py = venv_python()
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *PINS], check=True)
    return py


@dataclass
class AutogenRun:
    stats: TurnStats
    cpu_us_per_turn: float  # the AutoGen process's CPU per turn: load-independent
    buffer: int  # messages in each agent's context (0: AutoGen's default, unbounded)


def run_autogen(discussions: int, turns: int, buffer: int = 0) -> AutogenRun:
    """Run the shape with RoundRobinGroupChat; its figures. `buffer` > 0 gives each agent a
    BufferedChatCompletionContext of that many messages (our engine's bounded window)."""
    out = subprocess.run([str(venv_python()), str(ROOT / "bench" / "autogen_run.py"),
                          str(discussions), str(turns), str(buffer)], capture_output=True,
                         text=True, check=True, timeout=600)
    data = json.loads(out.stdout)
    turns_done = data["turns"]
    return AutogenRun(stats=turn_stats([tuple(t) for t in turns_done], data["started"]),
                      cpu_us_per_turn=data["cpu_s"] / max(len(turns_done), 1) * 1e6,
                      buffer=buffer)
