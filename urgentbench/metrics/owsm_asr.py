"""WER and CER of OWSM v3.1 transcripts, as URGENT's ``calculate_wer.py`` computes them.

URGENT 2024-2026 transcribe the enhanced speech with ESPnet's ``Speech2Text`` on
``espnet/owsm_v3.1_ebf`` (asset ``owsm-v3.1-ebf``, run by ESPnet's own code from the
pinned release, see :mod:`urgentbench.metrics.espnet_runtime`). What follows the official
``owsm_utils.owsm_predict`` and ``levenshtein_metric``, option by option:

- decoding: language symbol ``<xxx>`` from the utterance's language (ISO 639-2/3; the
  ``language`` option for utterances without one, ``eng`` by default, URGENT 2024's
  English-only setting), task ``<asr>``, no timestamps, beam 5, ``text_prev=""``, CTC
  weight 0 (``Speech2Text.from_pretrained`` is given none, so ESPnet's default applies);
- up to 30 s: ``maxlenratio = -min(300, int(10 * duration_s))`` and the input padded or
  trimmed to 30 s; longer: ``decode_long`` (``maxlenratio = -300``, chunks of 30 s, no
  conditioning on previous text, end threshold ``<29.00>``), and on any exception the
  first 30 s decoded as above;
- both texts cleaned with Whisper's normaliser, as ESPnet's ``TextCleaner`` applies it:
  ``whisper_basic`` (URGENT 2025/2026, the default) or ``whisper_en`` (URGENT 2024);
- edits counted by Levenshtein opcodes (rapidfuzz, the library URGENT's ``Levenshtein``
  wraps) on the words (``str.split()``) and on every character of the cleaned string,
  spaces included, nothing stripped;
- the system value is the corpus rate (total edits / total reference units).

References written ``<not-available>`` are skipped (a missing value with that reason),
as URGENT skips them. A reference that is empty after cleaning is a missing value too
(URGENT would add its insertions to the corpus sums).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from urgentbench.metrics.asr_language import NOT_AVAILABLE
from urgentbench.metrics.base import MetricError, Output
from urgentbench.metrics.espnet_runtime import ESPNET2_PACKAGE, ESPNET_CODE, PACKAGES
from urgentbench.metrics.model import ModelMetric, mono_audio
from urgentbench.metrics.owsm_models import (
    MAX_TOKENS,
    SAMPLE_RATE,
    fit_30s,
    is_long_form,
    long_form_text,
    max_len_ratio,
    owsm_language,
)
from urgentbench.requirements import PackageRequirement, pip
from urgentbench.validation import require_int

logger = logging.getLogger(__name__)

#: The Whisper normalisers, by ESPnet ``TextCleaner`` name.
NORMALIZERS = ("whisper_basic", "whisper_en")
#: Per-output names of the stored (edits, reference length) counts.
_COUNTS = {"wer": ("wer_edits", "wer_ref_words"), "cer": ("cer_edits", "cer_ref_chars")}


def clean_text(text: str, normalizer: str) -> str:
    """``TextCleaner(normalizer)(text)``: Whisper's basic or English normaliser, output unchanged.

    Raises:
        ValueError: For a normaliser other than ``whisper_basic`` / ``whisper_en``.
    """
    from urgentbench.metrics.asr_language import _normaliser

    if normalizer not in NORMALIZERS:
        raise ValueError(f"normalizer must be one of {', '.join(NORMALIZERS)}; got {normalizer!r}")
    return _normaliser("english" if normalizer == "whisper_en" else "basic")(text)


def edit_counts(reference: Sequence[str], hypothesis: Sequence[str]) -> dict[str, int]:
    """``delete``/``insert``/``replace``/``equal`` counts of the Levenshtein opcodes, as URGENT sums them.

    Insertions count hypothesis units; the other operations count reference units.
    """
    from rapidfuzz.distance import Levenshtein

    counts = {"delete": 0, "insert": 0, "replace": 0, "equal": 0}
    for op in Levenshtein.opcodes(list(reference), list(hypothesis)):
        if op.tag == "insert":
            counts["insert"] += op.dest_end - op.dest_start
        else:
            counts[op.tag] += op.src_end - op.src_start
    return counts


def error_counts(reference: str, hypothesis: str) -> dict[str, int]:
    """Edits and reference lengths for WER (words) and CER (characters) of two cleaned strings."""
    words = edit_counts(reference.split(), hypothesis.split())
    chars = edit_counts(reference, hypothesis)
    return {
        "wer_edits": words["replace"] + words["delete"] + words["insert"],
        "wer_ref_words": words["replace"] + words["delete"] + words["equal"],
        "cer_edits": chars["replace"] + chars["delete"] + chars["insert"],
        "cer_ref_chars": chars["replace"] + chars["delete"] + chars["equal"],
    }


class OWSMErrorRate(ModelMetric):
    """Corpus WER and CER of OWSM v3.1 transcripts of the enhanced speech (URGENT's WAcc/CAcc).

    Options:
        normalizer: ``"whisper_basic"`` (URGENT 2025/2026) or ``"whisper_en"`` (URGENT 2024).
        language: Language of utterances whose manifest gives none (ISO 639; ``"eng"``).
        beam_size: Beam width (URGENT: 5).
        ctc_weight: CTC weight of the joint beam search (URGENT: 0, ESPnet's default).
        model_dir: A local copy of an ESPnet OWSM folder (``meta.yaml``, config, model
            file, BPE model, statistics) instead of the ``owsm-v3.1-ebf`` asset.
        device: torch device (``"cpu"``, ``"cuda"``).
        threads: torch intra-op threads; None uses ``$URGENTBENCH_THREADS`` or the default.
    """

    name: ClassVar[str] = "owsm_wer"
    aliases: ClassVar[tuple[str, ...]] = ("owsm_cer", "owsm_asr")
    description: ClassVar[str] = "WER/CER of OWSM v3.1 (ESPnet, beam 5) transcripts, corpus level (URGENT's)"
    category: ClassVar[str] = "downstream"
    needs_reference: ClassVar[bool] = False
    needs_transcript: ClassVar[bool] = True
    sample_rate: ClassVar[int | None] = SAMPLE_RATE
    asset: ClassVar[str | None] = "owsm-v3.1-ebf"
    #: Its ``device`` option predates the options-hash rule: ``device="cpu"`` stays hashed.
    hash_cpu_device: ClassVar[bool] = True
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("wer", False, "Word error rate of OWSM v3.1, corpus level (1 - WAcc)", aggregate="corpus"),
        Output("cer", False, "Character error rate of OWSM v3.1, corpus level (1 - CAcc)", aggregate="corpus"),
    )
    distributions: ClassVar[tuple[str, ...]] = ("torch", "sentencepiece", "openai-whisper", "rapidfuzz")
    packages: ClassVar[tuple[Any, ...]] = (
        *PACKAGES,
        PackageRequirement("whisper", pip("openai-whisper==20250625")),
        PackageRequirement("rapidfuzz", pip("rapidfuzz>=3")),
    )
    reference_implementation: ClassVar[str] = "URGENT calculate_wer.py + owsm_utils.py (ESPnet Speech2Text)"

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._model: Any = None
        self._symbols: set[str] = set()

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``normalizer``, ``language``, ``beam_size``, ``ctc_weight``, ``model_dir``, ``device``, ``threads``."""
        return {
            "normalizer": "whisper_basic",
            "language": "eng",
            "beam_size": 5,
            "ctc_weight": 0.0,
            "model_dir": None,
            "device": "cpu",
            "threads": None,
        }

    @classmethod
    def assets_for(cls, options: dict[str, Any]) -> Sequence[Any]:
        """The model asset (none for ``model_dir``) and ESPnet's release file."""
        return (*super().assets_for(options), ESPNET_CODE)

    def setup(self) -> None:
        """Check the options, load ESPnet's ``Speech2Text`` on the model folder.

        Raises:
            AssetError: When the model asset or ESPnet's release file is missing (with the fix command).
            ValueError: For invalid options or an unusable model folder.
        """
        from urgentbench.metrics.owsm_models import load_model

        require_int(self.options["beam_size"], "beam_size", minimum=1)
        clean_text("", self.options["normalizer"])
        owsm_language(self.options["language"])
        self.use_threads()
        self.use_device()
        folder = self.options["model_dir"] or self.asset_folder()
        self._model = load_model(
            "s2t",
            folder,
            self._device,
            beam_size=int(self.options["beam_size"]),
            ctc_weight=float(self.options["ctc_weight"]),
            predict_time=False,
            task_sym="<asr>",
        )
        self._symbols = set(self._model.s2t_model.token_list)

    def provenance(self) -> dict[str, Any]:
        """Base provenance plus the decoding settings and ESPnet's release."""
        prov = super().provenance()
        prov["decoding"] = {
            "task_sym": "<asr>",
            "beam_size": self.options["beam_size"],
            "ctc_weight": self.options["ctc_weight"],
            "predict_time": False,
            "maxlenratio": f"-min({MAX_TOKENS}, int(10 * duration_s)); -{MAX_TOKENS} for decode_long over 30 s",
            "normalizer": self.options["normalizer"],
        }
        prov["code"] = ESPNET2_PACKAGE.provenance()  # the pinned ESPnet release file (asset, file, sha256)
        return prov

    def lang_symbol(self, transcript: str | None) -> str:
        """``<xxx>`` for the utterance's language (the ``language`` option when it has none).

        Raises:
            MetricError: For a code OWSM cannot name, or one without a symbol in the model.
        """
        language = getattr(transcript, "language", None) or self.options["language"]
        try:
            symbol = f"<{owsm_language(language)}>"
        except ValueError as exc:
            raise MetricError(str(exc)) from None
        if self._symbols and symbol not in self._symbols:
            raise MetricError(f"language {language!r}: the model has no symbol {symbol}")
        return symbol

    def transcribe(self, waveform: np.ndarray, lang_sym: str) -> tuple[str, str]:
        """URGENT's ``owsm_predict``: the raw transcript and how it was decoded (``short``, ``long``, ``fallback``)."""
        if self._model is None:
            self.setup()
        model = self._model
        model.beam_search.beam_size = int(self.options["beam_size"])
        mode = "short"
        if is_long_form(len(waveform)):
            try:
                model.maxlenratio = -MAX_TOKENS
                segments = model.decode_long(
                    waveform,
                    condition_on_prev_text=False,
                    init_text="",
                    end_time_threshold="<29.00>",
                    lang_sym=lang_sym,
                    task_sym="<asr>",
                )
                return long_form_text(segments), "long"
            except Exception as exc:  # noqa: BLE001 - URGENT falls back on any exception
                from urgentbench.errors import one_line

                logger.warning("long-form decoding failed (%s); decoding the first 30 s", one_line(exc))
                mode = "fallback"
        model.maxlenratio = max_len_ratio(len(waveform))
        nbest = model(fit_30s(waveform), "", lang_sym=lang_sym, task_sym="<asr>")
        return nbest[0][3], mode

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
            ``wer``, ``cer`` (this utterance's rates), ``hypothesis`` (raw transcript),
            ``decoding`` and the counts ``wer_edits``, ``wer_ref_words``, ``cer_edits``,
            ``cer_ref_chars`` that :meth:`aggregate` sums.

        Raises:
            MetricError: For a wrong rate, a missing, ``<not-available>`` or (after
                cleaning) empty reference, unusable audio, or a language the model lacks.
        """
        if sample_rate != SAMPLE_RATE:
            raise MetricError(f"OWSM needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        if transcript is None or not transcript.strip():
            raise MetricError("no reference transcript for this utterance (WER/CER undefined)")
        if transcript.strip() == NOT_AVAILABLE:
            raise MetricError(f"reference transcript is {NOT_AVAILABLE} (skipped, as URGENT's calculate_wer.py does)")
        normalizer = self.options["normalizer"]
        ref_text = clean_text(transcript, normalizer)
        if not ref_text.split():
            raise MetricError(f"reference transcript {str(transcript)!r} is empty after {normalizer} cleaning")
        x = mono_audio(estimate, "enhanced")
        lang_sym = self.lang_symbol(transcript)
        hypothesis, mode = self.transcribe(x, lang_sym)
        counts = error_counts(ref_text, clean_text(hypothesis, normalizer))
        return {
            "wer": counts["wer_edits"] / counts["wer_ref_words"],
            "cer": counts["cer_edits"] / counts["cer_ref_chars"],
            "hypothesis": hypothesis,
            "decoding": mode,
            **counts,
        }

    @classmethod
    def aggregate(cls, output: str, rows: list[dict[str, Any]]) -> float | None:
        """Corpus-level rate: total edits / total reference units; rows without a value are ignored."""
        if output not in _COUNTS:
            return super().aggregate(output, rows)
        edits_key, length_key = _COUNTS[output]
        valid = [r for r in rows if r.get(output) is not None and r.get(edits_key) is not None and r.get(length_key)]
        length = sum(int(r[length_key]) for r in valid)
        return sum(int(r[edits_key]) for r in valid) / length if length else None
