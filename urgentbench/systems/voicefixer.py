"""VoiceFixer (Liu et al. 2021): general speech restoration at 44.1 kHz; the ``voicefixer`` system's wrapper.

The networks are :mod:`urgentbench.systems.voicefixer_nets` (a re-implementation of the
``voicefixer`` 0.1.3 model code with the official key names; that package downloads its
checkpoints when imported). The checkpoints are the asset ``voicefixer`` (Zenodo record
5600188): ``vf.ckpt`` (analysis stage) and ``model.ckpt-1490000_trimed.pt`` (vocoder).

What the wrapper does, and why:

* **Mode 0**, upstream's default (``VoiceFixer.restore(..., mode=0)``): every network in
  eval mode, no pre-filtering. Per piece of audio: magnitude STFT -> mel -> analysis
  network -> restored mel -> vocoder. The vocoder emits ``(frames + frames % 2 + 4) * 441``
  samples for ``frames = n // 441 + 1`` STFT frames; upstream's ``_trim_center`` then drops
  ``(emitted - n) // 2`` samples at the start and keeps ``n``. The wrapper keeps exactly
  that framing, so an input of up to ``chunk_seconds`` (30 s, upstream's segment length) gives
  upstream's output. (Upstream's peak normalisation applies only above 1.0, which the
  vocoder's tanh output never reaches.) Whether that crop leaves the trained model's output
  time-aligned with its input (lag 0) could not be measured without the weights; it is
  upstream's own choice and is kept.
* **Long inputs.** Upstream cuts inputs longer than 30 s into independent 30-s segments
  and concatenates them, which leaves seams (and re-centres each segment on its own). Here
  chunks of ``chunk_seconds`` overlap by at least :data:`OVERLAP_S` and start on multiples of
  64 STFT frames (28 224 samples), so STFT frames, the U-Net's pooling grid and the
  vocoder's frame-to-sample mapping of every chunk coincide with those of the whole input;
  every chunk is cropped with the whole input's offset. In each overlap the later chunk's
  first :data:`WARMUP_S` (5 s) are discarded (its recurrent and convolutional context is
  still building up), a raised-cosine crossfade of :data:`FADE_S` (1 s) hands over, and the
  earlier chunk's last :data:`TAIL_S` (5 s, where its end padding acts) are discarded. The
  weights sum to one, so the chunked output equals processing the whole input at once up to
  the context beyond 5 s (with random weights of the official structure: agreement to
  float precision, see tests/test_voicefixer.py); there are no seams.
* **Very short inputs** (up to 1024 samples, where the STFT's reflect padding is undefined
  and upstream fails) are zero-padded to 1025 samples and cut back.
* **Rates.** The runner resamples any input rate to 44.1 kHz once (soxr) and the output
  back; :meth:`VoiceFixerSystem.enhance` itself takes 44.1 kHz only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from urgentbench.systems.base import System, mono_waveform
from urgentbench.systems.chunking import chunk_bounds, crossfade_weights

logger = logging.getLogger(__name__)

SAMPLE_RATE = 44_100
HOP = 441
#: Chunks start on multiples of 64 frames (the U-Net's time grid): 28 224 samples, 0.64 s.
GRID = 64 * HOP
#: Shortest piece the STFT (reflect padding of 1024 samples) accepts.
MIN_SAMPLES = 1025
#: Overlap of consecutive chunks: warm-up (discarded), crossfade, tail (discarded).
#: Each discarded part (5 s) exceeds the vocoder's receptive field (about 4.7 s on each side:
#: residual stacks with dilations up to 3^7 after the first 7x upsampling).
WARMUP_S = 5.0
FADE_S = 1.0
TAIL_S = 5.0
OVERLAP_S = WARMUP_S + FADE_S + TAIL_S

ASSET = "voicefixer"
ANALYSIS_FILE = "vf.ckpt"
VOCODER_FILE = "model.ckpt-1490000_trimed.pt"

_ZENODO = "https://zenodo.org/records/5600188/files/"
_ZENODO_LEGACY = "https://zenodo.org/record/5600188/files/"


def _voicefixer_asset():
    from urgentbench.assets import Asset, AssetFile, DownloadSource

    # Zenodo publishes MD5s only (vf.ckpt 1f479dabb9fa5724de5e20f2164cbc7a,
    # model.ckpt-1490000_trimed.pt ac6de16561dd6042daf8bb3a806dc818, as quoted by third-party
    # inventories). The sha256 pins are those a third-party project recorded for its copies
    # of the Zenodo 5600188 files, which it states are byte-identical to the official ones.
    return Asset(
        name=ASSET,
        description="VoiceFixer analysis stage (vf.ckpt) and 44.1 kHz neural vocoder checkpoints",
        licence=(
            "CC-BY-4.0 (Zenodo record 5600188, Haohe Liu: attribution required); the voicefixer code "
            "is MIT"
        ),
        homepage="https://github.com/haoheliu/voicefixer",
        files=(
            # sizes as two independent third-party inventories of the same files record them
            AssetFile(ANALYSIS_FILE, "748411b70089cadf34a6c11054f95f3a454e614af562c23b13a82f6cb413109f", 489_307_071),
            AssetFile(VOCODER_FILE, "9410d0b528c10a251ae947bd299d1939b0b3247df680c81c4164e94f5d87dc45", 135_613_039),
        ),
        sources=(
            DownloadSource(
                urls={
                    ANALYSIS_FILE: (
                        f"{_ZENODO}{ANALYSIS_FILE}?download=1",
                        f"{_ZENODO_LEGACY}{ANALYSIS_FILE}?download=1",
                    ),
                    VOCODER_FILE: (
                        f"{_ZENODO}{VOCODER_FILE}?download=1",
                        f"{_ZENODO_LEGACY}{VOCODER_FILE}?download=1",
                        f"https://zenodo.org/record/5469951/files/{VOCODER_FILE}?download=1",
                    ),
                }
            ),
        ),
    )


#: The two official checkpoints.
VOICEFIXER_ASSET = _voicefixer_asset()
#: The assets of the VoiceFixer system (registered by :mod:`urgentbench.systems`).
ASSET_PINS = ((VOICEFIXER_ASSET, ()),)

#: Key prefixes of ``vf.ckpt`` that inference does not need (deterministic STFT kernels, a
#: copy of the vocoder, which upstream also takes from the vocoder checkpoint).
_IGNORED_ANALYSIS_PREFIXES = ("f_helper.", "vocoder.")


def _torch():
    import torch

    return torch


def crop_offset(n: int) -> int:
    """Samples that upstream's ``_trim_center`` drops before the output of an ``n``-sample piece."""
    frames = n // HOP + 1
    emitted = (frames + frames % 2 + 4) * HOP
    return (emitted - n) // 2


