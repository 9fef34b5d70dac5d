"""Caps on free-form JSON a client sends: nesting depth and encoded size.

Every free-form value (message and discussion `metadata`, agent `params`, batch `variables`,
schedule templates) is checked where it enters, over REST and the WebSocket alike, so no stored
record can be too deep for a later read to parse. Whole bodies and frames get a looser depth
cap before anything else looks at them. The checks are iterative: a hostile value cannot make
them recurse.
"""

from __future__ import annotations

import json
from typing import Any

# A free-form value: at most this deep (a scalar is 0, `{"a": 1}` is 1) and this many bytes.
FREE_JSON_MAX_DEPTH = 16
FREE_JSON_MAX_BYTES = 16 * 1024
# A whole request body or WebSocket frame: the free-form cap plus the models' own nesting.
BODY_MAX_DEPTH = FREE_JSON_MAX_DEPTH + 8


class TooDeep(ValueError):
    """A JSON value nested deeper than allowed."""


class TooLarge(ValueError):
    """A JSON value larger than allowed once encoded."""


def depth(value: Any, limit: int | None = None) -> int:
    """How deeply `value` nests (containers only); stops early once past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if limit is not None and deepest > limit:
            return deepest
        stack.extend((child, level) for child in children)
    return deepest


def check_depth(value: Any, what: str, limit: int = BODY_MAX_DEPTH) -> Any:
    """`value`, unless it nests deeper than `limit` (TooDeep, a ValueError)."""
    if depth(value, limit) > limit:
        raise TooDeep(f"{what} is nested too deep: at most {limit} levels")
    return value


def check_free(value: Any, what: str, *, max_depth: int = FREE_JSON_MAX_DEPTH,
               max_bytes: int = FREE_JSON_MAX_BYTES) -> Any:
    """`value`, unless it nests deeper than `max_depth` or encodes to more than `max_bytes`."""
    check_depth(value, what, max_depth)
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                          default=str).encode())
    if size > max_bytes:
        raise TooLarge(f"{what} is too large: at most {max_bytes} bytes as JSON, got {size}")
    return value
