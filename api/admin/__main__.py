"""`python -m api.admin …`: the same commands as `orchestrator-admin`.

A separate `__main__` module because `api` imports `api.admin` (for `flask --app api keys`):
running `api/admin.py` itself as `__main__` would load it twice (runpy's RuntimeWarning).
"""

from __future__ import annotations

from api.admin import main

main()
