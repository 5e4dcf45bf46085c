"""A local stand-in for Midtrans Snap's HTTP API on 127.0.0.1, for offline tests of the real midtransclient.

It answers ``POST /snap/v1/transactions`` as Snap does: HTTP basic auth with the server key as user name,
201 ``{"token", "redirect_url"}`` for a valid body, 401 / 400 with ``error_messages`` otherwise. It records
every request, can be told to fail (503) and can hold a request until released, so a test can look at
the database while the app waits for the gateway.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
            if self.path != "/snap/v1/transactions":
                status, answer = 404, {"error_messages": ["Not found"]}
            else:
                status, answer = standin.answer(self.path, self.headers.get("authorization", ""), body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep test output quiet
            pass

    return Handler


@contextmanager
def snap_standin(server_key: str) -> Iterator[SnapStandIn]:
    """A running stand-in on a free port of 127.0.0.1, stopped (and its thread joined) afterwards."""
    standin = SnapStandIn(server_key=server_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standin))
    server.daemon_threads = True
    standin.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="snap-standin", daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        standin.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
