"""Short booking codes: what a receptionist types or a USB scanner reads from the QR code.

The same alphabet as the database's ``vetbook_new_booking_code()`` (migration 0012): no 0/O or 1/I.
"""

from __future__ import annotations

import re
import secrets

BOOKING_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
BOOKING_CODE_LENGTH = 8
_TYPED_SEPARATORS = re.compile(r"[\s\-_.]")


def new_booking_code() -> str:
    return "".join(secrets.choice(BOOKING_CODE_ALPHABET) for _ in range(BOOKING_CODE_LENGTH))


def normalise_booking_code(typed: str) -> str | None:
    """The code as stored, from what a person typed or a scanner sent (any case, with spaces or
    dashes). None when it cannot be a booking code."""
    code = _TYPED_SEPARATORS.sub("", typed or "").upper()
    if len(code) != BOOKING_CODE_LENGTH or any(char not in BOOKING_CODE_ALPHABET for char in code):
        return None
    return code


def display_booking_code(code: str) -> str:
    """``K7M29QXD`` as ``K7M2-9QXD``: easier to read aloud."""
    return f"{code[:4]}-{code[4:]}"
