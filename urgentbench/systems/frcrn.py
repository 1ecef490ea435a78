"""FRCRN (Zhao et al., ICASSP 2022) at 16 kHz: ClearerVoice-Studio's ``FRCRN_SE_16K`` checkpoint, the ``frcrn`` system.

The network is :mod:`urgentbench.systems.frcrn_net` (urgentbench's own implementation with
the checkpoint's parameter names); the weights are the asset ``frcrn-se-16k``
(``last_best_checkpoint.pt`` of huggingface.co/alibabasglab/FRCRN_SE_16K, Apache-2.0; pinned
in :mod:`urgentbench.systems.frcrn_assets`), or a local file given with
``--system-args checkpoint=PATH``.

What the wrapper does, following ClearerVoice-Studio's inference for this model
(``clearvoice`` 0.1.2: ``dataloader.audioread`` with ``use_norm``, ``decode_one_audio_frcrn_se_16k``,
``one_time_decode_length: 120``, ``decode_window: 1``), and why:

* **Level.** The input is scaled to -25 dB RMS, then scaled again so that the RMS of its
  samples above the mean power is -25 dB (upstream ``audio_norm``, eps 1e-6); the output
  is multiplied by the inverse gain. Computed once over the whole input (upstream does it
  at the file's own rate before resampling; here the input is already at 16 kHz). A silent
  input gives a silent output (upstream divides by zero).
* **Padding.** Upstream zero-pads an input of ``n`` samples to 16 000 when shorter, to
  28 000 when shorter than that, and otherwise, unless ``(n - 16000)`` is a multiple of
  12 000, by ``n - 12000 * floor((n - 16000) / 12000)`` samples; it then runs the model once
  and keeps the first ``n`` output samples. The padding is reproduced exactly (it matters:
  the squeeze-and-excitation gates average over the whole padded input). The model only
  reconstructs whole 640-sample frames, so where that padding leaves the last samples
  outside a whole frame (upstream then returns fewer than ``n`` samples), zeros are added
  up to the next frame boundary: the output always has exactly ``n`` samples.
* **Framing.** Frames start at the first sample (no centre padding). The synthesis divides
  by the overlap-added squared window, which vanishes at the very first sample, so the
  first few milliseconds are upstream's edge behaviour (sample 0 is always 0).
* **Long inputs.** Upstream decodes up to 120 s in one pass (and longer files in 1-s
  windows without crossfade). Here inputs longer than ``chunk_seconds`` (default 30: memory
  grows by about 80 MB per second of input) are cut into chunks that start on multiples of
  the 320-sample hop (so every chunk's frames are frames of the whole input) and overlap by
  :data:`OVERLAP_S`: the later chunk's first :data:`WARMUP_S` are discarded (the time FSMNs
  of both stages reach about 1.8 s back), a raised-cosine crossfade of :data:`FADE_S` hands
  over, and the earlier chunk's last :data:`TAIL_S` are discarded (the decoders look 14
  frames, 0.28 s, ahead, and its end padding acts there). The level is set once for the
  whole input; each chunk is padded like an upstream input. The weights sum to one, so
  there are no seams; chunks differ from one pass only through the gates' means over the
  chunk instead of the whole input. ``chunk_seconds=120`` gives upstream's one pass for
  every input up to 120 s.
* **Rates.** The runner resamples any input rate to 16 kHz once (soxr) and the output
  back to the input's rate; :meth:`FRCRNSystem.enhance` itself takes 16 kHz only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from urgentbench.errors import one_line
from urgentbench.systems.base import System, mono_waveform
from urgentbench.systems.chunking import chunk_bounds, crossfade_weights
from urgentbench.systems.frcrn_assets import ASSET, CHECKPOINT_FILE

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
#: Frame length and hop of the model (see :mod:`urgentbench.systems.frcrn_net`).
WIN, HOP = 640, 320
#: Upstream ``decode_window`` (1 s) and its stride (0.75 s), which set the padding rule.
DECODE_WINDOW, DECODE_STRIDE = 16_000, 12_000
#: Upstream ``audio_norm``: target level and eps.
TARGET_RMS = 10.0 ** (-25.0 / 20.0)
NORM_EPS = 1e-6
#: Overlap of consecutive chunks: warm-up (discarded), crossfade, tail (discarded).
WARMUP_S = 2.0
FADE_S = 1.0
TAIL_S = 1.0
OVERLAP_S = WARMUP_S + FADE_S + TAIL_S

#: Upstream registers the U-Net's layers twice (``encoder0`` and ``encoders.0``...); a
#: state dict saved from it lists both names for the same tensors.
_ALIASES = {
    "encoders": "encoder",
    "decoders": "decoder",
    "se_layers_enc": "se_layer_enc",
    "se_layers_dec": "se_layer_dec",
    "fsmn_enc": "fsmn_enc",
    "fsmn_dec": "fsmn_dec",
}
_ALIAS_RE = re.compile(r"(?<![^.])(" + "|".join(_ALIASES) + r")\.(\d+)\.")
_COUNTER = ".num_batches_tracked"


def fix_hint() -> str:
    """What to do about a missing or unusable FRCRN checkpoint, as one line."""
    return (
        f"fix: urgentbench assets fetch {ASSET} (or urgentbench assets add {ASSET} --from FILE with the "
        f"{CHECKPOINT_FILE} of huggingface.co/alibabasglab/FRCRN_SE_16K), or pass "
        "--system-args checkpoint=PATH to a FRCRN_SE_16K checkpoint"
    )


def _torch():
    import torch

    return torch


def upstream_padded_length(n: int) -> int:
    """Length ClearerVoice pads an ``n``-sample input to, extended to whole frames covering ``n``."""
    if n < DECODE_WINDOW:
        padded = DECODE_WINDOW
    elif n < DECODE_WINDOW + DECODE_STRIDE:
        padded = DECODE_WINDOW + DECODE_STRIDE
    elif (n - DECODE_WINDOW) % DECODE_STRIDE:
        padded = 2 * n - (n - DECODE_WINDOW) // DECODE_STRIDE * DECODE_STRIDE
    else:
        padded = n
    covering = WIN + -(-(n - WIN) // HOP) * HOP  # whole frames reaching sample n - 1
    return max(padded, covering)


def level_gains(x: np.ndarray) -> tuple[float, float]:
    """Upstream ``audio_norm`` for ``x``: ``(input gain, output gain)``.

    The input is multiplied by ``g = g1 * g2`` (``g1`` brings the RMS to -25 dB, ``g2`` the RMS
    of the samples above the mean power), the output by ``1 / (g + 1e-6)``. A silent input
    gives ``(0.0, 0.0)``.
    """
    x = np.asarray(x, dtype=np.float64)
    rms = float(np.sqrt(np.mean(x**2)))
    if rms == 0.0:
        return 0.0, 0.0
    first = TARGET_RMS / (rms + NORM_EPS)
    power = (x * first) ** 2
    loud = power[power > power.mean()]
    second = TARGET_RMS / (float(np.sqrt(np.mean(loud if loud.size else power))) + NORM_EPS)
    gain = first * second
    return gain, 1.0 / (gain + NORM_EPS)


def model_state(raw: Any, label: str) -> dict[str, Any]:
    """The network's state dict from a checkpoint object, in :class:`~urgentbench.systems.frcrn_net.FRCRN`'s names.

    Accepts the published layout (``{"model": state, ...}``, other entries such as optimiser
    state ignored) or a bare state dict; strips a ``module.`` prefix (DataParallel) when every
    key has it; folds upstream's second registration of each layer (``unet.encoders.0.*`` ->
    ``unet.encoder0.*``, both must hold the same values); fills missing batch-norm counters.

    Raises:
        ValueError: When ``raw`` holds no FRCRN state dict, or duplicates disagree.
    """
    torch = _torch()
    if isinstance(raw, Mapping) and isinstance(raw.get("model"), Mapping):
        raw = raw["model"]
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError(f"{label}: expected a state dict or {{'model': state dict}}, got {type(raw).__name__}")
    bad = [k for k, v in raw.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{label}: entries that are not named tensors: {bad[:3]}")
    items = list(raw.items())
    if all(k.startswith("module.") for k, _ in items):
        items = [(k[len("module.") :], v) for k, v in items]
    state: dict[str, Any] = {}
    for key, value in items:
        name = _ALIAS_RE.sub(lambda m: f"{_ALIASES[m.group(1)]}{m.group(2)}.", key)
        if name in state:
            if state[name].shape != value.shape or not torch.equal(state[name], value):
                raise ValueError(f"{label}: {key} and {name} are the same layer but hold different values")
            continue
        state[name] = value
    if "unet.encoder0.conv.conv_re.weight" not in state:
        raise ValueError(f"{label}: no 'unet.encoder0.conv.conv_re.weight', not an FRCRN checkpoint "
                         f"(keys {sorted(state)[:4]} ...)")
    return state


def _load(path: Path, trusted: bool) -> Any:
    """``torch.load(weights_only=True)``; the file verified against the official pin may fall back."""
    torch = _torch()
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        if not trusted:
            raise ValueError(f"{path}: not a readable FRCRN checkpoint ({one_line(exc)})") from exc
        logger.debug("%s: weights_only load failed (%s); official sha256, loading fully", path, exc)
        return torch.load(str(path), map_location="cpu", weights_only=False)


def read_checkpoint(path: str | Path, trusted: bool = False):
    """Build the network from a checkpoint file (the published one or any with its names).

    The hidden width is read from the first encoder's weights (128 in the published model).

    Args:
        path: The ``.pt`` file.
        trusted: The file matched the official sha256 (a ``weights_only`` refusal may then
            fall back to a full load).

    Returns:
        The :class:`~urgentbench.systems.frcrn_net.FRCRN` network in eval mode.

    Raises:
        ValueError: For an unreadable file or weights that do not fit (the file is named).
    """
    from urgentbench.systems.frcrn_net import FRCRN

    label = str(path)
    state = model_state(_load(Path(path), trusted), label)
    model = FRCRN(width=int(state["unet.encoder0.conv.conv_re.weight"].shape[0]))
    for key, value in model.state_dict().items():
        if key.endswith(_COUNTER):
            state.setdefault(key, value)  # batch-norm counters do nothing in eval mode
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        raise ValueError(f"{label}: weights do not fit the FRCRN architecture: {first}") from exc
    return model.eval()


class FRCRNSystem(System):
    """FRCRN_SE_16K speech enhancement at 16 kHz (ClearerVoice-Studio's published model).

    Options:
        checkpoint: Path of a local checkpoint used instead of the asset (the published
            ``last_best_checkpoint.pt`` or any file with its names); its sha256 is recorded.
        chunk_seconds: Inputs longer than this are processed in overlapping chunks
            (default 30; at least 8; 120 reproduces upstream's single pass up to 120 s).
        threads: torch CPU threads (default ``$URGENTBENCH_THREADS``, else torch's default).
    """

    def __init__(self, **options: Any):
        """Check the options (a ``checkpoint`` must exist).

        Raises:
            ValueError: For an unknown option or a bad value, or a checkpoint path that is
                not a file (with the fix).
        """
        super().__init__(**options)
        chunk, least = self.options["chunk_seconds"], 2 * OVERLAP_S
        if isinstance(chunk, bool) or not isinstance(chunk, (int, float)) or chunk < least:
            raise ValueError(f"chunk_seconds must be a number >= {least:g}, got {chunk!r}")
        if self.options["checkpoint"]:
            path = Path(self.options["checkpoint"]).expanduser()
            if not path.is_file():
                raise ValueError(f"FRCRN checkpoint {path} does not exist; {fix_hint()}")
        self._model: Any = None
        self._info: dict[str, Any] = {}

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``checkpoint``: None (the asset), ``chunk_seconds``: 30, ``threads``: None."""
        return {"checkpoint": None, "chunk_seconds": 30.0, "threads": None}

    def needed_assets(self) -> list[str]:
        """No asset when a local ``checkpoint`` is given, else the published checkpoint."""
        return [] if self.options["checkpoint"] else [ASSET]

    # ----------------------------------------------------------------- loading
    def setup(self) -> None:
        """Verify and load the checkpoint (asset or ``checkpoint``) and set the thread count.

        Raises:
            AssetError: When the asset is missing or corrupt (with the fix commands).
            ValueError: When the checkpoint is missing, unreadable or does not fit (with the fix).
        """
        from urgentbench.assets import get_asset
        from urgentbench.hashing import sha256_file
        from urgentbench.metrics._threads import resolve_threads

        threads = resolve_threads(self.options["threads"])
        if threads:
            _torch().set_num_threads(threads)
        pinned = get_asset(ASSET).files[0]
        if self.options["checkpoint"]:
            path = Path(self.options["checkpoint"]).expanduser()
            if not path.is_file():
                raise ValueError(f"FRCRN checkpoint {path} does not exist; {fix_hint()}")
            digest, source = sha256_file(path), "checkpoint"
        else:
            path = get_asset(ASSET).path() / CHECKPOINT_FILE  # verified against the pinned sha256
            digest, source = pinned.sha256, "asset"
        official = pinned.matches(digest)
        try:
            model = read_checkpoint(path, trusted=official)
        except ValueError as exc:
            raise ValueError(f"{exc}; {fix_hint()}") from exc
        self._info = {
            "source": source,
            "file": str(path) if source == "checkpoint" else CHECKPOINT_FILE,
            "sha256": digest,
            "official": official,
        }
        self.use_model(model)
        logger.debug("FRCRN loaded from %s (sha256 %s)", path, digest[:16])

    def use_model(self, model: Any) -> None:
        """Run an already built :class:`~urgentbench.systems.frcrn_net.FRCRN` (setup does this; tests pass random ones)."""
        from urgentbench.systems.frcrn_net import parameter_count

        self._model = model.eval()
        self._info.setdefault("source", "in-memory model")
        self._info["parameters"] = parameter_count(model)
        self._info["width"] = int(model.width)

    def provenance(self) -> dict[str, Any]:
        """Card, options, package versions, the checkpoint's sha256 and source, the parameter count."""
        from urgentbench.assets import get_asset

        prov = super().provenance()
        prov["asset"] = get_asset(ASSET).provenance()
        prov["weights"] = dict(self._info)
        return prov

    # ----------------------------------------------------------------- inference
    def run_piece(self, x: np.ndarray) -> np.ndarray:
        """The model on one piece (already levelled), padded like an upstream input; same length out."""
        torch = _torch()
        n = x.size
        padded = np.zeros(upstream_padded_length(n), dtype=np.float32)
        padded[:n] = x
        out = self._model(torch.from_numpy(padded)[None])[0]
        return out[:n].double().numpy()

    def chunk_bounds(self, n: int) -> list[tuple[int, int]]:
        """``(start, end)`` of the chunks an ``n``-sample input is processed in (one when short).

        Starts are multiples of the hop; consecutive chunks overlap by at least :data:`OVERLAP_S`.
        """
        chunk = int(round(self.options["chunk_seconds"] * SAMPLE_RATE))
        return chunk_bounds(n, chunk, (chunk - int(round(OVERLAP_S * SAMPLE_RATE))) // HOP * HOP)

    @staticmethod
    def fade_in(overlap: int) -> np.ndarray:
        """Weight of the later chunk over an ``overlap``-sample region: 0 (warm-up), raised cosine, 1 (tail)."""
        fade, tail = int(round(FADE_S * SAMPLE_RATE)), int(round(TAIL_S * SAMPLE_RATE))
        return crossfade_weights(overlap, fade, tail)

    def enhance(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Enhance one mono waveform at 16 kHz.

        Returns:
            ``(enhanced, 16000)``, exactly as long as the input.

        Raises:
            ValueError: For another rate, or a non-mono or empty waveform.
        """
        x = mono_waveform(waveform, sample_rate, SAMPLE_RATE, "FRCRN")
        if self._model is None:
            self.setup()
        n = x.size
        gain, inverse = level_gains(x)
        if gain == 0.0:
            return np.zeros(n, dtype=np.float32), SAMPLE_RATE
        levelled = (x.astype(np.float64) * gain).astype(np.float32)
        torch = _torch()
        with torch.inference_mode():
            bounds = self.chunk_bounds(n)
            if len(bounds) == 1:
                out = self.run_piece(levelled)
            else:
                out = np.zeros(n)
                for i, (start, end) in enumerate(bounds):
                    weight = np.ones(end - start)
                    if i > 0:
                        ov = bounds[i - 1][1] - start
                        weight[:ov] = self.fade_in(ov)
                    if i + 1 < len(bounds):
                        ov = end - bounds[i + 1][0]
                        weight[-ov:] = 1.0 - self.fade_in(ov)
                    out[start:end] += weight * self.run_piece(levelled[start:end])
        return (out * inverse).astype(np.float32), SAMPLE_RATE
