"""Which language each page request gets (``scope["locale"]``), worked out once per request.

The rules are in ``web.core.i18n.negotiate_locale``; this module reads them from the ASGI scope (the
signed-in person, the switcher's cookie, ``Accept-Language``) and says which language a page is in.
"""

from __future__ import annotations

from contextvars import ContextVar
from http.cookies import CookieError, SimpleCookie

from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.types import Message as ASGIMessage

from web.core.i18n import DEFAULT_LOCALE, LANGUAGE_COOKIE, negotiate_locale

_current_locale: ContextVar[str | None] = ContextVar("vetbook_locale", default=None)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


def _cookie(scope: Scope, name: str) -> str | None:
    header = _header(scope, b"cookie")
    if not header:
        return None
    cookies = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:  # a malformed Cookie header counts as no cookie
        return None
    morsel = cookies.get(name)
    return morsel.value if morsel else None


def locale_of(scope: Scope) -> str:
    """The language of this request, worked out once and kept in the scope (``scope["locale"]``).

    The middleware sets it for every page; this works too where no middleware ran (Litestar answers an
    unknown path before any middleware), so that its error page still comes in the right language."""
    locale = scope.get("locale")
    if locale is None:
        locale = negotiate_locale(
            _header(scope, b"accept-language"), _cookie(scope, LANGUAGE_COOKIE), scope.get("user")
        )
        scope["locale"] = locale
    return locale


def current_locale() -> str:
    """The language of the request being handled (Indonesian outside a request)."""
    return _current_locale.get() or DEFAULT_LOCALE


def _is_page(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    return not (path.startswith("/api/") or path.startswith("/static/"))


def locale_middleware(app: ASGIApp) -> ASGIApp:
    """Pick the language of each page request (after authentication: a signed-in person's choice counts)
    and say which one it is: ``Content-Language``, and ``Vary: Accept-Language`` for caches. The JSON API
    and static files are left alone: they are the same in every language."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_page(scope):
            await app(scope, receive, send)
            return
        locale = locale_of(scope)

        async def send_with_language(message: ASGIMessage) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"content-language", locale.encode()),
                    (b"vary", b"Accept-Language, Cookie"),
                ]
            await send(message)

        token = _current_locale.set(locale)
        try:
            await app(scope, receive, send_with_language)
        finally:
            _current_locale.reset(token)

    return middleware
