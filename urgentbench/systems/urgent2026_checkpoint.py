"""Reading the URGENT 2026 baseline checkpoints (PyTorch Lightning files) without running their code.

Layout of the organisers' files (from the baseline's ``train_se.py``, ``d_model.py``,
``flow_model.py`` and ``inference.py``):

* ``state_dict``: the LightningModule's weights. The discriminative ``SEModel`` keeps its
  network as ``se_model`` (keys ``se_model.bsrnn.bsrnn.*``); the flow model ``FlowSEModel``
  as ``dnn`` (keys ``dnn.*``). Neither STFT nor loss holds weights.
* ``ema`` (flow model only): the ``torch_ema.ExponentialMovingAverage`` state,
  ``{"decay", "num_updates", "shadow_params", "collected_params"}``, whose
  ``shadow_params`` list follows ``FlowSEModel.parameters()``, i.e. the estimator's
  parameters in registration order. The official inference calls ``model.eval()``, which
  copies these EMA weights over the network's, so they are what it samples with; without
  an ``ema`` entry it warns and keeps the raw weights (so does :func:`flow_weights`).
* ``hyper_parameters``: ``{"cfg": Config}``, the training configuration as an instance of
  the baseline's own class ``baseline_code.config.Config``, plus Lightning's loop, optimizer
  and callback states.

Everything is read with ``torch.load(weights_only=True)``. Classes of the training code
that the restricted unpickler refuses (the ``Config``) are replaced by inert stand-ins
(:class:`StandIn`, which only keeps the pickled state), so no code from the file runs; the
``Config``'s attributes are then read as a dict.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Key prefix of the networks in the Lightning ``state_dict``.
BSRNN_PREFIX = "se_model."
FLOW_PREFIX = "dnn."
#: Settings of the flow model as its configuration file states them (conf/models/BSRNN_flowse.yaml),
#: used when a checkpoint carries no configuration.
FLOW_DEFAULTS = {
    "hop_length": 384,
    "spec_abs_exponent": 0.667,
    "spec_factor": 0.065,
    "sigma_max": 0.5,
    "t_eps": 0.03,
    "T_rev": 1.0,
}


class StandIn:
    """Inert placeholder for a class of the training code found in a checkpoint: keeps what was pickled."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def attributes(self) -> dict[str, Any]:
        """The pickled instance's attributes (its state when that is a dict)."""
        return dict(self.state) if isinstance(self.state, Mapping) else {}


def _stand_in(name: str) -> type:
    module, _, qualname = name.rpartition(".")
    return type(qualname.rpartition(".")[2] or "StandIn", (StandIn,), {"__module__": module, "__qualname__": qualname})


def load_file(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)``, with inert stand-ins for classes of the training code.

    Raises:
        ValueError: When the file is not a readable PyTorch checkpoint.
    """
    import torch

    path = str(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "not readable as is"
        first = exc
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"not a readable PyTorch checkpoint ({type(first).__name__}: {_short(first)})") from exc
    if not names:
        raise ValueError(f"not a readable PyTorch checkpoint ({type(first).__name__}: {_short(first)})") from first
    logger.debug("%s: reading with stand-ins for %s", path, ", ".join(names))
    try:
        with torch.serialization.safe_globals([_stand_in(n) for n in names]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"not a readable PyTorch checkpoint ({type(exc).__name__}: {_short(exc)})") from exc


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def _tensors(raw: Any, prefix: str) -> dict[str, Any]:
    """The entries of the checkpoint's state dict under ``prefix`` (prefix removed)."""
    import torch

    state = raw.get("state_dict") if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping) else raw
    if not isinstance(state, Mapping):
        return {}
    out = {k[len(prefix):]: v for k, v in state.items() if isinstance(k, str) and k.startswith(prefix)}
    return {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}


def training_config(raw: Any) -> dict[str, Any]:
    """The training configuration (``hyper_parameters["cfg"]``) as a dict; empty when absent."""
    hparams = raw.get("hyper_parameters") if isinstance(raw, Mapping) else None
    cfg = hparams.get("cfg") if isinstance(hparams, Mapping) else None
    if isinstance(cfg, StandIn):
        return cfg.attributes()
    if isinstance(cfg, Mapping):
        return dict(cfg)
    return dict(getattr(cfg, "__dict__", {}) or {})


def _layers(state: Mapping[str, Any], prefix: str) -> int:
    found = {int(m.group(1)) for k in state if (m := re.match(rf"{re.escape(prefix)}rnn_time\.(\d+)\.", k))}
    return max(found) + 1 if found else 0


