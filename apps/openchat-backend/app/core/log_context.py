"""Logs name the request they were written for: every log record carries `request_id` (set by
RequestIdMiddleware for the request being handled, "-" outside requests), and the app's own
loggers print it. Log calls never pass passwords, tokens or message content (see test_logs)."""

import logging
from contextvars import ContextVar

# Copied into the threads and tasks a request starts, so their log lines name it too.
request_id: ContextVar[str] = ContextVar("request_id", default="-")

LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
APP_LOGGERS = ("app", "openchat")

_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = request_id.get()
    return record


class _ReplacedByOurAccessLog(logging.Filter):
    """uvicorn's access line has no request id and prints query strings (search terms are
    message content); RequestIdMiddleware writes one per request instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


def configure_logging() -> None:
    """Idempotent. Leaves the process's logging alone where it has been configured (a root handler)."""
    logging.setLogRecordFactory(_record_with_request_id)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _ReplacedByOurAccessLog) for f in access.filters):
        access.addFilter(_ReplacedByOurAccessLog())
    if logging.getLogger().handlers:
        return
    for name in APP_LOGGERS:
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(LOG_FORMAT))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
