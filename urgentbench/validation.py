"""The one check for integer options, shared by the command line, the runner and the plug-ins.

:func:`require_int` checks a value given in Python (a plug-in option, a library argument),
:func:`parse_int` one given as text (an environment variable), and :func:`cli_int` is the
``argparse`` type of every integer command-line option, so ``--jobs 0`` or ``--limit -1``
is refused with one line before anything runs. :func:`parse_kv` reads ``key=value`` lists.
"""

from __future__ import annotations

import argparse
import numbers
from collections.abc import Callable
from typing import Any


def describe(minimum: int) -> str:
    """``a positive integer`` (minimum 1), else ``an integer >= N`` (``an integer >= 0`` for 0)."""
    if minimum == 1:
        return "a positive integer"
    return f"an integer >= {minimum}"


def require_int(value: Any, name: str, minimum: int = 1, error: Callable[[str], Exception] = ValueError) -> int:
    """Return ``value`` as an ``int`` when it is an integer of at least ``minimum``.

    ``bool`` and non-integral numbers (``2.0`` included) are refused; numpy integers are accepted.

    Args:
        value: The value to check.
        name: How the message names it (``"batch_size"``).
        minimum: The smallest allowed value.
        error: The exception class raised (``ValueError`` by default).

    Raises:
        ValueError: (or ``error``) ``"<name> must be a positive integer, got <value>"``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise error(f"{name} must be {describe(minimum)}, got {value!r}")
    return int(value)


def parse_int(text: str, name: str, minimum: int = 1, error: Callable[[str], Exception] = ValueError) -> int:
    """An integer given as text (command line, environment variable), at least ``minimum``.

    Raises:
        ValueError: (or ``error``) For text that is not an integer or one below ``minimum``.
    """
    try:
        value: int | None = int(str(text).strip())
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise error(f"{name} must be {describe(minimum)}, got {text!r}")
    return value


def cli_int(minimum: int = 1) -> Callable[[str], int]:
    """The ``argparse`` type of an integer option of at least ``minimum``.

    argparse reports a bad value as ``argument --jobs: expected a positive integer, got '0'``
    and exits with status 2.
    """

    def parse(text: str) -> int:
        try:
            return parse_int(text, "value", minimum)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {describe(minimum)}, got {text!r}") from None

    parse.__name__ = "positive_int" if minimum == 1 else "non_negative_int" if minimum == 0 else f"int_from_{minimum}"
    return parse


def cli_fraction(text: str) -> float:
    """The ``argparse`` type of a probability strictly between 0 and 1 (``--alpha``)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text!r}")
    return value


def parse_kv(text: str | None) -> dict[str, Any]:
    """Parse ``k=v,k2=v2`` (values read as YAML scalars) into a dict (``--system-args``, ``--set``).

    Raises:
        ValueError: For an item without ``=``.
    """
    import yaml

    out: dict[str, Any] = {}
    for item in (v.strip() for v in (text or "").split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


__all__ = ["cli_fraction", "cli_int", "describe", "parse_int", "parse_kv", "require_int"]
