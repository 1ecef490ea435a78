"""The MaskSR2 demo page's recipe: where its files are, what each condition is, and the inventory.

The inventory (``urgentbench/data/checksums/masksr2_demo_inventory.csv``) lists every audio
file at the repository's head with its condition, role, system, rate, channel count and
duration; it has **no sha256** (files are checked for presence, readability, rate, channels
and duration, :mod:`urgentbench.data.masksr2_demo.local_copy`). :data:`CONDITIONS` are the
sub-suites ``masksr2-demo/<condition>``.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from urgentbench.hashing import sha256_file
from urgentbench.suites import PROJECT_SUITES_DIR

CORPUS_NAME = "masksr2-demo"
REPOSITORY = "https://github.com/MaskSR/MaskSR2"
PAGE_URL = "https://masksr.github.io/MaskSR2/"
RAW_BASE_URL = "https://raw.githubusercontent.com/MaskSR/MaskSR2/main/"
INVENTORY_PATH = Path(__file__).resolve().parent.parent / "checksums" / "masksr2_demo_inventory.csv"
#: Where the committed sub-suites live (``data_manifests/masksr2-demo/<condition>/``).
SUITES_ROOT = PROJECT_SUITES_DIR / CORPUS_NAME
#: Published outputs, relative to the prepared corpus root.
PUBLISHED_DIR = PurePosixPath(".urgentbench") / "published"
PUBLISHED_INDEX = "published.json"
#: Allowed difference between a file's duration and the inventory's (which is rounded to 0.1 ms).
DURATION_TOLERANCE_S = 0.001
SUITE_VERSION = "1.0"

CITATION = (
    'X. Liu, X. Li, J. Serrà, S. Pascual, "Joint Semantic Knowledge Distillation and Masked Acoustic '
    'Modeling for Full-band Speech Restoration with Improved Intelligibility", ICASSP 2025, '
    "arXiv:2409.09357. Demo page: https://masksr.github.io/MaskSR2/ (repository github.com/MaskSR/MaskSR2)."
)
LICENCE = (
    "No licence: the demo repository github.com/MaskSR/MaskSR2 has no licence file, so its files come with "
    "no grant beyond GitHub's terms of service. The audio underneath is VCTK 0.92 (CC BY 4.0; 44.1 kHz "
    "conditions) and DNS Challenge 2020 test material (microsoft/DNS-Challenge; see that repository for its "
    "terms). urgentbench redistributes none of the audio: only file names, durations and rates are committed, "
    "plus, for the intelligibility condition, the 8 reference transcripts the demo page quotes (VCTK 0.92 "
    "prompts, CC BY 4.0, attributed to the CSTR VCTK Corpus, University of Edinburgh); `prepare` reads your "
    "own copy or fetches the files from the repository."
)

#: Systems whose outputs sit in flat folders named ``<unprocessed stem>_proc.<ext>``.
FLAT_SYSTEM_FOLDERS = {"MaskSR-L": "MaskSR-L", "MaskSR2-L": "MaskSR2-L", "DeepFilterNet3": "DeepFilterNet3"}
#: The flat folders of the intelligibility-table copies.
INTELLIGIBILITY_SYSTEM_FOLDERS = {
    "MaskSR-L": "For_intelligibility_table/masksr_L",
    "MaskSR2-L": "For_intelligibility_table/masksr2_L",
}
#: Systems whose outputs carry the input's file name in a sibling folder of the input folder.
SIBLING_SYSTEMS = ("VoiceFixer", "FRCRN", "DEMUCS")

#: Outputs known to be longer than their input, with the documented excess in samples.
KNOWN_PADDED_OUTPUTS = {
    "MaskSR-L/10_simulated_proc.wav": 308,
    "For_intelligibility_table/masksr_L/10_simulated_proc.wav": 308,
}
PADDING_NOTE = "untrimmed codec-hop padding of MaskSR-L"

#: Inputs that the page's outputs and targets refer to but that exist only in the repository history.
HISTORY_ONLY_INPUTS = {
    "4_simulated": "GSR/Unprocessed/4_simulated.wav",
    "p360_012_mic1_10.00": "DECLIP/0.1/noisy/p360_012_mic1_10.00.wav",
    "clnsp177_0kuIP7fLNpM_snr6_tl-26_fileid_90": (
        "DNS2020_no_reverb/noisy/clnsp177_0kuIP7fLNpM_snr6_tl-26_fileid_90.wav"
    ),
    "audioset_realrec_barking_9uNc2tH5aV4": "DNS2020_real_recordings/noisy/audioset_realrec_barking_9uNc2tH5aV4.wav",
}

OMITTED_CONDITIONS = {
    "dns-with-reverb": (
        "DNS-2020 with_reverb: the page's head has only MaskSR-L, MaskSR2-L and DeepFilterNet3 outputs for "
        "fileids 9, 116, 158 and 167; the noisy inputs and (reverberant) targets, and the whole "
        "DNS2020_with_reverb/ folder, exist only in the repository history (removed 2024-09-13), so no suite "
        "is built. Its 12 head files are still verified."
    ),
}

FULL_METRICS = ["dnsmos", "pesq", "estoi", "sdr", "si_sdr", "lsd", "mcd", "spk_sim"]
FULL_CATEGORIES = {
    "non-intrusive": ["dnsmos_ovrl"],
    "intrusive": ["pesq", "estoi", "sdr", "mcd", "lsd"],
    "downstream": ["spk_sim"],
}
NON_INTRUSIVE_METRICS = ["dnsmos"]
NON_INTRUSIVE_CATEGORIES = {"non-intrusive": ["dnsmos_ovrl"]}

SMALL_NOTE = (
    " A handful of clips: its leaderboard reproduces the page's comparison; it is not a statistically "
    "meaningful ranking."
)


@dataclass(frozen=True)
class InventoryRow:
    """One audio file of the demo repository's head, as listed in the inventory.

    Args:
        path: Path inside the repository (POSIX).
        condition: Inventory condition label (``gsr``, ``bwe-1k``, ``intelligibility/gsr``, ...).
        role: ``unprocessed``, ``target`` or ``system``.
        system: System name for ``role == "system"``, else empty.
        sample_rate: Rate in Hz.
        channels: Channel count (always 1).
        duration_s: Duration in seconds, rounded to 0.1 ms.
    """

    path: str
    condition: str
    role: str
    system: str
    sample_rate: int
    channels: int
    duration_s: float

    @property
    def stem(self) -> str:
        """File name without extension."""
        return PurePosixPath(self.path).stem

    @property
    def suffix(self) -> str:
        """Extension with the dot (``.wav`` or ``.flac``)."""
        return PurePosixPath(self.path).suffix


@dataclass(frozen=True)
class ConditionSpec:
    """One sub-suite: which inventory labels it covers and how it is scored.

    Args:
        name: Sub-suite name (``masksr2-demo/<name>``).
        labels: Inventory condition labels it is built from.
        sample_rate: Rate of every file.
        description: One paragraph for the card.
        metrics: Metric names computed.
        categories: URGENT category -> ranked outputs.
        notes: Condition-specific remarks for the card.
        version: The sub-suite's version (bumped when its manifest changes).
    """

    name: str
    labels: tuple[str, ...]
    sample_rate: int
    description: str
    metrics: tuple[str, ...] = tuple(FULL_METRICS)
    categories: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in FULL_CATEGORIES.items()})
    notes: tuple[str, ...] = ()
    version: str = SUITE_VERSION


def _bwe(fc: int, shown: bool) -> ConditionSpec:
    notes = () if shown else (
        "The page has no table for the 8 kHz cut-off although its files are in the repository.",
    )
    return ConditionSpec(
        name=f"bwe-{fc // 1000}k",
        labels=(f"bwe-{fc // 1000}k",),
        sample_rate=44100,
        description=(
            f"MaskSR2 demo page, bandwidth extension from {fc} Hz: 2 VCTK 0.92 test-speaker utterances (mic1, "
            f"44.1 kHz) low-passed with an order-8 Chebyshev type-I filter (0.1 dB ripple, zero-phase) and "
            f"resampled to {2 * fc} Hz and back." + SMALL_NOTE
        ),
        notes=notes,
    )


def _declip(threshold: str) -> ConditionSpec:
    return ConditionSpec(
        name=f"declip-{threshold}",
        labels=(f"declip-{threshold}",),
        sample_rate=44100,
        description=(
            f"MaskSR2 demo page, declipping at threshold {threshold}: VCTK 0.92 test-speaker utterances (mic1, "
            f"44.1 kHz) clipped asymmetrically at {threshold} x the signal's own minimum and maximum, no "
            f"renormalisation." + SMALL_NOTE
        ),
    )


#: Every sub-suite, in card order.
CONDITIONS: dict[str, ConditionSpec] = {
    c.name: c
    for c in (
        ConditionSpec(
            name="gsr",
            labels=("gsr",),
            sample_rate=44100,
            description=(
                "MaskSR2 demo page, general speech restoration (GSR): 3 s simulated clips at 44.1 kHz combining "
                "noise, reverberation and band limitation (the exact simulation recipe is not published)."
                + SMALL_NOTE
            ),
        ),
        _bwe(1000, True),
        _bwe(2000, True),
        _bwe(4000, True),
        _bwe(8000, False),
        _declip("0.1"),
        _declip("0.25"),
        ConditionSpec(
            name="dns-no-reverb",
            labels=("dns-no-reverb",),
            sample_rate=16000,
            description=(
                "MaskSR2 demo page, wideband denoising: clips of the DNS Challenge 2020 synthetic no_reverb test "
                "set (16 kHz, 10 s, clean speech plus AudioSet/Freesound noise at 0-19 dB SNR)."
                + SMALL_NOTE
            ),
            notes=(
                "The page shows no DeepFilterNet3 column for DNS-2020, but its outputs are in the repository "
                "and are scored like the other published systems.",
            ),
        ),
        ConditionSpec(
            name="dns-real",
            labels=("dns-real",),
            sample_rate=16000,
            description=(
                "MaskSR2 demo page, DNS Challenge 2020 real recordings (AudioSet `audioset_realrec_*`, 16 kHz, "
                "10 s). No clean reference exists, so only non-intrusive metrics are computed."
            ),
            metrics=tuple(NON_INTRUSIVE_METRICS),
            categories={k: list(v) for k, v in NON_INTRUSIVE_CATEGORIES.items()},
            notes=(
                "The page's MaskSR2-L cell of the last row (car_0AVTgzegI4s) plays the MaskSR-L file; pairing "
                "here is by file name, so the MaskSR2-L output scored is MaskSR2-L/…_proc.wav.",
            ),
        ),
        ConditionSpec(
            name="intelligibility",
            labels=("intelligibility/gsr", "intelligibility/bwe-1k"),
            sample_rate=44100,
            description=(
                "MaskSR2 demo page, the 'Improved Intelligibility' table (MaskSR-L vs MaskSR2-L): 8 GSR-style "
                "clips (gsr 2 and 10 and six whole VCTK utterances) and the 2 bandwidth-extension-from-1-kHz "
                "clips, from the page's For_intelligibility_table/ copies, 44.1 kHz. Each clip of the page's "
                "table carries the transcription shown in its Transcription column (parsed from the page's "
                "index.md), so WER and CER are computed as in the paper's table."
            ),
            metrics=(*FULL_METRICS, "wer"),
            categories={**{k: list(v) for k, v in FULL_CATEGORIES.items()}, "downstream": ["spk_sim", "wer"]},
            version="1.1",
            notes=(
                "Transcripts: the text of the Transcription column of the page's index.md (urgentbench.data."
                "masksr2_demo.transcripts), whitespace collapsed, spelt as on the page (the 10_simulated one ends "
                "mid-sentence). p360_018_272 and p374_120_364 are not in the page's table and have no transcript, "
                "so WER/CER are not computed for them. Version 1.1 adds the transcripts to version 1.0.",
                "The FLAC twins of six stems are sample-identical to their WAV files on the page; the manifest "
                "uses the WAV files and the FLAC files are only verified.",
                "gsr 2 and 10 and the two bwe-1k clips duplicate items of the gsr and bwe-1k sub-suites.",
            ),
        ),
    )
}


def natural_key(text: str) -> list[Any]:
    """Sort key that orders embedded numbers numerically (``2_x`` before ``10_x``)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def condition_name(condition: str) -> str:
    """The condition of a condition or sub-suite name (``gsr`` or ``masksr2-demo/gsr``).

    Raises:
        ValueError: For an unknown condition, listing the known ones.
    """
    name = condition.split("/", 1)[1] if condition.startswith(f"{CORPUS_NAME}/") else condition
    if name not in CONDITIONS:
        raise ValueError(f"unknown {CORPUS_NAME} condition {condition!r}; known: {', '.join(CONDITIONS)}")
    return name


def load_inventory(path: str | os.PathLike = INVENTORY_PATH) -> list[InventoryRow]:
    """Read the inventory CSV.

    Raises:
        ValueError: For a malformed row (naming the line).
    """
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, rec in enumerate(csv.DictReader(f), 2):
            try:
                rows.append(
                    InventoryRow(
                        path=rec["path"],
                        condition=rec["condition"],
                        role=rec["role"],
                        system=rec["system"] or "",
                        sample_rate=int(rec["sample_rate"]),
                        channels=int(rec["channels"]),
                        duration_s=float(rec["duration_s"]),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: bad inventory row ({exc})") from exc
    return rows


def inventory_sha256(path: str | os.PathLike = INVENTORY_PATH) -> str:
    """sha256 of the committed inventory file."""
    return sha256_file(path)
