"""Domain services of accounts: registration, login, sessions and tokens, staff accounts, pets.

Scope rules live here: an owner reaches only their own pets; a manager manages only receptionists of the
clinics they manage. Someone else's object is "not found", never "forbidden", so ids cannot be probed.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import asyncpg
import structlog
from piccolo.engine import engine_finder

from web.accounts import login_throttle, validation
from web.accounts.auth import ROLE_MANAGER, ROLE_OWNER, ROLE_RECEPTIONIST, CurrentUser, token_hash
from web.accounts.passwords import hash_password_async, verify_password_async
from web.accounts.tables import AuthSession, Pet, User
from web.clinics.tables import Clinic
from web.core import rate_limit, sql
from web.core.errors import DomainError, InvalidInput, NotFound
from web.core.messages import N_
from web.settings import get_settings

log = structlog.get_logger(__name__)

WRONG_CREDENTIALS = N_("Email or password is wrong.")
SIGNUP_LIMITED = N_("Too many new accounts from your network. Wait a minute and try again.")
TOKEN_LIMITED = N_("Too many login attempts from your network. Wait a minute and try again.")


# An owner created at the desk has no password: they never chose one. users.password_hash is NOT NULL,
# so it holds a marker that is not an argon2 hash: verify_password answers False for it (InvalidHashError),
# so nobody can log in with it, whatever they type.
NO_PASSWORD = "!no-password:created-at-the-desk"
# users.email is NOT NULL and unique; an owner without an email (common at a front desk) gets an address
# of the reserved .invalid domain (RFC 2606): it can never receive mail nor collide with a real one.
NO_EMAIL_DOMAIN = "no-email.invalid"


class InvalidCredentials(DomainError):
    def __init__(self) -> None:
        super().__init__(detail=WRONG_CREDENTIALS, status=401, title="Unauthorized")


def _now() -> datetime:
    return datetime.now(UTC)


def _normalised_email(email: object) -> str:
    return email.strip().lower()[:254] if isinstance(email, str) else ""


# ------------------------------------------------------------------ people


async def register_owner(data: dict, client_address: str) -> dict:
    """Create a pet owner's account from the sign-up form or API body (a few per minute per address)."""
    await rate_limit.hit(f"signup:ip:{client_address}", get_settings().signup_ip_rate_limit, SIGNUP_LIMITED)
    clean = validation.registration(data)
    try:
        rows = await User.insert(
            User(
                email=clean["email"], name=clean["name"], phone=clean["phone"], role=ROLE_OWNER,
                password_hash=await hash_password_async(clean["password"]),
            )
        ).returning(User.user_id, User.email, User.name, User.role)
    except asyncpg.UniqueViolationError as exc:
        raise InvalidInput({"email": N_("An account with this email already exists. Log in instead.")}) from exc
    return rows[0]


async def email_is_taken(email: str) -> bool:
    """Whether an account uses ``email`` already (compared without case, as the unique index does)."""
    return await sql.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1))", email)


async def create_owner_at_desk(name: str, phone: str, email: str | None) -> UUID:
    """An owner the desk registers on the spot (already validated by the desk's form): no password (they
    can set one later by resetting it), and without an email an address nobody can receive mail at. Runs
    in the caller's transaction (the desk's booking), so a refused booking leaves no owner behind."""
    rows = await User.insert(User(
        email=email or f"desk-{secrets.token_hex(8)}@{NO_EMAIL_DOMAIN}", name=name, phone=phone, role=ROLE_OWNER,
        password_hash=NO_PASSWORD,
    )).returning(User.user_id)
    return rows[0]["user_id"]


async def add_pet_at_desk(owner_id: UUID, name: str, species: str) -> UUID:
    """A pet the desk adds for an owner (name and species only, already validated), in the caller's
    transaction."""
    rows = await Pet.insert(Pet(owner_id=owner_id, name=name, species=species)).returning(Pet.pet_id)
    return rows[0]["pet_id"]


async def save_locale(user_id: UUID, locale: str) -> None:
    """The language this person picked with the switcher: their pages come in it on every device."""
    await User.update({User.locale: locale}).where(User.user_id == user_id)


