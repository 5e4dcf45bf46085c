"""How the app logs (structlog): one line per event, tracebacks as plain text.

Never the local variables of a traceback: structlog's default console renderer shows them (through rich,
when it is installed), and a failing request's locals hold what the client sent, signatures and keys
included. ``format_exc_info`` turns an exception into the plain traceback text before rendering.
"""

from __future__ import annotations

import logging

import structlog

_configured = False


def configure_logging() -> None:
    """Set structlog up once per process (the app and the CLI call it; later calls change nothing)."""
    global _configured
    if _configured:
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )
    _configured = True
