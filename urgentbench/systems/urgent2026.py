"""The URGENT 2026 track-1 baselines as systems: ``urgent2026-bsrnn`` and ``urgent2026-bsrnn-flow``.

Networks: :mod:`urgentbench.systems.bsrnn_nets` (discriminative BSRNN) and
:mod:`urgentbench.systems.bsrnn_flow` (flow-matching BSRNN and its ODE sampler), urgentbench's
own implementations with the official parameter names. Checkpoints: the assets of
:mod:`urgentbench.systems.urgent2026_assets`, read by
:mod:`urgentbench.systems.urgent2026_checkpoint` (or a local file, ``--system-args
checkpoint=PATH``, in the same layout).

What the wrappers do, and why:

* **Rate.** Both models are sampling-rate independent (their STFT scales with the rate), and
  the official inference feeds each file at its own rate; so do these systems
  (``native_rate_follows_input``: the runner does not resample). Rates above 48 kHz, which
  the band layout does not cover, are resampled to 48 kHz and back; rates below 8 kHz are refused.
* **Output level.** The official ``inference.py`` writes ``0.9 * y / max|y|``; ``output_peak``
  (default 0.9) does the same over the whole output (``output_peak=none`` keeps the
  network's own level).
* **Flow sampling.** Euler with 15 steps from ``t = 1`` to ``t_eps = 0.03``, the official
  inference's defaults (``solver``, ``steps``); the prior noise is drawn from a generator
  seeded with ``seed`` for every input, so outputs are reproducible and independent of the
  order of inputs. A given seed reproduces the reference's own sampler under
  ``torch.manual_seed(seed)`` (same draw, same layout).
* **Length.** The STFTs are centred and the inverse is cut to the input's length, so the
  output has exactly the input's length and is time-aligned. Inputs no longer than half an
  STFT window (where reflect padding is undefined) are zero-padded to one window and cut back.
* **Long inputs** (more than ``chunk_seconds``, default 30 s; the official inference takes
  whole files, and both networks normalise over a whole input and run BLSTMs over it) are
  processed in chunks that start on STFT frame boundaries and overlap by 3 s: in each
  overlap the later chunk's first second and the earlier chunk's last second are discarded
  (bidirectional context building up at either edge) and a 1-s raised-cosine crossfade
  hands over in between; the weights sum to one, so there is no seam. The flow model's noise
  for a chunk is the matching frames of one draw for the whole input.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from urgentbench.systems.base import System, mono_waveform
from urgentbench.systems.chunking import chunk_bounds, crossfade_weights

logger = logging.getLogger(__name__)

#: Highest rate the band layout covers; higher rates are resampled to it.
MAX_RATE = 48_000
#: Lowest accepted rate.
MIN_RATE = 8_000
#: Overlap of consecutive chunks, split into warm-up (discarded), crossfade and tail (discarded).
WARMUP_S = 1.0
FADE_S = 1.0
TAIL_S = 1.0
OVERLAP_S = WARMUP_S + FADE_S + TAIL_S


def _torch():
    import torch

    return torch


def _number(value: Any, name: str, least: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < least:
        raise ValueError(f"{name} must be a number >= {least:g}, got {value!r}")
    return float(value)


class URGENT2026Baseline(System):
    """Shared wrapper of the two URGENT 2026 baselines (checkpoint, rate, chunking, output level).

    Options:
        checkpoint: Path of a local checkpoint in the official layout (a Lightning ``.ckpt``
            or a bare state dict) used instead of the asset; its sha256 is in the provenance.
        chunk_seconds: Inputs longer than this are processed in overlapping chunks (default
            30; at least 6).
        output_peak: Peak the output is scaled to, as the official inference does (default
            0.9); ``none`` keeps the network's level.
        threads: torch CPU threads (default ``$URGENTBENCH_THREADS``, else torch's default).
        device: ``cpu`` or ``cuda`` (default CUDA when available).
    """

    native_rate_follows_input: ClassVar[bool] = True
    #: Asset holding the official checkpoint, and its file.
    asset: ClassVar[str] = ""
    checkpoint_file: ClassVar[str] = ""
    #: Name in messages.
    label: ClassVar[str] = ""

    def __init__(self, **options: Any):
        """Check the options.

        Raises:
            ValueError: For an unknown option or a bad value (a missing checkpoint file included).
        """
        super().__init__(**options)
        o = self.options
        _number(o["chunk_seconds"], "chunk_seconds", 2 * OVERLAP_S)
        if o["output_peak"] is not None and _number(o["output_peak"], "output_peak", 0) <= 0:
            raise ValueError(f"output_peak must be > 0 or none, got {o['output_peak']!r}")
        if o["device"] not in (None, "cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {o['device']!r}")
        if o["checkpoint"] is not None and not Path(str(o["checkpoint"])).expanduser().is_file():
            raise ValueError(
                f"checkpoint {o['checkpoint']} does not exist (give the official {self.checkpoint_file}, or drop "
                f"checkpoint= to use the asset: urgentbench assets fetch {self.asset})"
            )
        self._model: Any = None
        self._device: Any = None
        self._info: dict[str, Any] = {}

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``checkpoint``: None (the asset), ``chunk_seconds``: 30, ``output_peak``: 0.9, ``threads``, ``device``."""
        return {"checkpoint": None, "chunk_seconds": 30.0, "output_peak": 0.9, "threads": None, "device": None}

    def needed_assets(self) -> list[str]:
        """No asset when a local ``checkpoint`` is given, else the official checkpoint."""
        return [] if self.options["checkpoint"] else [self.asset]

    # ----------------------------------------------------------------- loading
    def read(self, raw: Any, label: str) -> tuple[Any, dict[str, Any]]:
        """Build the network from a loaded checkpoint (subclasses)."""
        raise NotImplementedError

    def setup(self) -> None:
        """Verify and load the checkpoint (asset or ``checkpoint``); set threads and device.

        Raises:
            AssetError: When the asset is missing or corrupt (with the fix commands).
            ValueError: When the checkpoint is unreadable or not this model's (with the fix commands).
        """
        from urgentbench.assets import get_asset
        from urgentbench.hashing import sha256_file
        from urgentbench.metrics._threads import resolve_threads
        from urgentbench.systems.urgent2026_checkpoint import load_file

        torch = _torch()
        threads = resolve_threads(self.options["threads"])
        if threads:
            torch.set_num_threads(threads)
        asset = get_asset(self.asset)
        if self.options["checkpoint"]:
            path = Path(str(self.options["checkpoint"])).expanduser()
            source, fix = "checkpoint", f"give a checkpoint in the official layout, or use the asset: {asset.fix()}"
        else:
            path = asset.path() / self.checkpoint_file  # verified against the sha256 recorded at install
            source, fix = "asset", asset.repair_fix()
        label = f"{self.label} {source} {path}"
        try:
            raw = load_file(path)
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}; fix: {fix}") from exc
        try:
            model, settings = self.read(raw, label)
        except ValueError as exc:
            raise ValueError(f"{exc}; fix: {fix}") from exc
        self._info = {"source": source, "file": str(path) if source == "checkpoint" else path.name,
                      "sha256": sha256_file(path), **settings}
        self.use_model(model)
        logger.debug("%s loaded from %s", self.card.name, path)

    def use_model(self, model: Any) -> None:
        """Run an already built network (setup does this; tests pass random ones), in eval mode."""
        from urgentbench.systems.bsrnn_nets import parameter_count

        torch = _torch()
        device = self.options["device"] or ("cuda" if torch.cuda.is_available() else "cpu")
        self._device = torch.device(device)
        self._model = model.eval().to(self._device)
        self._info.setdefault("source", "in-memory model")
        self._info["parameters"] = parameter_count(model)
        self._info["device"] = device

    def provenance(self) -> dict[str, Any]:
        """Card, options, package versions, the checkpoint's source and sha256, the parameter count."""
        from urgentbench.assets import get_asset

        prov = super().provenance()
        prov["asset"] = get_asset(self.asset).provenance()
        prov["weights"] = dict(self._info)
        return prov

    # ----------------------------------------------------------------- inference
    def hop(self, sample_rate: int) -> int:
        """STFT hop at ``sample_rate`` (chunks start on multiples of it)."""
        raise NotImplementedError

    def window(self, sample_rate: int) -> int:
        """STFT window at ``sample_rate``."""
        raise NotImplementedError

    def run_piece(self, x: Any, sample_rate: int, start: int, total: int) -> Any:
        """Enhance one 1-D tensor piece that starts at sample ``start`` of a ``total``-sample input."""
        raise NotImplementedError

    def prepare(self, total: int, sample_rate: int) -> None:
        """Per-input state before the pieces run (the flow model's noise)."""

    def chunk_bounds(self, n: int, sample_rate: int) -> list[tuple[int, int]]:
        """``(start, end)`` of the chunks an ``n``-sample input is processed in (one when short).

        Starts are multiples of the STFT hop; consecutive chunks overlap by at least :data:`OVERLAP_S`.
        """
        chunk = int(round(self.options["chunk_seconds"] * sample_rate))
        hop = self.hop(sample_rate)
        return chunk_bounds(n, chunk, (chunk - int(round(OVERLAP_S * sample_rate))) // hop * hop)

    @staticmethod
    def fade_in(overlap: int, sample_rate: int) -> np.ndarray:
        """Weight of the later chunk over an ``overlap``-sample region: 0 (warm-up), raised cosine, 1 (tail)."""
        fade, tail = int(round(FADE_S * sample_rate)), int(round(TAIL_S * sample_rate))
        return crossfade_weights(overlap, fade, tail)

    def enhance(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Enhance one mono waveform at its own rate.

        Returns:
            ``(enhanced, sample_rate)``, exactly as long as the input.

        Raises:
            ValueError: For a rate below 8 kHz, or a non-mono or empty waveform.
        """
        from urgentbench.audio import fit_length, resample

        x = mono_waveform(waveform, sample_rate, None, self.label)
        if sample_rate < MIN_RATE:
            raise ValueError(f"{self.label} needs at least {MIN_RATE} Hz, got {sample_rate} Hz")
        if self._model is None:
            self.setup()
        rate = min(sample_rate, MAX_RATE)
        xr = resample(x, sample_rate, rate).astype(np.float32)
        total = xr.size
        if total <= self.window(rate) // 2:  # reflect padding needs more than half a window
            total = self.window(rate)
            xr = np.concatenate([xr, np.zeros(total - xr.size, dtype=np.float32)])
        torch = _torch()
        with torch.inference_mode():
            xt = torch.from_numpy(xr).to(self._device)
            self.prepare(total, rate)
            bounds = self.chunk_bounds(total, rate)
            out = np.zeros(total)
            for i, (start, end) in enumerate(bounds):
                y = self.run_piece(xt[start:end], rate, start, total).double().cpu().numpy()
                weight = np.ones(end - start)
                if i > 0:
                    ov = bounds[i - 1][1] - start
                    weight[:ov] = self.fade_in(ov, rate)
                if i + 1 < len(bounds):
                    ov = end - bounds[i + 1][0]
                    weight[-ov:] = 1.0 - self.fade_in(ov, rate)
                out[start:end] += weight * y
        out = fit_length(resample(out, rate, sample_rate), x.size) if rate != sample_rate else out[: x.size]
        peak = self.options["output_peak"]
        top = float(np.max(np.abs(out))) if out.size else 0.0
        if peak is not None and top > 0:
            out = out * (float(peak) / top)
        return out.astype(np.float32), sample_rate


class BSRNNSystem(URGENT2026Baseline):
    """The discriminative baseline (BSRNN, 196 channels, 6 layers), one pass per input."""

    asset = "urgent2026-bsrnn"
    checkpoint_file = "bsrnn.ckpt"
    label = "URGENT 2026 BSRNN"

    def read(self, raw: Any, label: str) -> tuple[Any, dict[str, Any]]:
        """The network of an official (or bare) discriminative checkpoint."""
        from urgentbench.systems.urgent2026_checkpoint import read_bsrnn

        return read_bsrnn(raw, label)

    def hop(self, sample_rate: int) -> int:
        """10 ms."""
        return 480 * sample_rate // MAX_RATE

    def window(self, sample_rate: int) -> int:
        """20 ms."""
        return 960 * sample_rate // MAX_RATE

    def run_piece(self, x: Any, sample_rate: int, start: int, total: int) -> Any:
        """One forward pass."""
        return self._model(x[None], sample_rate)[0]


class FlowBSRNNSystem(URGENT2026Baseline):
    """The generative baseline (flow matching with a BSRNN estimator, 384 channels, 6 layers).

    Options (besides :class:`URGENT2026Baseline`'s):
        solver: ``euler`` (official), ``midpoint`` or ``heun``.
        steps: Number of ODE time points (official: 15).
        seed: Seed of the prior noise, drawn afresh for every input (default 0).
        ema: Sample with the checkpoint's EMA weights, as the official inference does (default true).
    """

    asset = "urgent2026-bsrnn-flow"
    checkpoint_file = "flow_bsrnn.ckpt"
    label = "URGENT 2026 BSRNN-Flow"

    def __init__(self, **options: Any):
        """Check the options.

        Raises:
            ValueError: For an unknown option or a bad value.
        """
        super().__init__(**options)
        from urgentbench.validation import require_int

        o = self.options
        if o["solver"] not in ("euler", "midpoint", "heun"):
            raise ValueError(f"solver must be euler, midpoint or heun, got {o['solver']!r}")
        require_int(o["steps"], "steps", minimum=1)
        require_int(o["seed"], "seed", minimum=0)
        if not isinstance(o["ema"], bool):
            raise ValueError(f"ema must be true or false, got {o['ema']!r}")
        self._noise: Any = None

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """The shared options plus ``solver``: euler, ``steps``: 15, ``seed``: 0, ``ema``: true."""
        return {**super().default_options(), "solver": "euler", "steps": 15, "seed": 0, "ema": True}

    def read(self, raw: Any, label: str) -> tuple[Any, dict[str, Any]]:
        """The model of an official (or bare) flow checkpoint, with its EMA weights unless ``ema=false``."""
        from urgentbench.systems.urgent2026_checkpoint import read_flow

        return read_flow(raw, label, ema=self.options["ema"])

    def _sizes(self, sample_rate: int) -> tuple[int, int]:
        from urgentbench.systems.bsrnn_nets import scaled_sizes

        return scaled_sizes(self._model.n_fft, self._model.hop, sample_rate)

    def hop(self, sample_rate: int) -> int:
        """8 ms (the checkpoint's hop)."""
        return self._sizes(sample_rate)[1]

    def window(self, sample_rate: int) -> int:
        """32 ms."""
        return self._sizes(sample_rate)[0]

    def prepare(self, total: int, sample_rate: int) -> None:
        """Draw the prior noise for every frame of the whole input (seeded)."""
        from urgentbench.systems.bsrnn_flow import prior_noise

        torch = _torch()
        n_fft, hop = self._sizes(sample_rate)
        generator = torch.Generator(device=self._device).manual_seed(int(self.options["seed"]))
        self._noise = prior_noise(1 + total // hop, n_fft // 2 + 1, generator, self._device)

    def run_piece(self, x: Any, sample_rate: int, start: int, total: int) -> Any:
        """Sample with the frames of the prior noise that this piece covers."""
        hop = self._sizes(sample_rate)[1]
        first = start // hop
        frames = 1 + x.shape[-1] // hop
        noise = self._noise[..., first : first + frames]
        return self._model(x[None], sample_rate, noise, steps=int(self.options["steps"]),
                           solver=self.options["solver"])[0]
