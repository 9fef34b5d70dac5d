"""Keep secrets out of logs: a logging filter that masks tokens wherever a record carries them.

Access logs print request lines, and a WebSocket client may put its token in the query string;
libraries may log headers. The filter rewrites each record's final message before any handler
writes it.
"""

from __future__ import annotations

import logging
import re

MASK = "[redacted]"
PATTERNS = [
    (re.compile(r"(access_token=)[^&\s\"']+", re.I), r"\1" + MASK),
    (re.compile(r"(Bearer\s+)[^\s\"',]+", re.I), r"\1" + MASK),
    (re.compile(r"(X-API-Key:?\s*)[^\s\"',]+", re.I), r"\1" + MASK),
    (re.compile(r"\b([a-z]{2,8}_[0-9a-f]{18}_)[A-Za-z0-9_-]+"), r"\1" + MASK),
    (re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*"), MASK),
]


def redact(text: str) -> str:
    """`text` with every token-looking part masked."""
    for pattern, repl in PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message (and drops its args once they are merged in)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the logging module's to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install(*logger_names: str) -> None:
    """Attach the filter to every handler of the root logger and of the named loggers."""
    loggers = [logging.getLogger()] + [logging.getLogger(n) for n in logger_names]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
