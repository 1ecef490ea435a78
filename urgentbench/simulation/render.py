"""Render one manifest utterance into its noisy input and reference, deterministically.

Simulated utterances (``clean`` set, ``noisy`` not set) are rendered as:

1. read ``clean`` (relative to the suite folder unless absolute) and resample it with
   soxr (HQ) to ``utt.sample_rate``;
2. apply ``utt.degradations`` in order to a :class:`RenderState` whose ``noisy`` and
   ``target`` both start as the clean speech;
3. scale both by ``0.9 / max(max|noisy|, max|target|)`` (URGENT's peak scaling) and
   round both to the 16-bit PCM grid.

Recorded utterances (``noisy`` set) are read, resampled to ``utt.sample_rate`` if
needed and rounded to the 16-bit grid; their optional reference is ``clean``, which
must have the same length. Their level is not changed. A file whose sha256 the manifest
records (``noisy_sha256``, ``clean_sha256``) is refused when its bytes differ.

The same manifest line always renders to the same samples: every random choice is a
seed in the manifest and all processing is single-threaded float64 (soxr HQ works in
float32 internally but deterministically). :func:`rendered_sha256` fingerprints the
result for the manifest's ``render_sha256``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from urgentbench.audio import PCM16_SCALE, AudioError, read_audio, resample, to_pcm16_grid
from urgentbench.hashing import sha256_file
from urgentbench.manifest import DegradationSpec, Utterance
from urgentbench.simulation.degradations import RenderState, build_degradation

__all__ = [
    "PEAK_LEVEL",
    "RenderedUtterance",
    "apply_chain",
    "finalise",
    "render_utterance",
    "rendered_sha256",
]

#: Peak level of the louder of noisy input and reference after rendering (URGENT: 0.9).
PEAK_LEVEL = 0.9


@dataclass(frozen=True)
class RenderedUtterance:
    """A rendered test item.

    Args:
        noisy: The degraded input (float32 on the 16-bit grid).
        reference: The reference for intrusive metrics (float32 on the 16-bit grid), or
            None when the utterance has no clean signal.
        sample_rate: Rate of both, in Hz.
    """

    noisy: np.ndarray
    reference: np.ndarray | None
    sample_rate: int

    @property
    def sha256(self) -> str:
        """:func:`rendered_sha256` of the noisy input."""
        return rendered_sha256(self.noisy)


def rendered_sha256(x: np.ndarray) -> str:
    """sha256 of a waveform as 16-bit little-endian PCM (what ``Utterance.render_sha256`` stores).

    Args:
        x: Waveform on (or near) the 16-bit grid, in [-1, 1).

    Returns:
        Hex digest of the int16 little-endian bytes of ``round(x * 32768)`` (clipped).
    """
    pcm = np.clip(np.round(np.asarray(x, dtype=np.float64) * PCM16_SCALE), -32768, 32767)
    return hashlib.sha256(pcm.astype("<i2").tobytes()).hexdigest()


def apply_chain(
    clean: np.ndarray, sample_rate: int, degradations: list[DegradationSpec]
) -> RenderState:
    """Apply a degradation chain to clean speech (no scaling, no quantisation).

    Args:
        clean: Clean speech at ``sample_rate``.
        sample_rate: Its rate in Hz.
        degradations: The chain, applied in order.

    Returns:
        The final :class:`RenderState` (float64).

    Raises:
        UnknownNameError: For an unregistered degradation.
        DegradationParamError: For bad parameters.
    """
    built = [build_degradation(spec) for spec in degradations]  # validate all before any work
    state = RenderState.from_clean(clean, sample_rate)
    for degradation in built:
        state = degradation.apply(state)
    return state


def finalise(state: RenderState, source: str | os.PathLike = "<render>") -> tuple[np.ndarray, np.ndarray]:
    """URGENT peak scaling of noisy and target together, then rounding to the 16-bit grid.

    Args:
        state: The degraded state.
        source: Name used in error messages.

    Returns:
        ``(noisy, target)`` as float32 on the 16-bit grid.

    Raises:
        AudioError: When the result is silent or not finite.
    """
    peak = max(float(np.max(np.abs(state.noisy))), float(np.max(np.abs(state.target))))
    if not np.isfinite(peak):
        raise AudioError(source, "rendering produced NaN or Inf samples")
    if peak <= 0.0:
        raise AudioError(source, "rendering produced pure silence")
    scale = PEAK_LEVEL / peak
    noisy, _ = to_pcm16_grid(state.noisy * scale)
    target, _ = to_pcm16_grid(state.target * scale)
    return noisy, target


def _resolve(path: str, suite_folder: Path) -> Path:
    """``@corpus/...`` into a prepared corpus; a relative path against the suite folder."""
    if path.startswith("@"):
        from urgentbench.data import resolve_corpus_path

        return resolve_corpus_path(path)
    p = Path(path)
    return p if p.is_absolute() else Path(suite_folder) / p


def _check_digest(path: Path, expected: str | None) -> None:
    """Refuse a source file whose bytes are not the ones the manifest recorded."""
    if not expected:
        return
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise AudioError(path, f"cannot be read ({exc.strerror or exc})") from None
    if actual != expected:
        raise AudioError(path, f"sha256 {actual} differs from the manifest's {expected}; the file changed since "
                               f"the suite was made (prepare or import it again)")


def _read_at(path: Path, sample_rate: int, *, allow_silence: bool = True) -> np.ndarray:
    x, sr = read_audio(path, allow_silence=allow_silence)
    return resample(x, sr, sample_rate)


def render_utterance(utt: Utterance, suite_folder: str | os.PathLike) -> RenderedUtterance:
    """Render an utterance's noisy input and reference.

    Args:
        utt: The manifest entry.
        suite_folder: Folder that relative ``clean`` / ``noisy`` paths are relative to.

    Returns:
        The rendered utterance at ``utt.sample_rate``.

    Raises:
        AudioError: For a missing or unreadable file, a silent clean file, or a recorded
            noisy input whose reference has a different length.
        UnknownNameError: For an unregistered degradation.
        DegradationParamError: For bad degradation parameters.
        ValueError: When a recorded utterance also lists degradations.
    """
    folder = Path(suite_folder)
    sr = int(utt.sample_rate)
    if utt.noisy is not None:
        if utt.degradations:
            raise ValueError(
                f"utterance {utt.id!r}: degradations apply only to simulated inputs, but it has a "
                f"recorded 'noisy' file"
            )
        noisy_path = _resolve(utt.noisy, folder)
        _check_digest(noisy_path, utt.noisy_sha256)
        noisy, _ = to_pcm16_grid(_read_at(noisy_path, sr))
        reference = None
        if utt.clean is not None:
            clean_path = _resolve(utt.clean, folder)
            _check_digest(clean_path, utt.clean_sha256)
            reference, _ = to_pcm16_grid(_read_at(clean_path, sr))
            if len(reference) != len(noisy):
                raise AudioError(
                    clean_path,
                    f"reference has {len(reference)} samples but the noisy input {noisy_path} has "
                    f"{len(noisy)} (at {sr} Hz)",
                )
        return RenderedUtterance(noisy=noisy, reference=reference, sample_rate=sr)

    if utt.clean is None:  # Utterance.from_dict forbids this, but objects can be built directly
        raise ValueError(f"utterance {utt.id!r} has neither 'clean' nor 'noisy'")
    clean_path = _resolve(utt.clean, folder)
    _check_digest(clean_path, utt.clean_sha256)
    clean = _read_at(clean_path, sr, allow_silence=False)
    state = apply_chain(clean, sr, utt.degradations)
    noisy, target = finalise(state, source=f"utterance {utt.id}")
    return RenderedUtterance(noisy=noisy, reference=target, sample_rate=sr)
