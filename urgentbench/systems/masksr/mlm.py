"""The masked language model over the 9 parallel DAC codebooks.

Tokens form a ``9 x T`` grid. Each frame's input is the sum of its 9 token embeddings (one
table per codebook, each with an extra ``[MASK]`` entry, index ``codebook_size``) plus the
projected encoder embedding of the same frame; a bidirectional transformer then predicts
all 9 codebooks of every frame at once (parallel codebook modelling, which MaskSR found
better than hierarchical).

Training follows MaskGIT: per example ``r ~ U(0, 1)``, a fraction ``cos(pi r / 2)`` of the
grid positions (at least one) is masked uniformly at random, and the loss is the
cross-entropy on the masked positions only. For classifier-free guidance the encoder
embedding of 10 % of the examples is replaced by a learnt null embedding.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from urgentbench.systems.masksr.configs import MLMConfig
from urgentbench.systems.masksr.layers import Transformer


def cosine_mask(batch: int, n_codebooks: int, n_frames: int, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """MaskGIT's cosine schedule: a boolean mask ``[B, C, T]`` (True = masked).

    For each example ``r ~ U(0, 1)`` and ``ceil(cos(pi r / 2) * C * T)`` positions (at
    least 1) are chosen uniformly without replacement.
    """
    total = n_codebooks * n_frames
    r = torch.rand(batch, generator=generator, device=device)
    n_masked = torch.ceil(torch.cos(math.pi * r / 2) * total).clamp(1, total).long()
    scores = torch.rand(batch, total, generator=generator, device=device)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return (ranks < n_masked[:, None]).view(batch, n_codebooks, n_frames)


class MaskedCodecLM(nn.Module):
    """Bidirectional transformer over the token grid, conditioned frame by frame.

    Args:
        cfg: LM hyper-parameters.
        n_codebooks: Parallel codebooks (9).
        codebook_size: Entries per codebook (1024); the mask token is this index.
        cond_dim: Width of the conditioning (encoder) embeddings.
    """

    def __init__(self, cfg: MLMConfig, n_codebooks: int, codebook_size: int, cond_dim: int):
        super().__init__()
        self.cfg = cfg
        self.n_codebooks = n_codebooks
        self.codebook_size = codebook_size
        self.mask_id = codebook_size
        self.embed = nn.Embedding(n_codebooks * (codebook_size + 1), cfg.dim)
        self.register_buffer(
            "offsets", torch.arange(n_codebooks).view(1, n_codebooks, 1) * (codebook_size + 1), persistent=False
        )
        self.cond_proj = nn.Linear(cond_dim, cfg.dim)
        self.null_cond = nn.Parameter(torch.zeros(cond_dim))
        self.transformer = Transformer(cfg.dim, cfg.layers, cfg.heads, cfg.ff_mult, cfg.dropout)
        self.head = nn.Linear(cfg.dim, n_codebooks * codebook_size)
        nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, tokens: torch.Tensor, cond: torch.Tensor, null: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of every codebook at every frame.

        Args:
            tokens: ``[B, C, T]`` with ``mask_id`` at masked positions.
            cond: ``[B, T, cond_dim]`` encoder embeddings.
            null: Optional ``[B]`` booleans: use the null condition for these examples.

        Returns:
            ``[B, C, T, codebook_size]`` logits.
        """
        b, c, t = tokens.shape
        if null is not None:
            cond = torch.where(null.view(b, 1, 1), self.null_cond.to(cond.dtype).expand_as(cond), cond)
        x = self.embed(tokens + self.offsets).sum(dim=1) + self.cond_proj(cond)
        h = self.transformer(x)
        return self.head(h).view(b, t, c, self.codebook_size).permute(0, 2, 1, 3)

    def loss(self, codes: torch.Tensor, cond: torch.Tensor, generator: torch.Generator | None = None,
             null_prob: float | None = None) -> dict[str, torch.Tensor]:
        """Masked-token cross-entropy with the cosine schedule and the random null condition.

        Args:
            codes: ``[B, C, T]`` target tokens.
            cond: ``[B, T, cond_dim]`` encoder embeddings.
            generator: Random source of the masks (default: torch's global one).
            null_prob: Probability of the null condition (default: the config's, 0.1).

        Returns:
            ``loss`` (mean CE over masked positions), ``accuracy`` on them and ``masked`` fraction.
        """
        b, c, t = codes.shape
        mask = cosine_mask(b, c, t, generator=generator, device=codes.device)
        p = self.cfg.null_cond_prob if null_prob is None else null_prob
        null = torch.rand(b, generator=generator, device=codes.device) < p
        inputs = codes.masked_fill(mask, self.mask_id)
        logits = self(inputs, cond, null)
        sel = logits[mask].float()
        target = codes[mask]
        loss = F.cross_entropy(sel, target)
        with torch.no_grad():
            acc = (sel.argmax(-1) == target).float().mean()
        return {"loss": loss, "accuracy": acc, "masked": mask.float().mean()}
