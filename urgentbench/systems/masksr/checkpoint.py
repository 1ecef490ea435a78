"""Checkpoints in safetensors: model weights, optimizer state, step and config in one file.

Layout of a checkpoint file (all tensors saved exactly, so loading and saving again gives
the same bytes):

* ``model.<name>``: the MaskSR network's state dict;
* ``codec.<name>``: the codec's weights, only for a randomly initialised codec
  (``codec.pretrained: null``); the official DAC comes from its asset;
* ``optim.<param index>.<key>``: the optimizer's per-parameter tensors (AdamW ``exp_avg``,
  ``exp_avg_sq``, ``step``);
* one metadata entry, ``urgentbench``, holding canonical JSON (sorted keys) with
  ``format``, ``config`` (the :class:`~urgentbench.systems.masksr.configs.MaskSRConfig`),
  ``step``, ``optim`` (the optimizer's param groups and non-tensor state), ``scaler``
  (the fp16 loss scaler) and ``extra``. A single entry keeps the file bytes deterministic
  (safetensors writes several metadata entries in hash-map order).

A file without ``optim.*`` tensors (``save_checkpoint(..., optimizer=None)``) is an
inference checkpoint; training can still start from it but not resume its optimizer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from urgentbench.systems.masksr.configs import MaskSRConfig

FORMAT = "urgentbench-masksr/1"


class CheckpointError(ValueError):
    """A file that is not a readable MaskSR checkpoint; the message names the file."""


@dataclass
class Checkpoint:
    """The content of a checkpoint file."""

    config: MaskSRConfig
    step: int
    model: dict[str, torch.Tensor]
    codec: dict[str, torch.Tensor] = field(default_factory=dict)
    optimizer: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _optimizer_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict[str, Any]] = {}
    for idx, per_param in state["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                other.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "other": other}


def save_checkpoint(path: str | os.PathLike, config: MaskSRConfig, model: torch.nn.Module, step: int,
                    optimizer: torch.optim.Optimizer | None = None, codec: torch.nn.Module | None = None,
                    scaler: Any = None, extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temporary file, then rename).

    Args:
        path: Destination ``.safetensors`` file.
        config: The model's configuration.
        model: The MaskSR network (a DDP wrapper is unwrapped).
        step: Optimizer steps taken.
        optimizer: Its state is included when given.
        codec: The codec module; its weights are included only when ``config.codec.pretrained`` is None.
        scaler: A ``torch.amp.GradScaler`` whose state is included when given and enabled.
        extra: JSON-serialisable additions (e.g. the loss at this step).
    """
    from safetensors.torch import save_file

    net = getattr(model, "module", model)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    if codec is not None and config.codec.pretrained is None:
        inner = getattr(codec, "model", codec)
        tensors.update({f"codec.{k}": v.detach().cpu().contiguous() for k, v in inner.state_dict().items()})
    meta: dict[str, Any] = {"format": FORMAT, "config": config.to_dict(), "step": int(step), "extra": extra or {}}
    if optimizer is not None:
        opt_tensors, opt_meta = _optimizer_tensors(optimizer.state_dict())
        tensors.update(opt_tensors)
        meta["optim"] = opt_meta
    if scaler is not None and scaler.is_enabled():
        meta["scaler"] = scaler.state_dict()
    metadata = {"urgentbench": json.dumps(meta, sort_keys=True, separators=(",", ":"))}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.chmod(0o644)
    os.replace(tmp, path)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a checkpoint (reads only the header): format, config, step, optim, scaler, extra.

    Raises:
        CheckpointError: For a missing or unreadable file, or one of another format.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint does not exist")
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get("urgentbench", "{}")
        meta = json.loads(raw)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a safetensors file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a MaskSR checkpoint (format {meta.get('format')!r}, expected {FORMAT!r})")
    return meta


def has_codec_weights(path: str | os.PathLike) -> bool:
    """True when the checkpoint carries its own (random) codec, so no codec asset is needed."""
    meta = read_metadata(path)
    return meta["config"]["codec"]["pretrained"] is None


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint file.

    Raises:
        CheckpointError: For a missing, unreadable or foreign file, or a bad config inside.
    """
    from safetensors.torch import load_file

    meta = read_metadata(path)
    try:
        config = MaskSRConfig.from_dict(meta["config"], f"{path} (config)")
        tensors = load_file(str(path))
    except (ValueError, KeyError, OSError) as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    ckpt = Checkpoint(config=config, step=int(meta.get("step", 0)), model={}, extra=dict(meta.get("extra") or {}))
    opt_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        kind, _, name = key.partition(".")
        if kind == "model":
            ckpt.model[name] = value
        elif kind == "codec":
            ckpt.codec[name] = value
        elif kind == "optim":
            idx, _, field_name = name.partition(".")
            opt_state.setdefault(int(idx), {})[field_name] = value
        else:
            raise CheckpointError(f"{path}: unexpected tensor {key!r}")
    if "optim" in meta:
        opt_meta = meta["optim"]
        for idx, values in opt_meta["other"].items():
            opt_state.setdefault(int(idx), {}).update(values)
        ckpt.optimizer = {"state": dict(sorted(opt_state.items())), "param_groups": opt_meta["param_groups"]}
    if "scaler" in meta:
        ckpt.scaler = meta["scaler"]
    return ckpt


def checkpoint_files(folder: str | os.PathLike) -> list[Path]:
    """``step_*.safetensors`` in ``folder``, oldest first."""
    return sorted(Path(folder).glob("step_*.safetensors"))


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The newest ``step_*.safetensors`` in ``folder`` (None when there is none)."""
    files = checkpoint_files(folder)
    return files[-1] if files else None
