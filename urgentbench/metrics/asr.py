"""Word and character error rate of Whisper base (faster-whisper, CTranslate2) on the enhanced speech.

URGENT transcribes with OWSM v3.1 (ESPnet), whose weights are only on the Hugging Face
Hub. This offline substitute decodes with OpenAI Whisper base in CTranslate2 format (the
``whisper-base-ct2`` asset, assembled from two packages on the package index), so the
numbers are not comparable with URGENT leaderboards, only between systems scored here.

What follows URGENT:

- reference transcript and hypothesis are normalised with Whisper's English text
  normaliser (URGENT's ``TextCleaner("whisper_en")``);
- per utterance the edit distance (substitutions + deletions + insertions) and the
  reference length are stored, words for WER and characters of the normalised string
  (spaces included) for CER;
- the system value is the corpus-level rate: total edits / total reference units over
  all utterances (a micro-average), not the mean of the per-utterance rates.

Decoding: ``language="en"``, beam search (beam 5), no VAD, no conditioning on previous
text, and temperature 0 only. faster-whisper's default temperature fallback re-decodes
hard segments by random sampling, which made transcripts of the same noisy input differ
from run to run (seeding CTranslate2 did not help); a benchmark needs repeatable numbers.
Instead, when a transcript is a repetition loop by Whisper's own criterion (gzip
compression ratio above 2.4), the audio is decoded again, still deterministically, with
repeated trigrams forbidden. Without this guard one looping utterance ("8, 8, 8, ...")
adds a hundred insertions and dominates the corpus WER.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from urgentbench.metrics._threads import resolve_threads
from urgentbench.metrics.base import Metric, MetricError, Output
from urgentbench.requirements import PackageRequirement, pip

logger = logging.getLogger(__name__)

_SR = 16000
#: Whisper's threshold for a "too repetitive" transcript (gzip compression ratio).
COMPRESSION_RATIO_THRESHOLD = 2.4


def compression_ratio(text: str) -> float:
    """Length of ``text`` in UTF-8 bytes divided by its zlib-compressed length (Whisper's measure)."""
    import zlib

    data = text.encode("utf-8")
    if not data:
        return 0.0
    return len(data) / len(zlib.compress(data))
_WHISPER_INSTALL = (
    "pip install --no-deps openai-whisper==20250625 && pip install tiktoken more-itertools regex numba"
)

#: Per-output names of the stored (edits, reference length) counts.
_COUNTS = {"wer": ("wer_edits", "wer_ref_words"), "cer": ("cer_edits", "cer_ref_chars")}


def edit_distance(reference: Sequence[Any], hypothesis: Sequence[Any]) -> int:
    """Levenshtein distance: the fewest substitutions, deletions and insertions turning one into the other.

    Args:
        reference: Reference tokens (words, or characters of a string).
        hypothesis: Hypothesis tokens.
    """
    if len(reference) < len(hypothesis):
        reference, hypothesis = hypothesis, reference  # the distance is symmetric; keep rows short
    if not hypothesis:
        return len(reference)
    previous = list(range(len(hypothesis) + 1))
    for i, ref_token in enumerate(reference, start=1):
        current = [i]
        for j, hyp_token in enumerate(hypothesis, start=1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_token != hyp_token),  # substitution or match
                )
            )
        previous = current
    return previous[-1]


def error_counts(reference: str, hypothesis: str) -> dict[str, int]:
    """Word and character edit counts of two already-normalised strings.

    Words are whitespace-separated tokens; characters are those of the words joined by
    single spaces (spaces count, leading and trailing blanks do not).

    Returns:
        ``wer_edits``, ``wer_ref_words``, ``cer_edits`` and ``cer_ref_chars``.
    """
    ref_words, hyp_words = reference.split(), hypothesis.split()
    ref_chars, hyp_chars = " ".join(ref_words), " ".join(hyp_words)
    return {
        "wer_edits": edit_distance(ref_words, hyp_words),
        "wer_ref_words": len(ref_words),
        "cer_edits": edit_distance(ref_chars, hyp_chars),
        "cer_ref_chars": len(ref_chars),
    }