def _load(path: Path, trusted: bool) -> Any:
    """``torch.load`` with ``weights_only=True``; a file verified against the official pin may fall back."""
    torch = _torch()
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        if not trusted:
            raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
        logger.debug("%s: weights_only load failed (%s); official sha256, loading fully", path, exc)
        return torch.load(str(path), map_location="cpu", weights_only=False)


def analysis_state(raw: Any, label: str) -> dict[str, Any]:
    """The ``generator.*`` (and, when present, ``mel.fb``) entries of a ``vf.ckpt`` state dict.

    Upstream loads ``vf.ckpt`` into its whole restorer model and keeps the entries whose
    names exist there; the analysis stage needs ``generator.*`` and ``mel.fb``. STFT kernels
    (``f_helper.*``) and a vocoder copy (``vocoder.*``) are ignored.

    Raises:
        ValueError: When ``raw`` is not a state dict with ``generator.*`` entries.
    """
    torch = _torch()
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping):
        raise ValueError(f"{label}: expected a state dict, got {type(raw).__name__}")
    state = {k: v for k, v in raw.items() if k.startswith("generator.") or k == "mel.fb"}
    if not any(k.startswith("generator.") for k in state):
        raise ValueError(f"{label}: no 'generator.*' entries, not a VoiceFixer analysis checkpoint")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{label}: entries that are not tensors: {bad[:3]}")
    skipped = [k for k in raw if k not in state]
    unknown = [k for k in skipped if not k.startswith(_IGNORED_ANALYSIS_PREFIXES)]
    if unknown:
        logger.debug("%s: ignoring %d entries unused at inference (%s ...)", label, len(unknown), unknown[0])
    return state


