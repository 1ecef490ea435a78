"""MaskSR2's semantic distillation: HuBERT targets of the clean 16 kHz speech and the head predicting them.

During training, a frozen HuBERT teacher (pre-trained on LibriSpeech; ``transformers``
``HubertModel``) sees the *target* speech resampled to 16 kHz. Its features become the
distillation target of a small head on the speech encoder, one of (``semantic.target``):

* ``kmeans``: layer-9 features quantised by a 500-cluster k-means (the paper's L9-K500);
  the head predicts the cluster with a cross-entropy loss;
* ``layer``: the continuous layer-9 features (L9-feature);
* ``average``: the mean of several layers' features (Avg-feature).

Continuous targets are learnt with ``L1 + (1 - cosine similarity)`` per frame (the loss
form of the paper is unknown; this is DistilHuBERT's choice).

**Frame rates.** HuBERT's convolutional front end has a 400-sample receptive field and a
320-sample stride at 16 kHz, so its frame ``k`` is centred on ``(320 k + 200) / 16000``
seconds (50 frames per second). Encoder and codec frames are 512 samples at 44.1 kHz
(86.13 per second), frame ``t`` centred on ``512 t / 44100`` seconds (see
:mod:`~urgentbench.systems.masksr.encoder`). :func:`align_frames` resamples teacher
frames onto encoder frames at those times: linear interpolation for features, the
nearest teacher frame for k-means tokens; times outside the teacher's first and last
frame centres take the edge frame.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from urgentbench.systems.masksr.configs import SemanticConfig

logger = logging.getLogger(__name__)

#: HuBERT front end at 16 kHz: stride and receptive field in samples.
HUBERT_STRIDE = 320
HUBERT_RECEPTIVE_FIELD = 400


def frame_times(n: int, hop: int, sample_rate: int, offset: float = 0.0, device: Any = None) -> torch.Tensor:
    """Centre times (s) of ``n`` frames: ``(hop * i + offset) / sample_rate``."""
    return (torch.arange(n, device=device, dtype=torch.float64) * hop + offset) / sample_rate


def align_frames(
    feats: torch.Tensor, n_frames: int, *, hop: int = 512, sample_rate: int = 44100,
    teacher_rate: int = 16000, mode: str = "linear",
) -> torch.Tensor:
    """Resample teacher frames ``[B, N, ...]`` onto ``n_frames`` encoder frames ``[B, n_frames, ...]``.

    Args:
        feats: Teacher features ``[B, N, D]`` (``linear``) or tokens ``[B, N]`` (``nearest``).
        n_frames: Encoder/codec frames (frame ``t`` centred on ``hop * t / sample_rate`` s).
        hop: Encoder frame hop (samples).
        sample_rate: Encoder rate.
        teacher_rate: Teacher rate (frame ``k`` centred on ``(320 k + 200) / teacher_rate`` s).
        mode: ``linear`` or ``nearest``.

    Raises:
        ValueError: For an unknown mode or no teacher frames.
    """
    n_src = feats.shape[1]
    if n_src < 1:
        raise ValueError("no teacher frames to align (target shorter than HuBERT's 400-sample receptive field)")
    t = frame_times(n_frames, hop, sample_rate, device=feats.device)
    pos = ((t * teacher_rate - HUBERT_RECEPTIVE_FIELD / 2) / HUBERT_STRIDE).clamp(0, n_src - 1)
    if mode == "nearest":
        return feats[:, torch.round(pos).long()]
    if mode != "linear":
        raise ValueError(f"unknown alignment mode {mode!r}")
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=n_src - 1)
    w = (pos - lo).to(feats.dtype).view(1, -1, *([1] * (feats.dim() - 2)))
    return feats[:, lo] * (1 - w) + feats[:, hi] * w


# ----------------------------------------------------------------------------------------
# k-means
# ----------------------------------------------------------------------------------------


def fit_kmeans(x: torch.Tensor, k: int, iters: int = 50, seed: int = 0) -> torch.Tensor:
    """k-means (k-means++ initialisation, Lloyd iterations) of ``x`` ``[N, D]``; returns centroids ``[k, D]``.

    Raises:
        ValueError: When there are fewer points than clusters.
    """
    x = x.double()
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least {k} frames, got {n}")
    g = torch.Generator().manual_seed(seed)
    centroids = x[torch.randint(n, (1,), generator=g)]
    d2 = torch.cdist(x, centroids).squeeze(1) ** 2
    for _ in range(1, k):
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / n)
        nxt = x[torch.multinomial(probs.float(), 1, generator=g)]
        centroids = torch.cat([centroids, nxt])
        d2 = torch.minimum(d2, (torch.cdist(x, nxt).squeeze(1)) ** 2)
    for _ in range(iters):
        assign = torch.cdist(x, centroids).argmin(1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        empty = counts == 0
        new = sums / counts.clamp_min(1)[:, None]
        new[empty] = centroids[empty]  # keep a cluster that lost all its points
        if torch.equal(new, centroids):
            break
        centroids = new
    return centroids.float()


def load_centroids(path: str | Path) -> torch.Tensor:
    """Centroids ``[K, D]`` from ``.npy``, ``.safetensors`` (key ``centroids``) or a joblib k-means model.

    Raises:
        ValueError: For an unreadable file or one without centroids.
    """
    path = Path(path)
    try:
        if path.suffix == ".npy":
            import numpy as np

            return torch.from_numpy(np.load(path, allow_pickle=False)).float()
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))["centroids"].float()
        import joblib  # fairseq's *_km500.bin files are sklearn MiniBatchKMeans pickles

        return torch.from_numpy(joblib.load(path).cluster_centers_).float()
    except ImportError as exc:
        raise ValueError(f"{path}: reading a joblib k-means model needs joblib and scikit-learn "
                         f"(pip install joblib scikit-learn), or convert it to .npy") from exc
    except Exception as exc:
        raise ValueError(f"{path}: cannot read k-means centroids ({type(exc).__name__}: {exc})") from exc


# ----------------------------------------------------------------------------------------
# teacher
# ----------------------------------------------------------------------------------------


class HubertTeacher(nn.Module):
    """A frozen ``transformers`` HuBERT returning the configured target features at 50 frames/s."""

    def __init__(self, model: Any, cfg: SemanticConfig):
        super().__init__()
        self.cfg = cfg
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        layers = self.model.config.num_hidden_layers
        needed = cfg.average_layers if cfg.target == "average" else [cfg.layer]
        if not needed or min(needed) < 1 or max(needed) > layers:
            raise ValueError(f"HuBERT has layers 1..{layers}; the config asks for {needed}")
        if self.model.config.hidden_size != cfg.teacher_dim:
            raise ValueError(
                f"HuBERT width {self.model.config.hidden_size} differs from semantic.teacher_dim {cfg.teacher_dim}"
            )

    def train(self, mode: bool = True) -> HubertTeacher:
        """Always stays in eval mode (frozen)."""
        super().train(False)
        return self

    @classmethod
    def build(cls, cfg: SemanticConfig) -> HubertTeacher:
        """The pretrained teacher asset, or a random one from ``cfg.hubert`` and ``cfg.seed``."""
        from urgentbench.systems.masksr.codec import _transformers

        tr = _transformers()
        if cfg.teacher is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed)
                model = tr.HubertModel(tr.HubertConfig(**cfg.hubert))
        else:
            from urgentbench.assets import get_asset

            model = tr.HubertModel.from_pretrained(str(get_asset(cfg.teacher).path()), local_files_only=True)
        return cls(model, cfg)

    @torch.no_grad()
    def forward(self, wave16: torch.Tensor) -> torch.Tensor:
        """``[B, L16]`` 16 kHz target -> ``[B, N, D]`` features (N = (L16 - 400) // 320 + 1)."""
        x = wave16.float()
        if self.cfg.normalize_input:
            x = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-7)
        with torch.autocast(device_type=x.device.type, enabled=False):
            hidden = self.model(x, output_hidden_states=True).hidden_states
        if self.cfg.target == "average":
            return torch.stack([hidden[i] for i in self.cfg.average_layers]).mean(0)
        return hidden[self.cfg.layer]


