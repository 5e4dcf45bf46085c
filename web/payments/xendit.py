"""Xendit as a payment provider: its Invoice API to take the money, its Refund API to return it, and its
invoice callbacks to learn what happened, all through the official SDK (``xendit-python`` 7.0.0).

- ``start`` creates an invoice (external_id = our payment_id, whole rupiah, payer_email, description, and
  invoice_duration until the booking's payment deadline); the owner pays on its ``invoice_url``.
- Xendit's invoice callbacks carry no signature: ``x-callback-token`` must equal the account's callback
  verification token (shown in Xendit's dashboard), compared in constant time. No configured token, no callback.
- ``status`` reads the invoice (by its id, or by external_id) for reconciliation; ``refund`` sends a refund of
  the invoice with ``Idempotency-key`` = our refund_key, so that a resend is the same refund at Xendit.

The SDK is synchronous (urllib3): every call runs in a worker thread with ``_request_timeout`` (the SDK's own
per-call timeout, passed to urllib3 as the total time of the request) and without urllib3's retries, so a call
takes at most ``payment_gateway_timeout_seconds``. Answers are read with ``_preload_content=False`` and parsed
here rather than by the SDK's models: those refuse an answer whose enum values they do not know (a new payment
channel at Xendit would make a paid invoice unreadable) and drop fields we need (``paid_amount``,
``payment_channel``, ``fees_paid_amount``, a refund's ``status``) into untyped extras. The SDK still builds and
validates the requests, authenticates them and raises ``XenditSdkException`` for non-2xx answers.

This module adds itself to ``providers._PROVIDERS`` when imported (providers.py imports it last).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import structlog

from web.core.errors import DomainError
from web.core.forms import finite_decimal_or_none
from web.core.messages import N_
from web.payments import providers
from web.payments.providers import (
    XENDIT,
    GatewayReport,
    GatewayUnavailable,
    Outcome,
    PaymentProvider,
    PaymentRequest,
    RefundAnswer,
    RefundRequest,
    RefundResult,
    StartedPayment,
)
from web.settings import get_settings

log = structlog.get_logger(__name__)

CALLBACK_TOKEN_HEADER = "x-callback-token"

# Callback fields kept on the payment (what Xendit said, for support); everything else is dropped.
_XENDIT_FIELDS = ("id", "status", "payment_method", "payment_channel", "paid_at", "external_id")

# payment_records.transaction_fee is numeric(10,2): a fee outside it is not Xendit's (a bad callback or answer)
# and is ignored rather than failing the whole notification on the column's overflow.
_MAX_FEE = Decimal("99999999.99")

# Pages of an invoice's refunds read by a status read: a payment is refunded once or twice, never pages of times.
_MAX_REFUND_PAGES = 10

# ------------------------------------------------------------------ what Xendit can refund, and until when
#
# payment_method as stored here is Xendit's payment_method, then "/" and its payment_channel when they differ
# (e.g. "EWALLET/SHOPEEPAY", "BANK_TRANSFER/BCA", "QR_CODE/QRIS", "CREDIT_CARD"), so that both are at hand.
#
# Looked up with the search tool (November 2026):
# - docs.xendit.co/refunds: a virtual account (bank transfer) payment is refunded by a disbursement to the
#   customer's bank account, not through the Refund API. Retail outlets (cash at Alfamart, Indomaret) and direct
#   debits were found in no refund documentation: treated as not refundable through the API either.
# - docs.xendit.co/credit-cards/refunds: cards can be refunded through the API "around 6 months" after the charge.
# - docs.xendit.co/docs/qr (QRIS): refund validity 30 days (only some issuers take partial refunds or refunds
#   after 24 hours: Xendit's refusal of those lands as MANUAL).
# - help.xendit.co ("How to refund/void an eWallet transaction using API"): e-wallet payments made through
#   invoices can be refunded, with a cut-off that differs per e-wallet; not OVO one-time payments nor AstraPay.
#   Xendit's pages found gave no number per e-wallet, so 7 days is used for all of them: the shortest e-wallet
#   window another Indonesian gateway documents (docs.midtrans.com, Refund Transaction: OVO 7 days, ShopeePay
#   QRIS off-us 7 days; DANA 45, ShopeePay 365).
# - docs.xendit.co/paylater/refunds: Kredivo 14 days, Indodana 30 days, Akulaku and Billease no cut-off:
#   the shortest, 14 days, for all of them.
# The windows are conservative on purpose: a refund a person pays by hand costs minutes, one the gateway refuses
# after we told the owner it is on its way costs trust. Xendit's own refusal still lands as MANUAL.
_NOT_REFUNDABLE_METHODS = frozenset({
    "BANK_TRANSFER", "VIRTUAL_ACCOUNT", "CALLBACK_VIRTUAL_ACCOUNT", "POOL", "RETAIL_OUTLET", "DIRECT_DEBIT",
    "CRYPTOCURRENCY",
})
# E-wallets whose invoice payments Xendit cannot refund, by channel, with the names people know them by.
_NOT_REFUNDABLE_EWALLETS = {"OVO": "OVO", "ASTRAPAY": "AstraPay"}
_REFUND_WINDOWS = {
    "CREDIT_CARD": timedelta(days=150),  # "around 6 months", with a margin
    "QR_CODE": timedelta(days=30),
    "QRIS": timedelta(days=30),
    "EWALLET": timedelta(days=7),
    "PAYLATER": timedelta(days=14),
}

# Xendit's refund reasons (the SDK's CreateRefund.reason values), from ours (refunds.reason).
_REFUND_REASONS = {"paid_twice": "DUPLICATE", "reschedule_price_difference": "OTHERS", "amount_no_longer_due": "OTHERS"}

# Refund errors that a later resend may get past (Xendit's balance is short until a settlement, or another
# refund of the payment is still being processed): retried, not handed to a person.
_RETRYABLE_REFUND_ERRORS = frozenset({"INSUFFICIENT_BALANCE", "REFUND_IN_PROGRESS", "CHANNEL_UNAVAILABLE"})


def xendit_outcome(status: object) -> Outcome:
    """An invoice's status (callback or status read) as our outcome: PAID and SETTLED mean the money was
    taken, EXPIRED that it never will be; PENDING (and anything unknown) changes nothing."""
    if status in ("PAID", "SETTLED"):
        return Outcome.COMPLETED
    if status == "EXPIRED":
        return Outcome.EXPIRED
    return Outcome.NO_CHANGE


def xendit_payment_method(method: object, channel: object) -> str | None:
    """Xendit's payment_method and payment_channel as one payment_records.payment_method (at most 30
    characters): "EWALLET/SHOPEEPAY", or the method alone when the channel repeats it ("CREDIT_CARD")."""
    parts = [value.strip().upper() for value in (method, channel) if isinstance(value, str) and value.strip()]
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    return "/".join(parts)[:30] or None


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any  # the parsed JSON (a dict, or a list for a search), None when there was none


class _NoAnswer(Exception):
    """Xendit gave no usable answer: a timeout, a refused connection, TLS, or a body that is not JSON."""


def _sdk_call(call: Callable[..., Any], timeout: float, **arguments: Any) -> _Answer:
    """One SDK call (in a worker thread): its HTTP status and parsed body, 4xx and 5xx included."""
    import urllib3
    from xendit.exceptions import ApiValueError, XenditSdkException

    try:
        response = call(**arguments, _request_timeout=timeout, _preload_content=False)
        try:
            data = response.data
        finally:
            response.release_conn()
    except XenditSdkException as exc:
        # Non-2xx answers (the SDK parsed their JSON body), or the SDK's own "status 0" for TLS errors.
        status = int(exc.status) if str(exc.status).isdigit() else 0
        if status == 0:
            raise _NoAnswer(str(exc.errorMessage)[:300]) from exc
        return _Answer(status, exc.rawResponse if isinstance(exc.rawResponse, dict) else None)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _NoAnswer(f"{type(exc).__name__}: {exc}"[:300]) from exc
    except ApiValueError:
        raise  # the SDK refused our request before sending it: our bug, not Xendit's silence
    except ValueError as exc:
        # XenditSdkException parses an error body as JSON in its constructor: a proxy's HTML page ends here.
        raise _NoAnswer(f"unreadable answer: {exc}"[:300]) from exc
    try:
        return _Answer(response.status, json.loads(data) if data else None)
    except ValueError as exc:
        raise _NoAnswer("the answer is not JSON") from exc


def _error_text(answer: _Answer) -> tuple[str, str]:
    """Xendit's error_code and message of an error answer ("" when absent), shortened for our records."""
    body = answer.body if isinstance(answer.body, dict) else {}
    code, message = body.get("error_code"), body.get("message")
    return (code[:60] if isinstance(code, str) else "", message[:200] if isinstance(message, str) else "")


