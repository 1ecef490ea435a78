"""The frozen acoustic tokenizer: Descript Audio Codec (DAC) 44.1 kHz through ``transformers``.

DAC 44.1 kHz encodes ``L`` samples (a multiple of the 512-sample hop) into ``9 x L/512``
tokens from 9 residual codebooks of 1024 entries (86.13 frames per second) and decodes
them back to ``L`` samples. Here it is only ever used frozen (eval mode, no gradients):
to tokenize training targets and to turn generated tokens back into a waveform.

The official weights are the asset ``dac-44khz`` (the transformers port
``descript/dac_44khz``). A randomly initialised codec (tests, smoke runs) is built from a
``DacConfig`` and a seed; its weights are then stored in every checkpoint
(``codec.*`` tensors), so such a checkpoint is self-contained.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from urgentbench.systems.masksr.configs import CodecConfig

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'transformers>=5.0' 'safetensors>=0.4'"


def _transformers():
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"MaskSR needs transformers (DacModel, HubertModel); install with: {INSTALL_HINT}") from exc
    return transformers


class Codec(nn.Module):
    """A frozen DAC model with token-level ``encode`` / ``decode``.

    Args:
        model: A ``transformers.DacModel``.
        cfg: The codec part of the MaskSR config (checked against the model).

    Raises:
        ValueError: When the model's rate, hop or codebooks differ from ``cfg``.
    """

    def __init__(self, model: Any, cfg: CodecConfig):
        super().__init__()
        mc = model.config
        hop = int(torch.tensor(list(mc.downsampling_ratios)).prod())
        found = (int(mc.sampling_rate), hop, int(mc.n_codebooks), int(mc.codebook_size))
        wanted = (cfg.sample_rate, cfg.hop_length, cfg.n_codebooks, cfg.codebook_size)
        if found != wanted:
            raise ValueError(
                f"codec has (rate, hop, codebooks, entries) = {found}, the MaskSR config expects {wanted}"
            )
        self.cfg = cfg
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> Codec:
        """Always stays in eval mode (frozen)."""
        super().train(False)
        return self

    @classmethod
    def random(cls, cfg: CodecConfig) -> Codec:
        """A randomly initialised codec from ``cfg.dac`` (deterministic given ``cfg.seed``)."""
        tr = _transformers()
        dac_cfg = tr.DacConfig(
            sampling_rate=cfg.sample_rate, n_codebooks=cfg.n_codebooks, codebook_size=cfg.codebook_size,
            hop_length=cfg.hop_length, **cfg.dac,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = tr.DacModel(dac_cfg)
        return cls(model, cfg)

    @classmethod
    def from_pretrained(cls, folder: str | Path, cfg: CodecConfig) -> Codec:
        """Load the transformers-format DAC in ``folder`` (``config.json`` + weights)."""
        tr = _transformers()
        model = tr.DacModel.from_pretrained(str(folder), local_files_only=True)
        return cls(model, cfg)

    @classmethod
    def build(cls, cfg: CodecConfig, state: dict[str, torch.Tensor] | None = None) -> Codec:
        """The codec ``cfg`` describes: the pretrained asset, or a random one (then ``state`` if given).

        Raises:
            AssetError: When the pretrained asset is missing (with the fix commands).
        """
        if cfg.pretrained is None:
            codec = cls.random(cfg)
            if state:
                codec.model.load_state_dict(state, strict=True)
            return codec
        from urgentbench.assets import get_asset

        return cls.from_pretrained(get_asset(cfg.pretrained).path(), cfg)

    @property
    def hop(self) -> int:
        """Samples per token frame."""
        return self.cfg.hop_length

    def n_frames(self, n_samples: int) -> int:
        """Token frames of ``n_samples`` samples (``n_samples // hop``)."""
        return n_samples // self.hop

    @torch.no_grad()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` waveform (L a multiple of the hop) -> ``[B, 9, L // hop]`` int64 tokens.

        Raises:
            ValueError: When ``L`` is not a multiple of the hop.
        """
        if wave.shape[-1] % self.hop:
            raise ValueError(f"codec input length {wave.shape[-1]} is not a multiple of the hop {self.hop}")
        with torch.autocast(device_type=wave.device.type, enabled=False):
            out = self.model.encode(wave.float()[:, None, :], return_dict=True)
        return out.audio_codes[:, : self.cfg.n_codebooks].long()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``[B, 9, T]`` tokens -> ``[B, T * hop]`` waveform (float32)."""
        with torch.autocast(device_type=codes.device.type, enabled=False):
            wave = self.model.decode(audio_codes=codes.long(), return_dict=True).audio_values
        return wave.reshape(codes.shape[0], -1).float()
