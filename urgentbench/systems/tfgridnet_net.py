"""TF-GridNetV3 (the URGENT 2024 baseline network) and its rate-independent STFT, urgentbench's own code.

The network follows the architecture ESPnet calls ``TFGridNetV3`` (separator
``tfgridnetv3`` of ``espnet2``, first released in ESPnet 202412): TF-GridNet blocks
(Wang et al., TASLP 2023) with the attention made independent of the number of
frequency bins, so that one set of weights runs at any sampling rate. Parameter names
and shapes are ESPnet's, so the state dict of the published checkpoint (its
``separator.*`` entries) loads with ``strict=True``; the arithmetic is the same sequence
of operations, so outputs agree with ESPnet's to float32 rounding (checked by
``tests/test_tfgridnet.py`` against ESPnet 202511's own modules).

Network, for a complex spectrogram ``[B, T, F]``:

* **input conv**: real and imaginary parts as two channels, a 3x3 Conv2d to ``emb_dim``
  channels and a one-group GroupNorm;
* ``n_layers`` **blocks**, each (on ``[B, C, T, F]`` padded by ``emb_ks - emb_hs`` on
  both sides of both axes):

  - *intra-frame* (sub-band) path: LayerNorm over channels, the frequency axis unfolded
    into windows of ``emb_ks`` bins (hop ``emb_hs``), a BLSTM along frequency, a
    ConvTranspose1d back to ``emb_dim`` channels, residual;
  - *inter-frame* path: the same along time;
  - *full-band self-attention* along time: per head, 1x1 convs give queries and keys of
    ``qk_output_channel`` channels and values of ``emb_dim / n_head`` channels, each
    followed by a PReLU and a LayerNorm over those channels (per time-frequency point,
    so no parameter depends on the number of bins); the attention matrix is over frames
    with the channels and all bins flattened into the feature axis; a 1x1 conv, PReLU
    and channel LayerNorm project the heads back, residual;
* **output deconv**: a 3x3 ConvTranspose2d to ``2 * n_srcs`` channels, read as the real
  and imaginary parts of each source's spectrogram.

STFT (ESPnet's ``stft`` encoder/decoder with ``default_fs``): at rate ``fs`` the window,
FFT size and hop are the configured ones scaled by ``fs // default_fs`` (integer
division of ``n * fs``, as ESPnet does), a periodic Hann window, centred frames with
reflect padding, one-sided, not normalised; the inverse is ``torch.istft`` cut to the
input length. With the official 256/128 at 8 kHz every rate has 32 ms windows and 16 ms
hops.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class TFGridNetConfig:
    """Hyper-parameters of a TF-GridNetV3 enhancement model (ESPnet ``separator_conf`` + STFT).

    The defaults are the URGENT 2024 baseline (``egs2/urgent24/enh1/conf/tuning/
    train_enh_tfgridnet.yaml`` of ESPnet, the ``config.yaml`` of the published model).
    """

    n_srcs: int = 1
    n_layers: int = 6
    lstm_hidden_units: int = 200
    attn_n_head: int = 4
    attn_qk_output_channel: int = 2
    emb_dim: int = 48
    emb_ks: int = 4
    emb_hs: int = 1
    eps: float = 1.0e-5
    #: STFT window/FFT length and hop in samples at ``default_fs``.
    n_fft: int = 256
    hop_length: int = 128
    default_fs: int = 8000
    #: Divide the input by its standard deviation before the network and multiply the
    #: output by it (ESPnet's ``normalize_variance_per_ch``/``normalize_variance``).
    normalize_variance: bool = True

    def __post_init__(self) -> None:
        for name in ("n_srcs", "n_layers", "lstm_hidden_units", "attn_n_head", "attn_qk_output_channel",
                     "emb_dim", "emb_ks", "emb_hs", "n_fft", "hop_length", "default_fs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.emb_dim % self.attn_n_head:
            raise ValueError(f"emb_dim ({self.emb_dim}) must be a multiple of attn_n_head ({self.attn_n_head})")
        if self.emb_hs > self.emb_ks:
            raise ValueError(f"emb_hs ({self.emb_hs}) must not exceed emb_ks ({self.emb_ks})")

    def stft_sizes(self, fs: int) -> tuple[int, int]:
        """``(n_fft, hop)`` in samples at rate ``fs`` (ESPnet's ``_reconfig_for_fs``)."""
        return self.n_fft * fs // self.default_fs, self.hop_length * fs // self.default_fs

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for provenance)."""
        return asdict(self)


class ChannelNorm(nn.Module):
    """LayerNorm over dimension 1 of a 4-D tensor, parameters ``gamma``/``beta`` of shape [1, C, 1, 1]."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each (batch, time, frequency) point over its channels."""
        mean = x.mean(dim=1, keepdim=True)
        std = torch.sqrt(x.var(dim=1, unbiased=False, keepdim=True) + self.eps)
        return (x - mean) / std * self.gamma + self.beta


