"""Results: the single writer that stores each job's rows as they arrive, and what the run did.

The parent process is the only writer of the SQLite store: one transaction per job, so a
run killed at any point resumes without losing or duplicating anything. A metric whose
set-up failed in a worker is a run-level error: reported once, nothing stored for it,
and left out of the jobs still to plan.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from urgentbench.pipeline.plan import Planner
from urgentbench.pipeline.worker import JobResult
from urgentbench.store import METRIC, ResultStore, ScoreRow

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


class ResultWriter:
    """Writes each :class:`~urgentbench.pipeline.worker.JobResult` to the store and counts it in the report.

    Args:
        store: The open store.
        run_id: The run the rows belong to.
        planner: The run's planner (store keys; told about failed set-ups and enhancements).
        report: The report to fill in.
        progress: Called with 1 for each job completed (a progress bar's ``update``).
    """

    def __init__(self, store: ResultStore, run_id: int, planner: Planner, report: RunReport,
                 progress: Callable[[int], object]):
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
        self.progress(int(finished))
