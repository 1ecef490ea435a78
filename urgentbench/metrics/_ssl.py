"""Shared pieces of the metrics built on ``transformers`` speech models (SpeechBERTScore, LPS).

- The model assets: the Hugging Face repositories URGENT loads, pinned to a commit
  revision. Hugging Face publishes no digests that can be checked offline, so the files
  are *unpinned* (trust on first use): ``urgentbench assets fetch`` or ``assets add``
  records the sha256 of the copy it installs, and results name that digest.
- Loading a model from a verified local folder (the asset's, or a user-given folder),
  never from the Hub, and refusing a checkpoint that leaves model weights uninitialised.
- Input checks, the frame count of the wav2vec2/HuBERT convolutional front end, and a
  small cache for reference-side results (the same reference is scored once per system).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from urgentbench.assets import Asset, AssetFile, DownloadSource
from urgentbench.metrics.base import MetricError
from urgentbench.metrics.model import ModelMetric, digest_of, folder_hashes

logger = logging.getLogger(__name__)

#: Rate of every model here (and of the URGENT scripts that use them).
SAMPLE_RATE = 16000

_HF = "https://huggingface.co"


def _hf_asset(
    name: str,
    repo: str,
    revision: str,
    files: Sequence[str],
    description: str,
    licence: str,
    used_by: tuple[str, ...],
) -> Asset:
    """An asset made of files of a Hugging Face model repository at one commit (unpinned files)."""
    return Asset(
        name=name,
        description=f"{description} ({repo}@{revision[:7]})",
        licence=licence,
        homepage=f"{_HF}/{repo}/tree/{revision}",
        used_by=used_by,
        files=tuple(AssetFile(f) for f in files),
        sources=(DownloadSource(urls={f: (f"{_HF}/{repo}/resolve/{revision}/{f}",) for f in files}),),
    )


#: facebook/hubert-base-ls960 at its latest commit ("Update README.md", 2021-11-05); the
#: weights exist only as pytorch_model.bin on that branch (loaded with weights_only=True).
HUBERT_BASE_LS960 = _hf_asset(
    "hubert-base-ls960",
    "facebook/hubert-base-ls960",
    "dba3bb02fda4248b6e082697eee756de8fe8aa8a",
    ("config.json", "pytorch_model.bin"),
    "HuBERT Base (LibriSpeech 960 h), SpeechBERTScore features of the URGENT 2024 protocol",
    "Apache-2.0 (facebook/hubert-base-ls960 model card)",
    ("metric speechbertscore (model=hubert-base)",),
)

#: utter-project/mHuBERT-147 at commit 3c4c625 (README update after the safetensors
#: conversion was merged); the safetensors file holds the same tensors as pytorch_model.bin.
MHUBERT_147 = _hf_asset(
    "mhubert-147",
    "utter-project/mHuBERT-147",
    "3c4c625e915d7e761d5203a6963129e7c1ff2eb6",
    ("config.json", "model.safetensors"),
    "mHuBERT-147 (multilingual HuBERT base, 147 languages), SpeechBERTScore features of URGENT 2025/2026",
    "CC-BY-NC-SA-4.0 (utter-project/mHuBERT-147 model card: non-commercial use only, attribution, "
    "adaptations under the same licence)",
    ("metric speechbertscore",),
)

#: facebook/wav2vec2-lv-60-espeak-cv-ft at its latest commit ("Update Readme (#3)").
WAV2VEC2_ESPEAK = _hf_asset(
    "wav2vec2-lv-60-espeak-cv-ft",
    "facebook/wav2vec2-lv-60-espeak-cv-ft",
    "ae45363bf3413b374fecd9dc8bc1df0e24c3b7f4",
    (
        "config.json",
        "preprocessor_config.json",
        "pytorch_model.bin",
        "special_tokens_map.json",
        "tokenizer_config.json",
        "vocab.json",
    ),
    "wav2vec 2.0 large (LV-60) fine-tuned for multilingual eSpeak phoneme recognition (CTC), for LPS",
    "Apache-2.0 (facebook/wav2vec2-lv-60-espeak-cv-ft model card)",
    ("metric lps",),
)

#: The assets of SpeechBERTScore and LPS (registered by :mod:`urgentbench.metrics`).
ASSET_PINS = ((HUBERT_BASE_LS960, ()), (MHUBERT_147, ()), (WAV2VEC2_ESPEAK, ()))

#: Parameters that only training uses; a checkpoint may lack them without harm.
_TRAINING_ONLY = ("masked_spec_embed",)


def model_folder(asset_name: str, model_dir: str | None) -> tuple[Path, dict[str, Any]]:
    """The folder to load a model from, sha256-verified, and its provenance.

    Args:
        asset_name: The asset used when ``model_dir`` is None.
        model_dir: A local folder in ``from_pretrained`` layout used instead of the asset
            (a custom or test checkpoint); its files are hashed for provenance.

    Raises:
        AssetError: When the asset is missing or corrupt (the message holds the fix commands).
        FileNotFoundError: When ``model_dir`` is not a folder holding a ``config.json``.
    """
    if not model_dir:
        from urgentbench.assets import get_asset

        asset = get_asset(asset_name)
        folder = asset.path()  # every file sha256-checked before use
        return folder, {"asset": asset.provenance()}
    folder = Path(model_dir).expanduser()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"model_dir {folder}: no config.json (expected a from_pretrained folder)")
    files = folder_hashes(folder)
    return folder, {"model_dir": str(folder), "sha256": digest_of(files), "files_sha256": files}


def load_pretrained(model_class: Any, folder: Path) -> Any:
    """Load ``model_class`` from the local ``folder`` (never the Hub) in eval mode on the CPU.

    ``.bin`` checkpoints are read by transformers with ``torch.load(weights_only=True)``.

    Raises:
        RuntimeError: When the checkpoint leaves some model weights uninitialised (a wrong
            or damaged checkpoint would otherwise give plausible-looking random numbers).
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model, info = model_class.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
    missing = sorted(k for k in info.get("missing_keys", ()) if not k.endswith(_TRAINING_ONLY))
    if missing:
        shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        raise RuntimeError(
            f"{folder}: the checkpoint does not hold {len(missing)} weight(s) of {model_class.__name__}: {shown}"
        )
    mismatched = info.get("mismatched_keys") or ()
    if mismatched:
        raise RuntimeError(
            f"{folder}: weights with the wrong shape for {model_class.__name__}: {sorted(mismatched)[:5]}"
        )
    unexpected = info.get("unexpected_keys") or ()
    if unexpected:
        logger.debug("%s: unused checkpoint entries %s", folder, sorted(unexpected))
    model.eval()
    return model


