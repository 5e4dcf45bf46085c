"""A local stand-in for Midtrans' HTTP APIs on 127.0.0.1, for offline tests of the real midtransclient.

Snap: it answers ``POST /snap/v1/transactions`` as Snap does: HTTP basic auth with the server key as user
name, 201 ``{"token", "redirect_url"}`` for a valid body, 401 / 400 with ``error_messages`` otherwise. It
records every request, can be told to fail (503) and can hold a request until released, so a test can look
at the database while the app waits for the gateway.

Core API (the same server; point VETBOOK_MIDTRANS_API_URL at ``base_url``): a store of transactions the test
sets (``set_transaction``), ``GET /v2/{order_id}/status`` answered in the shape of Midtrans' status answer
(404 "Transaction doesn't exist." for an order it does not know), and ``POST /v2/{order_id}/refund`` that
honours ``refund_key`` as Midtrans does: the same key answers the refund it already made, counted once
(``refunds_created``; every request is in ``refunds``). Switches: ``core_fail_with`` (a 5xx),
``core_delay`` (seconds before answering, after doing the work: longer than the client's timeout, it is a
refund made whose answer was lost), ``refuse_refunds`` (412 "Merchant cannot modify the status of the
transaction"), ``errors_in_body`` (an error as HTTP 200 with its code in the body, which Midtrans also does)
and ``not_json``. Answers follow the recorded shapes in tests/payments/recorded/ (``status_*.json``,
``refund_*.json``).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.payments.standin_server import pause, serving

RECORDED = Path(__file__).parent / "recorded"
# The Core API's addresses the stand-in answers (order ids are our payment ids: uuids).
_STATUS_PATH = re.compile(r"^/v2/(?P<order_id>[A-Za-z0-9_-]+)/status$")
_REFUND_PATH = re.compile(r"^/v2/(?P<order_id>[A-Za-z0-9_-]+)/refund$")
# Midtrans' status_code for each transaction_status in a status answer.
_STATUS_CODES = {"settlement": "200", "capture": "200", "refund": "200", "partial_refund": "200", "cancel": "200",
                 "pending": "201", "authorize": "201", "deny": "202", "failure": "202", "expire": "407"}


def _recorded(name: str) -> dict:
    return json.loads((RECORDED / f"{name}.json").read_text())


@dataclass
class SnapRequest:
    path: str
    authorization: str
    body: dict


@dataclass
class SnapStandIn:
    server_key: str
    port: int = 0
    requests: list[SnapRequest] = field(default_factory=list)
    fail_with: int | None = None
    # Set by the handler when a request arrived while ``hold`` is on; the handler then waits for ``release``.
    hold: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    order_ids: set[str] = field(default_factory=set)
    # Core API: order_id → the transaction's fields (transaction_status, gross_amount, payment_type, ...).
    transactions: dict[str, dict] = field(default_factory=dict)
    # Every refund request received (order_id, refund_key, amount, reason), replays included; and how many
    # distinct refunds were made (a replayed refund_key makes none).
    refunds: list[dict] = field(default_factory=list)
    refunds_created: int = 0
    core_fail_with: int | None = None
    core_delay: float = 0.0
    refuse_refunds: bool = False
    errors_in_body: bool = False
    not_json: bool = False
    _answers_by_key: dict[tuple[str, str], dict] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_transaction(self, order_id: object, transaction_status: str = "settlement", *,
                        gross_amount: Decimal | int | str = 150000, payment_type: str = "gopay",
                        transaction_time: str = "2026-11-26 19:40:12", settlement_time: str | None = None,
                        fraud_status: str = "accept", **extra: object) -> dict:
        """Make the gateway know order ``order_id`` (our payment id) in ``transaction_status``; a settled one gets
        ``settlement_time`` (``transaction_time`` unless given). Returns the stored fields (a test may change them)."""
        fields = {"order_id": str(order_id), "transaction_id": str(uuid.uuid4()), "transaction_status": transaction_status,
                  "gross_amount": f"{Decimal(str(gross_amount)):.2f}", "payment_type": payment_type,
                  "transaction_time": transaction_time, "fraud_status": fraud_status, "currency": "IDR",
                  "refunded": Decimal("0"), "refund_list": []}
        if transaction_status in ("settlement", "capture") or settlement_time is not None:
            fields["settlement_time"] = settlement_time or transaction_time
        fields.update(extra)
        with self._lock:
            self.transactions[str(order_id)] = fields
        return fields

    def _authorized(self, authorization: str) -> bool:
        return authorization == "Basic " + base64.b64encode(f"{self.server_key}:".encode()).decode()

    def _error(self, status: int, message: str) -> tuple[int, dict]:
        body = {"status_code": str(status), "status_message": message, "id": str(uuid.uuid4())}
        return (200 if self.errors_in_body else status), body

    def _refused(self, authorization: str) -> tuple[int, dict] | None:
        """What the Core API answers before looking at the request: a wrong key, or the 5xx switch."""
        if not self._authorized(authorization):
            return self._error(401, "Access denied due to unauthorized transaction, please check client or server key")
        if self.core_fail_with is not None:
            return self.core_fail_with, {"status_code": str(self.core_fail_with),
                                         "status_message": "Sorry. Our system is recovering from unexpected issues. "
                                                           "Please retry."}
        return None

    def status_answer(self, order_id: str, authorization: str) -> tuple[int, dict]:
        """``GET /v2/{order_id}/status``."""
        self.requests.append(SnapRequest(f"/v2/{order_id}/status", authorization, {}))
        self._hold_if_asked()
        if (refused := self._refused(authorization)) is not None:
            return refused
        with self._lock:
            transaction = copy.deepcopy(self.transactions.get(order_id))
        if transaction is None:
            return self._error(404, "Transaction doesn't exist.")
        answer = _recorded("status_settlement")
        for name in ("settlement_time", "va_numbers", "payment_amounts"):
            answer.pop(name, None)
        refunded, refund_list = transaction.pop("refunded"), transaction.pop("refund_list")
        answer.update(transaction)
        status_code = _STATUS_CODES.get(answer["transaction_status"], "200")
        answer["status_code"] = status_code
        answer["status_message"] = "Success, transaction is found"
        answer["signature_key"] = hashlib.sha512(
            f"{order_id}{status_code}{answer['gross_amount']}{self.server_key}".encode()).hexdigest()
        if refund_list:
            answer["refund_amount"] = f"{refunded:.2f}"
            answer["refunds"] = refund_list
        return 200, answer

    def refund_answer(self, order_id: str, authorization: str, body: dict) -> tuple[int, dict]:
        """``POST /v2/{order_id}/refund``: the work is done (or refused) before any ``core_delay``."""
        self.requests.append(SnapRequest(f"/v2/{order_id}/refund", authorization, body))
        self._hold_if_asked()
        if (refused := self._refused(authorization)) is not None:
            return refused
        key, amount = body.get("refund_key"), body.get("amount")
        with self._lock:
            self.refunds.append({"order_id": order_id, "refund_key": key, "amount": amount,
                                 "reason": body.get("reason")})
            transaction = self.transactions.get(order_id)
            if transaction is None:
                return self._error(404, "Transaction doesn't exist.")
            if isinstance(key, str) and (order_id, key) in self._answers_by_key:
                return 200, copy.deepcopy(self._answers_by_key[(order_id, key)])
            if self.refuse_refunds or transaction["transaction_status"] not in ("settlement", "capture", "partial_refund"):
                return self._error(412, "Merchant cannot modify the status of the transaction")
            gross = Decimal(transaction["gross_amount"])
            if amount is not None and not isinstance(amount, int):
                return self._error(400, "amount must be a whole number")
            amount = gross if amount is None else Decimal(amount)
            if amount <= 0 or transaction["refunded"] + amount > gross:
                return self._error(412, "Merchant cannot modify the status of the transaction")
            self.refunds_created += 1
            refund_id = self.refunds_created
            key = key if isinstance(key, str) else str(uuid.uuid4())
            transaction["refunded"] += amount
            transaction["transaction_status"] = "refund" if transaction["refunded"] == gross else "partial_refund"
            transaction["refund_list"].append({
                "refund_chargeback_id": refund_id, "refund_amount": f"{amount:.2f}",
                "created_at": "2026-11-27 10:00:00", "reason": body.get("reason") or "", "refund_key": key,
                "refund_method": ""})
            answer = _recorded("refund_succeeded") | {
                "order_id": order_id, "transaction_id": transaction["transaction_id"],
                "payment_type": transaction["payment_type"], "transaction_time": transaction["transaction_time"],
                "transaction_status": transaction["transaction_status"], "gross_amount": transaction["gross_amount"],
                "refund_chargeback_id": refund_id, "refund_amount": f"{amount:.2f}", "refund_key": key}
            self._answers_by_key[(order_id, key)] = copy.deepcopy(answer)
            return 200, answer

    def _hold_if_asked(self) -> None:
        """The ``hold`` switch, for Core API calls as for Snap's: the test looks at the database meanwhile."""
        if self.hold:
            self.arrived.set()
            self.release.wait(timeout=30)

    def wait_before_answering(self) -> None:
        """The ``core_delay`` switch (cut short when the stand-in stops)."""
        if self.core_delay:
            pause(self.core_delay, self._stopping)

    @property
    def snap_url(self) -> str:
        return f"{self.base_url}/snap/v1"

    def answer(self, path: str, authorization: str, body: dict) -> tuple[int, dict]:
        self.requests.append(SnapRequest(path, authorization, body))
        if self.hold:
            self.arrived.set()
            self.release.wait(timeout=30)
        expected = "Basic " + base64.b64encode(f"{self.server_key}:".encode()).decode()
        if authorization != expected:
            return 401, {"error_messages": [
                "Access denied due to unauthorized transaction, please check client or server key",
                "Visit https://snap-docs.midtrans.com/#request-headers for more details"]}
        if self.fail_with is not None:
            return self.fail_with, {"error_messages": ["Sorry, we encountered internal server error. We will fix "
                                                       "this soon."]}
        details = body.get("transaction_details") or {}
        order_id, gross_amount = details.get("order_id"), details.get("gross_amount")
        if not isinstance(order_id, str) or not isinstance(gross_amount, int):
            return 400, {"error_messages": ["transaction_details.gross_amount is required",
                                            "transaction_details.order_id is required"]}
        items = body.get("item_details") or []
        if items and sum(item["price"] * item["quantity"] for item in items) != gross_amount:
            return 400, {"error_messages": ["transaction_details.gross_amount is not equal to the sum of item_details"]}
        if order_id in self.order_ids:
            return 400, {"error_messages": ["transaction_details.order_id sudah digunakan"]}
        self.order_ids.add(order_id)
        token = str(uuid.uuid4())
        return 201, {"token": token, "redirect_url": f"{self.base_url}/snap/v4/redirection/{token}"}


