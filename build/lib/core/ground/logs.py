"""Logging: one line per event, carrying the request id, discussion id and turn.

The ids live in context variables that the API (per request) and the workers (per task and per
agent call) set; a filter copies them onto every record. `LOG_FORMAT=json` writes JSON lines;
the default keeps the seed's plain format and appends the ids that are set.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from core.ground.settings import Settings

PLAIN_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s%(context)s"
CONTEXT_FIELDS = ("request_id", "discussion_id", "turn")

_context: dict[str, contextvars.ContextVar[Any]] = {
    name: contextvars.ContextVar(f"log_{name}", default=None) for name in CONTEXT_FIELDS
}


def bind(**values: Any) -> None:
    """Set log context fields (request_id, discussion_id, turn) for the current context."""
    for name, value in values.items():
        _context[name].set(value)


def clear() -> None:
    """Forget every log context field (end of a request or task)."""
    for var in _context.values():
        var.set(None)


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Log context fields for the duration of a block, restored afterwards."""
    tokens = {name: _context[name].set(value) for name, value in values.items()}
    try:
        yield
    finally:
        for name, token in tokens.items():
            _context[name].reset(token)


def current() -> dict[str, Any]:
    """The log context fields that are set."""
    return {n: v.get() for n, v in _context.items() if v.get() is not None}


class ContextFilter(logging.Filter):
    """Copies the context fields onto each record (and a printable suffix for plain lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = current()
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, ctx.get(name))
        shown = [f"{n}={getattr(record, n)}" for n in CONTEXT_FIELDS
                 if getattr(record, n, None) is not None]
        record.context = f" [{' '.join(shown)}]" if shown else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, ids, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                body[name] = value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False, default=str)


def configure(settings: Settings, *, stream: Any = None) -> None:
    """Install one root handler in the configured format; safe to call more than once."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_orchestrator", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler._orchestrator = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