def conv_frames(n_samples: int, config: Any) -> int:
    """Frames the wav2vec2/HuBERT convolutional front end makes from ``n_samples`` samples."""
    n = n_samples
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        n = (n - kernel) // stride + 1
        if n < 1:
            return 0
    return n


def min_samples(config: Any) -> int:
    """The fewest samples that give one frame (400, i.e. 25 ms at 16 kHz, for HuBERT/wav2vec2)."""
    n = 1
    for kernel, stride in reversed(list(zip(config.conv_kernel, config.conv_stride))):
        n = (n - 1) * stride + kernel
    return n


def check_input(x: np.ndarray | None, role: str, config: Any) -> np.ndarray:
    """Return ``x`` as float32 mono after checking it can be fed to the model.

    Raises:
        MetricError: For a missing, non-mono, non-finite or too short waveform.
    """
    if x is None:
        raise MetricError(f"the {role} waveform is missing")
    y = np.asarray(x, dtype=np.float32)
    if y.ndim != 1:
        raise MetricError(f"the {role} waveform must be mono (1-D), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise MetricError(f"the {role} waveform contains NaN or Inf samples")
    shortest = min_samples(config)
    if y.size < shortest:
        raise MetricError(
            f"the {role} waveform has {y.size} samples; the model needs at least {shortest} "
            f"({1000 * shortest / SAMPLE_RATE:.0f} ms at {SAMPLE_RATE} Hz)"
        )
    return y


class ReferenceCache:
    """A small least-recently-used cache of per-waveform results, keyed by the samples' digest.

    A run scores every system against the same references; caching what a metric computes
    from a reference (features, a phoneme string) saves one model pass per system.
    """

    def __init__(self, size: int = 16):
        self.size = size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(x: np.ndarray) -> str:
        """Digest of the samples (and their count and dtype)."""
        y = np.ascontiguousarray(x)
        h = hashlib.blake2b(y.view(np.uint8), digest_size=16)
        h.update(f"{y.dtype}:{y.size}".encode())
        return h.hexdigest()

    def get(self, x: np.ndarray, compute: Callable[[np.ndarray], Any]) -> Any:
        """The cached result for ``x``, computing and storing it on a miss."""
        key = self.key(x)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute(x)
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def has(self, x: np.ndarray) -> bool:
        """Whether the result for ``x`` is cached."""
        key = self.key(x)
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        """Forget everything (after the model changed)."""
        with self._lock:
            self._items.clear()


class PretrainedMetric(ModelMetric):
    """A metric on a ``transformers`` speech model read from a verified local folder (SpeechBERTScore, LPS).

    Options ``model_dir`` (a local ``from_pretrained`` folder used instead of the asset; its
    file hashes go into the provenance and the results key), ``threads`` and ``device``
    (``"cpu"``, ``"cuda"``, ``"cuda:N"``). Subclasses name the Hugging Face repository of
    their asset (:meth:`repository`) and move the model to :attr:`_device` after loading it.
    """

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._model: Any = None
        self._config: Any = None
        self._source: dict[str, Any] = {}

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``model_dir``: None (the asset), ``threads``: None, ``device``: cpu."""
        return {"model_dir": None, "threads": None, "device": "cpu"}

    def repository(self) -> str:
        """The Hugging Face repository the asset of these options comes from."""
        raise NotImplementedError

    def open_model_folder(self) -> tuple[Path, dict[str, Any]]:
        """The sha256-verified folder to load from and its provenance; sets the inference threads and device.

        Raises:
            AssetError: When the asset is missing or corrupt (the message holds the fix commands).
            FileNotFoundError: When ``model_dir`` is not a folder holding a ``config.json``.
            RuntimeError: When ``device`` asks for CUDA and none is available.
        """
        model_dir = self.options["model_dir"]
        folder, source = model_folder(self.asset_name(self.options), model_dir)
        self.use_threads()
        self.use_device()
        return folder, {"repository": None if model_dir else self.repository(), **source}

    def model_provenance(self) -> dict[str, Any] | None:
        """What was loaded (after set-up), else the repository and the asset these options load."""
        if self._source:
            return self._source
        if self.options["model_dir"]:
            return None
        return {"repository": self.repository(), "asset": super().model_provenance()}
