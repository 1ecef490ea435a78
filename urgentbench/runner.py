"""The runner: enhance (or read) outputs and score them, in parallel, resumably.

Work is split into one job per (producer, utterance): a producer is a system plug-in or
a directory of already-enhanced files. A worker process renders (or reads the cached)
noisy input and reference once, obtains the enhanced output once, resamples each signal
once per rate the metrics need, and computes every metric still missing. Heavy models
are loaded once per worker. Results go back to the parent, the single writer of the
SQLite store, one transaction per job, so a run killed at any point resumes without
losing or duplicating anything.

Jobs run in-process (``jobs=1``), on a local pool of spawned processes (the default; no
Dask import), or on a Dask cluster (``scheduler=``, see :mod:`urgentbench.distributed`).
Jobs are planned producer by producer while the manifest is streamed (only one
producer's stored ids are held) and only a bounded window of jobs is in flight, so
memory does not grow with the suite's audio. ``metric_at_a_time`` runs the metrics one after another (outer
loop), each worker holding one model at a time, for machines too small for all of them.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import importlib
import itertools
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from urgentbench.audio import (
    PCM16_SCALE,
    AudioError,
    MissingChecksumError,
    check_waveform,
    decode_audio,
    file_sha256,
    fit_length,
    lossy_problem,
    probe_audio,
    read_checked_bytes,
    read_checked_flac,
    read_file_bytes,
    resample,
    to_pcm16_grid,
    write_flac,
)
from urgentbench.manifest import Utterance
from urgentbench.metrics import METRICS, Metric, MetricError
from urgentbench.requirements import MissingRequirementError
from urgentbench.reference_cache import FOLDER as REFERENCE_STATE_FOLDER
from urgentbench.reference_cache import ReferenceStateCache
from urgentbench.store import METRIC, PARTICIPANT, ResultStore, ScoreKey, ScoreRow
from urgentbench.suites import Suite
from urgentbench.systems import SYSTEMS, System, build_system, config_hash

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".flac", ".wav")


class RunError(RuntimeError):
    """A problem found before any work starts (unknown or unavailable plug-in, bad suite)."""


class MetricSetupError(RuntimeError):
    """A metric could not be set up in a worker (corrupt or missing asset, broken package).

    A run-level error, not an utterance's: nothing is stored for the metric, the run
    reports it once with the fix, and the other metrics go on.
    """


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
        """Hash of the effective options (defaults included) and of the checkpoints they load.

        The checkpoints' sha256 (:meth:`Metric.model_hashes`) are part of the hash, so scores
        made with different model files are stored apart and never ranked together.
        """
        options = {**self.cls.default_options(), **dict(self.options)}
        models = self.cls.model_hashes(options)
        return config_hash({**options, "_models": models} if models else options)

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
    #: Directory producers: ``(utterance id, sha256 or None)`` of each file when it was
    #: checked; a worker refuses a file whose bytes differ by then.
    digests: tuple[tuple[str, str | None], ...] = field(default=(), repr=False, compare=False)

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
    #: Inference threads per worker; 0 keeps the worker environment's ``OMP_NUM_THREADS``.
    threads_per_worker: int
    #: Release every model the current job does not need (one model per worker at a time).
    metric_at_a_time: bool = False
    #: Jobs a worker takes at once; each metric scores their utterances as one batch
    #: (:mod:`urgentbench.batching`). 1: one job at a time.
    batch_size: int = 1
    #: Identifies the suite's references for the reference-state files (empty: no files).
    reference_state_id: str = ""


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
    system = spec.build(**options)
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
    outputs never reuses stale results; the workers refuse a file whose bytes changed
    after this hash was taken. Only regular files are hashed: a special file (FIFO,
    device, directory, a link to one or out of ``directory``) is never opened, and
    counts as that utterance's unusable output (the worker stores the reason).

    Raises:
        RunError: When the directory does not exist.
    """
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise RunError(f"{directory}: outputs directory not found")
    digests = []
    recorded: list[tuple[str, str | None]] = []
    for utt_id in ids:
        path = find_output(directory, utt_id)
        if path is None:
            digest, sha = "missing", None
        else:
            try:
                digest = sha = file_sha256(path, inside=directory)
            except AudioError as exc:
                digest, sha = f"unusable ({exc.problem})", None
        digests.append(f"{utt_id}:{digest}")
        recorded.append((utt_id, sha))
    return ProducerSpec(
        name=name,
        config_hash=config_hash({"outputs": digests}),
        directory=str(directory),
        display_name=name,
        metadata=tuple(sorted((metadata or {"outputs": str(directory)}).items())),
        digests=tuple(recorded),
    )


