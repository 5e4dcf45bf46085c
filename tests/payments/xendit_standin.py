"""A local stand-in for Xendit's HTTP API on 127.0.0.1, for offline tests of the real xendit-python SDK.

It answers what web/payments/xendit.py calls, shaped as Xendit answers (docs.xendit.co, the SDK's models):

- ``POST /v2/invoices`` (the SDK's path ends with a slash; both are taken): an Invoice, ``PENDING``;
- ``GET /v2/invoices/{id}`` and ``GET /v2/invoices?external_id=…`` (a list), with the payment's fields
  (``paid_amount``, ``payment_method``, ``payment_channel``, ``fees_paid_amount``…) once ``pay`` was called;
- ``POST /refunds``: a Refund; the same ``Idempotency-key`` answers the same refund again and is counted once;
  ``GET /refunds?invoice_id=…``: an invoice's refunds, a page of 10 at a time (``has_more``, ``after_id``).

Every request must carry HTTP basic auth with the secret key as user name (401 otherwise). Switches:
``fail_with`` (answer that status, e.g. 503), ``delay_seconds`` (answer only after that long, having done the
work: an answer lost to the client's timeout), ``refuse_refunds`` (answer 400 with that ``error_code``, as
Xendit does for a method it cannot refund) and ``refund_status`` (the status new refunds get). The server runs
in a thread of the test process and is stopped, with every delayed answer released, when its block ends.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.payments.standin_server import pause, serving

USER_ID = "5781d19b2e2385880609791c"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class XenditRequest:
    method: str
    path: str
    authorization: str
    idempotency_key: str | None
    body: dict | None


@dataclass
class XenditStandIn:
    secret_key: str
    port: int = 0
    requests: list[XenditRequest] = field(default_factory=list)
    invoices: dict[str, dict] = field(default_factory=dict)
    # Refunds as created (one per idempotency key), and each key's answer.
    refunds: list[dict] = field(default_factory=list)
    refunds_by_key: dict[str, dict] = field(default_factory=dict)
    fail_with: int | None = None
    delay_seconds: float = 0
    refuse_refunds: str | None = None
    refund_status: str = "SUCCEEDED"
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ what the test does at "Xendit"

    def invoice_for(self, external_id: str) -> dict:
        """The one invoice made for ``external_id`` (our payment id)."""
        [invoice] = [invoice for invoice in self.invoices.values() if invoice["external_id"] == external_id]
        return invoice

    def pay(self, invoice_id: str, method: str = "EWALLET", channel: str = "SHOPEEPAY",
            fee: int = 2775) -> dict:
        """The customer paid the invoice on Xendit's page: it is PAID from now on, as a status read says."""
        with self.lock:
            invoice = self.invoices[invoice_id]
            invoice.update({
                "status": "PAID", "paid_amount": invoice["amount"], "paid_at": _now(), "updated": _now(),
                "payment_method": method, "payment_channel": channel, "payment_id": f"ewc_{uuid.uuid4()}",
                "fees_paid_amount": fee, "adjusted_received_amount": invoice["amount"] - fee,
            })
            if method == "EWALLET":
                invoice["ewallet_type"] = channel
            return dict(invoice)

    def expire(self, invoice_id: str) -> dict:
        with self.lock:
            self.invoices[invoice_id].update({"status": "EXPIRED", "updated": _now()})
            return dict(self.invoices[invoice_id])

    # ------------------------------------------------------------------ the API

    def answer(self, method: str, target: str, authorization: str, idempotency_key: str | None,
               body: dict | None) -> tuple[int, object]:
        url = urlsplit(target)
        path = url.path.rstrip("/")
        with self.lock:
            self.requests.append(XenditRequest(method, path, authorization, idempotency_key, body))
        expected = "Basic " + base64.b64encode(f"{self.secret_key}:".encode()).decode()
        if authorization != expected:
            return 401, {"error_code": "INVALID_API_KEY", "message": "API key is not authorized for this API service"}
        if self.fail_with is not None:
            return self.fail_with, {"error_code": "SERVER_ERROR", "message": "Something unexpected happened, we "
                                    "are investigating this issue right now"}
        if method == "POST" and path == "/v2/invoices":
            return self._create_invoice(body or {})
        if method == "GET" and path == "/v2/invoices":
            external_ids = parse_qs(url.query).get("external_id", [])
            with self.lock:
                return 200, [dict(invoice) for invoice in self.invoices.values()
                             if invoice["external_id"] in external_ids]
        if method == "GET" and path.startswith("/v2/invoices/"):
            with self.lock:
                invoice = self.invoices.get(path.removeprefix("/v2/invoices/"))
            if invoice is None:
                return 404, {"error_code": "INVOICE_NOT_FOUND_ERROR", "message": "Could not find invoice by id"}
            return 200, dict(invoice)
        if method == "POST" and path == "/refunds":
            return self._create_refund(idempotency_key, body or {})
        if method == "GET" and path == "/refunds":
            # One page of 10, newest first, as Xendit lists them; after_id continues after that refund.
            query = parse_qs(url.query)
            invoice_ids, after = query.get("invoice_id", []), (query.get("after_id") or [None])[0]
            with self.lock:
                found = [dict(refund) for refund in reversed(self.refunds) if refund["invoice_id"] in invoice_ids]
            ids = [refund["id"] for refund in found]
            if after is not None:
                found = found[ids.index(after) + 1:] if after in ids else []
            return 200, {"data": found[:10], "has_more": len(found) > 10}
        return 404, {"error_code": "NOT_FOUND", "message": "The requested resource was not found"}

    def _create_invoice(self, body: dict) -> tuple[int, dict]:
        external_id, amount = body.get("external_id"), body.get("amount")
        if not isinstance(external_id, str) or not isinstance(amount, int | float) or amount < 1:
            return 400, {"error_code": "API_VALIDATION_ERROR", "message": "external_id and amount are required"}
        duration = body.get("invoice_duration") or 86400
        invoice_id = uuid.uuid4().hex[:24]
        invoice = {
            "id": invoice_id, "external_id": external_id, "user_id": USER_ID, "status": "PENDING",
            "merchant_name": "VetBook Test Clinic", "merchant_profile_picture_url": f"{self.base_url}/logo.png",
            "amount": amount, "payer_email": body.get("payer_email"), "description": body.get("description"),
            "expiry_date": (datetime.now(UTC) + timedelta(seconds=float(duration))).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "invoice_url": f"{self.base_url}/web/{invoice_id}",
            "available_banks": [{"bank_code": "BCA", "collection_type": "POOL", "transfer_amount": amount,
                                 "bank_branch": "Virtual Account", "account_holder_name": "VETBOOK",
                                 "identity_amount": 0}],
            "available_retail_outlets": [{"retail_outlet_name": "ALFAMART"}],
            "available_ewallets": [{"ewallet_type": "SHOPEEPAY"}, {"ewallet_type": "DANA"}],
            "available_qr_codes": [{"qr_code_type": "QRIS"}],
            "available_direct_debits": [{"direct_debit_type": "DD_BRI"}],
            "available_paylaters": [],
            "should_exclude_credit_card": False, "should_send_email": False,
            "created": _now(), "updated": _now(), "currency": body.get("currency") or "IDR",
        }
        with self.lock:
            self.invoices[invoice_id] = invoice
        return 200, dict(invoice)

    def _create_refund(self, key: str | None, body: dict) -> tuple[int, dict]:
        with self.lock:
            if key and key in self.refunds_by_key:
                return 200, dict(self.refunds_by_key[key])
            invoice = self.invoices.get(body.get("invoice_id") or "")
            if invoice is None:
                return 404, {"error_code": "DATA_NOT_FOUND", "message": "Payment with the given id was not found"}
            if invoice["status"] not in ("PAID", "SETTLED"):
                return 400, {"error_code": "INELIGIBLE_TRANSACTION", "message": "The payment is not refundable "
                             "in its current status"}
            if self.refuse_refunds:
                return 400, {"error_code": self.refuse_refunds, "message": "Refund is not supported for this "
                             "payment channel"}
            amount = body.get("amount") or invoice["paid_amount"]
            refunded = sum(refund["amount"] for refund in self.refunds if refund["invoice_id"] == invoice["id"]
                           and refund["status"] != "FAILED")
            if refunded + amount > invoice["paid_amount"]:
                return 400, {"error_code": "MAXIMUM_REFUND_AMOUNT_REACHED", "message": "The refund amount is "
                             "greater than the amount left to refund"}
            refund = {
                "id": f"rfd-{uuid.uuid4()}", "payment_id": invoice.get("payment_id"), "payment_request_id": None,
                "invoice_id": invoice["id"], "amount": amount, "payment_method_type": invoice.get("payment_method"),
                "channel_code": invoice.get("payment_channel"), "currency": body.get("currency") or "IDR",
                "status": self.refund_status, "reason": body.get("reason"), "reference_id": body.get("reference_id"),
                "failure_code": "REFUND_FAILED" if self.refund_status == "FAILED" else None,
                "refund_fee_amount": None, "created": _now(), "updated": _now(), "metadata": body.get("metadata"),
            }
            self.refunds.append(refund)
            if key:
                self.refunds_by_key[key] = refund
            return 200, dict(refund)


def _handler(standin: XenditStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = None
            status, answer = standin.answer(method, self.path, self.headers.get("authorization", ""),
                                            self.headers.get("idempotency-key"), body)
            if standin.delay_seconds:
                # The work is done; only the answer is late (ended early when the stand-in stops).
                pause(standin.delay_seconds, standin.stopping)
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (its timeout): nothing to answer to

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self._serve("POST")

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep test output quiet
            pass

    return Handler


@contextmanager
def xendit_standin(secret_key: str) -> Iterator[XenditStandIn]:
    """A running stand-in on a free port of 127.0.0.1, stopped (its delayed answers released and its thread
    joined) afterwards, also when the test fails."""
    standin = XenditStandIn(secret_key=secret_key)
    with serving(_handler(standin), "xendit-standin", standin.stopping.set) as port:
        standin.port = port
        yield standin
