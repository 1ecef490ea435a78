"""The flow-matching baseline of URGENT 2026 track 1 (BSRNN-Flow): estimator network and ODE sampler.

urgentbench's own implementation, written from the behaviour of the organisers' baseline
(``FlowSEModel`` with its ``BSRNN`` estimator, after FlowSE, Lee et al., ICASSP 2025;
Apache-2.0) and checked against it in ``tests/test_urgent2026_baselines.py``.

* **Features.** The STFT of the noisy input (window 1536, hop 384 at 48 kHz, scaled with the
  rate as in :mod:`urgentbench.systems.bsrnn_nets`), amplitude-compressed:
  ``0.065 |Y|^0.667 e^{j angle Y}``.
* **Estimator** (:class:`FlowBSRNN`): the current state ``x`` and the condition ``y`` are each
  band-split, concatenated and projected back to ``N`` channels per band; ``N`` time
  and band BLSTM pairs follow, each time step adding a Gaussian Fourier embedding of the flow
  time ``t`` after its norm; the decoder gives a complex mask and residual per bin through a
  5x5 convolution and a GLU, and the output is ``mask * x + residual``. The vector field is
  minus the network's output.
* **Sampling** (:func:`sample`): the flow runs from ``t = 1`` (``x = y + sigma_max z``, ``z``
  complex standard normal) to ``t_eps``: ``steps`` time points spaced evenly from 1 to
  ``t_eps``; each solver step goes to the next point, and the last one by ``t_eps`` (to
  ``t = 0``). Euler with 15 steps is the official inference (``FlowSEModel.enhance``);
  midpoint and Heun are the reference's other solvers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from urgentbench.systems.bsrnn_nets import (
    EPS_1D,
    SUBBANDS_769,
    BandSplit,
    DualPathRNN,
    compress,
    expand,
    group_norm,
    istft,
    scaled_sizes,
    stft,
)

#: Solvers of the reference sampler.
SOLVERS = ("euler", "midpoint", "heun")


class FourierTime(nn.Module):
    """``[sin(2 pi t W), cos(2 pi t W)]`` for fixed random frequencies ``W`` (stored, not trained)."""

    def __init__(self, size: int):
        super().__init__()
        self.W = nn.Parameter(torch.randn(size), requires_grad=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``(B,)`` times -> ``(B, 2 * size)``."""
        angle = t[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


def _band_head(channels: int, width: int, sub_channels: int) -> nn.Sequential:
    return nn.Sequential(group_norm(channels, EPS_1D), nn.Conv1d(channels, width * sub_channels, 1), nn.Tanh())


class GradDecoder(nn.Module):
    """Per band ``sub_channels`` maps per bin, then a 5x5 convolution and a GLU over (bins, frames)."""

    def __init__(self, subbands: Sequence[int], channels: int, sub_channels: int = 16):
        super().__init__()
        self.subbands = tuple(subbands)
        self.sub_channels = sub_channels
        # registration order = parameter order (the EMA weights of the checkpoint are a list in it)
        self.mlp_mask = nn.ModuleList()
        self.mlp_residual = nn.ModuleList()
        self.conv_after_mask = nn.Sequential(nn.Conv2d(sub_channels, 4, 5, 1, 2), nn.GLU(dim=1))
        self.conv_after_residual = nn.Sequential(nn.Conv2d(sub_channels, 4, 5, 1, 2), nn.GLU(dim=1))
        for width in self.subbands:
            self.mlp_mask.append(_band_head(channels, width, sub_channels))
            self.mlp_residual.append(_band_head(channels, width, sub_channels))

    def _maps(self, heads: nn.ModuleList, z: torch.Tensor) -> torch.Tensor:
        batch, _, frames, bands = z.shape
        out = [heads[i](z[:, :, :, i]).view(batch, self.sub_channels, self.subbands[i], frames)
               for i in range(bands)]
        return torch.cat(out, dim=2)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, N, T, K)`` -> mask and residual ``(B, bins of the K bands, T, 2)``."""
        mask = self.conv_after_mask(self._maps(self.mlp_mask, z))
        residual = self.conv_after_residual(self._maps(self.mlp_residual, z))
        return mask.permute(0, 2, 3, 1), residual.permute(0, 2, 3, 1)


class FlowBSRNN(DualPathRNN):
    """The estimator: ``(x, y, t) -> mask * x + residual``; the vector field is its negative.

    Args:
        channels: Feature size per band (``bsrnn_hidden``, 384 in the official model).
        layers: RNN layer pairs (``num_layer``, 6).
        subbands: Band widths (:data:`SUBBANDS_769`: 769 bins at 48 kHz).
    """

    def __init__(self, channels: int = 384, layers: int = 6, subbands: Sequence[int] = SUBBANDS_769):
        super().__init__()
        self.band_split_y = BandSplit(subbands, channels)
        self.band_split_x = BandSplit(subbands, channels)
        self.condition_fc = nn.Linear(2 * channels, channels)
        self._build_trunk(channels, layers)
        self.t_cond = nn.ModuleList(FourierTime(channels // 2) for _ in range(layers))
        self.grad_decoder = GradDecoder(subbands, channels)

    def forward(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x``, ``y``: complex ``(B, 1, F, T)``; ``t``: ``(B,)`` -> complex ``(B, 1, F, T)``."""
        xs, ys = x[:, 0], y[:, 0]
        bins = xs.shape[1]
        zx = self.band_split_x(torch.view_as_real(xs.transpose(1, 2)))
        zy = self.band_split_y(torch.view_as_real(ys.transpose(1, 2)))
        z = self.condition_fc(torch.cat([zx, zy], dim=1).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        for i in range(len(self.rnn_time)):
            z = self.freq_step(i, self.time_step(i, z, self.t_cond[i](t)))
        mask, residual = self.grad_decoder(z)
        mask = torch.view_as_complex(mask[:, :bins].contiguous())
        residual = torch.view_as_complex(residual[:, :bins].contiguous())
        return (mask * xs + residual)[:, None]


def prior_noise(frames: int, bins: int, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Complex standard normal noise ``(1, 1, bins, frames)``, as the reference draws its prior.

    The reference calls ``randn_like`` on its feature, a transposed view of a ``(1, frames,
    bins)`` spectrum; torch fills such a strided tensor element by element in memory order
    (not with its vectorised fill for contiguous tensors). Drawing into the same layout
    makes a seed give the reference's own prior sample.
    """
    noise = torch.empty((1, frames, bins), dtype=torch.complex64, device=device)
    return noise.transpose(1, 2)[:, None].normal_(generator=generator)


def vector_field(net: FlowBSRNN, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The flow's velocity at ``(x, t)`` given ``y``: minus the estimator's output."""
    return -net(x, y, t)


def sample(
    net: FlowBSRNN,
    y: torch.Tensor,
    noise: torch.Tensor,
    *,
    steps: int = 15,
    solver: str = "euler",
    sigma_max: float = 0.5,
    t_eps: float = 0.03,
    t_start: float = 1.0,
) -> torch.Tensor:
    """Integrate the flow from ``t_start`` to 0 (the reference's white-box ODE sampler).

    Args:
        net: The estimator.
        y: Compressed noisy spectrum, complex ``(B, 1, F, T)``.
        noise: Complex standard normal noise of ``y``'s shape (the prior is ``y + sigma_max * noise``).
        steps: Number of time points (network evaluations for Euler; twice that for the others).
        solver: ``euler``, ``midpoint`` or ``heun``.
        sigma_max: Prior standard deviation at ``t = 1``.
        t_eps: Last time point.
        t_start: First time point (``T_rev``).

    Returns:
        The estimate of the clean compressed spectrum, shape of ``y``.

    Raises:
        ValueError: For an unknown solver or fewer than one step.
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    x = y + noise * sigma_max
    times = torch.linspace(t_start, t_eps, steps, device=y.device)
    ones = torch.ones(y.shape[0], device=y.device)
    for i in range(steps):
        t = times[i]
        dt = -(t - times[i + 1]) if i + 1 < steps else -times[-1]
        v = vector_field(net, x, ones * t, y)
        if solver == "euler":
            x = x + v * dt
        elif solver == "midpoint":
            x = x + dt * vector_field(net, x + dt / 2 * v, ones * t + dt / 2, y)
        else:  # heun
            x_next = x + dt * v
            x = x + dt / 2 * (v + vector_field(net, x_next, ones * t + dt, y))
    return x


class FlowSE(nn.Module):
    """Waveform in, waveform out: compressed STFT, :func:`sample`, expansion, inverse STFT.

    Args:
        channels, layers: The estimator's size.
        n_fft, hop: STFT size and hop at 48 kHz (1536, 384).
        exponent, factor: The amplitude compression (0.667, 0.065).
        sigma_max, t_eps, t_start: The flow's prior width and time range (0.5, 0.03, 1.0).
    """

    def __init__(self, channels: int = 384, layers: int = 6, *, n_fft: int = 1536, hop: int = 384,
                 exponent: float = 0.667, factor: float = 0.065, sigma_max: float = 0.5,
                 t_eps: float = 0.03, t_start: float = 1.0):
        super().__init__()
        self.dnn = FlowBSRNN(channels, layers)
        self.n_fft, self.hop = n_fft, hop
        self.exponent, self.factor = exponent, factor
        self.sigma_max, self.t_eps, self.t_start = sigma_max, t_eps, t_start

    def features(self, wave: torch.Tensor, fs: int) -> torch.Tensor:
        """Compressed spectrum ``(B, 1, F, T)`` of ``(B, samples)`` at ``fs``."""
        n_fft, hop = scaled_sizes(self.n_fft, self.hop, fs)
        return compress(stft(wave, n_fft, hop), self.exponent, self.factor).transpose(1, 2)[:, None]

    def waveform(self, feature: torch.Tensor, fs: int, length: int) -> torch.Tensor:
        """Inverse of :meth:`features`, ``length`` samples."""
        n_fft, hop = scaled_sizes(self.n_fft, self.hop, fs)
        return istft(expand(feature[:, 0].transpose(1, 2), self.exponent, self.factor), n_fft, hop, length)

    def forward(self, wave: torch.Tensor, fs: int, noise: torch.Tensor | None = None, *, steps: int = 15,
                solver: str = "euler", generator: torch.Generator | None = None) -> torch.Tensor:
        """Enhance ``(1, samples)`` at ``fs`` from ``noise`` (shape of :meth:`features`; default: :func:`prior_noise`)."""
        y = self.features(wave, fs)
        if noise is None:
            noise = prior_noise(y.shape[-1], y.shape[-2], generator, y.device)
        x = sample(self.dnn, y, noise, steps=steps, solver=solver, sigma_max=self.sigma_max,
                   t_eps=self.t_eps, t_start=self.t_start)
        return self.waveform(x, fs, wave.shape[-1])
