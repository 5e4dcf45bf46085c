"""Errors people understand: domain errors raised by services, and how every error is answered.

The API answers JSON problem details (RFC 9457: ``{"status", "title", "detail", "errors"?}``); pages answer
an HTML error page (or a redirect to the login page when someone must sign in first). Nothing a client
sends may produce a 500: constraint violations that slip past a service become 409/422, and only a real
bug is answered with 500 (and logged).

Messages are ``N_("English")`` (``web.core.messages``): the API answers them in English, as they are; pages show
them in the reader's language (``error.html`` passes them through the ``translate`` filter).
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import quote

import asyncpg
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.response import Redirect, Template

from web.core import metrics
from web.core.messages import N_

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


@dataclass
class DomainError(Exception):
    """A rule of the domain said no. ``status`` is the HTTP status it maps to."""

    detail: str
    status: int = 400
    title: str = ""
    # Field name -> message, for forms and API bodies.
    field_errors: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)
        self.title = self.title or HTTPStatus(self.status).phrase


class NotFound(DomainError):
    """Missing, or not yours (the same answer, so that ids cannot be probed)."""

    def __init__(self, detail: str = N_("Not found.")) -> None:
        super().__init__(detail=detail, status=404)


class Conflict(DomainError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, status=409)


class Gone(DomainError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, status=410)


class InvalidInput(DomainError):
    def __init__(self, field_errors: dict[str, str], detail: str = N_("Some fields need attention.")) -> None:
        super().__init__(detail=detail, status=422, title=N_("Invalid input"), field_errors=field_errors)


def is_api_request(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def problem(status: int, detail: str, title: str = "", errors: list[dict] | None = None, headers=None) -> Response:
    # str(): the English text of a translatable message (the API is English).
    body: dict = {"status": status, "title": str(title or HTTPStatus(status).phrase), "detail": str(detail)}
    if errors:
        body["errors"] = [{key: str(value) for key, value in error.items()} for error in errors]
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# Titles of error pages (the API keeps HTTP's own reason phrases).
PAGE_TITLES = {
    400: N_("This request did not work"),
    401: N_("Please log in"),
    403: N_("Not available"),
    404: N_("Not found"),
    405: N_("Not available"),
    409: N_("Something changed in the meantime"),
    410: N_("No longer available"),
    413: N_("Too much data"),
    422: N_("Please check what you entered"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong"),
    503: N_("Temporarily unavailable"),
}
# What an error page says when all the error has is HTTP's reason phrase (e.g. Litestar's own 404).
PAGE_DETAILS = {
    404: N_("This page does not exist, or it is not available for your account."),
    405: N_("This page cannot be opened this way."),
}


def _error_page(request: Request, status: int, title: str, detail: str, headers=None) -> Response:
    phrase = HTTPStatus(status).phrase
    if not title or title == phrase:
        title = PAGE_TITLES.get(status, phrase)
    if not detail or detail == phrase:
        detail = PAGE_DETAILS.get(status, detail or phrase)
    return Template(
        "error.html",
        context={"status": status, "title": title, "detail": detail},
        status_code=status,
        headers=headers,
        media_type=MediaType.HTML,
    )


def _answer(request: Request, status: int, detail: str, title: str = "", errors=None, headers=None) -> Response:
    if is_api_request(request):
        return problem(status, detail, title, errors, headers)
    return _error_page(request, status, title, detail, headers)


def handle_domain_error(request: Request, exc: DomainError) -> Response:
    errors = [{"field": name, "message": message} for name, message in exc.field_errors.items()]
    return _answer(request, exc.status, exc.detail, exc.title, errors)


def handle_validation_error(request: Request, exc: ValidationException) -> Response:
    errors = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            errors.append({"field": item.get("key") or item.get("source") or "body", "message": item.get("message", "")})
    if not is_api_request(request):
        # A page's reader gets no field paths of a JSON body; the parts of a bad form are in its fields.
        return _error_page(request, 400, N_("Invalid request"), N_("The request is not valid."))
    detail = "The request is not valid: " + "; ".join(
        f"{error['field']}: {error['message']}" for error in errors
    ) if errors else (exc.detail or "The request is not valid.")
    return _answer(request, 422, detail, "Invalid request", errors)


def handle_http_exception(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, NotAuthorizedException) and not is_api_request(request):
        target = "/login?next=" + quote(request.url.path, safe="/")
        if request.headers.get("hx-request"):
            return Response(content="", status_code=200, headers={"HX-Redirect": target})
        return Redirect(path=target, status_code=303)
    headers = dict(exc.headers or {})
    if isinstance(exc, NotAuthorizedException) and is_api_request(request):
        headers.setdefault("WWW-Authenticate", 'Bearer realm="vetbook"')
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    if status == 403 and "CSRF" in detail:
        detail = N_("Your form expired or came from another site. Reload the page and try again.")
    return _answer(request, status, detail, headers=headers or None)


# The database went away under the request: it is shutting down or restarting (57P01, 57P03), it is no
# longer the primary (25006: a failover made it a standby), the connection was lost (08xxx, or no PostgreSQL
# error at all), or no host of a multi-host URL takes writes yet (a failover under way). The transaction
# did not commit, so nothing was written. web/core/failover.py runs the request again for a while; when that
# runs out, a 503 the client may retry, never a 500.
DATABASE_AWAY_ERRORS = (asyncpg.AdminShutdownError, asyncpg.CannotConnectNowError,
                        asyncpg.ReadOnlySQLTransactionError, asyncpg.PostgresConnectionError,
                        asyncpg.exceptions.TargetServerAttributeNotMatched, ConnectionError)
DATABASE_AWAY_RETRY_AFTER = "2"


def is_database_away(exc: BaseException) -> bool:
    return isinstance(exc, DATABASE_AWAY_ERRORS) or (
        isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc))


def handle_database_away(request: Request, exc: Exception) -> Response:
    from web.core import failover

    metrics.count_database_error(exc)
    log.warning("database unavailable", error=type(exc).__name__, path=request.url.path)
    failover.mark_database_away(request.scope)
    return _answer(request, 503, N_("The service is switching database servers. Please try again in a moment."),
                   headers={"Retry-After": DATABASE_AWAY_RETRY_AFTER})


def handle_interface_error(request: Request, exc: asyncpg.InterfaceError) -> Response:
    """A statement on a connection asyncpg already knows is closed (it died under an earlier statement of
    the request): the database went away. Any other interface error is our bug."""
    if is_database_away(exc):
        return handle_database_away(request, exc)
    return handle_internal_error(request, exc)


def handle_database_error(request: Request, exc: asyncpg.PostgresError) -> Response:
    """A safety net: services translate the rules they know; a constraint that still fires is the client's
    input breaking a rule, not a crash."""
    if isinstance(exc, DATABASE_AWAY_ERRORS):
        return handle_database_away(request, exc)
    metrics.count_database_error(exc)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        # The constraint's name is for the log: on a partition it reads like slots_202612_..._key.
        log.warning("constraint violation reached the handler", constraint=getattr(exc, "constraint_name", None),
                    path=request.url.path)
        return _answer(request, 409, N_("The request conflicts with the current data. Reload and try again."))
    if isinstance(exc, asyncpg.DataError):
        return _answer(request, 422, N_("A value in the request is out of range or malformed."))
    if isinstance(exc, asyncpg.TransactionRollbackError | asyncpg.LockNotAvailableError):
        # Two people changed the same rows at once and PostgreSQL rolled this one back (a deadlock, a
        # serialization failure or a lock timeout): nothing was written, and trying again will work. The
        # request is first run again a few times (web/core/failover.py).
        from web.core import failover

        log.warning("transaction rolled back by a concurrent change", error=type(exc).__name__,
                    path=request.url.path)
        failover.mark_rolled_back(request.scope)
        return _answer(request, 409, N_("Someone else was changing this at the same moment. Please try again."),
                       headers={"Retry-After": "1"})
    return handle_internal_error(request, exc)


def handle_invalid_number(request: Request, exc: decimal.InvalidOperation) -> Response:
    """A not-a-number or infinity that reached arithmetic (Decimal accepts 'NaN', 'sNaN', 'Infinity' as
    text): services refuse the ones they know of; this net answers any other one as the client's error."""
    log.warning("invalid number reached the handler", path=request.url.path)
    return _answer(request, 422, N_("A number in the request is not valid."))


def handle_internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", path=request.url.path, method=request.method, exc_info=exc)
    return _answer(request, 500, N_("Something went wrong on our side. Please try again."))


def handle_recursion_error(request: Request, exc: RecursionError) -> Response:
    """msgspec refuses JSON nested deeper than the interpreter's recursion limit with a RecursionError ("...
    while deserializing an object"), not a DecodeError: that is the client's body, answered like other malformed
    JSON. Any other recursion is our bug."""
    if "while deserializing" in str(exc):
        return _answer(request, 400, N_("The request body is nested too deeply."))
    return handle_internal_error(request, exc)


EXCEPTION_HANDLERS = {
    DomainError: handle_domain_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_exception,
    asyncpg.PostgresError: handle_database_error,
    # A lost connection is no PostgresError: asyncpg's own, or the socket's (refused, reset).
    asyncpg.ConnectionDoesNotExistError: handle_database_away,
    asyncpg.exceptions.TargetServerAttributeNotMatched: handle_database_away,
    asyncpg.InterfaceError: handle_interface_error,
    ConnectionError: handle_database_away,
    RecursionError: handle_recursion_error,
    decimal.InvalidOperation: handle_invalid_number,
    Exception: handle_internal_error,
}
