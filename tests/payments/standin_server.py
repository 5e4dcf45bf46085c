"""What the gateways' local stand-ins share: an HTTP server on a free port of 127.0.0.1, in a thread of its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], name: str, before_stop: Callable[[], None]) -> Iterator[int]:
    """Serve ``handler`` until the block ends (also when a test fails), yielding the port. ``before_stop`` runs
    first, so that a request the stand-in holds (a delay, a hold) returns and the server can shut down."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        before_stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def pause(seconds: float, stopping: threading.Event) -> None:
    """Wait ``seconds`` (a slow gateway), cut short when ``stopping`` is set. In small sleeps rather than
    ``stopping.wait(seconds)``: under libfaketime (.ci/clock-edges) a timed wait on a condition never returns."""
    deadline = time.monotonic() + seconds
    while not stopping.is_set() and time.monotonic() < deadline:
        time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
