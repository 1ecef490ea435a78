"""Metric plug-ins: the registry of built-in metrics and the ``urgentbench.metrics`` entry-point group."""

from __future__ import annotations

from urgentbench.assets.registry import declare_pin_modules
from urgentbench.metrics.base import CATEGORIES, Metric, MetricError, Output
from urgentbench.registry import Registry

#: All metrics, by name. Third-party packages add theirs through the
#: ``urgentbench.metrics`` entry-point group (value: ``"module:MetricClass"``).
METRICS: Registry[type[Metric]] = Registry(
    "metric", entry_point_group="urgentbench.metrics", declared_aliases=lambda cls: getattr(cls, "aliases", ())
)

#: The built-in metrics: name -> class (imported on first use). Each class declares its own
#: aliases (``Metric.aliases``); the registry reads them when a name is not found.
_BUILTIN = {
    "pesq": "urgentbench.metrics.intrusive:PESQ",
    "estoi": "urgentbench.metrics.intrusive:ESTOI",
    "sdr": "urgentbench.metrics.intrusive:SDR",
    "si_sdr": "urgentbench.metrics.intrusive:SISDR",
    "lsd": "urgentbench.metrics.intrusive:LSD",
    "mcd": "urgentbench.metrics.intrusive:MCD",
    "dnsmos": "urgentbench.metrics.dnsmos:DNSMOS",
    "nisqa": "urgentbench.metrics.nisqa:NISQA",
    "plcmos": "urgentbench.metrics.plcmos:PLCMOS",
    "utmos": "urgentbench.metrics.utmos:UTMOS",
    "scoreq": "urgentbench.metrics.scoreq:SCOREQ",
    "spk_sim": "urgentbench.metrics.speaker:SpeakerSimilarity",
    "emo_sim": "urgentbench.metrics.emotion:EmotionSimilarity",
    "wer": "urgentbench.metrics.asr:WhisperErrorRate",
    "owsm_wer": "urgentbench.metrics.owsm_asr:OWSMErrorRate",
    "lid_acc": "urgentbench.metrics.owsm_lid:LanguageIDAccuracy",
    "speechbertscore": "urgentbench.metrics.speechbertscore:SpeechBERTScore",
    "lps": "urgentbench.metrics.lps:LPS",
}
for _name, _target in _BUILTIN.items():
    METRICS.register(_name, _target)

#: Modules declaring the assets the built-in metrics load, each as ``ASSET_PINS``
#: (``(asset, aliases)`` pairs, defined beside the metric).
ASSET_MODULES = (
    "urgentbench.metrics.whisper_backends",
    "urgentbench.metrics.nisqa",
    "urgentbench.metrics.speaker",
    "urgentbench.metrics.utmos",
    "urgentbench.metrics.scoreq",
    "urgentbench.metrics.rawnet3",
    "urgentbench.metrics.emotion",
    "urgentbench.metrics._ssl",
    "urgentbench.metrics.espnet_runtime",
    "urgentbench.metrics.owsm_models",
)

declare_pin_modules(ASSET_MODULES)


def get_metric_class(name: str) -> type[Metric]:
    """Return the metric class registered as ``name`` (aliases allowed)."""
    return METRICS.get(name)


__all__ = ["CATEGORIES", "METRICS", "Metric", "MetricError", "Output", "get_metric_class"]
