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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import requests
import structlog

from web.core.errors import DomainError, NotFound
from web.core.forms import finite_decimal_or_none
from web.core.messages import N_
from web.settings import get_settings

CLINIC = "clinic"
SANDBOX = "sandbox"
MIDTRANS = "midtrans"
XENDIT = "xendit"  # web/payments/xendit.py

# Notification fields kept on the payment (what the gateway said, for support); everything else is dropped.
_MIDTRANS_FIELDS = ("transaction_id", "transaction_status", "fraud_status", "status_code", "payment_type",
                    "transaction_time", "settlement_time", "status_message")


def _amount_or_none(value: object) -> Decimal | None:
    """A gateway's amount ("150000.00", 150000) as a finite Decimal, else None."""
    return finite_decimal_or_none(value)


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


class RefundResult(enum.Enum):
    """What a gateway answered to a refund (web/payments/refunds.py applies it)."""

    SUCCEEDED = "succeeded"   # the money went back
    SENT = "sent"             # accepted; the gateway's final word comes later (notification or status read)
    MANUAL = "manual"         # this gateway cannot return it (method, window, refusal): pay it by hand
    RETRY = "retry"           # no usable answer (timeout, 5xx): send again later with the same refund_key


@dataclass(frozen=True)
class RefundRequest:
    """One refund to send: the payment it returns money from, how much, and the key that makes a retry safe."""

    refund_id: UUID
    payment_id: UUID                 # our payment id: the gateway's order_id / external_id
    provider_payment_id: str | None  # the gateway's own id of the payment (Snap token, Xendit invoice id)
    payment_method: str | None       # as the gateway reported it (e.g. 'gopay', 'bank_transfer', 'EWALLET')
    paid_at: datetime | None
    amount: Decimal
    currency: str
    refund_key: str
    reason: str


@dataclass(frozen=True)
class RefundAnswer:
    result: RefundResult
    gateway_refund_id: str | None = None
    # Why (for MANUAL: shown on the list of refunds to pay by hand; for RETRY: logged on the refund).
    message: str | None = None


@dataclass(frozen=True)
class GatewayReport:
    """What a gateway says about one payment when asked (a status read), in the terms of a notification, so
    that reconciliation applies it through the same idempotent path (services.apply_gateway_report)."""

    outcome: Outcome
    # The amount the gateway took (None when it took nothing yet), the method it reports, and its fee.
    gross_amount: Decimal | None
    payment_method: str | None
    details: dict[str, str]
    # What the gateway has returned of it so far, and its fee for the payment, when it says.
    refunded_amount: Decimal | None = None
    fee: Decimal | None = None


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

    def refund_blocker(self, payment_method: str | None, paid_at: datetime | None, now: datetime) -> str | None:
        """Why this gateway cannot return money of a payment made with ``payment_method`` at ``paid_at`` (a
        person pays it back by hand), or None when it can. Checked before sending, so that a refund the
        gateway would refuse goes straight to the list of refunds to pay by hand."""
        return N_("This payment was not made through an online gateway: pay the refund back by hand.")

    async def refund(self, request: RefundRequest) -> RefundAnswer:
        """Ask the gateway to return ``request.amount``. Called outside any database transaction, perhaps
        again for the same refund (after a timeout or a crash): ``request.refund_key`` makes that one refund at
        the gateway. Never raises for a gateway's error: the answer says what to do next."""
        return RefundAnswer(RefundResult.MANUAL, message=self.refund_blocker(None, None, datetime.now(_JAKARTA)))

    async def status(self, payment_id: UUID, provider_payment_id: str | None) -> GatewayReport | None:
        """What the gateway says about the payment now (reconciliation), or None when there is no gateway to
        ask or it does not know the payment. Raises GatewayUnavailable when it does not answer."""
        return None

    def server_key(self) -> str:
        raise NotImplementedError

    def verify(self, payload: dict[str, Any], headers: Mapping[str, str] | None = None) -> bool:
        """Whether the notification (``payload`` and its HTTP ``headers``) is authentic: Midtrans' signature
        in the body here (constant-time comparison); Xendit's token in a header."""
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

    def payment_reference(self, payload: dict[str, Any]) -> str | None:
        """Our payment id as the notification names it (Midtrans: order_id)."""
        reference = payload.get("order_id")
        return reference if isinstance(reference, str) else None

    def report(self, payload: dict[str, Any]) -> GatewayReport:
        """A verified notification (or a status answer, which Midtrans shapes the same way) as a report."""
        outcome = self.outcome(payload)
        method = payload.get("payment_type")
        return GatewayReport(
            outcome=outcome,
            gross_amount=_amount_or_none(payload.get("gross_amount")),
            payment_method=method.strip()[:30] if isinstance(method, str) and method.strip() else None,
            details={name: str(payload[name])[:200] for name in _MIDTRANS_FIELDS if payload.get(name) is not None},
            refunded_amount=_amount_or_none(payload.get("refund_amount")),
            fee=None,  # Midtrans' notifications and status answers carry no fee (its invoices do, monthly)
        )


