"""How the app logs (structlog, configured once per process): one line per event, JSON lines when
``VETBOOK_LOG_FORMAT=json`` (for a log shipper), readable text otherwise. uvicorn's own lines (startup,
access log, errors) go through the same processors and renderer.

Every line of a request carries its ``request_id``: the client's ``X-Request-ID`` when it is well-formed
(8–64 of ``A-Za-z0-9._:-``), else one made here; the response echoes it, and the request's transactions
name it in ``application_name`` (``vetbook/<id>``, visible in pg_stat_activity and the server's log while
they run; not in SQL comments, which would split pg_stat_statements' entries).

What never reaches a line:

- the local variables of a traceback: structlog's default console renderer shows them (through rich, when
  it is installed), and a failing request's locals hold what the client sent. ``format_exc_info`` turns an
  exception into plain traceback text first;
- values of keys that name secrets (password, token, secret, authorization, cookie, signature…): replaced
  by ``[redacted]`` whatever logs them.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from contextvars import ContextVar

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from web.core.client_keys import CLIENT_KEY

REQUEST_ID_HEADER = b"x-request-id"
_SECRET_KEY_PARTS = ("password", "passwd", "token", "secret", "authorization", "cookie", "signature",
                     "api_key", "server_key", "credential")
REDACTED = "[redacted]"

current_request_id: ContextVar[str | None] = ContextVar("vetbook_request_id", default=None)


def _redact_secrets(_logger, _method: str, event: dict) -> dict:
    for key in list(event):
        if any(part in key.lower() for part in _SECRET_KEY_PARTS):
            event[key] = REDACTED
    return event


def _renderer():
    if os.environ.get("VETBOOK_LOG_FORMAT", "").strip().lower() == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)


class _StandardErrorHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is emitted (a test's capture, a redirected stream),
    not to the one that was current when logging was set up."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


_handler: logging.Handler | None = None


def configure_logging() -> None:
    """Set structlog and the standard library's logging up (the app and the CLI call it). structlog is set
    once per process; the root logger's handler is put back if something replaced it since (a library's own
    logging setup)."""
    global _handler
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    root = logging.getLogger()
    if _handler is not None and _handler in root.handlers:
        return
    if _handler is None:
        structlog.configure(
            processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            cache_logger_on_first_use=True,
        )
        # Standard error, like uvicorn's own: standard output stays for what a command prints (JSON reports).
        _handler = _StandardErrorHandler()
        _handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            # Lines from the standard library (uvicorn, httpx, asyncio) get the same treatment as ours.
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _renderer()],
        ))
    root.handlers = [_handler]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers = []
        named.propagate = True


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1").strip()
            if CLIENT_KEY.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: the request's id, bound to every log line of the request and echoed in the
    response's ``X-Request-ID``."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = current_request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (REQUEST_ID_HEADER, request_id.encode("latin-1"))]}
            await send(message)

        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                await app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)

    return middleware


def application_name() -> str:
    """``application_name`` for the current transaction: the app, and the request's id when there is one
    (PostgreSQL keeps 63 bytes of it)."""
    request_id = current_request_id.get()
    return f"vetbook/{request_id}"[:63] if request_id else "vetbook"
