"""The login form (``/login``), for staff whose tests start signed out."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.e2e.pages.base import PageObject


class LoginPage(PageObject):
    async def log_in(self, email: str, password: str, next_path: str | None = None) -> None:
        """Log in; with ``next_path``, wait until the form brought the browser there."""
        await self.visit("/login" + ("?" + urlencode({"next": next_path}) if next_path else ""))
        await self.by_test_id("field-email").fill(email)
        await self.by_test_id("field-password").fill(password)
        await self.by_test_id("login-submit").click()
        if next_path:
            await self.page.wait_for_url(f"**{next_path.split('?')[0]}**")
        else:
            await self.page.wait_for_load_state()
