"""The ``urgentbench`` command: one module per command group, each adding its own sub-commands.

- :mod:`.command`: the parser, ``main`` (the console entry point) and the one-line errors;
- :mod:`.options`: the shared run/score options, made from :class:`~urgentbench.pipeline.options.RunOptions`;
- :mod:`.scoring`: ``run``, ``score``, ``check``, ``enhance``;
- :mod:`.listings`: ``ls``, ``protocols``;
- :mod:`.reports`: ``leaderboard``, ``table``, ``export``;
- :mod:`.data`: ``simulate``, ``data ...``, ``suite import``;
- :mod:`.assets` and :mod:`.store`: ``assets ...``, ``store ...``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the ``urgentbench`` command (the console entry point); returns the exit code.

    The command modules are imported here, not when this package is: a scoring worker
    process re-imports the ``urgentbench`` script, which imports this package, and must
    not pay for every command's imports (about 0.4 s each).
    """
    import os
    import sys

    from urgentbench.cli.command import main as run_main

    try:
        return run_main(argv)
    except BrokenPipeError:  # `urgentbench ls | head`: the reader has gone; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def build_parser() -> Any:
    """The ``urgentbench`` argument parser (:func:`urgentbench.cli.command.build_parser`)."""
    from urgentbench.cli.command import build_parser as build

    return build()
