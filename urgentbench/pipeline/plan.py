"""Planning: the jobs of a run, streamed producer by producer, for what the store still misses.

A :class:`Job` is one producer on one utterance with the metrics it still misses. Jobs
are planned while the manifest is streamed (only one producer's stored ids are held in
memory); :class:`Planner` adds what a run learns on the way (metrics whose set-up failed
are left out of later jobs; utterances whose enhancement failed are skipped by later
metric-at-a-time phases) and splits the last jobs so that the workers finish together.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from urgentbench.layout import enhanced_path
from urgentbench.manifest import ManifestError, Utterance, read_manifest
from urgentbench.pipeline.specs import MetricSpec, ProducerSpec, score_key
from urgentbench.store import ResultStore, ScoreKey
from urgentbench.suites import Suite, SuiteError


@dataclass(frozen=True)
class Job:
    """One producer on one utterance, with the metrics still missing."""

    producer: int
    utterance: dict[str, Any]
    metrics: tuple[int, ...]
    #: Only produce the enhanced audio (first phase of metric-at-a-time runs).
    enhance_only: bool = False
    #: With ``enhance_only``: the metrics later phases will compute (recorded as failed
    #: when the enhancement fails).
    pending: tuple[int, ...] = ()


def iter_utterances(suite: Suite, limit: int | None = None) -> Iterator[Utterance]:
    """Stream the suite's utterances from its manifest (verified first), one line at a time.

    Raises:
        SuiteError: When the manifest is missing, modified or has a bad line.
    """
    suite.verify()
    try:
        yield from itertools.islice(read_manifest(suite.manifest_path), limit)
    except ManifestError as exc:
        raise SuiteError(str(exc)) from exc


def iter_jobs(
    utterances: Iterable[Utterance] | Callable[[], Iterable[Utterance]],
    producers: list[ProducerSpec],
    metrics: list[MetricSpec],
    done: list[list[set[str]]] | Callable[[int], list[set[str]]],
    only_metrics: tuple[int, ...] | None = None,
    enhance_only: bool = False,
    skip: Callable[[int, str], bool] | None = None,
) -> Iterator[Job]:
    """Jobs for everything missing, streamed producer by producer.

    Args:
        utterances: The suite's utterances, or a function returning a fresh iterator over
            them (the manifest is then streamed once per producer and nothing is kept).
        producers: Systems and/or output directories.
        metrics: All metrics of the run.
        done: ``done[p][m]`` (or ``done(p)[m]``): the utterance ids already stored for
            producer ``p`` and metric ``m``; a function is asked once per producer, so only
            one producer's ids need to be in memory.
        only_metrics: Restrict jobs to these metric indices (metric-at-a-time phases).
        enhance_only: Jobs that only produce the enhanced audio of system producers that
            still miss a metric (the first metric-at-a-time phase); no metric is computed.
        skip: ``skip(producer, utt_id)`` -> True to leave a pair out.
    """
    wanted = range(len(metrics)) if only_metrics is None else only_metrics
    for p_index, producer in enumerate(producers):
        if enhance_only and producer.is_directory:
            continue
        done_p = done(p_index) if callable(done) else done[p_index]
        for utt in utterances() if callable(utterances) else utterances:
            if skip is not None and skip(p_index, utt.id):
                continue
            applicable = [m for m in range(len(metrics)) if metrics[m].applies_to(utt)]
            if enhance_only:
                pending = tuple(m for m in applicable if utt.id not in done_p[m])
                if pending:
                    yield Job(p_index, utt.to_dict(), (), enhance_only=True, pending=pending)
                continue
            missing = tuple(m for m in applicable if m in wanted and utt.id not in done_p[m])
            if missing:
                yield Job(p_index, utt.to_dict(), missing)


def job_batches(jobs: Iterable[Job], size: int) -> Iterator[list[Job]]:
    """Consecutive lists of at most ``size`` jobs (streamed)."""
    queue = iter(jobs)
    while batch := list(itertools.islice(queue, max(1, size))):
        yield batch


class Planner:
    """The jobs of one run, planned against the store as the run goes.

    Args:
        store: The open results store.
        suite: The suite.
        producers: Systems and/or output directories.
        metrics: The run's metrics.
        results_dir: The results folder (where enhanced audio is cached).
        limit: Only the first ``limit`` utterances.
        retry_errors: Plan rows stored as failures again.
    """

    def __init__(
        self,
        store: ResultStore,
        suite: Suite,
        producers: list[ProducerSpec],
        metrics: list[MetricSpec],
        results_dir: Path,
        limit: int | None = None,
        retry_errors: bool = False,
    ):
        self.store, self.suite, self.producers, self.metrics = store, suite, producers, metrics
        self.results_dir, self.limit, self.retry_errors = results_dir, limit, retry_errors
        #: ``keys[p][m]``: the store key of producer ``p`` and metric ``m``.
        self.keys: list[list[ScoreKey]] = [[score_key(suite, p, m) for m in metrics] for p in producers]
        #: Metrics (by index) whose set-up failed in a worker: left out of the jobs still to plan.
        self.failed_setup: set[int] = set()
        #: (producer, utterance id) pairs whose enhancement failed (metric-at-a-time phases skip them).
        self.failed_enhancement: set[tuple[int, str]] = set()
        #: (producer, utterance id) of split jobs -> parts not yet back.
        self.split_parts: dict[tuple[int, str], int] = {}
        #: Called for each job dropped because all its metrics failed to set up.
        self.on_dropped: Callable[[Job], None] = lambda job: None
        self._done: dict[int, list[set[str]]] = {}

    def _done_for(self, p_index: int) -> list[set[str]]:
        """Ids stored per metric for one producer (only the latest producer's are kept)."""
        if p_index not in self._done:
            self._done.clear()
            keys = self.keys[p_index]
            self._done[p_index] = [self.store.done(k, include_errors=not self.retry_errors) for k in keys]
        return self._done[p_index]

    def jobs(self, only_metrics: tuple[int, ...] | None = None, enhance_only: bool = False) -> Iterator[Job]:
        """The jobs still missing (one metric-at-a-time phase when ``only_metrics``/``enhance_only``)."""
        skip = (lambda p, u: (p, u) in self.failed_enhancement) if only_metrics is not None else None
        utterances = lambda: iter_utterances(self.suite, self.limit)  # noqa: E731 - streamed once per producer
        for job in iter_jobs(utterances, self.producers, self.metrics, self._done_for, only_metrics, enhance_only, skip):
            if self.failed_setup and not job.enhance_only:
                kept = tuple(m for m in job.metrics if m not in self.failed_setup)
                if not kept:
                    self.on_dropped(job)
                    continue
                job = dataclasses.replace(job, metrics=kept)
            yield job

    def phases(self, metric_at_a_time: bool) -> list[dict[str, Any]]:
        """The arguments of :meth:`jobs` for each phase: one, or enhancement then one per metric."""
        if not metric_at_a_time:
            return [{}]
        return [{"enhance_only": True}] + [{"only_metrics": (m,)} for m in range(len(self.metrics))]

    def count(self, metric_at_a_time: bool, per_pair: dict[tuple[int, str], int] | None = None) -> int:
        """How many jobs the run has (the manifest is streamed once per phase and producer).

        ``per_pair``, when given, receives the number of jobs of each (producer, utterance
        id) pair with work: one, or one per metric-at-a-time phase it takes part in.
        """
        n = 0
        for kw in self.phases(metric_at_a_time):
            for job in self.jobs(**kw):
                n += 1
                if per_pair is not None:
                    pair = (job.producer, job.utterance["id"])
                    per_pair[pair] = per_pair.get(pair, 0) + 1
        return n

    def split_tail(self, queue: Iterable[Job], n: int, k: int) -> Iterator[Job]:
        """Split each of the last ``k`` of ``n`` jobs into one job per metric, so workers finish together.

        Only jobs whose enhanced audio already exists (or comes from a folder) are split,
        so that no system enhances an utterance twice. :meth:`part_done` tells when the
        last part of a split job is back.
        """
        for i, job in enumerate(queue):
            producer = self.producers[job.producer]
            if i >= n - k and len(job.metrics) > 1 and (producer.is_directory or self._enhanced(producer, job)):
                self.split_parts[(job.producer, job.utterance["id"])] = len(job.metrics)
                for m in job.metrics:
                    yield dataclasses.replace(job, metrics=(m,))
            else:
                yield job

    def _enhanced(self, producer: ProducerSpec, job: Job) -> bool:
        path = enhanced_path(self.results_dir, self.suite.key, producer.name, producer.config_hash, job.utterance["id"])
        return path.exists()

    def part_done(self, job: Job) -> bool:
        """Record that ``job`` came back; True when it completes its (possibly split) job."""
        part = (job.producer, job.utterance["id"])
        if part not in self.split_parts:
            return True
        self.split_parts[part] -= 1
        if self.split_parts[part]:
            return False
        del self.split_parts[part]
        return True