class ClinicProvider(PaymentProvider):
    """Pay at the front desk: nothing to call; a receptionist marks the payment paid."""

    name = CLINIC
    payment_method = "pay_at_clinic"
    sends_notifications = False
    paid_at_visit = True

    async def start(self, request: PaymentRequest) -> StartedPayment:
        return StartedPayment(provider_payment_id=None, payment_url=None, expires_at=request.expires_at)

    def refund_blocker(self, payment_method: str | None, paid_at: datetime | None, now: datetime) -> str | None:
        return N_("This payment was taken at the clinic's desk: give the money back there.")

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

    def refund_blocker(self, payment_method: str | None, paid_at: datetime | None, now: datetime) -> str | None:
        return None

    async def refund(self, request: RefundRequest) -> RefundAnswer:
        """The simulated gateway returns the money at once (the same key answers the same refund id)."""
        return RefundAnswer(RefundResult.SUCCEEDED, gateway_refund_id=f"sandbox-{request.refund_key}")

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

_midtrans_log = structlog.get_logger(__name__)

# The methods Midtrans refunds through its API (its Refund Transaction reference), by payment_type, each
# within a window after the payment. A payment_type does not say which variant was used, and the windows
# differ by variant, so where it could be more than one the shortest is used: a refund past it is paid by
# hand, whereas one sent past the real window would be refused anyway (and end on the same list).
_MIDTRANS_REFUND_WINDOWS: dict[str, timedelta] = {
    # Not stated by Midtrans (it depends on the acquiring bank); card schemes allow months. 30 days is a
    # conservative guess: past it, a person refunds from the dashboard.
    "credit_card": timedelta(days=30),
    # GoPay deeplink and QRIS on-us 45 days, tokenization 180, but QRIS off-us (GoPay's QR paid from another
    # wallet) 7 days, and payment_type 'gopay' does not tell them apart: 7 days.
    "gopay": timedelta(days=7),
    # ShopeePay JumpApp and QRIS on-us 365 days, QRIS off-us 7 days: the same reasoning, 7 days.
    "shopeepay": timedelta(days=7),
    # QRIS: on-us 45 (GoPay) or 365 days (ShopeePay), off-us 7 days; the issuer is not known here: 7 days.
    "qris": timedelta(days=7),
    "dana": timedelta(days=45),
    # 7 days for regular merchants (180 for online travel agents, which a clinic is not).
    "ovo": timedelta(days=7),
    "kredivo": timedelta(days=14),
    # Not stated by Midtrans: the shortest stated pay-later window (Kredivo's), to be safe.
    "akulaku": timedelta(days=14),
}
# What a payment shows as its method before the gateway reports one (Snap lets the customer choose there).
_MIDTRANS_METHOD_UNKNOWN = (None, "", "snap")
# Midtrans' status codes that are not a refusal of this request: a wrong server key (the deployment's
# configuration) and its rate limit. Sending again later is right; paying by hand is not.
_MIDTRANS_NOT_A_REFUSAL = (401, 429)


def _midtrans_error_status(exc: Exception) -> int | None:
    """The status of a midtransclient API error: the body's ``status_code`` (Midtrans answers some errors with
    HTTP 200 and the code in the body), else the HTTP status."""
    body = getattr(exc, "api_response_dict", None)
    if isinstance(body, dict):
        try:
            return int(str(body.get("status_code")))
        except ValueError:
            pass
    return getattr(exc, "http_status_code", None)


