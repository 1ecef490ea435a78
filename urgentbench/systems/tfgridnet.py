"""The URGENT 2024/2025 TF-GridNet baseline (``urgent2024-tfgridnet``): ESPnet's TF-GridNetV3, run natively.

The organisers' baseline is an ESPnet enhancement model (STFT encoder, TF-GridNetV3
separator, STFT decoder) trained with ``egs2/urgent24/enh1/conf/tuning/
train_enh_tfgridnet.yaml`` and published as ``wyz/tfgridnet_for_urgent24`` (asset
``urgent2024-tfgridnet``, :mod:`urgentbench.systems.tfgridnet_assets`); URGENT 2025's
rules name it again as an allowed pre-trained model. ESPnet itself is not used (its
release wants another torch): the network is urgentbench's own implementation with
ESPnet's parameter names (:mod:`urgentbench.systems.tfgridnet_net`), loading the
checkpoint with ``torch.load(weights_only=True)`` and ``strict=True``.

What the wrapper does, and why (ESPnet's ``SeparateSpeech.__call__`` as ``enh.sh`` runs
it, whose default inference arguments are ``--normalize_output_wav true``):

* **Rate.** The model is sampling-frequency independent: at rate ``fs`` the STFT window
  and hop are 256 and 128 samples scaled by ``fs / 8000`` (32 ms / 16 ms), and no
  weight depends on the number of bins. So the input is processed at its own rate
  (``native_rate_follows_input``; URGENT trained it at 8, 16, 22.05, 24, 32, 44.1 and
  48 kHz); a rate below 8 kHz or above 48 kHz is resampled to the nearer bound and back.
* **Scale.** The input is divided by its standard deviation (``normalize_variance_per_ch``
  of the config) and the output multiplied by it; then, by default
  (``normalize_output=true``, as ESPnet's inference), the output is scaled to a peak of
  0.9. ``normalize_output=false`` keeps the variance-restored scale. A silent input gives
  a silent output (ESPnet would divide by zero).
* **Length.** The inverse STFT is cut to the input's length, so the output has exactly
  the input's length and rate and is time-aligned. An input shorter than half a window
  (what the reflect-padded STFT accepts) is zero-padded for the network and cut back.
* **Long inputs** (more than ``chunk_seconds``, default 30 s; ESPnet processes the whole
  utterance, which this matches below that length) are cut into chunks overlapping by
  3 s, all scaled by the whole input's standard deviation. The network is bidirectional,
  so in each overlap the later chunk's first second and the earlier chunk's last second
  are discarded and a 1 s raised-cosine crossfade joins them; the weights sum to one, so
  there is no seam. The peak normalisation is applied once, to the joined output.
  Memory grows with the chunk: about 0.12 GB per second of input at 16 kHz, 0.36 GB at
  48 kHz (the BLSTMs' activations over all frames and bins).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from urgentbench.errors import one_line
from urgentbench.systems.base import System, mono_waveform
from urgentbench.systems.chunking import chunk_bounds, crossfade_weights

logger = logging.getLogger(__name__)

#: The rates URGENT 2024 trained the model on span this range; others are resampled into it.
MIN_RATE, MAX_RATE = 8_000, 48_000
#: Overlap of consecutive chunks: warm-up of the later chunk (discarded), crossfade, tail of
#: the earlier one (discarded), in seconds.
WARMUP_S = 1.0
FADE_S = 1.0
TAIL_S = 1.0
#: Peak of the output with ``normalize_output`` (ESPnet's ``normalize_output_wav``).
PEAK = 0.9


def _torch():
    import torch

    return torch


def read_checkpoint(path: str | Path, config: str | Path | None = None):
    """Build the network from an ESPnet TF-GridNetV3 checkpoint and (optionally) its ``config.yaml``.

    Args:
        path: The ``.pth`` file: an ESPnet enhancement-model state dict (``separator.*``
            entries) or a bare separator state dict.
        config: The training ``config.yaml``; None takes the URGENT 2024 baseline's.

    Returns:
        The network in eval mode (its ``cfg`` holds the configuration).

    Raises:
        ValueError: For an unreadable file, a configuration this implementation does not
            run, or weights that do not fit it (names and shapes are checked strictly).
    """
    import yaml

    from urgentbench.systems.tfgridnet_net import (
        TFGridNetConfig,
        TFGridNetV3,
        config_from_espnet,
        separator_state,
        state_mismatch,
    )

    torch = _torch()
    if config is None:
        cfg = TFGridNetConfig()
    else:
        try:
            parsed = yaml.safe_load(Path(config).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{config}: cannot read the ESPnet config ({exc})") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"{config}: not an ESPnet config (no mapping at the top)")
        cfg = config_from_espnet(parsed, str(config))
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable checkpoint ({one_line(exc)})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    model = TFGridNetV3(cfg)
    weights = separator_state(state, str(path))
    problem = state_mismatch(model, weights)
    if problem:
        raise ValueError(f"{path}: weights do not fit the configuration ({problem})")
    model.load_state_dict(weights, strict=True)
    return model.eval()


class TFGridNetSystem(System):
    """The URGENT 2024 TF-GridNetV3 baseline, at the input's own rate.

    Options:
        checkpoint: A local ESPnet TF-GridNetV3 ``.pth`` used instead of the asset; its
            ``config.yaml`` is the ``config`` option, else a ``config.yaml`` beside it,
            else the official configuration. Its sha256 is recorded in the provenance.
        config: The ``config.yaml`` of ``checkpoint``.
        normalize_output: Scale the output to a peak of 0.9 as ESPnet's inference does
            (default true).
        chunk_seconds: Inputs longer than this are processed in overlapping chunks
            (default 30; at least 6).
        threads: torch CPU threads (default ``$URGENTBENCH_THREADS``, else torch's default).
    """

    native_rate_follows_input: ClassVar[bool] = True

    def __init__(self, **options: Any):
        """Check the options.

        Raises:
            ValueError: For an unknown option or a bad value.
        """
        super().__init__(**options)
        chunk, least = self.options["chunk_seconds"], 2 * (WARMUP_S + FADE_S + TAIL_S)
        if isinstance(chunk, bool) or not isinstance(chunk, (int, float)) or chunk < least:
            raise ValueError(f"chunk_seconds must be a number >= {least:g}, got {chunk!r}")
        if not isinstance(self.options["normalize_output"], bool):
            raise ValueError(f"normalize_output must be true or false, got {self.options['normalize_output']!r}")
        if self.options["config"] and not self.options["checkpoint"]:
            raise ValueError("config is the config.yaml of a checkpoint: give checkpoint=PATH too")
        self._model: Any = None
        self._info: dict[str, Any] = {}

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``checkpoint``/``config``: None (the asset), ``normalize_output``: true, ``chunk_seconds``: 30, ``threads``: None."""
        return {"checkpoint": None, "config": None, "normalize_output": True, "chunk_seconds": 30.0, "threads": None}

    def needed_assets(self) -> list[str]:
        """No asset when a local ``checkpoint`` is given, else the official checkpoint."""
        from urgentbench.systems.tfgridnet_assets import ASSET

        return [] if self.options["checkpoint"] else [ASSET]

    # ----------------------------------------------------------------- loading
    def setup(self) -> None:
        """Verify and load the weights (asset or ``checkpoint``) and set the thread count.

        Raises:
            AssetError: When the asset is missing or corrupt (with the fix commands).
            ValueError: When a file is missing or not a usable TF-GridNetV3 checkpoint
                (with what to do about it).
        """
        from urgentbench.assets import get_asset
        from urgentbench.hashing import sha256_file
        from urgentbench.metrics._threads import resolve_threads
        from urgentbench.systems.tfgridnet_assets import ASSET, CHECKPOINT, CONFIG

        threads = resolve_threads(self.options["threads"])
        if threads:
            _torch().set_num_threads(threads)
        asset = get_asset(ASSET)
        if self.options["checkpoint"]:
            path = Path(self.options["checkpoint"]).expanduser()
            if not path.is_file():
                raise ValueError(
                    f"checkpoint {path} does not exist; give an ESPnet TF-GridNetV3 .pth, or leave out "
                    f"checkpoint= to use the official weights (urgentbench assets fetch {ASSET})"
                )
            config = Path(self.options["config"]).expanduser() if self.options["config"] else path.parent / CONFIG
            if not config.is_file():
                if self.options["config"]:
                    raise ValueError(f"config {config} does not exist")
                config = None
                logger.info("no config.yaml beside %s: using the URGENT 2024 baseline configuration", path)
            digest = sha256_file(path)
            recorded = asset.recorded_pins().get(CHECKPOINT, {}).get("sha256")
            official = (digest == recorded) if recorded else None
            source, fix = "checkpoint", f"or leave out checkpoint= to use the official weights (asset {ASSET})"
        else:
            folder = asset.path()  # sha256-verified against the digests recorded at install
            path, config = folder / CHECKPOINT, folder / CONFIG
            digest, official, source = asset.recorded_pins(folder)[CHECKPOINT]["sha256"], True, "asset"
            fix = f"fix: urgentbench assets fetch {ASSET} --force, or urgentbench assets add {ASSET} --from DIR"
        try:
            model = read_checkpoint(path, config)
        except ValueError as exc:
            raise ValueError(f"{exc}; {fix}") from None
        self._info = {
            "source": source,
            "file": str(path) if source == "checkpoint" else CHECKPOINT,
            "config": str(config) if config is not None else "built-in (URGENT 2024 baseline)",
            "sha256": digest,
            "official": official,
        }
        self.use_model(model)
        logger.debug("TF-GridNet %s loaded from %s (sha256 %s)", self.card.name, path, digest[:16])

    def use_model(self, model: Any) -> None:
        """Run an already built :class:`~urgentbench.systems.tfgridnet_net.TFGridNetV3` (tests pass random ones)."""
        from urgentbench.systems.tfgridnet_net import parameter_count

        if model.cfg.n_srcs != 1:
            raise ValueError(f"an enhancement model with one output is needed, got n_srcs={model.cfg.n_srcs}")
        self._model = model.eval()
        self._info.setdefault("source", "in-memory model")
        self._info["model_config"] = model.cfg.to_dict()
        self._info["parameters"] = parameter_count(model)

    def provenance(self) -> dict[str, Any]:
        """Card, options, package versions, the checkpoint's sha256 and source, the configuration."""
        from urgentbench.assets import get_asset
        from urgentbench.systems.tfgridnet_assets import ASSET

        prov = super().provenance()
        prov["asset"] = get_asset(ASSET).provenance()
        prov["weights"] = dict(self._info)
        return prov

    # ----------------------------------------------------------------- inference
    def _forward(self, x: Any, fs: int) -> Any:
        """Network on a 1-D float32 tensor (already variance-normalised) at rate ``fs``; same length out."""
        from urgentbench.systems.tfgridnet_net import istft, min_length, stft

        torch = _torch()
        cfg = self._model.cfg
        n = x.shape[-1]
        padded = torch.nn.functional.pad(x, (0, max(0, min_length(cfg, fs) - n)))
        spec = self._model(stft(padded[None], cfg, fs))[:, 0]
        return istft(spec, cfg, fs, padded.shape[-1])[0, :n]

    def chunk_bounds(self, n: int, fs: int) -> list[tuple[int, int]]:
        """``(start, end)`` of the chunks an ``n``-sample input at ``fs`` is processed in (one when short)."""
        chunk = int(round(self.options["chunk_seconds"] * fs))
        overlap = sum(int(round(s * fs)) for s in (WARMUP_S, FADE_S, TAIL_S))
        return chunk_bounds(n, chunk, chunk - overlap)

    @staticmethod
    def fade_in(fs: int) -> np.ndarray:
        """Weight of the later chunk over an overlap at ``fs``: 0 (warm-up), raised-cosine ramp, 1 (tail)."""
        warm, fade, tail = (int(round(s * fs)) for s in (WARMUP_S, FADE_S, TAIL_S))
        return crossfade_weights(warm + fade + tail, fade, tail)

    def enhance(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Enhance one mono waveform at its own rate.

        Returns:
            ``(enhanced, sample_rate)``, exactly as long as the input and time-aligned with it.

        Raises:
            ValueError: For a non-mono or empty waveform.
        """
        x = mono_waveform(waveform, sample_rate, None, "TF-GridNet")
        rate = min(max(sample_rate, MIN_RATE), MAX_RATE)
        if rate != sample_rate:
            from urgentbench.audio import fit_length, resample

            y, _ = self.enhance(resample(x, sample_rate, rate), rate)
            return fit_length(resample(y, rate, sample_rate), x.size).astype(np.float32), sample_rate
        if self._model is None:
            self.setup()
        torch = _torch()
        with torch.inference_mode():
            xt = torch.from_numpy(x.copy())
            std = xt.std() if (self._model.cfg.normalize_variance and x.size > 1) else torch.ones(())
            if not float(std) > 0:  # silent input: ESPnet would divide by zero
                return np.zeros_like(x), sample_rate
            xt = xt / std
            bounds = self.chunk_bounds(x.size, sample_rate)
            if len(bounds) == 1:
                out = self._forward(xt, sample_rate)
            else:
                joined = np.zeros(x.size)
                fade_in = self.fade_in(sample_rate)
                for i, (start, end) in enumerate(bounds):
                    weight = np.ones(end - start)
                    if i > 0:
                        ov = bounds[i - 1][1] - start
                        weight[:ov] = fade_in[:ov]
                    if i + 1 < len(bounds):
                        ov = end - bounds[i + 1][0]
                        weight[-ov:] = 1.0 - fade_in[:ov]
                    joined[start:end] += weight * self._forward(xt[start:end], sample_rate).double().numpy()
                out = torch.from_numpy(joined.astype(np.float32))
            out = out * std
            if self.options["normalize_output"]:
                peak = out.abs().max()
                if float(peak) > 0:
                    out = out / peak * PEAK
        return out.numpy().astype(np.float32, copy=False), sample_rate
