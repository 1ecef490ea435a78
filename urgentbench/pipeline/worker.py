"""The worker: loaded systems and metrics, and a batch of jobs as prepare-then-score.

A :class:`WorkerState` lives in each worker process (or Dask worker, or this process for
``--jobs 1``) for one run. It processes a batch of jobs in two halves: every job is
prepared (:func:`~urgentbench.pipeline.prepare.prepare`), then each metric scores the
prepared items of the jobs that need it (:func:`~urgentbench.pipeline.score.score`). A
job alone is a batch of one; the values are the same whatever the batch size (within
1e-6, Whisper transcripts identical).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from urgentbench.layout import reference_state_dir
from urgentbench.metrics import Metric
from urgentbench.pipeline.callables import CallableSystem
from urgentbench.pipeline.errors import MetricSetupError
from urgentbench.pipeline.plan import Job
from urgentbench.pipeline.prepare import Prepared, prepare
from urgentbench.pipeline.score import score, setup_failure_message
from urgentbench.pipeline.specs import MetricSpec, ProducerSpec
from urgentbench.reference_cache import ReferenceStateCache
from urgentbench.store import PARTICIPANT
from urgentbench.systems import System, build_system

#: One logger for the pipeline: users see "urgentbench.pipeline" whichever stage speaks.
logger = logging.getLogger(__package__)

#: Thread-count variables a worker sets (and :class:`~urgentbench.pipeline.backends.InlineBackend` restores).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "URGENTBENCH_THREADS")


@dataclass(frozen=True)
class WorkerContext:
    """Everything a worker process needs, picklable."""

    suite_folder: str
    suite_key: str
    suite_rate: int
    results_dir: str
    producers: tuple[ProducerSpec, ...]
    metrics: tuple[MetricSpec, ...]
    #: Inference threads per worker; 0 keeps the worker environment's ``OMP_NUM_THREADS``.
    threads_per_worker: int
    #: Release every model the current job does not need (one model per worker at a time).
    metric_at_a_time: bool = False
    #: Jobs a worker takes at once; each metric scores their utterances together. 1: one job at a time.
    batch_size: int = 1
    #: Identifies the suite's references for the reference-state files (empty: no files).
    reference_state_id: str = ""


@dataclass
class JobResult:
    """What a worker sends back for one job.

    ``results`` holds per-metric ``(metric index, result, error, kernel seconds)``;
    ``setup_seconds`` the model set-up this job triggered; ``busy_seconds`` the worker's
    whole time on the job (reading, enhancing, resampling, set-up and kernels).
    """

    job: Job
    results: list[tuple[int, dict | None, str | None, float]]
    messages: list[str]
    #: Why the job has no usable enhanced audio (every row of the job carries it).
    enhance_error: str | None = None
    setup_seconds: float = 0.0
    busy_seconds: float = 0.0
    #: Whose failure ``enhance_error`` is: the participant's (missing, unusable or silent
    #: output, a crashed system or worker) unless the suite's own input could not be
    #: rendered (:data:`~urgentbench.store.METRIC`: not the participant's fault).
    enhance_failure: str = PARTICIPANT
    #: Metrics (by index) that could not be set up in the worker: a run-level error, so
    #: the job has no row for them (nothing is stored; they are computed once repaired).
    setup_failures: dict[int, str] = field(default_factory=dict)


def configure_threads(threads: int) -> Any:
    """Set the thread budget of a worker process for the numeric libraries it will use.

    Model inference (torch, ONNX Runtime through ``URGENTBENCH_THREADS``, OpenMP) gets
    ``threads``; BLAS always runs single-threaded, in the numpy already loaded (through
    threadpoolctl) and in libraries loaded later (environment), so that the signal-level
    metrics give bit-identical values whatever the number of workers or the scheduler
    (a multi-threaded dot product sums in another order). torch is only told directly
    when it is already imported (importing it here would cost every worker about two
    seconds, also when no metric needs it). ``threads <= 0`` keeps the environment's
    ``OMP_NUM_THREADS`` (a Dask nanny sets 1).

    Returns:
        The threadpoolctl limiter (``restore_original_limits()`` undoes the BLAS limit),
        or None without threadpoolctl.
    """
    if threads <= 0:
        threads = int(os.environ.get("OMP_NUM_THREADS") or 1)
    os.environ["OMP_NUM_THREADS"] = os.environ["URGENTBENCH_THREADS"] = str(threads)
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # a core dependency; without it BLAS keeps its own thread count
        logger.warning("threadpoolctl is missing (pip install threadpoolctl): values may differ in the last digits")
        limiter = None
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    return limiter


class WorkerState:
    """What one worker keeps between jobs: its context and the loaded systems and metrics.

    Each heavy model is loaded at most once per worker (on first use), unless
    ``ctx.metric_at_a_time`` asks to release every model the current job does not need, so
    that a worker holds one model at a time. Batches are processed one at a time (a lock
    serialises threads of a multi-threaded Dask worker: several metrics seed numpy's global
    RNG, so they must not run concurrently in one process).
    """

    def __init__(self, ctx: WorkerContext):
        self.ctx = ctx
        self.systems: dict[int, System] = {}
        self.metrics: dict[int, Metric] = {}
        self.lock = threading.Lock()
        self.thread_limits = configure_threads(ctx.threads_per_worker)
        root = reference_state_dir(ctx.results_dir) if ctx.reference_state_id else None
        self.reference_states = ReferenceStateCache(root, ctx.reference_state_id)
        self._metric_ids: dict[int, str] = {}
        self._digests: dict[int, dict[str, str | None]] = {}
        #: Metric index -> why its set-up failed (it is not tried again by this worker).
        self.setup_failures: dict[int, str] = {}
        #: Metric index -> seconds of a set-up done ahead of its first job, reported with that job.
        self._early_setup: dict[int, float] = {}

    def set_up_metrics(self) -> None:
        """Set every metric up now, ahead of the first job (a pool worker does this as it starts).

        The set-up then overlaps the parent's planning and the other workers' start; its
        seconds are reported with each metric's first job, as a set-up on first use would
        be. A set-up that fails is recorded and reported by that first job.
        """
        for index in range(len(self.ctx.metrics)):
            try:
                _, took = self.metric(index)
            except MetricSetupError:
                continue
            self._early_setup[index] = took

    def metric_id(self, index: int) -> str:
        """``name-vVERSION-OPTIONSHASH`` of metric ``index`` (its options hash includes checkpoint digests)."""
        if index not in self._metric_ids:
            self._metric_ids[index] = self.ctx.metrics[index].metric_id
        return self._metric_ids[index]

    def system(self, index: int) -> System:
        """The set-up system of producer ``index``."""
        if index not in self.systems:
            spec = self.ctx.producers[index]
            if spec.is_callable:
                system: System = CallableSystem(spec.function, spec.name, dict(spec.options).get("sample_rate"))
            else:
                system = build_system(spec.name, **dict(spec.options))
            system.setup()
            self.systems[index] = system
        return self.systems[index]

    def metric(self, index: int) -> tuple[Metric, float]:
        """The set-up metric ``index`` and the seconds its set-up took now (0 when cached).

        The metric's declared packages are imported as part of set-up, so that import
        time is never counted as the first utterance's kernel time.

        Raises:
            MetricSetupError: When building or setting up the metric failed (now or in an
                earlier job of this worker: a failed set-up is not retried).
        """
        if index in self.metrics:
            return self.metrics[index], self._early_setup.pop(index, 0.0)
        if index in self.setup_failures:
            raise MetricSetupError(self.setup_failures[index])
        start = time.perf_counter()
        spec = self.ctx.metrics[index]
        try:
            metric = spec.build()
            metric.setup()
        except Exception as exc:
            logger.debug("metric %s setup failed: %s", spec.name, traceback.format_exc())
            self.setup_failures[index] = setup_failure_message(spec, exc)
            raise MetricSetupError(self.setup_failures[index]) from exc
        try:
            metric.import_packages()
        except Exception:  # compute() reports it with the install hint
            logger.debug("pre-import of %s's packages failed", spec.name, exc_info=True)
        self.metrics[index] = metric
        return metric, time.perf_counter() - start

    def release(self, keep_producer: int | None, keep_metrics: tuple[int, ...]) -> None:
        """Drop every loaded system and metric except those named (metric-at-a-time mode)."""
        released = False
        for index in [i for i in self.systems if i != keep_producer]:
            del self.systems[index]
            released = True
        for index in [i for i in self.metrics if i not in keep_metrics]:
            del self.metrics[index]
            released = True
        if released:
            gc.collect()

    def output_digest(self, index: int, utt_id: str) -> str | None:
        """The sha256 directory producer ``index``'s file for ``utt_id`` had when it was checked."""
        if index not in self._digests:
            self._digests[index] = dict(self.ctx.producers[index].digests)
        return self._digests[index].get(utt_id)

    def process(self, job: Job) -> JobResult:
        """Produce (or read) the enhanced audio of one utterance and compute the job's metrics."""
        return self.process_batch([job])[0]

    def process_batch(self, jobs: list[Job]) -> list[JobResult]:
        """Prepare every job, then let each metric score the prepared items that need it.

        Returns:
            One :class:`JobResult` per job, in order.
        """
        with self.lock:
            prepared = [self._prepare(job) for job in jobs]
            ready = [p for p in prepared if p.error is None]
            rows: dict[int, dict[int, tuple[int, dict | None, str | None, float]]] = {id(p): {} for p in ready}
            setup: dict[int, float] = {id(p): 0.0 for p in ready}
            setup_failures: dict[int, dict[int, str]] = {id(p): {} for p in ready}
            for index in dict.fromkeys(m for p in ready for m in p.job.metrics):
                items = [p for p in ready if index in p.job.metrics]
                if self.ctx.metric_at_a_time:
                    self.release(None, (index,))
                try:
                    metric, took = self.metric(index)  # set up once per worker, not timed as kernel
                except MetricSetupError as exc:  # a run-level error: no row for these utterances
                    for p in items:
                        setup_failures[id(p)][index] = str(exc)
                    continue
                setup[id(items[0])] += took
                for p, (result, error, seconds) in zip(items, score(metric, self.metric_id(index), items,
                                                                     self.reference_states)):
                    rows[id(p)][index] = (index, result, error, seconds)
            return [self._result(p, rows, setup, setup_failures) for p in prepared]

    def _prepare(self, job: Job) -> Prepared:
        if self.ctx.metric_at_a_time:
            self.release(job.producer if job.enhance_only else None, job.metrics)
        ctx = self.ctx
        return prepare(
            job, ctx.producers[job.producer], Path(ctx.suite_folder), Path(ctx.results_dir), ctx.suite_key,
            lambda: self.system(job.producer), self.output_digest(job.producer, job.utterance["id"]),
        )

    def _result(self, p: Prepared, rows: dict, setup: dict, setup_failures: dict) -> JobResult:
        """The :class:`JobResult` of a prepared job, its rows in the job's metric order."""
        job = p.job
        if p.error is not None:
            producer = self.ctx.producers[job.producer]
            return JobResult(
                job, [(i, None, p.error, 0.0) for i in job.metrics], [f"{producer.name}/{p.utt.id}: {p.error}"],
                enhance_error=p.error, busy_seconds=p.seconds, enhance_failure=p.failure,
            )
        out = [rows[id(p)][i] for i in job.metrics if i in rows[id(p)]]
        busy = p.seconds + setup[id(p)] + sum(r[3] for r in out)
        return JobResult(job, out, p.messages, setup_seconds=setup[id(p)], busy_seconds=busy,
                         setup_failures=setup_failures[id(p)])


