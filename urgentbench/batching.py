"""Batched scoring: one worker processes several jobs and hands each metric all their utterances at once.

The runner's unit of work is a job (one producer on one utterance, with the metrics it
still misses). :func:`process_batch` takes several jobs in one worker and returns exactly
the :class:`~urgentbench.runner.JobResult` list that processing them one by one gives,
except that each metric scores the utterances of all the jobs with one call of
:meth:`Metric.compute_batch <urgentbench.metrics.base.Metric.compute_batch>`, so metrics
with a batched backend (DNSMOS, speaker similarity, Whisper) run their models on batches.

How: each job goes through the worker's ordinary per-job path (reading or producing the
enhanced audio, resampling once per rate, error handling), with every metric replaced by a
stand-in that only records what ``compute`` was given. Then each metric's
``compute_batch`` runs on everything recorded, and the stand-in results are replaced by
the real ones. A metric's row time is its batch time divided by the batch's utterances.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from urgentbench.metrics.base import BatchItem, Metric, MetricError

if TYPE_CHECKING:
    from urgentbench.runner import Job, JobResult, WorkerState

logger = logging.getLogger(__name__)


class _Pending:
    """Placeholder result of a deferred ``compute`` call: its slot in the metric's batch."""

    __slots__ = ("slot",)

    def __init__(self, slot: int):
        self.slot = slot


class _Recorder:
    """Stands in for a set-up metric: ``compute`` records its arguments and returns a placeholder."""

    def __init__(self, metric: Metric):
        self.metric = metric
        self.items: list[BatchItem] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.metric, name)

    def compute(self, estimate: Any, reference: Any, sample_rate: int, *, transcript: str | None = None) -> Any:
        """Record one utterance for the batch."""
        self.items.append(BatchItem(estimate, reference, sample_rate, transcript))
        return _Pending(len(self.items) - 1)


def run_batch(metric: Metric, items: Sequence[BatchItem]) -> list[dict[str, Any] | Exception]:
    """``metric.compute_batch(items)``, falling back to one-at-a-time when the batched call itself fails.

    Returns:
        One entry per item: the result dict or the exception recorded for it.
    """
    if not items:
        return []
    try:
        out = list(metric.compute_batch(items))
        if len(out) != len(items):
            raise RuntimeError(f"compute_batch returned {len(out)} results for {len(items)} utterances")
        return out
    except Exception:
        logger.warning(
            "metric %s: batched scoring failed; scoring the %d utterances one at a time",
            getattr(metric, "name", "?"),
            len(items),
            exc_info=logger.isEnabledFor(logging.DEBUG),
        )
        return Metric.compute_batch(metric, items)


def _row(index: int, outcome: dict[str, Any] | Exception, seconds: float) -> tuple[int, dict | None, str | None, float]:
    """A JobResult row ``(metric index, result, error, seconds)`` from one batch outcome."""
    from urgentbench.runner import _one_line

    if isinstance(outcome, MetricError):
        return index, None, str(outcome).splitlines()[0] if str(outcome).strip() else "MetricError", seconds
    if isinstance(outcome, Exception):
        logger.debug("metric crashed: %s", "".join(traceback.format_exception(outcome)))
        return index, None, _one_line(outcome), seconds
    return index, outcome, None, seconds


def process_batch(
    state: WorkerState, jobs: Sequence[Job], process_one: Callable[[Job], JobResult]
) -> list[JobResult]:
    """Process ``jobs`` in one worker, each metric scoring all their utterances as one batch.

    Args:
        state: The worker's state (loaded systems and metrics), already locked by the caller.
        jobs: The jobs; results come back in the same order, one per job.
        process_one: The worker's per-job path (``WorkerState._process``).

    Returns:
        One :class:`~urgentbench.runner.JobResult` per job, equal (to 1e-6; Whisper:
        identical transcripts) to what ``process_one`` alone returns.
    """
    if len(jobs) <= 1 or (state.ctx.metric_at_a_time and len({j.metrics for j in jobs}) > 1):
        return [process_one(job) for job in jobs]
    indices = sorted({i for job in jobs for i in job.metrics})
    recorders: dict[int, _Recorder] = {}
    setup_seconds = 0.0
    for index in indices:
        try:
            metric, took = state.metric(index)
        except Exception:  # the per-job path records the set-up failure for each job
            continue
        setup_seconds += took
        recorders[index] = _Recorder(metric)
        state.metrics[index] = recorders[index]  # type: ignore[assignment]
    try:
        results = [process_one(job) for job in jobs]
    finally:
        for index, recorder in recorders.items():
            if state.metrics.get(index) is recorder:  # not released meanwhile
                state.metrics[index] = recorder.metric
    if results:
        results[0].setup_seconds += setup_seconds
    for index, recorder in recorders.items():
        start = time.perf_counter()
        outcomes = run_batch(recorder.metric, recorder.items)
        share = (time.perf_counter() - start) / max(1, len(recorder.items))
        for res in results:
            for k, (m_index, value, error, seconds) in enumerate(res.results):
                if m_index == index and isinstance(value, _Pending):
                    res.results[k] = _row(index, outcomes[value.slot], seconds + share)
                    res.busy_seconds += share
    return results