class XenditProvider(PaymentProvider):
    """Xendit invoices (Xendit's hosted payment page: cards, e-wallets, QRIS, virtual accounts, retail
    outlets), offered only when a secret API key is configured."""

    name = XENDIT
    payment_method = "invoice"

    # ------------------------------------------------------------------ SDK plumbing

    async def _call(self, api: str, operation: str, **arguments: Any) -> _Answer:
        """``operation`` of the SDK's ``api`` ("InvoiceApi", "RefundApi") with ``arguments``, in a worker
        thread, against ``xendit_api_url`` when it is set (tests: a local stand-in)."""
        import xendit
        from xendit import apis

        settings = get_settings()
        # A Configuration per call, never the SDK's process-wide default (set_api_key): settings change in tests
        # and the key must not outlive them. (Its constructor also sets the "xendit" and "urllib3" loggers to
        # WARNING, process-wide: nothing of ours logs through them.)
        configuration = xendit.Configuration(api_key=settings.xendit_secret_key,
                                             host=settings.xendit_api_url or None)
        # urllib3 retries a failed connection 3 times by default, each with the full timeout: the caller
        # (a page waiting, or the refund job with its own backoff) decides about retries, not the SDK.
        configuration.retries = False
        client = xendit.ApiClient(configuration)
        call = getattr(getattr(apis, api)(client), operation)
        try:
            return await asyncio.to_thread(_sdk_call, call, settings.payment_gateway_timeout_seconds, **arguments)
        finally:
            client.rest_client.pool_manager.clear()

    # ------------------------------------------------------------------ paying

    @staticmethod
    def invoice_request(request: PaymentRequest, now: datetime):
        """The SDK's CreateInvoiceRequest for ``request``: rupiah have no minor unit at Xendit, so the amount is
        whole (a float, as the SDK's model types it), and the invoice lives until the payment deadline."""
        from xendit.invoice.model.create_invoice_request import CreateInvoiceRequest

        seconds = max(1, int((request.expires_at - now).total_seconds()))
        return CreateInvoiceRequest(
            external_id=str(request.payment_id), amount=float(int(request.amount)),
            payer_email=request.customer_email, description=request.item_name[:255],
            invoice_duration=float(seconds), currency="IDR",
        )

    async def start(self, request: PaymentRequest) -> StartedPayment:
        """Create the invoice; its id and page are the payment's. 502 when Xendit refuses or does not answer."""
        if request.currency != "IDR":
            raise DomainError(N_("Xendit takes payments in rupiah only here."), status=422)
        if request.amount != request.amount.to_integral_value():
            raise DomainError(N_("Xendit takes whole rupiah only: this amount has cents."), status=422)
        try:
            answer = await self._call("InvoiceApi", "create_invoice",
                                      create_invoice_request=self.invoice_request(request, datetime.now(UTC)))
        except _NoAnswer as exc:
            log.warning("xendit invoice not created", payment_id=str(request.payment_id), error=str(exc))
            raise GatewayUnavailable() from exc
        invoice = answer.body if isinstance(answer.body, dict) else {}
        invoice_id, invoice_url = invoice.get("id"), invoice.get("invoice_url")
        if not 200 <= answer.status < 300 or not isinstance(invoice_id, str) or not 0 < len(invoice_id) <= 100 \
                or not isinstance(invoice_url, str) or not invoice_url:
            code, message = _error_text(answer)
            log.warning("xendit refused the invoice", payment_id=str(request.payment_id), status=answer.status,
                        error_code=code, error=message)
            raise GatewayUnavailable()
        return StartedPayment(provider_payment_id=invoice_id, payment_url=invoice_url, expires_at=request.expires_at)

    # ------------------------------------------------------------------ callbacks

    def verify(self, payload: dict[str, Any], headers: Mapping[str, str] | None = None) -> bool:
        """Whether the callback carries the account's verification token in ``x-callback-token`` (any case),
        compared in constant time. No token configured: every callback is refused."""
        expected = get_settings().xendit_callback_token
        if not expected:
            return False
        token = next((value for name, value in (headers or {}).items()
                      if isinstance(name, str) and name.lower() == CALLBACK_TOKEN_HEADER), None)
        if not isinstance(token, str) or not token:
            return False
        # Bytes, not str: compare_digest refuses str with non-ASCII characters (a forged header could send them).
        return hmac.compare_digest(expected.encode(), token.encode())

    def outcome(self, payload: dict[str, Any]) -> Outcome:
        return xendit_outcome(payload.get("status"))

    def payment_reference(self, payload: dict[str, Any]) -> str | None:
        """Our payment id as the invoice names it: its external_id."""
        reference = payload.get("external_id")
        return reference if isinstance(reference, str) else None

    def report(self, payload: dict[str, Any]) -> GatewayReport:
        """An invoice callback (or an invoice read by ``status``) as a report: the amount paid (paid_amount, or
        the invoice's amount when Xendit leaves it out), the method and channel, and Xendit's fee."""
        outcome = self.outcome(payload)
        gross_amount = None
        if outcome is Outcome.COMPLETED:
            gross_amount = finite_decimal_or_none(payload.get("paid_amount"))
            if gross_amount is None:
                gross_amount = finite_decimal_or_none(payload.get("amount"))
        fee = finite_decimal_or_none(payload.get("fees_paid_amount"))
        if fee is not None and not 0 <= fee <= _MAX_FEE:
            log.warning("xendit fee ignored", fee=str(fee), external_id=str(payload.get("external_id"))[:100])
            fee = None
        return GatewayReport(
            outcome=outcome,
            gross_amount=gross_amount,
            payment_method=xendit_payment_method(payload.get("payment_method"), payload.get("payment_channel")),
            details={name: str(payload[name])[:200] for name in _XENDIT_FIELDS if payload.get(name) is not None},
            fee=fee,
        )

    # ------------------------------------------------------------------ reconciliation

    async def status(self, payment_id: UUID, provider_payment_id: str | None) -> GatewayReport | None:
        """The invoice as Xendit has it now (by its id, else searched by external_id), as a report, with what
        Xendit has refunded of it; None when Xendit knows no invoice of this payment. GatewayUnavailable when it
        does not answer."""
        try:
            if provider_payment_id:
                answer = await self._call("InvoiceApi", "get_invoice_by_id", invoice_id=provider_payment_id)
            else:
                answer = await self._call("InvoiceApi", "get_invoices", external_id=str(payment_id))
        except _NoAnswer as exc:
            raise GatewayUnavailable() from exc
        if answer.status == 404:
            return None
        if not 200 <= answer.status < 300:
            code, message = _error_text(answer)
            log.warning("xendit status read failed", payment_id=str(payment_id), status=answer.status,
                        error_code=code, error=message)
            raise GatewayUnavailable()
        candidates = answer.body if isinstance(answer.body, list) else [answer.body]
        invoices = [invoice for invoice in candidates
                    if isinstance(invoice, dict) and invoice.get("external_id") == str(payment_id)]
        if not invoices:
            # Nothing, or an invoice of another payment (never applied to this one).
            return None
        # One invoice per payment is made; should there be more, the one that took the money is the answer.
        paid = [invoice for invoice in invoices if xendit_outcome(invoice.get("status")) is Outcome.COMPLETED]
        invoice = (paid or invoices)[0]
        report = self.report(invoice)
        if paid and isinstance(invoice.get("id"), str):
            # The invoice does not say what was returned of it: its refunds do (reconciliation compares them
            # with ours).
            refunded = await self._refunded(invoice["id"])
            if refunded:
                report = dataclasses.replace(report, refunded_amount=refunded)
        return report

    async def _refunded(self, invoice_id: str) -> Decimal:
        """What Xendit has returned of the invoice: its SUCCEEDED refunds (GET /refunds?invoice_id=…, page by
        page). GatewayUnavailable when it does not answer."""
        total, after_id = Decimal(0), None
        for _ in range(_MAX_REFUND_PAGES):
            arguments = {"invoice_id": invoice_id} | ({"after_id": after_id} if after_id else {})
            try:
                answer = await self._call("RefundApi", "get_all_refunds", **arguments)
            except _NoAnswer as exc:
                raise GatewayUnavailable() from exc
            if not 200 <= answer.status < 300 or not isinstance(answer.body, dict):
                raise GatewayUnavailable()
            page = answer.body.get("data")
            page = [refund for refund in page if isinstance(refund, dict)] if isinstance(page, list) else []
            for refund in page:
                amount = finite_decimal_or_none(refund.get("amount"))
                if refund.get("status") == "SUCCEEDED" and refund.get("invoice_id") == invoice_id and amount:
                    total += amount
            after_id = page[-1].get("id") if page else None
            if not answer.body.get("has_more") or not isinstance(after_id, str):
                break
        return total

    # ------------------------------------------------------------------ refunds

    def refund_blocker(self, payment_method: str | None, paid_at: datetime | None, now: datetime) -> str | None:
        """Why Xendit cannot return this payment's money (a person pays it back), or None when it can: virtual
        accounts, retail outlets and direct debits never; OVO and AstraPay e-wallets never; other methods within
        their window (see the windows above); a method Xendit did not report, never."""
        method, _, channel = (payment_method or "").upper().partition("/")
        if method in _NOT_REFUNDABLE_METHODS:
            return N_("Xendit cannot refund bank transfers, virtual accounts, retail outlet or direct debit "
                      "payments: pay the refund back by hand.")
        if method == "EWALLET" and channel in _NOT_REFUNDABLE_EWALLETS:
            return N_("Xendit cannot refund %(channel)s payments: pay the refund back by hand.",
                      channel=_NOT_REFUNDABLE_EWALLETS[channel])
        window = _REFUND_WINDOWS.get(method)
        if window is None or paid_at is None:
            return N_("Xendit did not say how this payment was made, so it cannot be refunded through Xendit: "
                      "pay the refund back by hand.")
        if now - paid_at > window:
            return N_("Xendit refunds this kind of payment only within %(days)d days of payment: pay the refund "
                      "back by hand.", days=window.days)
        return None

    async def refund(self, request: RefundRequest) -> RefundAnswer:
        """Send the refund of the invoice (Xendit's Refund API) with ``Idempotency-key`` = ``refund_key``:
        SUCCEEDED → SUCCEEDED, PENDING → SENT, FAILED / CANCELLED and refusals of the payment → MANUAL;
        timeouts, connection errors, 5xx, 429 and a refused API key → RETRY. Never raises for Xendit's errors.
        The refund window is the job's check (``refund_blocker``), not this one's: a resend of a refund Xendit
        already accepted must reach it even after the window."""
        from xendit.refund.model.create_refund import CreateRefund

        if not request.provider_payment_id:
            return RefundAnswer(RefundResult.MANUAL, message=N_(
                "This payment's Xendit invoice is not known here: pay the refund back by hand."))
        if request.amount != request.amount.to_integral_value():
            return RefundAnswer(RefundResult.MANUAL, message=N_(
                "Xendit returns whole rupiah only and this refund has cents: pay it back by hand."))
        body = CreateRefund(
            invoice_id=request.provider_payment_id, reference_id=request.refund_key,
            amount=float(int(request.amount)), currency=request.currency,
            reason=_REFUND_REASONS.get(request.reason, "CANCELLATION"),
            metadata={"refund_id": str(request.refund_id), "payment_id": str(request.payment_id),
                      "reason": request.reason[:40]},
        )
        try:
            answer = await self._call("RefundApi", "create_refund", idempotency_key=request.refund_key,
                                      create_refund=body)
        except _NoAnswer as exc:
            return RefundAnswer(RefundResult.RETRY, message=f"Xendit did not answer: {exc}")
        return self.refund_answer(answer)

    @staticmethod
    def refund_answer(answer: _Answer) -> RefundAnswer:
        """Xendit's answer to a refund as what the refund job does next."""
        code, message = _error_text(answer)
        if 200 <= answer.status < 300:
            refund = answer.body if isinstance(answer.body, dict) else {}
            refund_id = refund.get("id") if isinstance(refund.get("id"), str) else None
            status = refund.get("status")
            if status == "SUCCEEDED":
                return RefundAnswer(RefundResult.SUCCEEDED, gateway_refund_id=refund_id)
            if status in ("FAILED", "CANCELLED"):
                failure = refund.get("failure_code")
                return RefundAnswer(RefundResult.MANUAL, gateway_refund_id=refund_id, message=N_(
                    "Xendit could not complete this refund (%(failure)s): pay it back by hand.",
                    failure=str(failure or status)[:60]))
            if refund_id is not None:
                # PENDING (or a status this code does not know yet): accepted, the final word comes later.
                return RefundAnswer(RefundResult.SENT, gateway_refund_id=refund_id)
            return RefundAnswer(RefundResult.RETRY, message=f"Xendit answered {answer.status} without a refund")
        if answer.status >= 500 or answer.status in (408, 429) or code in _RETRYABLE_REFUND_ERRORS:
            return RefundAnswer(RefundResult.RETRY, message=f"Xendit answered {answer.status} {code} {message}".strip())
        if answer.status in (401, 403):
            # A revoked or under-privileged key is fixed in configuration; the refund itself is fine.
            return RefundAnswer(RefundResult.RETRY, message=f"Xendit refused our API key ({answer.status} {code})")
        # 400 (REFUND_NOT_SUPPORTED, INELIGIBLE_TRANSACTION, PARTIAL_REFUND_NOT_SUPPORTED,
        # MAXIMUM_REFUND_AMOUNT_REACHED, API_VALIDATION_ERROR…), 404 (the payment is unknown), 409 (the key was
        # used for another refund): a resend would get the same answer.
        return RefundAnswer(RefundResult.MANUAL, message=N_(
            "Xendit refused this refund (%(code)s: %(reason)s): pay it back by hand.",
            code=code or str(answer.status), reason=message or "no reason given"))


providers._PROVIDERS[XENDIT] = XenditProvider
