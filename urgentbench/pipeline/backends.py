"""Where batches of jobs run: in this process, on a pool of spawned processes, or on Dask.

Every backend takes the run's jobs lazily, hands them to workers in batches of
``batch_size`` with a bounded number in flight (memory does not grow with the suite),
and calls ``on_result`` in this process, the single writer of the store, as each job's
result comes back.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context

from urgentbench.pipeline.plan import Job, job_batches
from urgentbench.pipeline.worker import (
    THREAD_VARIABLES,
    JobResult,
    WorkerContext,
    drop_worker,
    init_pool_worker,
    init_worker,
    process_jobs,
)


class Backend:
    """Where jobs run. :meth:`stream` submits jobs lazily and hands results back as they finish."""

    #: Worker processes (or Dask worker threads) available.
    workers: int = 1

    def stream(self, jobs: Iterable[Job], on_result: Callable[[JobResult], None]) -> None:
        """Run ``jobs``, calling ``on_result`` in this process for each as soon as it finishes."""
        raise NotImplementedError

    def close(self) -> None:
        """Release workers."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineBackend(Backend):
    """Jobs run one batch after another in this process (``--jobs 1``)."""

    def __init__(self, ctx: WorkerContext):
        self._environ = dict(os.environ)
        self.state = init_worker(ctx)

    def stream(self, jobs: Iterable[Job], on_result: Callable[[JobResult], None]) -> None:
        """See :meth:`Backend.stream`."""
        for batch in job_batches(jobs, self.state.ctx.batch_size):
            for result in self.state.process_batch(batch):
                on_result(result)

    def close(self) -> None:
        """Drop the loaded models and give this process its thread settings back."""
        if self.state.thread_limits is not None:
            self.state.thread_limits.restore_original_limits()
        for var in THREAD_VARIABLES:
            if var in self._environ:
                os.environ[var] = self._environ[var]
            else:
                os.environ.pop(var, None)
        drop_worker()


class PoolBackend(Backend):
    """A pool of ``n`` spawned worker processes; at most ``4 n`` batches are in flight."""

    def __init__(self, ctx: WorkerContext, n: int):
        self.workers = n
        self.batch_size = ctx.batch_size
        self.pool = ProcessPoolExecutor(
            n, mp_context=get_context("spawn"), initializer=init_pool_worker, initargs=(ctx,)
        )
        # Start every worker now (the pool spawns one per submitted call while none is idle):
        # each sets its metrics up while this process is still planning.
        for _ in range(n):
            self.pool.submit(os.getpid)

    def stream(self, jobs: Iterable[Job], on_result: Callable[[JobResult], None]) -> None:
        """See :meth:`Backend.stream`."""
        window = 4 * self.workers  # batches in flight
        queue = job_batches(jobs, self.batch_size)
        pending = {self.pool.submit(process_jobs, batch) for batch in itertools.islice(queue, window)}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                for result in future.result():
                    on_result(result)
            for batch in itertools.islice(queue, window - len(pending)):
                pending.add(self.pool.submit(process_jobs, batch))

    def close(self) -> None:
        """Shut the pool down without waiting for the workers to exit.

        Every result has arrived by then; the workers' interpreter teardown (about 0.3 s)
        overlaps what this process does next, and the pool joins them at exit.
        """
        self.pool.shutdown(wait=False, cancel_futures=True)


def make_backend(ctx: WorkerContext, scheduler: str | None, n_workers: int, threads: int | None = None) -> Backend:
    """The backend for a run: Dask when a scheduler is given, else a pool (or in-process for one worker).

    Args:
        ctx: The run's worker context (``threads_per_worker`` is filled in here).
        scheduler: A ``--scheduler`` value, or None for local processes.
        n_workers: Local worker processes.
        threads: Inference threads per local worker (default: the cores divided by the workers).
    """
    if scheduler:
        from urgentbench.pipeline.distributed import DaskBackend  # imports Dask

        return DaskBackend(ctx, scheduler)
    threads = threads or max(1, (os.cpu_count() or 1) // n_workers)
    ctx = dataclasses.replace(ctx, threads_per_worker=threads)
    return InlineBackend(ctx) if n_workers <= 1 else PoolBackend(ctx, n_workers)
