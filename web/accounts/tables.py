"""Piccolo mappings of users, pets, sessions and login failures (DDL: piccolo_migrations/0001, 0008, 0016)."""

from piccolo.columns import UUID, Boolean, Bytea, Date, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from web.clinics.tables import Clinic


class User(Table, tablename="users"):
    user_id = UUID(primary_key=True)
    email = Varchar(length=254)
    name = Varchar(length=120)
    phone = Varchar(length=30, null=True, default=None)
    role = Varchar(length=20, default="owner")
    clinic_id = ForeignKey(references=Clinic, null=True, default=None)
    password_hash = Text()
    locale = Varchar(length=10, null=True, default=None)
    is_active = Boolean(default=True)
    last_login_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Pet(Table, tablename="pets"):
    pet_id = UUID(primary_key=True)
    owner_id = ForeignKey(references=User, null=False)
    name = Varchar(length=80)
    species = Varchar(length=20)
    breed = Varchar(length=80, null=True, default=None)
    birth_date = Date(null=True, default=None)
    notes = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class AuthSession(Table, tablename="auth_sessions"):
    """A web login session (cookie) or an API bearer token, by the SHA-256 of its secret."""

    session_id = UUID(primary_key=True)
    token_hash = Bytea()
    user_id = ForeignKey(references=User, null=False)
    kind = Varchar(length=10)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    user_agent = Varchar(length=300, null=True, default=None)


class LoginFailure(Table, tablename="login_failures"):
    """Failed logins of one (account, client address) pair (DDL: piccolo_migrations/0016)."""

    # The real primary key is (account, client_address); Piccolo needs one column.
    account = Varchar(length=254, primary_key=True)
    client_address = Varchar(length=64)
    failures = Integer()
    last_failed_at = Timestamptz(default=TimestamptzNow())
    blocked_until = Timestamptz(default=TimestamptzNow())
