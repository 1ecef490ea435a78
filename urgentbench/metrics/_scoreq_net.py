"""The SCOREQ no-reference network (scoreq 1.0.1, PyTorch form), written for urgentbench.

SCOREQ (Ragano, Skoglund and Hines, NeurIPS 2024) fine-tunes a wav2vec 2.0 base encoder
with a contrastive regression loss; the no-reference (NR) model adds one linear layer
that maps the encoder's utterance embedding to a MOS. In the ``scoreq`` package the
network is ``MosPredictor(TripletModel(fairseq wav2vec 2.0 base))``; the module tree
below has the same attribute names, so the state dict of the released checkpoints
(``adapt_nr_telephone.pt``, ``adapt_nr_synthetic.pt``) loads with ``strict=True``:

- ``pt_model.ssl_model``: wav2vec 2.0 base in fairseq's layout after
  ``remove_pretraining_modules()`` (:class:`urgentbench.metrics._utmos_net.Wav2Vec2Base`:
  feature encoder, ``layer_norm``, ``post_extract_proj``, post-LN transformer,
  ``mask_emb``).
- ``pt_model.embedding_layer``: ``Sequential(ReLU, Linear(768, 256))``, the projection
  head of the reference (distance) mode. The NR mode does not use it, but the checkpoint
  holds it (index ``.1`` is the linear layer).
- ``mos_layer``: ``Linear(768, 1)``.

NR forward pass of one waveform: the last transformer layer's frames are averaged over
time, the mean vector is scaled to unit Euclidean length, and ``mos_layer`` maps it to
the score: ``score = w . (m / max(||m||, 1e-12)) + b``.

fairseq zero-pads the frame sequence to an even length before the transformer and masks
the padded key; running the transformer on the unpadded sequence gives the same values
(see :mod:`urgentbench.metrics._utmos_net`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from urgentbench.metrics._utmos_net import CONV_LAYERS, FFN_DIM, HEADS, LAYERS, SSL_DIM, Wav2Vec2Base

#: Width of the reference-mode projection head (unused by the NR score, present in the checkpoint).
EMB_DIM = 256


class _TripletEncoder(nn.Module):
    """scoreq's ``TripletModel``: the SSL encoder and the reference-mode projection head."""

    def __init__(self, ssl_model: Wav2Vec2Base, dim: int, emb_dim: int):
        super().__init__()
        self.ssl_model = ssl_model
        self.embedding_layer = nn.Sequential(nn.ReLU(), nn.Linear(dim, emb_dim))

    def forward(self, wave: Tensor) -> Tensor:
        """(B, T) 16 kHz samples -> (B, dim): frame mean of the last layer, unit length (no head)."""
        frames = self.ssl_model(wave)
        return F.normalize(frames.mean(dim=1), dim=1)


class ScoreqNR(nn.Module):
    """SCOREQ in no-reference mode (scoreq's ``MosPredictor``): waveform -> predicted MOS.

    The defaults are the released sizes (wav2vec 2.0 base); smaller ones build the same
    architecture for tests (``heads`` must divide ``dim``).
    """

    def __init__(
        self,
        channels: int = CONV_LAYERS[-1][0],
        dim: int = SSL_DIM,
        ffn: int = FFN_DIM,
        heads: int = HEADS,
        layers: int = LAYERS,
        emb_dim: int = EMB_DIM,
    ) -> None:
        super().__init__()
        ssl = Wav2Vec2Base(channels=channels, dim=dim, ffn=ffn, heads=heads, layers=layers)
        self.pt_model = _TripletEncoder(ssl, dim, emb_dim)
        self.mos_layer = nn.Linear(dim, 1)

    def embedding(self, wave: Tensor) -> Tensor:
        """The unit-length utterance embedding the score is read from: (B, T) -> (B, dim)."""
        return self.pt_model(wave)

    def forward(self, wave: Tensor) -> Tensor:
        """Predicted MOS of each 16 kHz waveform: (B, T) -> (B,).

        Score utterances of different lengths one at a time: the first convolution's
        GroupNorm normalises each channel over the whole input, so extra zero padding
        changes the features.
        """
        return self.mos_layer(self.embedding(wave)).squeeze(1)


def sizes_of(state: dict[str, Tensor]) -> dict[str, int]:
    """The constructor sizes of :class:`ScoreqNR` that ``state`` was saved from (heads stay 12).

    Raises:
        KeyError: When ``state`` lacks the tensors the sizes are read from.
    """
    ssl = "pt_model.ssl_model."
    layers = {k.split(".")[4] for k in state if k.startswith(f"{ssl}encoder.layers.")}
    return {
        "channels": int(state[f"{ssl}layer_norm.weight"].shape[0]),
        "dim": int(state["mos_layer.weight"].shape[1]),
        "ffn": int(state[f"{ssl}encoder.layers.0.fc1.weight"].shape[0]),
        "layers": len(layers),
        "emb_dim": int(state["pt_model.embedding_layer.1.weight"].shape[0]),
    }