#: The state of a process-pool worker (or of the parent when running in-process).
_STATE: WorkerState | None = None


def init_worker(ctx: WorkerContext) -> WorkerState:
    """Create this process's worker state (the pool initialiser; the inline backend calls it too)."""
    global _STATE
    _STATE = WorkerState(ctx)
    return _STATE


def init_pool_worker(ctx: WorkerContext) -> None:
    """The process pool's initialiser: the worker state, with every metric set up at once.

    Not with ``metric_at_a_time``, which holds one model at a time. Nothing here may raise
    (an initialiser's exception breaks the whole pool): a failed set-up is recorded for the
    first job that needs the metric.
    """
    state = init_worker(ctx)
    if ctx.metric_at_a_time:
        return
    try:
        state.set_up_metrics()
    except Exception:  # noqa: BLE001 - reported by the first job instead
        logger.debug("early metric set-up failed", exc_info=True)


def drop_worker() -> None:
    """Forget this process's worker state (and its loaded models)."""
    global _STATE
    _STATE = None


def process_jobs(jobs: list[Job]) -> list[JobResult]:
    """Process a batch of jobs in this process's worker state (:meth:`WorkerState.process_batch`)."""
    if _STATE is None:
        raise RuntimeError("worker not initialised")
    return _STATE.process_batch(jobs)

