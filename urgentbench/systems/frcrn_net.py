"""The FRCRN network of ClearerVoice-Studio's ``FRCRN_SE_16K``, written for urgentbench.

FRCRN (Zhao et al., ICASSP 2022) estimates a complex ratio mask in two stages: two complex
U-Nets run one after the other, the second on the first one's raw output, and the mask is
``tanh(stage 1) + tanh(stage 2)``. Each U-Net has seven complex convolution encoders and
seven complex transposed-convolution decoders (real and imaginary weights, complex
products), squeeze-and-excitation gates on the skip connections, feedforward sequential
memory (FSMN) blocks that run *along the frequency axis* between the layers (the
"frequency recurrence") and a two-layer FSMN along time at the bottleneck.

The module and parameter names are those of the published checkpoint (ClearerVoice-Studio
``clearvoice/models/frcrn_se``: ``DCCRN`` with ``stft``, ``istft``, ``unet``, ``unet2``),
so its state dict loads with ``strict=True`` (see :func:`urgentbench.systems.frcrn.read_checkpoint`
for the checkpoint's layout). Each sub-module is registered once, under the name the
upstream code registers first (``encoder0``, ``fsmn_enc1``, ``se_layer_dec0``...); upstream
also lists the same modules a second time (``encoders.0``...), which the loader folds.

Front-end: 640-sample frames (40 ms at 16 kHz), hop 320, 640-point DFT (321 bins), the
square root of a periodic Hann window for analysis and synthesis, no centre padding (the
first frame starts at the first sample). Analysis and synthesis are convolutions with
fixed kernels that the checkpoint also stores (``stft.weight``, ``istft.weight``,
``istft.window``, ``istft.enframe``); synthesis divides the overlap-added frames by the
overlap-added squared window (plus 1e-8).

Needs torch; imported only when the ``frcrn`` system is set up.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Frame length, hop and DFT size of the published model (16 kHz).
WIN = 640
HOP = 320
N_FFT = 640
BINS = N_FFT // 2 + 1
#: Channels of every hidden layer; FSMN width and memory order.
WIDTH = 128
MEMORY = 20
#: Squeeze-and-excitation bottleneck: WIDTH // 8.
SE_REDUCTION = 8
#: Encoder kernels (frequency, time), all with stride (2, 1) and padding (0, 1).
ENC_KERNELS = ((5, 2),) * 6 + ((2, 2),)
#: Decoder kernels; input channels are doubled by the skip connection except for the first.
DEC_KERNELS = ((2, 2), (5, 2), (5, 2), (5, 2), (6, 2), (5, 2), (5, 2))
LAYERS = len(ENC_KERNELS)


def sqrt_hann(n: int = WIN) -> np.ndarray:
    """Square root of the periodic Hann window of ``n`` samples (float64)."""
    return np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n))


def analysis_kernel() -> np.ndarray:
    """``(2 * BINS, WIN)`` rows: windowed cos(2πkn/N) for the real parts, windowed -sin for the imaginary parts."""
    phase = 2.0 * np.pi * np.outer(np.arange(BINS), np.arange(WIN)) / N_FFT
    return np.concatenate([np.cos(phase), -np.sin(phase)]) * sqrt_hann()


def synthesis_kernel() -> np.ndarray:
    """``(2 * BINS, WIN)``: the least-squares inverse of the unwindowed analysis rows, windowed.

    The analysis rows are orthogonal (squared norms N for bins 0 and N/2, N/2 for the others;
    the sine rows of bins 0 and N/2 are zero), so the pseudo-inverse maps each row to itself
    divided by its squared norm: the inverse real DFT of one frame.
    """
    phase = 2.0 * np.pi * np.outer(np.arange(BINS), np.arange(WIN)) / N_FFT
    scale = np.full(BINS, 2.0 / N_FFT)
    scale[[0, BINS - 1]] = 1.0 / N_FFT
    sine = -np.sin(phase) * scale[:, None]
    sine[[0, BINS - 1]] = 0.0
    return np.concatenate([np.cos(phase) * scale[:, None], sine]) * sqrt_hann()


class FrameAnalysis(nn.Module):
    """Framed DFT as a strided convolution: ``(batch, samples)`` -> ``(batch, 2 * BINS, frames)``."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight", torch.from_numpy(analysis_kernel()[:, None, :].astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Real parts (rows ``:BINS``) and imaginary parts (rows ``BINS:``) of each frame."""
        return F.conv1d(x[:, None, :], self.weight, stride=HOP)


class FrameSynthesis(nn.Module):
    """Inverse of :class:`FrameAnalysis`: weighted overlap-add, normalised by the summed squared window."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight", torch.from_numpy(synthesis_kernel()[:, None, :].astype(np.float32)))
        self.register_buffer("window", torch.from_numpy(sqrt_hann()[None, :, None].astype(np.float32)))
        self.register_buffer("enframe", torch.eye(WIN)[:, None, :])

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """``(batch, 2 * BINS, frames)`` -> ``(batch, (frames - 1) * HOP + WIN)``."""
        frames = spec.shape[-1]
        out = F.conv_transpose1d(spec, self.weight, stride=HOP)
        power = (self.window**2).expand(1, WIN, frames)
        norm = F.conv_transpose1d(power, self.enframe, stride=HOP)
        return (out / (norm + 1e-8))[:, 0]


