"""OWSM checkpoints as assets, how a published model folder is loaded, and URGENT's decoding arithmetic.

URGENT transcribes with ``espnet/owsm_v3.1_ebf`` (E-Branchformer encoder, Transformer
decoder; ``calculate_wer.py`` + ``owsm_utils.py``) and identifies the language with
``espnet/owsm_ctc_v4_1B`` (``calculate_lid_accuracy.py``). Both are ESPnet model folders
as published on the Hugging Face Hub: ``meta.yaml`` names the training ``config.yaml``
and the model file; the config names the BPE model and the feature statistics by paths
relative to the folder. Here each is an asset holding those files under the same
relative paths (fetched from a pinned revision; the Hub publishes no digest that can be
checked offline, so their sha256 is recorded at first install and verified afterwards).
A local copy of such a folder (``model_dir=``) loads the same way.

:func:`load_model` builds ESPnet's own inference class on the folder's config (paths
made absolute) and loads the model file with ``torch.load(weights_only=True)``;
a checkpoint that leaves any parameter of the network unset is refused (ESPnet itself
loads non-strictly, which would silently keep random weights).

The rest is URGENT's arithmetic, each a small function that the tests check by hand:
:func:`max_len_ratio`, :func:`fit_30s`, :func:`is_long_form`, :func:`long_form_text`.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from urgentbench.assets import Asset, AssetFile, DownloadSource

logger = logging.getLogger(__name__)

#: Rate, chunk length and decoding limits of URGENT's ``owsm_utils.py``.
SAMPLE_RATE = 16000
CHUNK_SECONDS = 30
MAX_TOKENS = 300
TOKENS_PER_SECOND = 10

_HF = "https://huggingface.co"


def _hub_asset(name: str, repo: str, revision: str, files: Sequence[str], description: str, used_by: str) -> Asset:
    """An asset of files at their paths in a Hub repository at ``revision`` (unpinned: sha256 recorded at install)."""
    return Asset(
        name=name,
        description=f"{description} ({repo}@{revision[:7]})",
        licence="CC-BY-4.0 (ESPnet OWSM model card: attribution required)",
        homepage=f"{_HF}/{repo}/tree/{revision}",
        used_by=(used_by,),
        files=tuple(AssetFile(f) for f in files),
        sources=(DownloadSource(urls={f: (f"{_HF}/{repo}/resolve/{revision}/{f}",) for f in files}),),
    )


_V31_EXP = "exp/s2t_train_s2t_ebf_conv2d_size1024_e18_d18_piecewise_lr2e-4_warmup60k_flashattn_raw_bpe50000"
_BPE = "data/token_list/bpe_unigram50000/bpe.model"
_STATS = "exp/s2t_stats_raw_bpe50000/train/feats_stats.npz"

#: OWSM v3.1 E-Branchformer (1.02 B), URGENT's ASR model. Revision 57a6472 is the commit that
#: added the model files; later commits only edit the README.
OWSM_V31_EBF = _hub_asset(
    "owsm-v3.1-ebf",
    "espnet/owsm_v3.1_ebf",
    "57a647201fa289b2ef56b093c60d6c7d94e65224",
    ("meta.yaml", f"{_V31_EXP}/config.yaml", f"{_V31_EXP}/valid.total_count.ave_5best.till45epoch.pth", _BPE, _STATS),
    "OWSM v3.1 E-Branchformer speech-to-text model, URGENT's WER/CER model",
    "metric owsm_wer",
)

_CTC_EXP = "exp/s2t_train_s2t_multitask-ctc_ebf27_conv2d8_size1024_raw_bpe50000"
#: OWSM-CTC v4 (1.01 B), URGENT 2026's language-identification model. The file layout is the
#: one of the OWSM-CTC repositories (``meta.yaml`` names the files); pinned to ``main``
#: because no revision of this repository could be looked up offline.
OWSM_CTC_V4 = _hub_asset(
    "owsm-ctc-v4-1b",
    "espnet/owsm_ctc_v4_1B",
    "main",
    ("meta.yaml", f"{_CTC_EXP}/config.yaml", f"{_CTC_EXP}/valid.total_count.ave_5best.till40epoch.pth", _BPE, _STATS),
    "OWSM-CTC v4 speech-to-text CTC model, URGENT 2026's language-identification model",
    "metric lid_acc",
)

#: The assets of the OWSM metrics (registered by :mod:`urgentbench.metrics`).
ASSET_PINS = ((OWSM_V31_EBF, ("owsm_v3.1_ebf",)), (OWSM_CTC_V4, ("owsm_ctc_v4_1B",)))


# --------------------------------------------------------------------------- URGENT's arithmetic
def max_len_ratio(n_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
    """ESPnet's ``maxlenratio`` for one utterance: ``-min(300, int(10 * duration_s))``.

    A negative ratio is an absolute cap on the output tokens (10 per second of audio, at
    most 300). URGENT's ``owsm_utils.py`` truncates with ``int``, so audio under 0.1 s
    gives 0, which ESPnet reads as "up to the encoder's length".
    """
    return -min(MAX_TOKENS, int(n_samples / sample_rate * TOKENS_PER_SECOND))


def is_long_form(n_samples: int, sample_rate: int = SAMPLE_RATE) -> bool:
    """Whether URGENT decodes the audio in 30 s chunks (``decode_long``): strictly longer than 30 s."""
    return n_samples > CHUNK_SECONDS * sample_rate


def fit_30s(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The waveform zero-padded at the end or trimmed to 30 s (``librosa.util.fix_length``)."""
    size = CHUNK_SECONDS * sample_rate
    if len(x) >= size:
        return np.ascontiguousarray(x[:size])
    return np.pad(x, (0, size - len(x)))