async def authenticate(email: object, password: object, client_address: str) -> dict:
    """The active user with this email and password; InvalidCredentials otherwise, with the same answer
    (and the same cost: one argon2 verification) for an unknown email, a wrong password, an inactive
    account or one that has no password yet. The login throttle (web/accounts/login_throttle.py) refuses
    the attempt first when this account and address, or this address, failed too often."""
    normalised = _normalised_email(email)
    await login_throttle.check(normalised, client_address)
    typed = password if isinstance(password, str) and len(password) <= validation.MAX_PASSWORD else ""
    user = None
    if normalised:
        user = await User.select(
            User.user_id, User.email, User.name, User.role, User.clinic_id, User.password_hash
        ).where((User.email == normalised) & (User.is_active.eq(True))).first()
    matched = await verify_password_async(user["password_hash"] if user else None, typed)
    if not (matched and typed and user is not None):
        await login_throttle.record_failure(normalised, client_address)
        # Who tried is for the throttle's table; the line says only that and from where.
        log.info("login refused", client_address=client_address, known_account=user is not None)
        raise InvalidCredentials()
    await login_throttle.record_success(normalised, client_address)
    await User.update({User.last_login_at: _now()}).where(User.user_id == user["user_id"])
    user.pop("password_hash")
    return user


async def issue_api_token(email: object, password: object, client_address: str,
                          user_agent: str | None = None) -> tuple[dict, str, datetime]:
    """The API's login: ``authenticate`` plus a per-address ceiling on token requests (every attempt
    counts: each costs an argon2 verification). Returns the user, the token and its expiry."""
    await rate_limit.hit(f"token:ip:{client_address}", get_settings().token_ip_rate_limit, TOKEN_LIMITED)
    user = await authenticate(email, password, client_address)
    token, expires_at = await create_session(user["user_id"], "api", user_agent)
    return user, token, expires_at


async def change_password(user: CurrentUser, current_password: object, new_password: object,
                          client_address: str) -> None:
    """Replace the signed-in person's password. The current one is checked like a login (it counts as a
    failed login when wrong); the new one must pass the password rules. Every other session and token of
    the person ends at once; the one this request came with stays signed in."""
    errors: dict[str, str] = {}
    new = validation.clean_password(new_password, errors, about_person=(user.name, user.email), field="new_password")
    if isinstance(current_password, str) and new == current_password and not errors:
        errors["new_password"] = N_("Choose a password other than your current one.")
    await login_throttle.check(user.email, client_address)
    row = await User.select(User.password_hash).where(User.user_id == user.user_id).first()
    typed = current_password if isinstance(current_password, str) and len(current_password) <= validation.MAX_PASSWORD else ""
    if not (await verify_password_async(row["password_hash"] if row else None, typed) and typed):
        await login_throttle.record_failure(user.email, client_address)
        errors = {"current_password": N_("This is not your current password."), **errors}
    if errors:
        raise InvalidInput(errors)
    new_hash = await hash_password_async(new)
    async with engine_finder().transaction():
        await User.update({User.password_hash: new_hash}).where(User.user_id == user.user_id)
        await _revoke_sessions(user.user_id, keep=user.session_id)


async def _revoke_sessions(user_id: UUID, keep: UUID | None = None) -> None:
    """End every live session and token of the user, except ``keep`` (the one changing the password)."""
    live = (AuthSession.user_id == user_id) & AuthSession.revoked_at.is_null()
    if keep is not None:
        live &= AuthSession.session_id != keep
    await AuthSession.update({AuthSession.revoked_at: _now()}).where(live)