def find_output(directory: Path, utt_id: str) -> Path | None:
    """The enhanced file for ``utt_id`` in ``directory``, if any entry of that name exists.

    Checked with ``lstat`` only (nothing is opened or followed): the entry may still be a
    directory, a FIFO or a link, which :func:`read_output` refuses with its reason.
    """
    for ext in AUDIO_EXTENSIONS:
        p = directory / f"{utt_id}{ext}"
        if os.path.lexists(p):
            return p
    return None


def resolve_metrics(
    names: list[str] | None,
    suite: Suite,
    skip_unavailable: bool = False,
    protocol: str | None = None,
    skipped: list[str] | None = None,
) -> list[MetricSpec]:
    """Turn metric names (default: the protocol's, else the suite's) into specs, checking availability up front.

    Args:
        names: Metric names; with a protocol, a subset of its metrics (they keep its options).
        suite: The suite whose metric list is the default.
        skip_unavailable: Skip unavailable metrics with a warning instead of failing.
        protocol: An evaluation protocol (``urgent2025``) that pins metrics and their options.
            Without ``names``, its unavailable metrics are skipped (a protocol is run as far as
            this machine allows); named metrics must be available.
        skipped: When given, receives one line per skipped metric: its name, why, and the
            command that enables it (protocol metrics with no implementation included).

    Raises:
        UnknownNameError: For an unknown metric or protocol.
        RunError: When a metric is unavailable (unless ``skip_unavailable``), or not part of
            the protocol.
    """
    specs: list[MetricSpec] = []
    problems = []
    pinned: dict[str, MetricSpec] = {}
    if protocol:
        from urgentbench.protocols import get_protocol

        edition = get_protocol(protocol)
        pinned = {s.name: s for s in edition.metric_specs()}
        if names:
            outside = [n for n in names if METRICS.get(n).name not in pinned]
            if outside:
                raise RunError(f"metric(s) {', '.join(outside)} are not part of protocol {protocol}")
        else:
            skip_unavailable = True
            if skipped is not None:
                for ref in edition.missing():
                    skipped.append(f"{ref.output}: not implemented here ({ref.deviation or ref.official})")
    for name in names or (list(pinned) if protocol else suite.metrics):
        cls = METRICS.get(name)
        spec = pinned.get(cls.name, MetricSpec(cls.name))
        if spec in specs:
            continue
        avail = cls.availability(dict(spec.options))
        if not avail.ok:
            if skip_unavailable:
                logger.warning("skipping metric %s: %s", cls.name, avail.summary())
                if skipped is not None:
                    skipped.append(f"{cls.name}: {avail.summary()}")
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
    """The noisy input and reference of ``utt``, rendered once and cached as 16-bit FLAC.

    Each cached file's sha256 is recorded when it is written and verified when it is
    read; a damaged, replaced or unrecorded cache entry is rendered again (with a warning).
    """
    noisy_path, ref_path = input_paths(results_dir, suite_key, utt.id)
    if os.path.lexists(noisy_path):
        try:
            noisy = _cached_audio(noisy_path, utt.sample_rate)
            reference = _cached_audio(ref_path, utt.sample_rate) if utt.has_reference else None
            if reference is not None and len(reference) != len(noisy):
                raise AudioError(ref_path, f"{len(reference)} samples, but the cached noisy input has {len(noisy)}")
            return noisy, reference
        except AudioError as exc:  # no record (an older cache) is expected once, not a damage
            level = logging.INFO if isinstance(exc, MissingChecksumError) else logging.WARNING
            logger.log(level, "cached input %s; rendering it again", exc)
    from urgentbench.simulation.render import render_utterance

    rendered = render_utterance(utt, suite_folder)
    if rendered.reference is not None:
        write_flac(ref_path, rendered.reference, utt.sample_rate, record_checksum=True)
    write_flac(noisy_path, rendered.noisy, utt.sample_rate, record_checksum=True)
    return rendered.noisy, rendered.reference


