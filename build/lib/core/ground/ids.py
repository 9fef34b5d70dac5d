"""Identifiers in the seed's styles: disc_…, agent_…, human_…, msg_…."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """A random id with the given prefix, e.g. `disc_3f9a1c2b7d4e`."""
    return f"{prefix}_{secrets.token_hex(6)}"
