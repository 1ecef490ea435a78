"""Small datasets in the official URGENT layouts, built by the tests themselves (the hub is not reachable).

:func:`build_hf_dataset` writes a Hugging Face dataset with the columns of
``urgent-challenge/urgent2024_official`` (``id``, ``noisy_audio``, ``clean_audio``,
``transcript``, ``snr_dB``) as a local clone of the repository would hold it (parquet files
plus a README whose ``configs`` name each file) or as ``save_to_disk`` folders: ``Audio``
columns at 8, 16 and 48 kHz, transcripts including ``<not-available>``, and a
non-intrusive-only row without clean audio. The audio is the committed fixture speech with
white noise, encoded as FLAC bytes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from conftest import TRANSCRIPTS, load_speech, white_noise_mix

#: (id, rate, speech, transcript, with clean, language) of the default rows.
ROWS = (
    ("fileid_1", 8000, "a", TRANSCRIPTS["a"], True, "eng"),
    ("fileid_2", 16000, "b", TRANSCRIPTS["b"], True, "eng"),
    ("fileid_3", 48000, "a", "<not-available>", True, "deu"),
    ("fileid_4", 16000, "b", TRANSCRIPTS["b"], False, "eng"),  # a real recording: no clean reference
)


def flac_bytes(x: np.ndarray, rate: int) -> bytes:
    """``x`` encoded as 16-bit FLAC."""
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def official_rows(rows: tuple = ROWS, seconds: float = 1.5) -> dict[str, list[Any]]:
    """Column -> values of the official schema (audio cells as ``{"bytes", "path"}``)."""
    out: dict[str, list[Any]] = {"id": [], "noisy_audio": [], "clean_audio": [], "transcript": [], "snr_dB": [],
                                 "language": []}
    for i, (uid, rate, speech, text, with_clean, lang) in enumerate(rows):
        clean = load_speech(speech, rate)[: int(seconds * rate)]
        clean = 0.5 * clean / np.max(np.abs(clean))
        noisy = white_noise_mix(clean, snr_db=5.0 + i, seed=i)
        noisy = 0.9 * noisy / max(1.0, float(np.max(np.abs(noisy))) / 0.9)
        out["id"].append(uid)
        out["noisy_audio"].append({"bytes": flac_bytes(noisy, rate), "path": f"{uid}.flac"})
        out["clean_audio"].append({"bytes": flac_bytes(clean, rate), "path": f"{uid}.flac"} if with_clean else None)
        out["transcript"].append(text)
        out["snr_dB"].append(5.0 + i)
        out["language"].append(lang)
    return out


def make_dataset(columns: dict[str, list[Any]]) -> Any:
    """A ``datasets.Dataset`` with ``Audio`` features for the audio columns (built without torchcodec)."""
    from datasets import Audio, Dataset, Features, Value

    audio = {"bytes": Value("binary"), "path": Value("string")}
    features = {}
    for name in columns:
        if name.endswith("_audio"):
            features[name] = audio
        elif name == "snr_dB":
            features[name] = Value("float32")
        else:
            features[name] = Value("string")
    ds = Dataset.from_dict(columns, features=Features(features))
    for name in columns:
        if name.endswith("_audio"):
            ds = ds.cast_column(name, Audio())
    return ds


def build_hf_dataset(root: Path, configs: dict[str, dict[str, list[Any]]], *, layout: str = "repo",
                     split: str = "validation") -> Path:
    """Write configurations (name -> columns) as a repository clone (``repo``) or ``save_to_disk`` folders (``disk``)."""
    from datasets import DatasetDict

    root.mkdir(parents=True, exist_ok=True)
    card = ["---", "configs:"]
    for name, columns in configs.items():
        ds = make_dataset(columns)
        if layout == "disk":
            DatasetDict({split: ds}).save_to_disk(str(root / name))
            continue
        (root / name).mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(root / name / f"{split}-00000-of-00001.parquet"))
        card += [f"- config_name: {name}", "  data_files:", f"  - split: {split}", f"    path: {name}/{split}-*"]
    if layout == "repo":
        (root / "README.md").write_text("\n".join(card + ["---", "# a local copy built by the tests", ""]))
    return root