def _band_widths(state: Mapping[str, Any], split: str) -> tuple[int, ...]:
    """Band widths in bins, from the shapes of the band split's norms (2 values per bin)."""
    widths: list[int] = []
    while (weight := state.get(f"{split}.norm.{len(widths)}.weight")) is not None:
        widths.append(int(weight.shape[0]) // 2)
    return tuple(widths)


def _load_strict(model: Any, state: Mapping[str, Any], label: str) -> None:
    try:
        model.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{label}: weights do not fit the network: {_short(exc)}") from exc


def read_bsrnn(raw: Any, label: str) -> tuple[Any, dict[str, Any]]:
    """The discriminative network with the weights of a loaded checkpoint.

    Accepts the official Lightning file (``state_dict`` with ``se_model.*`` keys) or a bare
    state dict of :class:`~urgentbench.systems.bsrnn_nets.BSRNNSE` (keys ``bsrnn.bsrnn.*``).

    Returns:
        ``(model, {"channels": N, "layers": L})``, the :class:`~urgentbench.systems.bsrnn_nets.BSRNNSE`
        in eval mode.

    Raises:
        ValueError: When it holds no BSRNN weights (a flow checkpoint says so), an unsupported
            layout, or weights that do not fit.
    """
    from urgentbench.systems.bsrnn_nets import BSRNNSE, SUBBANDS_481

    state = _tensors(raw, BSRNN_PREFIX) or _tensors(raw, "")
    key = "bsrnn.bsrnn.band_split.fc.0.weight"
    if key not in state:
        if _tensors(raw, FLOW_PREFIX):
            raise ValueError(f"{label}: this is a BSRNN-Flow checkpoint (keys dnn.*): use urgent2026-bsrnn-flow")
        raise ValueError(f"{label}: no BSRNN weights (expected keys se_model.bsrnn.bsrnn.*)")
    widths = _band_widths(state, "bsrnn.bsrnn.band_split")
    if widths != SUBBANDS_481:
        raise ValueError(f"{label}: band layout of {sum(widths)} bins in {len(widths)} bands is not the baseline's (481 in 34)")
    size = {"channels": int(state[key].shape[0]), "layers": _layers(state, "bsrnn.bsrnn.")}
    model = BSRNNSE(size["channels"], size["layers"])
    _load_strict(model, state, label)
    return model.eval(), size


def read_flow(raw: Any, label: str, ema: bool = True) -> tuple[Any, dict[str, Any]]:
    """The flow model with the weights of a loaded checkpoint (its EMA weights when present).

    Args:
        raw: The loaded checkpoint: the official Lightning file (``state_dict`` with ``dnn.*``
            keys, ``ema``, ``hyper_parameters``) or a bare state dict of
            :class:`~urgentbench.systems.bsrnn_flow.FlowBSRNN`.
        label: The file, for messages.
        ema: Use the EMA weights (what the official inference samples with).

    Returns:
        ``(model, settings)``: the :class:`~urgentbench.systems.bsrnn_flow.FlowSE` in eval
        mode; settings: ``channels``, ``layers``, :data:`FLOW_DEFAULTS`' keys (from the
        checkpoint's configuration where it has them) and ``ema`` (whether EMA weights are used).

    Raises:
        ValueError: When it holds no flow weights, an unsupported layout, or weights (EMA
            included) that do not fit.
    """
    import torch

    from urgentbench.systems.bsrnn_flow import FlowSE
    from urgentbench.systems.bsrnn_nets import SUBBANDS_769

    state = _tensors(raw, FLOW_PREFIX) or _tensors(raw, "")
    key = "band_split_x.fc.0.weight"
    if key not in state:
        if _tensors(raw, BSRNN_PREFIX) or "bsrnn.bsrnn.band_split.fc.0.weight" in state:
            raise ValueError(f"{label}: this is a discriminative BSRNN checkpoint: use urgent2026-bsrnn")
        raise ValueError(f"{label}: no BSRNN-Flow weights (expected keys dnn.band_split_x.*)")
    widths = _band_widths(state, "band_split_x")
    if widths != SUBBANDS_769:
        raise ValueError(f"{label}: band layout of {sum(widths)} bins in {len(widths)} bands is not the baseline's (769 in 48)")
    cfg = training_config(raw)
    settings: dict[str, Any] = {"channels": int(state[key].shape[0]), "layers": _layers(state, "")}
    for name, default in FLOW_DEFAULTS.items():
        settings[name] = type(default)(cfg.get(name, default))
    if cfg.get("n_fft", 1536) != 1536:
        raise ValueError(f"{label}: n_fft {cfg.get('n_fft')} does not fit the 769-bin band layout (1536)")
    if cfg.get("spec_transform_type", "exponent") != "exponent":
        raise ValueError(f"{label}: spec_transform_type {cfg.get('spec_transform_type')!r} is not supported")
    model = FlowSE(
        settings["channels"], settings["layers"], hop=settings["hop_length"], exponent=settings["spec_abs_exponent"],
        factor=settings["spec_factor"], sigma_max=settings["sigma_max"], t_eps=settings["t_eps"],
        t_start=settings["T_rev"],
    )
    entry = raw.get("ema") if isinstance(raw, Mapping) else None
    shadow = entry.get("shadow_params") if isinstance(entry, Mapping) else None
    settings["ema"] = bool(ema and shadow is not None)
    if ema and shadow is None and isinstance(raw, Mapping) and "state_dict" in raw:
        logger.warning("%s: no EMA weights in the checkpoint; sampling with the raw weights", label)
    if settings["ema"]:
        params = list(model.dnn.named_parameters())
        if len(shadow) != len(params):  # an older torch_ema kept trainable parameters only
            params = [(n, p) for n, p in params if p.requires_grad]
        if len(shadow) != len(params) or not all(isinstance(t, torch.Tensor) for t in shadow):
            raise ValueError(f"{label}: {len(shadow)} EMA tensors do not match the network's {len(params)} parameters")
        state = dict(state)
        for (name, param), tensor in zip(params, shadow):
            if tuple(tensor.shape) != tuple(param.shape):
                raise ValueError(
                    f"{label}: EMA tensor for {name} has shape {tuple(tensor.shape)}, expected {tuple(param.shape)}"
                )
            state[name] = tensor
    _load_strict(model.dnn, state, label)
    return model.eval(), settings
