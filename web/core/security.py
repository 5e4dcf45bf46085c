"""Security headers on every response and the CSRF configuration.

The Content-Security-Policy allows only our own origin: it works because htmx and every script and style
are served from static/ (no inline script, no CDN).
"""

from __future__ import annotations

from litestar.config.csrf import CSRFConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from web.settings import get_settings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def _secure_cookie(value: bytes) -> bytes:
    return value if b"; secure" in value.lower() else value + b"; Secure"


def security_headers_middleware(app: ASGIApp) -> ASGIApp:
    """Adds the security headers to every response. Over HTTPS every cookie is marked Secure (the CSRF
    cookie's configuration cannot know the scheme of each request). A response to a signed-in person is
    never stored by a browser or a proxy (``Cache-Control: no-store``): after a logout, Back must not show
    their bookings, and a shared computer at a front desk must not keep them."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                https = scope.get("scheme") == "https"
                signed_in = scope.get("user") is not None
                headers = []
                for name, value in message.get("headers", []):
                    lowered = name.lower()
                    if lowered == b"set-cookie" and https:
                        value = _secure_cookie(value)
                    if lowered == b"cache-control" and signed_in:
                        continue
                    headers.append((name, value))
                present = {name.lower() for name, _ in headers}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                if https:
                    extra.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
                if signed_in:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*headers, *extra]
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def csrf_config() -> CSRFConfig:
    """Double-submit cookie on every unsafe request to a page. The JSON API is excluded: it accepts only
    bearer tokens (never the session cookie), which a cross-site form cannot send."""
    settings = get_settings()
    return CSRFConfig(
        secret=settings.secret_key,
        cookie_name="vb_csrf",
        header_name="x-csrftoken",
        cookie_secure=settings.cookie_secure,
        # The pages carry the token themselves (the form field, and hx-headers on <body>): no script
        # needs to read the cookie.
        cookie_httponly=True,
        cookie_samesite="lax",
        exclude=["^/api/"],
    )
