"""Speaker similarity: cosine similarity of Resemblyzer (GE2E) speaker embeddings.

URGENT computes SpkSim with ESPnet's RawNet3 (``espnet/voxcelebs12_rawnet3``), whose
weights are only on the Hugging Face Hub. This offline substitute uses Resemblyzer's
GE2E voice encoder, whose weights ship inside the ``resemblyzer`` wheel. The numbers are
therefore *not* comparable with URGENT leaderboards, only between systems scored here.

Each waveform goes through Resemblyzer's own preprocessing (volume normalisation to
-30 dBFS, increase only, and removal of long silences with WebRTC VAD), then
``embed_utterance``; the score is the cosine similarity of the two embeddings, in
[-1, 1] (in practice [0, 1], the embeddings being non-negative).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from urgentbench.metrics._threads import resolve_threads
from urgentbench.metrics.base import Metric, MetricError, Output
from urgentbench.requirements import PackageRequirement

logger = logging.getLogger(__name__)

_SR = 16000
#: sha256 of ``resemblyzer/pretrained.pt`` in resemblyzer 0.1.4.
_WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
_INSTALL = "pip install --no-deps resemblyzer==0.1.4 && pip install webrtcvad-wheels"


class SpeakerSimilarity(Metric):
    """Cosine similarity between the speaker embeddings of the enhanced and the reference speech.

    Options:
        threads: torch intra-op threads; None uses ``$URGENTBENCH_THREADS`` (set by the
            runner) or torch's default.
    """

    name: ClassVar[str] = "spk_sim"
    aliases: ClassVar[tuple[str, ...]] = ("speaker_similarity", "spksim")
    description: ClassVar[str] = (
        "Speaker similarity: cosine of Resemblyzer (GE2E) embeddings (RawNet3 substitute)"
    )
    category: ClassVar[str] = "downstream"
    needs_reference: ClassVar[bool] = True
    sample_rate: ClassVar[int | None] = _SR
    version: ClassVar[str] = "1"
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("spk_sim", True, "Speaker similarity (Resemblyzer cosine) to the reference"),
    )
    distributions: ClassVar[tuple[str, ...]] = ("resemblyzer", "torch")
    packages: ClassVar[tuple[PackageRequirement, ...]] = (
        PackageRequirement("resemblyzer", _INSTALL),
        PackageRequirement("webrtcvad", _INSTALL),
        PackageRequirement("torch", "pip install torch==2.13.0"),
        PackageRequirement("librosa", "pip install librosa"),
    )
    reference_implementation: ClassVar[str] = (
        "substitute for URGENT's calculate_speaker_similarity.py (ESPnet RawNet3); "
        "resemblyzer VoiceEncoder.embed_utterance(preprocess_wav(x))"
    )

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._encoder: Any = None
        self._weights_sha256: str | None = None
        self._threads = 0

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``threads``: torch threads (None: ``$URGENTBENCH_THREADS`` or torch's default)."""
        return {"threads": None}

    def setup(self) -> None:
        """Check the weights' hash and load the voice encoder on the CPU once.

        Raises:
            RuntimeError: When the packaged weights are not the pinned ones.
        """
        import torch
        from resemblyzer import VoiceEncoder

        from urgentbench.assets import PackagePart, sha256_file

        self._threads = resolve_threads(self.options["threads"])
        if self._threads:
            torch.set_num_threads(self._threads)
        weights = PackagePart("resemblyzer", "pretrained.pt").locate()
        if weights is None:
            raise RuntimeError(f"resemblyzer/pretrained.pt is missing; fix: {_INSTALL}")
        digest = sha256_file(weights)
        if digest != _WEIGHTS_SHA256:
            raise RuntimeError(
                f"{weights} has sha256 {digest[:12]}…, expected {_WEIGHTS_SHA256[:12]}… "
                f"(resemblyzer 0.1.4); fix: pip install --force-reinstall --no-deps resemblyzer==0.1.4"
            )
        self._weights_sha256 = digest
        self._encoder = VoiceEncoder("cpu", verbose=False, weights_fpath=weights)
        self._encoder.eval()

    def provenance(self) -> dict[str, Any]:
        """Version, options, weights sha256 and resemblyzer's version."""
        prov = super().provenance()
        prov["weights_sha256"] = self._weights_sha256 or _WEIGHTS_SHA256
        prov["threads"] = self._threads or "default"
        return prov

    def embed(self, waveform: np.ndarray, role: str = "input") -> np.ndarray:
        """Return the L2-normalised speaker embedding of a 16 kHz waveform.

        Args:
            waveform: Mono float audio at 16 kHz.
            role: Which signal this is, for error messages ("enhanced", "reference").

        Raises:
            MetricError: When the waveform is silent or VAD trimming leaves no speech.
        """
        from resemblyzer import preprocess_wav

        if self._encoder is None:
            self.setup()
        x = np.asarray(waveform, dtype=np.float32)
        if x.ndim != 1 or x.size == 0:
            raise MetricError(f"{role} audio must be a non-empty mono waveform, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise MetricError(f"{role} audio contains NaN or Inf samples")
        if not np.any(x):
            raise MetricError(f"{role} audio is silent (all zeros): no speaker embedding")
        trimmed = preprocess_wav(x)  # already 16 kHz: volume normalisation + VAD trimming only
        if trimmed.size == 0:
            raise MetricError(
                f"{role} audio has no voiced frame left after VAD trimming "
                f"({x.size / _SR:.2f} s of silence or non-speech): no speaker embedding"
            )
        embedding = np.asarray(self._encoder.embed_utterance(trimmed), dtype=np.float64)
        return embedding

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one utterance.

        Returns:
            ``{"spk_sim": cosine similarity}``.

        Raises:
            MetricError: For a wrong rate, a missing reference, or a signal without speech.
        """
        if sample_rate != _SR:
            raise MetricError(f"speaker similarity needs {_SR} Hz audio, got {sample_rate} Hz")
        if reference is None:
            raise MetricError("speaker similarity needs the clean reference")
        ref = self.embed(reference, "reference")
        est = self.embed(estimate, "enhanced")
        norm = float(np.linalg.norm(ref) * np.linalg.norm(est))
        if norm == 0.0:
            raise MetricError("a speaker embedding is all zeros; similarity undefined")
        return {"spk_sim": float(np.dot(ref, est) / norm)}
