"""Addresses we redirect to after a form or a switch: only paths on this site."""

from __future__ import annotations

from urllib.parse import quote


def safe_local_path(target: object) -> str | None:
    """``target`` if it is a path on this site (never ``//host``, ``/\\host`` or a full URL), else None."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(character) < 0x20 or ord(character) == 0x7F for character in target):
        return None
    # Re-quote what a hand-made link may carry unquoted, so that the Location header is plain ASCII.
    return quote(target[:500], safe="/?&=#%:@!$'()*+,;~-._")
