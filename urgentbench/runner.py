"""The runner: enhance (or read) outputs and score them, in parallel, resumably.

Work is split into one job per (producer, utterance): a producer is a system plug-in or
a directory of already-enhanced files. A worker process renders (or reads the cached)
noisy input and reference once, obtains the enhanced output once, resamples each signal
once per rate the metrics need, and computes every metric still missing. Heavy models
are loaded once per worker. Results go back to the parent, the single writer of the
SQLite store, one transaction per job, so a run killed at any point resumes without
losing or duplicating anything.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from urgentbench.audio import AudioError, check_waveform, fit_length, read_audio, resample, to_pcm16_grid, write_flac
from urgentbench.manifest import Utterance
from urgentbench.metrics import METRICS, Metric, MetricError
from urgentbench.requirements import MissingRequirementError
from urgentbench.store import ResultStore, ScoreKey, ScoreRow
from urgentbench.suites import Suite
from urgentbench.systems import SYSTEMS, System, build_system, config_hash

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".flac", ".wav")


class RunError(RuntimeError):
    """A problem found before any work starts (unknown or unavailable plug-in, bad suite)."""


@dataclass(frozen=True)
class MetricSpec:
    """A metric by canonical name with its options."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def cls(self) -> type[Metric]:
        """The metric class."""
        return METRICS.get(self.name)

    def build(self) -> Metric:
        """A fresh (not set-up) instance."""
        return self.cls(**dict(self.options))

    @property
    def options_hash(self) -> str:
        """Hash of the effective options (defaults included)."""
        return config_hash({**self.cls.default_options(), **dict(self.options)})

    def applies_to(self, utt: Utterance) -> bool:
        """Whether the metric can run on ``utt`` (reference / transcript present)."""
        cls = self.cls
        if cls.needs_reference and not utt.has_reference:
            return False
        return not (cls.needs_transcript and not utt.text)


@dataclass(frozen=True)
class ProducerSpec:
    """Where enhanced audio comes from: a system plug-in or a directory of files."""

    name: str
    config_hash: str
    options: tuple[tuple[str, Any], ...] = ()
    directory: str | None = None
    display_name: str = ""
    metadata: tuple[tuple[str, Any], ...] = ()

    @property
    def is_directory(self) -> bool:
        """True for scored outside outputs."""
        return self.directory is not None


@dataclass(frozen=True)
class WorkerContext:
    """Everything a worker process needs, picklable."""

    suite_folder: str
    suite_key: str
    suite_rate: int
    results_dir: str
    producers: tuple[ProducerSpec, ...]
    metrics: tuple[MetricSpec, ...]
    threads_per_worker: int


@dataclass(frozen=True)
class Job:
    """One producer on one utterance, with the metrics still missing."""

    producer: int
    utterance: dict[str, Any]
    metrics: tuple[int, ...]


@dataclass
class RunReport:
    """What a run did."""

    run_id: int
    jobs: int
    rows_written: int
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def system_producer(name: str, options: dict[str, Any] | None = None) -> ProducerSpec:
    """Resolve a system plug-in into a producer, failing early when it is unknown or unavailable.

    Raises:
        UnknownNameError: For an unknown system.
        MissingRequirementError: When its packages or assets are missing.
    """
    options = dict(options or {})
    spec = SYSTEMS.get(name)
    avail = spec.availability(options)
    if not avail.ok:
        raise MissingRequirementError("system", spec.card.name, avail)
    system = spec.load_class()(**options)
    return ProducerSpec(
        name=spec.card.name,
        config_hash=system.config_hash(),
        options=tuple(sorted(system.options.items())),
        display_name=spec.card.name,
        metadata=(("description", spec.card.description), ("paper", spec.card.paper)),
    )


def directory_producer(directory: str | Path, name: str, ids: list[str], metadata: dict | None = None) -> ProducerSpec:
    """A producer reading ``<id>.flac`` (or ``.wav``) files of ``directory``.

    The config hash covers the bytes of every file for ``ids``, so re-scoring changed
    outputs never reuses stale results.

    Raises:
        RunError: When the directory does not exist.
    """
    from urgentbench.manifest import file_sha256

    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise RunError(f"{directory}: outputs directory not found")
    digests = []
    for utt_id in ids:
        path = find_output(directory, utt_id)
        digests.append(f"{utt_id}:{file_sha256(path) if path else 'missing'}")
    return ProducerSpec(
        name=name,
        config_hash=config_hash({"outputs": digests}),
        directory=str(directory),
        display_name=name,
        metadata=tuple(sorted((metadata or {"outputs": str(directory)}).items())),
    )


