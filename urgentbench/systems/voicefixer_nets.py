"""VoiceFixer networks (Liu et al. 2021), re-implemented for inference with the official key names.

The ``voicefixer`` package (0.1.3) cannot be imported for its model code alone: importing
``voicefixer.restorer`` or ``voicefixer.vocoder`` downloads the checkpoints from Zenodo at
import time, and the model modules pull in ``torchlibrosa``, ``matplotlib`` and
``librosa.display``. This module therefore rebuilds the two networks that inference needs,
module for module, so that the official checkpoints load with ``strict=True``:

* :class:`AnalysisModule` -- the "analysis stage" of ``voicefixer.restorer.model.VoiceFixer``
  (``channels=2, sample_rate=44100``): a magnitude STFT (2048-point Hann window, hop 441,
  centred, reflect padding), a 128-band HTK mel filterbank (the buffer ``mel.fb``), and the
  ``generator`` network (a GRU mask estimator ``denoiser`` followed by a residual U-Net
  ``unet`` on log-mel spectrograms). Its state-dict keys are those of ``vf.ckpt``
  (``generator.*``, ``mel.fb``).
* :class:`Vocoder` -- the 44.1 kHz TFGAN-style neural vocoder of
  ``voicefixer.vocoder.model.generator.Generator`` at the 44.1 kHz configuration (conditioning
  network 128->512, generator width 1024, upsampling 7*7*3*3 = 441, residual stacks of depth 8,
  kernel 3). Weight-normalised convolutions keep their trained ``weight_g``/``weight_v`` pair,
  so the ``"generator"`` entry of ``model.ckpt-1490000_trimed.pt`` loads as it is.

Numerical notes (all the same as upstream in eval mode): the STFT is computed with
``torch.stft`` rather than torchlibrosa's convolution with the same DFT matrix (equal up to
float32 rounding); the upsampling blocks keep their unused ``skip_conv`` parameters (upstream
computes and discards that branch because ``hp`` is None) but do not evaluate them; dropout
and batch-norm run in eval mode.

Widths are parameters so that tests can build small random models of the same structure;
the defaults are the official ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: Native rate, FFT size, hop and mel bands of VoiceFixer at 44.1 kHz.
SAMPLE_RATE = 44_100
N_FFT = 2048
HOP = 441
N_MELS = 128
#: The U-Net halves time and frequency six times: its time grid has a period of 64 frames.
UNET_FRAMES = 64

#: Official widths: U-Net encoder stages, vocoder conditioning and generator channels.
UNET_WIDTHS = (32, 64, 128, 256, 384, 384)
COND_CHANNELS = 512
VOCODER_CHANNELS = 1024
UPSAMPLE = (7, 7, 3, 3)
RESSTACK_DEPTH = 8

# Vocoder input normalisation (voicefixer.vocoder.config.Config at 44.1 kHz).
_MIN_DB = -115.0
_MAX_ABS = 4.0
_MIN_LEVEL_DB = -100.0
_REF_DB = 20.0
_MEL_WEIGHT_A = 18.8927416350036
_MEL_WEIGHT_B = 0.0269863588184314
_TAIL_VALUE = -4.0
_TAIL_FRAMES = 4


# ----------------------------------------------------------------------------- front end


def htk_mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """Triangular HTK-scale mel filterbank, ``(n_freqs, n_mels)``, no area normalisation.

    Band edges are equally spaced on the HTK mel scale from 0 Hz to ``sample_rate // 2``;
    STFT bins are ``linspace(0, sample_rate // 2, n_freqs)``; each column is the triangle
    ``max(0, min(rising, falling))`` over its two neighbouring edges (the torchaudio
    ``melscale_fbanks`` definition that VoiceFixer's ``MelScale`` copies).
    """
    top = float(sample_rate // 2)
    freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    mel_top = 2595.0 * math.log10(1.0 + top / 700.0)
    edges_mel = torch.linspace(0.0, mel_top, n_mels + 2)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    widths = edges[1:] - edges[:-1]
    dist = edges.unsqueeze(0) - freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    rising = -dist[:, :-2] / widths[:-1]
    falling = dist[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


class MelFilterbank(nn.Module):
    """Linear-magnitude to mel projection; holds the filterbank as the buffer ``fb`` (``mel.fb``)."""

    def __init__(self, n_freqs: int = N_FFT // 2 + 1, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE):
        super().__init__()
        self.register_buffer("fb", htk_mel_filterbank(n_freqs, n_mels, sample_rate))

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        """``(..., frames, n_freqs)`` -> ``(..., frames, n_mels)``."""
        return torch.matmul(magnitude, self.fb)


def magnitude_spectrogram(wav: torch.Tensor) -> torch.Tensor:
    """``(batch, samples)`` -> ``(batch, 1, frames, 1025)`` STFT magnitudes as VoiceFixer computes them.

    2048-point periodic Hann window, hop 441, centred with reflect padding (so
    ``frames = samples // 441 + 1``), magnitude ``sqrt(max(re^2 + im^2, 1e-8))``. The input
    must be longer than 1024 samples (reflect padding).
    """
    window = torch.hann_window(N_FFT, periodic=True, dtype=wav.dtype, device=wav.device)
    spec = torch.stft(
        wav, N_FFT, hop_length=HOP, win_length=N_FFT, window=window, center=True,
        pad_mode="reflect", return_complex=True,
    )  # (batch, freqs, frames)
    power = spec.real**2 + spec.imag**2
    return torch.clamp(power, min=1e-8).sqrt().transpose(1, 2).unsqueeze(1)


def _log10_floor(x: torch.Tensor) -> torch.Tensor:
    return torch.log10(torch.clamp(x, min=1e-8))


# ----------------------------------------------------------------------------- analysis stage


class BNGRU(nn.Module):
    """Batch norm over the single channel, then a batch-first GRU along time (``bn``, ``gru``)."""

    def __init__(self, input_dim: int, hidden_dim: int, layers: int = 2, bidirectional: bool = True):
        super().__init__()
        self.bn = nn.BatchNorm2d(1)
        self.gru = nn.GRU(
            input_dim, hidden_dim, num_layers=layers, bidirectional=bidirectional, batch_first=True
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, frames, features)`` -> ``(batch, 1, frames, hidden * directions)``."""
        out, _ = self.gru(self.bn(x).squeeze(1))
        return out.unsqueeze(1)


def mask_estimator(n_mel: int = N_MELS) -> nn.Sequential:
    """The ``denoiser`` of VoiceFixer's analysis generator: a sigmoid mask over mel bands.

    Indices match upstream (``denoiser.7.gru.weight_ih_l0`` ...): BN, Linear(n, 2n), ReLU,
    BN, Linear(2n, 4n), Dropout, ReLU, two bidirectional 2-layer BN-GRUs (hidden 2n), BN,
    ReLU, Linear(4n, 4n), Dropout, BN, ReLU, Linear(4n, n), Sigmoid.
    """
    return nn.Sequential(
        nn.BatchNorm2d(1),
        nn.Linear(n_mel, n_mel * 2),
        nn.ReLU(),
        nn.BatchNorm2d(1),
        nn.Linear(n_mel * 2, n_mel * 4),
        nn.Dropout(0.5),
        nn.ReLU(),
        BNGRU(n_mel * 4, n_mel * 2),
        BNGRU(n_mel * 4, n_mel * 2),
        nn.BatchNorm2d(1),
        nn.ReLU(),
        nn.Linear(n_mel * 4, n_mel * 4),
        nn.Dropout(0.5),
        nn.BatchNorm2d(1),
        nn.ReLU(),
        nn.Linear(n_mel * 4, n_mel),
        nn.Sigmoid(),
    )


class ResConvBlock(nn.Module):
    """Pre-activation residual block: (BN, leaky ReLU 0.01, 3x3 conv) twice; 1x1 shortcut if widths differ."""

    def __init__(self, cin: int, cout: int, momentum: float = 0.01):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, momentum=momentum)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, momentum=momentum)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same time-frequency size in and out."""
        h = self.conv1(F.leaky_relu(self.bn1(x), 0.01))
        h = self.conv2(F.leaky_relu(self.bn2(h), 0.01))
        return h + (x if self.shortcut is None else self.shortcut(x))


class DownBlock(nn.Module):
    """Four residual blocks, then 2x2 average pooling; returns ``(pooled, before_pooling)``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv_block1 = ResConvBlock(cin, cout)
        self.conv_block2 = ResConvBlock(cout, cout)
        self.conv_block3 = ResConvBlock(cout, cout)
        self.conv_block4 = ResConvBlock(cout, cout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Halve time and frequency (floor)."""
        h = self.conv_block4(self.conv_block3(self.conv_block2(self.conv_block1(x))))
        return F.avg_pool2d(h, 2), h


class UpBlock(nn.Module):
    """BN, ReLU, 3x3 stride-2 transposed conv (last time row dropped), concatenation, four residual blocks."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.ConvTranspose2d(cin, cout, 3, stride=2, bias=False)
        self.conv_block2 = ResConvBlock(cout * 2, cout)
        self.conv_block3 = ResConvBlock(cout, cout)
        self.conv_block4 = ResConvBlock(cout, cout)
        self.conv_block5 = ResConvBlock(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Time ``t -> 2t``, frequency ``f -> 2f + 1`` (the skip's size)."""
        h = self.conv1(F.relu(self.bn1(x)))[:, :, :-1, :]
        h = torch.cat((h, skip), dim=1)
        return self.conv_block5(self.conv_block4(self.conv_block3(self.conv_block2(h))))


class ResUNet(nn.Module):
    """VoiceFixer's residual U-Net: ``(batch, 2, frames, 128)`` log-mel pairs -> ``(batch, 1, frames, 128)``.

    Time is zero-padded at the end to a multiple of 64 frames and the last mel band is
    dropped (128 -> 127 bands, so six poolings give 63, 31, 15, 7, 3, 1); the output gets a
    zero last band back and is cut to the input's frames.
    """

    def __init__(self, in_channels: int = 2, widths: Sequence[int] = UNET_WIDTHS):
        super().__init__()
        w = list(widths)
        if len(w) != 6:
            raise ValueError(f"the U-Net has six stages, got widths {w}")
        ins = [in_channels, *w[:-1]]
        for i in range(6):
            setattr(self, f"encoder_block{i + 1}", DownBlock(ins[i], w[i]))
        self.conv_block7 = ResConvBlock(w[5], w[5])
        prev = w[5]
        for i in range(6):
            out = w[5 - i]
            setattr(self, f"decoder_block{i + 1}", UpBlock(prev, out))
            prev = out
        self.after_conv_block1 = ResConvBlock(w[0], w[0])
        self.after_conv2 = nn.Conv2d(w[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        frames = x.shape[2]
        pad = -frames % UNET_FRAMES
        h = F.pad(x, (0, 0, 0, pad))[..., :-1]
        skips = []
        for i in range(6):
            h, before = getattr(self, f"encoder_block{i + 1}")(h)
            skips.append(before)
        h = self.conv_block7(h)
        for i in range(6):
            h = getattr(self, f"decoder_block{i + 1}")(h, skips[5 - i])
        h = self.after_conv2(self.after_conv_block1(h))
        return F.pad(h, (0, 1))[:, :, :frames, :]


class AnalysisGenerator(nn.Module):
    """The analysis network (upstream ``Generator``): mask the noisy mel, refine its log with the U-Net."""

    def __init__(self, n_mel: int = N_MELS, unet_widths: Sequence[int] = UNET_WIDTHS):
        super().__init__()
        self.denoiser = mask_estimator(n_mel)
        self.unet = ResUNet(2, unet_widths)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, frames, 128)`` linear mel -> restored log10 mel of the same shape."""
        masked_log = _log10_floor(self.denoiser(mel) * mel)
        return self.unet(torch.cat([_log10_floor(mel), masked_log], dim=1)) + masked_log


class AnalysisModule(nn.Module):
    """VoiceFixer's analysis stage with its front end; state-dict keys ``mel.fb`` and ``generator.*``."""

    def __init__(self, unet_widths: Sequence[int] = UNET_WIDTHS):
        super().__init__()
        self.mel = MelFilterbank()
        self.generator = AnalysisGenerator(N_MELS, unet_widths)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``(batch, samples)`` at 44.1 kHz (over 1024 samples) -> restored mel ``(batch, 1, frames, 128)``.

        Upstream ``from_log``: ``10 ** min(log_mel, 5)``.
        """
        mel = self.mel(magnitude_spectrogram(wav))
        log_mel = self.generator(mel)
        return torch.pow(10.0, torch.clamp(log_mel, max=5.0))


# ----------------------------------------------------------------------------- synthesis stage


def _weight_norm_pair(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g, v)`` with ``weight = g * v / ||v||`` (norm over every dimension but the first)."""
    norm = weight.flatten(1).norm(dim=1).reshape(-1, *([1] * (weight.dim() - 1)))
    return norm, weight.clone()


class WNConv1d(nn.Module):
    """A weight-normalised ``Conv1d`` with the parameters ``weight_g``, ``weight_v``, ``bias``.

    ``weight = weight_g * weight_v / ||weight_v||``, the norm taken per output channel (the
    ``torch.nn.utils.weight_norm(dim=0)`` convention the official checkpoint was saved with).
    """

    def __init__(self, cin: int, cout: int, kernel_size: int, dilation: int = 1, padding: int = 0):
        super().__init__()
        template = nn.Conv1d(cin, cout, kernel_size, dilation=dilation, padding=padding)
        g, v = _weight_norm_pair(template.weight.data)
        self.weight_g = nn.Parameter(g)
        self.weight_v = nn.Parameter(v)
        self.bias = nn.Parameter(template.bias.data.clone())
        self.dilation = dilation
        self.padding = padding

    def weight(self) -> torch.Tensor:
        """The effective convolution weight."""
        return torch._weight_norm(self.weight_v, self.weight_g, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, cin, time)`` -> ``(batch, cout, time')``."""
        return F.conv1d(x, self.weight(), self.bias, padding=self.padding, dilation=self.dilation)


class WNConvTranspose1d(nn.Module):
    """A weight-normalised ``ConvTranspose1d`` (norm per input channel: ``weight_g`` is ``(cin, 1, 1)``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, padding: int, output_padding: int):
        super().__init__()
        template = nn.ConvTranspose1d(
            cin, cout, kernel_size, stride=stride, padding=padding, output_padding=output_padding
        )
        g, v = _weight_norm_pair(template.weight.data)
        self.weight_g = nn.Parameter(g)
        self.weight_v = nn.Parameter(v)
        self.bias = nn.Parameter(template.bias.data.clone())
        self.stride = stride
        self.padding = padding
        self.output_padding = output_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, cin, t)`` -> ``(batch, cout, t * stride)`` for VoiceFixer's settings."""
        weight = torch._weight_norm(self.weight_v, self.weight_g, 0)
        return F.conv_transpose1d(
            x, weight, self.bias, stride=self.stride, padding=self.padding, output_padding=self.output_padding
        )


class Upsample(nn.Module):
    """``x + sin(x)``, then a weight-normalised transposed conv upsampling by ``factor`` (``UpsampleNet``).

    ``skip_conv`` is part of the checkpoint but unused at inference (upstream computes the
    skip branch and returns without it); it is kept for the key names and never evaluated.
    """

    def __init__(self, cin: int, cout: int, factor: int):
        super().__init__()
        self.skip_conv = nn.Conv1d(cin, cout, 1)
        self.layer = WNConvTranspose1d(
            cin, cout, factor * 2, factor, padding=factor // 2 + factor % 2, output_padding=factor % 2
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, cin, t)`` -> ``(batch, cout, t * factor)``."""
        return self.layer(x + torch.sin(x))


class ResStack(nn.Module):
    """``depth`` residual units: leaky ReLU, conv with dilation 3^i, leaky ReLU, conv (``layers.i.{1,3}``)."""

    def __init__(self, channels: int, depth: int = RESSTACK_DEPTH, kernel_size: int = 3):
        super().__init__()
        units = []
        for i in range(depth):
            dilation = 3 ** (i % 10)
            units.append(
                nn.Sequential(
                    nn.LeakyReLU(0.01),
                    WNConv1d(channels, channels, kernel_size, dilation, dilation * (kernel_size - 1) // 2),
                    nn.LeakyReLU(0.01),
                    WNConv1d(channels, channels, kernel_size, 1, (kernel_size - 1) // 2),
                )
            )
        self.layers = nn.ModuleList(units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same shape in and out."""
        for unit in self.layers:
            x = x + unit(x)
        return x


class Vocoder(nn.Module):
    """VoiceFixer's 44.1 kHz neural vocoder; state-dict keys ``condnet.*`` and ``generator.*`` as upstream.

    Args:
        channels: Width after the input convolution (1024 upstream); halved by each of the
            four upsampling blocks.
        cond_channels: Width of the conditioning network (512 upstream).
        depth: Residual units per stack (8 upstream).
    """

    def __init__(
        self,
        channels: int = VOCODER_CHANNELS,
        cond_channels: int = COND_CHANNELS,
        depth: int = RESSTACK_DEPTH,
    ):
        super().__init__()
        if channels % 16:
            raise ValueError(f"vocoder channels must be a multiple of 16, got {channels}")
        cond: list[nn.Module] = []
        cin = N_MELS
        for _ in range(5):
            cond += [WNConv1d(cin, cond_channels, 3, padding=1), nn.ELU()]
            cin = cond_channels
        self.condnet = nn.Sequential(*cond)
        act = nn.LeakyReLU(0.2)
        body: list[nn.Module] = [nn.ReflectionPad1d(3), WNConv1d(cond_channels, channels, 7), act]
        width = channels
        for factor in UPSAMPLE:
            body += [Upsample(width, width // 2, factor), ResStack(width // 2, depth), act]
            width //= 2
        body += [nn.ReflectionPad1d(3), WNConv1d(width, 1, 7), nn.Tanh()]
        self.generator = nn.Sequential(*body)
        x = torch.linspace(1, N_MELS, N_MELS)
        self.register_buffer("mel_weight", _MEL_WEIGHT_A * torch.exp(_MEL_WEIGHT_B * x), persistent=False)

    def condition(self, mel: torch.Tensor) -> torch.Tensor:
        """Linear mel ``(batch, 1, frames, 128)`` -> normalised conditioning ``(batch, 128, frames + tail)``.

        Upstream ``Vocoder.forward`` before the network: divide by the mel weighting
        ``a * exp(b * k)``; ``20 log10(max(1e-5, |m|)) - 20`` dB; map [-115, 0] dB to [-4, 4]
        with clipping; append ``frames % 2 + 4`` frames of -4 (silence).
        """
        m = torch.abs(mel / self.mel_weight)
        floor = torch.exp(_MIN_LEVEL_DB / 20 * torch.log(torch.tensor(10.0))).to(m.dtype)
        db = 20 * torch.log10(torch.maximum(floor, m)) - _REF_DB
        norm = torch.clamp(2 * _MAX_ABS * ((db - _MIN_DB) / -_MIN_DB) - _MAX_ABS, -_MAX_ABS, _MAX_ABS)
        cond = norm[:, 0].transpose(1, 2)
        frames = cond.shape[-1]
        tail = torch.full((cond.shape[0], N_MELS, frames % 2 + _TAIL_FRAMES), _TAIL_VALUE, dtype=cond.dtype)
        return torch.cat([cond, tail.to(cond.device)], dim=-1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Linear mel ``(batch, 1, frames, 128)`` -> waveform ``(batch, (frames + frames % 2 + 4) * 441)``."""
        return self.generator(self.condnet(self.condition(mel)))[:, 0]


def parameter_count(module: nn.Module) -> int:
    """Number of trained parameters (weight-normalised layers count ``weight_g`` and ``weight_v``)."""
    return int(sum(p.numel() for p in module.parameters()))