def _timestamp(seconds: float) -> str:
    """``MM:SS.mmm`` (``HH:`` first from an hour on), as Whisper's ``format_timestamp`` writes it."""
    ms = round(seconds * 1000.0)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1_000)
    return (f"{hours:02d}:" if hours else "") + f"{minutes:02d}:{secs:02d}.{ms:03d}"


def long_form_text(segments: Sequence[tuple[float, float, str]]) -> str:
    """The transcript URGENT builds from ``decode_long``'s segments: one ``[start --> end] text`` line each.

    The Whisper normalisers drop a ``[...]`` span only up to the first ``>``, i.e. the
    start time: the end times stay in the cleaned hypothesis as words, in URGENT's numbers
    as here.
    """
    return "\n".join(f"[{_timestamp(t1)} --> {_timestamp(t2)}] {text}" for t1, t2, text in segments)


# --------------------------------------------------------------------------- languages
#: ISO 639-2/B codes and their 639-2/T (= 639-3) forms, which OWSM's language symbols use.
_BIBLIOGRAPHIC = {
    "alb": "sqi", "arm": "hye", "baq": "eus", "bur": "mya", "chi": "zho", "cze": "ces", "dut": "nld",
    "fre": "fra", "geo": "kat", "ger": "deu", "gre": "ell", "ice": "isl", "mac": "mkd", "mao": "mri",
    "may": "msa", "per": "fas", "rum": "ron", "slo": "slk", "tib": "bod", "wel": "cym",
}  # fmt: skip


def owsm_language(code: str) -> str:
    """OWSM's three-letter language code (``"eng"``) for a corpus's language code.

    Args:
        code: ISO 639-2/639-3 (``deu``, ``ger``), ISO 639-1 (``de``), a locale (``de-DE``,
            ``zh_CN``) or an OWSM symbol (``<deu>``); case does not matter.

    Raises:
        ValueError: For a code that is none of these.
    """
    from urgentbench.metrics.asr_language import _ISO639_2_TO_1

    raw = str(code).strip()
    key = raw.lower().strip("<>").replace("_", "-").split("-", 1)[0]
    if len(key) == 3 and key.isalpha():
        return _BIBLIOGRAPHIC.get(key, key)
    if len(key) == 2 and key.isalpha():
        terminological = sorted(k for k, v in _ISO639_2_TO_1.items() if v == key and k not in _BIBLIOGRAPHIC)
        if terminological:
            return terminological[0] if key != "zh" else "zho"
    raise ValueError(f"language {raw!r}: not an ISO 639 code OWSM can name (give e.g. eng, deu or en)")


