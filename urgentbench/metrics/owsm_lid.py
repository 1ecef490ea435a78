"""Language-identification accuracy of OWSM-CTC v4, as URGENT 2026's ``calculate_lid_accuracy.py``.

URGENT 2026 runs ESPnet's ``Speech2TextGreedySearch`` on ``espnet/owsm_ctc_v4_1B`` (asset
``owsm-ctc-v4-1b``; ESPnet's own code from its pinned release, see
:mod:`urgentbench.metrics.espnet_runtime`) with ``lang_sym="<nolang>"`` and
``task_sym="<asr>"``, on the whole enhanced signal at 16 kHz (no padding or trimming).
The predicted language is the first output token (``<eng>``); an utterance scores 1 when
it names the utterance's language, else 0; the system value is the mean.

An utterance whose manifest gives no language has no LID accuracy (a missing value with
that reason, never 0); so has audio too short for the encoder's 8x subsampling, and an
output without any token.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from urgentbench.metrics.base import MetricError, Output
from urgentbench.metrics.espnet_runtime import ESPNET2_PACKAGE, ESPNET_CODE, PACKAGES
from urgentbench.metrics.model import ModelMetric, mono_audio
from urgentbench.metrics.owsm_models import SAMPLE_RATE, owsm_language

logger = logging.getLogger(__name__)


def predicted_language(tokens: Sequence[str]) -> str:
    """The language URGENT reads from an OWSM-CTC output: its first token without ``<`` and ``>``.

    Raises:
        MetricError: For an empty output.
    """
    if not tokens:
        raise MetricError("OWSM-CTC produced no token (no language predicted)")
    return str(tokens[0]).replace("<", "").replace(">", "")


class LanguageIDAccuracy(ModelMetric):
    """1 when OWSM-CTC v4's first output token is the utterance's language, else 0 (mean over utterances).

    Options:
        model_dir: A local copy of an ESPnet OWSM-CTC folder (``meta.yaml``, config, model
            file, BPE model, statistics) instead of the ``owsm-ctc-v4-1b`` asset.
        device: torch device (``"cpu"``, ``"cuda"``).
        threads: torch intra-op threads; None uses ``$URGENTBENCH_THREADS`` or the default.
    """

    name: ClassVar[str] = "lid_acc"
    aliases: ClassVar[tuple[str, ...]] = ("lid", "lacc")
    description: ClassVar[str] = "Language-identification accuracy of OWSM-CTC v4 (first output token, URGENT 2026)"
    category: ClassVar[str] = "downstream"
    needs_reference: ClassVar[bool] = False
    sample_rate: ClassVar[int | None] = SAMPLE_RATE
    asset: ClassVar[str | None] = "owsm-ctc-v4-1b"
    #: Its ``device`` option predates the options-hash rule: ``device="cpu"`` stays hashed.
    hash_cpu_device: ClassVar[bool] = True
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("lid_acc", True, "1 if OWSM-CTC v4 identifies the utterance's language, else 0 (mean)"),
    )
    distributions: ClassVar[tuple[str, ...]] = ("torch", "sentencepiece")
    packages: ClassVar[tuple[Any, ...]] = PACKAGES
    reference_implementation: ClassVar[str] = "URGENT 2026 calculate_lid_accuracy.py (ESPnet Speech2TextGreedySearch)"

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._model: Any = None
        self._min_samples = 0

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``model_dir``, ``device``, ``threads`` (see the class)."""
        return {"model_dir": None, "device": "cpu", "threads": None}

    @classmethod
    def assets_for(cls, options: dict[str, Any]) -> Sequence[Any]:
        """The model asset (none for ``model_dir``) and ESPnet's release file."""
        return (*super().assets_for(options), ESPNET_CODE)

    def setup(self) -> None:
        """Load ESPnet's ``Speech2TextGreedySearch`` on the model folder.

        Raises:
            AssetError: When the model asset or ESPnet's release file is missing (with the fix command).
            ValueError: For an unusable model folder.
        """
        from urgentbench.metrics.owsm_models import load_model

        self.use_threads()
        self.use_device()
        folder = self.options["model_dir"] or self.asset_folder()
        self._model = load_model(
            "ctc", folder, self._device, generate_interctc_outputs=False, lang_sym="<nolang>", task_sym="<asr>"
        )
        self._min_samples = self._shortest_input()

    def provenance(self) -> dict[str, Any]:
        """Base provenance plus the decoding settings and ESPnet's release."""
        prov = super().provenance()
        prov["decoding"] = {"search": "greedy CTC", "lang_sym": "<nolang>", "task_sym": "<asr>", "prediction": "first token"}
        prov["code"] = ESPNET2_PACKAGE.provenance()  # the pinned ESPnet release file (asset, file, sha256)
        return prov

    def min_samples(self) -> int:
        """The shortest input (samples) the encoder takes: its subsampling needs a minimum of frames."""
        if self._model is None:
            self.setup()
        return self._min_samples

    def _shortest_input(self) -> int:
        from urgentbench.metrics.espnet_runtime import import_espnet

        (subsampling,) = import_espnet("espnet.nets.pytorch_backend.transformer.subsampling")
        embed = self._model.s2t_model.encoder.embed
        hop = int(self._model.s2t_train_args.frontend_conf.get("hop_length", 128))
        frames = 1
        while subsampling.check_short_utt(embed, frames)[0]:
            frames += 1
        return (frames - 1) * hop

    def identify(self, waveform: np.ndarray) -> list[str]:
        """The output tokens of OWSM-CTC for one 16 kHz waveform (greedy CTC, ``<nolang>`` prompt)."""
        if self._model is None:
            self.setup()
        text, tokens, *_ = self._model(waveform)[0]
        return list(tokens)

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Identify the language of the enhanced speech and compare it with the utterance's.

        Returns:
            ``lid_acc`` (1.0 or 0.0), ``predicted`` (OWSM's code) and ``language`` (the reference code).

        Raises:
            MetricError: Without a language for the utterance, for a wrong rate, unusable
                or too short audio, or an empty output.
        """
        language = getattr(transcript, "language", None)
        if not language:
            raise MetricError("no language for this utterance (the manifest gives none): LID accuracy undefined")
        try:
            expected = owsm_language(language)
        except ValueError as exc:
            raise MetricError(str(exc)) from None
        if sample_rate != SAMPLE_RATE:
            raise MetricError(f"OWSM-CTC needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        x = mono_audio(estimate, "enhanced")
        shortest = self.min_samples()
        if len(x) < shortest:
            raise MetricError(f"audio too short for OWSM-CTC: {len(x)} samples, the encoder needs at least {shortest}")
        predicted = predicted_language(self.identify(x))
        return {"lid_acc": float(predicted == expected), "predicted": predicted, "language": expected}