def find_output(directory: Path, utt_id: str) -> Path | None:
    """The enhanced file for ``utt_id`` in ``directory``, if any."""
    for ext in AUDIO_EXTENSIONS:
        p = directory / f"{utt_id}{ext}"
        if p.exists():
            return p
    return None


def resolve_metrics(names: list[str] | None, suite: Suite, skip_unavailable: bool = False) -> list[MetricSpec]:
    """Turn metric names (default: the suite's) into specs, checking availability up front.

    Raises:
        UnknownNameError: For an unknown metric.
        RunError: When a metric is unavailable (unless ``skip_unavailable``).
    """
    specs: list[MetricSpec] = []
    problems = []
    for name in names or suite.metrics:
        cls = METRICS.get(name)
        spec = MetricSpec(cls.name)
        if spec in specs:
            continue
        avail = cls.availability()
        if not avail.ok:
            if skip_unavailable:
                logger.warning("skipping metric %s: %s", cls.name, avail.summary())
                continue
            problems.append(f"metric {cls.name!r} is unavailable: {avail.summary()}")
            continue
        specs.append(spec)
    if problems:
        raise RunError("\n".join(problems))
    return specs


def input_paths(results_dir: Path, suite_key: str, utt_id: str) -> tuple[Path, Path]:
    """Cache paths of the rendered noisy input and reference of an utterance."""
    base = results_dir / "inputs" / suite_key
    return base / "noisy" / f"{utt_id}.flac", base / "reference" / f"{utt_id}.flac"


def enhanced_path(results_dir: Path, suite_key: str, producer: ProducerSpec, utt_id: str) -> Path:
    """Where a system's enhanced output for an utterance is stored."""
    return results_dir / "enhanced" / suite_key / f"{producer.name}-{producer.config_hash}" / f"{utt_id}.flac"


