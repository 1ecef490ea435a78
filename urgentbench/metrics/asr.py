"""Word and character error rate of Whisper transcripts of the enhanced speech.

URGENT transcribes with OWSM v3.1 (ESPnet), whose weights are only on the Hugging Face
Hub. This offline substitute decodes with OpenAI Whisper, base by default, so the numbers
are not comparable with URGENT leaderboards, only between systems scored here.

Two backends (option ``backend``; the model size is ``model_size``):

- ``faster-whisper`` (default): CTranslate2, int8; Whisper base is the ``whisper-base-ct2``
  asset, assembled offline from two packages on the package index. Batches of utterances
  are decoded together (:meth:`WhisperErrorRate.compute_batch`) with transcripts identical
  to one-at-a-time decoding.
- ``openai-whisper``: OpenAI's reference PyTorch code (float32); the checkpoints are the
  ``openai-whisper-<size>`` assets, downloaded from OpenAI's URLs and checked against the
  sha256 in those URLs (``urgentbench assets fetch openai-whisper-base``).

Both use the same normaliser, aggregation and decoding settings (as far as each library
allows); the two backends' transcripts need not be identical.

What follows URGENT:

- reference transcript and hypothesis are normalised with Whisper's English text
  normaliser (``EnglishTextNormalizer``, ESPnet's ``TextCleaner("whisper_en")``). This is
  not URGENT 2025's choice: its ``calculate_wer.py`` (and URGENT 2026's) cleans both with
  ``TextCleaner("whisper_basic")``, Whisper's ``BasicTextNormalizer`` (no spelling
  standardisation, numbers left as written), which changes WER and CER;
- per utterance the edit distance (substitutions + deletions + insertions, counted by
  ``jiwer`` on tokens split as :func:`~urgentbench.metrics.asr_counts.error_counts` splits
  them) and the reference length are stored, words for WER and characters of the
  normalised string (spaces included) for CER;
- the system value is the corpus-level rate: total edits / total reference units over
  all utterances (a micro-average), not the mean of the per-utterance rates.

Multilingual suites (URGENT 2025's ``utt2lang``): an utterance whose transcript carries a
language (:class:`urgentbench.manifest.Transcript`, set from the manifest's ``language``) is
decoded in that language and normalised as URGENT 2025 does (English normaliser for English
WER, Whisper's basic normaliser for CER and for WER of other languages; see
:mod:`urgentbench.metrics.asr_language`). A reference written ``<not-available>`` is skipped,
as the official scripts skip it. Utterances without a language keep the English behaviour
described here.

Decoding (both backends): ``language="en"`` (or the utterance's language), beam search (beam 5), no VAD, no conditioning on previous
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from urgentbench.metrics.asr_counts import (
    COMPRESSION_RATIO_THRESHOLD,
    NormalisedPair,
    compression_ratio,
    error_counts,  # noqa: F401 (re-exported: callers import it from here)
)
from urgentbench.metrics.asr_language import NOT_AVAILABLE, urgent_texts, whisper_language
from urgentbench.metrics.base import BatchItem, MetricError, Output, length_buckets
from urgentbench.metrics.model import ModelMetric
from urgentbench.requirements import Availability, PackageRequirement, check_requirements, pip
from urgentbench.validation import require_int

logger = logging.getLogger(__name__)

_SR = 16000
_WHISPER_INSTALL = (
    "pip install openai-whisper==20250625"
)

#: Per-output names of the stored (edits, reference length) counts.
_COUNTS = {"wer": ("wer_edits", "wer_ref_words"), "cer": ("cer_edits", "cer_ref_chars")}


def _looks_like_path(name: str) -> bool:
    """Whether a ``model`` value names a local file or folder rather than an asset."""
    return "/" in name or name.startswith((".", "~")) or name.endswith(".pt") or Path(name).expanduser().exists()


#: Whisper backends (``backend`` option).
BACKENDS = ("faster-whisper", "openai-whisper")
#: openai-whisper model sizes with a pinned checkpoint asset (``openai-whisper-<size>``).
OPENAI_SIZES = (
    "tiny.en", "tiny", "base.en", "base", "small.en", "small", "medium.en", "medium",
    "large-v1", "large-v2", "large-v3", "large", "large-v3-turbo", "turbo",
)
_TORCH_INSTALL = "pip install torch==2.13.0"


@dataclass(frozen=True)
class _Reference:
    """A normalised reference: the strings WER and CER compare, and the language (None: English-only path)."""

    wer_text: str
    cer_text: str
    language: str | None
    whisper_code: str | None


class WhisperErrorRate(ModelMetric):
    """WER and CER of Whisper transcripts of the enhanced speech against the reference transcript.

    Options:
        backend: ``"faster-whisper"`` (CTranslate2, the default) or ``"openai-whisper"``
            (OpenAI's PyTorch reference implementation).
        model_size: Whisper size (default ``"base"``). faster-whisper has a pinned asset for
            ``base`` only (``whisper-base-ct2``); openai-whisper has one per official size
            (``openai-whisper-<size>``, see ``urgentbench assets ls``).
        model: None (the asset of ``backend`` and ``model_size``), another asset name, or a
            local model: a CTranslate2 folder (faster-whisper) or an OpenAI ``.pt``
            checkpoint (openai-whisper).
        beam_size: Beam width (URGENT's leaderboard uses 5).
        compute_type: CTranslate2 compute type (``"int8"``, ``"float32"``...); faster-whisper only.
        cpu_threads: Inference threads; None uses ``$URGENTBENCH_THREADS`` (set by the
            runner) or the library default.
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"``: CTranslate2's CUDA device
            (faster-whisper; its CUDA build must see the GPU) or torch's (openai-whisper).
    """

    name: ClassVar[str] = "wer"
    aliases: ClassVar[tuple[str, ...]] = ("cer", "asr")
    description: ClassVar[str] = (
        "WER/CER of Whisper (base, faster-whisper by default) transcripts, corpus level (OWSM substitute)"
    )
    category: ClassVar[str] = "downstream"
    needs_reference: ClassVar[bool] = False
    needs_transcript: ClassVar[bool] = True
    sample_rate: ClassVar[int | None] = _SR
    version: ClassVar[str] = "2"
    batch_size: ClassVar[int] = 8
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("wer", False, "Word error rate of Whisper, corpus level (1 - WAcc)", aggregate="corpus"),
        Output("cer", False, "Character error rate of Whisper, corpus level (1 - CAcc)", aggregate="corpus"),
    )
    distributions: ClassVar[tuple[str, ...]] = ("faster-whisper", "ctranslate2", "openai-whisper", "torch", "jiwer")
    packages: ClassVar[tuple[PackageRequirement, ...]] = (
        PackageRequirement("faster_whisper", pip("faster-whisper==1.2.1")),
        PackageRequirement("ctranslate2", pip("ctranslate2")),
        PackageRequirement("whisper", _WHISPER_INSTALL),
        PackageRequirement("jiwer", pip("jiwer>=4")),
    )
    reference_implementation: ClassVar[str] = (
        "substitute for URGENT's calculate_wer.py (OWSM v3.1; TextCleaner('whisper_basic') in URGENT 2025, "
        "where this metric uses Whisper's English normaliser; corpus-level WER/CER)"
    )
    threads_option: ClassVar[str] = "cpu_threads"

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._backend: Any = None
        self._normalizer: Any = None
        self._model_info: dict[str, Any] = {}

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``backend``, ``model_size``, ``model``, ``beam_size``, ``compute_type``, ``cpu_threads``, ``device`` (see the class)."""
        return {
            "backend": "faster-whisper",
            "model_size": "base",
            "model": None,
            "beam_size": 5,
            "compute_type": "int8",
            "cpu_threads": None,
            "device": "cpu",
        }

    @classmethod
    def assets_for(cls, options: dict[str, Any]) -> Sequence[Any]:
        """The model asset these options load (none for a local model path).

        Raises:
            ValueError: For an unknown backend, or a size without a pinned asset.
            UnknownNameError: For an unknown asset name.
        """
        from urgentbench.assets import ASSETS, get_asset

        name = cls.model_name({**cls.default_options(), **options})
        if name in ASSETS or not _looks_like_path(name):
            return (get_asset(name),)
        return ()

    @classmethod
    def availability(cls, options: dict[str, Any] | None = None) -> Availability:
        """Whether the packages of the chosen backend and its model asset are present.

        Args:
            options: The metric's options (default: the default options).
        """
        full = {**cls.default_options(), **(options or {})}
        try:
            assets = list(cls.assets_for(full))
        except (ValueError, KeyError) as exc:
            return Availability([str(exc).splitlines()[0]])
        if full["backend"] == "openai-whisper":
            packages = [
                PackageRequirement("whisper", _WHISPER_INSTALL),
                PackageRequirement("torch", _TORCH_INSTALL),
                PackageRequirement("tiktoken", pip("tiktoken")),
                PackageRequirement("jiwer", pip("jiwer>=4")),
            ]
        else:
            packages = list(cls.packages)
        return check_requirements(packages, assets)

    @classmethod
    def model_name(cls, options: dict[str, Any]) -> str:
        """The asset name (or local path) that complete ``options`` load.

        Raises:
            ValueError: For an unknown backend, or a faster-whisper size without a pinned asset.
        """
        backend, size, model = options["backend"], str(options["model_size"]), options["model"]
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
        if model:
            return str(model)
        if backend == "openai-whisper":
            if size not in OPENAI_SIZES:
                raise ValueError(f"openai-whisper has no model size {size!r}; sizes: {', '.join(OPENAI_SIZES)}")
            return f"openai-whisper-{size}"
        if size != "base":
            raise ValueError(
                f"no pinned CTranslate2 model of Whisper {size!r} for faster-whisper (only 'base'); "
                f"use backend=openai-whisper, or model=FOLDER with a CTranslate2 conversion"
            )
        return "whisper-base-ct2"

    def _resolve_model(self) -> Path:
        """The model folder (faster-whisper) or checkpoint file (openai-whisper), verified when an asset."""
        from urgentbench.assets import ASSETS, get_asset

        backend = self.options["backend"]
        name = self.model_name(self.options)
        local = Path(name).expanduser()
        if name not in ASSETS and _looks_like_path(name):
            if backend == "faster-whisper" and (local / "model.bin").is_file():
                self._model_info = {"path": str(local.resolve())}
                return local
            if backend == "openai-whisper" and local.is_file():
                from urgentbench.hashing import sha256_file

                self._model_info = {"path": str(local.resolve()), "sha256": sha256_file(local)}
                return local
            expected = "a CTranslate2 folder with model.bin" if backend == "faster-whisper" else "a .pt checkpoint"
            raise ValueError(f"{local}: not {expected} for the {backend} backend")
        asset = get_asset(name)  # an unknown name raises UnknownNameError with suggestions
        folder = asset.path()  # AssetError with the fix commands when missing or corrupt
        self._model_info = {"asset": asset.name, "sha256": asset.sha256}
        if backend == "openai-whisper":
            checkpoints = [f.name for f in asset.files if f.name.endswith(".pt")]
            if len(checkpoints) != 1:
                raise ValueError(f"asset {asset.name!r} is not an openai-whisper checkpoint (one .pt file)")
            return folder / checkpoints[0]
        return folder

    def setup(self) -> None:
        """Verify the model asset and load the chosen backend and the text normaliser once.

        Raises:
            AssetError: When the model asset is missing (the message holds the fix commands).
            UnknownNameError: When ``model`` is neither an asset name nor a local model.
            ValueError: For invalid options or a model file of the wrong kind.
        """
        beam = self.options["beam_size"]
        require_int(beam, "beam_size")
        model_path = self._resolve_model()
        self.use_threads(torch=False)
        from whisper.normalizers import EnglishTextNormalizer

        from urgentbench.metrics.whisper_backends import FasterWhisperBackend, OpenAIWhisperBackend

        if self.options["backend"] == "openai-whisper":
            import whisper

            official = model_path.name[: -len(".pt")] if "asset" in self._model_info else None
            heads = whisper._ALIGNMENT_HEADS.get(official) if official else None
            self._backend = OpenAIWhisperBackend(model_path, self._threads, heads, device=self.use_device())
        else:
            import ctranslate2

            device = self.use_device(cuda_devices=_ct2_cuda_devices(ctranslate2, self.options["device"]))
            os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the hub; the model is a local folder
            self._backend = FasterWhisperBackend(model_path, self.options["compute_type"], self._threads, device)
        self._normalizer = EnglishTextNormalizer()
        logger.debug(
            "Whisper (%s) loaded from %s on %s (%s threads)",
            self.options["backend"],
            model_path,
            self._device,
            self._threads or "default",
        )

    def model_provenance(self) -> dict[str, Any]:
        """The asset (name and sha256) or local path loaded, as resolved at set-up (before it: these options')."""
        info = dict(self._model_info)
        if not info:
            from urgentbench.assets import ASSETS, get_asset

            model = self.model_name(self.options)
            info = {"asset": model, "sha256": get_asset(model).sha256} if model in ASSETS else {"path": model}
        return info

    def provenance(self) -> dict[str, Any]:
        """Version, options, backend, model identity, threads, decoding settings and library versions."""
        prov = super().provenance()
        prov["backend"] = self.options["backend"]
        prov["decoding"] = {
            "language": "en",
            "beam_size": self.options["beam_size"],
            "temperature": 0.0,
            "vad_filter": False,
            "condition_on_previous_text": False,
            "no_speech_threshold": 0.6,
            "logprob_threshold": -1.0,
            "repetition_guard": {"compression_ratio_threshold": COMPRESSION_RATIO_THRESHOLD, "no_repeat_ngram_size": 3},
        }
        if self.options["backend"] == "faster-whisper":
            prov["decoding"]["compute_type"] = self.options["compute_type"]
        return prov

    def normalize(self, text: str) -> str:
        """Whisper's English normalisation, with whitespace collapsed and stripped."""
        if self._normalizer is None:
            from whisper.normalizers import EnglishTextNormalizer

            self._normalizer = EnglishTextNormalizer()
        return " ".join(self._normalizer(text).split())

    def normalise_texts(self, text: str, language: str | None = None) -> tuple[str, str]:
        """The strings this metric compares for WER and for CER, for one side (reference or hypothesis).

        Args:
            text: A raw transcript.
            language: The utterance's language (any form
                :func:`~urgentbench.metrics.asr_language.whisper_language` accepts), or None.

        Returns:
            ``(wer_text, cer_text)``: without a language, Whisper's English normalisation for
            both; with one, URGENT 2025's (:func:`~urgentbench.metrics.asr_language.urgent_texts`:
            English normaliser for English WER, basic normaliser for CER and other languages).
        """
        if language:
            return urgent_texts(text, language)
        english = self.normalize(text)
        return english, english

    def normalise_pair(self, reference: str, hypothesis: str, language: str | None = None) -> NormalisedPair:
        """The normalised strings of one utterance that WER and CER compare (see :meth:`normalise_texts`).

        Args:
            reference: The raw reference transcript.
            hypothesis: The raw transcript of the enhanced speech.
            language: The utterance's language, or None (English-only behaviour).
        """
        wer_reference, cer_reference = self.normalise_texts(reference, language)
        wer_hypothesis, cer_hypothesis = self.normalise_texts(hypothesis, language)
        return NormalisedPair(wer_reference, wer_hypothesis, cer_reference, cer_hypothesis)

    def transcribe(self, waveform: np.ndarray) -> str:
        """Raw Whisper transcript of a 16 kHz waveform (with the repetition-loop guard)."""
        text = self.transcribe_many([waveform])[0]
        if isinstance(text, Exception):
            raise text
        return text

    def transcribe_many(
        self, waveforms: Sequence[np.ndarray], languages: Sequence[str | None] | None = None
    ) -> list[str | Exception]:
        """Raw transcripts of several 16 kHz waveforms, decoded as one batch where the backend can.

        A transcript that is a repetition loop by Whisper's own criterion (gzip compression
        ratio above 2.4) is decoded again, deterministically, with repeated trigrams forbidden.

        Args:
            waveforms: 16 kHz mono waveforms.
            languages: Whisper's language code of each waveform (None entries, or no list:
                English).

        Returns:
            One transcript per waveform, or the exception its decoding raised.
        """
        if self._backend is None:
            self.setup()
        audios = [np.ascontiguousarray(w, dtype=np.float32) for w in waveforms]
        beam = self.options["beam_size"]
        langs = [lang or "en" for lang in languages] if languages is not None else None
        if langs is not None and all(lang == "en" for lang in langs):
            langs = None  # the English-only call, as before languages existed
        extra: dict[str, Any] = {} if langs is None else {"languages": langs}
        texts = self._backend.transcribe_batch(audios, beam, **extra)
        loops = [
            i for i, t in enumerate(texts) if isinstance(t, str) and compression_ratio(t) > COMPRESSION_RATIO_THRESHOLD
        ]
        if loops:
            logger.debug("repetition loop in %d transcript(s); decoding again without repeated trigrams", len(loops))
            again_extra: dict[str, Any] = {} if langs is None else {"languages": [langs[i] for i in loops]}
            again = self._backend.transcribe_batch([audios[i] for i in loops], beam, no_repeat_ngram_size=3, **again_extra)
            for i, text in zip(loops, again):
                texts[i] = text
        return texts

    def _check(self, estimate: np.ndarray, sample_rate: int, transcript: str | None) -> tuple[np.ndarray, _Reference]:
        """The waveform as float32 and the normalised reference, or MetricError."""
        if sample_rate != _SR:
            raise MetricError(f"Whisper needs {_SR} Hz audio, got {sample_rate} Hz")
        if transcript is None or not transcript.strip():
            raise MetricError("no reference transcript for this utterance (WER/CER undefined)")
        if transcript.strip() == NOT_AVAILABLE:
            raise MetricError(f"reference transcript is {NOT_AVAILABLE} (skipped, as URGENT's calculate_wer.py does)")
        language = getattr(transcript, "language", None) or None
        code = None
        if language:
            try:
                code = whisper_language(language)
            except ValueError as exc:
                raise MetricError(str(exc)) from None
        wer_text, cer_text = self.normalise_texts(transcript, language)
        reference_text = _Reference(wer_text, cer_text, language, code)
        if not reference_text.wer_text or not reference_text.cer_text:
            raise MetricError(f"reference transcript {transcript!r} is empty after normalisation")
        x = np.asarray(estimate, dtype=np.float32)
        if x.ndim != 1 or x.size == 0:
            raise MetricError(f"Whisper needs a non-empty mono waveform, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise MetricError("audio contains NaN or Inf samples")
        return x, reference_text

    def _result(self, reference: _Reference, hypothesis: str) -> dict[str, Any]:
        hyp_wer, hyp_cer = self.normalise_texts(hypothesis, reference.language)
        counts = NormalisedPair(reference.wer_text, hyp_wer, reference.cer_text, hyp_cer).counts()
        return {
            "wer": counts["wer_edits"] / counts["wer_ref_words"],
            "cer": counts["cer_edits"] / counts["cer_ref_chars"],
            "hypothesis": hypothesis,
            **counts,
        }

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
        x, reference = self._check(estimate, sample_rate, transcript)
        text = self.transcribe_many([x], [reference.whisper_code])[0]
        if isinstance(text, Exception):
            raise text
        return self._result(reference, text)

    def compute_batch(self, items: Sequence[BatchItem]) -> list[dict[str, Any] | Exception]:
        """Score several utterances, decoding length-bucketed batches of :attr:`batch_size` at once.

        With faster-whisper the transcripts are identical to one-at-a-time decoding (see
        :mod:`urgentbench.metrics.whisper_backends`); openai-whisper decodes one at a time.

        Returns:
            One entry per item: the output of :meth:`compute`, or the exception it raises.
        """
        out: list[dict[str, Any] | Exception | None] = [None] * len(items)
        ready: list[tuple[int, np.ndarray, _Reference]] = []
        for i, item in enumerate(items):
            try:
                x, reference_text = self._check(item.estimate, item.sample_rate, item.transcript)
            except MetricError as exc:
                out[i] = exc
                continue
            ready.append((i, x, reference_text))
        for bucket in length_buckets([len(x) for _, x, _ in ready], self.batch_size):
            texts = self.transcribe_many([ready[k][1] for k in bucket], [ready[k][2].whisper_code for k in bucket])
            for k, text in zip(bucket, texts):
                i, _, reference_text = ready[k]
                out[i] = text if isinstance(text, Exception) else self._result(reference_text, text)
        return out  # type: ignore[return-value]

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


def _ct2_cuda_devices(ctranslate2: Any, device: Any) -> int:
    """CUDA devices CTranslate2 sees (0 without its CUDA build); not asked for a CPU ``device``."""
    if str(device).strip().lower() == "cpu":
        return 0
    try:
        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # a CPU-only build without CUDA support
        return 0