class HeadNorm(nn.Module):
    """Per-head PReLU then LayerNorm over each head's channels (``[B, H*E, T, F]`` -> ``[B, H, E, T, F]``)."""

    def __init__(self, heads: int, channels: int, eps: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, heads, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, heads, channels, 1, 1))
        self.act = nn.PReLU(num_parameters=heads, init=0.25)
        self.heads, self.channels, self.eps = heads, channels, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Split the channels into heads, activate and normalise them."""
        b, _, t, f = x.shape
        x = self.act(x.view(b, self.heads, self.channels, t, f))
        mean = x.mean(dim=2, keepdim=True)
        std = torch.sqrt(x.var(dim=2, unbiased=False, keepdim=True) + self.eps)
        return (x - mean) / std * self.gamma + self.beta


class GridBlock(nn.Module):
    """One TF-GridNetV3 block: intra-frame BLSTM, inter-frame BLSTM, full-band self-attention."""

    def __init__(self, cfg: TFGridNetConfig):
        super().__init__()
        c, ks, hs, hidden = cfg.emb_dim, cfg.emb_ks, cfg.emb_hs, cfg.lstm_hidden_units
        heads, qk = cfg.attn_n_head, cfg.attn_qk_output_channel
        for path in ("intra", "inter"):
            setattr(self, f"{path}_norm", nn.LayerNorm(c, eps=cfg.eps))
            setattr(self, f"{path}_rnn", nn.LSTM(c * ks, hidden, 1, batch_first=True, bidirectional=True))
            linear = nn.Linear(2 * hidden, c * ks) if ks == hs else nn.ConvTranspose1d(2 * hidden, c, ks, stride=hs)
            setattr(self, f"{path}_linear", linear)
        self.attn_conv_Q = nn.Conv2d(c, heads * qk, 1)
        self.attn_norm_Q = HeadNorm(heads, qk, cfg.eps)
        self.attn_conv_K = nn.Conv2d(c, heads * qk, 1)
        self.attn_norm_K = HeadNorm(heads, qk, cfg.eps)
        self.attn_conv_V = nn.Conv2d(c, c, 1)
        self.attn_norm_V = HeadNorm(heads, c // heads, cfg.eps)
        self.attn_concat_proj = nn.Sequential(nn.Conv2d(c, c, 1), nn.PReLU(), ChannelNorm(c, cfg.eps))
        self.emb_ks, self.emb_hs, self.heads = ks, hs, heads

    def _along(self, x: torch.Tensor, norm: nn.Module, rnn: nn.LSTM, linear: nn.Module) -> torch.Tensor:
        """BLSTM over the second axis of ``x`` [N, L, K, C] for every (N, K), residual; same shape out."""
        n, length, k, c = x.shape
        ks, hs = self.emb_ks, self.emb_hs
        y = norm(x).transpose(1, 2).reshape(n * k, length, c)  # sequences along axis 1
        if ks == hs:
            y, _ = rnn(y.reshape(n * k, length // ks, ks * c))
            y = linear(y).reshape(n * k, length, c)
        else:
            windows = y.unfold(1, ks, hs)  # [NK, L', C, ks]: windows of ks steps, channel-major
            y, _ = rnn(windows.reshape(n * k, windows.shape[1], c * ks))
            y = linear(y.transpose(1, 2)).transpose(1, 2)  # [NK, L, C]
        return y.reshape(n, k, length, c).transpose(1, 2) + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, T, F]`` -> ``[B, C, T, F]``."""
        b, c, t0, f0 = x.shape
        ks, hs = self.emb_ks, self.emb_hs
        olp = ks - hs
        t = math.ceil((t0 + 2 * olp - ks) / hs) * hs + ks
        f = math.ceil((f0 + 2 * olp - ks) / hs) * hs + ks
        y = F.pad(x.permute(0, 2, 3, 1), (0, 0, olp, f - f0 - olp, olp, t - t0 - olp))  # [B, T, F, C]
        # intra-frame: sequences along frequency, one per (batch, frame)
        y = self._along(y.transpose(1, 2), self.intra_norm, self.intra_rnn, self.intra_linear).transpose(1, 2)
        # inter-frame: sequences along time, one per (batch, bin)
        y = self._along(y, self.inter_norm, self.inter_rnn, self.inter_linear)
        y = y.permute(0, 3, 1, 2)[..., olp : olp + t0, olp : olp + f0]  # [B, C, T, F]
        return self._attention(y) + y

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        """Full-band self-attention over frames (features: each head's channels x all bins)."""
        b, c, t, f = x.shape
        h = self.heads
        q = self.attn_norm_Q(self.attn_conv_Q(x))  # [B, H, E, T, F]
        k = self.attn_norm_K(self.attn_conv_K(x))
        v = self.attn_norm_V(self.attn_conv_V(x))  # [B, H, C/H, T, F]
        q = q.reshape(b * h, q.shape[2], t, f).transpose(1, 2).flatten(2)  # [BH, T, E*F]
        k = k.reshape(b * h, k.shape[2], t, f).permute(0, 1, 3, 2).reshape(b * h, -1, t)  # [BH, E*F, T]
        d = v.shape[2]
        v = v.reshape(b * h, d, t, f).transpose(1, 2).flatten(2)  # [BH, T, D*F]
        weights = F.softmax(torch.matmul(q, k) / (q.shape[-1] ** 0.5), dim=2)
        out = torch.matmul(weights, v).reshape(b * h, t, d, f).transpose(1, 2)  # [BH, D, T, F]
        return self.attn_concat_proj(out.reshape(b, h * d, t, f))


