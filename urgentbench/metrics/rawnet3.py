"""RawNet3 speaker embeddings of ESPnet's VoxCeleb checkpoint (``espnet/voxcelebs12_rawnet3``).

URGENT's ``calculate_speaker_similarity.py`` (2024-2026) computes SpkSim as the cosine
similarity of ``Speech2Embedding.from_pretrained("espnet/voxcelebs12_rawnet3")``
embeddings of the reference and the enhanced signal at 16 kHz (soxr-resampled by the
script when needed). This module reproduces that without ESPnet:

- **Network**: urgentbench's own re-implementation of the ESPnet-SPK model
  (:mod:`urgentbench.metrics._rawnet3_net`: asteroid sinc front end, RawNet3 encoder,
  attentive statistics pooling, projector to 192 dimensions). With identical weights it
  gives the same embeddings as ESPnet 202402's modules (checked bit-for-bit on random
  weights; the test suite holds reference values from that check).
- **Weights**: ``40epoch.pth`` and its ``config.yaml`` from the Hugging Face repository
  at commit ``ec53009`` (the commit that added them; later commits only edit the README),
  asset ``rawnet3-voxcelebs12``, CC BY 4.0. Hugging Face publishes no digest that can be
  checked offline, so both files are unpinned: their sha256 is recorded when they are
  fetched or added and verified before ``torch.load(..., weights_only=True)`` (the file is
  ESPnet's plain state dict). ``config.yaml`` is checked to describe this architecture,
  so a different ESPnet model is refused instead of silently mis-scored.
- **Input**: each waveform as float32 at 16 kHz, batch size 1, exactly as
  ``Speech2Embedding.__call__`` hands it to the model (no normalisation, no trimming).
  The similarity is ``torch.cosine_similarity`` of the two embeddings (URGENT's
  formula; it clamps each norm at 1e-8).

A waveform shorter than :func:`urgentbench.metrics._rawnet3_net.min_samples` (715 samples,
45 ms) gives fewer than two encoder frames; ESPnet's pooling would return NaN for it, so
it raises :class:`MetricError` instead. Digital silence is embedded like any other input,
as ESPnet does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from urgentbench.assets import Asset, AssetFile, DownloadSource, get_asset
from urgentbench.metrics.base import MetricError
from urgentbench.metrics.model import device_tensor, forward_equal_lengths, mono_audio, set_torch_threads
from urgentbench.requirements import PackageRequirement, pip

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
ASSET = "rawnet3-voxcelebs12"
CHECKPOINT = "40epoch.pth"
CONFIG = "config.yaml"

_REPO = "espnet/voxcelebs12_rawnet3"
_REVISION = "ec530091d804940ef4e2c30a8888878f02a91835"
_EXP = "save_exp/spk_train_rawnet3_best_trnVox12_emb192_amp_subcentertopk_raw_sp"
_BASE = f"https://huggingface.co/{_REPO}/resolve/{_REVISION}/{_EXP}"

#: ESPnet's RawNet3 trained on VoxCeleb1+2 dev (EER 0.739 % on VoxCeleb1-O), the SpkSim model
#: of every URGENT edition. No digest is published: unpinned, recorded on first use.
RAWNET3_VOXCELEBS12 = Asset(
    name=ASSET,
    description=f"ESPnet RawNet3 speaker embedding model, VoxCeleb1+2 ({_REPO}@{_REVISION[:7]})",
    licence="CC-BY-4.0 (espnet/voxcelebs12_rawnet3 model card: attribution required)",
    homepage=f"https://huggingface.co/{_REPO}/tree/{_REVISION}",
    used_by=("metric spk_sim (model=rawnet3)",),
    files=(AssetFile(CHECKPOINT), AssetFile(CONFIG)),
    sources=(DownloadSource(urls={CHECKPOINT: (f"{_BASE}/{CHECKPOINT}",), CONFIG: (f"{_BASE}/{CONFIG}",)}),),
)

#: The assets of RawNet3 speaker similarity (registered by :mod:`urgentbench.metrics`).
ASSET_PINS = ((RAWNET3_VOXCELEBS12, ()),)

#: Packages the RawNet3 embedder imports.
PACKAGES = (
    PackageRequirement("torch", "pip install torch==2.13.0"),
    PackageRequirement("yaml", pip("pyyaml>=6")),
)

#: What ``config.yaml`` must say (missing ``*_conf`` entries take ESPnet's defaults, which are these).
_EXPECTED_CONFIG: dict[str, Any] = {
    "frontend": "asteroid_frontend",
    "frontend_conf": {
        "sinc_filters": 256,
        "sinc_kernel_size": 251,
        "sinc_stride": 16,
        "preemph_coef": 0.97,
        "log_term": 1e-6,
    },
    "encoder": "rawnet3",
    "encoder_conf": {"model_scale": 8, "ndim": 1024, "output_size": 1536, "block": "Bottle2neck"},
    "pooling": "chn_attn_stat",
    "pooling_conf": {},
    "projector": "rawnet3",
    "projector_conf": {"output_size": 192},
    "specaug": None,
    "normalize": None,
}


def check_config(path: str | Path) -> None:
    """Check that an ESPnet ``config.yaml`` describes the RawNet3 model this module implements.

    Raises:
        RuntimeError: Naming the first setting that differs.
    """
    import yaml

    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RuntimeError(f"{path}: cannot read the ESPnet config ({exc})") from None
    if not isinstance(config, dict):
        raise RuntimeError(f"{path}: not an ESPnet config (no mapping at the top)")
    for key, expected in _EXPECTED_CONFIG.items():
        actual = config.get(key)
        if isinstance(expected, dict):
            actual = actual or {}
            if not isinstance(actual, dict):
                raise RuntimeError(f"{path}: {key} is {actual!r}, expected a mapping")
            for sub, value in expected.items():
                if sub in actual and actual[sub] != value:
                    raise RuntimeError(f"{path}: {key}.{sub} is {actual[sub]!r}, expected {value!r}")
            extra = sorted(set(actual) - set(expected))
            if extra:
                raise RuntimeError(
                    f"{path}: {key} sets {', '.join(extra)}, which this implementation does not support"
                )
        elif actual != expected:
            raise RuntimeError(f"{path}: {key} is {actual!r}, expected {expected!r}")


def load_rawnet3(checkpoint: str | Path, config: str | Path | None = None) -> Any:
    """Build the RawNet3 network and load an ESPnet ``voxcelebs12_rawnet3`` state dict into it.

    The training loss's parameters (keys ``loss.*``, the AAM-softmax class centres) are
    not part of the embedding network and are set aside; every other key must match
    (``strict=True``). The file is read with ``torch.load(..., weights_only=True)``; call
    this only on files whose checksums were verified.

    Args:
        checkpoint: ESPnet's ``40epoch.pth``.
        config: Its ``config.yaml``, checked first (None skips the check).

    Returns:
        The network (:class:`urgentbench.metrics._rawnet3_net.RawNet3`) in eval mode.

    Raises:
        RuntimeError: When the config describes another model, or the state dict does not
            fit the network (the message names the keys or shapes).
    """
    import torch

    from urgentbench.metrics._rawnet3_net import RawNet3

    if config is not None:
        check_config(config)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise RuntimeError(f"{checkpoint}: expected a state dict, got {type(state).__name__}")
    state = {k: v for k, v in state.items() if not k.startswith("loss.")}
    model = RawNet3()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(s.strip() for s in str(exc).strip().splitlines()[:3])
        message = f"{checkpoint} is not an ESPnet RawNet3 voxcelebs12 checkpoint: {detail}"
        raise RuntimeError(message) from None
    model.requires_grad_(False)
    return model.eval()


class RawNet3Embedder:
    """Speaker embeddings and their cosine similarity with the ``rawnet3-voxcelebs12`` asset.

    Args:
        threads: torch intra-op threads (0: leave torch's setting).
        model: An already loaded network (tests); None loads the verified asset in :meth:`setup`.
        device: Resolved torch device (``"cpu"`` or ``"cuda:N"``) the network runs on.
    """

    def __init__(self, threads: int = 0, model: Any = None, device: str = "cpu"):
        self._threads = threads
        self._model = model if model is None else model.to(device)
        self._device = device

    def setup(self) -> None:
        """Verify the asset's files against their recorded sha256, then load the network once.

        Raises:
            AssetError: When the asset is missing or corrupt (the message holds the fix commands).
            RuntimeError: When the files are not this RawNet3 model.
        """
        if self._model is not None:
            return
        folder = get_asset(ASSET).path()  # sha256-verified before anything is deserialised
        set_torch_threads(self._threads)
        self._model = load_rawnet3(folder / CHECKPOINT, folder / CONFIG).to(self._device)
        logger.debug("RawNet3 loaded from %s", folder)

    def embed(self, waveform: np.ndarray, role: str = "input") -> np.ndarray:
        """The 192-dimensional embedding (not normalised) of a mono 16 kHz waveform.

        Args:
            waveform: Mono audio at 16 kHz.
            role: Which signal this is, for error messages ("enhanced", "reference").

        Raises:
            MetricError: For an empty, non-mono, non-finite or too short waveform.
        """
        import torch

        x = self.checked(waveform, role)
        with torch.inference_mode():
            out = self._model(device_tensor(x, self._device)[None])[0]
        return _finite(out.cpu().numpy().astype(np.float64), role)

    def checked(self, waveform: np.ndarray, role: str) -> np.ndarray:
        """The waveform as float32 after checking that RawNet3 can take it (loads the network first).

        Raises:
            MetricError: For an empty, non-mono, non-finite or too short waveform.
        """
        from urgentbench.metrics._rawnet3_net import min_samples

        self.setup()
        x = mono_audio(waveform, role)
        if x.size < min_samples():
            raise MetricError(
                f"{role} audio is {x.size / SAMPLE_RATE * 1000:.1f} ms long; RawNet3 needs at least "
                f"{min_samples()} samples ({min_samples() / SAMPLE_RATE * 1000:.1f} ms) at 16 kHz"
            )
        return x

    def embed_checked(self, waveforms: Sequence[np.ndarray], batch_size: int) -> list[np.ndarray | MetricError]:
        """Embeddings of several :meth:`checked` waveforms, those of equal length in one forward pass.

        Each equals :meth:`embed`'s to float rounding; a non-finite one is a MetricError in its place.
        """
        import torch

        self.setup()
        with torch.inference_mode():
            waves = [device_tensor(x, self._device) for x in waveforms]
            rows = forward_equal_lengths(waves, self._model, batch_size)
        out: list[np.ndarray | MetricError] = []
        for row in rows:
            try:
                out.append(_finite(row.cpu().numpy().astype(np.float64), "enhanced"))
            except MetricError as exc:
                out.append(exc)
        return out

    def similarity(self, reference: np.ndarray, estimate: np.ndarray) -> float:
        """Cosine similarity of the embeddings of two 16 kHz waveforms, as ``torch.cosine_similarity``.

        Raises:
            MetricError: When either waveform cannot be embedded.
        """
        return torch_cosine(self.embed(reference, "reference"), self.embed(estimate, "enhanced"))


def _finite(embedding: np.ndarray, role: str) -> np.ndarray:
    """``embedding`` when every value is finite, else a MetricError."""
    if not np.all(np.isfinite(embedding)):
        raise MetricError(f"RawNet3 produced a non-finite embedding of the {role} audio")
    return embedding


def torch_cosine(ref: np.ndarray, est: np.ndarray) -> float:
    """Cosine similarity as ``torch.cosine_similarity`` computes it (each norm clamped at 1e-8)."""
    eps = 1e-8
    norm = max(float(np.linalg.norm(ref)), eps) * max(float(np.linalg.norm(est)), eps)
    return float(np.dot(ref, est) / norm)
