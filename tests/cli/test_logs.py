"""Log lines: ``[logging] format = "json"`` writes one JSON object per line, with the fields a
record was given (channel, job, counts), and routes Python warnings and APScheduler's own
log lines through the same handler."""

from __future__ import annotations

import io
import json
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sellable.config import load_settings
from sellable.logs import JsonFormatter, apply_log_settings


@pytest.fixture
def root_stream() -> Iterator[io.StringIO]:
    """A handler of our own on the root logger; the root's level and warnings restored."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    level = root.level
    # an earlier in-process 'sync' may have routed warnings already, to pytest's recorder
    logging.captureWarnings(False)
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)


def _settings(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "sellable.toml"
    path.write_text(text)
    return load_settings(path)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_logs_json_formatter_one_object_with_the_extra_fields() -> None:
    record = logging.LogRecord(
        "sellable.sync", logging.INFO, "engine.py", 1, "%s ok", ("orders",), None
    )
    record.channel, record.job, record.counts = "woo", "orders", {"orders": 2, "changed": 3}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry.pop("time").endswith("+00:00")
    assert entry == {
        "level": "INFO",
        "logger": "sellable.sync",
        "message": "orders ok",
        "channel": "woo",
        "job": "orders",
        "counts": {"orders": 2, "changed": 3},
    }


def test_logs_json_formatter_carries_the_exception() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = logging.LogRecord(
            "sellable", logging.ERROR, "x.py", 1, "failed", None, sys.exc_info()
        )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed"
    assert entry["exception"].startswith("Traceback") and "ValueError: bad" in entry["exception"]


def test_logs_json_format_from_the_configuration(tmp_path: Path, root_stream: io.StringIO) -> None:
    apply_log_settings(_settings(tmp_path, 'log_level = "info"\n[logging]\nformat = "json"\n'))
    logging.getLogger("sellable.sync").info(
        "channel=woo job=push ok", extra={"channel": "woo", "job": "push", "counts": {"pushed": 4}}
    )
    logging.getLogger("sellable.sync").debug("below the level")
    # APScheduler logs through its own loggers, which propagate to the same handler
    logging.getLogger("apscheduler.executors.default").warning("Run time of job was missed")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library's warning", DeprecationWarning, stacklevel=1)
    entries = _lines(root_stream)
    assert [(e["logger"], e["level"]) for e in entries] == [
        ("sellable.sync", "INFO"),
        ("apscheduler.executors.default", "WARNING"),
        ("py.warnings", "WARNING"),
    ]
    assert (entries[0]["channel"], entries[0]["job"], entries[0]["counts"]) == (
        "woo",
        "push",
        {"pushed": 4},
    )
    assert "DeprecationWarning: a library's warning" in entries[2]["message"]


def test_logs_text_format_stays_text(tmp_path: Path, root_stream: io.StringIO) -> None:
    apply_log_settings(_settings(tmp_path, 'log_level = "WARNING"\n'))
    logging.getLogger("sellable").warning("plain")
    assert root_stream.getvalue() == "plain\n"


def test_logs_json_formatter_sets_the_record_message_as_logging_formatter_does() -> None:
    record = logging.LogRecord(
        "sellable.sync", logging.INFO, __file__, 1, "job=%s ok", ("push",), None
    )

    line = JsonFormatter().format(record)

    assert record.message == "job=push ok"  # other handlers (pytest's, a syslog one) read it
    assert json.loads(line)["message"] == "job=push ok"
