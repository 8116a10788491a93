"""The Go library's log records, re-emitted on Python's :mod:`logging`.

Go never calls back into Python, so a call asks for its records with a
``log_level`` in its request, and they come back with its progress reads
and in its envelope (bounded in Go; the oldest go first, with a warning
saying how many). Here they are emitted on ``oci_client.<area>`` loggers
(``http``, ``transfer``, ``oci``, ``cache``, ``pull``) with their Go
timestamp, level and attributes. The level asked for is the lowest that
any ``oci_client`` logger takes, decided once per call: below it Go
formats nothing. Secrets are masked in Go before a record leaves.
"""

from __future__ import annotations

import json
import logging
from typing import Any

LOGGER = "oci_client"

# Go asks for its records by these names; Python's level for each.
_REQUESTABLE = (
    (logging.DEBUG, "debug"),
    (logging.INFO, "info"),
    (logging.WARNING, "warning"),
    (logging.ERROR, "error"),
)
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
# Attributes a LogRecord has already: a Go attribute of the same name stays
# in the message and in ``record.attrs`` only.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "attrs"}


def requested_level() -> str | None:
    """The level to ask Go for: the lowest that ``oci_client`` or any of its
    child loggers takes; None when not even ERROR would be handled."""
    loggers = [logging.getLogger(LOGGER)]
    prefix = LOGGER + "."
    for name, obj in list(logging.root.manager.loggerDict.items()):
        if name.startswith(prefix) and isinstance(obj, logging.Logger):
            loggers.append(obj)
    for levelno, name in _REQUESTABLE:
        if any(lg.isEnabledFor(levelno) for lg in loggers):
            return name
    return None


def polls(level: str | None) -> bool:
    """Whether records at ``level`` are worth reading while a call runs: Go
    logs what happens during a transfer at INFO and DEBUG."""
    return level in ("debug", "info")


def emit(entries: Any) -> None:
    """Emit Go's records (a list of ``{time, level, logger, msg, attrs}``)."""
    if not isinstance(entries, list):
        return
    for e in entries:
        if isinstance(e, dict):
            _emit_one(e)


def _emit_one(e: dict[str, Any]) -> None:
    area = e.get("logger") or ""
    logger = logging.getLogger(f"{LOGGER}.{area}" if area else LOGGER)
    levelno = _LEVELS.get(str(e.get("level")), logging.INFO)
    if not logger.isEnabledFor(levelno):
        return
    raw = e.get("attrs")
    attrs: dict[str, Any] = raw if isinstance(raw, dict) else {}
    msg = str(e.get("msg", "")) + "".join(f" {k}={_value(v)}" for k, v in attrs.items())
    extra = {k: v for k, v in attrs.items() if k not in _RESERVED}
    extra["attrs"] = attrs
    # No args: the text is final, and a % in a URL must not be formatted.
    record = logger.makeRecord(logger.name, levelno, "(liboci)", 0, msg, (), None, extra=extra)
    created = e.get("time")
    if isinstance(created, (int, float)) and created > 0:
        # When Go logged it, not when the record was read back.
        record.created = float(created)
        record.msecs = (record.created - int(record.created)) * 1000
        start = getattr(logging, "_startTime", record.created)
        record.relativeCreated = (record.created - start) * 1000
    logger.handle(record)


def _value(v: Any) -> str:
    """A value as slog's text handler writes it: quoted only when it must be."""
    if isinstance(v, bool):
        return "true" if v else "false"
    s = str(v)
    if s == "" or any(c.isspace() or c in '"=' for c in s):
        return json.dumps(s)
    return s
