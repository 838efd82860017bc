"""Log lines: one per event outcome, one per batch; JSON or text.

``JOBTASK_LOG_FORMAT=json`` makes every line of the worker, beat and the API
one JSON object: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
``message``, the line's own fields (``event_id``, ``job_task_id``, ``type``,
``outcome``, ``reason``; ``size``, ``seconds`` ...) and ``exception`` when
there is one. ``text`` (the default) keeps Celery's and uvicorn's formats,
with the fields written into the message.

uvicorn's access log writes each request's target; in either format the
value of every query parameter the API does not read is written
``[redacted]`` (``redact_access_log``), so a credential a client put in a URL
(``?access_token=``, which the API does not take) never reaches the log.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from urllib.parse import unquote_plus

from worker.contract.delivery import MESSAGE
from worker.observe.report import MessageOutcome

EVENTS_LOGGER = "jobtask.events"
BATCHES_LOGGER = "jobtask.batches"
# Attributes every LogRecord has; anything else on a record is a field of the line.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# The API's loggers, which uvicorn configures before it imports the app.
API_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
ACCESS_LOGGER = "uvicorn.access"
# The query parameters the API reads (the watch stream's): their values are logged, any other's not.
LOGGED_PARAMETERS = frozenset({"job_id", "status", "last_event_id"})
REDACTED = "[redacted]"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.processName,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


def use_format(logger: logging.Logger, log_format: str) -> None:
    """Give the handlers of ``logger`` the JSON formatter when ``log_format`` is json."""
    if log_format != "json":
        return
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())


def json_until_configured(log_format: str) -> None:
    """Before a process configures its logging: Python's warnings and early lines as JSON too.

    Warnings go through logging (``py.warnings``) instead of straight to stderr;
    root gets a JSON handler if it has none (Celery replaces it with its own,
    which ``use_format`` then turns to JSON).
    """
    if log_format != "json":
        return
    logging.captureWarnings(True)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def use_format_for_api(log_format: str) -> None:
    """The API's lines (uvicorn's and ours) as JSON; root gets a handler if it has none."""
    if log_format != "json":
        return
    json_until_configured(log_format)
    for name in API_LOGGERS:
        use_format(logging.getLogger(name), log_format)


def redacted_target(target: str) -> str:
    """A request's path and query, with ``[redacted]`` for the value of each parameter the API does not read."""
    path, question, query = target.partition("?")
    if not question:
        return target
    pairs = []
    for pair in query.split("&"):
        name, equals, _value = pair.partition("=")
        if unquote_plus(name) in LOGGED_PARAMETERS:
            pairs.append(pair)
        else:  # a bare value may be a credential too
            pairs.append(f"{name}={REDACTED}" if equals else REDACTED)
    return f"{path}?{'&'.join(pairs)}"


class RedactedQuery(logging.Filter):
    """On uvicorn's access log, whose arguments are (client, method, target, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], redacted_target(args[2]), *args[3:])
        return True


def redact_access_log() -> None:
    """Redact the query of every line uvicorn's access log writes in this process (once)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(known, RedactedQuery) for known in logger.filters):
        logger.addFilter(RedactedQuery())


def log_outcome(outcome: MessageOutcome) -> None:
    """One line per settled event: WARNING for what went to the dead letters, else INFO."""
    logger = logging.getLogger(EVENTS_LOGGER)
    level = logging.WARNING if outcome.dead_letter else logging.INFO
    if not logger.isEnabledFor(level):
        return
    reason = f" ({outcome.reason})" if outcome.reason else ""
    later = outcome.source if outcome.source != MESSAGE else None  # settled here, not a message of the batch
    source = f" [{later}]" if later else ""
    logger.log(level, "%s %s of %s: %s%s%s", outcome.type, outcome.event_id or outcome.message_id,
               outcome.job_task_id or "-", outcome.outcome, reason, source,
               extra={"event_id": outcome.event_id, "job_task_id": outcome.job_task_id,
                      "type": outcome.type, "outcome": outcome.outcome, "reason": outcome.reason,
                      "message_id": outcome.message_id, "source": later})


def log_batch(size: int, seconds: float, acked: int, requeued: int) -> None:
    """One line per settled batch."""
    logging.getLogger(BATCHES_LOGGER).info(
        "batch of %d settled in %.3f s: %d acknowledged, %d requeued", size, seconds, acked, requeued,
        extra={"size": size, "seconds": round(seconds, 6), "acknowledged": acked, "requeued": requeued})
