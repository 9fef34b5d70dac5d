"""(b) AutoGen, run in its own virtual environment so it never touches the project's packages."""

from __future__ import annotations

import json
import subprocess
import sys
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


def run_autogen(discussions: int, turns: int) -> TurnStats:
    """Run the shape with RoundRobinGroupChat; its figures."""
    out = subprocess.run([str(venv_python()), str(ROOT / "bench" / "autogen_run.py"),
                          str(discussions), str(turns)], capture_output=True, text=True,
                         check=True, timeout=600)
    data = json.loads(out.stdout)
    return turn_stats([tuple(t) for t in data["turns"]], data["started"])
