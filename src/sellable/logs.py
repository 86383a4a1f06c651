"""Where log lines go and how they read: text for people, one JSON object per line for log
shippers (``[logging] format = "json"``).

Usage::

    start_logging(verbose=False)          # at the start of every command: stderr, WARNING
    apply_log_settings(settings)          # once the configuration is known (daemon, sync)

A JSON line holds ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, then every
field the record was given with ``extra=`` (``channel``, ``job``, ``counts`` …), then
``exception`` when there is one. Python warnings (APScheduler's among them) are logged
through the same handler, under the logger ``py.warnings``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from sellable.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Libraries whose per-request chatter stays at WARNING unless --verbose.
NOISY = ("alembic", "httpx", "httpcore", "apscheduler")
#: What every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        # As logging.Formatter does: other handlers and tools read record.message.
        record.message = record.getMessage()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.message,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def start_logging(verbose: bool) -> None:
    """Log to stderr: WARNING and above, or everything with ``--verbose``."""
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format=TEXT_FORMAT, stream=sys.stderr)
    # One line per job is ours to log; the libraries' per-request chatter stays at WARNING.
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(level)


def apply_log_settings(settings: Settings) -> None:
    """The configured level and format on every handler of the root logger, and Python
    warnings routed through them."""
    root = logging.getLogger()
    root.setLevel(settings.log_level)
    for handler in root.handlers:
        handler.setLevel(settings.log_level)
        if settings.logging.format == "json":
            handler.setFormatter(JsonFormatter())
    logging.captureWarnings(True)


__all__ = ["JsonFormatter", "apply_log_settings", "start_logging"]
