"""Schemathesis against the service's own /openapi.json, every check, authentication on:
no 5xx, every response matching the document, no undocumented status code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from core.services.auth import create_api_key

HERE = Path(__file__).resolve().parent
MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "40")
STATEFUL_EXAMPLES = os.environ.get("FUZZ_STATEFUL_EXAMPLES", "30")


def _run(make_app, sec_settings, r, tmp_path, *args: str,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # Steps are recorded, not run, so fuzzed discussions cost no agent work; generous quotas so
    # the fuzzer reaches the views instead of the limits.
    settings = sec_settings.model_copy(update={
        "max_active_discussions_per_user": 100_000, "max_participants": 128})
    from tests.security.conftest import serve

    base, server, thread = serve(make_app(settings))
    key = create_api_key(r, settings, "fuzzer")
    try:
        return subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file",
             str(HERE / "schemathesis.toml"), "run", f"{base}/openapi.json",
             "--checks", "all", "-H", f"Authorization: Bearer {key}",
             "--seed", "20261124", "--no-shrink", "--workers", "1", "--request-timeout", "10",
             *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=600,
            env={**os.environ, "PYTHONPATH": str(HERE.parents[1]), **(env or {})},
        )
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _assert_clean(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout
    starts = [i for i in (out.find("= ERRORS ="), out.find("= FAILURES =")) if i >= 0]
    failures = out[min(starts):out.find("= WARNINGS =")] if starts else ""
    tail = "\n".join(out.splitlines()[-40:])
    print(tail)
    assert proc.returncode == 0, failures[:20000] + tail + proc.stderr[-2000:]
    assert "passed" in tail and "Failures:" not in tail
    return out


def test_schemathesis_all_checks_clean(make_app, sec_settings, r, tmp_path) -> None:
    """Every operation on its own: examples, coverage and fuzzing."""
    _assert_clean(_run(make_app, sec_settings, r, tmp_path, "--max-examples", MAX_EXAMPLES,
                       "--phases", "examples,coverage,fuzzing"))


def test_schemathesis_stateful_chains_clean(make_app, sec_settings, r, tmp_path) -> None:
    """Chains of calls along the document's OpenAPI links (create a discussion, a schedule or a
    batch, then act on it: post, pause, leave, read, delete, ...), every check on every step."""
    out = _assert_clean(_run(make_app, sec_settings, r, tmp_path, "--max-examples",
                             STATEFUL_EXAMPLES, "--phases", "stateful",
                             env={"SCHEMATHESIS_HOOKS": "tests.security.fuzz_hooks"}))
    # The stateful phase really walked links (it runs nothing when no create succeeds).
    covered = re.search(r"API Links:\s+(\d+) covered", out)
    assert covered and int(covered.group(1)) >= 5, out[-3000:]