class TFGridNetV3(nn.Module):
    """The TF-GridNetV3 separator: complex spectrogram ``[B, T, F]`` in, one per source out."""

    def __init__(self, cfg: TFGridNetConfig | None = None):
        super().__init__()
        cfg = cfg or TFGridNetConfig()
        self.cfg = cfg
        self.conv = nn.Sequential(
            nn.Conv2d(2, cfg.emb_dim, (3, 3), padding=(1, 1)), nn.GroupNorm(1, cfg.emb_dim, eps=cfg.eps)
        )
        self.blocks = nn.ModuleList(GridBlock(cfg) for _ in range(cfg.n_layers))
        self.deconv = nn.ConvTranspose2d(cfg.emb_dim, 2 * cfg.n_srcs, (3, 3), padding=(1, 1))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """``[B, T, F]`` complex -> ``[B, n_srcs, T, F]`` complex."""
        b, t, f = spec.shape
        x = self.conv(torch.stack([spec.real, spec.imag], dim=1))
        for block in self.blocks:
            x = block(x)
        x = self.deconv(x).view(b, self.cfg.n_srcs, 2, t, f)
        return torch.complex(x[:, :, 0], x[:, :, 1])


def stft(x: torch.Tensor, cfg: TFGridNetConfig, fs: int) -> torch.Tensor:
    """``[B, N]`` waveform -> ``[B, T, F]`` complex spectrogram at rate ``fs`` (ESPnet's ``stft`` encoder)."""
    n_fft, hop = cfg.stft_sizes(fs)
    window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
    spec = torch.stft(x.float(), n_fft, hop_length=hop, win_length=n_fft, window=window, center=True,
                      normalized=False, onesided=True, return_complex=True)
    return spec.transpose(1, 2)


def istft(spec: torch.Tensor, cfg: TFGridNetConfig, fs: int, length: int) -> torch.Tensor:
    """``[B, T, F]`` complex -> ``[B, length]`` waveform (ESPnet's ``stft`` decoder)."""
    n_fft, hop = cfg.stft_sizes(fs)
    window = torch.hann_window(n_fft, dtype=spec.real.dtype, device=spec.device)
    return torch.istft(spec.transpose(1, 2), n_fft, hop_length=hop, win_length=n_fft, window=window,
                       center=True, normalized=False, onesided=True, length=length, return_complex=False)


def min_length(cfg: TFGridNetConfig, fs: int) -> int:
    """Shortest input the centred (reflect-padded) STFT accepts at ``fs``: ``n_fft // 2 + 1`` samples."""
    return cfg.stft_sizes(fs)[0] // 2 + 1


