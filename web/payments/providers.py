"""Payment providers behind one small interface.

A provider starts a payment (for a gateway: one HTTP call that answers its own id, the page where the
customer pays, and until when), verifies the signature of the notifications it sends, and says what a
notification means for us. The rules (who may pay, what a completed payment does to a booking) live in
web/payments/services.py; nothing here touches the database.

- ``clinic``: the money is taken at the front desk and a receptionist marks the payment paid. No gateway.
- ``sandbox``: a simulated gateway built into the app, for demos and tests. Its payment page is ours
  (/sandbox/pay/{payment_id}); "paying" there makes the app send itself a notification over HTTP, shaped
  and signed exactly as Midtrans does (with the sandbox's own key).
- ``midtrans``: Snap through the official ``midtransclient``, offered only when a server key is configured.

Notifications follow Midtrans: ``signature_key`` is the hex SHA-512 of order_id + status_code +
gross_amount + server key, where order_id is our payment_id.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import requests

from web.core.errors import DomainError, NotFound
from web.core.messages import N_
from web.settings import get_settings

CLINIC = "clinic"
SANDBOX = "sandbox"
MIDTRANS = "midtrans"


class Outcome(enum.Enum):
    """What a gateway's notification means for our payment record."""

    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    # Nothing to do: still pending, waiting for a fraud review, or an event we do not act on.
    NO_CHANGE = "no_change"


@dataclass(frozen=True)
class PaymentRequest:
    """What a provider needs to start collecting one payment."""

    payment_id: UUID
    booking_id: UUID
    amount: Decimal
    currency: str
    # When the payment must be done by (the booking's payment deadline).
    expires_at: datetime
    item_name: str
    customer_name: str
    customer_email: str


@dataclass(frozen=True)
class StartedPayment:
    provider_payment_id: str | None
    # Where the customer pays; None when nothing is paid online (the clinic's desk).
    payment_url: str | None
    expires_at: datetime | None


class GatewayUnavailable(DomainError):
    """The gateway refused or did not answer in time; the payment attempt failed and nothing was charged."""

    def __init__(self, detail: str = "The payment gateway is not answering. Please try again in a moment.") -> None:
        super().__init__(detail=detail, status=502)


