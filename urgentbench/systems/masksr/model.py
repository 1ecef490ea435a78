"""The MaskSR / MaskSR2 network: speech encoder + masked codec LM (+ MaskSR2's semantic head).

The codec and the HuBERT teacher are frozen and live outside this module (they are not
trained and the official ones are not stored in checkpoints).
"""

from __future__ import annotations

import torch
from torch import nn

from urgentbench.systems.masksr.configs import MaskSRConfig
from urgentbench.systems.masksr.encoder import SpeechEncoder
from urgentbench.systems.masksr.mlm import MaskedCodecLM
from urgentbench.systems.masksr.semantic import SemanticHead


class MaskSR(nn.Module):
    """MaskSR (``cfg.variant == "masksr"``) or MaskSR2 (with the semantic distillation head)."""

    def __init__(self, cfg: MaskSRConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.encoder = SpeechEncoder(cfg.encoder)
        self.lm = MaskedCodecLM(cfg.mlm, cfg.codec.n_codebooks, cfg.codec.codebook_size, cfg.encoder.dim)
        self.semantic = SemanticHead(cfg.encoder.dim, cfg.semantic) if cfg.semantic.enabled else None

    def condition(self, noisy: torch.Tensor) -> torch.Tensor:
        """Encoder embeddings ``[B, L // hop, dim]`` of the degraded waveform ``[B, L]``."""
        return self.encoder(noisy)

    def forward(self, noisy: torch.Tensor, codes: torch.Tensor, semantic_target: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Training losses.

        Args:
            noisy: ``[B, L]`` degraded 44.1 kHz waveform (L a multiple of the hop).
            codes: ``[B, 9, L // hop]`` codec tokens of the target.
            semantic_target: MaskSR2 only: aligned teacher targets (tokens ``[B, T]`` or
                features ``[B, T, D]``, see :meth:`SemanticHead.targets`).
            generator: Random source of masks and null conditions.

        Returns:
            ``loss`` (total), ``mlm_loss``, ``accuracy``, ``masked`` and, for MaskSR2,
            ``semantic_loss``.

        Raises:
            ValueError: For mismatched frame counts, or a missing/unexpected semantic target.
        """
        cond = self.encoder(noisy)
        if cond.shape[1] != codes.shape[-1]:
            raise ValueError(f"encoder gives {cond.shape[1]} frames but the target has {codes.shape[-1]} token frames")
        out = self.lm.loss(codes, cond, generator=generator)
        result = {"mlm_loss": out["loss"], "accuracy": out["accuracy"], "masked": out["masked"]}
        total = out["loss"]
        if self.semantic is not None:
            if semantic_target is None:
                raise ValueError("MaskSR2 training needs the semantic target")
            sem = self.semantic.loss(self.semantic(cond), semantic_target)
            result["semantic_loss"] = sem
            total = total + self.cfg.semantic.weight * sem
        elif semantic_target is not None:
            raise ValueError("MaskSR has no semantic head; do not pass a semantic target")
        result["loss"] = total
        return result
