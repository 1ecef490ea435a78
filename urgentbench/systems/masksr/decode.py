"""MaskGIT-style iterative parallel decoding with classifier-free guidance.

Starting from a fully masked ``9 x T`` grid (except optional known tokens, e.g. the overlap
with the previous chunk of a long file), each of ``steps`` iterations:

1. computes guided logits ``(1 + w) * l_cond - w * l_uncond`` (``w`` = ``guidance_scale``;
   ``l_uncond`` uses the learnt null condition; ``w = 0`` is plain conditional decoding);
2. samples a token for every masked position from ``softmax(logits / temperature)``
   (``temperature = 0``: argmax);
3. scores each sampled token by its log-probability plus Gumbel noise scaled by
   ``temperature * (1 - (s + 1) / steps)`` (MaskGIT's annealed "choice temperature");
4. keeps the most confident ones and re-masks the rest, so that after step ``s``
   ``floor(N * cos(pi / 2 * (s + 1) / steps))`` of the ``N`` initially masked positions
   remain masked (none after the last step).

Defaults (:class:`~urgentbench.systems.masksr.configs.DecodeConfig`): 20 steps,
temperature 1.0, guidance scale 1.0; none is known from the papers.
"""

from __future__ import annotations

import math

import torch

from urgentbench.systems.masksr.mlm import MaskedCodecLM


def guided_logits(lm: MaskedCodecLM, tokens: torch.Tensor, cond: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """``(1 + w) * l_cond - w * l_uncond`` for ``w = guidance_scale`` (one batched pass when ``w != 0``)."""
    if guidance_scale == 0:
        return lm(tokens, cond).float()
    b = tokens.shape[0]
    null = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(tokens.device)
    both = lm(torch.cat([tokens, tokens]), torch.cat([cond, cond]), null).float()
    cond_logits, uncond_logits = both[:b], both[b:]
    return (1.0 + guidance_scale) * cond_logits - guidance_scale * uncond_logits


def _gumbel(shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, device=device).clamp(1e-10, 1.0 - 1e-10)
    return -torch.log(-torch.log(u))


@torch.no_grad()
def maskgit_decode(
    lm: MaskedCodecLM,
    cond: torch.Tensor,
    steps: int = 20,
    temperature: float = 1.0,
    guidance_scale: float = 1.0,
    known: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Generate tokens ``[B, C, T]`` for conditioning ``cond`` ``[B, T, D]``.

    Args:
        lm: The masked codec LM.
        cond: Encoder embeddings.
        steps: Decoding iterations (>= 1).
        temperature: Sampling temperature (0 = greedy).
        guidance_scale: Classifier-free guidance weight ``w``.
        known: Optional ``[B, C, T]`` tokens with ``lm.mask_id`` where unknown; known tokens
            are kept as they are.
        generator: Random source (on ``cond``'s device) for reproducible sampling.

    Raises:
        ValueError: For ``steps < 1``, a negative temperature or a ``known`` of the wrong shape.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    b, t, _ = cond.shape
    c, mask_id = lm.n_codebooks, lm.mask_id
    shape = (b, c, t)
    if known is None:
        tokens = torch.full(shape, mask_id, dtype=torch.long, device=cond.device)
    else:
        if tuple(known.shape) != shape:
            raise ValueError(f"known tokens have shape {tuple(known.shape)}, expected {shape}")
        tokens = known.clone().long()
    masked = tokens == mask_id
    n_start = masked.view(b, -1).sum(1)  # per example
    for s in range(steps):
        if not masked.any():
            break
        logits = guided_logits(lm, tokens, cond, guidance_scale)
        logp = torch.log_softmax(logits, dim=-1)
        if temperature == 0:
            sampled = logits.argmax(-1)
        else:
            sampled = (logits / temperature + _gumbel(logits.shape, generator, logits.device)).argmax(-1)
        conf = logp.gather(-1, sampled[..., None]).squeeze(-1)
        anneal = temperature * (1.0 - (s + 1) / steps)
        if anneal > 0:
            conf = conf + anneal * _gumbel(conf.shape, generator, conf.device)
        filled = torch.where(masked, sampled, tokens)
        remain = torch.floor(n_start.double() * math.cos(math.pi / 2 * (s + 1) / steps)).long()
        if s == steps - 1:
            remain = torch.zeros_like(remain)
        conf = torch.where(masked, conf, torch.full_like(conf, math.inf)).view(b, -1)
        order = conf.argsort(dim=1)  # least confident first
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
        remask = (ranks < remain[:, None]).view(shape) & masked
        tokens = filled.masked_fill(remask, mask_id)
        masked = remask
    return tokens
