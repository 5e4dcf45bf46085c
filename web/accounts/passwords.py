"""Passwords: argon2 hashing (argon2-cffi's defaults, RFC 9106 low-memory profile) and what we accept.

Every verification costs one argon2 computation, also when there is no usable hash to compare with (an
unknown email, an account created at the desk that has no password yet): the time of a failed login
does not tell what kind of account, if any, is behind an email.
"""

from __future__ import annotations

import asyncio
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _stand_in_hash() -> str:
    """A hash nobody knows the password of, verified when there is no real hash to verify."""
    return _hasher().hash("stand-in-" + secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def is_password_hash(value: str | None) -> bool:
    """Whether ``value`` is an argon2 hash (accounts made at the desk hold a marker instead)."""
    return bool(value) and value.startswith("$argon2")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; always one argon2 verification, match or not."""
    target = password_hash if is_password_hash(password_hash) else _stand_in_hash()
    try:
        matched = _hasher().verify(target, password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and target is password_hash


# argon2 is deliberately slow (tens to hundreds of milliseconds of CPU): in a request it runs in a worker
# thread, so one login does not stall every other request of the process.


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password, password_hash, password)


def warm_up() -> None:
    """Compute the stand-in hash now, so that the first failed login does not pay for it (a hash + a verify)."""
    _stand_in_hash()