def load_inputs(utt: Utterance, suite_folder: Path, results_dir: Path, suite_key: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The noisy input and reference of ``utt``, rendered once and cached as 16-bit FLAC."""
    noisy_path, ref_path = input_paths(results_dir, suite_key, utt.id)
    if noisy_path.exists() and (ref_path.exists() or not utt.has_reference):
        noisy, _ = read_audio(noisy_path)
        reference = read_audio(ref_path)[0] if utt.has_reference else None
        return noisy, reference
    from urgentbench.simulation.render import render_utterance

    rendered = render_utterance(utt, suite_folder)
    if rendered.reference is not None:
        write_flac(ref_path, rendered.reference, utt.sample_rate)
    write_flac(noisy_path, rendered.noisy, utt.sample_rate)
    return rendered.noisy, rendered.reference


def run_system(system: System, noisy: np.ndarray, sample_rate: int, source: str) -> tuple[np.ndarray, int]:
    """Enhance ``noisy`` with ``system``: resample in, check the output, resample back.

    Returns:
        The enhanced waveform at ``sample_rate`` on the 16-bit grid, exactly as long as
        the input, and the number of samples clipped by the 16-bit conversion.

    Raises:
        AudioError: When the system returns something unusable (wrong length, NaN, ...).
    """
    native = sample_rate if system.native_rate_follows_input else system.sample_rate
    x = resample(noisy, sample_rate, native)
    y, out_rate = system.enhance(x, native)
    y = check_waveform(y, source)
    if out_rate == native and len(y) != len(x):
        raise AudioError(
            source,
            f"system {system.card.name!r} returned {len(y)} samples for {len(x)} input samples at "
            f"{native} Hz; outputs must be exactly as long as the input",
        )
    y = resample(y, out_rate, sample_rate)
    tolerance = int(np.ceil(sample_rate / min(native, out_rate))) + 1
    if abs(len(y) - len(noisy)) > tolerance:
        raise AudioError(source, f"output length {len(y)} after resampling differs from input {len(noisy)}")
    y = fit_length(y, len(noisy))  # only absorbs resampler rounding (at most `tolerance` samples)
    return to_pcm16_grid(y)


def read_output(path: Path | None, utt: Utterance, expected_len: int, source: str) -> np.ndarray:
    """Read and validate an outside system's enhanced file (same rate and length as the input).

    Raises:
        AudioError: For a missing file, wrong rate, wrong length or bad content.
    """
    if path is None:
        raise AudioError(source, "enhanced file not found (expected <id>.flac or <id>.wav)")
    y, sr = read_audio(path)
    if sr != utt.sample_rate:
        raise AudioError(path, f"sample rate {sr} Hz, expected the input's {utt.sample_rate} Hz")
    if len(y) != expected_len:
        raise AudioError(
            path,
            f"{len(y)} samples, expected exactly the input's {expected_len} (outputs are never trimmed or padded)",
        )
    return y


# --------------------------------------------------------------------------- worker side

_CTX: WorkerContext | None = None
_SYSTEM_CACHE: dict[int, System] = {}
_METRIC_CACHE: dict[int, Metric] = {}


def _init_worker(ctx: WorkerContext) -> None:
    global _CTX
    _CTX = ctx
    _SYSTEM_CACHE.clear()
    _METRIC_CACHE.clear()
    threads = str(ctx.threads_per_worker)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "URGENTBENCH_THREADS"):
        os.environ[var] = threads
    try:
        import torch

        torch.set_num_threads(ctx.threads_per_worker)
    except ImportError:
        pass


def _system(index: int) -> System:
    if index not in _SYSTEM_CACHE:
        spec = _CTX.producers[index]  # type: ignore[union-attr]
        system = build_system(spec.name, **dict(spec.options))
        system.setup()
        _SYSTEM_CACHE[index] = system
    return _SYSTEM_CACHE[index]


def _metric(index: int) -> Metric:
    if index not in _METRIC_CACHE:
        metric = _CTX.metrics[index].build()  # type: ignore[union-attr]
        metric.setup()
        _METRIC_CACHE[index] = metric
    return _METRIC_CACHE[index]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def process_job(job: Job) -> tuple[Job, list[tuple[int, dict | None, str | None, float]], list[str]]:
    """Produce and score one utterance; returns per-metric ``(index, result, error, seconds)``."""
    ctx = _CTX
    if ctx is None:
        raise RuntimeError("worker not initialised")
    utt = Utterance.from_dict(job.utterance)
    producer = ctx.producers[job.producer]
    results_dir = Path(ctx.results_dir)
    messages: list[str] = []
    try:
        noisy, reference = load_inputs(utt, Path(ctx.suite_folder), results_dir, ctx.suite_key)
        if producer.is_directory:
            path = find_output(Path(producer.directory), utt.id)  # type: ignore[arg-type]
            enhanced = read_output(path, utt, len(noisy), f"{producer.directory}/{utt.id}")
        else:
            out_path = enhanced_path(results_dir, ctx.suite_key, producer, utt.id)
            if out_path.exists():
                enhanced, _ = read_audio(out_path)
            else:
                enhanced, clipped = run_system(_system(job.producer), noisy, utt.sample_rate, str(out_path))
                if clipped:
                    messages.append(f"{utt.id}: {clipped} samples of the {producer.name} output clipped to 16 bit")
                write_flac(out_path, enhanced, utt.sample_rate)
    except Exception as exc:  # one bad utterance never kills a run
        reason = f"no enhanced audio: {_one_line(exc)}"
        logger.debug("job failed: %s", traceback.format_exc())
        return job, [(i, None, reason, 0.0) for i in job.metrics], [f"{producer.name}/{utt.id}: {reason}"]

    by_rate: dict[int, tuple[np.ndarray, np.ndarray | None]] = {utt.sample_rate: (enhanced, reference)}
    out = []
    for index in job.metrics:
        try:
            metric = _metric(index)  # set up once per worker, not timed as part of the kernel
        except Exception as exc:
            logger.debug("metric setup failed: %s", traceback.format_exc())
            out.append((index, None, f"metric setup failed: {_one_line(exc)}", 0.0))
            continue
        start = time.perf_counter()
        try:
            rate = metric.working_rate(utt.sample_rate)
            if rate not in by_rate:
                by_rate[rate] = (
                    resample(enhanced, utt.sample_rate, rate),
                    None if reference is None else resample(reference, utt.sample_rate, rate),
                )
            est, ref = by_rate[rate]
            result = metric.compute(est, ref, rate, transcript=utt.text)
            out.append((index, result, None, time.perf_counter() - start))
        except MetricError as exc:
            out.append((index, None, str(exc).splitlines()[0], time.perf_counter() - start))
        except Exception as exc:  # a crashing metric is recorded, the run goes on
            logger.debug("metric crashed: %s", traceback.format_exc())
            out.append((index, None, _one_line(exc), time.perf_counter() - start))
    return job, out, messages


# --------------------------------------------------------------------------- parent side


def score_key(suite: Suite, producer: ProducerSpec, metric: MetricSpec) -> ScoreKey:
    """The store key of a producer/metric pair on a suite."""
    return ScoreKey(
        suite=suite.name,
        suite_version=suite.version,
        system=producer.name,
        config_hash=producer.config_hash,
        metric=metric.name,
        metric_version=metric.cls.version,
        metric_config=metric.options_hash,
    )


def plan_jobs(
    store: ResultStore,
    suite: Suite,
    utterances: list[Utterance],
    producers: list[ProducerSpec],
    metrics: list[MetricSpec],
    retry_errors: bool = False,
) -> list[Job]:
    """Jobs for everything not yet in the store."""
    jobs = []
    for p_index, producer in enumerate(producers):
        done = [store.done(score_key(suite, producer, m), include_errors=not retry_errors) for m in metrics]
        for utt in utterances:
            missing = tuple(
                m_index
                for m_index, metric in enumerate(metrics)
                if metric.applies_to(utt) and utt.id not in done[m_index]
            )
            if missing:
                jobs.append(Job(p_index, utt.to_dict(), missing))
    return jobs


def execute(
    jobs: list[Job], ctx: WorkerContext, n_workers: int, on_result: Callable[[tuple], None]
) -> None:
    """Run jobs in-process (one worker) or over a spawned process pool, streaming results."""
    if n_workers <= 1 or len(jobs) <= 1:
        _init_worker(ctx)
        for job in jobs:
            on_result(process_job(job))
        return
    with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(ctx,)) as pool:
        pending = set()
        queue: Iterator[Job] = iter(jobs)
        for job in queue:
            pending.add(pool.submit(process_job, job))
            if len(pending) >= 4 * n_workers:
                break
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                on_result(future.result())
            for job in queue:
                pending.add(pool.submit(process_job, job))
                if len(pending) >= 4 * n_workers:
                    break


def run(
    suite: Suite,
    producers: list[ProducerSpec],
    metrics: list[MetricSpec],
    results_dir: str | Path,
    jobs: int = 1,
    limit: int | None = None,
    retry_errors: bool = False,
    command: str = "",
    progress: bool = True,
) -> RunReport:
    """Enhance and score ``suite`` for every producer, computing only what is missing.

    Args:
        suite: The suite (its manifest is verified against the card's sha256).
        producers: Systems and/or output directories.
        metrics: Metrics to compute.
        results_dir: Folder of the SQLite store, cached inputs and enhanced audio.
        jobs: Worker processes.
        limit: Only the first ``limit`` utterances.
        retry_errors: Recompute rows stored as errors.
        command: The command line, for provenance.
        progress: Show a progress bar.

    Returns:
        A :class:`RunReport`.
    """
    from tqdm import tqdm

    from urgentbench.provenance import collect_provenance

    results_dir = Path(results_dir).resolve()
    start = time.perf_counter()
    utterances = suite.utterances(limit)
    with ResultStore(results_dir / "results.sqlite") as store:
        for p in producers:
            store.register_system(suite.name, suite.version, p.name, p.config_hash, p.display_name, dict(p.metadata))
        planned = plan_jobs(store, suite, utterances, producers, metrics, retry_errors)
        run_id = store.start_run(
            suite.name, suite.version, command, collect_provenance(suite, producers, metrics)
        )
        report = RunReport(run_id=run_id, jobs=len(planned), rows_written=0)
        n_workers = max(1, min(jobs, len(planned)))
        threads = max(1, (os.cpu_count() or 1) // n_workers)
        ctx = WorkerContext(
            suite_folder=str(suite.folder),
            suite_key=suite.key,
            suite_rate=suite.sample_rate,
            results_dir=str(results_dir),
            producers=tuple(producers),
            metrics=tuple(metrics),
            threads_per_worker=threads,
        )
        bar = tqdm(total=len(planned), disable=not progress, unit="utt", desc=suite.key)

        def on_result(item: tuple) -> None:
            job, results, messages = item
            producer = producers[job.producer]
            rows = [
                ScoreRow(score_key(suite, producer, metrics[i]), job.utterance["id"], result, error, seconds)
                for i, result, error, seconds in results
            ]
            store.write(rows, run_id)
            report.rows_written += len(rows)
            for msg in messages:
                logger.warning(msg)
                report.errors.append(msg)
            for row in rows:
                if row.error:
                    report.errors.append(f"{producer.name}/{row.utt_id}/{row.key.metric}: {row.error}")
            bar.update(1)

        try:
            execute(planned, ctx, n_workers, on_result)
        finally:
            bar.close()
        store.finish_run(run_id)
    report.seconds = time.perf_counter() - start
    return report
