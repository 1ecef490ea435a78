"""The DNS Challenge 2020 test set's pinned file list, its file names, and the three suites built on it.

The suites ``dns2020-no-reverb``, ``dns2020-with-reverb`` and ``dns2020-real`` are built
from the pinned checksum list alone (no audio needed), tags parsed from the file names;
``python -m urgentbench.data.dns2020 --build-suites`` writes them. The corpus itself (download
and verification) is :class:`urgentbench.data.dns2020.DNS2020`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from urgentbench.data.corpora import FileEntry, read_checksums
from urgentbench.manifest import Utterance, write_manifest

logger = logging.getLogger(__name__)

#: Where the test set sits inside the corpus root.
TEST_SET = "datasets/test_set"
SAMPLE_RATE = 16000
CHECKSUMS_RESOURCE = "dns2020_test_set.csv"
SUITE_VERSION = "1.0"
CITATION = (
    'Reddy et al., "The INTERSPEECH 2020 Deep Noise Suppression Challenge: Datasets, Subjective Testing '
    'Framework, and Challenge Results", Interspeech 2020.'
)
LICENCE = (
    "Not stated for the test set itself. The DNS-Challenge repository's README (as read on its later "
    "branches; the interspeech2020/master branch's own text was not checked) licenses documentation and "
    "other content under CC BY 4.0 and code under MIT, and provides the datasets 'under the original terms "
    "that Microsoft received such datasets': clean speech from PTDB-TUG (ODbL 1.0), noise from AudioSet "
    "(CC BY 4.0) and Freesound (CC0 files only). No separate terms are given for the real recordings made "
    "at Microsoft. Treat as research use with attribution; check the repository before redistributing."
)
HOMEPAGE = "https://github.com/microsoft/DNS-Challenge/tree/interspeech2020/master/datasets/test_set"
PROVENANCE_SOURCE = (
    "Audio: github.com/microsoft/DNS-Challenge, branch interspeech2020/master (head 70f19285c36c), folder "
    "datasets/test_set/, stored there as Git-LFS objects. The sha256 and size of all 900 files, from the "
    "LFS pointers, are pinned in urgentbench/data/checksums/dns2020_test_set.csv and checked by "
    "`urgentbench data prepare dns2020`."
)

_SYNTHETIC = re.compile(
    r"^clnsp(?P<clean_clip>\d+)_(?P<noise>.+)_snr(?P<snr>-?\d+)_tl-(?P<tl>\d+)_fileid_(?P<fileid>\d+)\.wav$"
)
_CLEAN = re.compile(r"^clean_fileid_(?P<fileid>\d+)\.wav$")
#: Freesound-style noise tags: ``<class words>_<clip id>_<index>`` (e.g. ``air_conditioner_151977_0``).
_NOISE_CLASS = re.compile(r"^(?P<cls>[a-z]+(?:_[a-z]+)*)_\d+_")
_AUDIOSET_REAL = re.compile(r"^audioset_realrec_(?P<cls>[a-z]+)_(?P<clip>.+)\.wav$")
_MS_REAL = re.compile(r"^ms_realrec_(?P<device>headset|speakerphone)_(?P<rest>.+)\.wav$")
#: Keyword in a Microsoft recording's name -> noise class (first match wins).
_MS_NOISE_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("cafeteria", "cafe"),
    ("cafe", "cafe"),
    ("typing", "typing"),
    ("munching", "munching"),
    ("printing", "printer"),
    ("copymachine", "copy_machine"),
    ("copy", "copy_machine"),
    ("openoffice", "office"),
    ("office", "office"),
    ("hallway", "hallway"),
    ("kitchen", "kitchen"),
    ("clatter", "clatter"),
    ("clean", "none"),
)

CONDITIONS = {"no_reverb": "nr", "with_reverb": "wr"}


# ----------------------------------------------------------------------------------------
# checksums and file names
# ----------------------------------------------------------------------------------------


def pinned_checksums() -> list[FileEntry]:
    """The pinned checksum list of all 900 files (package data)."""
    ref = resources.files("urgentbench.data").joinpath("checksums", CHECKSUMS_RESOURCE)
    with ref.open("r", encoding="utf-8", newline="") as f:
        return read_checksums(f)


def snr_bin(snr_db: int, width: int = 5) -> str:
    """Bin label of an SNR in dB: ``"0-4"``, ``"5-9"``, ... (``width`` dB wide)."""
    lo = (snr_db // width) * width
    return f"{lo}-{lo + width - 1}"


def parse_synthetic_name(name: str) -> dict[str, Any]:
    """Fields of a synthetic noisy file name, parsed from the right (noise tags contain ``_``).

    Args:
        name: ``clnsp{K}_{noise}_snr{S}_tl-{L}_fileid_{N}.wav``.

    Returns:
        ``{"clean_clip": K, "noise": tag, "noise_class": class or "unlabelled", "snr_db": S,
        "target_level_dbfs": -L, "fileid": N}`` (numbers as int).

    Raises:
        ValueError: For a name that does not follow the pattern.
    """
    match = _SYNTHETIC.match(name)
    if match is None:
        raise ValueError(f"not a DNS-2020 synthetic noisy file name: {name!r}")
    noise = match["noise"]
    cls = _NOISE_CLASS.match(noise)
    return {
        "clean_clip": int(match["clean_clip"]),
        "noise": noise,
        "noise_class": cls["cls"] if cls else "unlabelled",
        "snr_db": int(match["snr"]),
        "target_level_dbfs": -int(match["tl"]),
        "fileid": int(match["fileid"]),
    }


def parse_real_name(name: str) -> dict[str, str]:
    """Tags of a real recording from its file name.

    Returns:
        ``{"source": "audioset", "noise_class": ...}`` for ``audioset_realrec_<class>_<clip>.wav``;
        ``{"source": "ms", "device": "headset" | "speakerphone", "noise_class": ...}`` for
        ``ms_realrec_<device>_<description>.wav``, the class found by keyword in the description
        (``"unlabelled"`` when none matches).

    Raises:
        ValueError: For a name that follows neither pattern.
    """
    match = _AUDIOSET_REAL.match(name)
    if match:
        return {"source": "audioset", "noise_class": match["cls"]}
    match = _MS_REAL.match(name)
    if match:
        rest = match["rest"].lower()
        cls = next((c for key, c in _MS_NOISE_KEYWORDS if key in rest), "unlabelled")
        return {"source": "ms", "device": match["device"], "noise_class": cls}
    raise ValueError(f"not a DNS-2020 real recording file name: {name!r}")

# ----------------------------------------------------------------------------------------
# suites
# ----------------------------------------------------------------------------------------

METRICS_SYNTHETIC = ["dnsmos", "pesq", "estoi", "sdr", "si_sdr", "lsd", "mcd", "spk_sim"]
CATEGORIES_SYNTHETIC = {
    "non-intrusive": ["dnsmos_ovrl"],
    "intrusive": ["pesq", "estoi", "sdr", "mcd", "lsd"],
    "downstream": ["spk_sim"],
}
SUITES: dict[str, dict[str, Any]] = {
    "dns2020-no-reverb": {
        "condition": "no_reverb",
        "description": (
            "DNS Challenge 2020 (Interspeech 2020) synthetic test set without reverberation: 150 noisy "
            "mixtures (16 kHz, 10 s) of read speech from the PTDB-TUG database (Graz University of "
            "Technology, 20 speakers) with AudioSet and Freesound noise at 0 to 19 dB SNR, scored against "
            "the clean speech they were mixed from. The inputs are the challenge's files, not re-simulated. "
            "No transcripts, so no WER. Needs `urgentbench data prepare dns2020`."
        ),
    },
    "dns2020-with-reverb": {
        "condition": "with_reverb",
        "description": (
            "DNS Challenge 2020 (Interspeech 2020) synthetic test set with reverberation: 150 noisy "
            "mixtures (16 kHz, 10 s) of PTDB-TUG read speech convolved with room impulse responses "
            "recorded at Microsoft (RT60 0.3 to 1.3 s) plus AudioSet and Freesound noise at 0 to 19 dB SNR. "
            "The reference is the challenge's with_reverb clean file, i.e. REVERBERANT clean speech: "
            "intrusive metrics reward denoising that keeps the reverberation and penalise a system that "
            "also dereverberates. No transcripts, so no WER. Needs `urgentbench data prepare dns2020`."
        ),
    },
    "dns2020-real": {
        "condition": "real_recordings",
        "description": (
            "DNS Challenge 2020 (Interspeech 2020) real recordings: 300 noisy recordings (16 kHz), 150 "
            "clips from AudioSet and 150 recorded at Microsoft with headsets and speakerphones (office, "
            "cafe, typing, munching, copy machine ...). Real recordings have no clean reference and no "
            "transcript, so only non-intrusive metrics (DNSMOS) run. "
            "Needs `urgentbench data prepare dns2020`."
        ),
    },
}
TAG_NOTES_SYNTHETIC = {
    "condition": "no_reverb or with_reverb (the folder)",
    "snr_db": "SNR in dB from the file name (snr{S})",
    "snr_bin": "snr_db in 5 dB bins: 0-4, 5-9, 10-14, 15-19",
    "target_level_dbfs": "target level from the file name (tl-{L} means -L dBFS)",
    "noise": "noise tag from the file name (Freesound class_clip_index or an AudioSet YouTube id)",
    "noise_class": "class word(s) of a Freesound-style noise tag; unlabelled for YouTube ids",
}
TAG_NOTES_REAL = {
    "condition": "real_recordings",
    "source": "audioset (audioset_realrec_*) or ms (ms_realrec_*, recorded at Microsoft)",
    "noise_class": "audioset: the class in the file name; ms: found by keyword in the file name",
    "device": "ms only: headset or speakerphone (from the file name)",
}


def _corpus_path(path: str) -> str:
    return f"@dns2020/{path}"


def suite_utterances(suite: str, entries: Sequence[FileEntry] | None = None) -> list[Utterance]:
    """The utterances of a DNS-2020 suite, built from the checksum list.

    Synthetic suites are in fileid order, ``noisy`` and ``clean`` paired by the fileid at
    the end of the noisy name; the real suite is in file-name order and has no ``clean``.

    Args:
        suite: ``dns2020-no-reverb``, ``dns2020-with-reverb`` or ``dns2020-real``.
        entries: Checksum entries (default: the pinned list).

    Raises:
        KeyError: For an unknown suite.
        ValueError: For an unparsable name or a noisy file whose clean file is not listed.
    """
    condition = SUITES[suite]["condition"]
    paths = sorted(e.path for e in (entries if entries is not None else pinned_checksums()))
    if condition == "real_recordings":
        prefix = f"{TEST_SET}/real_recordings/"
        utterances = []
        for path in paths:
            if path.startswith(prefix) and "/" not in path[len(prefix):]:
                name = path[len(prefix):]
                tags = {"condition": condition, **parse_real_name(name)}
                utterances.append(
                    Utterance(id=f"dns2020_real_{Path(name).stem}", sample_rate=SAMPLE_RATE,
                              noisy=_corpus_path(path), tags=tags)
                )
        return utterances

    base = f"{TEST_SET}/synthetic/{condition}"
    clean = {}
    for path in paths:
        if path.startswith(f"{base}/clean/"):
            match = _CLEAN.match(path.rsplit("/", 1)[1])
            if match is None:
                raise ValueError(f"not a DNS-2020 clean file name: {path!r}")
            clean[int(match["fileid"])] = path
    items = []
    for path in paths:
        if path.startswith(f"{base}/noisy/"):
            fields = parse_synthetic_name(path.rsplit("/", 1)[1])
            if fields["fileid"] not in clean:
                raise ValueError(f"{path}: no clean file with fileid {fields['fileid']} in {base}/clean/")
            items.append((fields["fileid"], path, fields))
    utterances = []
    for fileid, path, fields in sorted(items):
        tags = {
            "condition": condition,
            "snr_db": str(fields["snr_db"]),
            "snr_bin": snr_bin(fields["snr_db"]),
            "target_level_dbfs": str(fields["target_level_dbfs"]),
            "noise": fields["noise"],
            "noise_class": fields["noise_class"],
        }
        utterances.append(
            Utterance(
                id=f"dns2020_{CONDITIONS[condition]}_fileid_{fileid}",
                sample_rate=SAMPLE_RATE,
                noisy=_corpus_path(path),
                clean=_corpus_path(clean[fileid]),
                tags=tags,
            )
        )
    return utterances


def card_dict(suite: str, manifest_sha256: str, utterances: Sequence[Utterance]) -> dict[str, Any]:
    """The card of a DNS-2020 suite."""
    real = SUITES[suite]["condition"] == "real_recordings"
    categories = {k: list(v) for k, v in CATEGORIES_SYNTHETIC.items()}
    provenance = (
        f"{PROVENANCE_SOURCE} Manifest generated from that list by `python -m urgentbench.data.dns2020 "
        f"--build-suites` ({len(utterances)} utterances): "
        + (
            "one per file of real_recordings/, in file-name order; tags parsed from the file names. "
            if real
            else "noisy and clean paired by the fileid at the end of the noisy file name, in fileid order; "
            "tags parsed from the noisy file name. "
        )
        + "The inputs are the recorded files (no degradations are simulated), read as 16-bit PCM at "
        "16 kHz without level change."
    )
    return {
        "name": suite,
        "version": SUITE_VERSION,
        "description": SUITES[suite]["description"],
        "sample_rate": SAMPLE_RATE,
        "manifest": "manifest.jsonl",
        "manifest_sha256": manifest_sha256,
        "metrics": ["dnsmos"] if real else list(METRICS_SYNTHETIC),
        "categories": {"non-intrusive": ["dnsmos_ovrl"]} if real else categories,
        "citation": CITATION,
        "licence": LICENCE,
        "provenance": provenance,
        "corpora": ["dns2020"],
        "homepage": HOMEPAGE,
        "tag_notes": dict(TAG_NOTES_REAL if real else TAG_NOTES_SYNTHETIC),
    }


def build_suites(
    out_dir: str | os.PathLike | None = None, entries: Sequence[FileEntry] | None = None
) -> dict[str, str]:
    """Write ``manifest.jsonl`` and ``card.yaml`` of the three DNS-2020 suites.

    Deterministic: the output depends only on the checksum list.

    Args:
        out_dir: Folder holding the suite folders (default: this checkout's ``data_manifests``).
        entries: Checksum entries (default: the pinned list).

    Returns:
        Suite name -> manifest sha256.
    """
    import yaml

    if out_dir is None:
        from urgentbench.suites import PROJECT_SUITES_DIR

        out_dir = PROJECT_SUITES_DIR
    entries = list(entries) if entries is not None else pinned_checksums()
    shas = {}
    for suite in SUITES:
        folder = Path(out_dir) / suite
        utterances = suite_utterances(suite, entries)
        sha = write_manifest(folder / "manifest.jsonl", utterances)
        text = "# Generated by `python -m urgentbench.data.dns2020 --build-suites`; do not edit by hand.\n"
        card = card_dict(suite, sha, utterances)
        text += yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=100)
        (folder / "card.yaml").write_text(text, encoding="utf-8")
        logger.info("wrote %s (%d utterances, sha256 %s) and card.yaml", folder, len(utterances), sha)
        shas[suite] = sha
    return shas
