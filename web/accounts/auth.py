"""Who is asking: the authentication middleware, the signed-in user, and the guards of routes.

Pages authenticate by the session cookie only; the JSON API by ``Authorization: Bearer`` only. Keeping the
two apart is what lets the API skip CSRF checks: a cross-site form can carry a cookie, never a bearer token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from http.cookies import SimpleCookie
from uuid import UUID

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from web.accounts import statements as q
from web.core import sql
from web.core.messages import N_, Message

SESSION_COOKIE = "vb_session"

ROLE_OWNER = "owner"
ROLE_RECEPTIONIST = "receptionist"
ROLE_MANAGER = "manager"
ROLES = (ROLE_OWNER, ROLE_RECEPTIONIST, ROLE_MANAGER)
# What people read for each role (pages translate them with the `translate` filter).
ROLE_NAMES = {
    ROLE_OWNER: N_("Pet owner"),
    ROLE_RECEPTIONIST: N_("Receptionist"),
    ROLE_MANAGER: N_("Clinic manager"),
}


def role_name(role: str) -> Message | str:
    return ROLE_NAMES.get(role, role)


@dataclass(frozen=True)
class CurrentUser:
    user_id: UUID
    email: str
    name: str
    role: str
    # A receptionist's clinic, a manager's clinic (None: a manager of every clinic), None for owners.
    clinic_id: UUID | None
    locale: str | None
    # The session or token the request came with (None when acting outside a request, e.g. the CLI).
    session_id: UUID | None = None

    @property
    def is_owner(self) -> bool:
        return self.role == ROLE_OWNER

    @property
    def is_staff(self) -> bool:
        return self.role in (ROLE_RECEPTIONIST, ROLE_MANAGER)

    @property
    def is_manager(self) -> bool:
        return self.role == ROLE_MANAGER

    def manages_clinic(self, clinic_id: UUID) -> bool:
        return self.role == ROLE_MANAGER and (self.clinic_id is None or self.clinic_id == clinic_id)

    def works_at(self, clinic_id: UUID) -> bool:
        """A receptionist of this clinic, or a manager whose scope covers it."""
        if self.role == ROLE_RECEPTIONIST:
            return self.clinic_id == clinic_id
        return self.manages_clinic(clinic_id)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()




async def resolve_token(token: str, kind: str) -> CurrentUser | None:
    if not token or len(token) > 200:
        return None
    row = await sql.fetchrow(q.RESOLVE, token_hash(token), kind)
    if row is None:
        return None
    return CurrentUser(
        user_id=row["user_id"], email=row["email"], name=row["name"], role=row["role"],
        clinic_id=row["clinic_id"], locale=row["locale"], session_id=row["session_id"],
    )


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


def _credentials(scope: Scope) -> tuple[str, str]:
    """(kind, secret) presented by the request: a bearer token for the API, the session cookie for pages."""
    path: str = scope.get("path", "")
    if path.startswith("/api/"):
        authorization = _header(scope, b"authorization")
        scheme, _, token = authorization.partition(" ")
        return ("api", token.strip()) if scheme.lower() == "bearer" else ("api", "")
    cookie_header = _header(scope, b"cookie")
    if not cookie_header:
        return "web", ""
    cookies = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except Exception:  # a malformed Cookie header is treated as no cookie, never as an error
        return "web", ""
    morsel = cookies.get(SESSION_COOKIE)
    return "web", morsel.value if morsel else ""


def authentication_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("path", "").startswith("/static/"):
            kind, secret = _credentials(scope)
            scope["user"] = await resolve_token(secret, kind) if secret else None
        else:
            scope["user"] = None
        await app(scope, receive, send)

    return middleware


# ------------------------------------------------------------------ guards


def signed_in(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if connection.user is None:
        raise NotAuthorizedException(detail=N_("Please log in first."))


def role_guard(*roles: str):
    """A guard letting in signed-in users with one of ``roles``."""

    def guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
        signed_in(connection, handler)
        if connection.user.role not in roles:
            raise PermissionDeniedException(detail=N_("This page is not available for your account."))

    guard.__name__ = f"role_guard_{'_'.join(roles)}"
    return guard


owner_only = role_guard(ROLE_OWNER)
manager_only = role_guard(ROLE_MANAGER)
staff_only = role_guard(ROLE_RECEPTIONIST, ROLE_MANAGER)
