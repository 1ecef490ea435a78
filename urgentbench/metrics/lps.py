"""LPS: Levenshtein phoneme similarity, as URGENT computes it.

LPS (Pirklbauer et al., ITG Speech Communication 2023) recognises the phonemes of the
enhanced and of the reference speech with the same phoneme recogniser and compares the
two strings:

    LPS = 1 - Levenshtein(enhanced phonemes, reference phonemes) / len(reference phonemes)

What URGENT's ``evaluation_metrics/calculate_phoneme_similarity.py`` does, and this
module reproduces:

- recogniser: ``facebook/wav2vec2-lv-60-espeak-cv-ft`` (``Wav2Vec2ForCTC``) at 16 kHz
  (the runner resamples with soxr HQ; the script's ``librosa.resample`` defaults to soxr HQ too);
- input normalisation of its ``Wav2Vec2FeatureExtractor`` (``do_normalize``: zero mean,
  unit variance with ``var + 1e-7``, in float32), no padding;
- greedy CTC: argmax per frame, then the tokenizer's ``batch_decode`` with its defaults:
  unknown ids become ``<unk>``, consecutive equal tokens are merged, the blank (``<pad>``)
  is dropped, the other special tokens are *kept* as literal text (an emitted ``<unk>``
  counts as five characters, as in the script), tokens are joined with spaces;
- every space is then removed, so the distance is over **characters** (Unicode code
  points) of the concatenated IPA string, not over phoneme tokens: a two-character phone
  such as ``aɪ`` weighs 2, a length mark ``ː`` 1;
- no clipping: LPS ranges over (-inf, 1] (an output much longer than the reference gives
  negative values). An empty reference string is undefined: the later scripts return NaN
  (dropped by the nan-mean), the first one divided by zero; here it is a missing value
  with its reason, which the mean skips the same way.

The phoneme strings are decoded from ``vocab.json`` directly, so neither ``phonemizer``
nor eSpeak NG is needed (the tokenizer only needs them to *encode* text).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from itertools import groupby
from pathlib import Path
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

ASSET = "wav2vec2-lv-60-espeak-cv-ft"
REPOSITORY = "facebook/wav2vec2-lv-60-espeak-cv-ft"


def zero_mean_unit_variance(x: np.ndarray) -> np.ndarray:
    """The recogniser's input normalisation (``Wav2Vec2FeatureExtractor`` with ``do_normalize``), in float32."""
    y = np.asarray(x, dtype=np.float32)
    return (y - y.mean()) / np.sqrt(y.var() + 1e-7)


def phoneme_distance(estimate: Sequence[Any], reference: Sequence[Any]) -> int:
    """Levenshtein distance (unit-cost insertions, deletions, substitutions) of two phoneme strings.

    rapidfuzz's C++ implementation, which the ``Levenshtein`` package that URGENT's script
    imports (``from Levenshtein import distance``) wraps; works per character of strings
    and per item of lists of tokens alike.
    """
    from rapidfuzz.distance import Levenshtein

    return int(Levenshtein.distance(estimate, reference))


def phoneme_similarity(reference: str, estimate: str) -> float:
    """LPS of two phoneme strings: ``1 - phoneme_distance(estimate, reference) / len(reference)``.

    Raises:
        MetricError: When the reference string is empty (the similarity is undefined).
    """
    if not reference:
        raise MetricError("the reference has no recognised phonemes; LPS is undefined (division by zero)")
    return 1.0 - phoneme_distance(estimate, reference) / len(reference)


class CTCPhonemeDecoder:
    """Greedy CTC decoding of a phoneme recogniser's frame ids, as its tokenizer's ``batch_decode`` does.

    Args:
        vocab: Token -> id (``vocab.json``).
        pad_token: The CTC blank (dropped after merging repeats).
        unk_token: What ids outside the vocabulary become.
        word_delimiter_token: Dropped too when set (the eSpeak model has none).
    """

    def __init__(
        self,
        vocab: Mapping[str, int],
        pad_token: str = "<pad>",
        unk_token: str = "<unk>",
        word_delimiter_token: str | None = None,
    ):
        self.id_to_token = {int(i): t for t, i in vocab.items()}
        self.pad_token = pad_token
        self.unk_token = unk_token
        self.word_delimiter_token = word_delimiter_token

    @classmethod
    def from_folder(cls, folder: Path) -> CTCPhonemeDecoder:
        """Read ``vocab.json`` and the special tokens (``tokenizer_config.json``, ``special_tokens_map.json``).

        Raises:
            RuntimeError: When ``vocab.json`` is missing or unreadable.
        """
        try:
            vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RuntimeError(
                f"{folder / 'vocab.json'}: cannot read the phoneme vocabulary ({exc})"
            ) from exc
        special: dict[str, Any] = {}
        for name in (
            "tokenizer_config.json",
            "special_tokens_map.json",
        ):  # the latter wins, as in transformers
            path = folder / name
            if path.is_file():
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except ValueError as exc:
                    raise RuntimeError(f"{path}: not valid JSON ({exc})") from exc
                special.update({k: _token_text(v) for k, v in data.items() if k.endswith("_token")})
        return cls(
            vocab,
            pad_token=special.get("pad_token") or "<pad>",
            unk_token=special.get("unk_token") or "<unk>",
            word_delimiter_token=special.get("word_delimiter_token"),
        )

    def tokens(self, ids: Sequence[int]) -> list[str]:
        """The phoneme tokens of a frame-id sequence: repeats merged, blanks (and word delimiters) dropped."""
        raw = [self.id_to_token.get(int(i), self.unk_token) for i in ids]
        merged = [token for token, _ in groupby(raw)]
        return [t for t in merged if t != self.pad_token and t != self.word_delimiter_token]

    def decode(self, ids: Sequence[int]) -> str:
        """The tokenizer's text (tokens joined with spaces)."""
        return " ".join(self.tokens(ids)).strip()

    def phoneme_string(self, ids: Sequence[int]) -> str:
        """The string URGENT compares: the decoded text with every space removed."""
        return self.decode(ids).replace(" ", "")


