"""Dask scale-out for the runner: ``urgentbench run ... --scheduler tcp://HOST:8786`` or ``local:N``.

Each Dask worker gets a :class:`RunnerPlugin` holding a :class:`~urgentbench.pipeline.worker.WorkerState`,
so every heavy model is loaded once per worker (on first use) and kept between tasks.
Tasks are one batch of jobs each (``--batch-size``, default one job); a bounded window of them is in
flight and results stream back with ``as_completed`` to the calling process, the single
writer of the SQLite store, which writes each one as it arrives. A run interrupted at
any point therefore resumes like a local run.

A worker that dies mid-task (killed, out of memory, crashed extension) is replaced by its
nanny and the scheduler reruns the task elsewhere; a task that kills
``distributed.scheduler.allowed-failures`` (default 3) workers in a row is recorded as a
failure of that utterance with the reason, and the run goes on.

Workers read the suite's files and write rendered inputs and enhanced audio under the
results folder: on a multi-machine cluster both must be on a shared file system at the
same paths, and urgentbench (with the plug-ins' packages) must be installed on every
worker. Dask is imported only here, only when a scheduler is given.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
import os
import pickle
from collections.abc import Callable, Iterable
from typing import Any

from urgentbench.pipeline.errors import RunError
from urgentbench.pipeline.options import parse_scheduler
from urgentbench.pipeline.plan import Job, job_batches
from urgentbench.pipeline.worker import JobResult, WorkerContext, WorkerState

try:  # this module is imported only for --scheduler; without Dask, DaskBackend explains
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover - exercised only without dask installed
    WorkerPlugin = object  # type: ignore[assignment,misc]

#: One logger for the pipeline: users see "urgentbench.pipeline" whichever stage speaks.
logger = logging.getLogger(__package__)

INSTALL_HINT = "pip install 'dask[distributed]>=2024.1'  (or: pip install -e '.[distributed]')"


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise RunError(f"--scheduler needs Dask distributed, which is not installed: {INSTALL_HINT}") from None
    return distributed


class RunnerPlugin(WorkerPlugin):
    """Dask worker plugin: the runner's per-worker state (loaded models) for one run.

    Registered under a name unique to the run's context; workers that join later (or
    replace a dead one) get it too. ``setup`` only records the context: models load on
    first use, and are dropped in ``teardown`` when the run unregisters the plugin.
    """

    def __init__(self, ctx: WorkerContext, name: str):
        self.ctx = ctx
        self.name = name
        self.state: WorkerState | None = None

    def setup(self, worker: Any) -> None:
        """Create the worker's state (called by Dask on every worker)."""
        self.state = WorkerState(self.ctx)

    def teardown(self, worker: Any) -> None:
        """Drop the loaded models."""
        self.state = None

    def __getstate__(self) -> dict[str, Any]:
        return {"ctx": self.ctx, "name": self.name, "state": None}


def run_jobs(plugin_name: str, jobs: list[Job]) -> list[JobResult]:
    """The Dask task: process a batch of jobs (usually one) with this worker's state.

    Raises:
        RuntimeError: When the worker has no state for this run (plugin missing).
    """
    from distributed import get_worker

    plugin = get_worker().plugins.get(plugin_name)
    state = getattr(plugin, "state", None)
    if state is None:
        raise RuntimeError(f"worker has no urgentbench plugin {plugin_name!r}")
    return state.process_batch(jobs)


class DaskBackend:
    """Runs jobs on a Dask cluster and streams results back as they complete.

    A :class:`~urgentbench.pipeline.backends.Backend` by its methods, not a subclass: this
    module imports nothing from :mod:`urgentbench.pipeline.backends`, which imports it
    (and so Dask) only when a scheduler is given.

    Args:
        ctx: The run's worker context (``threads_per_worker`` is filled in here).
        scheduler: ``local:N``, a scheduler address or a scheduler JSON file.

    Raises:
        RunError: When Dask is missing, the value is malformed or the cluster is unreachable.
    """

    def __init__(self, ctx: WorkerContext, scheduler: str):
        distributed = _import_distributed()
        if not logger.isEnabledFor(logging.DEBUG):  # Dask's own INFO chatter is not the user's business
            logging.getLogger("distributed").setLevel(logging.WARNING)
        kind, arg = parse_scheduler(scheduler)
        self.cluster = None
        try:
            if kind == "local":
                self.cluster = distributed.LocalCluster(
                    n_workers=arg,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                    silence_logs=logging.ERROR,
                )
                self.client = distributed.Client(self.cluster)
                threads = max(1, (os.cpu_count() or 1) // arg)
            elif kind == "file":
                self.client = distributed.Client(scheduler_file=arg, timeout="30s")
                threads = 0
            else:
                self.client = distributed.Client(arg, timeout="30s")
                threads = 0
        except (OSError, TimeoutError) as exc:
            if self.cluster is not None:
                self.cluster.close()
            raise RunError(f"--scheduler {scheduler}: cannot reach the Dask cluster ({exc})") from exc
        ctx = dataclasses.replace(ctx, threads_per_worker=threads)
        self.batch_size = max(1, ctx.batch_size)
        digest = hashlib.sha256(pickle.dumps(ctx)).hexdigest()[:12]
        self.name = f"urgentbench-runner-{digest}-{os.getpid()}"
        self.client.register_plugin(RunnerPlugin(ctx, self.name), name=self.name)
        info = self.client.scheduler_info()
        nthreads = [w.get("nthreads", 1) for w in info.get("workers", {}).values()]
        if any(n > 1 for n in nthreads):
            logger.warning(
                "Dask workers with more than one thread run urgentbench jobs one at a time; "
                "start workers with --nthreads 1 (and more processes) to use every core"
            )
        self.workers = max(1, len(nthreads))
        self._counter = itertools.count()
        logger.info("Dask: %d worker(s) at %s", self.workers, getattr(self.client.scheduler, "address", scheduler))

    def stream(self, jobs: Iterable[Job], on_result: Callable[[JobResult], None]) -> None:
        """Submit tasks and hand results back as they complete.

        A task is a batch of ``ctx.batch_size`` jobs; at most ``4 x workers`` are in flight.
        """
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        queue = job_batches(jobs, self.batch_size)
        futures: dict[Any, list[Job]] = {}

        def submit(batch: list[Job]) -> Any:
            key = f"{self.name}-task-{next(self._counter)}"
            future = self.client.submit(run_jobs, self.name, batch, key=key, pure=False)
            futures[future] = batch
            return future

        def window() -> int:
            n = len(self.client.nthreads()) or self.workers
            return 4 * max(1, n)

        initial = [submit(batch) for batch in itertools.islice(queue, window())]
        if not initial:
            return
        completed = as_completed(initial)
        for future in completed:
            batch = futures.pop(future)
            try:
                results = future.result()
            except KilledWorker as exc:
                reason = f"worker died on every attempt (killed, out of memory or crashed): {exc}"
                logger.warning("%s", reason)
                results = [
                    JobResult(job, [(i, None, reason, 0.0) for i in job.metrics], [reason], enhance_error=reason)
                    for job in batch
                ]
            future.release()
            for result in results:
                on_result(result)
            for batch in itertools.islice(queue, max(0, window() - len(futures))):
                completed.add(submit(batch))

    def close(self) -> None:
        """Unregister the plugin (dropping models on the workers) and close what we started."""
        try:
            self.client.unregister_worker_plugin(self.name)
        except Exception:  # the cluster may already be gone
            logger.debug("could not unregister %s", self.name, exc_info=True)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> DaskBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
