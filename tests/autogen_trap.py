"""A module a hostile component JSON names as its class: importing it is the failure."""

from __future__ import annotations

IMPORTED = True


class Trap:
    pass
