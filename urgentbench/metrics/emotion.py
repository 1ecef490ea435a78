"""Emotion similarity (EmoSim): cosine of emotion2vec_base utterance embeddings, URGENT 2026 track 1.

URGENT 2026's ``calculate_emotion_similarity.py`` resamples the reference and the enhanced
signal to 16 kHz with soxr, embeds each with ``EMO2VEC("emotion2vec_base.pt")
.extract_feature(x, fs=16000)`` (the ``emo2vec_versa`` fork of emotion2vec, on fairseq) and
reports ``dot(e_inf, e_ref) / (|e_inf| |e_ref|)``. This metric reproduces that without
fairseq:

- **Network**: urgentbench's own implementation of emotion2vec's data2vec 2.0 audio
  encoder (:mod:`urgentbench.metrics._emotion2vec_net`), built from the architecture the
  checkpoint's own ``cfg`` describes, with fairseq's module names so that the checkpoint's
  ``model`` state dict loads with ``strict=True`` once the pre-training decoder (and an
  EMA teacher, if present) are set aside. On the same random weights it equals FunASR's
  copy of the emotion2vec model code (which is the fork's, without fairseq) within 1e-6.
- **Weights**: ``emotion2vec_base.pt`` from the Hugging Face repository
  ``emotion2vec/emotion2vec_base`` at commit ``5e05b49`` (the commit that added it; the
  one after it edits the README only), asset ``emotion2vec-base``, pinned to the sha256
  Hugging Face publishes for the file (its Git LFS object). The file's only pickle
  imports are tensors, storages and ``OrderedDict``, so it is read with
  ``torch.load(..., weights_only=True)``.
- **Embedding**: as ``extract_feature(..., granularity="utterance")``: the float32
  waveform, layer-normalised over all its samples when the checkpoint's task says
  ``normalize`` (``F.layer_norm(x, x.shape)``, eps 1e-5; emotion2vec_base does), one
  utterance at a time without padding, the last layer's frame features without the
  extra tokens, and their mean over frames computed by numpy in float32.
- **Similarity**: the cosine of the two float32 embeddings, computed in float64 (the
  official script's float32 arithmetic differs by about 1e-7).

A waveform shorter than the convolution stack's receptive field (400 samples, 25 ms, at
16 kHz) has no frame: the official extractor fails on it, here it is a
:class:`MetricError`. So is a silent (all-zero) reference: its normalised waveform is all
zeros, whatever the speech it stands for, so the similarity would mean nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from urgentbench.assets import Asset, AssetFile, DownloadSource
from urgentbench.errors import one_line
from urgentbench.metrics.base import BatchItem, MetricError, Output
from urgentbench.metrics.model import ModelMetric, forward_equal_lengths, mono_audio
from urgentbench.requirements import PackageRequirement

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
ASSET = "emotion2vec-base"
CHECKPOINT = "emotion2vec_base.pt"
#: The sha256 Hugging Face states for ``emotion2vec_base.pt`` (its Git LFS object id).
CHECKPOINT_SHA256 = "4f14ddf7ba394bcafdd4bff6ae0f24ab2e4134260d4dd42c58ea791a201b02dd"

_REPO = "emotion2vec/emotion2vec_base"
_REVISION = "5e05b4938a819f0e267f187ad94557b6f925e044"

#: emotion2vec base (self-supervised emotion representation, 768 dimensions), URGENT 2026's EmoSim model.
EMOTION2VEC_BASE = Asset(
    name=ASSET,
    description=f"emotion2vec base speech emotion representation model, fairseq checkpoint ({_REPO}@{_REVISION[:7]})",
    licence=(
        "other: the 'model-license' of the emotion2vec Hugging Face card (FunASR's model licence; "
        "read its terms before redistributing)"
    ),
    homepage=f"https://huggingface.co/{_REPO}/tree/{_REVISION}",
    used_by=("metric emo_sim",),
    files=(AssetFile(CHECKPOINT, CHECKPOINT_SHA256),),
    sources=(
        DownloadSource(urls={CHECKPOINT: (f"https://huggingface.co/{_REPO}/resolve/{_REVISION}/{CHECKPOINT}",)}),
    ),
)

#: The assets of the ``emo_sim`` metric (registered by :mod:`urgentbench.metrics`).
ASSET_PINS = ((EMOTION2VEC_BASE, ("emotion2vec_base",)),)

#: State-dict entries of the pre-training set-up that feature extraction never uses.
_TRAINING_ONLY = ("modality_encoders.AUDIO.decoder.", "_ema")


def load_emotion2vec(path: str | Path) -> Any:
    """Build the emotion2vec encoder that a fairseq checkpoint describes and load its weights.

    The file is read with ``torch.load(..., weights_only=True)``; call this only on files
    whose checksum was verified. Its ``cfg`` gives the architecture and the task's
    ``normalize`` (:meth:`~urgentbench.metrics._emotion2vec_net.Emotion2vecConfig.from_fairseq`);
    its ``model`` state dict, without the training-only entries (the pre-training decoder,
    an EMA teacher), must fit the encoder exactly.

    Args:
        path: An ``emotion2vec_base.pt``-style fairseq checkpoint.

    Returns:
        The encoder (:class:`~urgentbench.metrics._emotion2vec_net.Emotion2vec`) in eval
        mode; its ``cfg`` holds the architecture and ``normalize``.

    Raises:
        RuntimeError: When the file is not such a checkpoint (the message names the file
            and the missing, unexpected or mis-shaped keys, or the unsupported option).
    """
    import torch

    from urgentbench.metrics._emotion2vec_net import Emotion2vec, Emotion2vecConfig

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure: report it on one line
        raise RuntimeError(f"{path}: not a weights-only readable checkpoint ({one_line(exc)})") from None
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("model"), Mapping):
        raise RuntimeError(f"{path} is not a fairseq checkpoint (no 'model' state dict)")
    try:
        cfg = Emotion2vecConfig.from_fairseq(checkpoint.get("cfg") or {})
    except ValueError as exc:
        raise RuntimeError(f"{path}: {exc}") from None
    state = {k: v for k, v in checkpoint["model"].items() if not k.startswith(_TRAINING_ONLY)}
    scale_key = "modality_encoders.AUDIO.alibi_scale"
    if scale_key in state and state[scale_key].dim() == 4:  # an older layout, upgraded as upstream does
        state[scale_key] = state[scale_key].unsqueeze(0)
    model = Emotion2vec(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(s.strip() for s in str(exc).strip().splitlines()[:3])
        raise RuntimeError(f"{path} is not an emotion2vec checkpoint of this architecture: {detail}") from None
    model.requires_grad_(False)
    return model.eval()


def utterance_embedding(model: Any, waveform: np.ndarray) -> np.ndarray:
    """The utterance embedding of a float32 16 kHz waveform, as ``extract_feature(x, 16000)`` gives it.

    Layer normalisation of the whole waveform when the checkpoint's task says so, the
    encoder's frame features for the waveform as one batch item, their mean over frames
    (numpy, float32).

    Args:
        model: A loaded encoder (:func:`load_emotion2vec`), on any device.
        waveform: Mono float32 audio at 16 kHz with at least ``model.cfg.min_samples()`` samples.

    Returns:
        The ``embed_dim`` float32 embedding.
    """
    return utterance_embeddings(model, [waveform])[0]


def utterance_embeddings(model: Any, waveforms: Sequence[np.ndarray], batch_size: int = 1) -> list[np.ndarray]:
    """:func:`utterance_embedding` of several waveforms, those of equal length in one forward pass.

    The ALiBi attention has no padding mask, so only waveforms of one length share a pass;
    each embedding equals the one-by-one embedding to float rounding.
    """
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    with torch.inference_mode():
        sources = []
        for waveform in waveforms:
            source = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)).to(device)
            sources.append(F.layer_norm(source, source.shape) if model.cfg.normalize else source)
        means = forward_equal_lengths(sources, lambda batch: model(batch).mean(dim=1), batch_size)
    return [m.cpu().numpy() for m in means]


class EmotionSimilarity(ModelMetric):
    """Cosine similarity of the emotion2vec_base embeddings of the enhanced and the reference speech.

    Options:
        threads: torch intra-op threads; None uses ``$URGENTBENCH_THREADS`` (set by the
            runner) or torch's default.
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"``.

    :meth:`compute_batch_with_state` embeds estimates of equal length in one forward pass
    (the attention has no padding mask, so unequal lengths go one at a time).
    """

    name: ClassVar[str] = "emo_sim"
    aliases: ClassVar[tuple[str, ...]] = ("emosim", "emotion_similarity")
    description: ClassVar[str] = "Emotion similarity: cosine of emotion2vec_base utterance embeddings (URGENT 2026)"
    category: ClassVar[str] = "downstream"
    needs_reference: ClassVar[bool] = True
    sample_rate: ClassVar[int | None] = SAMPLE_RATE
    version: ClassVar[str] = "1"
    #: Most equal-length estimates per forward pass.
    batch_size: ClassVar[int] = 16
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("emo_sim", True, "Emotion similarity to the reference (cosine of emotion2vec_base embeddings)"),
    )
    distributions: ClassVar[tuple[str, ...]] = ("torch",)
    packages: ClassVar[tuple[PackageRequirement, ...]] = (
        PackageRequirement("torch", "pip install torch==2.13.0"),
    )
    reference_implementation: ClassVar[str] = (
        "URGENT 2026 calculate_emotion_similarity.py: emo2vec_versa EMO2VEC('emotion2vec_base.pt')"
        ".extract_feature(x, fs=16000) (utterance) of both signals (soxr to 16 kHz), cosine similarity"
    )
    #: The emotion2vec base checkpoint.
    asset: ClassVar[str | None] = ASSET
    reference_state_cacheable: ClassVar[bool] = True

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._model: Any = None

    def setup(self) -> None:
        """Verify the checkpoint's sha256, then build the encoder and load it once.

        Raises:
            AssetError: When the checkpoint is missing or corrupt (the message holds the fix commands).
            RuntimeError: When the file is not an emotion2vec checkpoint this implementation covers.
        """
        folder = self.asset_folder()  # sha256-verified before anything is deserialised
        self.use_threads()
        self._model = load_emotion2vec(folder / CHECKPOINT).to(self.use_device())
        logger.debug("emotion2vec loaded from %s (%s threads)", folder, self._threads or "default")

    def provenance(self) -> dict[str, Any]:
        """Version, options, checkpoint identity, threads, torch's version and how the embedding is made."""
        prov = super().provenance()
        normalize = None if self._model is None else bool(self._model.cfg.normalize)
        prov["embedding"] = {
            "layer": "last block output without the extra tokens (extract_features()['x'])",
            "pooling": "mean over frames",
            "waveform_layer_norm": normalize,
        }
        return prov

    def embed(self, waveform: np.ndarray, role: str = "input") -> np.ndarray:
        """The float32 utterance embedding of a mono 16 kHz waveform.

        Args:
            waveform: Mono audio at 16 kHz.
            role: Which signal this is, for error messages ("enhanced", "reference").

        Raises:
            MetricError: For an empty, non-mono, non-finite or too short waveform.
        """
        x = self._checked(waveform, role)  # sets the model up first
        return _finite_embedding(utterance_embedding(self._model, x), role)

    def _checked(self, waveform: np.ndarray, role: str) -> np.ndarray:
        """The waveform as float32 after checking that the encoder can take it (sets up the model first)."""
        if self._model is None:
            self.setup()
        x = mono_audio(waveform, role)
        need = self._model.cfg.min_samples()
        if x.size < need:
            raise MetricError(
                f"{role} audio is {x.size / SAMPLE_RATE * 1000:.1f} ms long; emotion2vec needs at least "
                f"{need} samples ({need / SAMPLE_RATE * 1000:.0f} ms) at 16 kHz"
            )
        return x

    def compute_batch(self, items: Sequence[BatchItem]) -> list[dict[str, Any] | Exception]:
        """Score several utterances: each reference embedded alone, the estimates batched (:meth:`compute_batch_with_state`)."""
        return self.compute_batch_from_references(items)

    def compute_batch_with_state(
        self, items: Sequence[BatchItem], states: Sequence[dict[str, np.ndarray]]
    ) -> list[dict[str, Any] | Exception]:
        """Score several utterances whose reference embeddings are known, estimates of equal length together.

        Each similarity equals :meth:`compute_with_state`'s to float rounding (within 1e-5).
        """
        out: list[dict[str, Any] | Exception | None] = [None] * len(items)
        ready: list[tuple[int, np.ndarray]] = []
        for i, item in enumerate(items):
            try:
                self._check_inputs(item.reference, item.sample_rate)
                ready.append((i, self._checked(item.estimate, "enhanced")))
            except MetricError as exc:
                out[i] = exc
        if ready:
            embeddings = utterance_embeddings(self._model, [x for _, x in ready], self.batch_size)
            for (i, _), embedding in zip(ready, embeddings):
                try:
                    out[i] = {"emo_sim": cosine(states[i]["embedding"], _finite_embedding(embedding, "enhanced"))}
                except MetricError as exc:
                    out[i] = exc
        return out  # type: ignore[return-value]

    @staticmethod
    def _check_inputs(reference: np.ndarray | None, sample_rate: int) -> None:
        if sample_rate != SAMPLE_RATE:
            raise MetricError(f"emotion similarity needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        if reference is None:
            raise MetricError("emotion similarity needs the clean reference")

    def reference_state(self, reference: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """The reference's utterance embedding (float32), shared by every system scored against it.

        Raises:
            MetricError: For a wrong rate, or a silent, too short or unreadable reference.
        """
        self._check_inputs(reference, sample_rate)
        if not np.any(np.asarray(reference)):
            raise MetricError("reference audio is silent (all zeros): no emotion embedding to compare with")
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
            ``{"emo_sim": cosine similarity}`` in [-1, 1].

        Raises:
            MetricError: For a wrong rate, a missing reference, or an estimate that cannot be embedded.
        """
        self._check_inputs(reference, sample_rate)
        return {"emo_sim": cosine(state["embedding"], self.embed(estimate, "enhanced"))}


def cosine(reference: np.ndarray, estimate: np.ndarray) -> float:
    """``dot(r, e) / (|r| |e|)`` in float64 (URGENT's formula); MetricError when an embedding is all zeros."""
    r = np.asarray(reference, dtype=np.float64)
    e = np.asarray(estimate, dtype=np.float64)
    norm = float(np.linalg.norm(r) * np.linalg.norm(e))
    if norm == 0.0:
        raise MetricError("an emotion embedding is all zeros; similarity undefined")
    return float(np.dot(r, e) / norm)


def _finite_embedding(embedding: np.ndarray, role: str) -> np.ndarray:
    """``embedding`` when every value is finite, else a MetricError."""
    if not np.all(np.isfinite(embedding)):
        raise MetricError(f"emotion2vec produced a non-finite embedding of the {role} audio")
    return embedding
