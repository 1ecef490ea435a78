"""Results: the single writer that stores each job's rows as they arrive, what the run did, and its progress bar.

The parent process is the only writer of the SQLite store: one transaction per job, so a
run killed at any point resumes without losing or duplicating anything. A metric whose
set-up failed in a worker is a run-level error: reported once, nothing stored for it,
and left out of the jobs still to plan.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from urgentbench.layout import store_path
from urgentbench.pipeline.plan import Job, Planner
from urgentbench.pipeline.specs import MetricSpec, ProducerSpec, score_key
from urgentbench.pipeline.worker import JobResult
from urgentbench.store import METRIC, ResultStore, ScoreRow
from urgentbench.suites import Suite

#: One logger for the pipeline: users see "urgentbench.pipeline" whichever stage speaks.
logger = logging.getLogger(__package__)


@dataclass
class RunReport:
    """What a run did."""

    run_id: int
    jobs: int
    rows_written: int
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Jobs whose results came back (each exactly once).
    jobs_done: int = 0
    #: Worker processes (local) or worker threads (Dask) used.
    workers: int = 1
    #: Sum of the metric kernel seconds of the rows written.
    kernel_seconds: float = 0.0
    #: Sum of the model set-up seconds over workers.
    setup_seconds: float = 0.0
    #: Sum of the workers' seconds spent on jobs.
    busy_seconds: float = 0.0
    #: Metric name -> why it could not be set up, with the fix (a run-level error: nothing
    #: was stored for it, and later jobs left it out; the command exits non-zero).
    setup_failures: dict[str, str] = field(default_factory=dict)


class RunProgress:
    """One progress bar for a whole run: the (system, utterance) pairs with work, with the ETA.

    A pair counts as done when its last job is back: one job, or (metric at a time) one
    per phase, each advancing the bar by its share; a pair whose enhancement failed is done
    at once (later phases skip it). Nothing to compute: no bar.

    Args:
        planner: The run's planner (counts the jobs; knows the failed enhancements).
        metric_at_a_time: Whether the run has phases.
        enabled: Show the bar (``RunOptions.progress``).
        desc: The bar's label.
    """

    def __init__(self, planner: Planner, metric_at_a_time: bool, enabled: bool, desc: str):
        from tqdm import tqdm

        self.planner = planner
        per_pair: dict[tuple[int, str], int] | None = {} if metric_at_a_time else None
        #: Jobs of the run.
        self.jobs = planner.count(metric_at_a_time, per_pair)
        #: (system, utterance) pairs with work.
        self.pairs = len(per_pair) if per_pair is not None else self.jobs
        #: Pair -> [jobs not back yet, jobs]; only with phases (otherwise a pair is one job).
        self._left = {pair: [n, n] for pair, n in per_pair.items()} if per_pair is not None else None
        self.bar = tqdm(
            total=self.pairs, disable=not enabled or not self.pairs, unit="utt", desc=desc, dynamic_ncols=True,
            # with phases a pair advances by shares: the count shows tenths
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.DIGITSf}/{total} utt [{elapsed}<{remaining}, {rate_fmt}]"
                       .replace("DIGITS", "1" if metric_at_a_time else "0"),
        )

    def done(self, job: Job) -> None:
        """``job`` is back (every part of it): advance by its share of its pair."""
        if self._left is None:
            self.bar.update(1)
            return
        pair = (job.producer, job.utterance["id"])
        left = self._left.get(pair)
        if left is None:
            return
        whole = pair in self.planner.failed_enhancement  # later phases skip it: done now
        share = left[0] if whole else 1
        left[0] -= share
        if left[0] <= 0:
            del self._left[pair]
        self.bar.update(share / left[1])

    def close(self, finished: bool) -> None:
        """Close the bar (full when the run finished: shares may not add up to exactly 1)."""
        if finished and self.bar.n < self.pairs:
            self.bar.update(self.pairs - self.bar.n)
        self.bar.close()


class ResultWriter:
    """Writes each :class:`~urgentbench.pipeline.worker.JobResult` to the store and counts it in the report.

    Args:
        store: The open store.
        run_id: The run the rows belong to.
        planner: The run's planner (store keys; told about failed set-ups and enhancements).
        report: The report to fill in.
        progress: Called with each job once it is completed (all its parts back), e.g.
            :meth:`RunProgress.done`.
    """

    def __init__(self, store: ResultStore, run_id: int, planner: Planner, report: RunReport,
                 progress: Callable[[Job], object]):
        self.store, self.run_id, self.planner, self.report, self.progress = store, run_id, planner, report, progress

    def __call__(self, res: JobResult) -> None:
        """Store one job's result (every row in one transaction) and update the report."""
        job, planner, report = res.job, self.planner, self.report
        keys = planner.keys[job.producer]
        utt_id = job.utterance["id"]
        # whose failure an error row is: the participant's when there is no usable output
        failure = res.enhance_failure if res.enhance_error else METRIC
        rows = [
            ScoreRow(keys[i], utt_id, result, error, seconds, failure if error else None)
            for i, result, error, seconds in res.results
        ]
        if res.enhance_error and job.enhance_only:
            # record the failure once for every metric still missing; later phases skip the pair
            planner.failed_enhancement.add((job.producer, utt_id))
            rows = [ScoreRow(keys[m], utt_id, None, res.enhance_error, 0.0, res.enhance_failure) for m in job.pending]
        if rows:
            self.store.write(rows, self.run_id)
        finished = planner.part_done(job)
        report.jobs_done += finished
        report.rows_written += len(rows)
        report.kernel_seconds += sum(r.seconds for r in rows if r.error is None)
        report.setup_seconds += res.setup_seconds
        report.busy_seconds += res.busy_seconds
        for msg in res.messages:
            logger.warning(msg)
            report.errors.append(msg)
        name = planner.producers[job.producer].name
        for row in rows:
            if row.error:
                report.errors.append(f"{name}/{row.utt_id}/{row.key.metric}: {row.error}")
        for index, message in res.setup_failures.items():  # reported once, never stored
            planner.failed_setup.add(index)
            metric = planner.metrics[index].name
            if metric not in report.setup_failures:
                report.setup_failures[metric] = message
                logger.error("%s; nothing is stored for it, the other metrics go on", message)
        if finished:
            self.progress(job)


