"""UTMOS: the UTMOS22 strong learner as URGENT 2025/2026 run it (SpeechMOS v1.2.0, ``utmos22_strong``).

URGENT's ``calculate_nonintrusive_mos.py`` (2025) and ``calculate_nonintrusive_utmos.py``
(2026) load ``torch.hub.load("tarepan/SpeechMOS:v1.2.0", "utmos22_strong")`` and call it on
each enhanced file read at its own rate (``librosa.load(path, sr=None)``) with that rate;
SpeechMOS resamples to 16 kHz itself. This metric reproduces that path without
``torch.hub`` and without torchaudio (which does not work with this project's torch):

- **Network**: urgentbench's own re-implementation of SpeechMOS's ``UTMOS22Strong``
  (:mod:`urgentbench.metrics._utmos_net`): wav2vec 2.0 base, the stored domain and
  listener embeddings, a BLSTM and a two-layer projection; score = 2 * mean + 3. Its
  module names are SpeechMOS's, so the released state dict loads with ``strict=True``.
- **Weights**: ``utmos22_strong_step7459_v1.pt`` from the SpeechMOS GitHub release v1.0.0
  (the file SpeechMOS v1.2.0's hub entry downloads), asset ``utmos22-strong``. The
  release publishes no digest, so the file is unpinned: its sha256 is recorded when it
  is fetched or added, and checked against that record before ``torch.load(...,
  weights_only=True)`` (the checkpoint is a plain dict of tensors).
- **Rate**: the metric works at the file's native rate (``sample_rate = None``) and
  resamples to 16 kHz inside, with :func:`resample_sinc_hann`, a re-implementation of
  ``torchaudio.functional.resample`` at its defaults (the resampler SpeechMOS calls):
  windowed-sinc interpolation, Hann window, 6 zero crossings, roll-off 0.99, computed in
  float32. 16 kHz input is used unchanged, as in torchaudio. Resampling with soxr first
  instead would change scores slightly for non-16 kHz files.
- Samples are passed as float32, as librosa reads them; no gradient, on the ``device``
  option's device. :meth:`UTMOS.compute_batch` stacks only utterances of equal length at
  16 kHz (the first convolution's GroupNorm normalises over the whole input, so zero
  padding would change the shorter one's score); others go through one at a time.

Bad input: an empty, non-mono or non-finite waveform, or one shorter than the 400
samples at 16 kHz (25 ms) that the first wav2vec 2.0 frame needs, raises
:class:`MetricError`. Digital silence is scored, as SpeechMOS scores it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from urgentbench.assets import Asset, AssetFile, DownloadSource
from urgentbench.metrics.base import BatchItem, MetricError, Output
from urgentbench.metrics.model import ModelMetric, device_tensor, finite_score, scalar_scores
from urgentbench.requirements import PackageRequirement

logger = logging.getLogger(__name__)

#: Rate the network works at.
MODEL_RATE = 16000
#: Fewest 16 kHz samples that give one wav2vec 2.0 frame (its receptive field).
MIN_SAMPLES = 400

ASSET = "utmos22-strong"
CHECKPOINT = "utmos22_strong_step7459_v1.pt"
_RELEASE = "https://github.com/tarepan/SpeechMOS/releases/download/v1.0.0"

#: The UTMOS22 strong checkpoint converted by SpeechMOS (its hub entry ``utmos22_strong``
#: of v1.2.0 downloads this file). No digest is published: unpinned, recorded on first use.
UTMOS22_STRONG = Asset(
    name=ASSET,
    description="UTMOS22 strong learner (SpeechMOS v1.2.0 utmos22_strong), MOS predictor at 16 kHz",
    licence=(
        "MIT (UTMOS22 by the Saruwatari & Koyama laboratory, The University of Tokyo; "
        "weight conversion by tarepan/SpeechMOS, MIT)"
    ),
    homepage="https://github.com/tarepan/SpeechMOS/releases/tag/v1.0.0",
    used_by=("metric utmos",),
    files=(AssetFile(CHECKPOINT),),
    sources=(DownloadSource(urls={CHECKPOINT: (f"{_RELEASE}/{CHECKPOINT}",)}),),
)

#: The assets of the ``utmos`` metric with their aliases (registered by :mod:`urgentbench.metrics`).
ASSET_PINS = ((UTMOS22_STRONG, ()),)


def resample_sinc_hann(x: Any, orig_rate: int, new_rate: int) -> Any:
    """Resample like ``torchaudio.functional.resample`` with its defaults (what SpeechMOS calls).

    Band-limited interpolation: both rates are divided by their gcd (``orig``, ``new``);
    every output phase ``j`` of ``new`` gets its own FIR kernel, the sinc at cutoff
    ``base = 0.99 * min(orig, new)`` (in units of the reduced rates) sampled at
    ``(i / orig - j / new) * base`` for ``i`` in ``[-width, width + orig)``, clamped to
    +-6 zero crossings and tapered by the Hann window ``cos(pi * t / 12) ** 2``, scaled
    by ``base / orig``; ``width = ceil(6 * orig / base)``. The input is zero-padded by
    ``width`` on the left and ``width + orig`` on the right, convolved with stride
    ``orig``, the phases interleaved, and the output cut to ``ceil(new * n / orig)``
    samples. The kernel is computed in the input's dtype, on its device.

    Args:
        x: Float tensor ``(..., time)``.
        orig_rate: Its rate in Hz.
        new_rate: The wanted rate in Hz.

    Returns:
        The resampled tensor (``x`` itself when the rates are equal).

    Raises:
        ValueError: For a non-positive rate.
    """
    import torch
    import torch.nn.functional as F

    if orig_rate <= 0 or new_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} and {new_rate}")
    if orig_rate == new_rate:
        return x
    g = math.gcd(int(orig_rate), int(new_rate))
    orig, new = int(orig_rate) // g, int(new_rate) // g
    zeros = 6  # lowpass_filter_width
    base = min(orig, new) * 0.99
    width = math.ceil(zeros * orig / base)
    dtype, device = x.dtype, x.device
    taps = torch.arange(-width, width + orig, dtype=dtype, device=device)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=dtype, device=device)[:, None, None] / new + taps
    t = (t * base).clamp(-zeros, zeros)
    window = torch.cos(t * math.pi / zeros / 2) ** 2
    t = t * math.pi
    kernel = torch.where(t == 0, torch.ones((), dtype=dtype, device=device), torch.sin(t) / t) * (window * (base / orig))
    shape = x.shape
    flat = x.reshape(-1, shape[-1])
    n = flat.shape[-1]
    padded = F.pad(flat, (width, width + orig))
    y = F.conv1d(padded[:, None], kernel, stride=orig)  # (batch, new phases, blocks)
    y = y.transpose(1, 2).reshape(flat.shape[0], -1)
    y = y[:, : math.ceil(new * n / orig)]
    return y.reshape(*shape[:-1], y.shape[-1])


def load_utmos22_strong(path: str | Path) -> Any:
    """Build the UTMOS22 strong network and load a SpeechMOS-format state dict into it.

    The file is read with ``torch.load(..., weights_only=True)``; call this only on a
    file whose checksum was verified (:meth:`urgentbench.assets.Asset.path`).

    Args:
        path: A ``utmos22_strong_step7459_v1.pt``-style file: the state dict of SpeechMOS's
            ``UTMOS22Strong``.

    Returns:
        The network (:class:`urgentbench.metrics._utmos_net.UTMOS22Strong`) in eval mode.

    Raises:
        RuntimeError: When the file is not such a state dict (names the missing or
            unexpected keys, or the shape mismatch).
    """
    import torch

    from urgentbench.metrics._utmos_net import UTMOS22Strong

    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise RuntimeError(f"{path}: expected a state dict, got {type(state).__name__}")
    model = UTMOS22Strong()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(s.strip() for s in str(exc).strip().splitlines()[:3])
        raise RuntimeError(f"{path} is not a SpeechMOS UTMOS22 strong checkpoint: {detail}") from None
    model.requires_grad_(False)
    return model.eval()


class UTMOS(ModelMetric):
    """UTMOS22 strong MOS of the enhanced speech (no reference), as SpeechMOS v1.2.0 predicts it.

    Options:
        threads: torch intra-op threads; None uses ``$URGENTBENCH_THREADS`` (set by the
            runner) or torch's default.
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"``.
    """

    name: ClassVar[str] = "utmos"
    aliases: ClassVar[tuple[str, ...]] = ("utmos22", "utmos22_strong")
    description: ClassVar[str] = "UTMOS22 strong learner MOS (SpeechMOS v1.2.0 utmos22_strong)"
    category: ClassVar[str] = "non-intrusive"
    needs_reference: ClassVar[bool] = False
    #: Native rate: resampled to 16 kHz inside, with torchaudio's algorithm (module docstring).
    sample_rate: ClassVar[int | None] = None
    version: ClassVar[str] = "1"
    #: Most equal-length utterances per forward pass (see the module docstring).
    batch_size: ClassVar[int] = 16
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("utmos", True, "UTMOS22 strong predicted naturalness MOS (ranked by URGENT 2025/2026)"),
    )
    distributions: ClassVar[tuple[str, ...]] = ("torch",)
    packages: ClassVar[tuple[PackageRequirement, ...]] = (
        PackageRequirement("torch", "pip install torch==2.13.0"),
    )
    reference_implementation: ClassVar[str] = (
        'torch.hub.load("tarepan/SpeechMOS:v1.2.0", "utmos22_strong")(wave, sr) on the file read at its '
        "native rate, as in URGENT's calculate_nonintrusive_mos.py / calculate_nonintrusive_utmos.py"
    )

    #: The UTMOS22 strong checkpoint.
    asset: ClassVar[str | None] = ASSET

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._model: Any = None

    def setup(self) -> None:
        """Verify the checkpoint's sha256 against its record, then load it once.

        Raises:
            AssetError: When the checkpoint is missing or corrupt (the message holds the fix commands).
            RuntimeError: When the file is not a UTMOS22 strong state dict.
        """
        folder = self.asset_folder()  # sha256-verified before anything is deserialised
        self.use_threads()
        device = self.use_device()
        self._model = load_utmos22_strong(folder / CHECKPOINT).to(device)
        logger.debug("UTMOS22 strong loaded from %s on %s (%s threads)", folder, device, self._threads or "default")

    def provenance(self) -> dict[str, Any]:
        """Version, options, checkpoint identity, resampler, device, threads and torch's version."""
        prov = super().provenance()
        prov["resampler"] = (
            "torchaudio.functional.resample defaults (sinc, Hann, width 6, roll-off 0.99), own code"
        )
        return prov

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one waveform given at its native rate.

        Returns:
            ``{"utmos": predicted MOS}``.

        Raises:
            MetricError: For an empty, non-mono, non-finite or too short waveform.
        """
        if self._model is None:
            self.setup()
        return {"utmos": self.score(estimate, sample_rate)}

    def compute_batch(self, items: Sequence[BatchItem]) -> list[dict[str, Any] | Exception]:
        """Score several waveforms, those of equal length at 16 kHz in one forward pass.

        Each result equals :meth:`compute`'s to float rounding (within 1e-5).
        """
        if self._model is None:
            self.setup()
        scores = scalar_scores(
            items, lambda item: self._wave16(item.estimate, int(item.sample_rate)), self._model, self.batch_size, "UTMOS"
        )
        return [s if isinstance(s, Exception) else {"utmos": s} for s in scores]

    def score(self, waveform: np.ndarray, sample_rate: int) -> float:
        """UTMOS of one mono waveform at ``sample_rate`` (resampled to 16 kHz as SpeechMOS does).

        Raises:
            MetricError: For an empty, non-mono, non-finite or too short waveform.
        """
        import torch

        if self._model is None:
            self.setup()
        wave = self._wave16(waveform, sample_rate)
        with torch.inference_mode():
            return finite_score(float(self._model(wave[None])[0]), "UTMOS")

    def _wave16(self, waveform: np.ndarray, sample_rate: int) -> Any:
        """The checked waveform resampled to 16 kHz, a 1-D tensor on the model's device.

        Raises:
            MetricError: For an empty, non-mono, non-finite or too short waveform.
        """
        import torch

        x = np.asarray(waveform, dtype=np.float32)
        if x.ndim != 1 or x.size == 0:
            raise MetricError(f"UTMOS needs a non-empty mono waveform, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise MetricError("UTMOS input contains NaN or Inf samples")
        n16 = x.size if sample_rate == MODEL_RATE else math.ceil(MODEL_RATE * x.size / sample_rate)
        if n16 < MIN_SAMPLES:
            raise MetricError(
                f"UTMOS needs at least {MIN_SAMPLES} samples at 16 kHz "
                f"({MIN_SAMPLES / MODEL_RATE * 1000:.0f} ms), got {x.size / sample_rate * 1000:.1f} ms"
            )
        with torch.inference_mode():
            return resample_sinc_hann(device_tensor(x, self._device)[None], int(sample_rate), MODEL_RATE)[0]

