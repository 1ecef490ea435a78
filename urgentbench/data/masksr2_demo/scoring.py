"""Scoring the published outputs: every published system (and the unprocessed ``noisy`` row) on its sub-suite.

Afterwards ``urgentbench leaderboard --suite masksr2-demo/<condition>`` ranks them like any
entry. The runner is called in one place, :func:`_score_condition`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from urgentbench import runner
from urgentbench.data.masksr2_demo.published import published_systems, store_metadata
from urgentbench.data.masksr2_demo.recipe import CONDITIONS, CORPUS_NAME, condition_name
from urgentbench.suites import Suite, get_suite

logger = logging.getLogger(__name__)


def score_published(
    condition: str = "all",
    results_dir: str | os.PathLike = "results",
    jobs: int = 1,
    metrics: list[str] | None = None,
    *,
    include_noisy: bool = True,
    skip_unavailable: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Score the published systems (and the unprocessed ``noisy`` row) on the ``masksr2-demo/*`` suites.

    Args:
        condition: A condition, its suite name, or ``"all"``.
        results_dir: Results folder (SQLite store and cached inputs).
        jobs: Worker processes.
        metrics: Metric names (default: each suite's).
        include_noisy: Also run the ``noisy`` system (URGENT's unprocessed row).
        skip_unavailable: Skip metrics whose packages are missing instead of failing.
        progress: Show progress bars.

    Returns:
        Condition -> :class:`urgentbench.runner.RunReport`.

    Raises:
        CorpusNotPreparedError: When the corpus is not prepared.
        RunError: For unavailable metrics.
    """
    names = list(CONDITIONS) if condition == "all" else [condition_name(condition)]
    reports = {}
    for name in names:
        suite = get_suite(f"{CORPUS_NAME}/{name}")
        suite.verify()
        suite.check_corpora()
        specs = runner.resolve_metrics(metrics, suite, skip_unavailable)
        ids = [u.id for u in suite.utterances()]
        producers = [runner.system_producer("noisy")] if include_noisy else []
        for display, directory, metadata in published_systems(name):
            producers.append(runner.directory_producer(directory, display, ids, store_metadata(metadata)))
        reports[name] = _score_condition(suite, producers, specs, results_dir, jobs, progress)
        logger.info("%s: %d jobs, %d rows", suite.key, reports[name].jobs, reports[name].rows_written)
    return reports


def _score_condition(
    suite: Suite,
    producers: list[runner.ProducerSpec],
    specs: list[runner.MetricSpec],
    results_dir: str | os.PathLike,
    jobs: int,
    progress: bool,
) -> Any:
    """Run the metrics on the producers of one sub-suite (the one call into the runner)."""
    return runner.run(
        suite,
        producers,
        specs,
        results_dir,
        jobs=jobs,
        command=f"urgentbench.data.masksr2_demo.score_published({suite.name.split('/', 1)[1]!r})",
        progress=progress,
    )