def _cached_audio(path: Path, sample_rate: int) -> np.ndarray:
    """A cached waveform verified against its recorded sha256 and rate.

    Raises:
        AudioError: (or :class:`~urgentbench.audio.ChecksumError`) When it is missing,
            damaged, replaced or at another rate.
    """
    x, sr = read_checked_flac(path)
    if sr != sample_rate:
        raise AudioError(path, f"sample rate {sr} Hz, expected {sample_rate} Hz")
    return x


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


def max_output_bytes(expected_len: int) -> int:
    """Largest accepted size of an output file of ``expected_len`` samples.

    16 bytes a sample (stereo 64-bit float WAV, which is refused later for its channels
    anyway) plus 16 MiB for headers and metadata (cover art, tags).
    """
    return 16 * expected_len + (16 << 20)


def read_output(
    path: Path | None,
    utt: Utterance,
    expected_len: int,
    source: str,
    *,
    inside: Path | None = None,
    sha256: str | None = None,
) -> np.ndarray:
    """Read and validate an outside system's enhanced file (same rate and length as the input).

    Only a regular file is opened (or a link to one inside ``inside``), and it is read
    once: the same bytes are hashed (compared with ``sha256``, the digest taken when the
    outputs were checked), probed and decoded. The header's encoding, rate, channels and
    length are checked before any sample is decoded, so a forged header cannot make the
    reader allocate billions of samples.

    Raises:
        AudioError: For a missing or special file, a file changed since it was checked,
            lossy content, wrong rate, channels or length, or bad content.
    """
    if path is None:
        raise AudioError(source, "enhanced file not found (expected <id>.flac or <id>.wav)")
    data = read_file_bytes(path, inside=inside, max_bytes=max_output_bytes(expected_len))
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise AudioError(path, "changed after the outputs were checked (sha256 differs); refused")
    info = probe_audio(data, path)
    lossy = lossy_problem(info, path)
    if lossy:
        raise AudioError(path, lossy)
    if info.sample_rate != utt.sample_rate:
        raise AudioError(path, f"sample rate {info.sample_rate} Hz, expected the input's {utt.sample_rate} Hz")
    if info.channels != 1:
        raise AudioError(path, f"expected mono audio, got {info.channels} channels")
    too_long = f"expected exactly the input's {expected_len} (outputs are never trimmed or padded)"
    if info.frames > expected_len:
        raise AudioError(path, f"{info.frames} samples, {too_long}")
    y, _ = decode_audio(data, path, max_frames=expected_len)
    if len(y) != expected_len:
        raise AudioError(path, f"{len(y)} samples, {too_long}")
    return y


# --------------------------------------------------------------------------- worker side


def setup_failure_message(spec: MetricSpec, exc: BaseException) -> str:
    """One line saying that metric ``spec`` could not be set up, why, and the command that fixes it.

    An asset error carries its own fix (``urgentbench assets fetch ...``/``assets add ...``);
    anything else points to the checks, and to the repair commands of the metric's assets.
    """
    text = _one_line(exc)
    line = f"metric {spec.name} could not be set up: {text}"
    if "fix:" in text:
        return line
    fixes = []
    try:
        for asset in spec.cls.assets_for({**spec.cls.default_options(), **dict(spec.options)}):
            repair = getattr(asset, "repair_fix", None)
            if repair is not None:
                fixes.append(repair())
    except Exception:  # listing the assets must not hide the original failure
        logger.debug("cannot list the assets of %s", spec.name, exc_info=True)
    repair = f"; its model files are repaired with {', or '.join(fixes)}" if fixes else ""
    return f"{line}; check it with `urgentbench ls metrics` and `urgentbench assets verify`{repair}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def silence_problem(x: np.ndarray) -> str | None:
    """Why an enhanced waveform counts as silent (a participant's failure), or None.

    Silent means every sample rounds to zero on the 16-bit grid (peak at most half a
    16-bit step, 2**-16, about -96 dBFS): such an output is all zeros in URGENT's 16-bit
    submission format, and metrics give it meaningless numbers (ESTOI about 0, SDR -50 dB)
    or fail. A quieter-than-that float or 24-bit file is no different from digital silence.
    """
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return "silent output (all samples zero)"
    if not np.any(np.round(np.asarray(x, dtype=np.float64) * PCM16_SCALE)):
        return f"silent output (peak {peak:.2g}: every sample rounds to zero at 16 bit)"
    return None


