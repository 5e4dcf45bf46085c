"""The one format of the keys a client chooses and the server stores or logs: idempotency keys (holds,
payments) and request ids. Eight to 64 characters that need no escaping anywhere: in a header, a form, a
log line, an ``application_name``. Migration 0020's CHECK on ``reservations.idempotency_key`` says the same."""

from __future__ import annotations

import re

CLIENT_KEY_PATTERN = r"^[A-Za-z0-9._:-]{8,64}$"
CLIENT_KEY = re.compile(CLIENT_KEY_PATTERN)