def _midtrans_error_message(exc: Exception) -> str | None:
    """Midtrans' own words for an API error (``status_message``, or its first ``error_messages``)."""
    body = getattr(exc, "api_response_dict", None)
    if not isinstance(body, dict):
        return None
    message = body.get("status_message")
    if not message and isinstance(body.get("error_messages"), list) and body["error_messages"]:
        message = body["error_messages"][0]
    return str(message)[:500] if message else None


class MidtransProvider(PaymentProvider):
    """Midtrans Snap (``midtransclient.Snap.create_transaction``): order_id is our payment_id, gross_amount
    whole rupiah. midtransclient is synchronous (``requests``), so it runs in a worker thread."""

    name = MIDTRANS
    payment_method = "snap"

    def server_key(self) -> str:
        return get_settings().midtrans_server_key

    @staticmethod
    def _configured(client_class, base_url: str, sandbox_constant: str, production_constant: str):
        """A midtransclient client with the deployment's key and mode, ``base_url`` when set (a stand-in in the
        tests), and the gateway timeout."""
        settings = get_settings()
        client = client_class(is_production=settings.midtrans_is_production, server_key=settings.midtrans_server_key)
        if base_url:
            # ApiConfig's get_*_base_url() read these class constants through the instance, so an instance
            # attribute points this one client (and nothing else in the process) at another base URL.
            setattr(client.api_config, sandbox_constant, base_url)
            setattr(client.api_config, production_constant, base_url)
        client.http_client.http_client = _TimeoutSession(settings.payment_gateway_timeout_seconds)
        return client

    def snap(self):
        import midtransclient

        return self._configured(midtransclient.Snap, get_settings().midtrans_snap_url,
                                "SNAP_SANDBOX_BASE_URL", "SNAP_PRODUCTION_BASE_URL")

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

    def core(self):
        """A ``midtransclient.CoreApi`` (refund, status), configured as ``snap()`` is."""
        import midtransclient

        return self._configured(midtransclient.CoreApi, get_settings().midtrans_api_url,
                                "CORE_SANDBOX_BASE_URL", "CORE_PRODUCTION_BASE_URL")

    def refund_blocker(self, payment_method: str | None, paid_at: datetime | None, now: datetime) -> str | None:
        """Midtrans refunds only some methods, each within its window (``_MIDTRANS_REFUND_WINDOWS``). A
        method not reported yet ('snap': the customer chose at Snap and no notification said which) is left
        to Midtrans to judge: its refusal makes the refund manual all the same."""
        if payment_method in _MIDTRANS_METHOD_UNKNOWN:
            return None
        window = _MIDTRANS_REFUND_WINDOWS.get(payment_method)
        if window is None:
            # Bank transfers, virtual accounts (bank_transfer, echannel, permata), convenience stores (cstore)
            # and the rest: Midtrans has no way to send money back to them.
            return N_("Midtrans cannot refund payments made by %(method)s: pay the refund back by hand.",
                      method=payment_method)
        # A settled payment always has paid_at; without it the window cannot be judged, so Midtrans judges.
        if paid_at is not None and now - paid_at > window:
            return N_("Midtrans refunds %(method)s payments only within %(days)d days of payment: pay the refund "
                      "back by hand.", method=payment_method, days=window.days)
        return None

    async def refund(self, request: RefundRequest) -> RefundAnswer:
        """``POST /v2/{order_id}/refund`` with the refund's ``refund_key`` (Midtrans answers a repeated key with
        the refund it already made). Midtrans' refusals (4xx: not refundable, already refunded, over the
        amount...) → MANUAL with its message; no usable answer (timeout, connection, 5xx, not JSON) → RETRY."""
        import midtransclient

        blocker = self.refund_blocker(request.payment_method, request.paid_at, datetime.now(_JAKARTA))
        if blocker is not None:
            return RefundAnswer(RefundResult.MANUAL, message=blocker)
        if request.currency != "IDR" or request.amount != request.amount.to_integral_value():
            # Midtrans takes whole rupiah only; rounding here would return a sum other than the one recorded.
            return RefundAnswer(RefundResult.MANUAL,
                                message=N_("Midtrans refunds whole rupiah only: pay the refund back by hand."))
        parameters = {"refund_key": request.refund_key, "amount": int(request.amount),
                      "reason": request.reason[:255]}
        core = self.core()
        try:
            answer = await asyncio.to_thread(core.transactions.refund, str(request.payment_id), parameters)
        except midtransclient.error_midtrans.MidtransAPIError as exc:
            status = _midtrans_error_status(exc)
            message = _midtrans_error_message(exc) or str(exc)[:500]
            if status is not None and 400 <= status < 500 and status not in _MIDTRANS_NOT_A_REFUSAL:
                return RefundAnswer(RefundResult.MANUAL, message=message)
            return RefundAnswer(RefundResult.RETRY, message=f"Midtrans answered {status}: {message}")
        except midtransclient.error_midtrans.JSONDecodeError:
            return RefundAnswer(RefundResult.RETRY, message="Midtrans' answer was not JSON")
        except requests.RequestException as exc:
            return RefundAnswer(RefundResult.RETRY, message=f"Midtrans did not answer: {type(exc).__name__}")
        except Exception as exc:  # never raise (the contract): an unexpected failure is retried, and logged
            _midtrans_log.exception("midtrans refund failed unexpectedly", payment_id=str(request.payment_id))
            return RefundAnswer(RefundResult.RETRY, message=f"Unexpected error: {type(exc).__name__}")
        finally:
            core.http_client.http_client.close()
        return self._refund_answer(answer)

    @staticmethod
    def _refund_answer(answer: object) -> RefundAnswer:
        """Midtrans' answer to a refund that it did not refuse: status_code 200 is money returned; another 2xx
        (accepted, still being processed by the method's provider) is SENT, its final word comes later."""
        if not isinstance(answer, dict):
            return RefundAnswer(RefundResult.RETRY, message="Midtrans' answer was not an object")
        status, message = str(answer.get("status_code", "")), answer.get("status_message")
        refund_id = answer.get("refund_chargeback_id")
        gateway_refund_id = str(refund_id)[:100] if refund_id is not None else None
        if status == "200":
            return RefundAnswer(RefundResult.SUCCEEDED, gateway_refund_id=gateway_refund_id, message=message)
        if status.startswith("2"):
            return RefundAnswer(RefundResult.SENT, gateway_refund_id=gateway_refund_id, message=message)
        # A code midtransclient does not raise for (407: the transaction expired): nothing to refund there.
        return RefundAnswer(RefundResult.MANUAL, message=str(message or f"Midtrans answered {status}")[:500])

    async def status(self, payment_id: UUID, provider_payment_id: str | None) -> GatewayReport | None:
        """``GET /v2/{order_id}/status`` as a report. None when Midtrans does not know the order (404:
        the customer never chose a method at Snap); GatewayUnavailable when it does not answer usably."""
        import midtransclient

        core = self.core()
        try:
            answer = await asyncio.to_thread(core.transactions.status, str(payment_id))
        except midtransclient.error_midtrans.MidtransAPIError as exc:
            if _midtrans_error_status(exc) == 404:
                return None
            raise GatewayUnavailable() from exc
        except (midtransclient.error_midtrans.JSONDecodeError, requests.RequestException) as exc:
            raise GatewayUnavailable() from exc
        finally:
            core.http_client.http_client.close()
        # An answer about another order (a misrouted stand-in, a proxy's page) must not be applied to ours.
        if not isinstance(answer, dict) or answer.get("order_id") not in (None, str(payment_id)):
            raise GatewayUnavailable()
        return self.report(answer)


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
    if settings.xendit_secret_key:
        names.append(XENDIT)
    return names


def provider_class(name: str) -> type[PaymentProvider] | None:
    """The provider class called ``name``, enabled or not (a refund of a payment made through a gateway
    switched off since is still that gateway's); None for an unknown name."""
    return _PROVIDERS.get(name)


def get_provider(name: str) -> PaymentProvider:
    """The provider called ``name`` if it is enabled (404 otherwise: a disabled gateway does not exist)."""
    if name not in enabled_providers():
        raise NotFound(N_("No such payment provider."))
    return _PROVIDERS[name]()


# Xendit lives in its own module, which adds itself to _PROVIDERS when imported. It is imported here, last, once
# everything it takes from this module exists, so that importing either module first works.
import web.payments.xendit  # noqa: E402, F401
