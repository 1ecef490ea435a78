"""URGENT challenge editions as pinned evaluation protocols.

A :class:`Protocol` fixes what a number means: which metrics are computed with which
options (model, layer, decoding settings), which outputs are ranked in which category,
which resampler and text normaliser are used, and which model checkpoints (by sha256)
produce the model-based scores. ``urgentbench run --protocol urgent2025`` computes exactly
that metric set; ``urgentbench leaderboard --protocol urgent2025`` ranks exactly those
outputs; ``urgentbench protocols show urgent2025`` prints the whole definition.

The official scripts use some models that cannot be obtained through this project
(OWSM v3.1 for ASR, SCOREQ, emotion2vec, OWSM-CTC for language identification, the
proprietary POLQA). Where urgentbench substitutes a model, or cannot compute a metric at
all, the protocol says so in :attr:`MetricRef.deviation`; such a metric is never
presented as the official one.

The facts (categories, checkpoints, layers, normalisers) follow the official evaluation
scripts of each edition, summarised in the project's research notes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from urgentbench.metrics import METRICS
from urgentbench.pipeline.specs import MetricSpec
from urgentbench.registry import Registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricRef:
    """One ranked (or reported) output of a protocol and the metric that computes it.

    Args:
        output: Output column (``"dnsmos_ovrl"``, ``"speechbertscore"``).
        metric: urgentbench metric name, or ``""`` when urgentbench cannot compute it.
        options: Metric options the protocol pins (model, layer, beam size, ...).
        official: The official implementation, in words.
        deviation: How urgentbench's number differs from the official one (empty when
            it is the same computation with the same model).
    """

    output: str
    metric: str
    options: Mapping[str, Any] = field(default_factory=dict)
    official: str = ""
    deviation: str = ""

    @property
    def computable(self) -> bool:
        """True when urgentbench has a metric for this output."""
        return bool(self.metric)


@dataclass(frozen=True)
class Protocol:
    """A pinned evaluation protocol (one URGENT edition).

    Args:
        name: Registry name (``"urgent2025"``).
        title: One line.
        categories: Category -> the outputs ranked in it (URGENT's category order).
        reported: Outputs computed and shown but not ranked (e.g. WER in 2025).
        resampler: How audio reaches each metric's working rate.
        text_normaliser: Normaliser applied to reference and hypothesis transcripts.
        decoding: ASR decoding settings.
        sources: Where the definition comes from.
        notes: Further facts that change numbers.
    """

    name: str
    title: str
    categories: Mapping[str, tuple[MetricRef, ...]]
    reported: tuple[MetricRef, ...] = ()
    resampler: str = "soxr, quality HQ (python-soxr's default), once per file and rate"
    text_normaliser: str = ""
    decoding: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    # ------------------------------------------------------------------ views
    def refs(self) -> list[MetricRef]:
        """Every output of the protocol, ranked ones first."""
        return [r for refs in self.categories.values() for r in refs] + list(self.reported)

    def ranked_outputs(self) -> dict[str, list[str]]:
        """Category -> ranked outputs that urgentbench can compute (for the leaderboard)."""
        return {c: [r.output for r in refs if r.computable] for c, refs in self.categories.items()}

    def missing(self) -> list[MetricRef]:
        """Ranked outputs that urgentbench cannot compute (their ranks are absent)."""
        return [r for refs in self.categories.values() for r in refs if not r.computable]

    def metric_specs(self) -> list[MetricSpec]:
        """The metrics to run, with the pinned options, one spec per (metric, options).

        Raises:
            ValueError: If the protocol pins one metric with two different option sets.
        """
        specs: dict[str, MetricSpec] = {}
        for ref in self.refs():
            if not ref.computable:
                continue
            spec = MetricSpec(ref.metric, tuple(sorted(dict(ref.options).items())))
            if ref.metric in specs and specs[ref.metric] != spec:
                raise ValueError(
                    f"protocol {self.name}: metric {ref.metric!r} is pinned with two option sets "
                    f"({dict(specs[ref.metric].options)} and {dict(ref.options)})"
                )
            specs[ref.metric] = spec
        return list(specs.values())

    def assets(self) -> dict[str, str]:
        """Asset name -> pinned sha256 of every model checkpoint the protocol's metrics load."""
        out: dict[str, str] = {}
        for spec in self.metric_specs():
            try:
                cls = spec.cls
            except Exception:  # an unknown metric: reported by describe()
                continue
            options = {**cls.default_options(), **dict(spec.options)}
            for asset in cls.assets_for(options):
                out[asset.name] = asset.sha256
        return out

    def describe(self) -> str:
        """The protocol in words, as ``urgentbench protocols show`` prints it."""
        lines = [f"{self.name}: {self.title}", ""]
        for category, refs in self.categories.items():
            lines.append(f"{category}:")
            for ref in refs:
                lines.extend(_ref_lines(ref, METRICS))
        if self.reported:
            lines.append("reported, not ranked:")
            for ref in self.reported:
                lines.extend(_ref_lines(ref, METRICS))
        lines += ["", f"resampler: {self.resampler}"]
        if self.text_normaliser:
            lines.append(f"text normaliser: {self.text_normaliser}")
        if self.decoding:
            lines.append("decoding: " + ", ".join(f"{k}={v}" for k, v in self.decoding.items()))
        assets = self.assets()
        if assets:
            lines.append("model checkpoints (asset sha256):")
            lines.extend(f"  {name}: {digest}" for name, digest in sorted(assets.items()))
        missing = self.missing()
        if missing:
            lines.append(
                "not computable here (ranked officially; absent from urgentbench's ranking): "
                + ", ".join(r.output for r in missing)
            )
        for note in self.notes:
            lines.append(f"note: {note}")
        for source in self.sources:
            lines.append(f"source: {source}")
        return "\n".join(lines)


def _ref_lines(ref: MetricRef, metrics: Registry) -> list[str]:
    if not ref.computable:
        return [f"  {ref.output}: NOT COMPUTED ({ref.deviation or 'no implementation'}); official: {ref.official}"]
    options = ", ".join(f"{k}={v}" for k, v in dict(ref.options).items())
    state = ""
    try:
        metric_cls = metrics.get(ref.metric)
        availability = metric_cls.availability({**metric_cls.default_options(), **dict(ref.options)})
        state = "" if availability.ok else f" [unavailable here: {availability.summary()}]"
    except Exception as exc:  # unknown metric name: show it rather than fail the listing
        state = f" [unknown metric: {exc}]"
    lines = [f"  {ref.output}: metric {ref.metric}" + (f" ({options})" if options else "") + state]
    if ref.official:
        lines.append(f"    official: {ref.official}")
    if ref.deviation:
        lines.append(f"    deviation: {ref.deviation}")
    return lines


# ----------------------------------------------------------------------------- editions

_SOURCES_2024 = (
    "https://urgent-challenge.github.io/urgent2024/rules/",
    "https://github.com/urgent-challenge/urgent2024_challenge/tree/main/evaluation_metrics",
)
_SOURCES_2025 = (
    "https://urgent-challenge.github.io/urgent2025/rules/",
    "https://github.com/urgent-challenge/urgent2025_challenge/tree/main/evaluation_metrics",
)
_SOURCES_2026 = (
    "https://urgent-challenge.github.io/urgent2026/track1/",
    "https://github.com/urgent-challenge/urgent2026_challenge_track1/tree/main/evaluation_metrics",
)


_DNSMOS = MetricRef(
    "dnsmos_ovrl",
    "dnsmos",
    {"p808": False},  # the official script runs P.808 and discards it
    official="DNSMOS P.835 sig_bak_ovr.onnx (non-personalised), 16 kHz, 9.01 s windows, OVRL only",
)
_NISQA = MetricRef("nisqa_mos", "nisqa", official="NISQA v2.0 weights/nisqa.tar, 48 kHz via NISQA's own loader")
_UTMOS = MetricRef(
    "utmos", "utmos", official="tarepan/SpeechMOS v1.2.0 utmos22_strong (utmos22_strong_step7459_v1.pt), 16 kHz"
)
_PESQ = MetricRef("pesq", "pesq", official="pesq 0.0.4, wide-band at 16 kHz (narrow-band at 8 kHz)")
_ESTOI = MetricRef("estoi", "estoi", official="pystoi extended=True, numpy seeded with 0 before each call")
_SDR = MetricRef(
    "sdr",
    "sdr",
    {"precision": "float32"},
    official=(
        "fast_bss_eval 0.1.4 bss_eval_sources(compute_permutation=False, clamp_db=50) on float32 audio, "
        "solved in float32; the call runs only under numpy 1.26, and the same float32 computation under "
        "numpy 2 (whose numbers urgentbench gives when numpy 2 is installed) differs from it by up to "
        "0.48 dB (mean 0.011 dB) on the demo suite's noisy inputs"
    ),
)
_MCD = MetricRef("mcd", "mcd", official="ESPnet-style mel-cepstral distortion (pysptk + fastdtw), native rate")
_LSD = MetricRef("lsd", "lsd", official="log-spectral distance (natural log of the power ratio), native rate")
_LPS = MetricRef(
    "lps",
    "lps",
    official="facebook/wav2vec2-lv-60-espeak-cv-ft greedy CTC phonemes of reference and enhanced",
)
_SPK = MetricRef(
    "spk_sim",
    "spk_sim",
    {"model": "rawnet3"},
    official="ESPnet RawNet3 espnet/voxcelebs12_rawnet3 embeddings, cosine similarity",
)


def _sbs(model: str, official: str) -> MetricRef:
    return MetricRef("speechbertscore", "speechbertscore", {"model": model, "layer": 8}, official=official)


def _asr(output: str, normalizer: str, official: str) -> MetricRef:
    """OWSM v3.1 (espnet/owsm_v3.1_ebf) through ESPnet's own inference code, as URGENT's calculate_wer.py."""
    return MetricRef(output, "owsm_wer", {"normalizer": normalizer, "beam_size": 5}, official=official)


URGENT2024 = Protocol(
    name="urgent2024",
    title="URGENT 2024 (NeurIPS 2024 challenge)",
    categories={
        "non-intrusive": (_DNSMOS, _NISQA),
        "intrusive": (_PESQ, _ESTOI, _SDR, _MCD, _LSD),
        "downstream-independent": (
            _sbs("hubert-base", "discrete_speech_metrics SpeechBERTScore, facebook/hubert-base-ls960 layer 8, precision"),
            _LPS,
        ),
        "downstream": (
            _SPK,
            _asr("wer", "whisper_en", "OWSM v3.1 beam 5, Whisper English normaliser, corpus WER; ranked as WAcc = 1 - WER"),
        ),
    },
    text_normaliser="Whisper English normaliser (ESPnet TextCleaner('whisper_en')) on reference and hypothesis",
    decoding={"beam_size": 5, "temperature": 0.0, "language": "en"},
    sources=_SOURCES_2024,
    notes=("POLQA is ranked on the official blind test only; it is proprietary and not computed here.",),
)

URGENT2025 = Protocol(
    name="urgent2025",
    title="URGENT 2025 (Interspeech 2025 challenge)",
    categories={
        "non-intrusive": (_DNSMOS, _NISQA, _UTMOS),
        "intrusive": (_PESQ, _ESTOI, _SDR, _MCD, _LSD),
        "downstream-independent": (
            _sbs("mhubert-147", "SpeechBERTScore with utter-project/mHuBERT-147 layer 8, precision"),
            _LPS,
        ),
        "downstream": (
            _SPK,
            _asr("cer", "whisper_basic", "OWSM v3.1 beam 5, whisper_basic normaliser, corpus CER; ranked as CAcc = 1 - CER"),
        ),
    },
    reported=(_asr("wer", "whisper_basic", "computed by the official script, not ranked"),),
    text_normaliser=(
        "Whisper basic normaliser (ESPnet TextCleaner('whisper_basic')) on reference and hypothesis, for CER and "
        "the reported WER, as the official calculate_wer.py"
    ),
    decoding={"beam_size": 5, "temperature": 0.0},
    sources=_SOURCES_2025,
    notes=("POLQA is ranked on the official blind test only; it is proprietary and not computed here.",),
)

URGENT2026 = Protocol(
    name="urgent2026",
    title="URGENT 2026 track 1 (ICASSP 2026 challenge)",
    categories={
        "non-intrusive": (
            _DNSMOS,
            _NISQA,
            _UTMOS,
            MetricRef(
                "scoreq",
                "scoreq",
                official=(
                    "scoreq 1.0.1 Scoreq(data_domain='natural', mode='nr'): adapt_nr_telephone.pt (Zenodo "
                    "13860326), resampled to 16 kHz, zero-padded to a multiple of 320 samples"
                ),
            ),
        ),
        "intrusive": (_PESQ, _ESTOI),
        "downstream-independent": (
            _sbs("mhubert-147", "SpeechBERTScore with utter-project/mHuBERT-147 layer 8, precision"),
            _LPS,
        ),
        "downstream": (
            _SPK,
            MetricRef(
                "emo_sim",
                "emo_sim",
                official=(
                    "emotion2vec_base.pt (emotion2vec/emotion2vec_base) utterance embeddings (mean over "
                    "frames) of reference and enhanced speech at 16 kHz, cosine similarity"
                ),
            ),
            MetricRef(
                "lid_acc",
                "lid_acc",
                official=(
                    "OWSM-CTC v4 1B (espnet/owsm_ctc_v4_1B) greedy CTC with lang_sym <nolang>; the first output "
                    "token is the predicted language; 1/0 per utterance, mean"
                ),
            ),
            _asr("cer", "whisper_basic", "OWSM v3.1 beam 5, whisper_basic normaliser, corpus CER; ranked as CAcc = 1 - CER"),
        ),
    },
    text_normaliser=URGENT2025.text_normaliser,
    decoding={"beam_size": 5, "temperature": 0.0},
    sources=_SOURCES_2026,
    notes=(
        "SDR, MCD and LSD were dropped from the ranking in 2026.",
        "Subjective MOS and CMOS (stage 2, top-6 systems) are outside an objective benchmark.",
    ),
)

#: All protocols, by name.
PROTOCOLS: Registry[Protocol] = Registry("protocol")
PROTOCOLS.register(URGENT2024.name, URGENT2024, aliases=("2024",))
PROTOCOLS.register(URGENT2025.name, URGENT2025, aliases=("2025",))
PROTOCOLS.register(URGENT2026.name, URGENT2026, aliases=("2026",))


def get_protocol(name: str) -> Protocol:
    """Return the protocol called ``name``.

    Raises:
        UnknownNameError: With "did you mean" suggestions for an unknown name.
    """
    return PROTOCOLS.get(name)


__all__ = ["PROTOCOLS", "URGENT2024", "URGENT2025", "URGENT2026", "MetricRef", "Protocol", "get_protocol"]
