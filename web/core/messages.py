"""Messages raised by Python code, marked for the catalogs and kept translatable.

``N_("English text")`` is a ``str`` holding the English text, which the JSON API and the logs use as they are
(the API stays English), and which pages translate when they render it with the ``translate`` filter
(``web/core/i18n.py`` holds the catalogs). This module imports nothing of the web stack, so that every
service can mark its messages without pulling in Jinja or ASGI.
"""

from __future__ import annotations

from typing import Any


class Message(str):
    """An English message that a page can show in the reader's language later.

    It *is* the English text (formatted with its parameters), so code that treats it as a string (the JSON
    API, logs, tests comparing text) sees English; ``translate`` looks up ``msgid`` and fills in ``params``.
    """

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, params: dict[str, Any] | None = None) -> Message:
        params = dict(params or {})
        instance = super().__new__(cls, msgid % params if params else msgid)
        instance.msgid = msgid
        instance.params = params
        return instance

    def __reduce__(self):  # pickling keeps the message id and parameters
        return (Message, (self.msgid, self.params))


def N_(msgid: str, **params: Any) -> Message:
    """Mark ``msgid`` for the catalogs (``N_`` is one of the extractor's keywords) and keep it translatable.

    Parameters use Python's named placeholders: ``N_("Use at most %(count)d characters.", count=80)``.
    """
    return Message(msgid, params)
