"""The results folder: where the store, the rendered inputs and the enhanced outputs live.

::

    <results>/results.sqlite                                       the scores (urgentbench.store)
    <results>/inputs/<suite@version>/noisy/<utt>.flac              rendered inputs, cached
    <results>/inputs/<suite@version>/reference/<utt>.flac          and their references
    <results>/enhanced/<suite@version>/<system>-<config>/<utt>.flac  systems' outputs
    <results>/reference-state/...                                   reference-only metric state
                                                                    (urgentbench.reference_cache)
    <results>/submissions/<suite>-XXXX/                             archives being scored (removed)

This module is the only place that spells these names.

Cached inputs are 16-bit FLAC written with a recorded sha256
(:func:`urgentbench.audio.write_flac` with ``record_checksum``); :func:`read_cached_inputs`
verifies them, and :func:`input_audio` falls back to rendering the utterance when the cache
is missing or damaged (without writing it: the runner owns the cache).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from urgentbench.audio import AudioError, MissingChecksumError, read_checked_flac
from urgentbench.manifest import Utterance
from urgentbench.simulation.render import render_utterance

logger = logging.getLogger(__name__)

STORE_FILE = "results.sqlite"
#: Sub-folders of a results folder.
INPUTS_DIR = "inputs"
ENHANCED_DIR = "enhanced"
REFERENCE_STATE_DIR = "reference-state"
SUBMISSIONS_DIR = "submissions"
#: Extensions of a system's output file, in the order they are looked for.
AUDIO_EXTENSIONS = (".flac", ".wav")


def store_path(results_dir: str | os.PathLike) -> Path:
    """The SQLite store of a results folder."""
    return Path(results_dir) / STORE_FILE


def input_paths(results_dir: Path, suite_key: str, utt_id: str) -> tuple[Path, Path]:
    """Cache paths of the rendered noisy input and reference of an utterance."""
    base = Path(results_dir) / INPUTS_DIR / suite_key
    return base / "noisy" / f"{utt_id}.flac", base / "reference" / f"{utt_id}.flac"


def enhanced_dir(results_dir: Path, suite_key: str, system: str, config_hash: str) -> Path:
    """The folder of a system configuration's enhanced outputs on a suite."""
    return Path(results_dir) / ENHANCED_DIR / suite_key / f"{system}-{config_hash}"


def enhanced_path(results_dir: Path, suite_key: str, system: str, config_hash: str, utt_id: str) -> Path:
    """Where a system configuration's enhanced output of an utterance is stored."""
    return enhanced_dir(results_dir, suite_key, system, config_hash) / f"{utt_id}.flac"


def reference_state_dir(results_dir: str | os.PathLike) -> Path:
    """The folder of the reference-state files (:mod:`urgentbench.reference_cache`)."""
    return Path(results_dir) / REFERENCE_STATE_DIR


def submissions_dir(results_dir: str | os.PathLike) -> Path:
    """The default parent of a submission archive's extraction folder (removed after scoring)."""
    return Path(results_dir) / SUBMISSIONS_DIR


def find_output(directory: Path, utt_id: str) -> Path | None:
    """The enhanced file for ``utt_id`` in ``directory``, if any entry of that name exists.

    Checked with ``lstat`` only (nothing is opened or followed): the entry may still be a
    directory, a FIFO or a link, which the reader refuses with its reason.
    """
    for ext in AUDIO_EXTENSIONS:
        p = directory / f"{utt_id}{ext}"
        if os.path.lexists(p):
            return p
    return None


def read_cached_audio(path: Path, sample_rate: int) -> np.ndarray:
    """A cached waveform (input or enhanced output) verified against its recorded sha256 and rate.

    Raises:
        AudioError: (or :class:`~urgentbench.audio.ChecksumError`) When it is missing,
            damaged, replaced or at another rate.
    """
    x, sr = read_checked_flac(path)
    if sr != sample_rate:
        raise AudioError(path, f"sample rate {sr} Hz, expected {sample_rate} Hz")
    return x


def read_cached_inputs(
    utt: Utterance, results_dir: Path, suite_key: str, then: str = "not used"
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The cached noisy input and reference of ``utt``, verified; None when there is no usable cache.

    A damaged, replaced or unrecorded cache entry is logged (a missing record, as an older
    cache has, at info level) with ``then`` (what the caller does instead) and treated as absent.
    """
    noisy_path, ref_path = input_paths(results_dir, suite_key, utt.id)
    if not os.path.lexists(noisy_path):
        return None
    try:
        noisy = read_cached_audio(noisy_path, utt.sample_rate)
        reference = read_cached_audio(ref_path, utt.sample_rate) if utt.has_reference else None
        if reference is not None and len(reference) != len(noisy):
            raise AudioError(ref_path, f"{len(reference)} samples, but the cached noisy input has {len(noisy)}")
    except AudioError as exc:
        level = logging.INFO if isinstance(exc, MissingChecksumError) else logging.WARNING
        logger.log(level, "cached input %s; %s", exc, then)
        return None
    return noisy, reference


def input_audio(
    utt: Utterance, suite_folder: Path, results_dir: Path, suite_key: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """The noisy input and reference of ``utt``: from the cache, else rendered (nothing written).

    Raises:
        Exception: Whatever rendering raises (a corpus not prepared, a bad manifest entry).
    """
    cached = read_cached_inputs(utt, results_dir, suite_key)
    if cached is not None:
        return cached
    rendered = render_utterance(utt, suite_folder)
    return rendered.noisy, rendered.reference