class WhisperErrorRate(Metric):
    """WER and CER of Whisper base transcripts of the enhanced speech against the reference transcript.

    Options:
        model: Asset name (default ``"whisper-base-ct2"``) or a local CTranslate2 model folder.
        beam_size: Beam width (URGENT's leaderboard uses 5).
        compute_type: CTranslate2 compute type (``"int8"``, ``"float32"``...).
        cpu_threads: CTranslate2 threads; None uses ``$URGENTBENCH_THREADS`` (set by the
            runner) or the library default.
    """

    name: ClassVar[str] = "wer"
    aliases: ClassVar[tuple[str, ...]] = ("cer", "asr")
    description: ClassVar[str] = (
        "WER/CER of Whisper base (faster-whisper) transcripts, corpus level (OWSM substitute)"
    )
    category: ClassVar[str] = "downstream"
    needs_reference: ClassVar[bool] = False
    needs_transcript: ClassVar[bool] = True
    sample_rate: ClassVar[int | None] = _SR
    version: ClassVar[str] = "2"
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("wer", False, "Word error rate of Whisper base, corpus level (1 - WAcc)", aggregate="corpus"),
        Output(
            "cer", False, "Character error rate of Whisper base, corpus level (1 - CAcc)", aggregate="corpus"
        ),
    )
    distributions: ClassVar[tuple[str, ...]] = ("faster-whisper", "ctranslate2", "openai-whisper")
    packages: ClassVar[tuple[PackageRequirement, ...]] = (
        PackageRequirement("faster_whisper", pip("faster-whisper==1.2.1")),
        PackageRequirement("ctranslate2", pip("ctranslate2")),
        PackageRequirement("whisper", _WHISPER_INSTALL),
    )
    reference_implementation: ClassVar[str] = (
        "substitute for URGENT's calculate_wer.py (OWSM v3.1, whisper_en normaliser, corpus-level WER/CER)"
    )

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._model: Any = None
        self._normalizer: Any = None
        self._model_dir: Path | None = None
        self._model_info: dict[str, Any] = {}
        self._threads = 0

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``model``, ``beam_size``, ``compute_type`` and ``cpu_threads`` (see the class docstring)."""
        return {"model": "whisper-base-ct2", "beam_size": 5, "compute_type": "int8", "cpu_threads": None}

    @classmethod
    def assets(cls) -> Sequence[Any]:
        """The default Whisper base model asset."""
        from urgentbench.assets import get_asset

        return (get_asset(cls.default_options()["model"]),)

    def _resolve_model(self) -> Path:
        from urgentbench.assets import ASSETS, get_asset

        model = str(self.options["model"])
        folder = Path(model).expanduser()
        if model not in ASSETS and (folder / "model.bin").is_file():
            self._model_info = {"path": str(folder.resolve())}
            return folder
        asset = get_asset(model)  # an unknown name raises UnknownNameError with suggestions
        self._model_info = {"asset": asset.name, "sha256": asset.sha256}
        return asset.path()

    def setup(self) -> None:
        """Verify (or assemble) the model asset and load the model and the text normaliser once.

        Raises:
            AssetError: When the model asset is missing (the message holds the fix command).
            UnknownNameError: When ``model`` is neither an asset name nor a model folder.
        """
        beam = self.options["beam_size"]
        if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
            raise ValueError(f"beam_size must be a positive integer, got {beam!r}")
        self._model_dir = self._resolve_model()
        self._threads = resolve_threads(self.options["cpu_threads"])
        os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the hub; the model is a local folder
        from faster_whisper import WhisperModel
        from whisper.normalizers import EnglishTextNormalizer

        self._model = WhisperModel(
            str(self._model_dir),
            device="cpu",
            compute_type=self.options["compute_type"],
            cpu_threads=self._threads,
            local_files_only=True,
        )
        self._normalizer = EnglishTextNormalizer()
        logger.debug("Whisper loaded from %s (%s threads)", self._model_dir, self._threads or "default")

    def provenance(self) -> dict[str, Any]:
        """Version, options, model identity and library versions."""
        prov = super().provenance()
        info = dict(self._model_info)
        if not info:
            from urgentbench.assets import ASSETS, get_asset

            model = str(self.options["model"])
            info = {"asset": model, "sha256": get_asset(model).sha256} if model in ASSETS else {"path": model}
        prov["model"] = info
        prov["threads"] = self._threads or "default"
        prov["decoding"] = {
            "language": "en",
            "temperature": 0.0,
            "vad_filter": False,
            "repetition_guard": {"compression_ratio_threshold": COMPRESSION_RATIO_THRESHOLD, "no_repeat_ngram_size": 3},
        }
        return prov

    def normalize(self, text: str) -> str:
        """Whisper's English normalisation, with whitespace collapsed and stripped."""
        if self._normalizer is None:
            from whisper.normalizers import EnglishTextNormalizer

            self._normalizer = EnglishTextNormalizer()
        return " ".join(self._normalizer(text).split())

    def transcribe(self, waveform: np.ndarray) -> str:
        """Raw Whisper transcript of a 16 kHz waveform."""
        if self._model is None:
            self.setup()
        audio = np.ascontiguousarray(waveform, dtype=np.float32)
        text = self._decode(audio)
        if compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD:
            # A repetition loop (Whisper's own hallucination criterion): decode again,
            # deterministically, forbidding repeated trigrams.
            logger.debug("repetition loop in %r; decoding again without repeated trigrams", text[:60])
            text = self._decode(audio, no_repeat_ngram_size=3)
        return text

    def _decode(self, audio: np.ndarray, **extra: Any) -> str:
        segments, _ = self._model.transcribe(
            audio,
            language="en",
            beam_size=self.options["beam_size"],
            temperature=0.0,
            vad_filter=False,
            condition_on_previous_text=False,
            **extra,
        )
        return "".join(segment.text for segment in segments).strip()

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Transcribe the enhanced speech and count errors against ``transcript``.

        Returns:
            ``wer`` and ``cer`` (this utterance's rates), ``hypothesis`` (raw transcript)
            and the counts ``wer_edits``, ``wer_ref_words``, ``cer_edits``, ``cer_ref_chars``
            used by :meth:`aggregate`.

        Raises:
            MetricError: For a wrong rate, or a missing or (after normalisation) empty
                reference transcript.
        """
        if sample_rate != _SR:
            raise MetricError(f"Whisper needs {_SR} Hz audio, got {sample_rate} Hz")
        if transcript is None or not transcript.strip():
            raise MetricError("no reference transcript for this utterance (WER/CER undefined)")
        reference_text = self.normalize(transcript)
        if not reference_text:
            raise MetricError(f"reference transcript {transcript!r} is empty after normalisation")
        x = np.asarray(estimate, dtype=np.float32)
        if x.ndim != 1 or x.size == 0:
            raise MetricError(f"Whisper needs a non-empty mono waveform, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise MetricError("audio contains NaN or Inf samples")
        hypothesis = self.transcribe(x)
        counts = error_counts(reference_text, self.normalize(hypothesis))
        return {
            "wer": counts["wer_edits"] / counts["wer_ref_words"],
            "cer": counts["cer_edits"] / counts["cer_ref_chars"],
            "hypothesis": hypothesis,
            **counts,
        }

    @classmethod
    def aggregate(cls, output: str, rows: list[dict[str, Any]]) -> float | None:
        """Corpus-level rate: total edits / total reference units (URGENT's micro-average).

        Rows whose value of ``output`` is None (failed utterances) are ignored.

        Returns:
            The rate, or None when no row has a value.
        """
        if output not in _COUNTS:
            return super().aggregate(output, rows)
        edits_key, length_key = _COUNTS[output]
        edits = length = 0
        for row in rows:
            if row.get(output) is None or row.get(edits_key) is None or row.get(length_key) is None:
                continue
            edits += int(row[edits_key])
            length += int(row[length_key])
        if length == 0:
            return None
        return edits / length
