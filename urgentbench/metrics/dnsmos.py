"""DNSMOS P.835 (SIG, BAK, OVRL) and P.808: Microsoft's non-intrusive MOS predictors.

URGENT ranks only OVRL. The models are the official ONNX files of microsoft/DNS-Challenge
(``DNSMOS/sig_bak_ovr.onnx`` and ``DNSMOS/model_v8.onnx``), taken from the ``speechmos``
package, which ships byte-identical copies. Their sha256 is checked in :meth:`DNSMOS.setup`
because Microsoft replaced the P.835 model once and scores changed markedly.

The scoring follows the official ``dnsmos_local.py`` (as used by URGENT through ESPnet's
``DNSMOS_local``): the 16 kHz signal is repeated until it lasts at least 9.01 s, cut into
9.01 s windows with a 1 s hop (windows whose slice comes out one sample short through the
official float arithmetic are skipped, as there), each window is scored, the raw P.835
scores go through the non-personalised calibration polynomials, and the window scores are
averaged.

Samples outside [-1, 1]: ``speechmos.dnsmos.run`` rejects them, but that check is the only
difference from the official code, which scores such audio as it is. To reproduce the
official values this module runs the same computation itself, without the range check and
without rescaling; the tests check that it equals ``speechmos.dnsmos.run`` wherever the
latter accepts the input.

Shared work across windows. Consecutive windows overlap by 8 s, and both models start with
frame-local analysis (the P.835 graph: a 320-sample STFT with a 160-sample hop, a log power
spectrum and four 3x3 convolutions at full resolution, 97 % of its arithmetic; the P.808
input: a 321-point STFT and mel filterbank). A window starts on a whole frame of the
utterance (1 s = 100 frames), so a window's frames are the utterance's frames. This module
therefore

* splits the official P.835 graph in memory (``onnx``) into *spectrum* (frames -> log power
  spectrum), *convolutions* (-> the fourth convolution's output) and *head* (pooling, the
  remaining convolutions and the dense layers on one 900-frame window); every node of the
  official graph is in exactly one part, except the framing (Slice/Reshape/Concat), which
  is plain indexing done in numpy;
* runs the spectrum and the convolutions once over each stretch of overlapping windows
  (long stretches in tiles that see 4 frames of their neighbours, the convolutions' reach),
  and recomputes only a window's first and last 4 frames, which the official per-window
  run computes with zero padding, from an 8-frame piece of that window;
* computes the P.808 spectra of the union of frames once (the window's first and last
  frame, which touch its zero padding, separately), with the mel filterbank and window
  function computed once in :meth:`DNSMOS.setup`, then normalises each window as
  ``librosa.power_to_db(ref=np.max)`` does;
* runs the head and the P.808 model on batches of windows, across utterances in
  :meth:`DNSMOS.compute_batch`.

Every step is the official arithmetic on the same numbers; on onnxruntime's CPU kernels
(and numpy's FFT and BLAS) the results are bit-identical to the per-window run, which the
tests check on real speech (the tolerance they use is 1e-6).

The windows and the models' inputs are :mod:`urgentbench.metrics.dnsmos_features`; the graph
split and onnxruntime's providers :mod:`urgentbench.metrics.dnsmos_onnx`; this module runs them.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from urgentbench.metrics.base import BatchItem, MetricError, Output
from urgentbench.metrics.dnsmos_features import (
    FRAMES,
    HALO,
    P808_MELS,
    P808_NFFT,
    SR,
    Plan,
    Stretch,
    p808_features,
    repeat,
)
from urgentbench.metrics.dnsmos_onnx import (
    T_CONV,
    T_FRAMES,
    T_INPUT,
    T_LOGSPEC,
    execution_providers,
    split_p835_cached,
)
from urgentbench.metrics.model import ModelMetric
from urgentbench.requirements import PackageRequirement, pip

logger = logging.getLogger(__name__)

#: Most frames of one tile of the P.835 convolutions (longer stretches are cut into tiles).
_TILE = 2000
#: Most frames (all tiles together) in one call of the P.835 convolutions: bounds memory
#: (about 0.2 MB of activations per frame).
_CONV_FRAMES = 2400
#: Most windows in one call of the P.835 head (18.5 MB of input per window).
_HEAD_BATCH = 16
#: Most windows in one call of the P.808 model.
_P808_BATCH = 64
#: Most frames of utterance audio in one call of the P.835 spectrum part.
_SPECTRUM_FRAMES = 20000
#: Most edge pieces in one call of the P.835 convolutions.
_EDGE_BATCH = 512

#: Official model files (paths inside the speechmos package) and their sha256.
_MODELS = {
    "p835": (
        "dnsmos_models/sig_bak_ovr.onnx",
        "269fbebdb513aa23cddfbb593542ecc540284a91849ac50516870e1ac78f6edd",
    ),
    "p808": (
        "dnsmos_models/model_v8.onnx",
        "9246480c58567bc6affd4200938e77eef49468c8bc7ed3776d109c07456f6e91",
    ),
}

#: Non-personalised calibration polynomials of dnsmos_local.py (highest power first).
_POLY_SIG = (-0.08397278, 1.22083953, 0.0052439)
_POLY_BAK = (-0.13166888, 1.60915514, -0.39604546)
_POLY_OVRL = (-0.06766283, 1.11546468, 0.04602535)

class DNSMOS(ModelMetric):
    """DNSMOS P.835 SIG/BAK/OVRL and P.808 MOS of the enhanced speech (no reference needed).

    Options:
        threads: CPU threads: independent single-threaded ONNX calls run side by side on
            this many threads; None uses ``$URGENTBENCH_THREADS`` (set by the runner to
            cores // jobs) or, outside the runner, every core. The values do not depend on it.
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"`` (onnxruntime's CUDA
            execution provider; needs ``onnxruntime-gpu``).
        p808: Also run the P.808 model (default True). URGENT computes P.808 and discards
            it (only OVRL is ranked), so the URGENT protocols set False: ``dnsmos_p808`` is
            then not reported, the P.835 outputs are unchanged, and DNSMOS costs about a
            sixth less.
    """

    name: ClassVar[str] = "dnsmos"
    aliases: ClassVar[tuple[str, ...]] = ("dnsmos_ovrl",)
    description: ClassVar[str] = (
        "DNSMOS P.835 (SIG, BAK, OVRL) and P.808 non-intrusive MOS, official ONNX models"
    )
    category: ClassVar[str] = "non-intrusive"
    needs_reference: ClassVar[bool] = False
    sample_rate: ClassVar[int | None] = SR
    version: ClassVar[str] = "1"
    batch_size: ClassVar[int] = 16
    #: Its ``device`` option predates the options-hash rule: ``device="cpu"`` stays hashed.
    hash_cpu_device: ClassVar[bool] = True
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("dnsmos_ovrl", True, "DNSMOS P.835 overall quality (ranked by URGENT)"),
        Output("dnsmos_sig", True, "DNSMOS P.835 speech signal quality"),
        Output("dnsmos_bak", True, "DNSMOS P.835 background-noise quality"),
        Output("dnsmos_p808", True, "DNSMOS P.808 overall MOS"),
    )
    distributions: ClassVar[tuple[str, ...]] = ("speechmos", "onnxruntime", "onnx", "librosa")
    packages: ClassVar[tuple[PackageRequirement, ...]] = (
        PackageRequirement("speechmos", pip("speechmos==0.0.1.1")),
        PackageRequirement("onnxruntime", pip("onnxruntime")),
        PackageRequirement("onnx", pip("onnx")),
        PackageRequirement("librosa", pip("librosa")),
    )
    reference_implementation: ClassVar[str] = (
        "microsoft/DNS-Challenge DNSMOS/dnsmos_local.py, as run by URGENT's "
        "calculate_nonintrusive_dnsmos.py (espnet2.enh.layers.dnsmos.DNSMOS_local)"
    )

    def __init__(self, **options: Any):
        super().__init__(**options)
        if not isinstance(self.options["p808"], bool):
            raise ValueError(f"dnsmos: p808 must be true or false, got {self.options['p808']!r}")
        self._spectrum: Any = None
        self._convs: Any = None
        self._head: Any = None
        self._p808: Any = None
        self._mel_basis: np.ndarray | None = None
        self._fft_window: np.ndarray | None = None
        self._hashes: dict[str, str] = {}
        self._pool: Any = None

    @classmethod
    def hashed_options(cls, options: Any) -> dict[str, Any]:
        """The options as hashed: ``p808`` left out at its default (True).

        Scores stored before the option existed (which always ran P.808) keep their keys;
        ``p808=False`` reports one output fewer, so it is part of the key.
        """
        out = super().hashed_options(options)
        if out.get("p808") is True:
            del out["p808"]
        return out

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """The defaults: every core's threads on the CPU.

        ``threads``: CPU threads (None: ``$URGENTBENCH_THREADS`` or every core); ``device``:
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; ``p808``: also run the P.808 model.
        """
        return {"threads": None, "device": "cpu", "p808": True}

    def setup(self) -> None:
        """Check the model hashes, split the P.835 graph and open the ONNX sessions once.

        Raises:
            RuntimeError: When the installed model files are not the pinned official ones, or
                ``device`` asks for CUDA where onnxruntime has no CUDA execution provider.
            ValueError: For a bad ``threads`` or ``device`` option.
        """
        import librosa
        import onnxruntime as ort

        from urgentbench.assets import PackagePart
        from urgentbench.hashing import sha256_file

        providers, self._device = execution_providers(self.options["device"], ort.get_available_providers())
        self._threads = self.use_threads(torch=False) or os.cpu_count() or 1
        # Every call runs on one onnxruntime thread; on the CPU, independent calls (tiles of
        # the P.835 convolutions, the P.808 model) run side by side on ``threads`` Python
        # threads instead. On the project's shared 2-core VM (benchmarks/dnsmos_batch.py
        # --sweep) two intra-op threads in one call gained only 1.1-1.3x when the VM was
        # nearly idle and lost under load (0.8x), where side-by-side single-threaded calls
        # still gained 1.1-1.15x; two single-threaded worker processes gained 1.85-2x.
        # Single-threaded calls also keep the values independent of the thread count
        # (onnxruntime's per-thread blocks of element-wise ops round their boundary elements
        # differently: up to 3e-7 on OVRL). On CUDA one thread issues the calls.
        sess_options = ort.SessionOptions()
        sess_options.intra_op_num_threads = 1
        sess_options.inter_op_num_threads = 1
        sess_options.log_severity_level = 3
        self._pool = None
        paths = {}
        for key, (rel, expected) in _MODELS.items():
            path = PackagePart("speechmos", rel).locate()
            if path is None:
                raise RuntimeError(
                    f"DNSMOS model {rel} not found in the speechmos package; fix: {pip('speechmos==0.0.1.1')}"
                )
            digest = sha256_file(path)
            if digest != expected:
                raise RuntimeError(
                    f"DNSMOS model {path} has sha256 {digest[:12]}…, expected the official "
                    f"{expected[:12]}…; fix: pip install --force-reinstall speechmos==0.0.1.1"
                )
            self._hashes[rel.rsplit("/", 1)[-1]] = digest
            paths[key] = path

        def session(model: Any) -> Any:
            sess = ort.InferenceSession(model, sess_options, providers=providers)
            if self._device != "cpu" and "CUDAExecutionProvider" not in sess.get_providers():
                raise RuntimeError(
                    f"DNSMOS device={self.options['device']!r}: onnxruntime could not start its CUDA "
                    "execution provider (CUDA/cuDNN libraries missing?); use device='cpu'"
                )
            return sess

        spectrum, convs, head = split_p835_cached(paths["p835"], self._hashes["sig_bak_ovr.onnx"])
        self._spectrum, self._convs, self._head = session(spectrum), session(convs), session(head)
        if self.options["p808"]:
            self._p808 = session(str(paths["p808"]))
            # librosa.feature.melspectrogram's filterbank and window (float32 and float64, as there)
            self._mel_basis = librosa.filters.mel(sr=SR, n_fft=P808_NFFT, n_mels=P808_MELS)
            self._fft_window = librosa.filters.get_window("hann", P808_NFFT, fftbins=True)
        logger.debug("DNSMOS sessions ready on %s (%d threads)", self._device, self._threads)

    def import_packages(self) -> None:
        """Nothing beyond :meth:`setup`, which loaded onnxruntime.

        ``onnx`` is needed only to split the graph when its cached parts are missing
        (importing it costs about 1.5 s of CPU).
        """

    @classmethod
    def model_files(cls, options: dict[str, Any]) -> dict[str, str]:
        """The two official ONNX files and their sha256 (setup refuses any other file)."""
        return {rel.rsplit("/", 1)[-1]: sha for rel, sha in _MODELS.values()}

    def provenance(self) -> dict[str, Any]:
        """Version, options, model sha256s, device, threads and library versions."""
        prov = super().provenance()
        # setup() refuses any file but the pinned ones, so before setup the pins are what will run
        prov["models"] = dict(self._hashes) or self.model_files(self.options)
        return prov

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one 16 kHz waveform (all its windows through each model in one batch).

        Returns:
            ``dnsmos_ovrl``, ``dnsmos_sig``, ``dnsmos_bak`` and (unless option ``p808``
            is False) ``dnsmos_p808``.

        Raises:
            MetricError: For a wrong rate, an empty or non-finite waveform.
        """
        if self._convs is None:
            self.setup()
        return _as_outputs(self._score([self._check(estimate, sample_rate)])[0])

    def compute_batch(self, items: Sequence[BatchItem]) -> list[dict[str, Any] | Exception]:
        """Score several waveforms, the windows of all of them running through the models together.

        Each item's scores equal its :meth:`compute` scores (the same arithmetic on the same
        numbers; the tests allow 1e-6).

        Returns:
            One entry per item: the outputs of :meth:`compute`, or the :class:`MetricError`
            it raises for that item.
        """
        if self._convs is None:
            self.setup()
        out: list[dict[str, Any] | Exception | None] = [None] * len(items)
        valid: list[int] = []
        audios: list[np.ndarray] = []
        for i, item in enumerate(items):
            try:
                audios.append(self._check(item.estimate, item.sample_rate))
            except MetricError as exc:
                out[i] = exc
                continue
            valid.append(i)
        for i, scores in zip(valid, self._score(audios)):
            out[i] = _as_outputs(scores)
        return out  # type: ignore[return-value]

    def _executor(self) -> Any:
        """The thread pool for side-by-side calls (None: one thread, or CUDA).

        Made in the process that uses it: a pool inherited through fork has no threads.
        """
        if self._device != "cpu" or self._threads <= 1:
            return None
        if self._pool is None or self._pool[0] != os.getpid():
            from concurrent.futures import ThreadPoolExecutor

            self._pool = (os.getpid(), ThreadPoolExecutor(self._threads, thread_name_prefix="dnsmos"))
        return self._pool[1]

    def _check(self, estimate: np.ndarray, sample_rate: int) -> np.ndarray:
        """The waveform as float32, or MetricError for a wrong rate, an empty or non-finite waveform."""
        if sample_rate != SR:
            raise MetricError(f"DNSMOS needs {SR} Hz audio, got {sample_rate} Hz")
        x = np.asarray(estimate, dtype=np.float32)
        if x.ndim != 1 or x.size == 0:
            raise MetricError(f"DNSMOS needs a non-empty mono waveform, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise MetricError("DNSMOS input contains NaN or Inf samples")
        return x

    def _score(self, audios: list[np.ndarray]) -> list[tuple[float, float, float, float]]:
        """Mean calibrated (SIG, BAK, OVRL) and P.808 of each waveform over its official windows."""
        if not audios:
            return []
        plans = [Plan(repeat(x)) for x in audios]
        first = 0
        for plan in plans:
            plan.first = first
            first += plan.n
        pool = self._executor()
        if not self.options["p808"]:
            raw = self._p835_raw(plans)
            mos = np.full(len(raw), np.nan)
        elif pool is not None:  # the P.808 model runs beside the P.835 convolutions
            p808 = pool.submit(self._p808_mos, plans)
            raw = self._p835_raw(plans)
            mos = p808.result()
        else:
            raw = self._p835_raw(plans)
            mos = self._p808_mos(plans)
        out = []
        for plan in plans:
            per_window = [
                (np.polyval(_POLY_SIG, sig), np.polyval(_POLY_BAK, bak), np.polyval(_POLY_OVRL, ovrl), p808)
                for (sig, bak, ovrl), p808 in zip(raw[plan.rows], mos[plan.rows])
            ]
            out.append(_mean_scores(per_window))
        return out

    # ------------------------------------------------------------------ P.835

    def _p835_raw(self, plans: list[Plan]) -> np.ndarray:
        """Raw (uncalibrated) P.835 (SIG, BAK, OVRL) of every window of ``plans``, in window order.

        Stretches go through the convolutions in groups of at most about _CONV_FRAMES frames
        (a group's activations are dropped once its windows are copied out); the windows of
        all groups go through the head in batches of _HEAD_BATCH.
        """
        stretches = [stretch for plan in plans for stretch in plan.stretches()]
        first = sum(plan.n for plan in plans)
        self._log_spectra(stretches)
        raw = np.empty((first, 3), dtype=np.float32)
        head = _HeadBatch(self._head, raw, min(_HEAD_BATCH, first), stretches[0].logspec.shape[1])
        groups: list[list[Stretch]] = []
        size = 0
        for stretch in stretches:
            if not groups or size + stretch.n_frames > _CONV_FRAMES:
                groups.append([])
                size = 0
            groups[-1].append(stretch)
            size += stretch.n_frames
        for group in groups:
            self._convolve(group)
            for stretch in group:
                for k in range(len(stretch.offsets)):
                    head.add(stretch, k)
                stretch.conv = None
                stretch.edges.clear()
        head.flush()
        return raw

    def _log_spectra(self, stretches: list[Stretch]) -> None:
        """Fill each stretch's log power spectrum (the spectrum part, utterance frames stacked)."""
        frames = np.concatenate([s.frames() for s in stretches])
        spectra = [
            self._spectrum.run(None, {T_FRAMES: frames[None, start : start + _SPECTRUM_FRAMES]})[0][0]
            for start in range(0, len(frames), _SPECTRUM_FRAMES)
        ]
        logspec = np.concatenate(spectra) if len(spectra) > 1 else spectra[0]
        start = 0
        for s in stretches:
            s.logspec = logspec[start : start + s.n_frames]
            start += s.n_frames

    def _convolve(self, stretches: list[Stretch]) -> None:
        """Fill each stretch's convolution output and its windows' edges.

        Tiles of equal length share a call, the edge pieces another; with several threads the
        stretches are cut into at least that many tiles and the calls run side by side.
        """
        pool = self._executor()
        workers = self._threads if pool is not None else 1
        total = sum(s.n_frames for s in stretches)
        by_length: dict[int, list[tuple[Stretch, int, int, int]]] = {}
        for s in stretches:
            s.conv = np.empty((32, s.n_frames, s.logspec.shape[1]), dtype=np.float32)
            parts = -(-workers * s.n_frames // total)
            for keep_start, keep_stop, lo, hi in _tiles(s.n_frames, parts):
                by_length.setdefault(hi - lo, []).append((s, keep_start, keep_stop, lo))
        calls: list[Callable[[], None]] = []
        for length, tiles in by_length.items():
            per_call = max(1, min(_CONV_FRAMES // length, -(-len(tiles) // workers)))
            for start in range(0, len(tiles), per_call):
                chunk = tiles[start : start + per_call]
                calls.append(lambda chunk=chunk, length=length: self._convolve_tiles(chunk, length))
        # A window's first and last HALO frames see zero padding in the official per-window run.
        pieces: list[tuple[Stretch, int, bool]] = []
        for s in stretches:
            for offset in s.offsets:
                if offset > 0:
                    pieces.append((s, offset, True))
                if offset + FRAMES < s.n_frames:
                    pieces.append((s, offset + FRAMES - 2 * HALO, False))
        for start in range(0, len(pieces), _EDGE_BATCH):
            calls.append(lambda chunk=pieces[start : start + _EDGE_BATCH]: self._convolve_edges(chunk))
        if pool is None:
            for call in calls:
                call()
        else:
            for future in [pool.submit(call) for call in calls]:
                future.result()

    def _convolve_tiles(self, tiles: list[tuple[Stretch, int, int, int]], length: int) -> None:
        """One convolution call on tiles of ``length`` frames; keep each tile's own frames."""
        batch = np.stack([s.logspec[lo : lo + length] for s, _, _, lo in tiles])
        out = self._convs.run(None, {T_LOGSPEC: batch})[0]
        for (s, keep_start, keep_stop, lo), o in zip(tiles, out):
            s.conv[:, keep_start:keep_stop] = o[:, keep_start - lo : keep_stop - lo]

    def _convolve_edges(self, pieces: list[tuple[Stretch, int, bool]]) -> None:
        """One convolution call on 8-frame pieces at window edges; keep the window's 4 frames."""
        batch = np.stack([s.logspec[lo : lo + 2 * HALO] for s, lo, _ in pieces])
        out = self._convs.run(None, {T_LOGSPEC: batch})[0]
        for (s, lo, head), o in zip(pieces, out):
            s.edges[lo] = o[:, :HALO] if head else o[:, HALO:]

    # ------------------------------------------------------------------ P.808

    def _p808_mos(self, plans: list[Plan]) -> np.ndarray:
        """P.808 MOS of every window of ``plans``, in window order."""
        features = [p808_features(plan, self._mel_basis, self._fft_window) for plan in plans]
        stacked = np.concatenate(features) if len(features) > 1 else features[0]
        out = [
            self._p808.run(None, {T_INPUT: stacked[start : start + _P808_BATCH]})[0][:, 0]
            for start in range(0, len(stacked), _P808_BATCH)
        ]
        return np.concatenate(out)

class _HeadBatch:
    """Windows waiting for the P.835 head: their convolution outputs, copied into one batch."""

    def __init__(self, session: Any, raw: np.ndarray, size: int, bins: int) -> None:
        self.session, self.raw = session, raw
        self.batch = np.empty((size, 32, FRAMES, bins), dtype=np.float32)
        self.rows: list[int] = []

    def add(self, stretch: Stretch, k: int) -> None:
        """Queue window ``k`` of ``stretch`` (edges from their 8-frame pieces); run the head when full."""
        b = len(self.rows)
        offset = stretch.offsets[k]
        self.batch[b] = stretch.conv[:, offset : offset + FRAMES]
        if offset in stretch.edges:
            self.batch[b, :, :HALO] = stretch.edges[offset]
        tail = offset + FRAMES - 2 * HALO
        if tail in stretch.edges:
            self.batch[b, :, FRAMES - HALO :] = stretch.edges[tail]
        self.rows.append(stretch.window_index[k])
        if len(self.rows) == len(self.batch):
            self.flush()

    def flush(self) -> None:
        """Run the head on the queued windows."""
        if self.rows:
            out = self.session.run(None, {T_CONV: self.batch[: len(self.rows)]})[0]
            self.raw[self.rows] = out
            self.rows = []


def _tiles(n_frames: int, parts: int = 1) -> list[tuple[int, int, int, int]]:
    """Cut a stretch of ``n_frames`` into at least ``parts`` tiles of at most _TILE frames.

    Returns:
        ``(keep_start, keep_stop, lo, hi)`` per tile: frames ``lo:hi`` go through the
        convolutions and ``keep_start:keep_stop`` of the result are kept; a tile sees HALO
        frames of each neighbour, so its kept frames equal those of one run over the stretch.
    """
    n_tiles = min(max(parts, -(-n_frames // _TILE)), n_frames)
    bounds = [round(k * n_frames / n_tiles) for k in range(n_tiles + 1)]
    return [(a, b, max(0, a - HALO), min(n_frames, b + HALO)) for a, b in itertools.pairwise(bounds)]


def _mean_scores(per_window: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    """Average the window scores: (SIG, BAK, OVRL, P.808)."""
    sig, bak, ovrl, p808 = (float(np.mean(column)) for column in zip(*per_window))
    return sig, bak, ovrl, p808


def _as_outputs(scores: tuple[float, float, float, float]) -> dict[str, float]:
    """Output dict of (SIG, BAK, OVRL, P.808) scores."""
    sig, bak, ovrl, p808 = scores
    out = {"dnsmos_ovrl": ovrl, "dnsmos_sig": sig, "dnsmos_bak": bak}
    if not math.isnan(p808):  # NaN: the P.808 model was not run (option p808=False)
        out["dnsmos_p808"] = p808
    return out
