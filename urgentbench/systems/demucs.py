"""DEMUCS speech denoiser (facebookresearch/denoiser): the shared wrapper of the ``demucs-*`` systems.

The three official causal 16 kHz models (``dns48``, ``dns64``, ``master64``) differ only in
their width and weights; each has a card (``urgentbench/systems/cards/demucs-dns48.yaml``
...) naming :class:`DemucsSystem` with ``args: {model: dns48}``. Only
``denoiser.demucs`` is imported (torch only), from denoiser 0.1.5's source archive (asset
``denoiser-0.1.5``, see :mod:`urgentbench.systems.demucs_assets`); ``denoiser.pretrained``,
``denoiser.enhance`` and ``denoiser.audio`` pull in torchaudio and are never used.

What the wrapper does, and why:

* **Weights.** The official files (``torch.hub.load_state_dict_from_url`` in
  ``denoiser/pretrained.py``) are plain state dicts for ``Demucs(hidden=H,
  sample_rate=16000)`` with every other argument at its default (causal, depth 5, kernel
  8, stride 4, resample 4, normalize). A local file may also be a package written by
  ``denoiser.utils.serialize_model`` (``{"class", "args", "kwargs", "state"}``) or a
  training checkpoint (``{"model": package, "best_state": state}``); all three are read
  with ``torch.load(weights_only=True)``, allowing only the ``Demucs`` class as a global.
* **Scaling.** With ``normalize=True`` (all official models) the model divides its input by
  ``floor + std(input)`` and multiplies its output by ``std``. Here that is done by the
  wrapper, once, with the std of the *whole* input (the model's own normalisation is
  switched off), so one-shot processing is numerically the model's own forward pass and
  chunks of a long input all use the same scale.
* **Length.** Each piece is zero-padded at the end to ``valid_length`` and the output cut
  back, so the output has exactly the input's length; the model is trained time-aligned,
  and nothing here shifts it (lag 0).
* **Long inputs** (more than ``chunk_seconds``, default 30 s) are cut into chunks that
  overlap by 2 s. In each overlap the later chunk's first second is discarded (its LSTM
  warms up from zero state), then a 0.75 s raised-cosine crossfade hands over from the
  earlier chunk, whose last 0.25 s (where its end padding acts) is discarded. The weights
  sum to one everywhere, so there is no seam.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from urgentbench.systems.base import System, mono_waveform
from urgentbench.systems.chunking import chunk_bounds, crossfade_weights

logger = logging.getLogger(__name__)

#: Native rate of every official DEMUCS denoiser model.
SAMPLE_RATE = 16_000
#: The official models: name -> width ``H`` (the weights are the asset ``demucs-<name>``).
MODELS = {"dns48": 48, "dns64": 64, "master64": 64}
#: Overlap of consecutive chunks, split into warm-up (discarded), crossfade and tail (discarded).
WARMUP_S = 1.0
FADE_S = 0.75
TAIL_S = 0.25


def _torch():
    import torch

    return torch


def read_checkpoint(path: str | Path, hidden: int | None = None):
    """Build a ``Demucs`` model from a checkpoint file (official state dict or a denoiser package).

    Args:
        path: The ``.th`` file.
        hidden: Width of the model for a plain state dict (the official files); a package
            carries its own constructor arguments.

    Returns:
        ``(model, kwargs)``: the model in eval mode and its constructor keyword arguments.

    Raises:
        ValueError: For a file that is not a DEMUCS checkpoint, or a model that is not a mono
            16 kHz denoiser.
    """
    torch = _torch()
    from urgentbench.systems.demucs_assets import DENOISER_PACKAGE

    DENOISER_PACKAGE.load()  # denoiser 0.1.5 from its pinned source archive (asset denoiser-0.1.5)
    from denoiser.demucs import Demucs

    try:
        with torch.serialization.safe_globals([Demucs]):
            pkg = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable DEMUCS checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(pkg, Mapping):
        raise ValueError(f"{path}: expected a state dict or a denoiser package, got {type(pkg).__name__}")
    if "model" in pkg and isinstance(pkg["model"], Mapping):  # training checkpoint
        package = dict(pkg["model"])
        if "best_state" in pkg:
            package["state"] = pkg["best_state"]
        pkg = package
    if "state" in pkg and "kwargs" in pkg:  # denoiser.utils.serialize_model
        if pkg.get("class", Demucs) is not Demucs:
            raise ValueError(f"{path}: the package holds a {pkg.get('class')!r}, not a Demucs model")
        args, kwargs, state = tuple(pkg.get("args") or ()), dict(pkg["kwargs"]), pkg["state"]
        if args:
            raise ValueError(f"{path}: positional constructor arguments are not supported ({args!r})")
    elif all(isinstance(v, torch.Tensor) for v in pkg.values()):  # plain state dict (official files)
        if hidden is None:
            raise ValueError(f"{path}: a plain state dict needs the model width (hidden)")
        kwargs, state = {"hidden": hidden, "sample_rate": SAMPLE_RATE}, pkg
    else:
        raise ValueError(f"{path}: neither a Demucs state dict nor a denoiser package (keys {sorted(pkg)[:6]})")
    kwargs.setdefault("sample_rate", SAMPLE_RATE)
    model = Demucs(**kwargs)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit Demucs({kwargs}): {exc}") from exc
    check_model(model, str(path))
    return model.eval(), kwargs


def check_model(model: Any, label: str) -> None:
    """Reject a model this wrapper cannot run (not mono in and out, or not 16 kHz).

    Raises:
        ValueError: With what is wrong.
    """
    if model.chin != 1 or model.chout != 1:
        raise ValueError(f"{label}: a mono model is needed (chin={model.chin}, chout={model.chout})")
    if model.sample_rate != SAMPLE_RATE:
        raise ValueError(f"{label}: the model runs at {model.sample_rate} Hz, this wrapper at {SAMPLE_RATE} Hz")


class DemucsSystem(System):
    """A causal 16 kHz DEMUCS denoiser, one of the official models.

    Card argument:
        model: ``dns48``, ``dns64`` or ``master64`` (:data:`MODELS`): the width and the
            asset ``demucs-<model>`` holding the official weights.

    Options:
        checkpoint: Path of a local ``.th`` file used instead of the asset. A file named
            like the official one must match its sha256 prefix; any other file is taken as
            a custom model and its full sha256 is recorded in the provenance.
        chunk_seconds: Inputs longer than this are processed in overlapping chunks
            (default 30; at least 4).
        threads: torch CPU threads (default ``$URGENTBENCH_THREADS``, else torch's default).
    """

    card_arguments: ClassVar[tuple[str, ...]] = ("model",)

    def __init__(self, **options: Any):
        """Check the model and the options.

        Raises:
            ValueError: For an unknown model or option, or a bad value.
        """
        super().__init__(**options)
        model = self.args["model"]
        if model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
        #: Name of the asset holding the official weights.
        self.asset = f"demucs-{model}"
        #: Width ``H`` of the official model.
        self.hidden = MODELS[model]
        chunk, least = self.options["chunk_seconds"], 2 * (WARMUP_S + FADE_S + TAIL_S)
        if isinstance(chunk, bool) or not isinstance(chunk, (int, float)) or chunk < least:
            raise ValueError(f"chunk_seconds must be a number >= {least:g}, got {chunk!r}")
        self._model: Any = None
        self._info: dict[str, Any] = {}
        self._scale_input = True
        self._floor = 1e-3

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``checkpoint``: None (the asset), ``chunk_seconds``: 30, ``threads``: None."""
        return {"checkpoint": None, "chunk_seconds": 30.0, "threads": None}

    def needed_assets(self) -> list[str]:
        """No asset when a local ``checkpoint`` is given, else the model's official weights."""
        return [] if self.options["checkpoint"] else [self.asset]

    # ----------------------------------------------------------------- loading
    def _official_file(self):
        from urgentbench.assets import get_asset

        asset = get_asset(self.asset)
        return asset, asset.files[0]

    def setup(self) -> None:
        """Verify and load the weights (asset or ``checkpoint``) and set the thread count.

        Raises:
            AssetError: When the asset is missing or corrupt (with the fix commands).
            ValueError: When the checkpoint is not a usable DEMUCS model, or an
                official-named file does not match its sha256 prefix.
        """
        from urgentbench.hashing import sha256_file
        from urgentbench.metrics._threads import resolve_threads

        torch = _torch()
        threads = resolve_threads(self.options["threads"])
        if threads:
            torch.set_num_threads(threads)
        asset, pinned = self._official_file()
        if self.options["checkpoint"]:
            path = Path(self.options["checkpoint"]).expanduser()
            if not path.is_file():
                raise ValueError(f"checkpoint {path} does not exist")
            digest = sha256_file(path)
            official = pinned.matches(digest)
            if path.name == pinned.name and not official:
                raise ValueError(
                    f"checkpoint {path} is named like the official {asset.name} weights but its sha256 "
                    f"{digest} does not start with {pinned.sha256_prefix or pinned.sha256}"
                )
            source = "checkpoint"
        else:
            path = asset.path() / pinned.name  # verified against the sha256 prefix
            digest, official, source = sha256_file(path), True, "asset"
        model, kwargs = read_checkpoint(path, hidden=self.hidden)
        self._info = {
            "source": source,
            "file": str(path) if source == "checkpoint" else pinned.name,
            "sha256": digest,
            "official": official,
            "model_kwargs": {k: v for k, v in kwargs.items()},
        }
        self.use_model(model)
        logger.debug("DEMUCS %s loaded from %s (sha256 %s)", self.card.name, path, digest[:16])

    def use_model(self, model: Any) -> None:
        """Run an already built ``Demucs`` model (setup does this; tests pass random models).

        The model's own input normalisation is done by the wrapper over the whole input
        instead (see the module docstring); the model is switched to eval mode, not
        otherwise changed.
        """
        check_model(model, type(model).__name__)
        self._scale_input = bool(model.normalize)
        self._floor = float(model.floor)
        self._model = model.eval()
        self._info.setdefault("source", "in-memory model")
        self._info["parameters"] = int(sum(p.numel() for p in model.parameters()))

    def provenance(self) -> dict[str, Any]:
        """Card, options, package versions, the weights' full sha256 and source, the parameter count."""
        prov = super().provenance()
        asset, _ = self._official_file()
        prov["asset"] = asset.provenance()
        prov["weights"] = dict(self._info)
        from urgentbench.systems.demucs_assets import DENOISER_PACKAGE

        prov["code"] = DENOISER_PACKAGE.provenance()  # the pinned denoiser release the network comes from
        return prov

    # ----------------------------------------------------------------- inference
    def _forward(self, x: Any) -> Any:
        """Run the model on a 1-D tensor of any length (zero-padded to ``valid_length``, cut back)."""
        torch = _torch()
        n = x.shape[-1]
        padded = torch.nn.functional.pad(x, (0, self._model.valid_length(n) - n))
        normalize, self._model.normalize = self._model.normalize, False  # scaled by the caller
        try:
            return self._model(padded[None, None])[0, 0, :n]
        finally:
            self._model.normalize = normalize

    def chunk_bounds(self, n: int) -> list[tuple[int, int]]:
        """``(start, end)`` of the chunks an ``n``-sample input is processed in (one when short)."""
        chunk = int(round(self.options["chunk_seconds"] * SAMPLE_RATE))
        overlap = int(round((WARMUP_S + FADE_S + TAIL_S) * SAMPLE_RATE))
        return chunk_bounds(n, chunk, chunk - overlap)

    @staticmethod
    def _fade_in() -> np.ndarray:
        """Weight of the later chunk over an overlap: 0 (warm-up), raised-cosine ramp, 1 (tail)."""
        warm, fade, tail = (int(round(s * SAMPLE_RATE)) for s in (WARMUP_S, FADE_S, TAIL_S))
        return crossfade_weights(warm + fade + tail, fade, tail)

    def enhance(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Denoise one mono waveform at 16 kHz.

        Returns:
            ``(enhanced, 16000)``, exactly as long as the input and time-aligned with it.

        Raises:
            ValueError: For another rate or a non-mono or empty waveform.
        """
        x = mono_waveform(waveform, sample_rate, SAMPLE_RATE, "DEMUCS")
        if self._model is None:
            self.setup()
        torch = _torch()
        n = x.size
        with torch.inference_mode():
            xt = torch.from_numpy(x.copy())
            if self._scale_input:
                std = float(xt.std()) if n > 1 else 0.0  # unbiased, as the model's own
                xt = xt / (self._floor + std)
            else:
                std = 1.0
            bounds = self.chunk_bounds(n)
            if len(bounds) == 1:
                out = self._forward(xt).double().numpy()
            else:
                out = np.zeros(n)
                fade_in = self._fade_in()
                for i, (start, end) in enumerate(bounds):
                    y = self._forward(xt[start:end]).double().numpy()
                    weight = np.ones(end - start)
                    if i > 0:  # overlap with the previous chunk
                        ov = bounds[i - 1][1] - start
                        weight[:ov] = fade_in[:ov]
                    if i + 1 < len(bounds):
                        ov = end - bounds[i + 1][0]
                        weight[-ov:] = 1.0 - fade_in[:ov]
                    out[start:end] += weight * y
        return (out * std).astype(np.float32), SAMPLE_RATE