# --------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class ModelFiles:
    """The files of a published ESPnet model folder: training config and model file."""

    folder: Path
    config: Path
    model: Path

    @classmethod
    def find(cls, folder: str | Path) -> ModelFiles:
        """Locate the config and model file through ``meta.yaml`` (``yaml_files``/``files``).

        Raises:
            FileNotFoundError: When ``meta.yaml`` or a file it names is missing.
            ValueError: When ``meta.yaml`` does not name a config and a model file.
        """
        import yaml

        root = Path(folder).expanduser()
        meta_path = root / "meta.yaml"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{root}: no meta.yaml (not an ESPnet model folder as published on the Hub)")
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
        config = (meta.get("yaml_files") or {}).get("s2t_train_config")
        model = (meta.get("files") or {}).get("s2t_model_file")
        if not config or not model:
            raise ValueError(f"{meta_path}: names no s2t_train_config and s2t_model_file")
        files = cls(root, root / config, root / model)
        for path in (files.config, files.model):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: named by {meta_path} but missing")
        return files

    def resolved_config(self, dest: Path) -> Path:
        """Write the config to ``dest`` with its paths relative to the folder (BPE model, statistics) made absolute.

        ESPnet's loader does the same to a downloaded folder; asset folders stay untouched.
        """
        import yaml

        config = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        dest.write_text(yaml.safe_dump(_absolute_paths(config, self.folder), sort_keys=False), encoding="utf-8")
        return dest


def _absolute_paths(node: Any, folder: Path) -> Any:
    """``node`` with every string that names a file inside ``folder`` made absolute."""
    if isinstance(node, dict):
        return {k: _absolute_paths(v, folder) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute_paths(v, folder) for v in node]
    if isinstance(node, str) and "/" in node and len(node) < 4096:
        candidate = folder / node
        try:
            if not Path(node).is_absolute() and candidate.is_file():
                return str(candidate.resolve())
        except OSError:
            return node
    return node


def load_state_dict(module: Any, checkpoint: Path, device: str) -> None:
    """Load an ESPnet model file into ``module`` (``weights_only=True``); every parameter must be set.

    Raises:
        RuntimeError: When the file is not a plain state dict, or leaves parameters or
            buffers of the network unset (a different architecture).
    """
    import torch

    try:
        state = torch.load(checkpoint, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors have many types
        raise RuntimeError(f"{checkpoint}: not a plain ESPnet state dict ({exc})") from None
    if isinstance(state, dict) and "module" in state and isinstance(state["module"], dict):
        state = state["module"]  # a DeepSpeed checkpoint, as ESPnet accepts it
    result = module.load_state_dict(state, strict=False)
    if result.missing_keys:
        shown = ", ".join(result.missing_keys[:5])
        raise RuntimeError(
            f"{checkpoint}: {len(result.missing_keys)} parameter(s) of the network not in the file "
            f"({shown}...): not the model of this config"
        )
    if result.unexpected_keys:
        logger.warning("%s: %d entries not used by the network", checkpoint, len(result.unexpected_keys))


def load_model(kind: str, folder: str | Path, device: str = "cpu", **kwargs: Any) -> Any:
    """ESPnet's inference object for a published OWSM folder.

    Args:
        kind: ``"s2t"`` (``Speech2Text``, attention decoder) or ``"ctc"``
            (``Speech2TextGreedySearch``).
        folder: The model folder (``meta.yaml``, config, model file, BPE model, statistics).
        device: torch device.
        kwargs: Handed to the ESPnet class (beam size, symbols...).

    Raises:
        AssetError: When the ESPnet release file is missing.
        FileNotFoundError, ValueError, RuntimeError: For an incomplete or mismatched folder.
    """
    from urgentbench.metrics.espnet_runtime import import_espnet

    files = ModelFiles.find(folder)
    if kind == "s2t":
        (module,) = import_espnet("espnet2.bin.s2t_inference")
        cls = module.Speech2Text
    elif kind == "ctc":
        (module,) = import_espnet("espnet2.bin.s2t_inference_ctc")
        cls = module.Speech2TextGreedySearch
    else:
        raise ValueError(f"kind must be 's2t' or 'ctc'; got {kind!r}")
    with tempfile.TemporaryDirectory(prefix="urgentbench-owsm-") as tmp:
        config = files.resolved_config(Path(tmp) / "config.yaml")
        model = cls(s2t_train_config=str(config), s2t_model_file=None, device=device, **kwargs)
    load_state_dict(model.s2t_model, files.model, device)
    model.s2t_model.eval()
    return model
