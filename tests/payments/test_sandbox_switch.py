"""The simulated gateway is off unless asked for, and never runs beside a real Midtrans production key."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT
from web.app import UnsafeSettings, create_app
from web.payments import providers
from web.settings import get_settings


def test_the_sandbox_is_off_unless_asked_for(configure) -> None:
    os.environ.pop("VETBOOK_SANDBOX_PAYMENTS", None)
    configure()
    assert get_settings().sandbox_payments_enabled is False
    assert providers.SANDBOX not in providers.enabled_providers()
    configure(VETBOOK_SANDBOX_PAYMENTS="1")
    assert providers.SANDBOX in providers.enabled_providers()


def test_a_switch_that_is_neither_on_nor_off_is_refused(configure) -> None:
    configure(VETBOOK_SANDBOX_PAYMENTS="maybe")
    with pytest.raises(SystemExit, match="VETBOOK_SANDBOX_PAYMENTS must be 1 or 0"):
        get_settings()


def test_the_app_refuses_the_sandbox_beside_a_midtrans_production_key(configure) -> None:
    configure(VETBOOK_SANDBOX_PAYMENTS="1", VETBOOK_MIDTRANS_SERVER_KEY="Mid-server-live-key",
              VETBOOK_MIDTRANS_PRODUCTION="1")
    with pytest.raises(UnsafeSettings, match="VETBOOK_SANDBOX_PAYMENTS=1 beside a Midtrans production key"):
        create_app()
    # The same key in Midtrans' own sandbox mode is a test setup: allowed.
    configure(VETBOOK_MIDTRANS_PRODUCTION="0")
    create_app()


def test_vetbook_serve_exits_with_the_reason() -> None:
    env = {**os.environ, "VETBOOK_SANDBOX_PAYMENTS": "1", "VETBOOK_MIDTRANS_SERVER_KEY": "Mid-server-live-key",
           "VETBOOK_MIDTRANS_PRODUCTION": "1", "DATABASE_URL": "postgresql://unused@127.0.0.1:1/unused"}
    result = subprocess.run([sys.executable, "-m", "web.cli", "serve", "--port", "1"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "refuses to start" in result.stderr and "Midtrans production key" in result.stderr
