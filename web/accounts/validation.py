"""Validation of what people type about themselves and their pets, shared by the pages and the API.

Each function takes raw values (strings from a form, or already-typed JSON values) and returns clean
values, or raises InvalidInput with one message per field.
"""

from __future__ import annotations

import re
from datetime import date

from zxcvbn import zxcvbn

from web.core.errors import InvalidInput
from web.core.messages import N_, Message

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
PHONE_PATTERN = re.compile(r"^\+?[0-9 ()\-]{6,25}$")
SPECIES = ("dog", "cat", "rabbit", "bird", "hamster", "guinea_pig", "reptile", "fish", "other")
# What people read for each species (pages translate them with the `translate` filter).
SPECIES_NAMES = {
    "dog": N_("Dog"),
    "cat": N_("Cat"),
    "rabbit": N_("Rabbit"),
    "bird": N_("Bird"),
    "hamster": N_("Hamster"),
    "guinea_pig": N_("Guinea pig"),
    "reptile": N_("Reptile"),
    "fish": N_("Fish"),
    "other": N_("Other"),
}
MIN_PASSWORD = 10
MAX_PASSWORD = 200
# zxcvbn's score (0-4) of a password's guessability; 0 and 1 mean fewer than a million guesses: the most
# common passwords and their small variations ("password123", "qwertyuiop", "iloveyou12").
MIN_PASSWORD_SCORE = 2
# zxcvbn looks at this many characters at most (its own limit); the rest only adds strength.
_PASSWORD_CHECKED_LENGTH = 72
# Words that Indonesian passwords are commonly made of, which zxcvbn's English lists lack.
COMMON_INDONESIAN_WORDS = (
    "indonesia", "bismillah", "sayang", "sayangku", "cinta", "rahasia", "merdeka", "garuda", "jakarta",
    "bandung", "surabaya", "bali", "makassar", "kucing", "anjing", "vetbook",
)


def species_name(species: str) -> Message | str:
    return SPECIES_NAMES.get(species, species)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def clean_email(value: object, errors: dict[str, str], field: str = "email") -> str:
    email = _text(value).lower()
    if not email:
        errors[field] = N_("Enter your email address.")
    elif len(email) > 254 or not EMAIL_PATTERN.match(email):
        errors[field] = N_("Enter an email address like name@example.com.")
    return email


def clean_name(value: object, errors: dict[str, str], field: str = "name", max_length: int = 120) -> str:
    name = _text(value)
    if not name:
        errors[field] = N_("This field is required.")
    elif len(name) > max_length:
        errors[field] = N_("Use at most %(count)d characters.", count=max_length)
    return name


def clean_phone(value: object, errors: dict[str, str], required: bool = False) -> str | None:
    phone = _text(value)
    if not phone:
        if required:
            errors["phone"] = N_("Enter a phone number.")
        return None
    if not PHONE_PATTERN.match(phone):
        errors["phone"] = N_("Enter a phone number like +62 812 3456 7890.")
    return phone


def clean_password(value: object, errors: dict[str, str], about_person: tuple[str, ...] = (),
                   field: str = "password") -> str:
    """At least MIN_PASSWORD characters and not among the easiest to guess (zxcvbn, which also knows
    keyboard rows, repeats, dates and the person's own name or email given in ``about_person``)."""
    password = value if isinstance(value, str) else ""
    if len(password) < MIN_PASSWORD:
        errors[field] = N_("Use at least %(count)d characters.", count=MIN_PASSWORD)
    elif len(password) > MAX_PASSWORD:
        errors[field] = N_("Use at most %(count)d characters.", count=MAX_PASSWORD)
    elif is_easy_to_guess(password, about_person):
        errors[field] = N_("This password is too common or too easy to guess. Try a few words that only you would put "
                             "together.")
    return password


def is_easy_to_guess(password: str, about_person: tuple[str, ...] = ()) -> bool:
    hints = [*COMMON_INDONESIAN_WORDS, *(part for text in about_person for part in re.split(r"[\s@.]+", text) if part)]
    return zxcvbn(password[:_PASSWORD_CHECKED_LENGTH], user_inputs=hints)["score"] < MIN_PASSWORD_SCORE


def registration(data: dict) -> dict:
    errors: dict[str, str] = {}
    clean = {
        "name": clean_name(data.get("name"), errors),
        "email": clean_email(data.get("email"), errors),
        "phone": clean_phone(data.get("phone"), errors, required=True),
    }
    clean["password"] = clean_password(data.get("password"), errors, about_person=(clean["name"], clean["email"]))
    if errors:
        raise InvalidInput(errors)
    return clean


def pet(data: dict, today: date) -> dict:
    """Name and species are required; breed, birth date (not in the future) and notes are optional."""
    errors: dict[str, str] = {}
    clean: dict = {"name": clean_name(data.get("name"), errors, max_length=80)}
    species = _text(data.get("species")).lower()
    if species not in SPECIES:
        errors["species"] = N_("Choose one of: %(choices)s.", choices=", ".join(SPECIES))
    clean["species"] = species
    breed = _text(data.get("breed"))
    if len(breed) > 80:
        errors["breed"] = N_("Use at most %(count)d characters.", count=80)
    clean["breed"] = breed or None
    raw_birth = data.get("birth_date")
    birth: date | None = None
    if isinstance(raw_birth, date):
        birth = raw_birth
    elif _text(raw_birth):
        try:
            birth = date.fromisoformat(_text(raw_birth))
        except ValueError:
            errors["birth_date"] = N_("Enter a date as YYYY-MM-DD.")
    if birth is not None and not (date(1950, 1, 1) <= birth <= today):
        errors["birth_date"] = N_("The birth date cannot be in the future (or before 1950).")
    clean["birth_date"] = birth
    notes = _text(data.get("notes"))
    if len(notes) > 2000:
        errors["notes"] = N_("Use at most %(count)d characters.", count=2000)
    clean["notes"] = notes or None
    if errors:
        raise InvalidInput(errors)
    return clean
