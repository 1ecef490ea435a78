"""The emotion2vec encoder (a data2vec 2.0 audio model) for inference, with fairseq's module names.

urgentbench's own implementation of what ``extract_features(source, padding_mask=None)``
computes in emotion2vec's upstream model (``data2vec_multi`` with an ``AudioEncoder``,
the code that URGENT 2026's ``emo2vec_versa`` fork and FunASR both carry), so that the
fairseq checkpoint ``emotion2vec_base.pt`` loads into it unchanged. Only the path that
inference takes is built: no masking, no EMA teacher, no decoder (its keys are set aside
by the loader), no training-time dropout.

Signal path for one waveform ``(1, N)`` (already layer-normalised over its samples when
the checkpoint's task says ``normalize``):

1. ``modality_encoders.AUDIO.local_encoder``: the wav2vec 2.0 convolution stack (default
   ``[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2``, stride 320, receptive field
   400 samples), each layer a bias-free ``Conv1d``, a LayerNorm over channels and GELU
   (``extractor_mode: layer_norm``).
2. ``project_features``: LayerNorm (eps 1e-5) and a linear map to ``embed_dim``.
3. ``relative_positional_encoder``: ``conv_pos_depth`` grouped convolutions of kernel
   ``max(3, conv_pos_width // conv_pos_depth)`` (19 for 95 / 5), each followed by a
   LayerNorm without affine parameters and GELU; its output is added to its input.
4. ``num_extra_tokens`` learnt tokens are put in front of the frames.
5. ALiBi attention bias: per head ``-slope * |i - j|`` (the ALiBi slopes; for a head count
   that is not a power of two, those of the next lower power of two followed by every
   other slope of twice that count), times the learnt ``alibi_scale`` clamped at 0; the
   extra tokens get zero bias.
6. ``context_encoder``: LayerNorm (``norm_eps``), then ``prenet_depth`` post-LN blocks;
   then the ``depth`` post-LN ``blocks``. A block is ``x = norm1(x + attn(x))``,
   ``x = norm2(x + mlp(x))``; attention is ``softmax(q k^T / sqrt(d) + bias)`` (softmax
   in float32), the MLP ``fc2(gelu(fc1(x)))``.
7. The extra tokens are dropped: ``(1, frames, embed_dim)``.

Checkpoint options this implementation does not cover (``layer_norm_first``, a learnt
ALiBi bias matrix, the ``default`` extractor mode) are refused by
:meth:`Emotion2vecConfig.from_fairseq` rather than computed differently.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: The convolution stack of data2vec 2.0 / emotion2vec audio models (fairseq's default spec).
DEFAULT_FEATURE_SPEC = "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]"


def parse_feature_spec(spec: str) -> tuple[tuple[int, int, int], ...]:
    """The ``(channels, kernel, stride)`` layers of a fairseq ``feature_encoder_spec`` string.

    The spec is a Python expression made of lists of integer triples joined by ``+`` and
    repeated by ``* n``; it is evaluated on its syntax tree (no ``eval``).

    Raises:
        ValueError: For anything else in the string, or a layer that is not three positive integers.
    """

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Tuple):
            return tuple(value(e) for e in node.elts)
        if isinstance(node, ast.List):
            return [value(e) for e in node.elts]
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Add) and isinstance(left, list) and isinstance(right, list):
                return left + right
            if isinstance(node.op, ast.Mult) and isinstance(left, list) and isinstance(right, int):
                return left * right
        raise ValueError(f"unsupported feature_encoder_spec {spec!r}")

    try:
        layers = value(ast.parse(spec, mode="eval").body)
    except SyntaxError:
        raise ValueError(f"unsupported feature_encoder_spec {spec!r}") from None
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"feature_encoder_spec {spec!r} is not a non-empty list of layers")
    for layer in layers:
        if not (isinstance(layer, tuple) and len(layer) == 3 and all(isinstance(v, int) and v > 0 for v in layer)):
            raise ValueError(f"feature_encoder_spec {spec!r}: layer {layer!r} is not (channels, kernel, stride)")
    return tuple(layers)


@dataclass(frozen=True)
class Emotion2vecConfig:
    """The architecture of an emotion2vec checkpoint (defaults: the fork's dataclass defaults).

    A value missing from a checkpoint's configuration takes the default that fairseq would
    fill in from the upstream ``Data2VecMultiConfig`` / ``D2vAudioConfig``.
    """

    embed_dim: int = 768
    num_heads: int = 12
    depth: int = 8
    mlp_ratio: float = 4.0
    norm_eps: float = 1e-6
    norm_affine: bool = True
    prenet_depth: int = 4
    num_extra_tokens: int = 0
    use_alibi_encoder: bool = False
    alibi_scale: float = 1.0
    learned_alibi_scale_per_head: bool = False
    learned_alibi_scale_per_layer: bool = False
    num_alibi_heads: int = 12
    feature_layers: tuple[tuple[int, int, int], ...] = field(
        default_factory=lambda: parse_feature_spec(DEFAULT_FEATURE_SPEC)
    )
    conv_pos_width: int = 95
    conv_pos_groups: int = 16
    conv_pos_depth: int = 5
    conv_pos_pre_ln: bool = False
    #: The task's ``normalize``: layer-normalise each waveform over its samples first.
    normalize: bool = False

    @classmethod
    def from_fairseq(cls, cfg: Mapping[str, Any]) -> Emotion2vecConfig:
        """The architecture described by a fairseq checkpoint's ``cfg`` (``model`` and ``task`` sections).

        Raises:
            ValueError: For a missing ``model`` section or an option this implementation does not cover.
        """
        model = cfg.get("model") if isinstance(cfg, Mapping) else None
        if not isinstance(model, Mapping):
            raise ValueError("the checkpoint's cfg has no 'model' section")
        task = cfg.get("task") or {}
        audio = (model.get("modalities") or {}).get("audio") or {}
        if not isinstance(audio, Mapping):
            raise ValueError("the checkpoint's cfg.model.modalities.audio is not a mapping")
        if model.get("layer_norm_first", False):
            raise ValueError("layer_norm_first=True (pre-LN blocks) is not supported")
        if audio.get("extractor_mode", "layer_norm") != "layer_norm":
            raise ValueError(f"extractor_mode={audio.get('extractor_mode')!r} is not supported (only layer_norm)")
        if audio.get("learned_alibi", False):
            raise ValueError("learned_alibi=True (a learnt ALiBi bias matrix) is not supported")
        defaults = cls()
        num_heads = int(model.get("num_heads", defaults.num_heads))

        def get(section: Mapping[str, Any], key: str, fallback: Any) -> Any:
            found = section.get(key)
            return fallback if found is None else found

        return cls(
            embed_dim=int(get(model, "embed_dim", defaults.embed_dim)),
            num_heads=num_heads,
            depth=int(get(model, "depth", defaults.depth)),
            mlp_ratio=float(get(model, "mlp_ratio", defaults.mlp_ratio)),
            norm_eps=float(get(model, "norm_eps", defaults.norm_eps)),
            norm_affine=bool(get(model, "norm_affine", defaults.norm_affine)),
            prenet_depth=int(get(audio, "prenet_depth", defaults.prenet_depth)),
            num_extra_tokens=int(get(audio, "num_extra_tokens", defaults.num_extra_tokens)),
            use_alibi_encoder=bool(get(audio, "use_alibi_encoder", defaults.use_alibi_encoder)),
            alibi_scale=float(get(audio, "alibi_scale", defaults.alibi_scale)),
            learned_alibi_scale_per_head=bool(get(audio, "learned_alibi_scale_per_head", False)),
            learned_alibi_scale_per_layer=bool(get(audio, "learned_alibi_scale_per_layer", False)),
            num_alibi_heads=int(get(audio, "num_alibi_heads", num_heads)),
            feature_layers=parse_feature_spec(str(get(audio, "feature_encoder_spec", DEFAULT_FEATURE_SPEC))),
            conv_pos_width=int(get(audio, "conv_pos_width", defaults.conv_pos_width)),
            conv_pos_groups=int(get(audio, "conv_pos_groups", defaults.conv_pos_groups)),
            conv_pos_depth=int(get(audio, "conv_pos_depth", defaults.conv_pos_depth)),
            conv_pos_pre_ln=bool(get(audio, "conv_pos_pre_ln", defaults.conv_pos_pre_ln)),
            normalize=bool(get(task, "normalize", False)) if isinstance(task, Mapping) else False,
        )

    def min_samples(self) -> int:
        """Fewest input samples that give one frame (the convolution stack's receptive field)."""
        n = 1
        for _, kernel, stride in reversed(self.feature_layers):
            n = (n - 1) * stride + kernel
        return n

    def frames(self, samples: int) -> int:
        """Frames the convolution stack makes of ``samples`` input samples (0 when too short)."""
        n = samples
        for _, kernel, stride in self.feature_layers:
            if n < kernel:
                return 0
            n = (n - kernel) // stride + 1
        return n


def alibi_slopes(heads: int) -> list[float]:
    """The ALiBi slope of each head (geometric; non-powers of two interleave the next power's slopes)."""

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(heads).is_integer():
        return power_of_two(heads)
    lower = 2 ** math.floor(math.log2(heads))
    return power_of_two(lower) + alibi_slopes(2 * lower)[0::2][: heads - lower]


def alibi_bias(frames: int, heads: int, device: Any = None) -> Tensor:
    """The unscaled ALiBi bias ``(1, heads, frames, frames)``: ``-slope * |i - j|``, float32, on ``device``."""
    slopes = torch.tensor(alibi_slopes(heads), dtype=torch.float32, device=device)
    positions = torch.arange(frames, device=device)
    distance = -torch.abs(positions[None, :] - positions[:, None])
    return (slopes[:, None, None] * distance[None]).unsqueeze(0)


class _Transpose(nn.Module):
    """Swaps the last two axes (fairseq's ``TransposeLast``)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(-2, -1)


class _TrimOne(nn.Module):
    """Drops the last frame after an even-kernel 'same' convolution (fairseq's ``SamePad``)."""

    def __init__(self, kernel: int):
        super().__init__()
        self.remove = 1 if kernel % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, : -self.remove] if self.remove else x


class _ConvStack(nn.Module):
    """The waveform convolution stack; ``conv_layers.i`` = (Conv1d, -, (-, LayerNorm, -), GELU)."""

    def __init__(self, layers: tuple[tuple[int, int, int], ...]):
        super().__init__()
        blocks = []
        channels_in = 1
        for channels, kernel, stride in layers:
            norm = nn.Sequential(_Transpose(), nn.LayerNorm(channels), _Transpose())
            conv = nn.Conv1d(channels_in, channels, kernel, stride=stride, bias=False)
            blocks.append(nn.Sequential(conv, nn.Identity(), norm, nn.GELU()))
            channels_in = channels
        self.conv_layers = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> Tensor:
        x = x.unsqueeze(1)
        for block in self.conv_layers:
            x = block(x)
        return x


class _Attention(nn.Module):
    """Multi-head self-attention with one ``qkv`` projection and an additive bias on the first heads."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, bias: Tensor | None) -> Tensor:
        batch, length, dim = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = (q * self.scale) @ k.transpose(-2, -1)
        if bias is not None:
            scores = scores.type_as(bias)
            scores[:, : bias.size(1)] += bias
        weights = scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype)
        out = (weights @ v).transpose(1, 2).reshape(batch, length, dim)
        return self.proj(out)


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    """A post-LN transformer block (data2vec 2.0's ``AltBlock`` with ``layer_norm_first=False``)."""

    def __init__(self, cfg: Emotion2vecConfig):
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=cfg.norm_eps, elementwise_affine=cfg.norm_affine)
        self.attn = _Attention(dim, cfg.num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.norm_eps, elementwise_affine=cfg.norm_affine)
        self.mlp = _Mlp(dim, int(dim * cfg.mlp_ratio))

    def forward(self, x: Tensor, bias: Tensor | None) -> Tensor:
        x = self.norm1(x + self.attn(x, bias))
        return self.norm2(x + self.mlp(x))


class _Prenet(nn.Module):
    """``context_encoder``: a LayerNorm, then the modality's own blocks."""

    def __init__(self, cfg: Emotion2vecConfig):
        super().__init__()
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.prenet_depth))
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps, elementwise_affine=cfg.norm_affine)


