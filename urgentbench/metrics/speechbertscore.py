"""SpeechBERTScore (precision), as URGENT computes it.

SpeechBERTScore (Saeki et al., 2024, arXiv:2401.16812) compares the self-supervised
features of the enhanced and the reference speech like BERTScore compares token
embeddings. URGENT ranks the **precision** term:

    P = mean over enhanced frames i of  max over reference frames j of  cos(e_i, r_j)

with e and r the hidden states of one layer of a HuBERT model. What the official script
(``evaluation_metrics/calculate_speechbert_score.py`` with ``discrete_speech_metrics``)
does, and this module reproduces:

- both signals at 16 kHz (the runner resamples with soxr HQ, as the script does);
- the raw waveform goes straight into the model as a batch of one: no feature-extractor
  normalisation (mHuBERT's own preprocessor would normalise mean and variance; the
  official script does not, so neither do we), no padding, no attention mask;
- "layer 8" is ``hidden_states[8]`` of transformers' output: index 0 is the input of the
  first transformer layer (after the positional convolution and the layer norm), index k
  the output of the k-th layer. Only the first ``layer`` layers are run here (the same
  numbers, a third less work for layer 8 of 12);
- cosine similarity between every enhanced and every reference frame, max over
  reference frames, mean over enhanced frames (computed in float64 here; the script uses
  float32, a difference far below 1e-5).

Protocol variants (option ``model``): ``hubert-base`` (facebook/hubert-base-ls960, URGENT
2024) and ``mhubert-147`` (utter-project/mHuBERT-147, URGENT 2025 and 2026; the default),
both at layer 8. The weights are assets pinned to a Hub commit (``urgentbench assets fetch
mhubert-147``); ``model_dir`` points at another local ``from_pretrained`` folder instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from urgentbench.metrics._ssl import (
    SAMPLE_RATE,
    PretrainedMetric,
    ReferenceCache,
    check_input,
    load_pretrained,
)
from urgentbench.metrics.base import BatchItem, MetricError, Output
from urgentbench.metrics.model import device_tensor, forward_equal_lengths
from urgentbench.requirements import PackageRequirement, pip

logger = logging.getLogger(__name__)

#: Option value -> (asset name, Hugging Face repository) of the protocol variants.
MODELS: dict[str, tuple[str, str]] = {
    "hubert-base": ("hubert-base-ls960", "facebook/hubert-base-ls960"),
    "mhubert-147": ("mhubert-147", "utter-project/mHuBERT-147"),
}
DEFAULT_MODEL = "mhubert-147"
DEFAULT_LAYER = 8


def bertscore_precision(estimate_features: np.ndarray, reference_features: np.ndarray) -> float:
    """BERTScore precision: mean over estimate frames of the best cosine similarity to a reference frame.

    Args:
        estimate_features: ``(frames, dim)`` features of the enhanced speech.
        reference_features: ``(frames, dim)`` features of the reference speech.

    Raises:
        MetricError: For empty inputs, different feature sizes, or an all-zero frame
            (cosine similarity undefined).
    """
    est = np.asarray(estimate_features, dtype=np.float64)
    ref = np.asarray(reference_features, dtype=np.float64)
    if est.ndim != 2 or ref.ndim != 2 or est.shape[0] == 0 or ref.shape[0] == 0:
        raise MetricError(
            f"SpeechBERTScore needs non-empty (frames, dim) features, got {est.shape} and {ref.shape}"
        )
    if est.shape[1] != ref.shape[1]:
        raise MetricError(f"feature sizes differ: {est.shape[1]} vs {ref.shape[1]}")
    est_norm = np.linalg.norm(est, axis=1)
    ref_norm = np.linalg.norm(ref, axis=1)
    if not (np.all(est_norm > 0) and np.all(ref_norm > 0)):
        raise MetricError("a feature frame is all zeros; cosine similarity undefined")
    similarity = (est / est_norm[:, None]) @ (ref / ref_norm[:, None]).T
    return float(similarity.max(axis=1).mean())


class SpeechBERTScore(PretrainedMetric):
    """SpeechBERTScore precision of the enhanced speech against the reference (HuBERT-family features).

    Options:
        model: ``"mhubert-147"`` (URGENT 2025/2026, default) or ``"hubert-base"`` (URGENT 2024).
        layer: Hidden-state index whose features are compared (8 in every URGENT edition).
        model_dir: A local ``from_pretrained`` folder (config.json + weights) used instead
            of the model's asset; its file hashes go into the provenance.
        threads: torch intra-op threads; None uses ``$URGENTBENCH_THREADS`` or torch's default.
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"``.

    :meth:`compute_batch` runs waveforms of equal length through the model together (the
    HuBERT front end's GroupNorm normalises over the whole input and the official script
    uses no attention mask, so padding would change the features); others go one at a time.
    """

    name: ClassVar[str] = "speechbertscore"
    aliases: ClassVar[tuple[str, ...]] = ("speech_bert_score", "sbs")
    description: ClassVar[str] = (
        "SpeechBERTScore precision on HuBERT-family layer-8 features (mHuBERT-147 or HuBERT-base)"
    )
    category: ClassVar[str] = "downstream-independent"
    needs_reference: ClassVar[bool] = True
    sample_rate: ClassVar[int | None] = SAMPLE_RATE
    version: ClassVar[str] = "1"
    #: Most equal-length waveforms per forward pass.
    batch_size: ClassVar[int] = 16
    outputs: ClassVar[tuple[Output, ...]] = (
        Output(
            "speechbertscore",
            True,
            "SpeechBERTScore precision (cosine of SSL features, max over reference frames)",
        ),
    )
    distributions: ClassVar[tuple[str, ...]] = ("transformers", "torch", "safetensors", "numpy")
    packages: ClassVar[tuple[PackageRequirement, ...]] = (
        PackageRequirement("transformers", pip("transformers>=5.0")),
        PackageRequirement("safetensors", pip("safetensors>=0.4")),
        PackageRequirement("torch", "pip install torch==2.13.0"),
    )
    reference_implementation: ClassVar[str] = (
        "URGENT evaluation_metrics/calculate_speechbert_score.py: discrete_speech_metrics.SpeechBERTScore"
        "(sr=16000, model_type='hubert-base' (2024) or 'mhubert-147' (2025+, kohei0209 fork), layer=8), precision"
    )

    def __init__(self, **options: Any):
        super().__init__(**options)
        if self.options["model"] not in MODELS:
            raise ValueError(
                f"speechbertscore: unknown model {self.options['model']!r}; choose one of {sorted(MODELS)}"
            )
        layer = self.options["layer"]
        from urgentbench.validation import require_int

        require_int(layer, "speechbertscore: layer", minimum=0)
        self._cache = ReferenceCache(16)

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``model``: mhubert-147, ``layer``: 8, ``model_dir``: None (the asset), ``threads``: None, ``device``: cpu."""
        return {"model": DEFAULT_MODEL, "layer": DEFAULT_LAYER, "model_dir": None, "threads": None, "device": "cpu"}

    @classmethod
    def asset_name(cls, options: Mapping[str, Any]) -> str | None:
        """The asset of the chosen model (none is loaded when ``model_dir`` is given)."""
        return MODELS.get(options["model"], MODELS[DEFAULT_MODEL])[0]

    def repository(self) -> str:
        """The chosen model's Hugging Face repository."""
        return MODELS[self.options["model"]][1]

    def setup(self) -> None:
        """Verify and load the model, keeping its first ``layer`` transformer layers.

        Raises:
            AssetError: When the model's asset is missing or corrupt (with the fix commands).
            RuntimeError: When the checkpoint is not a usable HuBERT-family model or has
                fewer layers than ``layer``.
        """
        from transformers import AutoModel

        folder, source = self.open_model_folder()
        model = load_pretrained(AutoModel, folder)
        config = model.config
        if (
            not hasattr(model, "encoder")
            or not hasattr(model.encoder, "layers")
            or not hasattr(config, "conv_kernel")
        ):
            raise RuntimeError(f"{folder}: {type(model).__name__} is not a wav2vec2/HuBERT-style encoder")
        if getattr(config, "do_stable_layer_norm", False):
            # Pre-norm encoders add a final layer norm to the last hidden state only, so the
            # layer truncation below would not give hidden_states[layer]; no URGENT model is one.
            raise RuntimeError(f"{folder}: pre-norm (do_stable_layer_norm) encoders are not supported")
        layer = self.options["layer"]
        if layer > len(model.encoder.layers):
            raise RuntimeError(
                f"{folder}: layer {layer} requested but the model has {len(model.encoder.layers)} layers"
            )
        # hidden_states[layer] is the output of the layer-th transformer layer (the input of the
        # first one for 0); the later layers are not needed.
        model.encoder.layers = model.encoder.layers[:layer]
        self._model, self._config = model.to(self._device), config
        self._source = source
        self._cache.clear()
        logger.debug("SpeechBERTScore: %s layer %d from %s", self.options["model"], layer, folder)

    def features(self, waveform: np.ndarray, role: str = "input") -> np.ndarray:
        """Layer features ``(frames, dim)`` (float32) of a 16 kHz waveform.

        Raises:
            MetricError: For a waveform the model cannot take (see :func:`check_input`).
        """
        import torch

        if self._model is None:
            self.setup()
        x = check_input(waveform, role, self._config)
        with torch.inference_mode():
            out = self._model(device_tensor(x, self._device)[None, :]).last_hidden_state
        return out[0].float().cpu().numpy()

    def batch_features(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """:meth:`features` of several checked 16 kHz waveforms, those of equal length in one forward pass."""
        import torch

        if self._model is None:
            self.setup()
        with torch.inference_mode():
            waves = [device_tensor(np.asarray(x, dtype=np.float32), self._device) for x in waveforms]
            out = forward_equal_lengths(waves, lambda batch: self._model(batch).last_hidden_state, self.batch_size)
        return [o.float().cpu().numpy() for o in out]

    def compute_batch(self, items: Sequence[BatchItem]) -> list[dict[str, Any] | Exception]:
        """Score several utterances; references not cached yet and all estimates go through :meth:`batch_features`.

        Each result equals :meth:`compute`'s to float rounding (within 1e-5).
        """
        if self._model is None:
            self.setup()
        out: list[dict[str, Any] | Exception | None] = [None] * len(items)
        ready: list[tuple[int, np.ndarray, np.ndarray]] = []
        for i, item in enumerate(items):
            try:
                if item.sample_rate != SAMPLE_RATE:
                    raise MetricError(f"SpeechBERTScore needs {SAMPLE_RATE} Hz audio, got {item.sample_rate} Hz")
                if item.reference is None:
                    raise MetricError("SpeechBERTScore needs the clean reference")
                ref = check_input(item.reference, "reference", self._config)
                ready.append((i, ref, check_input(item.estimate, "enhanced", self._config)))
            except MetricError as exc:
                out[i] = exc
        refs = {ReferenceCache.key(r): r for _, r, _ in ready}
        missing = [k for k, r in refs.items() if not self._cache.has(r)]
        features = self.batch_features([refs[k] for k in missing] + [e for _, _, e in ready])
        computed = dict(zip(missing, features))
        for (i, ref, _), est in zip(ready, features[len(missing):]):
            try:
                new = computed.get(ReferenceCache.key(ref))
                ref_features = self._cache.get(ref, lambda x, new=new: self.features(x, "reference") if new is None else new)
                out[i] = {"speechbertscore": bertscore_precision(est, ref_features)}
            except MetricError as exc:
                out[i] = exc
        return out  # type: ignore[return-value]

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one utterance at 16 kHz.

        Returns:
            ``{"speechbertscore": precision}`` (in [-1, 1]; 1 for identical signals).

        Raises:
            MetricError: For a wrong rate, a missing reference or an unusable waveform.
        """
        if sample_rate != SAMPLE_RATE:
            raise MetricError(f"SpeechBERTScore needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        if reference is None:
            raise MetricError("SpeechBERTScore needs the clean reference")
        if self._model is None:
            self.setup()
        ref_x = check_input(reference, "reference", self._config)
        ref = self._cache.get(ref_x, lambda x: self.features(x, "reference"))
        est = self.features(estimate, "enhanced")
        return {"speechbertscore": bertscore_precision(est, ref)}
