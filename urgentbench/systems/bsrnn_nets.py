"""Band-split RNN networks of the URGENT 2026 track-1 baselines (urgentbench's own implementation).

Two networks share the band-split front end:

* :class:`BSRNNSE`, the discriminative baseline (``urgent2026-bsrnn``): an STFT whose
  window and hop are 20 ms and 10 ms at every rate, a band-split RNN that predicts a
  complex mask and a residual per bin, and the inverse STFT. Its parameter names are those
  of the organisers' ``BSRNN_SE`` (ESPnet's ``BSRNNSeparator`` inside), so the state dict of
  their checkpoint (keys ``se_model.*`` of the Lightning file) loads unchanged.
* :class:`FlowBSRNN`, the vector-field estimator of the flow-matching baseline
  (``urgent2026-bsrnn-flow``), in :mod:`urgentbench.systems.bsrnn_flow`.

Sampling-rate independence (as the baseline does it): the STFT sizes scale with the rate
(``n_fft * fs // 48000``), so a bin is always 50 Hz wide (the discriminative model; 31.25 Hz
for the flow model), and the band split processes the bands whose first bin lies below
the input's Nyquist bin; the last of them is zero-padded to its full width. Nothing is
resampled. Written from the reference code's behaviour (the organisers' baseline and
ESPnet's BSRNN layers, Apache-2.0); checked against them in
``tests/test_urgent2026_baselines.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: Rate the STFT sizes are given at; other rates scale them (``size * fs // 48000``).
REFERENCE_RATE = 48_000
#: Band widths in bins of the discriminative model (481 bins of 50 Hz at 48 kHz): 20 bands of
#: 200 Hz (the first one 5 bins), 6 of 500 Hz, 7 of 2 kHz, one of 3 kHz.
SUBBANDS_481 = (5,) + (4,) * 19 + (10,) * 6 + (40,) * 7 + (60,)
#: Band widths of the flow model (769 bins of 31.25 Hz at 48 kHz).
SUBBANDS_769 = (5,) + (4,) * 26 + (10,) * 10 + (50,) * 10 + (60,)
#: Band layouts by number of bins (the only two the baselines define).
SUBBANDS = {481: SUBBANDS_481, 769: SUBBANDS_769}


def scaled_sizes(n_fft: int, hop: int, fs: int) -> tuple[int, int]:
    """``(n_fft, hop)`` at rate ``fs`` for sizes given at 48 kHz (integer division, as the baseline)."""
    return n_fft * fs // REFERENCE_RATE, hop * fs // REFERENCE_RATE


def stft(wave: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Complex STFT ``(B, frames, bins)``: periodic Hann window of ``n_fft``, centred (reflect padding)."""
    window = torch.hann_window(n_fft, dtype=wave.dtype, device=wave.device)
    spec = torch.stft(wave, n_fft, hop_length=hop, win_length=n_fft, window=window, center=True,
                      normalized=False, onesided=True, return_complex=True)
    return spec.transpose(1, 2)


def istft(spec: torch.Tensor, n_fft: int, hop: int, length: int) -> torch.Tensor:
    """Inverse of :func:`stft` for a ``(B, frames, bins)`` spectrum, cut to ``length`` samples."""
    window = torch.hann_window(n_fft, dtype=spec.real.dtype, device=spec.device)
    return torch.istft(spec.transpose(1, 2), n_fft, hop_length=hop, win_length=n_fft, window=window,
                       center=True, normalized=False, onesided=True, length=length)


def compress(spec: torch.Tensor, exponent: float, factor: float) -> torch.Tensor:
    """Amplitude compression ``factor * |X|^exponent * e^{j angle X}`` (the flow model's feature)."""
    if exponent != 1:
        spec = spec.abs() ** exponent * torch.exp(1j * spec.angle())
    return spec * factor


def expand(spec: torch.Tensor, exponent: float, factor: float) -> torch.Tensor:
    """Inverse of :func:`compress`."""
    spec = spec / factor
    if exponent != 1:
        spec = spec.abs() ** (1 / exponent) * torch.exp(1j * spec.angle())
    return spec


def group_norm(channels: int, eps: float = 1e-5) -> nn.GroupNorm:
    """Layer norm over all of a sample's channels and positions (one group), with affine parameters."""
    return nn.GroupNorm(1, channels, eps=eps)


