"""Preparation: a job's audio, ready to score (the first half of a job; scoring is :mod:`.score`).

:func:`prepare` reads (or renders and caches) the utterance's noisy input and reference,
obtains the enhanced output once (an outside file, checked; or a system's output, cached
as 16-bit FLAC with a recorded sha256), and refuses a silent output. The result,
:class:`Prepared`, resamples the pair once per rate the metrics ask for. A job whose
audio cannot be prepared carries the reason and whose failure it is instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from urgentbench.audio import (
    PCM16_SCALE,
    AudioError,
    MissingChecksumError,
    check_waveform,
    decode_audio,
    fit_length,
    lossy_problem,
    probe_audio,
    read_checked_bytes,
    read_file_bytes,
    resample,
    to_pcm16_grid,
    write_flac,
)
from urgentbench.errors import one_line
from urgentbench.layout import enhanced_path, find_output, input_paths, read_cached_audio, read_cached_inputs
from urgentbench.manifest import Utterance
from urgentbench.pipeline.plan import Job
from urgentbench.pipeline.specs import ProducerSpec
from urgentbench.simulation.render import render_utterance
from urgentbench.store import METRIC, PARTICIPANT
from urgentbench.systems import System

#: One logger for the pipeline: users see "urgentbench.pipeline" whichever stage speaks.
logger = logging.getLogger(__package__)


def load_inputs(utt: Utterance, suite_folder: Path, results_dir: Path, suite_key: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The noisy input and reference of ``utt``, rendered once and cached as 16-bit FLAC.

    Each cached file's sha256 is recorded when it is written and verified when it is
    read; a damaged, replaced or unrecorded cache entry is rendered again (with a warning).
    """
    cached = read_cached_inputs(utt, results_dir, suite_key, then="rendering it again")
    if cached is not None:
        return cached
    noisy_path, ref_path = input_paths(results_dir, suite_key, utt.id)
    rendered = render_utterance(utt, suite_folder)
    if rendered.reference is not None:
        write_flac(ref_path, rendered.reference, utt.sample_rate, record_checksum=True)
    write_flac(noisy_path, rendered.noisy, utt.sample_rate, record_checksum=True)
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


def read_cached_output(
    path: Path, producer: ProducerSpec, utt: Utterance, noisy: np.ndarray, decode: bool = True
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
        enhanced = read_cached_audio(path, utt.sample_rate)
        if len(enhanced) != len(noisy):
            raise AudioError(path, f"{len(enhanced)} samples, expected the input's {len(noisy)}")
        return enhanced
    except MissingChecksumError as exc:  # an older cache: expected once, not a damage
        logger.info("cached output %s; enhancing %s again with %s", exc, utt.id, producer.name)
        return None
    except AudioError as exc:
        logger.warning("cached output %s; enhancing %s again with %s", exc, utt.id, producer.name)
        return None


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


@dataclass
class Prepared:
    """A job's audio ready to score, or why there is none.

    ``error`` (with ``failure``: whose it is) is set when the job has no usable enhanced
    audio; every metric of the job then fails with it. Otherwise :meth:`at_rate` gives the
    enhanced/reference pair at any rate, resampled once.
    """

    job: Job
    utt: Utterance
    enhanced: np.ndarray | None = None
    reference: np.ndarray | None = None
    messages: list[str] = field(default_factory=list)
    #: Seconds spent preparing (reading, rendering, enhancing).
    seconds: float = 0.0
    error: str | None = None
    failure: str = PARTICIPANT
    _rates: dict[int, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict, repr=False)

    def at_rate(self, rate: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The enhanced audio and reference at ``rate`` (soxr HQ; resampled once per rate)."""
        if not self._rates:
            self._rates[self.utt.sample_rate] = (self.enhanced, self.reference)  # type: ignore[assignment]
        if rate not in self._rates:
            native = self.utt.sample_rate
            self._rates[rate] = (
                resample(self.enhanced, native, rate),
                None if self.reference is None else resample(self.reference, native, rate),
            )
        return self._rates[rate]


def prepare(
    job: Job,
    producer: ProducerSpec,
    suite_folder: Path,
    results_dir: Path,
    suite_key: str,
    system: Callable[[], System],
    sha256: str | None = None,
) -> Prepared:
    """Read or render the inputs of ``job`` and obtain its enhanced audio (the job's first half).

    Args:
        job: The job.
        producer: Its producer.
        suite_folder: The suite's folder (sources of rendered inputs).
        results_dir: The results folder (cached inputs and enhanced audio).
        suite_key: ``name@version`` of the suite.
        system: Returns the producer's set-up system (called only when it must enhance).
        sha256: Directory producers: the digest the file had when the outputs were checked.

    Returns:
        The :class:`Prepared` job; never raises for a bad utterance (the reason is kept).
    """
    start = time.perf_counter()
    utt = Utterance.from_dict(job.utterance)
    prepared = Prepared(job, utt)
    try:
        noisy, reference = load_inputs(utt, suite_folder, results_dir, suite_key)
    except Exception as exc:  # the suite's input, not the system's output: not the participant's failure
        logger.debug("input failed: %s", traceback.format_exc())
        return _failed(prepared, f"no input audio: {one_line(exc)}", METRIC, start)
    try:
        if producer.is_directory:
            folder = Path(producer.directory)  # type: ignore[arg-type]
            enhanced = read_output(
                find_output(folder, utt.id), utt, len(noisy), f"{producer.directory}/{utt.id}", inside=folder,
                sha256=sha256,
            )
        else:
            out_path = enhanced_path(results_dir, suite_key, producer.name, producer.config_hash, utt.id)
            enhanced = read_cached_output(out_path, producer, utt, noisy, decode=bool(job.metrics))
            if enhanced is None:
                enhanced, clipped = run_system(system(), noisy, utt.sample_rate, str(out_path))
                if clipped:
                    prepared.messages.append(f"{utt.id}: {clipped} samples of the {producer.name} output clipped to 16 bit")
                write_flac(out_path, enhanced, utt.sample_rate, record_checksum=True)
    except Exception as exc:  # one bad utterance never kills a run
        logger.debug("job failed: %s", traceback.format_exc())
        return _failed(prepared, f"no enhanced audio: {one_line(exc)}", PARTICIPANT, start)
    silent = None if enhanced is noisy else silence_problem(enhanced)  # noisy: a cached output not read
    if silent:  # one check for every metric: no metric ever scores a silent output
        return _failed(prepared, silent, PARTICIPANT, start)
    prepared.enhanced, prepared.reference = enhanced, reference
    prepared.seconds = time.perf_counter() - start
    return prepared


def _failed(prepared: Prepared, reason: str, failure: str, start: float) -> Prepared:
    prepared.error, prepared.failure = reason, failure
    prepared.seconds = time.perf_counter() - start
    return prepared