# ----------------------------------------------------------------------------------------
# the distillation head
# ----------------------------------------------------------------------------------------


class SemanticHead(nn.Module):
    """Predicts the teacher targets from encoder frames; holds the k-means centroids as a buffer.

    Args:
        in_dim: Encoder width.
        cfg: Semantic config (target kind, clusters, teacher width).
    """

    def __init__(self, in_dim: int, cfg: SemanticConfig):
        super().__init__()
        self.cfg = cfg
        out = cfg.n_clusters if cfg.target == "kmeans" else cfg.teacher_dim
        self.net = nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, out))
        if cfg.target == "kmeans":
            self.register_buffer("centroids", torch.zeros(cfg.n_clusters, cfg.teacher_dim))
            self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def forward(self, enc: torch.Tensor) -> torch.Tensor:
        """``[B, T, in_dim]`` -> ``[B, T, n_clusters | teacher_dim]``."""
        return self.net(enc)

    def set_centroids(self, centroids: torch.Tensor) -> None:
        """Install k-means centroids ``[n_clusters, teacher_dim]``.

        Raises:
            ValueError: For a wrong shape.
        """
        if tuple(centroids.shape) != tuple(self.centroids.shape):
            raise ValueError(f"centroids have shape {tuple(centroids.shape)}, expected {tuple(self.centroids.shape)}")
        self.centroids.copy_(centroids.to(self.centroids))
        self.fitted.fill_(True)

    def targets(self, teacher_feats: torch.Tensor, n_frames: int, hop: int, sample_rate: int) -> torch.Tensor:
        """Teacher features ``[B, N, D]`` -> aligned targets: tokens ``[B, T]`` or features ``[B, T, D]``.

        Raises:
            RuntimeError: For k-means targets before the centroids were fitted or loaded.
        """
        if self.cfg.target == "kmeans":
            if not bool(self.fitted):
                raise RuntimeError("k-means centroids are not set (fit them or give semantic.kmeans_path)")
            d = torch.cdist(teacher_feats.float(), self.centroids.float()[None].expand(teacher_feats.shape[0], -1, -1))
            tokens = d.argmin(-1)
            return align_frames(tokens, n_frames, hop=hop, sample_rate=sample_rate,
                                teacher_rate=self.cfg.teacher_rate, mode="nearest")
        return align_frames(teacher_feats.float(), n_frames, hop=hop, sample_rate=sample_rate,
                            teacher_rate=self.cfg.teacher_rate, mode="linear")

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy (k-means tokens) or L1 + cosine distance (features), averaged over frames."""
        if self.cfg.target == "kmeans":
            return F.cross_entropy(pred.float().reshape(-1, pred.shape[-1]), target.reshape(-1))
        pred = pred.float()
        l1 = (pred - target).abs().mean()
        cos = F.cosine_similarity(pred, target, dim=-1, eps=1e-6).mean()
        return l1 + (1.0 - cos)