def midtrans_signature(order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    """Midtrans' notification signature: hex SHA-512 of order_id + status_code + gross_amount + server key."""
    return hashlib.sha512(f"{order_id}{status_code}{gross_amount}{server_key}".encode()).hexdigest()


def midtrans_outcome(transaction_status: str | None, fraud_status: str | None) -> Outcome:
    """Midtrans' transaction_status (and fraud_status, for card captures) as our outcome."""
    if transaction_status == "capture":
        # A card capture is money taken only once the fraud check accepts it; 'challenge' waits for a
        # human review at Midtrans, which ends in a later settlement, deny or cancel notification.
        if fraud_status == "accept":
            return Outcome.COMPLETED
        return Outcome.FAILED if fraud_status == "deny" else Outcome.NO_CHANGE
    if transaction_status == "settlement":
        return Outcome.COMPLETED
    if transaction_status in ("deny", "cancel", "failure"):
        return Outcome.FAILED
    if transaction_status == "expire":
        return Outcome.EXPIRED
    # 'pending', 'authorize', and refund/chargeback events (which we start ourselves, never the gateway).
    return Outcome.NO_CHANGE


class PaymentProvider:
    """The interface every provider implements."""

    name: ClassVar[str]
    # payment_records.payment_method until the gateway tells the method actually used.
    payment_method: ClassVar[str]
    # Whether this provider sends notifications (the clinic's desk does not: a receptionist marks it paid).
    sends_notifications: ClassVar[bool] = True
    # Whether choosing this provider moves the booking's payment deadline to the visit's start.
    paid_at_visit: ClassVar[bool] = False

    async def start(self, request: PaymentRequest) -> StartedPayment:
        """Start collecting the payment. Called outside any database transaction: it may take seconds."""
        raise NotImplementedError

    def server_key(self) -> str:
        raise NotImplementedError

    def verify(self, payload: dict[str, Any]) -> bool:
        """Whether ``payload`` carries a valid signature of this provider (constant-time comparison)."""
        if not self.sends_notifications:
            return False
        fields = [payload.get(name) for name in ("order_id", "status_code", "gross_amount", "signature_key")]
        if not all(isinstance(value, str) and value for value in fields):
            return False
        order_id, status_code, gross_amount, signature = fields
        expected = midtrans_signature(order_id, status_code, gross_amount, self.server_key())
        # Bytes, not str: compare_digest refuses str with non-ASCII characters (a forged body could send them).
        if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
            return False
        # The signature does not cover transaction_status: a signed 'deny' (status_code 202) with its status
        # rewritten to 'settlement' would still match. Money taken always comes with status_code 200, so a
        # completion is believed only with the code that was signed for it.
        return self.outcome(payload) is not Outcome.COMPLETED or status_code == "200"

    def outcome(self, payload: dict[str, Any]) -> Outcome:
        return midtrans_outcome(payload.get("transaction_status"), payload.get("fraud_status"))


class ClinicProvider(PaymentProvider):
    """Pay at the front desk: nothing to call; a receptionist marks the payment paid."""

    name = CLINIC
    payment_method = "pay_at_clinic"
    sends_notifications = False
    paid_at_visit = True

    async def start(self, request: PaymentRequest) -> StartedPayment:
        return StartedPayment(provider_payment_id=None, payment_url=None, expires_at=request.expires_at)

    def server_key(self) -> str:  # never used: verify() refuses every notification
        return ""


class SandboxProvider(PaymentProvider):
    """The built-in simulated gateway: its payment page is ours, its notifications are signed like Midtrans'."""

    name = SANDBOX
    payment_method = "sandbox"

    async def start(self, request: PaymentRequest) -> StartedPayment:
        return StartedPayment(
            provider_payment_id=f"sandbox-{request.payment_id}",
            payment_url=f"/sandbox/pay/{request.payment_id}",
            expires_at=request.expires_at,
        )

    def server_key(self) -> str:
        return get_settings().sandbox_server_key

    def notification(self, payment_id: UUID, amount: Decimal, currency: str, approve: bool) -> dict[str, Any]:
        """The notification the sandbox sends when the customer pays or declines: Midtrans' fields, status
        codes and signature, so that it exercises the same path a real gateway's does."""
        now = datetime.now(_JAKARTA).strftime("%Y-%m-%d %H:%M:%S")
        status_code = "200" if approve else "202"
        gross_amount = f"{Decimal(amount):.2f}"
        payload = {
            "transaction_time": now,
            "transaction_status": "settlement" if approve else "deny",
            "transaction_id": str(uuid4()),
            "status_message": "vetbook sandbox payment notification",
            "status_code": status_code,
            "payment_type": "sandbox",
            "order_id": str(payment_id),
            "merchant_id": "VETBOOK-SANDBOX",
            "gross_amount": gross_amount,
            "fraud_status": "accept" if approve else "deny",
            "currency": currency,
            "signature_key": midtrans_signature(str(payment_id), status_code, gross_amount, self.server_key()),
        }
        if approve:
            payload["settlement_time"] = now
        return payload


class _TimeoutSession(requests.Session):
    """midtransclient calls ``requests`` without a timeout; a gateway that never answers must not hang a
    worker thread forever."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method, url, **kwargs):  # noqa: ANN001 - requests' own signature
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)


# Snap's expiry start_time is "yyyy-MM-dd HH:mm:ss Z" (e.g. "2026-11-26 20:00:00 +0700").
_SNAP_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"
_JAKARTA = ZoneInfo("Asia/Jakarta")


class MidtransProvider(PaymentProvider):
    """Midtrans Snap (``midtransclient.Snap.create_transaction``): order_id is our payment_id, gross_amount
    whole rupiah. midtransclient is synchronous (``requests``), so it runs in a worker thread."""

    name = MIDTRANS
    payment_method = "snap"

    def server_key(self) -> str:
        return get_settings().midtrans_server_key

    def snap(self):
        import midtransclient

        settings = get_settings()
        snap = midtransclient.Snap(is_production=settings.midtrans_is_production,
                                   server_key=settings.midtrans_server_key)
        if settings.midtrans_snap_url:
            # ApiConfig.get_snap_base_url() reads these class constants through the instance, so an instance
            # attribute points this one client (and nothing else in the process) at another base URL.
            snap.api_config.SNAP_SANDBOX_BASE_URL = settings.midtrans_snap_url
            snap.api_config.SNAP_PRODUCTION_BASE_URL = settings.midtrans_snap_url
        snap.http_client.http_client = _TimeoutSession(settings.payment_gateway_timeout_seconds)
        return snap

    @staticmethod
    def parameters(request: PaymentRequest, now: datetime) -> dict[str, Any]:
        """Snap's create-transaction body. Rupiah have no minor unit at Midtrans: amounts are integers."""
        gross_amount = int(request.amount)
        minutes = max(1, int((request.expires_at - now).total_seconds() // 60))
        return {
            "transaction_details": {"order_id": str(request.payment_id), "gross_amount": gross_amount},
            "item_details": [{"id": str(request.booking_id)[:50], "price": gross_amount, "quantity": 1,
                              "name": request.item_name[:50]}],
            "customer_details": {"first_name": request.customer_name[:255], "email": request.customer_email},
            "expiry": {"start_time": now.astimezone(_JAKARTA).strftime(_SNAP_TIME_FORMAT), "unit": "minutes",
                       "duration": minutes},
        }

    async def start(self, request: PaymentRequest) -> StartedPayment:
        import midtransclient

        if request.currency != "IDR":
            raise DomainError(N_("Midtrans takes payments in rupiah only."), status=422)
        parameters = self.parameters(request, datetime.now(_JAKARTA))
        snap = self.snap()
        try:
            answer = await asyncio.to_thread(snap.create_transaction, parameters)
        except (midtransclient.error_midtrans.MidtransAPIError, midtransclient.error_midtrans.JSONDecodeError,
                requests.RequestException) as exc:
            raise GatewayUnavailable() from exc
        finally:
            snap.http_client.http_client.close()
        token, redirect_url = answer.get("token"), answer.get("redirect_url")
        if not isinstance(token, str) or not isinstance(redirect_url, str):
            raise GatewayUnavailable()
        return StartedPayment(provider_payment_id=token, payment_url=redirect_url, expires_at=request.expires_at)


_PROVIDERS: dict[str, type[PaymentProvider]] = {
    CLINIC: ClinicProvider, SANDBOX: SandboxProvider, MIDTRANS: MidtransProvider,
}


def enabled_providers() -> list[str]:
    """The providers an owner may choose now, by configuration."""
    settings = get_settings()
    names = [CLINIC]
    if settings.sandbox_payments_enabled:
        names.append(SANDBOX)
    if settings.midtrans_server_key:
        names.append(MIDTRANS)
    return names


def get_provider(name: str) -> PaymentProvider:
    """The provider called ``name`` if it is enabled (404 otherwise: a disabled gateway does not exist)."""
    if name not in enabled_providers():
        raise NotFound(N_("No such payment provider."))
    return _PROVIDERS[name]()