def parameter_count(model: nn.Module) -> int:
    """Number of trained parameters."""
    return int(sum(p.numel() for p in model.parameters()))


#: ESPnet's enhancement-model state dict holds the separator's tensors under this prefix
#: (the STFT encoder/decoder and the training losses have no parameters or buffers).
PREFIX = "separator."


def separator_state(state: Mapping[str, Any], label: str) -> dict[str, torch.Tensor]:
    """The separator's tensors of an ESPnet enhancement-model state dict (or of a bare separator one).

    Raises:
        ValueError: For a non-tensor value, or keys outside ``separator.`` next to prefixed ones.
    """
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad or not state:
        raise ValueError(f"{label}: not a state dict of tensors (e.g. {bad[:3] or 'empty'})")
    prefixed = [k for k in state if k.startswith(PREFIX)]
    if not prefixed:
        return dict(state)
    others = sorted(set(state) - set(prefixed))
    if others:
        raise ValueError(f"{label}: entries outside the separator, which this model lacks: {others[:5]}")
    return {k[len(PREFIX):]: v for k, v in state.items()}


def state_mismatch(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """What keeps ``state`` from loading strictly into ``model``, in one line (None when it fits)."""
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} != {own[k]}" for k in sorted(set(own) & set(state))
              if tuple(state[k].shape) != own[k]]
    problems = [f"{len(v)} {what} (first: {v[0]})" for what, v in
                (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes)) if v]
    return "; ".join(problems) or None


def config_from_espnet(config: Mapping[str, Any], label: str) -> TFGridNetConfig:
    """The :class:`TFGridNetConfig` an ESPnet enhancement ``config.yaml`` (parsed) describes.

    Only what this implementation runs is accepted: separator ``tfgridnetv3`` for one
    microphone with PReLU activations, ``stft`` encoder and decoder with a Hann window,
    centred frames, equal window and FFT length and no spectral transform, and no 48 kHz
    up-sampling.

    Raises:
        ValueError: Naming the first setting that differs.
    """

    def fail(what: str) -> ValueError:
        return ValueError(f"{label}: {what} is not supported by urgentbench's TF-GridNetV3")

    if config.get("separator") != "tfgridnetv3":
        raise fail(f"separator {config.get('separator')!r} (expected 'tfgridnetv3')")
    sep = dict(config.get("separator_conf") or {})
    if sep.pop("n_imics", 1) != 1:
        raise fail("n_imics != 1")
    if sep.pop("activation", "prelu") != "prelu":
        raise fail("an activation other than prelu")
    known = {"n_srcs": 2, "n_layers": 6, "lstm_hidden_units": 192, "attn_n_head": 4, "attn_qk_output_channel": 4,
             "emb_dim": 48, "emb_ks": 4, "emb_hs": 1, "eps": 1.0e-5}  # ESPnet's defaults
    extra = sorted(set(sep) - set(known))
    if extra:
        raise fail(f"separator_conf {extra}")
    stft_conf: dict[str, Any] = {}
    for part in ("encoder", "decoder"):
        if config.get(part) != "stft":
            raise fail(f"{part} {config.get(part)!r} (expected 'stft')")
        conf = dict(config.get(f"{part}_conf") or {})
        values = {"n_fft": conf.pop("n_fft", 512), "hop_length": conf.pop("hop_length", 128),
                  "default_fs": conf.pop("default_fs", 16000)}
        if conf.pop("win_length", None) not in (None, values["n_fft"]):
            raise fail(f"{part} win_length != n_fft")
        for key, wanted in (("window", "hann"), ("center", True), ("normalized", False), ("onesided", True),
                            ("spec_transform_type", None)):
            if key in conf and conf.pop(key) != wanted:
                raise fail(f"{part} {key} other than {wanted!r}")
        conf.pop("use_builtin_complex", None)
        conf.pop("spec_factor", None)
        conf.pop("spec_abs_exponent", None)
        if conf:
            raise fail(f"{part}_conf {sorted(conf)}")
        if stft_conf and values != stft_conf:
            raise fail("an encoder and a decoder of different sizes")
        stft_conf = values
    model_conf = config.get("model_conf") or {}
    if model_conf.get("always_forward_in_48k"):
        raise fail("always_forward_in_48k")
    normalize = bool(model_conf.get("normalize_variance_per_ch") or model_conf.get("normalize_variance"))
    return TFGridNetConfig(**{**known, **sep}, **stft_conf, normalize_variance=normalize)