def vocoder_state(raw: Any, label: str) -> dict[str, Any]:
    """The vocoder generator's state dict from ``model.ckpt-1490000_trimed.pt`` (its ``"generator"`` entry).

    Weight-normalised layers are stored as ``weight_g``/``weight_v``; a state dict saved from
    ``torch.nn.utils.parametrizations.weight_norm`` (``parametrizations.weight.original0/1``)
    is renamed to that form.

    Raises:
        ValueError: When ``raw`` holds no vocoder state dict.
    """
    torch = _torch()
    if isinstance(raw, Mapping) and isinstance(raw.get("generator"), Mapping):
        raw = raw["generator"]
    if not isinstance(raw, Mapping) or not any(str(k).startswith("condnet.") for k in raw):
        raise ValueError(f"{label}: no 'condnet.*' entries, not a VoiceFixer vocoder checkpoint")
    state = {}
    for key, value in raw.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{label}: entry {key!r} is not a tensor")
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        state[key] = value
    return state


def load_strict(module: Any, state: Mapping[str, Any], label: str) -> None:
    """``module.load_state_dict(state, strict=True)`` with a one-line error naming the file.

    Raises:
        ValueError: For missing, unexpected or mis-shaped entries.
    """
    try:
        module.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        raise ValueError(f"{label}: weights do not fit the VoiceFixer architecture: {first}") from exc


def read_checkpoints(analysis_path: str | Path, vocoder_path: str | Path, trusted: bool = False):
    """Build the analysis module and the vocoder from the two official checkpoint files.

    Args:
        analysis_path: ``vf.ckpt``.
        vocoder_path: ``model.ckpt-1490000_trimed.pt``.
        trusted: The files matched their official sha256; a file that ``weights_only``
            loading refuses may then be loaded fully.

    Returns:
        ``(analysis, vocoder)`` in eval mode.

    Raises:
        ValueError: For unreadable files or weights that do not fit (file named).
    """
    from urgentbench.systems.voicefixer_nets import AnalysisModule, Vocoder

    a_state = analysis_state(_load(Path(analysis_path), trusted), str(analysis_path))
    v_state = vocoder_state(_load(Path(vocoder_path), trusted), str(vocoder_path))
    analysis = AnalysisModule()
    if "mel.fb" not in a_state:  # computed, identical by construction
        a_state["mel.fb"] = analysis.mel.fb
    load_strict(analysis, a_state, str(analysis_path))
    vocoder = Vocoder()
    load_strict(vocoder, v_state, str(vocoder_path))
    return analysis.eval(), vocoder.eval()


