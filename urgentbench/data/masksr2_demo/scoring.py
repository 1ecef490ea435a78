"""Scoring the published outputs: every published system (and the unprocessed ``noisy`` row) on its sub-suite.

Afterwards ``urgentbench leaderboard --suite masksr2-demo/<condition>`` ranks them like any
entry. The runner is called in one place, :func:`_score_condition`.
"""

from __future__ import annotations

import logging

from urgentbench.data.masksr2_demo.published import published_systems, store_metadata
from urgentbench.data.masksr2_demo.recipe import CONDITIONS, CORPUS_NAME, condition_name
from urgentbench.pipeline.options import RunOptions
from urgentbench.pipeline.resolve import metrics_for
from urgentbench.pipeline.results import RunReport
from urgentbench.pipeline.specs import MetricSpec, ProducerSpec, directory_producer, system_producer
from urgentbench.runner import run
from urgentbench.suites import Suite, get_suite

logger = logging.getLogger(__name__)


def score_published(
    condition: str = "all", options: RunOptions | None = None, *, include_noisy: bool = True
) -> dict[str, RunReport]:
    """Score the published systems (and the unprocessed ``noisy`` row) on the ``masksr2-demo/*`` suites.

    Args:
        condition: A condition, its suite name, or ``"all"``.
        options: The run's options, passed whole to :func:`urgentbench.runner.run` (results
            folder, workers, metrics (default: each suite's), ``skip_unavailable``, protocol,
            batch size, ...); default :class:`~urgentbench.pipeline.options.RunOptions`.
        include_noisy: Also run the ``noisy`` system (URGENT's unprocessed row).

    Returns:
        Condition -> :class:`~urgentbench.pipeline.results.RunReport`.

    Raises:
        CorpusNotPreparedError: When the corpus is not prepared.
        RunError: For unavailable metrics.
    """
    options = options or RunOptions()
    names = list(CONDITIONS) if condition == "all" else [condition_name(condition)]
    reports = {}
    for name in names:
        suite = get_suite(f"{CORPUS_NAME}/{name}")
        suite.verify()
        suite.check_corpora()
        specs = metrics_for(suite, options)
        ids = [u.id for u in suite.utterances()]
        producers = [system_producer("noisy")] if include_noisy else []
        for display, directory, metadata in published_systems(name):
            producers.append(directory_producer(directory, display, ids, store_metadata(metadata)))
        reports[name] = _score_condition(suite, producers, specs, options)
        logger.info("%s: %d jobs, %d rows", suite.key, reports[name].jobs, reports[name].rows_written)
    return reports


def _score_condition(
    suite: Suite, producers: list[ProducerSpec], specs: list[MetricSpec], options: RunOptions
) -> RunReport:
    """Run the metrics on the producers of one sub-suite (the one call into the runner)."""
    command = options.command or f"urgentbench.data.masksr2_demo.score_published({suite.name.split('/', 1)[1]!r})"
    return run(suite, producers, specs, options.replace(command=command))
