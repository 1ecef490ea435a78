"""Speaker similarity: cosine similarity of Resemblyzer (GE2E) speaker embeddings.

URGENT computes SpkSim with ESPnet's RawNet3 (``espnet/voxcelebs12_rawnet3``), whose
weights are only on the Hugging Face Hub. This offline substitute uses Resemblyzer's
GE2E voice encoder, whose weights ship inside the ``resemblyzer`` wheel (asset
``resemblyzer-0.1.4``: the wheel, imported at run time). The numbers are
therefore *not* comparable with URGENT leaderboards, only between systems scored here.

Each waveform goes through Resemblyzer's own preprocessing (volume normalisation to
-30 dBFS, increase only, and removal of long silences with WebRTC VAD), then
``embed_utterance``; the score is the cosine similarity of the two embeddings, in
[-1, 1] (in practice [0, 1], the embeddings being non-negative).

With the option ``model=rawnet3`` the metric is URGENT's own SpkSim instead: the cosine
similarity of ESPnet RawNet3 embeddings (``espnet/voxcelebs12_rawnet3``, asset
``rawnet3-voxcelebs12``; :mod:`urgentbench.metrics.rawnet3`), with no preprocessing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from urgentbench.assets import Asset, AssetFile, DownloadSource, PackageCode
from urgentbench.metrics.base import BatchItem, MetricError, Output, length_buckets
from urgentbench.metrics.model import ModelMetric, device_tensor, mono_audio
from urgentbench.requirements import Availability, PackageRequirement, pip

logger = logging.getLogger(__name__)

_SR = 16000
#: sha256 of ``resemblyzer/pretrained.pt`` in resemblyzer 0.1.4.
_WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
#: Resemblyzer 0.1.4 as published on PyPI: its code and its weights (``resemblyzer/pretrained.pt``).
#: The package cannot be a dependency: it asks for ``webrtcvad``, published as source only (a C
#: compiler at install time), whose module ``webrtcvad-wheels`` provides prebuilt. The wheel is
#: an asset and the package is imported from it (:class:`urgentbench.assets.PackageCode`).
_RESEMBLYZER_WHEEL = "Resemblyzer-0.1.4-py3-none-any.whl"
RESEMBLYZER_CODE = Asset(
    name="resemblyzer-0.1.4",
    description="Resemblyzer's GE2E voice encoder: code and weights (the resemblyzer 0.1.4 wheel from PyPI)",
    licence="Apache-2.0 (resemblyzer 0.1.4, Resemble AI)",
    homepage="https://pypi.org/project/Resemblyzer/0.1.4/",
    used_by=("metric spk_sim",),
    files=(
        AssetFile(_RESEMBLYZER_WHEEL, "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f", 15_747_704),
    ),
    sources=(
        DownloadSource(
            urls={
                _RESEMBLYZER_WHEEL: (
                    "https://files.pythonhosted.org/packages/d9/b5/d897d5de5b2123a1ad5d32e8e007d83f7"
                    "6582f5c32c60992577263bd7c7e/" + _RESEMBLYZER_WHEEL,
                )
            }
        ),
    ),
)
#: The ``resemblyzer`` package, imported from :data:`RESEMBLYZER_CODE`.
RESEMBLYZER_PACKAGE = PackageCode(
    asset="resemblyzer-0.1.4", archive=_RESEMBLYZER_WHEEL, package="resemblyzer", prefix="resemblyzer"
)
#: The assets of the ``spk_sim`` metric (registered by :mod:`urgentbench.metrics`).
ASSET_PINS = ((RESEMBLYZER_CODE, ("resemblyzer",)),)
_INSTALL = RESEMBLYZER_PACKAGE.install
#: Most 1.6 s partial utterances (160 mel frames each) run through the encoder at once.
_PARTIAL_BATCH = 64


class SpeakerSimilarity(ModelMetric):
    """Cosine similarity between the speaker embeddings of the enhanced and the reference speech.

    Options:
        threads: torch intra-op threads; None uses ``$URGENTBENCH_THREADS`` (set by the
            runner) or torch's default.
        model: ``"resemblyzer"`` (default, weights in the wheel) or ``"rawnet3"`` (URGENT's
            ESPnet RawNet3, an asset).
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"``.

    Batched scoring: Resemblyzer's 1.6 s partials of several utterances go through the
    encoder together; RawNet3 stacks only estimates of equal length (it normalises over
    the whole input).
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
    batch_size: ClassVar[int] = 16
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("spk_sim", True, "Speaker similarity to the reference (cosine of speaker embeddings)"),
    )
    distributions: ClassVar[tuple[str, ...]] = ("torch", "webrtcvad-wheels", "librosa")
    packages: ClassVar[tuple[PackageRequirement | PackageCode, ...]] = (
        RESEMBLYZER_PACKAGE,
        PackageRequirement("webrtcvad", pip("webrtcvad-wheels")),
        PackageRequirement("torch", "pip install torch==2.13.0"),
        PackageRequirement("librosa", "pip install librosa"),
    )
    reference_implementation: ClassVar[str] = (
        "substitute for URGENT's calculate_speaker_similarity.py (ESPnet RawNet3); "
        "resemblyzer VoiceEncoder.embed_utterance(preprocess_wav(x))"
    )

    def __init__(self, **options: Any):
        super().__init__(**options)
        if self.options["model"] not in ("resemblyzer", "rawnet3"):
            model = self.options["model"]
            raise ValueError(f"spk_sim: model must be 'resemblyzer' or 'rawnet3', got {model!r}")
        self._encoder: Any = None
        self._weights_sha256: str | None = None

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``threads`` (None: ``$URGENTBENCH_THREADS`` or torch's default); ``model``: the embedder; ``device``."""
        return {"threads": None, "model": "resemblyzer", "device": "cpu"}

    @classmethod
    def asset_name(cls, options: Mapping[str, Any]) -> str | None:
        """The RawNet3 checkpoint for ``model=rawnet3``; none for Resemblyzer (weights in its wheel)."""
        if options.get("model") == "rawnet3":
            from urgentbench.metrics.rawnet3 import ASSET

            return ASSET
        return None

    @classmethod
    def availability(cls, options: dict[str, Any] | None = None) -> Availability:
        """Resemblyzer's packages, or for ``model=rawnet3`` torch, PyYAML and the RawNet3 asset."""
        from urgentbench.requirements import check_requirements

        if (options or {}).get("model") == "rawnet3":
            from urgentbench.metrics.rawnet3 import PACKAGES

            return check_requirements(list(PACKAGES), list(cls.assets_for(dict(options or {}))))
        return super().availability(options)

    def setup(self) -> None:
        """Check the weights' hash and load the embedding model on the ``device`` option's device once.

        Raises:
            RuntimeError: When the packaged weights are not the pinned ones.
            AssetError: For ``model=rawnet3``, when its asset is missing or corrupt.
        """
        from urgentbench.hashing import sha256_file

        self.use_threads()
        device = self.use_device()
        if self.options["model"] == "rawnet3":
            from urgentbench.metrics.rawnet3 import RawNet3Embedder

            embedder = RawNet3Embedder(device=device)
            embedder.setup()
            self._encoder = embedder
            return
        RESEMBLYZER_PACKAGE.load()
        from resemblyzer import VoiceEncoder

        weights = RESEMBLYZER_PACKAGE.source_folder() / "resemblyzer" / "pretrained.pt"
        digest = sha256_file(weights)
        if digest != _WEIGHTS_SHA256:
            raise RuntimeError(
                f"{weights} has sha256 {digest[:12]}…, expected {_WEIGHTS_SHA256[:12]}… "
                f"(resemblyzer 0.1.4); fix: delete {weights.parent.parent} (it is extracted again from "
                f"the verified wheel)"
            )
        self._weights_sha256 = digest
        self._encoder = VoiceEncoder(device, verbose=False, weights_fpath=weights)
        self._encoder.eval()

    def provenance(self) -> dict[str, Any]:
        """Version, options, threads, library versions, and the RawNet3 asset or Resemblyzer's weights sha256."""
        prov = super().provenance()
        if self.options["model"] != "rawnet3":
            prov["weights_sha256"] = self._weights_sha256 or _WEIGHTS_SHA256
            prov["code"] = RESEMBLYZER_PACKAGE.provenance()
        return prov

    def embed(self, waveform: np.ndarray, role: str = "input") -> np.ndarray:
        """Return the L2-normalised speaker embedding of a 16 kHz waveform.

        Args:
            waveform: Mono float audio at 16 kHz.
            role: Which signal this is, for error messages ("enhanced", "reference").

        Raises:
            MetricError: When the waveform is silent or VAD trimming leaves no speech.
        """
        trimmed = self._prepare(waveform, role)
        return np.asarray(self._encoder.embed_utterance(trimmed), dtype=np.float64)

    def _prepare(self, waveform: np.ndarray, role: str) -> np.ndarray:
        """Check a 16 kHz waveform and apply Resemblyzer's preprocessing (volume normalisation, VAD trimming).

        Raises:
            MetricError: When the waveform is silent or VAD trimming leaves no speech.
        """
        RESEMBLYZER_PACKAGE.load()
        from resemblyzer import preprocess_wav

        if self._encoder is None:
            self.setup()
        x = mono_audio(waveform, role)
        if not np.any(x):
            raise MetricError(f"{role} audio is silent (all zeros): no speaker embedding")
        trimmed = preprocess_wav(x)  # already 16 kHz: volume normalisation + VAD trimming only
        if trimmed.size == 0:
            raise MetricError(
                f"{role} audio has no voiced frame left after VAD trimming "
                f"({x.size / _SR:.2f} s of silence or non-speech): no speaker embedding"
            )
        return trimmed

    def _partial_mels(self, wav: np.ndarray) -> np.ndarray:
        """Mel spectrograms of the 1.6 s partial utterances, as ``VoiceEncoder.embed_utterance`` cuts them."""
        RESEMBLYZER_PACKAGE.load()
        from resemblyzer import audio

        wav_slices, mel_slices = self._encoder.compute_partial_slices(len(wav), rate=1.3, min_coverage=0.75)
        if wav_slices[-1].stop >= len(wav):
            wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)), "constant")
        mel = audio.wav_to_mel_spectrogram(wav)
        return np.array([mel[s] for s in mel_slices])

    def _embed_partials(self, partials: list[np.ndarray]) -> list[np.ndarray]:
        """Utterance embeddings (L2-normalised mean of partial embeddings) of several utterances.

        All partials have the same length (160 frames), so those of every utterance go
        through the encoder together, in chunks of at most :data:`_PARTIAL_BATCH`.
        """
        import torch

        mels = np.concatenate(partials)
        with torch.no_grad():
            embeds = np.concatenate(
                [
                    self._encoder(device_tensor(mels[k : k + _PARTIAL_BATCH], self._device)).cpu().numpy()
                    for k in range(0, len(mels), _PARTIAL_BATCH)
                ]
            )
        out = []
        start = 0
        for count in (len(p) for p in partials):
            raw = np.mean(embeds[start : start + count], axis=0)
            out.append(np.asarray(raw / np.linalg.norm(raw, 2), dtype=np.float64))
            start += count
        return out

    def compute_batch(self, items: Sequence[BatchItem]) -> list[dict[str, Any] | Exception]:
        """Score several utterances, the partial utterances of all of them through the encoder together.

        Each embedding equals the one of :meth:`embed` to float rounding (within 1e-6).

        Returns:
            One entry per item: the output of :meth:`compute`, or the :class:`MetricError`
            it raises for that item.
        """
        if self.options["model"] == "rawnet3":  # references alone, estimates batched
            return self._rawnet3_batch(items, None)
        RESEMBLYZER_PACKAGE.load()
        from resemblyzer import VoiceEncoder

        if self._encoder is None:
            self.setup()
        if not isinstance(self._encoder, VoiceEncoder):  # another embedding model: one at a time
            return super().compute_batch(items)
        out: list[dict[str, Any] | Exception | None] = [None] * len(items)
        prepared: list[tuple[int, np.ndarray, np.ndarray]] = []
        for i, item in enumerate(items):
            try:
                self._check_inputs(item.reference, item.sample_rate)
                ref = self._partial_mels(self._prepare(item.reference, "reference"))
                est = self._partial_mels(self._prepare(item.estimate, "enhanced"))
            except MetricError as exc:
                out[i] = exc
                continue
            prepared.append((i, ref, est))
        for chunk in length_buckets([len(r) + len(e) for _, r, e in prepared], self.batch_size):
            embeddings = self._embed_partials([m for k in chunk for m in prepared[k][1:]])
            for j, k in enumerate(chunk):
                try:
                    out[prepared[k][0]] = {"spk_sim": _cosine(embeddings[2 * j], embeddings[2 * j + 1])}
                except MetricError as exc:
                    out[prepared[k][0]] = exc
        return out  # type: ignore[return-value]

    def compute_batch_with_state(
        self, items: Sequence[BatchItem], states: Sequence[dict[str, np.ndarray]]
    ) -> list[dict[str, Any] | Exception]:
        """Score several utterances whose reference embeddings are known (:meth:`reference_state`).

        The partial utterances of all the estimates go through the encoder together; each
        similarity equals the one of :meth:`compute_with_state` to float rounding (within 1e-6).
        """
        if self.options["model"] == "rawnet3":  # estimates of equal length together
            return self._rawnet3_batch(items, states)
        RESEMBLYZER_PACKAGE.load()
        from resemblyzer import VoiceEncoder

        if self._encoder is None:
            self.setup()
        if not isinstance(self._encoder, VoiceEncoder):  # another embedding model: one at a time
            return super().compute_batch_with_state(items, states)
        out: list[dict[str, Any] | Exception | None] = [None] * len(items)
        prepared: list[tuple[int, np.ndarray]] = []
        for i, item in enumerate(items):
            try:
                self._check_inputs(item.reference, item.sample_rate)
                prepared.append((i, self._partial_mels(self._prepare(item.estimate, "enhanced"))))
            except MetricError as exc:
                out[i] = exc
        for chunk in length_buckets([len(e) for _, e in prepared], self.batch_size):
            embeddings = self._embed_partials([prepared[k][1] for k in chunk])
            for j, k in enumerate(chunk):
                i = prepared[k][0]
                try:
                    out[i] = {"spk_sim": _cosine(states[i]["embedding"], embeddings[j])}
                except MetricError as exc:
                    out[i] = exc
        return out  # type: ignore[return-value]

    def _rawnet3_batch(
        self, items: Sequence[BatchItem], states: Sequence[dict[str, np.ndarray]] | None
    ) -> list[dict[str, Any] | Exception]:
        """RawNet3 similarities: references embedded alone (or given), estimates of equal length together.

        RawNet3's instance normalisation and statistics pooling run over the whole input,
        so only estimates of one length share a forward pass (no padding); each value
        equals the one-by-one value to float rounding.
        """
        from urgentbench.metrics.rawnet3 import torch_cosine

        if self._encoder is None:
            self.setup()
        out: list[dict[str, Any] | Exception | None] = [None] * len(items)
        ready: list[tuple[int, np.ndarray, np.ndarray]] = []
        for i, item in enumerate(items):
            try:
                self._check_inputs(item.reference, item.sample_rate)
                ref = states[i]["embedding"] if states is not None else self._encoder.embed(item.reference, "reference")
                ready.append((i, ref, self._encoder.checked(item.estimate, "enhanced")))
            except MetricError as exc:
                out[i] = exc
        embeddings = self._encoder.embed_checked([x for _, _, x in ready], self.batch_size)
        for (i, ref, _), est in zip(ready, embeddings):
            out[i] = est if isinstance(est, MetricError) else {"spk_sim": torch_cosine(ref, est)}
        return out  # type: ignore[return-value]

    @staticmethod
    def _check_inputs(reference: np.ndarray | None, sample_rate: int) -> None:
        if sample_rate != _SR:
            raise MetricError(f"speaker similarity needs {_SR} Hz audio, got {sample_rate} Hz")
        if reference is None:
            raise MetricError("speaker similarity needs the clean reference")

    reference_state_cacheable = True

    def reference_state(self, reference: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """The reference's speaker embedding (Resemblyzer or RawNet3, per the ``model`` option)."""
        self._check_inputs(reference, sample_rate)
        if self._encoder is None:
            self.setup()
        if self.options["model"] == "rawnet3":
            return {"embedding": np.asarray(self._encoder.embed(reference, "reference"))}
        return {"embedding": self.embed(reference, "reference")}

    def compute_with_state(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        state: dict[str, np.ndarray],
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Similarity of the estimate's embedding to the reference's (from :meth:`reference_state`).

        Returns:
            ``{"spk_sim": cosine similarity}``.

        Raises:
            MetricError: For a wrong rate, a missing reference, or a signal without speech.
        """
        self._check_inputs(reference, sample_rate)
        if self._encoder is None:
            self.setup()
        if self.options["model"] == "rawnet3":
            from urgentbench.metrics.rawnet3 import torch_cosine

            return {"spk_sim": torch_cosine(state["embedding"], np.asarray(self._encoder.embed(estimate, "enhanced")))}
        return {"spk_sim": _cosine(state["embedding"], self.embed(estimate, "enhanced"))}


def _cosine(ref: np.ndarray, est: np.ndarray) -> float:
    """Cosine similarity of two embeddings; MetricError when one is all zeros."""
    norm = float(np.linalg.norm(ref) * np.linalg.norm(est))
    if norm == 0.0:
        raise MetricError("a speaker embedding is all zeros; similarity undefined")
    return float(np.dot(ref, est) / norm)