class VoiceFixerSystem(System):
    """VoiceFixer, mode 0, at 44.1 kHz.

    Options:
        chunk_seconds: Inputs longer than this are processed in overlapping chunks
            (default 30, upstream's segment length; at least 23.28: two overlaps and the
            64-frame grid must fit in a chunk).
        threads: torch CPU threads (default ``$URGENTBENCH_THREADS``, else torch's default).
    """

    def __init__(self, **options: Any):
        """Check the options.

        Raises:
            ValueError: For an unknown option or a bad value.
        """
        super().__init__(**options)
        chunk = self.options["chunk_seconds"]
        least = 2 * (OVERLAP_S + GRID / SAMPLE_RATE)  # two overlaps and the grid rounding fit in a chunk
        if isinstance(chunk, bool) or not isinstance(chunk, (int, float)) or chunk < least:
            raise ValueError(f"chunk_seconds must be a number >= {least:g}, got {chunk!r}")
        self._analysis: Any = None
        self._vocoder: Any = None
        self._info: dict[str, Any] = {}

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``chunk_seconds``: 30, ``threads``: None."""
        return {"chunk_seconds": 30.0, "threads": None}

    # ----------------------------------------------------------------- loading
    def setup(self) -> None:
        """Verify and load both checkpoints from the asset and set the thread count.

        Raises:
            AssetError: When the asset is missing or corrupt (with the fix commands).
            ValueError: When a checkpoint does not fit the architecture.
        """
        from urgentbench.assets import get_asset
        from urgentbench.metrics._threads import resolve_threads

        threads = resolve_threads(self.options["threads"])
        if threads:
            _torch().set_num_threads(threads)
        asset = get_asset(ASSET)
        folder = asset.path()  # verified against the pinned sha256
        analysis, vocoder = read_checkpoints(folder / ANALYSIS_FILE, folder / VOCODER_FILE, trusted=True)
        self._info = {"source": "asset", "asset_sha256": asset.sha256}
        self.use_models(analysis, vocoder)

    def use_models(self, analysis: Any, vocoder: Any) -> None:
        """Run already built networks (setup does this; tests pass random ones); both go to eval mode."""
        from urgentbench.systems.voicefixer_nets import parameter_count

        self._analysis = analysis.eval()
        self._vocoder = vocoder.eval()
        self._info.setdefault("source", "in-memory models")
        self._info["parameters"] = {
            "analysis": parameter_count(analysis.generator),
            "vocoder": parameter_count(vocoder),
        }

    def provenance(self) -> dict[str, Any]:
        """Card, options, package versions, the asset's digests and the parameter counts."""
        from urgentbench.assets import get_asset

        prov = super().provenance()
        prov["asset"] = get_asset(ASSET).provenance()
        prov["weights"] = dict(self._info)
        return prov

    # ----------------------------------------------------------------- inference
    def _raw(self, piece: Any) -> Any:
        """Vocoder output (1-D tensor, from the piece's first sample) for a piece of at least 1025 samples."""
        return self._vocoder(self._analysis(piece[None]))[0]

    def chunk_bounds(self, n: int) -> list[tuple[int, int]]:
        """``(start, end)`` of the chunks an ``n``-sample input is processed in (one when short).

        Starts are multiples of :data:`GRID`; consecutive chunks overlap by at least
        :data:`OVERLAP_S`.
        """
        chunk = int(round(self.options["chunk_seconds"] * SAMPLE_RATE))
        return chunk_bounds(n, chunk, (chunk - int(round(OVERLAP_S * SAMPLE_RATE))) // GRID * GRID)

    @staticmethod
    def _fade_in(overlap: int) -> np.ndarray:
        """Weight of the later chunk over an ``overlap``-sample region: 0 (warm-up), raised cosine, 1."""
        fade, tail = int(round(FADE_S * SAMPLE_RATE)), int(round(TAIL_S * SAMPLE_RATE))
        return crossfade_weights(overlap, fade, tail)

    def enhance(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Restore one mono waveform at 44.1 kHz.

        Returns:
            ``(restored, 44100)``, exactly as long as the input.

        Raises:
            ValueError: For another rate, or a non-mono or empty waveform.
        """
        x = mono_waveform(waveform, sample_rate, SAMPLE_RATE, "VoiceFixer")
        if self._analysis is None:
            self.setup()
        torch = _torch()
        n = x.size
        if n < MIN_SAMPLES:
            x = np.concatenate([x, np.zeros(MIN_SAMPLES - n, dtype=np.float32)])
        total = x.size
        offset = crop_offset(total)
        with torch.inference_mode():
            xt = torch.from_numpy(x.copy())
            bounds = self.chunk_bounds(total)
            if len(bounds) == 1:
                out = self._raw(xt)[offset : offset + total].double().numpy()
            else:
                out = np.zeros(total)
                for i, (start, end) in enumerate(bounds):
                    y = self._raw(xt[start:end])[offset : offset + end - start].double().numpy()
                    weight = np.ones(end - start)
                    if i > 0:
                        ov = bounds[i - 1][1] - start
                        weight[:ov] = self._fade_in(ov)
                    if i + 1 < len(bounds):
                        ov = end - bounds[i + 1][0]
                        weight[-ov:] = 1.0 - self._fade_in(ov)
                    out[start:end] += weight * y
        return out[:n].astype(np.float32), SAMPLE_RATE