def _positional_encoder(cfg: Emotion2vecConfig) -> nn.Module:
    dim, depth = cfg.embed_dim, cfg.conv_pos_depth
    kernel = max(3, cfg.conv_pos_width // depth)
    layers = [
        nn.Sequential(
            nn.Conv1d(dim, dim, kernel_size=kernel, padding=kernel // 2, groups=cfg.conv_pos_groups),
            _TrimOne(kernel),
            _Transpose(),
            nn.LayerNorm(dim, elementwise_affine=False),
            _Transpose(),
            nn.GELU(),
        )
        for _ in range(depth)
    ]
    encoder = nn.Sequential(_Transpose(), *layers, _Transpose())
    return nn.Sequential(nn.LayerNorm(dim), encoder) if cfg.conv_pos_pre_ln else encoder


class _AudioEncoder(nn.Module):
    """``modality_encoders.AUDIO``: convolutions, projection, positional convolutions, prenet."""

    def __init__(self, cfg: Emotion2vecConfig):
        super().__init__()
        self.local_encoder = _ConvStack(cfg.feature_layers)
        width = cfg.feature_layers[-1][0]
        self.project_features = nn.Sequential(_Transpose(), nn.LayerNorm(width), nn.Linear(width, cfg.embed_dim))
        self.relative_positional_encoder = _positional_encoder(cfg)
        self.context_encoder = _Prenet(cfg)
        self.extra_tokens = (
            nn.Parameter(torch.zeros(1, cfg.num_extra_tokens, cfg.embed_dim)) if cfg.num_extra_tokens > 0 else None
        )
        self.alibi_scale = None
        if cfg.use_alibi_encoder:
            layers = cfg.prenet_depth + cfg.depth if cfg.learned_alibi_scale_per_layer else 1
            heads = cfg.num_alibi_heads if cfg.learned_alibi_scale_per_head else 1
            self.alibi_scale = nn.Parameter(torch.full((layers, 1, heads, 1, 1), cfg.alibi_scale))


class Emotion2vec(nn.Module):
    """emotion2vec's encoder; :meth:`forward` is upstream's ``extract_features(...)["x"]``.

    Args:
        cfg: The architecture (:meth:`Emotion2vecConfig.from_fairseq` of a checkpoint).
    """

    def __init__(self, cfg: Emotion2vecConfig):
        super().__init__()
        self.cfg = cfg
        self.modality_encoders = nn.ModuleDict({"AUDIO": _AudioEncoder(cfg)})
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.depth))

    def _biases(self, frames: int) -> tuple[list[Tensor | None], list[Tensor | None]]:
        """The attention bias of every prenet block and every main block (None without ALiBi)."""
        cfg = self.cfg
        enc = self.modality_encoders["AUDIO"]
        if enc.alibi_scale is None:
            return [None] * cfg.prenet_depth, [None] * cfg.depth
        base = alibi_bias(frames, cfg.num_alibi_heads, enc.alibi_scale.device)
        scale = enc.alibi_scale.clamp_min(0)
        pad = (cfg.num_extra_tokens, 0, cfg.num_extra_tokens, 0)
        if scale.size(0) == 1:
            bias = F.pad(base * scale.squeeze(0), pad)
            return [bias] * cfg.prenet_depth, [bias] * cfg.depth
        padded = F.pad(base, pad)
        per_layer = [padded * scale[i] for i in range(scale.size(0))]
        return per_layer[: cfg.prenet_depth], per_layer[cfg.prenet_depth :]

    def forward(self, source: Tensor) -> Tensor:
        """Frame features ``(batch, frames, embed_dim)`` of waveforms ``(batch, samples)`` (no padding)."""
        enc = self.modality_encoders["AUDIO"]
        x = enc.project_features(enc.local_encoder(source))
        x = x + enc.relative_positional_encoder(x)
        prenet_bias, main_bias = self._biases(x.size(1))
        if enc.extra_tokens is not None:
            x = torch.cat([enc.extra_tokens.expand(x.size(0), -1, -1), x], dim=1)
        x = enc.context_encoder.norm(x)
        for block, bias in zip(enc.context_encoder.blocks, prenet_bias):
            x = block(x, bias)
        for block, bias in zip(self.blocks, main_bias):
            x = block(x, bias)
        return x[:, self.cfg.num_extra_tokens :]
