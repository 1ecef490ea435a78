"""NISQA v2.0: non-intrusive speech quality (MOS) and its four quality dimensions.

URGENT ranks only the MOS prediction (``nisqa_mos``); noisiness, discontinuity,
coloration and loudness are reported for diagnosis. The weights are ``weights/nisqa.tar``
of gabrielmittag/NISQA (asset ``nisqa-v2``, CC BY-NC-SA 4.0: non-commercial use only);
the network and feature code is NISQA's own, from the ``nisqa`` 2.0.post2 wheel (asset ``nisqa-code``,
imported at run time: the package pins torch 2.2.1, so it cannot be installed beside urgentbench).

How this reproduces NISQA's own prediction (``nisqaModel(args).predict()`` in
``predict_file`` mode, and URGENT's ``nisqa_utils.predict_nisqa``, which does the same):

- **Working rate: the file's own.** The checkpoint's ``ms_sr`` is ``None``, so NISQA
  reads the file with ``librosa.load(path, sr=None)``: no resampling at all, and the
  mel spectrogram is computed at the file's rate (10 ms hop, 20 ms window, 4096-point
  FFT, 48 mel bands up to 20 kHz; bands above the Nyquist frequency stay empty below
  40 kHz, which is why NISQA scores band-limited audio lower). The metric therefore
  declares no working rate (``sample_rate = None``): the runner hands :meth:`compute`
  the samples of the file at their native rate, exactly what NISQA reads. Forcing
  48 kHz would change the numbers (fixture a at 16 kHz: MOS 1.1639 native vs 1.1750
  at 48 kHz). Had a rate been set, ``librosa.load`` would resample with soxr
  ``"soxr_hq"``, which is bit-identical to our soxr ``"HQ"`` apart from librosa's
  one-sample length fix.
- **Features**: NISQA's ``get_librosa_melspec`` takes a path; it is given an in-memory
  32-bit float WAV of the waveform, which librosa reads back bit-exactly, so the
  spectrogram is NISQA's own. ``segment_specs`` cuts it into 15-frame segments with a
  hop of 4 frames, padded to the checkpoint's 1300 segments.
- **Network**: ``NISQA_DIM`` built from the checkpoint's arguments, loaded with
  ``strict=True``, evaluated in inference mode on the ``device`` option's device.
  :meth:`NISQA.compute_batch` runs up to :attr:`NISQA.batch_size` utterances in one
  forward pass, as ``predict_dim`` does with ``bs > 1``: every item is padded to the
  checkpoint's 1300 segments and the network masks by each item's segment count
  (packed sequences in the framewise and time-dependency stages, masked attention and
  pooling), so batched values equal one-by-one values to float rounding.
- **Weights**: the asset's sha256 is checked (:meth:`urgentbench.assets.Asset.path`)
  before ``torch.load(..., weights_only=True)``; the checkpoint holds only a dict of
  plain Python values and tensors, so no pickled code is ever run.

Inputs NISQA cannot score raise :class:`MetricError`: fewer than 15 mel frames (about
0.14 s), more than 1300 segments (about 52 s; NISQA itself raises), NaN/Inf samples,
and digital silence. For an all-zero input NISQA would report a MOS of about 2.11,
higher than it gives much real speech; that number says nothing about quality, so it
is refused here (a deliberate deviation; the failure is listed on the leaderboard).
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from urgentbench.assets import Asset, AssetFile, DownloadSource, PackageCode
from urgentbench.metrics.base import BatchItem, MetricError, Output, length_buckets
from urgentbench.metrics.model import ModelMetric
from urgentbench.requirements import PackageRequirement, pip

logger = logging.getLogger(__name__)

#: The asset holding ``nisqa.tar`` (NISQA v2.0).
ASSET = "nisqa-v2"
_CHECKPOINT = "nisqa.tar"

#: NISQA weights: gabrielmittag/NISQA ``weights/`` (NISQA v2.0, master branch).
_NISQA_URL = "https://github.com/gabrielmittag/NISQA/raw/master/weights"
_NISQA_LICENCE = (
    "CC-BY-NC-SA-4.0 (NISQA model weights by Gabriel Mittag, TU Berlin: non-commercial use only, "
    "attribution required, adaptations under the same licence; see weights/LICENSE_model_weights)"
)

NISQA_V2 = Asset(
    name=ASSET,
    description="NISQA v2.0 speech quality model (MOS, noisiness, discontinuity, coloration, loudness)",
    licence=_NISQA_LICENCE,
    homepage="https://github.com/gabrielmittag/NISQA",
    used_by=("metric nisqa",),
    files=(
        AssetFile(_CHECKPOINT, "7ec4cf937514dd3f8860b21e66fabd8ca87a168572675ef8d979c4c4ad2e805c", 1_051_663),
    ),
    sources=(DownloadSource(urls={_CHECKPOINT: (f"{_NISQA_URL}/{_CHECKPOINT}",)}),),
)

NISQA_TTS = Asset(
    name="nisqa-tts",
    description="NISQA-TTS v1 naturalness model for synthesised speech (no built-in metric uses it yet)",
    licence=_NISQA_LICENCE,
    homepage="https://github.com/gabrielmittag/NISQA",
    files=(
        AssetFile(
            "nisqa_tts.tar", "c556a954cd9536360b4fe6f524ad432816509cd22f436f345b281a7851360656", 1_237_159
        ),
    ),
    sources=(DownloadSource(urls={"nisqa_tts.tar": (f"{_NISQA_URL}/nisqa_tts.tar",)}),),
)

#: NISQA's network and feature code: the ``nisqa`` 2.0.post2 wheel as published on PyPI. The
#: package cannot be a dependency (it pins torch 2.2.1, numpy 1.26.4, pandas 2.2.1...); its
#: modules are imported from this pinned file (:class:`urgentbench.assets.PackageCode`).
_NISQA_WHEEL = "nisqa-2.0.post2-py3-none-any.whl"
NISQA_CODE = Asset(
    name="nisqa-code",
    description="NISQA's model and feature code (the nisqa 2.0.post2 wheel from PyPI, imported at run time)",
    licence="MIT (nisqa 2.0.post2, Gabriel Mittag, Quality and Usability Lab)",
    homepage="https://pypi.org/project/nisqa/2.0.post2/",
    used_by=("metric nisqa",),
    files=(
        AssetFile(_NISQA_WHEEL, "386205dc930aa98114a689f301112852dfe661d81eb4e6e630675ae9acd2c593", 27_884),
    ),
    sources=(
        DownloadSource(
            urls={
                _NISQA_WHEEL: (
                    "https://files.pythonhosted.org/packages/04/ec/f5386fbc01ecc3c66f4ce668bad97ea1"
                    "2781f7ba3f81b9bf100a902b823b/" + _NISQA_WHEEL,
                )
            }
        ),
    ),
)
#: The ``nisqa`` package, imported from :data:`NISQA_CODE`.
NISQA_PACKAGE = PackageCode(asset="nisqa-code", archive=_NISQA_WHEEL, package="nisqa", prefix="nisqa")

#: The assets of the ``nisqa`` metric with their aliases (registered by :mod:`urgentbench.metrics`).
ASSET_PINS = ((NISQA_V2, ("nisqa",)), (NISQA_TTS, ()), (NISQA_CODE, ()))

#: Checkpoint arguments handed to NISQA_DIM (the same keys as nisqaModel._loadModel).
_MODEL_KEYS = (
    "ms_seg_length", "ms_n_mels",
    "cnn_model", "cnn_c_out_1", "cnn_c_out_2", "cnn_c_out_3", "cnn_kernel_size", "cnn_dropout",
    "cnn_pool_1", "cnn_pool_2", "cnn_pool_3", "cnn_fc_out_h",
    "td", "td_sa_d_model", "td_sa_nhead", "td_sa_pos_enc", "td_sa_num_layers", "td_sa_h", "td_sa_dropout",
    "td_lstm_h", "td_lstm_num_layers", "td_lstm_dropout", "td_lstm_bidirectional",
    "td_2", "td_2_sa_d_model", "td_2_sa_nhead", "td_2_sa_pos_enc", "td_2_sa_num_layers", "td_2_sa_h",
    "td_2_sa_dropout", "td_2_lstm_h", "td_2_lstm_num_layers", "td_2_lstm_dropout", "td_2_lstm_bidirectional",
    "pool", "pool_att_h", "pool_att_dropout",
)  # fmt: skip
#: Feature arguments of the checkpoint, recorded in provenance.
_FEATURE_KEYS = (
    "ms_sr", "ms_n_fft", "ms_hop_length", "ms_win_length", "ms_n_mels", "ms_fmax",
    "ms_seg_length", "ms_seg_hop_length", "ms_max_segments",
)  # fmt: skip
_OUTPUTS = ("nisqa_mos", "nisqa_noi", "nisqa_dis", "nisqa_col", "nisqa_loud")


class NISQA(ModelMetric):
    """NISQA v2.0 MOS and quality dimensions of the enhanced speech (no reference needed).

    Options:
        threads: torch intra-op threads; None uses ``$URGENTBENCH_THREADS`` (set by the
            runner to cores // jobs) or torch's default.
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"``.
    """

    name: ClassVar[str] = "nisqa"
    aliases: ClassVar[tuple[str, ...]] = ("nisqa_mos",)
    description: ClassVar[str] = (
        "NISQA v2.0 non-intrusive MOS plus noisiness, discontinuity, coloration, loudness"
    )
    category: ClassVar[str] = "non-intrusive"
    needs_reference: ClassVar[bool] = False
    #: NISQA works at the file's own rate (the checkpoint's ms_sr is None; see the module docstring).
    sample_rate: ClassVar[int | None] = None
    version: ClassVar[str] = "1"
    #: Utterances per forward pass (masked by segment count: exact, see the module docstring).
    batch_size: ClassVar[int] = 16
    outputs: ClassVar[tuple[Output, ...]] = (
        Output("nisqa_mos", True, "NISQA v2.0 overall quality MOS (ranked by URGENT)"),
        Output("nisqa_noi", True, "NISQA noisiness dimension (higher: less noisy)"),
        Output("nisqa_dis", True, "NISQA discontinuity dimension (higher: fewer discontinuities)"),
        Output("nisqa_col", True, "NISQA coloration dimension (higher: less coloured)"),
        Output("nisqa_loud", True, "NISQA loudness dimension (higher: better loudness)"),
    )
    distributions: ClassVar[tuple[str, ...]] = ("torch", "librosa", "soundfile", "numpy")
    packages: ClassVar[tuple[PackageRequirement | PackageCode, ...]] = (
        NISQA_PACKAGE,
        PackageRequirement("torch", "pip install torch==2.13.0"),
        PackageRequirement("librosa", pip("librosa")),
        # imported at module level by nisqa.NISQA_lib
        PackageRequirement("pandas", pip("pandas<4")),
        PackageRequirement("matplotlib", pip("matplotlib")),
    )
    reference_implementation: ClassVar[str] = (
        "gabrielmittag/NISQA v2.0 (nisqa 2.0.post2: get_librosa_melspec, segment_specs, NISQA_DIM) with "
        "weights/nisqa.tar, as run by URGENT's calculate_nonintrusive_nisqa.py (nisqa_utils.predict_nisqa)"
    )

    #: The NISQA v2.0 weights.
    asset: ClassVar[str | None] = ASSET

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._model: Any = None
        self._args: dict[str, Any] = {}

    def setup(self) -> None:
        """Verify the weights' sha256, then load the checkpoint and build NISQA_DIM once.

        Raises:
            AssetError: When the weights are missing or corrupt (the message holds the fix commands).
            RuntimeError: When the checkpoint is not a NISQA_DIM model working at the native rate.
        """
        folder = self.asset_folder()  # sha256-verified before anything is deserialised
        import torch

        with warnings.catch_warnings():
            # nisqa sets a pandas option on import that pandas 3 deprecates (harmless)
            warnings.filterwarnings("ignore", message=".*chained_assignment")
            NISQA_PACKAGE.load()
            from nisqa import NISQA_lib

        self.use_threads()
        device = self.use_device()
        checkpoint = torch.load(folder / _CHECKPOINT, map_location="cpu", weights_only=True)
        args = checkpoint["args"]
        if args.get("model") != "NISQA_DIM":
            raise RuntimeError(
                f"{folder / _CHECKPOINT} holds a {args.get('model')!r} model, expected NISQA_DIM"
            )
        if args.get("ms_sr") is not None:  # NISQA would resample first; the metric works at the native rate
            raise RuntimeError(
                f"{folder / _CHECKPOINT} sets ms_sr={args['ms_sr']}; only ms_sr=None is supported"
            )
        model = NISQA_lib.NISQA_DIM(**{key: args[key] for key in _MODEL_KEYS})
        model.load_state_dict(checkpoint["model_state_dict"], strict=True)
        model.eval()
        self._model, self._args = model.to(device), args
        # Warm up (librosa's mel filters, torch's first run), so that per-utterance timings are steady.
        rng = np.random.default_rng(0)
        self._predict(0.01 * rng.standard_normal(16000).astype(np.float32), 16000)
        logger.debug("NISQA loaded from %s on %s (%s threads)", folder, device, self._threads or "default")

    def provenance(self) -> dict[str, Any]:
        """Version, options, weights identity, feature settings, device, threads and library versions."""
        prov = super().provenance()
        prov["code"] = NISQA_PACKAGE.provenance()
        # the release run is the pinned wheel, not an installed distribution: its version from the file name
        prov.setdefault("packages", {})["nisqa"] = _NISQA_WHEEL.split("-")[1]
        if self._args:
            prov["features"] = {key: self._args.get(key) for key in _FEATURE_KEYS}
        return prov

    def compute(
        self,
        estimate: np.ndarray,
        reference: np.ndarray | None,
        sample_rate: int,
        *,
        transcript: str | None = None,
    ) -> dict[str, Any]:
        """Score one waveform at its native rate.

        Returns:
            ``nisqa_mos``, ``nisqa_noi``, ``nisqa_dis``, ``nisqa_col`` and ``nisqa_loud``.

        Raises:
            MetricError: For an empty, non-finite, silent, too short or too long waveform.
        """
        if self._model is None:
            self.setup()
        return dict(zip(_OUTPUTS, self._predict(_checked(estimate), int(sample_rate))))

    def compute_batch(self, items: Sequence[BatchItem]) -> list[dict[str, Any] | Exception]:
        """Score several waveforms, up to :attr:`batch_size` of them in one masked forward pass.

        Each result equals :meth:`compute`'s for the item to float rounding (within 1e-5).

        Returns:
            One entry per item: the dict :meth:`compute` returns, or the :class:`MetricError`
            it raises for that item.
        """
        if self._model is None:
            self.setup()
        out: list[dict[str, Any] | Exception | None] = [None] * len(items)
        ready: list[tuple[int, Any, int]] = []
        for i, item in enumerate(items):
            try:
                segments, n_wins = self._segments(_checked(item.estimate), int(item.sample_rate))
            except MetricError as exc:
                out[i] = exc
                continue
            ready.append((i, segments, n_wins))
        for chunk in length_buckets([n for _, _, n in ready], self.batch_size):
            scores = self._forward([ready[k][1] for k in chunk], [ready[k][2] for k in chunk])
            for k, row in zip(chunk, scores):
                out[ready[k][0]] = dict(zip(_OUTPUTS, row))
        return out  # type: ignore[return-value]

    def _predict(self, x: np.ndarray, sample_rate: int) -> list[float]:
        """NISQA's own features and network on ``x``: MOS, NOI, DIS, COL, LOUD."""
        segments, n_wins = self._segments(x, sample_rate)
        return self._forward([segments], [n_wins])[0]

    def _forward(self, segments: list[Any], n_wins: list[int]) -> list[list[float]]:
        """The network on a batch of padded segment tensors: one [MOS, NOI, DIS, COL, LOUD] per item."""
        import torch

        batch = torch.stack(segments).to(self._device)
        counts = torch.as_tensor(n_wins, dtype=torch.long).to(self._device)
        with torch.inference_mode():
            out = self._model(batch, counts)
        return [[float(v) for v in row] for row in out.double().cpu().tolist()]

    def _segments(self, x: np.ndarray, sample_rate: int) -> tuple[Any, int]:
        """NISQA's mel spectrogram of ``x`` cut into segments padded to the checkpoint's maximum, and their count.

        Raises:
            MetricError: For fewer mel frames than a segment or more segments than the checkpoint takes.
        """
        import soundfile as sf
        from nisqa import NISQA_lib

        args = self._args
        # NISQA reads a file with librosa; a float WAV in memory is read back bit-exactly.
        wav = io.BytesIO()
        sf.write(wav, x, sample_rate, format="WAV", subtype="FLOAT")
        wav.seek(0)
        with warnings.catch_warnings():
            # Expected for NISQA's settings: empty mel bands above Nyquist below 40 kHz, and a
            # 4096-point FFT longer than very short inputs.
            warnings.simplefilter("ignore", UserWarning)
            spec = NISQA_lib.get_librosa_melspec(
                wav,
                sr=args["ms_sr"],
                n_fft=args["ms_n_fft"],
                hop_length=args["ms_hop_length"],
                win_length=args["ms_win_length"],
                n_mels=args["ms_n_mels"],
                fmax=args["ms_fmax"],
                ms_channel=None,
            )
        seg_length, seg_hop, max_segments = (
            args["ms_seg_length"],
            args["ms_seg_hop_length"],
            args["ms_max_segments"],
        )
        frames = spec.shape[1]
        hop_s = args["ms_hop_length"]
        if frames < seg_length:
            raise MetricError(
                f"NISQA needs at least {seg_length} mel frames (about {(seg_length - 1) * hop_s:.2f} s), "
                f"got {frames} ({x.size / sample_rate:.3f} s)"
            )
        n_segments = math.ceil((frames - seg_length + 1) / seg_hop)
        if n_segments > max_segments:
            limit_s = ((max_segments - 1) * seg_hop + seg_length - 1) * hop_s
            raise MetricError(
                f"NISQA scores at most {max_segments} segments (about {limit_s:.0f} s), "
                f"got {n_segments} ({x.size / sample_rate:.1f} s)"
            )
        label = f"<{x.size} samples at {sample_rate} Hz>"
        segments, n_wins = NISQA_lib.segment_specs(label, spec, seg_length, seg_hop, max_segments)
        return segments, int(n_wins)


def _checked(estimate: np.ndarray) -> np.ndarray:
    """``estimate`` as float32 after checking that NISQA can score it.

    Raises:
        MetricError: For an empty, non-mono, non-finite or all-zero waveform.
    """
    x = np.asarray(estimate, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise MetricError(f"NISQA needs a non-empty mono waveform, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise MetricError("NISQA input contains NaN or Inf samples")
    if not np.any(x):
        raise MetricError("NISQA input is digital silence (all zeros); its score would be meaningless")
    return x
