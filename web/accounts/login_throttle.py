"""How often someone may get a password wrong: the login throttle (docs/security.md, "Login limits").

Only failures count. A correct password is never refused because of *someone else's* failures:

- Per (account, client address) pair, the first ``login_free_failures`` failures cost nothing; after
  that the pair must wait before its next attempt, ``login_first_delay_seconds`` (15 s) after the first
  extra failure and twice as long after each further one, up to ``login_max_delay_seconds`` (15 min). The owner at home is not slowed by a
  stranger guessing their password from elsewhere; the stranger is.
- Per client address alone, failures for any account are capped by ``login_ip_failure_limit``, a high
  ceiling (many Indonesian phones share one carrier address behind CGNAT) that stops one address from
  guessing across many accounts.
- A success forgets the pair's failures; a pair's failures are forgotten a day after its last one.

Both checks run before the password is looked at, so a refused attempt learns nothing about it.
"""

from __future__ import annotations

import math

from litestar.exceptions import TooManyRequestsException

from web.accounts import statements as q
from web.accounts.statements import MEMORY_HOURS
from web.accounts.tables import LoginFailure
from web.core import rate_limit, sql
from web.core.messages import N_, Message
from web.settings import get_settings

ADDRESS_LIMITED = N_("Too many failed logins from your network. Wait a few minutes and try again.")





def _address_bucket(client_address: str) -> str:
    return f"login-failures:ip:{client_address}"


def delay_after(failures: int) -> int:
    """Seconds a pair waits after its ``failures``-th failure in a row: 0 for the free ones, then doubling."""
    settings = get_settings()
    extra = failures - settings.login_free_failures
    if extra <= 0:
        return 0
    return min(settings.login_max_delay_seconds, settings.login_first_delay_seconds * 2 ** min(extra - 1, 30))


def _wait_words(seconds: int) -> Message:
    if seconds < 60:
        return N_("%(seconds)d s", seconds=seconds)
    return N_("%(minutes)d min", minutes=math.ceil(seconds / 60))


def _limited(seconds: int, message: str) -> TooManyRequestsException:
    return TooManyRequestsException(detail=message, headers={"Retry-After": str(max(1, seconds))})


async def check(account: str, client_address: str) -> None:
    """Refuse (429 with Retry-After) an attempt that must wait; otherwise return and let it be checked."""
    settings = get_settings()
    retry_after = await rate_limit.exceeded(_address_bucket(client_address), settings.login_ip_failure_limit)
    if retry_after is not None:
        raise _limited(retry_after, ADDRESS_LIMITED)
    if not account:
        return
    seconds = await sql.fetchval(q.WAIT_LEFT, account[:254], client_address)
    if seconds is not None:
        raise _limited(seconds, N_("Too many failed logins for this account. Try again in %(wait)s.",
                                   wait=_wait_words(max(1, seconds))))


async def record_failure(account: str, client_address: str) -> None:
    """Count a failed login for the address and, when there is one, for the (account, address) pair."""
    settings = get_settings()
    await rate_limit.count(_address_bucket(client_address), settings.login_ip_failure_limit)
    if not account:
        return
    failures = await sql.fetchval(q.RECORD_FAILURE, account[:254], client_address)
    delay = delay_after(failures)
    if delay:
        await sql.execute(q.BLOCK, account[:254], client_address, delay)


async def record_success(account: str, client_address: str) -> None:
    """The pair got it right: its earlier failures no longer count."""
    await LoginFailure.delete().where(
        (LoginFailure.account == account[:254]) & (LoginFailure.client_address == client_address))


async def forget_old_failures() -> None:
    """Delete pairs whose last failure is older than the memory (a periodic job)."""
    await sql.execute(f"DELETE FROM login_failures WHERE last_failed_at < now() - interval '{MEMORY_HOURS} hours'")
