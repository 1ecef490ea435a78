"""The UTMOS22 strong learner network as packaged by SpeechMOS v1.2.0 (inference only).

A re-implementation, written for urgentbench, of the module tree of SpeechMOS's
``UTMOS22Strong`` (tarepan/SpeechMOS v1.2.0, ``speechmos/utmos22/strong/model.py`` and
``speechmos/utmos22/fairseq_alt.py``). Attribute names follow that tree, so the state dict
of the released checkpoint ``utmos22_strong_step7459_v1.pt`` loads with ``strict=True``:

- ``wav2vec2``: a wav2vec 2.0 base network (fairseq layout, post-LN transformer):

  - ``feature_extractor.conv_layers.{0..6}``: seven bias-free 1-D convolutions, 512
    channels, kernels 10, 3, 3, 3, 3, 2, 2 and strides 5, 2, 2, 2, 2, 2, 2 (20 ms hop
    and a 400-sample receptive field at 16 kHz); the first is followed by a GroupNorm
    with one group per channel, every one by an exact (erf) GELU. Index ``.0`` is the
    convolution and ``.2`` the GroupNorm, as in the fairseq ``Sequential``; the dropout
    at index ``.1`` has no parameters.
  - ``layer_norm`` (512) and ``post_extract_proj`` (512 -> 768).
  - ``encoder.pos_conv.0``: the convolutional relative position embedding (kernel 128,
    16 groups, padding 64, weight normalisation over kernel positions stored as
    ``weight_g`` / ``weight_v``), whose last output frame is dropped, then GELU; its
    output is added to the input.
  - ``encoder.layer_norm`` then ``encoder.layers.{0..11}``: post-LN transformer layers,
    12 heads, model width 768, feed-forward 3072, exact GELU.
  - ``mask_emb``: unused at inference (kept so the checkpoint loads strictly).

- ``domain_emb`` and ``judge_emb``: the (1, 128) rows of UTMOS22's data-domain and
  listener embedding tables that SpeechMOS baked into the checkpoint (UTMOS22's
  inference convention is domain 0, the main track, and listener 288, the "mean
  listener" (inferred; SpeechMOS stores only the selected rows)). Both are repeated
  over frames and concatenated to the 768 SSL features (1024 in total).
- ``blstm``: one bidirectional LSTM layer, 512 units per direction.
- ``projection``: Linear 1024 -> 2048, ReLU, Linear 2048 -> 1 per frame.

The utterance score is ``2 * mean_over_frames(projection) + 3`` (UTMOS22 trains on MOS
normalised to [-1, 1]).

fairseq (and SpeechMOS) zero-pad the frame sequence to an even length before the
transformer and mask the padded key in every attention layer; a masked key contributes
nothing to the other frames and the padded query is discarded afterwards, so running
the transformer on the unpadded sequence gives the same values. This implementation does
that (no padding, no mask).
Dropout layers are absent: the network is used in evaluation mode only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: (channels, kernel, stride) of the seven convolutions of the wav2vec 2.0 feature encoder.
CONV_LAYERS = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2
SSL_DIM = 768
FFN_DIM = 3072
HEADS = 12
LAYERS = 12
POS_KERNEL = 128
POS_GROUPS = 16
EMB_DIM = 128
LSTM_DIM = 512
PROJ_DIM = 2048


def frames_for(samples: int) -> int:
    """Number of 20 ms frames the feature encoder makes of ``samples`` samples (0 when too short)."""
    n = samples
    for _, kernel, stride in CONV_LAYERS:
        if n < kernel:
            return 0
        n = (n - kernel) // stride + 1
    return n


class _ConvBlock(nn.Module):
    """One feature-encoder convolution: conv (index 0), optional GroupNorm (index 2), GELU."""

    def __init__(self, n_in: int, n_out: int, kernel: int, stride: int, group_norm: bool):
        super().__init__()
        # Indices match the fairseq Sequential (conv, dropout, [norm], gelu) for the state-dict keys.
        self.add_module("0", nn.Conv1d(n_in, n_out, kernel, stride=stride, bias=False))
        if group_norm:
            self.add_module("2", nn.GroupNorm(n_out, n_out, affine=True))
        self._group_norm = group_norm

    def forward(self, x: Tensor) -> Tensor:
        x = getattr(self, "0")(x)
        if self._group_norm:
            x = getattr(self, "2")(x)
        return F.gelu(x)


class _FeatureEncoder(nn.Module):
    def __init__(self, channels: int = CONV_LAYERS[0][0]) -> None:
        super().__init__()
        blocks = []
        n_in = 1
        for i, (_, kernel, stride) in enumerate(CONV_LAYERS):
            blocks.append(_ConvBlock(n_in, channels, kernel, stride, group_norm=i == 0))
            n_in = channels
        self.conv_layers = nn.ModuleList(blocks)

    def forward(self, wave: Tensor) -> Tensor:
        """(B, T) samples -> (B, 512, frames)."""
        x = wave.unsqueeze(1)
        for block in self.conv_layers:
            x = block(x)
        return x


class _WeightNormConv(nn.Module):
    """Grouped 1-D convolution whose kernel is ``weight_g * weight_v / ||weight_v||``.

    The norm is taken over output and input channels separately for each kernel
    position (weight normalisation with ``dim=2``, the fairseq positional convolution).
    """

    def __init__(self, channels: int, kernel: int, groups: int):
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.normal_(self.weight_v, std=(4.0 / (kernel * channels)) ** 0.5)
        with torch.no_grad():
            self.weight_g.copy_(self._v_norm())
        self.groups = groups
        self.padding = kernel // 2

    def _v_norm(self) -> Tensor:
        return self.weight_v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight_v * (self.weight_g / self._v_norm())
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, T, D): softmax(q k^T / sqrt(d_head)) v per head, then the output projection."""
        b, t, d = x.shape
        h = self.heads

        def split(y: Tensor) -> Tensor:
            return y.view(b, t, h, d // h).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class _TransformerLayer(nn.Module):
    """Post-LN layer: LN(x + attention(x)), then LN(x + fc2(gelu(fc1(x))))."""

    def __init__(self, dim: int, ffn: int, heads: int):
        super().__init__()
        self.self_attn = _SelfAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn)
        self.fc2 = nn.Linear(ffn, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.self_attn_layer_norm(x + self.self_attn(x))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class _ContextEncoder(nn.Module):
    def __init__(self, dim: int = SSL_DIM, ffn: int = FFN_DIM, heads: int = HEADS, layers: int = LAYERS) -> None:
        super().__init__()
        self.pos_conv = nn.ModuleList([_WeightNormConv(dim, POS_KERNEL, POS_GROUPS)])
        self.layer_norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList([_TransformerLayer(dim, ffn, heads) for _ in range(layers)])

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, 768) -> (B, T, 768)."""
        pos = self.pos_conv[0](x.transpose(1, 2))[:, :, :-1]  # even kernel: drop the extra last frame
        x = self.layer_norm(x + F.gelu(pos).transpose(1, 2))
        for layer in self.layers:
            x = layer(x)
        return x


class Wav2Vec2Base(nn.Module):
    """wav2vec 2.0 base (fairseq layout) returning the last transformer layer's output.

    The defaults are the base sizes; smaller ones (feature-encoder ``channels``, model
    width ``dim``, feed-forward ``ffn``, ``heads``, ``layers``) build the same architecture
    for tests.
    """

    def __init__(
        self,
        channels: int = CONV_LAYERS[-1][0],
        dim: int = SSL_DIM,
        ffn: int = FFN_DIM,
        heads: int = HEADS,
        layers: int = LAYERS,
    ) -> None:
        super().__init__()
        self.feature_extractor = _FeatureEncoder(channels)
        self.layer_norm = nn.LayerNorm(channels)
        self.post_extract_proj = nn.Linear(channels, dim)
        self.encoder = _ContextEncoder(dim, ffn, heads, layers)
        self.mask_emb = nn.Parameter(torch.zeros(dim).uniform_())

    def forward(self, wave: Tensor) -> Tensor:
        """(B, T) 16 kHz samples -> (B, frames, 768)."""
        features = self.feature_extractor(wave).transpose(1, 2)
        features = self.post_extract_proj(self.layer_norm(features))
        return self.encoder(features)


class UTMOS22Strong(nn.Module):
    """UTMOS22 strong learner without its phoneme encoder (SpeechMOS ``utmos22_strong``)."""

    def __init__(self) -> None:
        super().__init__()
        self.wav2vec2 = Wav2Vec2Base()
        self.domain_emb = nn.Parameter(torch.randn(1, EMB_DIM), requires_grad=False)
        self.judge_emb = nn.Parameter(torch.randn(1, EMB_DIM), requires_grad=False)
        self.blstm = nn.LSTM(
            input_size=SSL_DIM + 2 * EMB_DIM, hidden_size=LSTM_DIM, batch_first=True, bidirectional=True
        )
        self.projection = nn.Sequential(nn.Linear(2 * LSTM_DIM, PROJ_DIM), nn.ReLU(), nn.Linear(PROJ_DIM, 1))

    def forward(self, wave: Tensor) -> Tensor:
        """Predicted MOS of each 16 kHz waveform: (B, T) -> (B,).

        Utterances of different lengths must be scored one at a time: the first
        convolution's GroupNorm normalises each channel over the whole input, so zero
        padding would change the features of the shorter utterance.
        """
        ssl = self.wav2vec2(wave)
        cond = torch.cat([self.domain_emb, self.judge_emb], dim=1)  # (1, 256)
        x = torch.cat([ssl, cond.unsqueeze(1).expand(wave.shape[0], ssl.shape[1], -1)], dim=2)
        scores = self.projection(self.blstm(x)[0]).squeeze(2)  # (B, frames)
        return scores.mean(dim=1) * 2 + 3
