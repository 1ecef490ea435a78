"""SCOREQ: no-reference speech quality (natural-speech domain) as URGENT 2026 runs it.

URGENT 2026's ``calculate_nonintrusive_scoreq.py`` builds
``scoreq.Scoreq(data_domain="natural", mode="nr")`` (alessandroragano/scoreq, on PyPI as
``scoreq`` 1.0.1) and calls ``predict(test_path=<enhanced file>, ref_path=None)`` on
every enhanced file. The package cannot be used here: it imports torchaudio at module
level (to read and resample the file), and torchaudio does not work with this project's
torch; its PyTorch mode needs fairseq as well. This metric reproduces the computation
without either:

- **Network**: urgentbench's own re-implementation of scoreq's
  ``MosPredictor(TripletModel(wav2vec 2.0 base))`` (:mod:`urgentbench.metrics._scoreq_net`),
  whose module names are scoreq's, so the released state dict loads with ``strict=True``.
- **Weights**: ``adapt_nr_telephone.pt`` from Zenodo record 13860326, the natural-domain
  NR checkpoint that scoreq's PyTorch mode loads for ``("natural", "nr")``; asset
  ``scoreq-natural-nr``. scoreq 1.0.1 runs an ONNX export of the same weights by default
  (``adapt_nr_telephone.onnx``, Zenodo record 15739280), which its authors checked
  against the PyTorch model (mean absolute difference below 1e-5 on their test sets).
  Zenodo publishes no sha256 (only md5), so the file is unpinned: its sha256 is recorded
  when it is fetched or added and checked before ``torch.load(..., weights_only=True)``.
  The ``wav2vec_small.pt`` file scoreq also downloads only serves to build fairseq's
  module tree; every weight it holds is replaced by the SCOREQ checkpoint.
- **Rate**: the metric works at the file's native rate (``sample_rate = None``) and
  resamples to 16 kHz inside with torchaudio's algorithm
  (:func:`urgentbench.metrics.utmos.resample_sinc_hann`, the defaults of the
  ``torchaudio.transforms.Resample(sr, 16000)`` scoreq applies); 16 kHz input is used
  unchanged. The 16 kHz waveform is zero-padded at the end to a multiple of 320 samples
  (scoreq 1.0.1's ``dynamic_pad``, the CNN's total stride), with no other normalisation.
- **Score** (NR mode): the frames of the last transformer layer are averaged, the mean is
  scaled to unit length and ``mos_layer`` maps it to a MOS-like value (not clipped).
  Samples are float32, as torchaudio reads them; no gradient, on the ``device`` option's
  device. :meth:`SCOREQ.compute_batch` stacks only utterances of equal padded length (the
  first convolution's GroupNorm normalises over the whole input, so extra padding would
  change a score); others go through one at a time.

Bad input: an empty, non-mono or non-finite waveform, or one shorter than 321 samples at
16 kHz (padded to 640 samples, the shortest input that gives one wav2vec 2.0 frame after
the padding), raises :class:`MetricError`. Digital silence is scored, as scoreq scores it.
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
from urgentbench.metrics.model import ModelMetric, device_tensor, finite_score, mono_audio, scalar_scores
from urgentbench.requirements import PackageRequirement

logger = logging.getLogger(__name__)

#: Rate the network works at.
MODEL_RATE = 16000
#: scoreq pads the 16 kHz waveform with zeros to a multiple of this (the CNN's total stride).
PAD_MULTIPLE = 320
#: Fewest 16 kHz samples that still give one frame after the padding (321 -> 640 samples).
MIN_SAMPLES = 321

ASSET = "scoreq-natural-nr"
CHECKPOINT = "adapt_nr_telephone.pt"
_ZENODO = "https://zenodo.org/records/13860326/files"

#: SCOREQ's natural-speech no-reference checkpoint (scoreq's ``("natural", "nr")`` PyTorch
#: weights). Zenodo gives md5 digests only: unpinned, sha256 recorded on first install.
SCOREQ_NATURAL_NR = Asset(
    name=ASSET,
    description="SCOREQ natural-speech no-reference MOS model (scoreq 1.0.1 Scoreq('natural', 'nr')), 16 kHz",
    licence=(
        "MIT (SCOREQ by Alessandro Ragano, alessandroragano/scoreq; the weights come from Zenodo "
        "record 13860326, whose page states their terms); wav2vec 2.0 base encoder by Meta (MIT, fairseq)"
    ),
    homepage="https://zenodo.org/records/13860326",
    used_by=("metric scoreq",),
    files=(AssetFile(CHECKPOINT),),
    sources=(DownloadSource(urls={CHECKPOINT: (f"{_ZENODO}/{CHECKPOINT}",)}),),
)

#: The assets of the ``scoreq`` metric with their aliases (registered by :mod:`urgentbench.metrics`).
ASSET_PINS = ((SCOREQ_NATURAL_NR, ()),)


def padded_length(n: int) -> int:
    """``n`` rounded up to a multiple of :data:`PAD_MULTIPLE` (scoreq's ``dynamic_pad``)."""
    return math.ceil(n / PAD_MULTIPLE) * PAD_MULTIPLE


def load_scoreq_nr(path: str | Path) -> tuple[Any, dict[str, int]]:
    """Build the SCOREQ NR network and load a scoreq-format state dict into it.

    The sizes are read from the tensors' shapes (the released file gives wav2vec 2.0
    base; a smaller test checkpoint gives the same architecture at its sizes). The file
    is read with ``torch.load(..., weights_only=True)``; call this only on a file whose
    checksum was verified (:meth:`urgentbench.assets.Asset.path`).

    Args:
        path: An ``adapt_nr_telephone.pt``-style file: the state dict of scoreq's
            ``MosPredictor``.

    Returns:
        The network (:class:`urgentbench.metrics._scoreq_net.ScoreqNR`) in eval mode and its sizes.

    Raises:
        RuntimeError: When the file is not such a state dict (names the missing or
            unexpected keys, or the shape mismatch).
    """
    import torch

    from urgentbench.metrics._scoreq_net import ScoreqNR, sizes_of

    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise RuntimeError(f"{path}: expected a state dict, got {type(state).__name__}")
    try:
        sizes = sizes_of(state)
        model = ScoreqNR(**sizes)
        model.load_state_dict(state, strict=True)
    except (KeyError, IndexError, RuntimeError, ValueError) as exc:
        detail = " ".join(s.strip() for s in str(exc).strip().splitlines()[:3])
        raise RuntimeError(f"{path} is not a SCOREQ no-reference checkpoint: {detail}") from None
    model.requires_grad_(False)
    return model.eval(), sizes


class SCOREQ(ModelMetric):
    """SCOREQ natural-speech no-reference MOS of the enhanced speech, as scoreq 1.0.1 predicts it.

    Options:
        threads: torch intra-op threads; None uses ``$URGENTBENCH_THREADS`` (set by the
            runner) or torch's default.
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"``.
    """

    name: ClassVar[str] = "scoreq"
    aliases: ClassVar[tuple[str, ...]] = ("scoreq_nr",)
    description: ClassVar[str] = "SCOREQ no-reference MOS, natural-speech model (scoreq 1.0.1 Scoreq('natural', 'nr'))"
    category: ClassVar[str] = "non-intrusive"
    needs_reference: ClassVar[bool] = False
    #: Native rate: resampled to 16 kHz inside, with torchaudio's algorithm (module docstring).
    sample_rate: ClassVar[int | None] = None
    #: Most equal-length utterances per forward pass (see the module docstring).
    batch_size: ClassVar[int] = 16
    version: ClassVar[str] = "1"
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("scoreq", True, "SCOREQ predicted MOS, natural-speech no-reference model (ranked by URGENT 2026)"),
    )
    distributions: ClassVar[tuple[str, ...]] = ("torch",)
    packages: ClassVar[tuple[PackageRequirement, ...]] = (
        PackageRequirement("torch", "pip install torch==2.13.0"),
    )
    reference_implementation: ClassVar[str] = (
        'scoreq.Scoreq(data_domain="natural", mode="nr").predict(test_path=<file>, ref_path=None) '
        "(scoreq 1.0.1, alessandroragano/scoreq), as in URGENT 2026's calculate_nonintrusive_scoreq.py"
    )

    #: The natural-speech NR checkpoint.
    asset: ClassVar[str | None] = ASSET

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._model: Any = None
        self._sizes: dict[str, int] = {}

    def setup(self) -> None:
        """Verify the checkpoint's sha256 against its record, then load it once.

        Raises:
            AssetError: When the checkpoint is missing or corrupt (the message holds the fix commands).
            RuntimeError: When the file is not a SCOREQ NR state dict.
        """
        folder = self.asset_folder()  # sha256-verified before anything is deserialised
        self.use_threads()
        self._model, self._sizes = load_scoreq_nr(folder / CHECKPOINT)
        self._model.to(self.use_device())
        logger.debug("SCOREQ NR loaded from %s (%s threads, sizes %s)", folder, self._threads or "default", self._sizes)

    def provenance(self) -> dict[str, Any]:
        """Version, options, checkpoint identity and sizes, resampler, padding, device, threads, torch."""
        prov = super().provenance()
        prov["resampler"] = (
            "torchaudio.transforms.Resample(sr, 16000) defaults (sinc, Hann, width 6, roll-off 0.99), own code"
        )
        prov["padding"] = f"zeros to a multiple of {PAD_MULTIPLE} samples at 16 kHz (scoreq 1.0.1 dynamic_pad)"
        if self._sizes:
            prov["network"] = dict(self._sizes)
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
            ``{"scoreq": predicted MOS}``.

        Raises:
            MetricError: For an empty, non-mono, non-finite or too short waveform.
        """
        return {"scoreq": self.score(estimate, sample_rate)}

    def compute_batch(self, items: Sequence[BatchItem]) -> list[dict[str, Any] | Exception]:
        """Score several waveforms, those of equal padded length at 16 kHz in one forward pass.

        Each result equals :meth:`compute`'s to float rounding (within 1e-5).
        """
        if self._model is None:
            self.setup()
        scores = scalar_scores(
            items, lambda item: self._padded16(item.estimate, int(item.sample_rate)), self._model, self.batch_size, "SCOREQ"
        )
        return [s if isinstance(s, Exception) else {"scoreq": s} for s in scores]

    def score(self, waveform: np.ndarray, sample_rate: int) -> float:
        """SCOREQ NR score of one mono waveform at ``sample_rate`` (resampled and padded as scoreq does).

        Raises:
            MetricError: For an empty, non-mono, non-finite or too short waveform.
        """
        import torch

        if self._model is None:
            self.setup()
        wave = self._padded16(waveform, sample_rate)
        with torch.inference_mode():
            return finite_score(float(self._model(wave[None])[0]), "SCOREQ")

    def _padded16(self, waveform: np.ndarray, sample_rate: int) -> Any:
        """The checked waveform at 16 kHz, zero-padded as scoreq does: a 1-D tensor on the model's device.

        Raises:
            MetricError: For an empty, non-mono, non-finite or too short waveform.
        """
        import torch
        import torch.nn.functional as F

        from urgentbench.metrics.utmos import resample_sinc_hann

        x = mono_audio(waveform, "enhanced")
        n16 = x.size if sample_rate == MODEL_RATE else math.ceil(MODEL_RATE * x.size / sample_rate)
        if n16 < MIN_SAMPLES:
            raise MetricError(
                f"SCOREQ needs at least {MIN_SAMPLES} samples at 16 kHz "
                f"({MIN_SAMPLES / MODEL_RATE * 1000:.2f} ms), got {x.size / sample_rate * 1000:.2f} ms"
            )
        with torch.inference_mode():
            wave = resample_sinc_hann(device_tensor(x, self._device)[None], int(sample_rate), MODEL_RATE)
            return F.pad(wave, (0, padded_length(wave.shape[-1]) - wave.shape[-1]))[0]