def _no_output(job: Job, producer: ProducerSpec, utt_id: str, reason: str, failure: str, start: float) -> JobResult:
    """The result of a job without usable enhanced audio: every metric of it fails with ``reason``."""
    return JobResult(
        job,
        [(i, None, reason, 0.0) for i in job.metrics],
        [f"{producer.name}/{utt_id}: {reason}"],
        enhance_error=reason,
        busy_seconds=time.perf_counter() - start,
        enhance_failure=failure,
    )


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
    that a worker holds one model at a time. Jobs are processed one at a time (a lock
    serialises threads of a multi-threaded Dask worker: several metrics seed numpy's global
    RNG, so they must not run concurrently in one process).
    """

    def __init__(self, ctx: WorkerContext):
        self.ctx = ctx
        self.systems: dict[int, System] = {}
        self.metrics: dict[int, Metric] = {}
        self.lock = threading.Lock()
        self.thread_limits = configure_threads(ctx.threads_per_worker)
        root = Path(ctx.results_dir) / REFERENCE_STATE_FOLDER if ctx.reference_state_id else None
        self.reference_states = ReferenceStateCache(root, ctx.reference_state_id)
        self._metric_ids: dict[int, str] = {}
        self._digests: dict[int, dict[str, str | None]] = {}
        #: Metric index -> why its set-up failed (it is not tried again by this worker).
        self.setup_failures: dict[int, str] = {}

    def metric_id(self, index: int) -> str:
        """``name-vVERSION-OPTIONSHASH`` of metric ``index`` (its options hash includes checkpoint digests)."""
        if index not in self._metric_ids:
            spec = self.ctx.metrics[index]
            self._metric_ids[index] = f"{spec.name}-v{spec.cls.version}-{spec.options_hash}"
        return self._metric_ids[index]

    def system(self, index: int) -> System:
        """The set-up system of producer ``index``."""
        if index not in self.systems:
            spec = self.ctx.producers[index]
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
            return self.metrics[index], 0.0
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
        for package in spec.cls.packages:
            try:
                importlib.import_module(package.module)
            except Exception:  # compute() reports it with the install hint
                logger.debug("pre-import of %s failed", package.module, exc_info=True)
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

    def cached_output(
        self, path: Path, producer: ProducerSpec, utt: Utterance, noisy: np.ndarray, decode: bool = True
    ) -> np.ndarray | None:
        """A system's cached enhanced output, verified against its recorded sha256, or None to enhance again.

        A missing file is None silently; a damaged, replaced or unrecorded one is None with
        a warning (the system's output is then produced again and re-recorded).
        ``decode=False`` only verifies the bytes and returns ``noisy`` as a placeholder.
        """
        if not os.path.lexists(path):
            return None
        try:
            if not decode:
                read_checked_bytes(path)
                return noisy
            enhanced = _cached_audio(path, utt.sample_rate)
            if len(enhanced) != len(noisy):
                raise AudioError(path, f"{len(enhanced)} samples, expected the input's {len(noisy)}")
            return enhanced
        except MissingChecksumError as exc:  # an older cache: expected once, not a damage
            logger.info("cached output %s; enhancing %s again with %s", exc, utt.id, producer.name)
            return None
        except AudioError as exc:
            logger.warning("cached output %s; enhancing %s again with %s", exc, utt.id, producer.name)
            return None

    def process(self, job: Job) -> JobResult:
        """Produce (or read) the enhanced audio of one utterance and compute the job's metrics."""
        with self.lock:
            return self._process(job)

    def process_batch(self, jobs: list[Job]) -> list[JobResult]:
        """Process several jobs, each metric scoring all their utterances at once (:mod:`urgentbench.batching`)."""
        from urgentbench.batching import process_batch

        with self.lock:
            return process_batch(self, jobs, self._process)

    def _process(self, job: Job) -> JobResult:
        start = time.perf_counter()
        ctx = self.ctx
        if ctx.metric_at_a_time:
            self.release(job.producer if job.enhance_only else None, job.metrics)
        utt = Utterance.from_dict(job.utterance)
        producer = ctx.producers[job.producer]
        results_dir = Path(ctx.results_dir)
        messages: list[str] = []
        try:
            noisy, reference = load_inputs(utt, Path(ctx.suite_folder), results_dir, ctx.suite_key)
        except Exception as exc:  # the suite's input, not the system's output: not the participant's failure
            logger.debug("input failed: %s", traceback.format_exc())
            return _no_output(job, producer, utt.id, f"no input audio: {_one_line(exc)}", METRIC, start)
        try:
            if producer.is_directory:
                folder = Path(producer.directory)  # type: ignore[arg-type]
                path = find_output(folder, utt.id)
                enhanced = read_output(
                    path, utt, len(noisy), f"{producer.directory}/{utt.id}", inside=folder,
                    sha256=self.output_digest(job.producer, utt.id),
                )
            else:
                out_path = enhanced_path(results_dir, ctx.suite_key, producer, utt.id)
                enhanced = self.cached_output(out_path, producer, utt, noisy, decode=bool(job.metrics))
                if enhanced is None:
                    enhanced, clipped = run_system(self.system(job.producer), noisy, utt.sample_rate, str(out_path))
                    if clipped:
                        messages.append(f"{utt.id}: {clipped} samples of the {producer.name} output clipped to 16 bit")
                    write_flac(out_path, enhanced, utt.sample_rate, record_checksum=True)
        except Exception as exc:  # one bad utterance never kills a run
            logger.debug("job failed: %s", traceback.format_exc())
            return _no_output(job, producer, utt.id, f"no enhanced audio: {_one_line(exc)}", PARTICIPANT, start)
        silent = None if enhanced is noisy else silence_problem(enhanced)  # noisy: a cached output not read
        if silent:  # one check for every metric: no metric ever scores a silent output
            return _no_output(job, producer, utt.id, silent, PARTICIPANT, start)

        by_rate: dict[int, tuple[np.ndarray, np.ndarray | None]] = {utt.sample_rate: (enhanced, reference)}
        out = []
        setup_seconds = 0.0
        setup_failures: dict[int, str] = {}
        for index in job.metrics:
            try:
                metric, took = self.metric(index)  # set up once per worker, not timed as kernel
                setup_seconds += took
            except MetricSetupError as exc:  # a run-level error: no row for this utterance
                setup_failures[index] = str(exc)
                continue
            t0 = time.perf_counter()
            try:
                rate = metric.working_rate(utt.sample_rate)
                if rate not in by_rate:
                    by_rate[rate] = (
                        resample(enhanced, utt.sample_rate, rate),
                        None if reference is None else resample(reference, utt.sample_rate, rate),
                    )
                est, ref = by_rate[rate]
                if ref is not None and isinstance(metric, Metric) and metric.reference_state_cacheable:
                    state = self.reference_states.get(metric, self.metric_id(index), utt.id, ref, rate)
                    result = metric.compute_with_state(est, ref, state, rate, transcript=utt.text)
                else:
                    result = metric.compute(est, ref, rate, transcript=utt.text)
                out.append((index, result, None, time.perf_counter() - t0))
            except MetricError as exc:
                out.append((index, None, str(exc).splitlines()[0], time.perf_counter() - t0))
            except Exception as exc:  # a crashing metric is recorded, the run goes on
                logger.debug("metric crashed: %s", traceback.format_exc())
                out.append((index, None, _one_line(exc), time.perf_counter() - t0))
        return JobResult(
            job, out, messages, setup_seconds=setup_seconds, busy_seconds=time.perf_counter() - start,
            setup_failures=setup_failures,
        )


#: The state of a process-pool worker (or of the parent when running in-process).
_STATE: WorkerState | None = None


def _init_worker(ctx: WorkerContext) -> None:
    global _STATE
    _STATE = WorkerState(ctx)


def process_job(job: Job) -> JobResult:
    """Process one job in this process's worker state (set by the pool initialiser)."""
    if _STATE is None:
        raise RuntimeError("worker not initialised")
    return _STATE.process(job)


def process_jobs(jobs: list[Job]) -> list[JobResult]:
    """Process a batch of jobs in this process's worker state (:meth:`WorkerState.process_batch`)."""
    if _STATE is None:
        raise RuntimeError("worker not initialised")
    return _STATE.process_batch(jobs)


def job_batches(jobs: Iterable[Job], size: int) -> Iterator[list[Job]]:
    """Consecutive lists of at most ``size`` jobs (streamed)."""
    queue = iter(jobs)
    while batch := list(itertools.islice(queue, max(1, size))):
        yield batch


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


def iter_utterances(suite: Suite, limit: int | None = None) -> Iterator[Utterance]:
    """Stream the suite's utterances from its manifest (verified first), one line at a time.

    Raises:
        SuiteError: When the manifest is missing, modified or has a bad line.
    """
    from urgentbench.manifest import ManifestError, read_manifest
    from urgentbench.suites import SuiteError

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


def plan_jobs(
    store: ResultStore,
    suite: Suite,
    utterances: Iterable[Utterance],
    producers: list[ProducerSpec],
    metrics: list[MetricSpec],
    retry_errors: bool = False,
) -> list[Job]:
    """Jobs for everything not yet in the store (as a list; :func:`run` streams them instead)."""
    done = [[store.done(score_key(suite, p, m), include_errors=not retry_errors) for m in metrics] for p in producers]
    return list(iter_jobs(utterances, producers, metrics, done))


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
    """Jobs run one after another in this process (``--jobs 1``)."""

    def __init__(self, ctx: WorkerContext):
        global _STATE
        self._environ = dict(os.environ)
        _STATE = WorkerState(ctx)
        self.state = _STATE

    def stream(self, jobs: Iterable[Job], on_result: Callable[[JobResult], None]) -> None:
        """See :meth:`Backend.stream`."""
        for batch in job_batches(jobs, self.state.ctx.batch_size):
            for result in self.state.process_batch(batch):
                on_result(result)

    def close(self) -> None:
        """Drop the loaded models and give this process its thread settings back."""
        global _STATE
        if self.state.thread_limits is not None:
            self.state.thread_limits.restore_original_limits()
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "URGENTBENCH_THREADS"):
            if var in self._environ:
                os.environ[var] = self._environ[var]
            else:
                os.environ.pop(var, None)
        _STATE = None