#: eps of the 1-D norms of the band split and the decoders (ESPnet's TCN ``choose_norm("GN")``).
EPS_1D = 1e-8


class BandSplit(nn.Module):
    """Per band: norm and a 1x1 convolution of the band's real and imaginary parts to ``channels``.

    Args:
        subbands: Band widths in bins, summing to the number of bins at 48 kHz.
        channels: Feature size per band.
    """

    def __init__(self, subbands: Sequence[int], channels: int):
        super().__init__()
        self.subbands = tuple(int(s) for s in subbands)
        self.norm = nn.ModuleList(group_norm(2 * s, EPS_1D) for s in self.subbands)
        self.fc = nn.ModuleList(nn.Conv1d(2 * s, channels, 1) for s in self.subbands)

    def active(self, bins: int) -> int:
        """Number of bands processed for an input of ``bins`` bins: those starting below it."""
        start = 0
        for i, width in enumerate(self.subbands):
            if start >= bins:
                return i
            start += width
        return len(self.subbands)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, F, 2)`` real/imaginary input -> ``(B, channels, T, K)`` for the K active bands."""
        batch, frames, bins, _ = x.shape
        out = []
        start = 0
        for i in range(self.active(bins)):
            width = self.subbands[i]
            band = x[:, :, start : start + width, :]
            if band.shape[2] < width:  # the band that crosses the Nyquist bin
                band = nn.functional.pad(band, (0, 0, 0, width - band.shape[2]))
            band = band.reshape(batch, frames, 2 * width).transpose(1, 2)
            out.append(self.fc[i](self.norm[i](band)))
            start += width
        return torch.stack(out, dim=-1)


class DualPathRNN(nn.Module):
    """The BSRNN trunk: ``layers`` x (BLSTM over time per band, BLSTM over bands per frame), residual.

    Subclasses keep these module lists under these names (the checkpoint's keys).
    """

    def _build_trunk(self, channels: int, layers: int) -> None:
        hidden = 2 * channels
        self.norm_time = nn.ModuleList(group_norm(channels) for _ in range(layers))
        self.rnn_time = nn.ModuleList(
            nn.LSTM(channels, hidden, batch_first=True, bidirectional=True) for _ in range(layers))
        self.fc_time = nn.ModuleList(nn.Linear(2 * hidden, channels) for _ in range(layers))
        self.norm_freq = nn.ModuleList(group_norm(channels) for _ in range(layers))
        self.rnn_freq = nn.ModuleList(
            nn.LSTM(channels, hidden, batch_first=True, bidirectional=True) for _ in range(layers))
        self.fc_freq = nn.ModuleList(nn.Linear(2 * hidden, channels) for _ in range(layers))

    def time_step(self, i: int, z: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """Residual BLSTM over frames of each band; ``bias`` ``(B, N)`` is added after the norm."""
        batch, channels, frames, bands = z.shape
        h = self.norm_time[i](z)
        if bias is not None:
            h = h + bias[:, :, None, None]
        h = h.permute(0, 3, 2, 1).reshape(batch * bands, frames, channels)
        h = self.fc_time[i](self.rnn_time[i](h)[0])
        return z + h.reshape(batch, bands, frames, channels).permute(0, 3, 2, 1)

    def freq_step(self, i: int, z: torch.Tensor) -> torch.Tensor:
        """Residual BLSTM over the bands of each frame."""
        batch, channels, frames, bands = z.shape
        h = self.norm_freq[i](z).permute(0, 2, 3, 1).reshape(batch * frames, bands, channels)
        h = self.fc_freq[i](self.rnn_freq[i](h)[0])
        return z + h.reshape(batch, frames, bands, channels).permute(0, 3, 1, 2)


def _mlp(channels: int, width: int) -> nn.Sequential:
    """Norm, 1x1 conv to 4N, tanh, 1x1 conv to 4 x width, GLU: ``width`` complex values per frame."""
    return nn.Sequential(
        group_norm(channels, EPS_1D),
        nn.Conv1d(channels, 4 * channels, 1),
        nn.Tanh(),
        nn.Conv1d(4 * channels, 4 * width, 1),
        nn.GLU(dim=1),
    )


class MaskDecoder(nn.Module):
    """Per band, a complex mask and a complex residual for each of the band's bins."""

    def __init__(self, subbands: Sequence[int], channels: int):
        super().__init__()
        self.subbands = tuple(subbands)
        self.mlp_mask = nn.ModuleList(_mlp(channels, s) for s in self.subbands)
        self.mlp_residual = nn.ModuleList(_mlp(channels, s) for s in self.subbands)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, N, T, K)`` -> mask and residual ``(B, T, bins of the K bands, 2)``."""
        batch, _, frames, bands = z.shape
        masks, residuals = [], []
        for i in range(bands):
            zi = z[:, :, :, i]
            masks.append(self.mlp_mask[i](zi).transpose(1, 2).reshape(batch, frames, -1, 2))
            residuals.append(self.mlp_residual[i](zi).transpose(1, 2).reshape(batch, frames, -1, 2))
        return torch.cat(masks, dim=2), torch.cat(residuals, dim=2)


class BSRNN(DualPathRNN):
    """Band-split RNN that maps a spectrum ``(B, T, F)`` (complex) to ``mask * X + residual``.

    Args:
        channels: Feature size per band (196 in the baseline).
        layers: Number of time/band RNN pairs (6).
        subbands: Band widths (:data:`SUBBANDS_481`).
    """

    def __init__(self, channels: int = 196, layers: int = 6, subbands: Sequence[int] = SUBBANDS_481):
        super().__init__()
        self.band_split = BandSplit(subbands, channels)
        self._build_trunk(channels, layers)
        self.mask_decoder = MaskDecoder(subbands, channels)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """Enhanced complex spectrum, same shape as ``spec``."""
        bins = spec.shape[-1]
        z = self.band_split(torch.view_as_real(spec))
        for i in range(len(self.rnn_time)):
            z = self.freq_step(i, self.time_step(i, z))
        mask, residual = self.mask_decoder(z)
        mask = torch.view_as_complex(mask[:, :, :bins].contiguous())
        residual = torch.view_as_complex(residual[:, :, :bins].contiguous())
        return mask * spec + residual


class _Separator(nn.Module):
    """Holds the network as ``bsrnn`` (ESPnet's separator wrapper: the checkpoint's key level)."""

    def __init__(self, channels: int, layers: int):
        super().__init__()
        self.bsrnn = BSRNN(channels, layers)


class BSRNNSE(nn.Module):
    """The discriminative baseline: STFT (20 ms window, 10 ms hop at any rate), BSRNN, inverse STFT.

    Args:
        channels: Feature size per band (``num_channel``, 196 in the official model).
        layers: RNN layer pairs (``num_layer``, 6).
    """

    #: STFT size and hop at 48 kHz.
    n_fft = 960
    hop = 480

    def __init__(self, channels: int = 196, layers: int = 6):
        super().__init__()
        self.bsrnn = _Separator(channels, layers)

    def forward(self, wave: torch.Tensor, fs: int) -> torch.Tensor:
        """Enhance ``(B, samples)`` at rate ``fs``; same shape out.

        The input must be longer than half the STFT size at that rate (reflect padding).
        """
        n_fft, hop = scaled_sizes(self.n_fft, self.hop, fs)
        spec = stft(wave, n_fft, hop)
        return istft(self.bsrnn.bsrnn(spec), n_fft, hop, wave.shape[-1])


def parameter_count(module: nn.Module) -> int:
    """Number of parameter elements of ``module``."""
    return int(sum(p.numel() for p in module.parameters()))


def active_parameter_count(model: nn.Module, run) -> int:
    """Parameters that take part in ``run()`` (a forward pass): those that receive a gradient.

    The band split and decoders have one branch per band; at rates below 48 kHz the upper
    bands are skipped, which is how the baseline's configuration file counts "parameters at
    16000" (32.0 M) and "at 48000" (36.0 M).
    """
    for p in model.parameters():
        p.grad = None
    with torch.enable_grad():
        out = run()
        (out.abs().sum() if torch.is_complex(out) else out.sum()).backward()
    count = sum(p.numel() for p in model.parameters() if p.grad is not None)
    for p in model.parameters():
        p.grad = None
    return int(count)
