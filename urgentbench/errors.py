"""How exceptions become the one-line reasons stored with failures and shown to users."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """``"<ExceptionType>: <first line of the message>"`` (or just the type when the message is empty).

    A message given as bytes (C extensions such as ``pesq`` raise those) is decoded as UTF-8.
    """
    message = exc.args[0] if len(exc.args) == 1 else None
    text = (message.decode("utf-8", "replace") if isinstance(message, bytes) else str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def squash(text: str) -> str:
    """Collapse all whitespace (newlines included) in ``text`` to single spaces."""
    return " ".join(text.split())
