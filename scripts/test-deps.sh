#!/usr/bin/env bash
# System packages some tests need, installed when missing (idempotent, quiet). Run by
# scripts/test.sh; needs root for apt-get, which CI has.
set -euo pipefail

# The browser test drives Debian's Chromium through playwright (never `playwright install`).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "scripts/test-deps.sh: /usr/bin/chromium is missing; install Debian's chromium package" >&2
    exit 1
  fi
fi