def _handler(standin: SnapStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {}
            authorization = self.headers.get("authorization", "")
            refund = _REFUND_PATH.match(self.path)
            if refund:
                status, answer = standin.refund_answer(refund["order_id"], authorization,
                                                       body if isinstance(body, dict) else {})
                standin.wait_before_answering()
                self._answer_core(status, answer)
                return
            if self.path != "/snap/v1/transactions":
                status, answer = 404, {"error_messages": ["Not found"]}
            else:
                status, answer = standin.answer(self.path, authorization, body)
            self._send(status, json.dumps(answer).encode())

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            found = _STATUS_PATH.match(self.path.split("?", 1)[0])
            if not found:
                self._send(404, json.dumps({"status_code": "404", "status_message": "Not found"}).encode())
                return
            status, answer = standin.status_answer(found["order_id"], self.headers.get("authorization", ""))
            standin.wait_before_answering()
            self._answer_core(status, answer)

        def _answer_core(self, status: int, answer: dict) -> None:
            if standin.not_json:
                self._send(200, b"<html><body>Service temporarily unavailable</body></html>", "text/html")
            else:
                self._send(status, json.dumps(answer).encode())

        def _send(self, status: int, data: bytes, content_type: str = "application/json") -> None:
            try:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test): what it missed is the point

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep test output quiet
            pass

    return Handler


@contextmanager
def snap_standin(server_key: str) -> Iterator[SnapStandIn]:
    """A running stand-in on a free port of 127.0.0.1, stopped (and its thread joined) afterwards."""
    standin = SnapStandIn(server_key=server_key)

    def release_held_requests() -> None:
        standin.release.set()
        standin._stopping.set()

    with serving(_handler(standin), "snap-standin", release_held_requests) as port:
        standin.port = port
        yield standin
