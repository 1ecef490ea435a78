"""RawNet3 speaker-embedding network as ESPnet builds it for ``espnet/voxcelebs12_rawnet3`` (inference only).

A re-implementation, written for urgentbench, of the ESPnet-SPK model of that checkpoint
(ESPnet 202402 layout, the one the checkpoint's ``config.yaml`` names:
``frontend: asteroid_frontend``, ``encoder: rawnet3``, ``pooling: chn_attn_stat``,
``projector: rawnet3``). Module names follow ESPnet's ``ESPnetSpeakerModel``, so the
checkpoint's state dict loads with ``strict=True`` once its training-only ``loss.*``
entries (the AAM-softmax class centres) are set aside.

Signal path for a batch of 16 kHz waveforms ``(B, T)``:

1. ``frontend`` (ESPnet ``AsteroidFrontend``, sinc_filters 256, kernel 251, stride 16,
   pre-emphasis 0.97, log term 1e-6): reflect-pad one sample on the left, pre-emphasis
   ``y[t] = x[t] - 0.97 x[t-1]`` (the ``flipped_filter`` buffer), ``InstanceNorm1d(1,
   eps=1e-4, affine=True)`` over time, the parameterised sinc filterbank of
   asteroid-filterbanks (``ParamSincFB``: 128 cosine and 128 sine band-pass filters
   made from learnt low cut-off and bandwidth, a half Hamming window and the time axis
   buffers ``window_`` and ``n_``) as a stride-16 convolution, ``log(|.| + 1e-6)`` and
   removal of each filter's mean over time.
2. ``encoder`` (RawNet3, model_scale 8, ndim 1024, output 1536): three Res2Net-style
   ``Bottle2neck`` blocks (dilations 2, 3, 4; max-pooling by 5 and 3 after the first two;
   ReLU before each BatchNorm; AFMS feature-map scaling ``(x + alpha) * sigmoid(fc(mean_t
   x))``), ``layer4`` (1x1 convolution of ``[maxpool3(x1), x2, x3]`` to 1536) and ReLU.
3. ``pooling`` (channel- and context-dependent attentive statistics, ECAPA-TDNN style):
   attention weights over time from ``[x, mean, std]``, then the weighted mean and
   standard deviation (3072 values). ``torch.var`` is unbiased, so at least two encoder
   frames are needed.
4. ``projector``: BatchNorm1d(3072) then Linear 3072 -> 192: the speaker embedding.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

SAMPLE_RATE = 16000
SINC_FILTERS = 256
SINC_KERNEL = 251
SINC_STRIDE = 16
PREEMPHASIS = 0.97
LOG_TERM = 1e-6
MODEL_SCALE = 8
NDIM = 1024
ENCODER_DIM = 1536
EMBED_DIM = 192
#: ParamSincFB's limits on the learnt cut-offs (Hz).
MIN_LOW_HZ = 50.0
MIN_BAND_HZ = 50.0


def encoder_frames(samples: int) -> int:
    """Frames the encoder outputs for ``samples`` input samples (0 when too short for one)."""
    if samples < SINC_KERNEL:
        return 0
    sinc = (samples - SINC_KERNEL) // SINC_STRIDE + 1
    return (sinc // 5) // 3


def min_samples() -> int:
    """Fewest input samples giving the two encoder frames the statistics pooling needs."""
    return SINC_KERNEL + (2 * 5 * 3 - 1) * SINC_STRIDE


class _SincFilterbank(nn.Module):
    """asteroid-filterbanks ``ParamSincFB`` (``low_hz_``, ``band_hz_``; buffers ``window_``, ``n_``)."""

    def __init__(self, n_filters: int, kernel_size: int, sample_rate: float = SAMPLE_RATE):
        super().__init__()
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.sample_rate = float(sample_rate)
        half = kernel_size // 2
        # Initial cut-offs equally spaced on the mel scale (replaced by the checkpoint's).
        top = self.sample_rate / 2 - (MIN_LOW_HZ + MIN_BAND_HZ)
        mel = np.linspace(_hz_to_mel(30.0), _hz_to_mel(top), n_filters // 2 + 1, dtype="float32")
        hz = _mel_to_hz(mel)
        self.low_hz_ = nn.Parameter(torch.from_numpy(hz[:-1]).view(-1, 1))
        self.band_hz_ = nn.Parameter(torch.from_numpy(np.diff(hz)).view(-1, 1))
        self.register_buffer("window_", torch.from_numpy(np.hamming(kernel_size)[:half]).float())
        self.register_buffer("n_", 2 * math.pi * (torch.arange(-half, 0.0).view(1, -1) / self.sample_rate))

    def filters(self) -> Tensor:
        """The (n_filters, 1, kernel) band-pass kernels: the cosine (even) ones, then the sine (odd) ones."""
        low = MIN_LOW_HZ + self.low_hz_.abs()
        high = torch.clamp(low + MIN_BAND_HZ + self.band_hz_.abs(), MIN_LOW_HZ, self.sample_rate / 2)
        band = (high - low)[:, 0]
        phase_low = low @ self.n_
        phase_high = high @ self.n_
        half_t = self.n_ / 2
        even_left = (torch.sin(phase_high) - torch.sin(phase_low)) / half_t * self.window_
        even = torch.cat([even_left, 2 * band.view(-1, 1), torch.flip(even_left, dims=[1])], dim=1)
        odd_left = (torch.cos(phase_low) - torch.cos(phase_high)) / half_t * self.window_
        odd = torch.cat(
            [odd_left, torch.zeros_like(band.view(-1, 1)), -torch.flip(odd_left, dims=[1])], dim=1
        )
        scale = 2 * band[:, None]
        kernels = torch.cat([even / scale, odd / scale], dim=0)
        return kernels.view(self.n_filters, 1, self.kernel_size)


def _hz_to_mel(hz: float | np.ndarray) -> np.ndarray:
    return 2595 * np.log10(1 + hz / 700)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700 * (10 ** (mel / 2595) - 1)


class _SincConv(nn.Module):
    """asteroid-filterbanks ``Encoder`` around the filterbank: a strided convolution with its kernels."""

    def __init__(self, filterbank: _SincFilterbank, stride: int):
        super().__init__()
        self.filterbank = filterbank
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.filterbank.filters(), stride=self.stride)


class _Frontend(nn.Module):
    """ESPnet ``AsteroidFrontend``: (B, T) samples -> (B, 256, frames) log filterbank magnitudes."""

    def __init__(self) -> None:
        super().__init__()
        # Pre-emphasis as a cross-correlation with [-0.97, 1] (ESPnet's buffer name and shape).
        self.register_buffer("flipped_filter", torch.tensor([[[-PREEMPHASIS, 1.0]]]))
        self.norm = nn.InstanceNorm1d(1, eps=1e-4, affine=True)
        self.conv = _SincConv(_SincFilterbank(SINC_FILTERS, SINC_KERNEL), SINC_STRIDE)

    def forward(self, wave: Tensor) -> Tensor:
        x = F.pad(wave.unsqueeze(1), (1, 0), mode="reflect")
        x = self.norm(F.conv1d(x, self.flipped_filter))
        x = torch.log(torch.abs(self.conv(x)) + LOG_TERM)
        return x - x.mean(dim=-1, keepdim=True)


class _AFMS(nn.Module):
    """Alpha feature-map scaling: (x + alpha) * sigmoid(fc(time average of x))."""

    def __init__(self, dim: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(dim, 1))
        self.fc = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.fc(x.mean(dim=2)))[:, :, None]
        return (x + self.alpha) * gate


class _Bottle2neck(nn.Module):
    """RawNet3's Res2Net block: 1x1 conv, ``scale - 1`` chained dilated convs on channel groups, 1x1 conv."""

    def __init__(self, n_in: int, n_out: int, kernel: int, dilation: int, scale: int, pool: int = 0):
        super().__init__()
        width = n_out // scale
        self.width = width
        self.nums = scale - 1
        self.conv1 = nn.Conv1d(n_in, width * scale, kernel_size=1)
        self.bn1 = nn.BatchNorm1d(width * scale)
        pad = (kernel // 2) * dilation
        self.convs = nn.ModuleList(
            [
                nn.Conv1d(width, width, kernel_size=kernel, dilation=dilation, padding=pad)
                for _ in range(self.nums)
            ]
        )
        self.bns = nn.ModuleList([nn.BatchNorm1d(width) for _ in range(self.nums)])
        self.conv3 = nn.Conv1d(width * scale, n_out, kernel_size=1)
        self.bn3 = nn.BatchNorm1d(n_out)
        self.pool = pool
        self.afms = _AFMS(n_out)
        if n_in != n_out:
            self.residual = nn.Sequential(nn.Conv1d(n_in, n_out, kernel_size=1, bias=False))
        else:
            self.residual = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        residual = self.residual(x)
        out = self.bn1(F.relu(self.conv1(x)))
        groups = torch.split(out, self.width, dim=1)
        pieces = []
        carry = groups[0]
        for i in range(self.nums):
            if i > 0:
                carry = carry + groups[i]
            carry = self.bns[i](F.relu(self.convs[i](carry)))
            pieces.append(carry)
        pieces.append(groups[self.nums])
        out = self.bn3(F.relu(self.conv3(torch.cat(pieces, dim=1))))
        out = out + residual
        if self.pool:
            out = F.max_pool1d(out, self.pool)
        return self.afms(out)


class _Encoder(nn.Module):
    """ESPnet ``RawNet3Encoder`` (frame-level features, 1536 channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = _Bottle2neck(SINC_FILTERS, NDIM, kernel=3, dilation=2, scale=MODEL_SCALE, pool=5)
        self.layer2 = _Bottle2neck(NDIM, NDIM, kernel=3, dilation=3, scale=MODEL_SCALE, pool=3)
        self.layer3 = _Bottle2neck(NDIM, NDIM, kernel=3, dilation=4, scale=MODEL_SCALE)
        self.layer4 = nn.Conv1d(3 * NDIM, ENCODER_DIM, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        pooled1 = F.max_pool1d(x1, 3)
        x3 = self.layer3(pooled1 + x2)
        return F.relu(self.layer4(torch.cat([pooled1, x2, x3], dim=1)))


class _AttentiveStatsPooling(nn.Module):
    """ESPnet ``ChnAttnStatPooling``: attention-weighted mean and standard deviation over time."""

    def __init__(self, dim: int = ENCODER_DIM):
        super().__init__()
        self.attention = nn.Sequential(
            nn.Conv1d(3 * dim, 128, kernel_size=1),
            nn.ReLU(),
            nn.BatchNorm1d(128),
            nn.Conv1d(128, dim, kernel_size=1),
            nn.Softmax(dim=2),
        )

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[-1]
        mean = x.mean(dim=2, keepdim=True)
        std = torch.sqrt(torch.var(x, dim=2, keepdim=True).clamp(min=1e-4, max=1e4))
        w = self.attention(torch.cat([x, mean.expand(-1, -1, t), std.expand(-1, -1, t)], dim=1))
        mu = torch.sum(x * w, dim=2)
        sg = torch.sqrt((torch.sum(x * x * w, dim=2) - mu * mu).clamp(min=1e-4, max=1e4))
        return torch.cat([mu, sg], dim=1)


class _Projector(nn.Module):
    """ESPnet ``RawNet3Projector``: BatchNorm then a linear layer to the embedding."""

    def __init__(self, n_in: int = 2 * ENCODER_DIM, n_out: int = EMBED_DIM):
        super().__init__()
        self.bn = nn.BatchNorm1d(n_in)
        self.fc = nn.Linear(n_in, n_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.bn(x))


class RawNet3(nn.Module):
    """The ESPnet-SPK RawNet3 model of ``espnet/voxcelebs12_rawnet3`` without its training loss."""

    def __init__(self) -> None:
        super().__init__()
        self.frontend = _Frontend()
        self.encoder = _Encoder()
        self.pooling = _AttentiveStatsPooling()
        self.projector = _Projector()

    def forward(self, wave: Tensor) -> Tensor:
        """(B, T) 16 kHz float32 samples -> (B, 192) speaker embeddings (not normalised)."""
        return self.projector(self.pooling(self.encoder(self.frontend(wave))))
