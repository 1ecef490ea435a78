"""Small pieces shared by the command modules: integer types and comma-separated lists."""

from __future__ import annotations

from urgentbench.validation import cli_int

#: argparse types of the integer options (every one is checked: ``--jobs 0`` is refused).
POSITIVE = cli_int(1)
NON_NEGATIVE = cli_int(0)


def split_list(value: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; None for an empty or missing value."""
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def plural(n: int, word: str) -> str:
    """``n`` and ``word``, plural unless ``n`` is 1 (``1,024 rows``)."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")
