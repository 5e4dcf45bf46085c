"""HTML pages of accounts: login, sign-up, logout, profile with pets, and the managers' staff page."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import TooManyRequestsException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from web.accounts import services
from web.accounts.auth import (
    ROLE_MANAGER,
    ROLE_OWNER,
    ROLE_RECEPTIONIST,
    SESSION_COOKIE,
    manager_only,
    owner_only,
    signed_in,
)
from web.accounts.validation import SPECIES
from web.core.errors import InvalidInput
from web.settings import get_settings

FormData = URLEncodedBody[dict[str, Any]]


def _safe_next(target: object) -> str | None:
    """Only a path on this site (never //host or a full URL)."""
    if isinstance(target, str) and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target[:500]
    return None


def _home_of(role: str) -> str:
    return {ROLE_OWNER: "/profile", ROLE_RECEPTIONIST: "/profile", ROLE_MANAGER: "/staff"}.get(role, "/")


def _signed_in_response(request: Request, token: str, target: str) -> Response:
    response = Redirect(path=target, status_code=303)
    response.set_cookie(
        key=SESSION_COOKIE, value=token, httponly=True, samesite="lax", path="/",
        secure=get_settings().cookie_secure or request.url.scheme == "https",
        max_age=get_settings().web_session_ttl_hours * 3600,
    )
    return response


class AccountPagesController(Controller):
    include_in_schema = False

    @get("/login", name="login")
    async def login_form(self, next: FromQuery[str | None] = None) -> Template:
        return Template("accounts/login.html", context={"next": _safe_next(next) or "", "values": {}, "error": None})

    @post("/login", name="login_submit")
    async def login(self, request: Request, data: FormData) -> Response:
        context = {"next": _safe_next(data.get("next")) or "", "values": {"email": data.get("email", "")}}
        try:
            user = await services.authenticate(data.get("email"), data.get("password"), request.client.host)
        except services.InvalidCredentials as exc:
            return Template("accounts/login.html", context={**context, "error": exc.detail}, status_code=401)
        except TooManyRequestsException as exc:
            return Template("accounts/login.html", context={**context, "error": exc.detail},
                            status_code=429, headers=exc.headers)
        token, _ = await services.create_session(user["user_id"], "web", request.headers.get("user-agent"))
        return _signed_in_response(request, token, _safe_next(data.get("next")) or _home_of(user["role"]))

    @get("/signup", name="signup")
    async def signup_form(self) -> Template:
        return Template("accounts/signup.html", context={"values": {}, "errors": {}})

    @post("/signup", name="signup_submit")
    async def signup(self, request: Request, data: FormData) -> Response:
        try:
            user = await services.register_owner(data, request.client.host)
        except TooManyRequestsException as exc:
            values = {key: data.get(key, "") for key in ("name", "email", "phone")}
            return Template("accounts/signup.html", context={"values": values, "errors": {}, "error": exc.detail},
                            status_code=429, headers=exc.headers)
        except InvalidInput as exc:
            values = {key: data.get(key, "") for key in ("name", "email", "phone")}
            return Template("accounts/signup.html", context={"values": values, "errors": exc.field_errors},
                            status_code=422)
        token, _ = await services.create_session(user["user_id"], "web", request.headers.get("user-agent"))
        return _signed_in_response(request, token, "/profile")

    @post("/logout", name="logout", guards=[signed_in])
    async def logout(self, request: Request) -> Response:
        await services.revoke_session(request.user.session_id)
        response = Redirect(path="/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @get("/profile", name="profile", guards=[signed_in])
    async def profile(self, request: Request, done: FromQuery[str | None] = None) -> Template:
        pets = await services.list_pets(request.user) if request.user.role == ROLE_OWNER else []
        return Template("accounts/profile.html", context={"pets": pets, "password_changed": done == "password"})

    @get("/profile/password", name="password_form", guards=[signed_in])
    async def password_form(self) -> Template:
        return Template("accounts/password.html", context={"errors": {}, "error": None})

    @post("/profile/password", name="password_change", guards=[signed_in])
    async def change_password(self, request: Request, data: FormData) -> Response:
        try:
            await services.change_password(request.user, data.get("current_password"), data.get("new_password"),
                                           request.client.host)
        except InvalidInput as exc:
            return Template("accounts/password.html", context={"errors": exc.field_errors, "error": None},
                            status_code=422)
        except TooManyRequestsException as exc:
            return Template("accounts/password.html", context={"errors": {}, "error": exc.detail},
                            status_code=429, headers=exc.headers)
        return Redirect(path="/profile?done=password", status_code=303)


class PetPagesController(Controller):
    path = "/pets"
    guards = [owner_only]
    include_in_schema = False

    @get("/new", name="pet_new")
    async def new_pet_form(self) -> Template:
        return Template("accounts/pet_form.html", context={"pet": None, "values": {}, "errors": {}, "species": SPECIES})

    @post("/", name="pet_create")
    async def create_pet(self, request: Request, data: FormData) -> Response:
        try:
            await services.add_pet(request.user, data)
        except InvalidInput as exc:
            return Template("accounts/pet_form.html", status_code=422, context={
                "pet": None, "values": data, "errors": exc.field_errors, "species": SPECIES})
        return Redirect(path="/profile", status_code=303)

    @get("/{pet_id:uuid}/edit", name="pet_edit")
    async def edit_pet_form(self, request: Request, pet_id: FromPath[UUID]) -> Template:
        pet = await services.get_pet(request.user, pet_id)
        return Template("accounts/pet_form.html", context={"pet": pet, "values": pet, "errors": {}, "species": SPECIES})

    @post("/{pet_id:uuid}", name="pet_update")
    async def update_pet(self, request: Request, pet_id: FromPath[UUID], data: FormData) -> Response:
        pet = await services.get_pet(request.user, pet_id)
        try:
            await services.update_pet(request.user, pet_id, data)
        except InvalidInput as exc:
            return Template("accounts/pet_form.html", status_code=422, context={
                "pet": pet, "values": data, "errors": exc.field_errors, "species": SPECIES})
        return Redirect(path="/profile", status_code=303)


class StaffPagesController(Controller):
    path = "/staff"
    guards = [manager_only]
    include_in_schema = False

    async def _page(self, request: Request, values: dict, errors: dict, status: int = 200) -> Template:
        return Template("accounts/staff.html", status_code=status, context={
            "receptionists": await services.list_receptionists(request.user),
            "clinics": await services.managed_clinics(request.user),
            "values": values, "errors": errors,
        })

    @get("/", name="staff")
    async def staff_page(self, request: Request) -> Template:
        return await self._page(request, {}, {})

    @post("/", name="staff_create")
    async def create_receptionist(self, request: Request, data: FormData) -> Response:
        try:
            await services.create_receptionist(request.user, data)
        except InvalidInput as exc:
            values = {key: data.get(key, "") for key in ("name", "email", "phone", "clinic_id")}
            return await self._page(request, values, exc.field_errors, status=422)
        return Redirect(path="/staff", status_code=303)

    @post("/{user_id:uuid}/deactivate", name="staff_deactivate")
    async def deactivate(self, request: Request, user_id: FromPath[UUID]) -> Response:
        await services.set_receptionist_active(request.user, user_id, active=False)
        return Redirect(path="/staff", status_code=303)

    @post("/{user_id:uuid}/activate", name="staff_activate")
    async def activate(self, request: Request, user_id: FromPath[UUID]) -> Response:
        await services.set_receptionist_active(request.user, user_id, active=True)
        return Redirect(path="/staff", status_code=303)