def metric_seconds(
    store: ResultStore, suite: Suite, producers: list[ProducerSpec], metrics: list[MetricSpec], run_id: int
) -> dict[str, tuple[float, int]]:
    """Metric name -> (kernel seconds, rows) of the rows run ``run_id`` wrote for ``producers``, from the store.

    A metric with no row written by the run (everything was stored already) is left out.
    """
    out: dict[str, tuple[float, int]] = {}
    for metric in metrics:
        seconds, n = 0.0, 0
        for producer in producers:
            key = score_key(suite, producer, metric)
            runs = store.row_runs(key)
            for row in store.rows(key):
                if runs.get(row.utt_id) == run_id:
                    seconds += row.seconds
                    n += 1
        if n:
            out[metric.name] = (seconds, n)
    return out


def timing_line(seconds: dict[str, tuple[float, int]]) -> str:
    """``time per metric: pesq 1.2 s (4 × 0.31 s) · estoi 0.4 s (4 × 0.10 s)`` (kernel seconds of the rows written)."""
    if not seconds:
        return "time per metric: nothing computed in this run (the results were stored already)"
    parts = [f"{name} {total:.1f} s ({n} × {total / n:.2f} s)" for name, (total, n) in seconds.items()]
    return "time per metric (kernel seconds of this run's rows): " + " · ".join(parts)


def results_line(results_dir: str | os.PathLike, suite: str, protocol: str | None = None) -> str:
    """Where the results are and the command that ranks them.

    E.g. ``results: results/results.sqlite · leaderboard: urgentbench leaderboard --suite demo``.
    """
    options = "" if Path(results_dir) == Path("results") else f" --results-dir {shlex.quote(str(results_dir))}"
    options += f" --protocol {protocol}" if protocol else ""
    return f"results: {store_path(results_dir)} · leaderboard: urgentbench leaderboard --suite {suite}{options}"