class PoolBackend(Backend):
    """A pool of ``n`` spawned worker processes; at most ``4 n`` jobs are in flight."""

    def __init__(self, ctx: WorkerContext, n: int):
        self.workers = n
        self.batch_size = ctx.batch_size
        self.pool = ProcessPoolExecutor(n, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(ctx,))

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
        """Shut the pool down."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def execute(jobs: Iterable[Job], ctx: WorkerContext, n_workers: int, on_result: Callable[[JobResult], None]) -> None:
    """Run jobs in-process (one worker) or over a spawned process pool, streaming results."""
    backend: Backend = InlineBackend(ctx) if n_workers <= 1 else PoolBackend(ctx, n_workers)
    with backend:
        backend.stream(jobs, on_result)


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
    protocol: str | None = None,
    scheduler: str | None = None,
    metric_at_a_time: bool = False,
    batch_size: int = 1,
    reference_cache: bool = True,
    threads_per_worker: int | None = None,
) -> RunReport:
    """Enhance and score ``suite`` for every producer, computing only what is missing.

    The manifest is streamed and jobs are submitted lazily (a bounded number in flight);
    results are written to the store, one transaction per job, as they arrive, so memory
    does not grow with the suite and an interrupted run resumes where it stopped.

    Args:
        suite: The suite (its manifest is verified against the card's sha256).
        producers: Systems and/or output directories.
        metrics: Metrics to compute.
        results_dir: Folder of the SQLite store, cached inputs and enhanced audio. With a
            remote Dask cluster it must be on a file system the workers share.
        jobs: Worker processes of the local pool (ignored with ``scheduler``).
        limit: Only the first ``limit`` utterances.
        retry_errors: Recompute rows stored as errors.
        command: The command line, for provenance.
        progress: Show a progress bar.
        protocol: Name of the evaluation protocol followed (recorded in the run's provenance).
        scheduler: Run on Dask: ``"local:N"`` starts a local cluster of N single-threaded
            worker processes; ``"tcp://host:8786"`` (or a scheduler JSON file) joins an
            existing cluster. None: the plain local process pool (Dask is not imported).
        metric_at_a_time: Load one heavy model at a time: first every system enhances all
            utterances, then each metric scores everything before the next is loaded.
        batch_size: Jobs a worker takes at once; each metric scores their utterances as
            one batch (length-bucketed where its backend batches; values equal to
            one-at-a-time scoring within 1e-6, Whisper transcripts identical).
        reference_cache: Keep reference-only metric state (MCD's reference mel-cepstra) in
            ``<results_dir>/reference-state/`` and reuse it for every system and later runs
            (:mod:`urgentbench.reference_cache`); values are identical either way.
        threads_per_worker: Model-inference threads of each local worker (ONNX Runtime,
            CTranslate2, torch); default: the machine's cores divided by the workers, so
            ``jobs=1`` uses every core. BLAS is always single-threaded.

    Returns:
        A :class:`RunReport`.

    Raises:
        RunError: For a bad ``scheduler`` value or a cluster that cannot be reached, or a
            ``batch_size`` or ``threads_per_worker`` below 1.
    """
    from tqdm import tqdm

    from urgentbench.provenance import collect_provenance

    from urgentbench.validation import require_int

    require_int(batch_size, "batch size", error=RunError)
    if threads_per_worker is not None:
        require_int(threads_per_worker, "threads per worker", error=RunError)
    require_int(jobs, "jobs", error=RunError)
    if limit is not None:
        require_int(limit, "limit", error=RunError)
    if scheduler:  # a malformed value fails before anything is written
        from urgentbench.distributed import parse_scheduler

        parse_scheduler(scheduler)
    results_dir = Path(results_dir).resolve()
    start = time.perf_counter()
    with ResultStore(results_dir / "results.sqlite") as store:
        for p in producers:
            store.register_system(suite.name, suite.version, p.name, p.config_hash, p.display_name, dict(p.metadata))
        keys = [[score_key(suite, p, m) for m in metrics] for p in producers]
        done_cache: dict[int, list[set[str]]] = {}

        def done_for(p_index: int) -> list[set[str]]:
            """Ids stored per metric for one producer (only the latest producer's are kept)."""
            if p_index not in done_cache:
                done_cache.clear()
                done_cache[p_index] = [store.done(k, include_errors=not retry_errors) for k in keys[p_index]]
            return done_cache[p_index]

        #: metrics whose set-up failed in a worker: left out of the jobs still to submit
        failed_setup: set[int] = set()

        def phase_jobs(**kw: Any) -> Iterator[Job]:
            for job in iter_jobs(lambda: iter_utterances(suite, limit), producers, metrics, done_for, **kw):
                if failed_setup and not job.enhance_only:
                    kept = tuple(m for m in job.metrics if m not in failed_setup)
                    if not kept:
                        bar.update(1)
                        continue
                    job = dataclasses.replace(job, metrics=kept)
                yield job

        if metric_at_a_time:
            total = sum(1 for _ in phase_jobs(enhance_only=True))
            total += sum(1 for m in range(len(metrics)) for _ in phase_jobs(only_metrics=(m,)))
        else:
            total = sum(1 for _ in phase_jobs())
        run_id = store.start_run(
            suite.name, suite.version, command, collect_provenance(suite, producers, metrics, protocol)
        )
        report = RunReport(run_id=run_id, jobs=total, rows_written=0)
        ctx = WorkerContext(
            suite_folder=str(suite.folder),
            suite_key=suite.key,
            suite_rate=suite.sample_rate,
            results_dir=str(results_dir),
            producers=tuple(producers),
            metrics=tuple(metrics),
            threads_per_worker=1,
            metric_at_a_time=metric_at_a_time,
            batch_size=batch_size,
            reference_state_id=f"{suite.key}-{suite.manifest_sha256[:16]}" if reference_cache else "",
        )
        bar = tqdm(total=total, disable=not progress, unit="job", desc=suite.key)
        failed_enhancement: set[tuple[int, str]] = set()
        #: (producer, utterance) of split jobs -> parts not yet back; the job counts as done with its last part
        split_parts: dict[tuple[int, str], int] = {}

        def split_tail(queue: Iterator[Job], n: int, k: int) -> Iterator[Job]:
            """Split each of the last ``k`` jobs into one job per metric, so workers finish together.

            Only jobs whose enhanced audio already exists (or comes from a folder) are split,
            so that no system enhances an utterance twice.
            """
            for i, job in enumerate(queue):
                producer = producers[job.producer]
                if i >= n - k and len(job.metrics) > 1 and (
                    producer.is_directory or enhanced_path(results_dir, suite.key, producer, job.utterance["id"]).exists()
                ):
                    split_parts[(job.producer, job.utterance["id"])] = len(job.metrics)
                    for m in job.metrics:
                        yield dataclasses.replace(job, metrics=(m,))
                else:
                    yield job

        def on_result(res: JobResult) -> None:
            job = res.job
            producer = producers[job.producer]
            utt_id = job.utterance["id"]
            # whose failure an error row is: the participant's when there is no usable output
            failure = res.enhance_failure if res.enhance_error else METRIC
            rows = [
                ScoreRow(keys[job.producer][i], utt_id, result, error, seconds, failure if error else None)
                for i, result, error, seconds in res.results
            ]
            if res.enhance_error and job.enhance_only:
                # record the failure once for every metric still missing; later phases skip the pair
                failed_enhancement.add((job.producer, utt_id))
                rows = [
                    ScoreRow(keys[job.producer][m], utt_id, None, res.enhance_error, 0.0, res.enhance_failure)
                    for m in job.pending
                ]
            if rows:
                store.write(rows, run_id)
            part = (job.producer, utt_id)
            if part in split_parts:
                split_parts[part] -= 1
                finished = split_parts[part] == 0
                if finished:
                    del split_parts[part]
            else:
                finished = True
            report.jobs_done += finished
            report.rows_written += len(rows)
            report.kernel_seconds += sum(r.seconds for r in rows if r.error is None)
            report.setup_seconds += res.setup_seconds
            report.busy_seconds += res.busy_seconds
            for msg in res.messages:
                logger.warning(msg)
                report.errors.append(msg)
            for row in rows:
                if row.error:
                    report.errors.append(f"{producer.name}/{row.utt_id}/{row.key.metric}: {row.error}")
            for index, message in res.setup_failures.items():  # reported once, never stored
                failed_setup.add(index)
                if metrics[index].name not in report.setup_failures:
                    report.setup_failures[metrics[index].name] = message
                    logger.error("%s; nothing is stored for it, the other metrics go on", message)
            bar.update(int(finished))

        try:
            with _backend(ctx, scheduler, max(1, min(jobs, total)), threads_per_worker) as backend:
                report.workers = backend.workers
                if not metric_at_a_time:
                    backend.stream(split_tail(phase_jobs(), total, 2 * backend.workers), on_result)
                else:
                    backend.stream(phase_jobs(enhance_only=True), on_result)
                    for m in range(len(metrics)):
                        backend.stream(
                            phase_jobs(only_metrics=(m,), skip=lambda p, u: (p, u) in failed_enhancement), on_result
                        )
        finally:
            bar.close()
        store.finish_run(run_id)
    report.seconds = time.perf_counter() - start
    return report


def _backend(ctx: WorkerContext, scheduler: str | None, n_workers: int, threads: int | None = None) -> Backend:
    """The backend for a run: Dask when a scheduler is given, else a pool (or in-process for one worker)."""
    if scheduler:
        from urgentbench.distributed import DaskBackend

        return DaskBackend(ctx, scheduler)
    threads = threads or max(1, (os.cpu_count() or 1) // n_workers)
    ctx = dataclasses.replace(ctx, threads_per_worker=threads)
    return InlineBackend(ctx) if n_workers <= 1 else PoolBackend(ctx, n_workers)
