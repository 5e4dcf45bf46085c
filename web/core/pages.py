"""The language switcher: ``GET /language?to=ja&next=/profile`` remembers the choice and goes back.

A plain link works without JavaScript and can be bookmarked. It is a GET that changes something (a cookie
and, for a signed-in person, ``users.locale``), which a form with a CSRF token would avoid; what a forged
link can do is switch someone's language, and one click on the switcher switches it back.
"""

from __future__ import annotations

from litestar import Controller, Request, Response, get
from litestar.params import FromQuery
from litestar.response import Redirect

from web.accounts import services as accounts
from web.core.errors import DomainError
from web.core.i18n import LANGUAGE_COOKIE, LANGUAGE_COOKIE_MAX_AGE, supported_locale
from web.core.messages import N_
from web.core.urls import safe_local_path
from web.settings import get_settings


class LanguageController(Controller):
    include_in_schema = False

    @get("/language", name="language")
    async def switch_language(
        self, request: Request, to: FromQuery[str | None] = None, next: FromQuery[str | None] = None
    ) -> Response:
        locale = supported_locale(to)
        if locale is None:
            raise DomainError(N_("This language is not available."), status=400)
        user = request.scope.get("user")
        if user is not None:
            await accounts.save_locale(user.user_id, locale)
        response = Redirect(path=safe_local_path(next) or "/", status_code=303)
        response.set_cookie(
            key=LANGUAGE_COOKIE, value=locale, max_age=LANGUAGE_COOKIE_MAX_AGE, path="/", httponly=True,
            samesite="lax", secure=get_settings().cookie_secure or request.url.scheme == "https",
        )
        return response
