"""The ``urgentbench`` command: one module per command group, each adding its own sub-commands.

- :mod:`.main`: the parser, ``main`` (the console entry point) and the one-line errors;
- :mod:`.options`: the shared run/score options, made from :class:`~urgentbench.pipeline.options.RunOptions`;
- :mod:`.scoring`: ``run``, ``score``, ``check``, ``enhance``;
- :mod:`.listings`: ``ls``, ``protocols``;
- :mod:`.reports`: ``leaderboard``, ``table``, ``export``;
- :mod:`.data`: ``simulate``, ``data ...``, ``suite import``;
- :mod:`.assets` and :mod:`.store`: ``assets ...``, ``store ...``.
"""

from __future__ import annotations

from urgentbench.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
