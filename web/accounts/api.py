"""JSON API of accounts for the mobile app: tokens, the signed-in person, pets."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from web.accounts import services
from web.accounts.auth import owner_only, signed_in
from web.accounts.validation import SPECIES

Email = Annotated[str, msgspec.Meta(max_length=254)]
Password = Annotated[str, msgspec.Meta(max_length=200)]
ShortText = Annotated[str, msgspec.Meta(max_length=120)]
Species = Literal[SPECIES]  # the same list the pages validate against


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password


class TokenResponse(msgspec.Struct):
    access_token: str
    token_type: str
    user_id: UUID
    role: str
    expires_at: datetime


class RegistrationRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: ShortText
    email: Email
    phone: Annotated[str, msgspec.Meta(max_length=30)]
    password: Password


class Me(msgspec.Struct):
    user_id: UUID
    email: str
    name: str
    role: str
    clinic_id: UUID | None


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    current_password: Password
    new_password: Password


class PetBody(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=80)]
    species: Species
    breed: Annotated[str, msgspec.Meta(max_length=80)] | None = None
    birth_date: date | None = None
    notes: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class PetOut(msgspec.Struct):
    pet_id: UUID
    name: str
    species: str
    breed: str | None
    birth_date: date | None
    notes: str | None


def _pet_out(row: dict) -> PetOut:
    return PetOut(**row)


class AuthApiController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/token", status_code=HTTP_200_OK)
    async def issue_token(self, request: Request, data: JSONBody[TokenRequest]) -> TokenResponse:
        """Exchange email and password for a bearer token (401 with one message for any wrong pair)."""
        user, token, expires_at = await services.issue_api_token(
            data.email, data.password, request.client.host, request.headers.get("user-agent"))
        return TokenResponse(access_token=token, token_type="bearer", user_id=user["user_id"], role=user["role"],
                             expires_at=expires_at)

    @delete("/token", guards=[signed_in], status_code=HTTP_204_NO_CONTENT)
    async def revoke_token(self, request: Request) -> None:
        """Revoke the token this request carries."""
        await services.revoke_session(request.user.session_id)

    @post("/register", status_code=201)
    async def register(self, request: Request, data: JSONBody[RegistrationRequest]) -> Me:
        """Create a pet owner's account (a few per minute from one address)."""
        user = await services.register_owner(msgspec.structs.asdict(data), request.client.host)
        return Me(user_id=user["user_id"], email=user["email"], name=user["name"], role=user["role"], clinic_id=None)


class MeApiController(Controller):
    path = "/api/v1/me"
    tags = ["accounts"]
    guards = [signed_in]

    @get("/")
    async def me(self, request: Request) -> Me:
        """The person this token belongs to."""
        user = request.user
        return Me(user_id=user.user_id, email=user.email, name=user.name, role=user.role, clinic_id=user.clinic_id)

    @post("/password", status_code=HTTP_204_NO_CONTENT)
    async def change_password(self, request: Request, data: JSONBody[PasswordChange]) -> None:
        """Change the password (the current one is required). Every other session and token ends; the
        token of this request keeps working."""
        await services.change_password(request.user, data.current_password, data.new_password, request.client.host)


class PetApiController(Controller):
    path = "/api/v1/pets"
    tags = ["pets"]
    guards = [owner_only]

    @get("/")
    async def list_pets(self, request: Request) -> list[PetOut]:
        """The signed-in owner's pets."""
        return [_pet_out(row) for row in await services.list_pets(request.user)]

    @post("/", status_code=201)
    async def add_pet(self, request: Request, data: JSONBody[PetBody]) -> PetOut:
        """Add a pet."""
        return _pet_out(await services.add_pet(request.user, msgspec.structs.asdict(data)))

    @get("/{pet_id:uuid}")
    async def get_pet(self, request: Request, pet_id: FromPath[UUID]) -> PetOut:
        """One of the owner's pets (404 for anyone else's)."""
        return _pet_out(await services.get_pet(request.user, pet_id))

    @put("/{pet_id:uuid}")
    async def update_pet(self, request: Request, pet_id: FromPath[UUID], data: JSONBody[PetBody]) -> PetOut:
        """Replace a pet's details."""
        return _pet_out(await services.update_pet(request.user, pet_id, msgspec.structs.asdict(data)))
