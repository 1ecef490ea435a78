"""Thread-count resolution shared by the model-based metrics.

The runner starts one worker process per job and sets ``URGENTBENCH_THREADS`` to
``cores // jobs`` in each, so that two workers on two cores do not each start two
inference threads. A metric's own ``threads`` option, when given, wins.
"""

from __future__ import annotations

import os

#: Environment variable holding the thread budget of one worker.
THREADS_ENV = "URGENTBENCH_THREADS"


def resolve_threads(option: int | None) -> int:
    """Return the number of inference threads to use.

    Args:
        option: The metric's explicit setting; None defers to ``$URGENTBENCH_THREADS``.

    Returns:
        A positive thread count, or 0 meaning "the library's default" when neither the
        option nor the environment says anything.

    Raises:
        ValueError: When the option or the environment variable is not a positive integer.
    """
    from urgentbench.validation import parse_int, require_int

    if option is not None:
        return require_int(option, "threads")
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return 0
    return parse_int(raw, f"${THREADS_ENV}")
