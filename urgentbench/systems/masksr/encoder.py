"""The speech encoder: power-law compressed STFT magnitude -> MLP -> transformer blocks.

MaskSR conditions its masked LM on embeddings of the *degraded* 44.1 kHz waveform. The
input feature is ``|STFT(x)|^0.3`` with a 2048-sample Hann window and a 512-sample hop
(the codec's hop), so encoder frame ``t`` and token frame ``t`` describe the same 512
samples: the STFT is centred (frame ``t`` is centred on sample ``512 t``) and the frame
that ``center=True`` adds after the last full hop is dropped, giving ``L // 512`` frames
for ``L`` samples, exactly as many as the codec's tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from urgentbench.systems.masksr.configs import EncoderConfig
from urgentbench.systems.masksr.layers import Transformer


def compressed_magnitude(wave: torch.Tensor, n_fft: int = 2048, hop: int = 512, win_length: int = 2048,
                         exponent: float = 0.3) -> torch.Tensor:
    """Power-law compressed magnitude spectrogram.

    Args:
        wave: ``[B, L]`` waveform.
        n_fft: STFT size (Hann window, centred, zero padding).
        hop: STFT hop.
        win_length: STFT window length.
        exponent: Compression exponent (0.3).

    Returns:
        ``[B, L // hop, n_fft // 2 + 1]`` float32 features.
    """
    with torch.autocast(device_type=wave.device.type, enabled=False):
        window = torch.hann_window(win_length, device=wave.device, dtype=torch.float32)
        spec = torch.stft(wave.float(), n_fft=n_fft, hop_length=hop, win_length=win_length, window=window,
                          center=True, pad_mode="constant", return_complex=True)
        mag = spec.abs().clamp_min(1e-8) ** exponent
    return mag[:, :, : wave.shape[-1] // hop].transpose(1, 2).contiguous()


class SpeechEncoder(nn.Module):
    """Degraded waveform -> frame embeddings ``[B, T, dim]`` (T = L // hop)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        bins = cfg.n_fft // 2 + 1
        self.mlp = nn.Sequential(
            nn.Linear(bins, cfg.mlp_hidden), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.mlp_hidden, cfg.dim)
        )
        self.transformer = Transformer(cfg.dim, cfg.layers, cfg.heads, cfg.ff_mult, cfg.dropout)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave`` ``[B, L]`` -> ``[B, L // hop, dim]``."""
        c = self.cfg
        feats = compressed_magnitude(wave, c.n_fft, c.hop_length, c.win_length, c.exponent)
        return self.transformer(self.mlp(feats))
