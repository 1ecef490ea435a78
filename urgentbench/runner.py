"""The runner: enhance (or read) outputs and score them, in parallel, resumably.

Work is split into one job per (producer, utterance): a producer is a system plug-in or
a directory of already-enhanced files. A worker prepares each job once (the noisy input
and reference rendered or read from the cache, the enhanced output obtained once), then
each metric still missing scores the prepared items of its batch, at the rates it needs
(each signal resampled once per rate). Heavy models are loaded once per worker. Results
go back to the parent, the single writer of the SQLite store, one transaction per job,
so a run killed at any point resumes without losing or duplicating anything.

Jobs run in-process (``jobs=1``), on a local pool of spawned processes (the default; no
Dask import), or on a Dask cluster (``scheduler=``). Jobs are planned producer by
producer while the manifest is streamed (only one producer's stored ids are held) and
only a bounded window of jobs is in flight, so memory does not grow with the suite's
audio. ``metric_at_a_time`` runs the metrics one after another (outer loop), each worker
holding one model at a time, for machines too small for all of them.

Each stage has its own module in :mod:`urgentbench.pipeline`; this module only ties them
together. The names below are importable from here as they always were.
"""

from __future__ import annotations

import time

from urgentbench.layout import AUDIO_EXTENSIONS, find_output, input_paths, store_path
from urgentbench.pipeline.backends import make_backend
from urgentbench.pipeline.errors import MetricSetupError, RunError
from urgentbench.pipeline.options import RunOptions
from urgentbench.pipeline.plan import Job, Planner, iter_jobs, iter_utterances
from urgentbench.pipeline.prepare import (
    load_inputs,
    max_output_bytes,
    read_output,
    run_system,
    silence_problem,
)
from urgentbench.pipeline.provenance import collect_provenance
from urgentbench.pipeline.resolve import resolve_metrics
from urgentbench.pipeline.results import ResultWriter, RunProgress, RunReport
from urgentbench.pipeline.specs import (
    MetricSpec,
    ProducerSpec,
    directory_producer,
    score_key,
    system_producer,
)
from urgentbench.pipeline.worker import JobResult, WorkerContext, WorkerState
from urgentbench.store import ResultStore
from urgentbench.suites import Suite

__all__ = [
    "AUDIO_EXTENSIONS", "Job", "JobResult", "MetricSetupError", "MetricSpec", "ProducerSpec", "RunError",
    "RunOptions", "RunReport", "WorkerContext", "WorkerState", "directory_producer", "find_output", "input_paths",
    "iter_jobs", "iter_utterances", "load_inputs", "max_output_bytes", "read_output", "resolve_metrics", "run",
    "run_system", "score_key", "silence_problem", "system_producer",
]


def run(suite: Suite, producers: list[ProducerSpec], metrics: list[MetricSpec], options: RunOptions) -> RunReport:
    """Enhance and score ``suite`` for every producer, computing only what is missing.

    The manifest is streamed and jobs are submitted lazily (a bounded number in flight);
    results are written to the store, one transaction per job, as they arrive, so memory
    does not grow with the suite and an interrupted run resumes where it stopped.

    Args:
        suite: The suite (its manifest is verified against the card's sha256).
        producers: Systems and/or output directories.
        metrics: Metrics to compute (:func:`~urgentbench.pipeline.resolve.resolve_metrics`).
        options: Where and how (:class:`~urgentbench.pipeline.options.RunOptions`): the
            results folder, workers or Dask scheduler, limit, batch size, metric-at-a-time,
            reference-state cache, threads per worker, progress bar, the command line and
            protocol recorded in the run's provenance.

    Returns:
        A :class:`~urgentbench.pipeline.results.RunReport`.

    Raises:
        RunError: When a Dask cluster cannot be reached (bad values were refused when
            ``options`` was made).
    """
    results_dir = options.results_dir.resolve()
    start = time.perf_counter()
    with ResultStore(store_path(results_dir)) as store:
        for p in producers:
            store.register_system(suite.name, suite.version, p.name, p.config_hash, p.display_name, dict(p.metadata))
        planner = Planner(store, suite, producers, metrics, results_dir, options.limit, options.retry_errors)
        n = len(producers)
        progress = RunProgress(planner, options.metric_at_a_time, options.progress,
                               f"{suite.key} ({n} system{'' if n == 1 else 's'})")
        total = progress.jobs
        ctx = WorkerContext(
            suite_folder=str(suite.folder),
            suite_key=suite.key,
            suite_rate=suite.sample_rate,
            results_dir=str(results_dir),
            producers=tuple(producers),
            metrics=tuple(metrics),
            threads_per_worker=1,
            metric_at_a_time=options.metric_at_a_time,
            batch_size=options.batch_size,
            reference_state_id=f"{suite.key}-{suite.manifest_sha256[:16]}" if options.reference_cache else "",
        )
        planner.on_dropped = progress.done  # every metric of the job failed to set up
        workers = max(1, min(options.jobs, total))
        finished = False
        try:
            # the workers start (and set their metrics up) while the run's provenance is collected
            with make_backend(ctx, options.scheduler, workers, options.threads_per_worker) as backend:
                provenance = collect_provenance(suite, producers, metrics, options.protocol)
                run_id = store.start_run(suite.name, suite.version, options.command, provenance)
                report = RunReport(run_id=run_id, jobs=total, rows_written=0, workers=backend.workers)
                write = ResultWriter(store, run_id, planner, report, progress.done)
                if not options.metric_at_a_time:
                    backend.stream(planner.split_tail(planner.jobs(), total, 2 * backend.workers), write)
                else:
                    for phase in planner.phases(metric_at_a_time=True):
                        backend.stream(planner.jobs(**phase), write)
            finished = True
        finally:
            progress.close(finished)
        store.finish_run(run_id)
    report.seconds = time.perf_counter() - start
    return report