# ----------------------------------------------------------------------------- complex layers
# A complex tensor is held as its real and imaginary parts stacked on the batch axis:
# (2 * batch, channels, frequency, time), real parts first. Upstream stacks them on a trailing
# axis instead; the arithmetic is the same.


def _complex_apply(re_op: nn.Module, im_op: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """(A + iB)(x + iy) = (Ax - By) + i(Ay + Bx) for real maps A = ``re_op``, B = ``im_op`` (each with its bias)."""
    a, b = re_op(z), im_op(z)
    ar, ai = a.chunk(2)
    br, bi = b.chunk(2)
    ar.sub_(bi)
    ai.add_(br)
    return a


class ComplexConv2d(nn.Module):
    """Complex 2-D convolution (``conv_re``, ``conv_im``) over (frequency, time)."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0) -> None:
        super().__init__()
        self.conv_re = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding)
        self.conv_im = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Complex convolution of a complex tensor."""
        return _complex_apply(self.conv_re, self.conv_im, z)


class ComplexConvTranspose2d(nn.Module):
    """Complex 2-D transposed convolution (``tconv_re``, ``tconv_im``)."""

    def __init__(self, cin: int, cout: int, kernel, stride, padding) -> None:
        super().__init__()
        self.tconv_re = nn.ConvTranspose2d(cin, cout, kernel, stride=stride, padding=padding)
        self.tconv_im = nn.ConvTranspose2d(cin, cout, kernel, stride=stride, padding=padding)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Complex transposed convolution of a complex tensor."""
        return _complex_apply(self.tconv_re, self.tconv_im, z)


class ComplexBatchNorm(nn.Module):
    """Batch norm of the real and imaginary parts separately (``bn_re``, ``bn_im``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn_re = nn.BatchNorm2d(channels)
        self.bn_im = nn.BatchNorm2d(channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Normalise each part with its own statistics."""
        zr, zi = z.chunk(2)
        return torch.cat([self.bn_re(zr), self.bn_im(zi)])


class EncoderLayer(nn.Module):
    """Complex convolution (stride 2 in frequency, time padded by one frame each side), batch norm, leaky ReLU."""

    def __init__(self, cin: int, cout: int, kernel) -> None:
        super().__init__()
        self.conv = ComplexConv2d(cin, cout, kernel, stride=(2, 1), padding=(0, 1))
        self.bn = ComplexBatchNorm(cout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """One frame longer, about half as many frequency rows."""
        return F.leaky_relu(self.bn(self.conv(z)), 0.01)


class DecoderLayer(nn.Module):
    """Complex transposed convolution (stride 2 in frequency, one frame shorter), batch norm, leaky ReLU."""

    def __init__(self, cin: int, cout: int, kernel) -> None:
        super().__init__()
        self.transconv = ComplexConvTranspose2d(cin, cout, kernel, stride=(2, 1), padding=(0, 1))
        self.bn = ComplexBatchNorm(cout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """One frame shorter, about twice as many frequency rows."""
        return F.leaky_relu(self.bn(self.transconv(z)), 0.01)


class Memory(nn.Module):
    """One real FSMN layer over a sequence: ``x + p + causal_depthwise_filter(p)``, ``p = W2 relu(W1 x + b)``.

    ``conv1`` holds one ``MEMORY``-tap filter per feature, applied to the current and the
    ``MEMORY - 1`` previous positions of the sequence.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.project = nn.Linear(features, features, bias=False)
        self.conv1 = nn.Conv2d(features, features, (MEMORY, 1), groups=features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, sequence, features)``; same shape out."""
        p = self.project(F.relu(self.linear(x)))
        seq = p.transpose(1, 2)[..., None]  # (batch, features, sequence, 1)
        filtered = self.conv1(F.pad(seq, (0, 0, MEMORY - 1, 0)))[..., 0].transpose(1, 2)
        return filtered.add_(p).add_(x)


class ComplexMemory(nn.Module):
    """Complex FSMN (``fsmn_re_L1``, ``fsmn_im_L1``) along the *frequency* axis, channels as features."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fsmn_re_L1 = Memory(width)
        self.fsmn_im_L1 = Memory(width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(2b, c, f, t)`` -> same shape; each frame's frequency rows form one sequence."""
        b2, c, f, t = z.shape
        seq = z.permute(0, 3, 2, 1).reshape(b2 * t, f, c)
        y = _complex_apply(self.fsmn_re_L1, self.fsmn_im_L1, seq)
        return y.reshape(b2, t, f, c).permute(0, 3, 2, 1)


class ComplexTimeMemory(nn.Module):
    """Two complex FSMN layers along *time* at the bottleneck (channels x frequency rows as features)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fsmn_re_L1 = Memory(width)
        self.fsmn_im_L1 = Memory(width)
        self.fsmn_re_L2 = Memory(width)
        self.fsmn_im_L2 = Memory(width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(2b, c, f, t)`` with ``c * f == width`` -> same shape."""
        b2, c, f, t = z.shape
        seq = z.reshape(b2, c * f, t).transpose(1, 2)
        seq = _complex_apply(self.fsmn_re_L1, self.fsmn_im_L1, seq)
        seq = _complex_apply(self.fsmn_re_L2, self.fsmn_im_L2, seq)
        return seq.transpose(1, 2).reshape(b2, c, f, t)


class ComplexExcitation(nn.Module):
    """Squeeze-and-excitation gate from the (frequency, time) means of each channel's two parts.

    The gates of the real and of the imaginary part are formed like a complex product of
    the two sigmoid branches (``fc_r``, ``fc_i``) with the complex channel mean, and scale
    the real and the imaginary part of the input respectively. The means run over the whole
    input: every output frame depends on every input frame.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = channels // SE_REDUCTION
        self.fc_r = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())
        self.fc_i = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(2b, c, f, t)`` scaled per channel and part."""
        mr, mi = z.mean(dim=(2, 3)).chunk(2)
        gate_r = self.fc_r(mr) - self.fc_i(mi)
        gate_i = self.fc_r(mi) + self.fc_i(mr)
        return z * torch.cat([gate_r, gate_i])[:, :, None, None]


class ComplexUNet(nn.Module):
    """One FRCRN stage: 7 encoders, a time FSMN, 7 decoders, a 1x1 complex output convolution.

    Registered like upstream (module names are state-dict names): ``encoder{i}``,
    ``decoder{i}``, ``fsmn_enc{i}``, ``fsmn_dec{i}`` (i = 0..6), ``se_layer_enc{i}`` (0..6),
    ``se_layer_dec{i}`` (0..5), ``fsmn`` and ``linear``. ``fsmn_enc0``, ``fsmn_dec6`` and
    ``se_layer_dec5`` exist in the checkpoint but are not used by the forward pass.

    Args:
        width: Channels of the hidden layers and FSMN features (128 in the published model;
            tests use smaller widths, same structure and names).
    """

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        for i, kernel in enumerate(ENC_KERNELS):
            self.add_module(f"fsmn_enc{i}", ComplexMemory(width))
            self.add_module(f"encoder{i}", EncoderLayer(1 if i == 0 else width, width, kernel))
            self.add_module(f"se_layer_enc{i}", ComplexExcitation(width))
        for i, kernel in enumerate(DEC_KERNELS):
            self.add_module(f"fsmn_dec{i}", ComplexMemory(width))
            cin = width if i == 0 else 2 * width
            self.add_module(f"decoder{i}", DecoderLayer(cin, 1 if i == LAYERS - 1 else width, kernel))
            if i < LAYERS - 1:
                self.add_module(f"se_layer_dec{i}", ComplexExcitation(width))
        self.fsmn = ComplexTimeMemory(width)
        self.linear = ComplexConv2d(1, 1, 1)

    def _sub(self, kind: str, i: int) -> nn.Module:
        return self._modules[f"{kind}{i}"]  # type: ignore[return-value]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(2b, 1, BINS, frames)`` -> same shape."""
        skips = []  # gated outputs of encoders 0..5; decoder i takes that of encoder 5 - i
        for i in range(LAYERS):
            if i > 0:
                z = self._sub("fsmn_enc", i)(z)
            z = self._sub("encoder", i)(z)
            if i < LAYERS - 1:  # upstream also gates the last encoder's output, then never uses it
                skips.append(self._sub("se_layer_enc", i)(z))
        p = self.fsmn(z)
        del z
        for i in range(LAYERS):
            p = self._sub("decoder", i)(p)
            if i == LAYERS - 1:
                break
            p = self._sub("fsmn_dec", i)(p)
            if i < LAYERS - 2:
                p = self._sub("se_layer_dec", i)(p)
            p = torch.cat([p, skips.pop()], dim=1)
        return self.linear(p)


class FRCRN(nn.Module):
    """FRCRN_SE_16K: waveform in, waveform out (16 kHz), through a two-stage complex ratio mask.

    Args:
        width: Hidden width (128 in the published model; see :class:`ComplexUNet`).
    """

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.width = width
        self.stft = FrameAnalysis()
        self.istft = FrameSynthesis()
        self.unet = ComplexUNet(width)
        self.unet2 = ComplexUNet(width)

    def mask(self, spec: torch.Tensor) -> torch.Tensor:
        """Complex mask ``tanh(u1) + tanh(u2)``, ``u1 = unet(spec)``, ``u2 = unet2(u1)``; ``(2b, 1, BINS, T)``."""
        first = self.unet(spec)
        return torch.tanh(self.unet2(first)).add_(torch.tanh(first))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(batch, n)`` at 16 kHz -> ``(batch, (frames - 1) * HOP + WIN)``, ``frames = (n - WIN) // HOP + 1``.

        Samples after the last whole frame are not reconstructed: callers pad.
        """
        frames = self.stft(wave)
        sr, si = frames[:, None, :BINS], frames[:, None, BINS:]
        mr, mi = self.mask(torch.cat([sr, si])).chunk(2)
        est = torch.cat([sr * mr - si * mi, sr * mi + si * mr], dim=2)[:, 0]
        return self.istft(est)


def output_length(n: int) -> int:
    """Samples :meth:`FRCRN.forward` returns for an ``n``-sample input (``n >= WIN``)."""
    return (n - WIN) // HOP * HOP + WIN


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters (the fixed STFT kernels are buffers here, as they are frozen upstream)."""
    return int(sum(p.numel() for p in model.parameters()))
