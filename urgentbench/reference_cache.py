"""Reference-side metric state, computed once per utterance and shared by every system.

Some metrics spend half their time on the reference alone (MCD: the reference's SPTK
mel-cepstra). In a leaderboard run every system is scored against the same reference, so
that half is the same for all of them. A metric that sets
:attr:`~urgentbench.metrics.base.Metric.reference_state_cacheable` splits its work into
:meth:`~urgentbench.metrics.base.Metric.reference_state` and
:meth:`~urgentbench.metrics.base.Metric.compute_with_state`; the runner keeps the state in
``<results dir>/reference-state/`` as one ``.npz`` file per utterance, written atomically,
so it is shared by the workers of a run, by later runs (a system added next month) and by
Dask workers on a shared file system.

The folder of a state names everything it depends on: the suite (name, version and
manifest digest), the metric's name, version and options hash (which includes its model
checkpoints' sha256) and the working rate. A file that cannot be read is recomputed and
replaced, never trusted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from urgentbench.layout import REFERENCE_STATE_DIR

logger = logging.getLogger(__name__)

#: Sub-folder of the results directory (named by :mod:`urgentbench.layout`).
FOLDER = REFERENCE_STATE_DIR


def _safe(name: str) -> str:
    """A file-name-safe form of ``name`` that stays unique (a short digest is appended when changed)."""
    cleaned = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)
    if cleaned == name:
        return name
    return f"{cleaned}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


class ReferenceStateCache:
    """One worker's access to the reference-state files of a results directory.

    Args:
        root: ``<results dir>/reference-state``; None disables the files (state is then
            recomputed for every system, as without a cache).
        suite_id: Identifies the suite's references (``name@version`` plus manifest digest).
    """

    def __init__(self, root: Path | None, suite_id: str):
        self.root = root
        self.suite_id = suite_id
        self.hits = 0
        self.misses = 0

    def path(self, metric_id: str, rate: int, utt_id: str) -> Path | None:
        """Where the state of ``utt_id`` for a metric (``name-vVERSION-OPTIONSHASH``) lives."""
        if self.root is None:
            return None
        return self.root / _safe(self.suite_id) / f"{_safe(metric_id)}-{rate}" / f"{_safe(utt_id)}.npz"

    def get(self, metric: Any, metric_id: str, utt_id: str, reference: np.ndarray, rate: int) -> dict[str, np.ndarray]:
        """The reference state, from its file when present and readable, else computed and stored.

        Raises:
            MetricError: From ``metric.reference_state`` (the reference cannot be analysed).
        """
        path = self.path(metric_id, rate, utt_id)
        if path is not None and path.exists():
            try:
                with np.load(path, allow_pickle=False) as data:
                    state = {k: data[k] for k in data.files}
                self.hits += 1
                return state
            except Exception as exc:  # a damaged file is recomputed, never trusted
                logger.warning("%s: unreadable reference state (%s); recomputing", path, exc)
        state = metric.reference_state(reference, rate)
        self.misses += 1
        if path is not None:
            self._write(path, state)
        return state

    @staticmethod
    def _write(path: Path, state: dict[str, np.ndarray]) -> None:
        """Write atomically (a temporary file renamed into place): readers never see half a file."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.part")
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.savez(fh, **state)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:  # a read-only or full disk costs speed, not results
            logger.warning("%s: cannot store reference state (%s)", path, exc)