def _token_text(value: Any) -> str | None:
    """A special token as text (tokenizer files store either a string or an AddedToken dict)."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


class LPS(PretrainedMetric):
    """Levenshtein phoneme similarity between the enhanced and the reference speech.

    Options:
        model_dir: A local ``from_pretrained`` folder of a ``Wav2Vec2ForCTC`` phoneme
            recogniser (config.json, weights, vocab.json, preprocessor_config.json) used
            instead of the asset; its file hashes go into the provenance.
        threads: torch intra-op threads; None uses ``$URGENTBENCH_THREADS`` or torch's default.
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"``.

    :meth:`compute_batch_with_state` recognises estimates of equal length in one forward
    pass, with no padding and no attention mask, exactly the inputs of the official script
    (one file at a time); padded batches would need an attention mask the script does not
    use, so estimates of other lengths go one at a time.
    """

    name: ClassVar[str] = "lps"
    aliases: ClassVar[tuple[str, ...]] = ("phoneme_similarity", "levenshtein_phoneme_similarity")
    description: ClassVar[str] = "Levenshtein phoneme similarity (wav2vec2-lv-60-espeak-cv-ft greedy CTC)"
    category: ClassVar[str] = "downstream-independent"
    needs_reference: ClassVar[bool] = True
    sample_rate: ClassVar[int | None] = SAMPLE_RATE
    version: ClassVar[str] = "1"
    #: Most equal-length estimates per forward pass.
    batch_size: ClassVar[int] = 16
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("lps", True, "1 - phoneme edit distance / reference phoneme-string length"),
    )
    distributions: ClassVar[tuple[str, ...]] = ("transformers", "torch", "numpy", "rapidfuzz")
    packages: ClassVar[tuple[PackageRequirement, ...]] = (
        PackageRequirement("transformers", pip("transformers>=5.0")),
        PackageRequirement("torch", "pip install torch==2.13.0"),
        PackageRequirement("rapidfuzz", pip("rapidfuzz>=3")),
    )
    reference_implementation: ClassVar[str] = (
        "URGENT evaluation_metrics/calculate_phoneme_similarity.py: Wav2Vec2Processor + Wav2Vec2ForCTC "
        "(facebook/wav2vec2-lv-60-espeak-cv-ft), argmax + batch_decode, spaces removed, "
        "1 - Levenshtein.distance(enh, ref) / len(ref)"
    )

    #: The phoneme recogniser (none when ``model_dir`` is given).
    asset: ClassVar[str | None] = ASSET

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._decoder: CTCPhonemeDecoder | None = None
        self._normalize = True
        self._cache = ReferenceCache(256)

    def repository(self) -> str:
        """The recogniser's Hugging Face repository."""
        return REPOSITORY

    def setup(self) -> None:
        """Verify and load the recogniser, its vocabulary and its input normalisation.

        Raises:
            AssetError: When the asset is missing or corrupt (with the fix commands).
            RuntimeError: When the folder does not hold a usable CTC phoneme recogniser.
        """
        from transformers import Wav2Vec2ForCTC

        folder, source = self.open_model_folder()
        self._decoder = CTCPhonemeDecoder.from_folder(folder)
        self._normalize = _read_do_normalize(folder)
        self._model = load_pretrained(Wav2Vec2ForCTC, folder).to(self._device)
        self._config = self._model.config
        self._source = source
        self._cache.clear()
        logger.debug("LPS recogniser loaded from %s (normalise input: %s)", folder, self._normalize)

    def frame_ids(self, waveform: np.ndarray, role: str = "input") -> np.ndarray:
        """Greedy (argmax) CTC ids per frame of a 16 kHz waveform.

        Raises:
            MetricError: For a waveform the model cannot take.
        """
        import torch

        x = self._model_input(waveform, role)
        with torch.inference_mode():
            logits = self._model(device_tensor(x, self._device)[None, :]).logits
        return logits[0].argmax(dim=-1).cpu().numpy()

    def _model_input(self, waveform: np.ndarray, role: str) -> np.ndarray:
        """The checked waveform, normalised when the recogniser's preprocessor says so (sets up the model first)."""
        if self._model is None:
            self.setup()
        x = check_input(waveform, role, self._config)
        return np.ascontiguousarray(zero_mean_unit_variance(x) if self._normalize else x, dtype=np.float32)

    def batch_phonemes(self, waveforms: Sequence[np.ndarray]) -> list[str]:
        """:meth:`phonemes` of several model inputs (:meth:`_model_input`), those of equal length in one pass."""
        import torch

        decoder = self._decoder
        if decoder is None:
            raise RuntimeError("LPS: the phoneme decoder was not set up")
        with torch.inference_mode():
            waves = [device_tensor(x, self._device) for x in waveforms]
            ids = forward_equal_lengths(waves, lambda batch: self._model(batch).logits.argmax(dim=-1), self.batch_size)
        return [decoder.phoneme_string(row.cpu().numpy()) for row in ids]

    def compute_batch(self, items: Sequence[BatchItem]) -> list[dict[str, Any] | Exception]:
        """Score several utterances: each reference recognised alone (cached), the estimates batched."""
        return self.compute_batch_from_references(items)

    def compute_batch_with_state(
        self, items: Sequence[BatchItem], states: Sequence[dict[str, np.ndarray]]
    ) -> list[dict[str, Any] | Exception]:
        """Score several utterances whose reference phonemes are known, estimates of equal length together.

        Each result equals :meth:`compute_with_state`'s (the same phoneme strings).
        """
        out: list[dict[str, Any] | Exception | None] = [None] * len(items)
        ready: list[tuple[int, np.ndarray]] = []
        for i, item in enumerate(items):
            try:
                if item.sample_rate != SAMPLE_RATE:
                    raise MetricError(f"LPS needs {SAMPLE_RATE} Hz audio, got {item.sample_rate} Hz")
                ready.append((i, self._model_input(item.estimate, "enhanced")))
            except MetricError as exc:
                out[i] = exc
        if ready:
            for (i, _), est in zip(ready, self.batch_phonemes([x for _, x in ready])):
                try:
                    out[i] = _similarity(est, str(states[i]["phonemes"]))
                except MetricError as exc:
                    out[i] = exc
        return out  # type: ignore[return-value]

    def phonemes(self, waveform: np.ndarray, role: str = "input") -> str:
        """The recognised phoneme string (spaces removed) of a 16 kHz waveform."""
        ids = self.frame_ids(waveform, role)  # runs setup() first if needed, which sets the decoder
        decoder = self._decoder
        if decoder is None:
            raise RuntimeError("LPS: the phoneme decoder was not set up")
        return decoder.phoneme_string(ids)

    reference_state_cacheable = True

    def reference_state(self, reference: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """The reference's recognised phoneme string (as a 0-d string array).

        Raises:
            MetricError: For a missing reference, a wrong rate or an unusable waveform.
        """
        if reference is None:
            raise MetricError("LPS needs the clean reference")
        if sample_rate != SAMPLE_RATE:
            raise MetricError(f"LPS needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        if self._model is None:
            self.setup()
        ref_x = check_input(reference, "reference", self._config)
        return {"phonemes": np.array(self._cache.get(ref_x, lambda x: self.phonemes(x, "reference")))}

    def compute_with_state(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        state: dict[str, np.ndarray],
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """LPS from the reference's phoneme string (computed earlier by :meth:`reference_state`).

        Returns:
            ``{"lps": similarity}`` plus the extras ``lps_distance`` (edit distance) and
            ``lps_reference_length`` (characters of the reference phoneme string).

        Raises:
            MetricError: For a wrong rate, an unusable waveform, or a reference in which no
                phoneme is recognised.
        """
        if sample_rate != SAMPLE_RATE:
            raise MetricError(f"LPS needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        if self._model is None:
            self.setup()
        return _similarity(self.phonemes(estimate, "enhanced"), str(state["phonemes"]))


def _similarity(est: str, ref: str) -> dict[str, Any]:
    """LPS and its extras from the two phoneme strings.

    Raises:
        MetricError: When no phoneme was recognised in the reference.
    """
    if not ref:
        raise MetricError("no phoneme was recognised in the reference; LPS is undefined (division by zero)")
    distance = phoneme_distance(est, ref)
    return {"lps": 1.0 - distance / len(ref), "lps_distance": distance, "lps_reference_length": len(ref)}


def _read_do_normalize(folder: Path) -> bool:
    """The feature extractor's ``do_normalize`` (True, its default, when there is no preprocessor file)."""
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return True
    try:
        return bool(json.loads(path.read_text(encoding="utf-8")).get("do_normalize", True))
    except ValueError as exc:
        raise RuntimeError(f"{path}: not valid JSON ({exc})") from exc
