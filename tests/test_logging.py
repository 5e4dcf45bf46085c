"""Error logs carry a plain traceback, never the local variables of the failing code (which hold what a
client sent: payloads, signatures, keys)."""

from __future__ import annotations

import pytest
import structlog

from web.core.logging import configure_logging

SECRET = "signature-key-that-must-never-be-logged-7f3a"


def _verify(payload: dict) -> None:
    signature_key = payload["signature_key"]  # a local variable holding the secret
    raise ValueError(f"cannot verify a payload of {len(signature_key)} characters")


def test_an_exception_is_logged_without_local_variables(capsys: pytest.CaptureFixture) -> None:
    configure_logging()
    log = structlog.get_logger("test")
    try:
        _verify({"signature_key": SECRET})
    except ValueError as exc:
        log.exception("unhandled error", path="/api/v1/payments/sandbox/notifications", exc_info=exc)
    output = capsys.readouterr()
    logged = output.out + output.err
    assert "unhandled error" in logged and "Traceback (most recent call last)" in logged
    assert "ValueError: cannot verify a payload of 44 characters" in logged
    assert SECRET not in logged