async def create_session(user_id: UUID, kind: str, user_agent: str | None = None) -> tuple[str, datetime]:
    """Start a web session (``kind='web'``) or issue an API token (``'api'``). Returns the secret, which
    is shown to the client once and stored only as its hash, and its expiry."""
    settings = get_settings()
    hours = settings.web_session_ttl_hours if kind == "web" else settings.api_token_ttl_hours
    token = secrets.token_urlsafe(32)
    expires_at = _now() + timedelta(hours=hours)
    await AuthSession.insert(
        AuthSession(
            token_hash=token_hash(token), user_id=user_id, kind=kind, expires_at=expires_at,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    return token, expires_at


async def load_current_user(user_id: UUID) -> CurrentUser:
    """The person with this id, as the services see a signed-in user (for jobs, the CLI and tests)."""
    row = await User.select(
        User.user_id, User.email, User.name, User.role, User.clinic_id, User.locale
    ).where(User.user_id == user_id).first()
    if row is None:
        raise NotFound(N_("No such user."))
    return CurrentUser(**row)


async def revoke_session(session_id: UUID) -> None:
    """End a session or token for real: it stops working on every app process at once."""
    await AuthSession.update({AuthSession.revoked_at: _now()}).where(
        (AuthSession.session_id == session_id) & AuthSession.revoked_at.is_null()
    )


async def create_user(
    email: str, password: str, role: str, name: str, clinic_id: UUID | None = None, phone: str | None = None
) -> dict:
    """Create any account (the CLI's ``vetbook user create``; managers use ``create_receptionist``)."""
    errors: dict[str, str] = {}
    clean_email = validation.clean_email(email, errors)
    clean_name = validation.clean_name(name, errors)
    clean_password = validation.clean_password(password, errors)
    if role not in (ROLE_OWNER, ROLE_RECEPTIONIST, ROLE_MANAGER):
        errors["role"] = N_("Choose owner, receptionist or manager.")
    if role == ROLE_RECEPTIONIST and clinic_id is None:
        errors["clinic"] = N_("A receptionist works at a clinic: give its id.")
    if role == ROLE_OWNER and clinic_id is not None:
        errors["clinic"] = N_("An owner does not belong to a clinic.")
    if clinic_id is not None and not await Clinic.exists().where(Clinic.clinic_id == clinic_id):
        errors["clinic"] = N_("No clinic has this id.")
    if errors:
        raise InvalidInput(errors)
    try:
        rows = await User.insert(
            User(email=clean_email, name=clean_name, role=role, clinic_id=clinic_id, phone=phone,
                 password_hash=await hash_password_async(clean_password))
        ).returning(User.user_id, User.email, User.name, User.role, User.clinic_id)
    except asyncpg.UniqueViolationError as exc:
        raise InvalidInput({"email": N_("An account with this email already exists.")}) from exc
    return rows[0]


async def managed_clinics(manager: CurrentUser) -> list[dict]:
    query = Clinic.select(Clinic.clinic_id, Clinic.name).order_by(Clinic.name)
    if manager.clinic_id is not None:
        query = query.where(Clinic.clinic_id == manager.clinic_id)
    return await query


async def list_receptionists(manager: CurrentUser) -> list[dict]:
    """Receptionists of the clinics this manager manages."""
    query = User.select(
        User.user_id, User.email, User.name, User.phone, User.is_active, User.clinic_id,
        User.clinic_id.name.as_alias("clinic_name"),
    ).where(User.role == ROLE_RECEPTIONIST).order_by(User.clinic_id.name, User.name)
    if manager.clinic_id is not None:
        query = query.where(User.clinic_id == manager.clinic_id)
    return await query


async def create_receptionist(manager: CurrentUser, data: dict) -> dict:
    errors: dict[str, str] = {}
    clinic_id: UUID | None = None
    try:
        clinic_id = UUID(str(data.get("clinic_id", "")).strip())
    except ValueError:
        errors["clinic_id"] = N_("Choose a clinic.")
    if clinic_id is not None and not manager.manages_clinic(clinic_id):
        errors["clinic_id"] = N_("Choose one of your clinics.")
    if errors:
        raise InvalidInput(errors)
    phone_errors: dict[str, str] = {}
    phone = validation.clean_phone(data.get("phone"), phone_errors)
    if phone_errors:
        raise InvalidInput(phone_errors)
    return await create_user(
        email=data.get("email") or "", password=data.get("password") or "", role=ROLE_RECEPTIONIST,
        name=data.get("name") or "", clinic_id=clinic_id, phone=phone,
    )


async def set_receptionist_active(manager: CurrentUser, user_id: UUID, active: bool) -> None:
    """Deactivate (or reactivate) a receptionist of one of the manager's clinics. Deactivation ends their
    sessions and tokens at once."""
    target = await User.select(User.user_id, User.clinic_id).where(
        (User.user_id == user_id) & (User.role == ROLE_RECEPTIONIST)
    ).first()
    if target is None or not manager.manages_clinic(target["clinic_id"]):
        raise NotFound(N_("No such receptionist."))
    await User.update({User.is_active: active}).where(User.user_id == user_id)
    if not active:
        await _revoke_sessions(user_id)


# ------------------------------------------------------------------ pets

PET_COLUMNS = (Pet.pet_id, Pet.name, Pet.species, Pet.breed, Pet.birth_date, Pet.notes)


async def list_pets(owner: CurrentUser) -> list[dict]:
    return await Pet.select(*PET_COLUMNS).where(Pet.owner_id == owner.user_id).order_by(Pet.name)


async def get_pet(owner: CurrentUser, pet_id: UUID) -> dict:
    pet = await Pet.select(*PET_COLUMNS).where((Pet.pet_id == pet_id) & (Pet.owner_id == owner.user_id)).first()
    if pet is None:
        raise NotFound(N_("No such pet."))
    return pet


async def add_pet(owner: CurrentUser, data: dict, today: date | None = None) -> dict:
    clean = validation.pet(data, today or date.today())
    rows = await Pet.insert(Pet(owner_id=owner.user_id, **clean)).returning(*PET_COLUMNS)
    return rows[0]


async def update_pet(owner: CurrentUser, pet_id: UUID, data: dict, today: date | None = None) -> dict:
    await get_pet(owner, pet_id)
    clean = validation.pet(data, today or date.today())
    rows = await Pet.update({getattr(Pet, key): value for key, value in clean.items()}).where(
        (Pet.pet_id == pet_id) & (Pet.owner_id == owner.user_id)
    ).returning(*PET_COLUMNS)
    return rows[0]
