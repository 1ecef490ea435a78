"""The MaskSR2 demo page (github.com/MaskSR/MaskSR2) as a corpus, its sub-suites and its published outputs.

The demo page of MaskSR2 (Liu, Li, Serrà, Pascual, ICASSP 2025) serves 305 audio files:
unprocessed inputs, targets and the outputs of MaskSR-L, MaskSR2-L and four baselines for
general speech restoration, bandwidth extension, declipping and DNS-2020 denoising. This
module

* verifies a local copy (or downloads one) against the committed inventory
  ``urgentbench/data/checksums/masksr2_demo_inventory.csv``. The inventory has **no
  sha256**: a file is checked for presence, readability, sample rate, channel count and
  duration (within 1 ms of the inventory), not for its bytes;
* generates one sub-suite per condition, ``data_manifests/masksr2-demo/<condition>/``
  (suite name ``masksr2-demo/<condition>``), whose manifests point into the prepared
  copy with ``@masksr2-demo/<path>``;
* pairs every published output with its input (flat ``<stem>_proc`` folders for
  MaskSR-L, MaskSR2-L and DeepFilterNet3; same-name files in the condition folders for
  VoiceFixer, FRCRN and DEMUCS) and materialises one directory per (condition, system)
  under ``<root>/.urgentbench/published/`` that :func:`urgentbench.runner.directory_producer`
  scores like any outside entry.

Only utterances whose unprocessed input is at the repository head are in the suites; the
four whose input exists only in the repository history are listed as ``excluded`` in the
cards. The DNS-2020 ``with_reverb`` condition is omitted: its inputs and targets are
history-only.

Outputs are hard-linked into the published directories (copied when the file system
refuses links), byte-identical to the page's files, except the one documented quirk:
``MaskSR-L/10_simulated_proc.wav`` (and its intelligibility-table copy) is 308 samples
longer than its input (untrimmed codec padding). That file is trimmed to the input length
**explicitly** and the trim is recorded in the ``quirks`` of the published-system metadata;
the scorer itself never trims.

Command line::

    python -m urgentbench.data.masksr2_demo --build-suites     # regenerate the committed suites
    python -m urgentbench.data.masksr2_demo --prepare DIR      # verify a checkout, build published outputs
    python -m urgentbench.data.masksr2_demo --score [--condition gsr]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from urgentbench.data import corpus_root, data_home, record_corpus
from urgentbench.data.base import Corpus, CorpusError
from urgentbench.manifest import Utterance, write_manifest
from urgentbench.suites import PROJECT_SUITES_DIR

logger = logging.getLogger(__name__)

CORPUS_NAME = "masksr2-demo"
REPOSITORY = "https://github.com/MaskSR/MaskSR2"
PAGE_URL = "https://masksr.github.io/MaskSR2/"
RAW_BASE_URL = "https://raw.githubusercontent.com/MaskSR/MaskSR2/main/"
INVENTORY_PATH = Path(__file__).resolve().parent / "checksums" / "masksr2_demo_inventory.csv"
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
    "terms). urgentbench redistributes none of it: only file names, durations and rates are committed; "
    "`prepare` reads your own copy or fetches the files from the repository."
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

_VCTK_SPEAKER = re.compile(r"^(p\d{3}|s\d+)_")
_BWE = re.compile(r"_mic1_(\d+)_cheby1$")
_DECLIP = re.compile(r"_mic1_(\d+\.\d+)$")
_GSR = re.compile(r"^(\d+)_simulated$")
_DNS_FILEID = re.compile(r"_fileid_(\d+)$")
_DNS_SNR = re.compile(r"_snr(\d+)_tl-(\d+)_fileid_\d+$")
_REALREC = re.compile(r"^audioset_realrec_([a-z]+)_")


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
    """

    name: str
    labels: tuple[str, ...]
    sample_rate: int
    description: str
    metrics: tuple[str, ...] = tuple(FULL_METRICS)
    categories: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in FULL_CATEGORIES.items()})
    notes: tuple[str, ...] = ()


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
                "clips, from the page's For_intelligibility_table/ copies, 44.1 kHz. The transcripts the page "
                "shows are not part of this suite, so WER is not computed."
            ),
            notes=(
                "No transcripts: the page displays them, but they are not redistributed here. WER/CER needs "
                "them; with your own transcripts, write a manifest variant with `text` fields (a new suite "
                "version) and score it with --metrics wer.",
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


# --------------------------------------------------------------------------- inventory


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
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------- pairing (section 5.5 rules)


def target_path(spec: ConditionSpec, unprocessed: str) -> str | None:
    """The target file of an unprocessed input, by the page's naming rules (None for real recordings).

    Raises:
        ValueError: For an input name that does not follow the rules of its condition.
    """
    p = PurePosixPath(unprocessed)
    stem, ext = p.stem, p.suffix
    if spec.name == "gsr":
        m = _GSR.match(stem)
        if not m:
            raise ValueError(f"{unprocessed}: not a GSR input name ({{n}}_simulated)")
        return f"GSR/Target/{m.group(1)}_clean{ext}"
    if spec.name.startswith("bwe-"):
        return f"SR/Target/{p.name}"
    if spec.name.startswith("declip-"):
        m = _DECLIP.search(stem)
        if not m:
            raise ValueError(f"{unprocessed}: not a declipping input name (..._mic1_<1/thr>)")
        return str(p.parent.parent / "clean" / f"{stem[: m.start()]}_mic1{ext}")
    if spec.name == "dns-no-reverb":
        m = _DNS_FILEID.search(stem)
        if not m:
            raise ValueError(f"{unprocessed}: not a DNS noisy name (..._fileid_N)")
        return f"DNS2020_no_reverb/Target/clean_fileid_{m.group(1)}{ext}"
    if spec.name == "dns-real":
        return None
    if spec.name == "intelligibility":
        m = _GSR.match(stem)
        name = f"{m.group(1)}_clean{ext}" if m else p.name
        return f"For_intelligibility_table/target/{name}"
    raise ValueError(f"no target rule for condition {spec.name!r}")


def output_path(spec: ConditionSpec, system: str, unprocessed: str) -> str:
    """Where the page keeps ``system``'s output for an unprocessed input.

    Raises:
        ValueError: For a system without a pairing rule in this condition.
    """
    p = PurePosixPath(unprocessed)
    if spec.name == "intelligibility":
        folder = INTELLIGIBILITY_SYSTEM_FOLDERS.get(system)
        if folder is None:
            raise ValueError(f"no intelligibility-table folder for system {system!r}")
        return f"{folder}/{p.stem}_proc{p.suffix}"
    if system in FLAT_SYSTEM_FOLDERS:
        return f"{FLAT_SYSTEM_FOLDERS[system]}/{p.stem}_proc{p.suffix}"
    if system in SIBLING_SYSTEMS:
        return str(p.parent.parent / system / p.name)
    raise ValueError(f"no pairing rule for system {system!r}")


def implied_input_stem(spec: ConditionSpec, row: InventoryRow) -> str:
    """The unprocessed stem that a target or output row belongs to (inverse of the pairing rules)."""
    stem = row.stem
    if row.role == "system":
        return stem[: -len("_proc")] if stem.endswith("_proc") else stem
    if spec.name in ("gsr", "intelligibility"):
        m = re.match(r"^(\d+)_clean$", stem)
        if m:
            return f"{m.group(1)}_simulated"
        return stem
    if spec.name.startswith("declip-"):
        suffix = {"declip-0.1": "10.00", "declip-0.25": "4.00"}[spec.name]
        return f"{stem}_{suffix}"
    if spec.name == "dns-no-reverb":
        m = re.match(r"^clean_fileid_(\d+)$", stem)
        return f"fileid_{m.group(1)}" if m else stem
    return stem


def utterance_tags(spec: ConditionSpec, label: str, stem: str) -> tuple[dict[str, str], str | None]:
    """Tags and speaker of an utterance, parsed from its input stem."""
    tags = {"condition": label}
    m = _VCTK_SPEAKER.match(stem)
    speaker = m.group(1) if m else None
    if speaker:
        tags["speaker"] = speaker
    m = _BWE.search(stem)
    if m:
        tags["cutoff_hz"] = m.group(1)
    m = _DECLIP.search(stem)
    if m and spec.name.startswith("declip-"):
        tags["clip_threshold"] = spec.name.split("-", 1)[1]
    m = _DNS_FILEID.search(stem)
    if m:
        tags["fileid"] = m.group(1)
    m = _DNS_SNR.search(stem)
    if m:
        tags["snr_db"] = m.group(1)
        tags["target_level_dbfs"] = f"-{m.group(2)}"
    m = _REALREC.match(stem)
    if m:
        tags["noise"] = m.group(1)
    return tags, speaker


@dataclass
class PlannedUtterance:
    """One suite item with the page files it uses."""

    id: str
    label: str
    input: InventoryRow
    target: InventoryRow | None
    outputs: dict[str, InventoryRow] = field(default_factory=dict)
    twins: list[str] = field(default_factory=list)

    def to_utterance(self, spec: ConditionSpec) -> Utterance:
        """The manifest line."""
        tags, speaker = utterance_tags(spec, self.label, self.id)
        return Utterance(
            id=self.id,
            sample_rate=spec.sample_rate,
            noisy=f"@{CORPUS_NAME}/{self.input.path}",
            clean=None if self.target is None else f"@{CORPUS_NAME}/{self.target.path}",
            speaker=speaker,
            tags=tags,
        )


@dataclass
class ConditionPlan:
    """A condition's utterances, systems and exclusions, derived from the inventory."""

    spec: ConditionSpec
    utterances: list[PlannedUtterance]
    systems: list[str]
    excluded: list[dict[str, Any]]

    def output_counts(self) -> dict[str, int]:
        """System -> number of paired outputs."""
        return {s: sum(1 for u in self.utterances if s in u.outputs) for s in self.systems}


def plan_condition(spec: ConditionSpec, rows: list[InventoryRow]) -> ConditionPlan:
    """Pair inputs, targets and outputs of one condition by the page's naming rules.

    Every inventory row of the condition is accounted for: used, a FLAC twin of a used
    WAV, or part of an excluded utterance (no input at head).

    Raises:
        ValueError: When the inventory contradicts the pairing rules (a target missing,
            a rate mismatch, a file that fits nowhere).
    """
    mine = [r for r in rows if r.condition in spec.labels]
    by_path = {r.path: r for r in mine}
    for r in mine:
        if r.sample_rate != spec.sample_rate:
            raise ValueError(f"{r.path}: {r.sample_rate} Hz in the inventory, expected {spec.sample_rate}")
    used: set[str] = set()
    inputs: dict[str, list[InventoryRow]] = {}
    for r in mine:
        if r.role == "unprocessed":
            inputs.setdefault(r.stem, []).append(r)
    systems = sorted({r.system for r in mine if r.role == "system"})
    planned = []
    for stem in sorted(inputs, key=natural_key):
        candidates = sorted(inputs[stem], key=lambda r: (r.suffix != ".wav", r.path))
        chosen, twins = candidates[0], candidates[1:]
        used.update(r.path for r in candidates)
        tpath = target_path(spec, chosen.path)
        target = None
        if tpath is not None:
            target = by_path.get(tpath)
            if target is None or target.role != "target":
                raise ValueError(f"{chosen.path}: its target {tpath} is not in the inventory")
            used.add(tpath)
            for twin in twins:
                ttwin = target_path(spec, twin.path)
                if ttwin in by_path:
                    used.add(ttwin)
        utt = PlannedUtterance(stem, chosen.condition, chosen, target, twins=[t.path for t in twins])
        for system in systems:
            opath = output_path(spec, system, chosen.path)
            if opath in by_path:
                utt.outputs[system] = by_path[opath]
                used.add(opath)
            for twin in twins:
                otwin = output_path(spec, system, twin.path)
                if otwin in by_path:
                    used.add(otwin)
        planned.append(utt)

    leftovers = [r for r in mine if r.path not in used]
    by_implied: dict[str, list[InventoryRow]] = {}
    for r in leftovers:
        by_implied.setdefault(implied_input_stem(spec, r), []).append(r)
    # DNS targets name only the fileid; attach them to the noisy stem their outputs give.
    for key in [k for k in by_implied if k.startswith("fileid_")]:
        full = [k for k in by_implied if k.endswith(f"_{key}") and k != key]
        if len(full) == 1:
            by_implied[full[0]].extend(by_implied.pop(key))
    excluded = []
    for stem in sorted(by_implied, key=natural_key):
        files = sorted(r.path for r in by_implied[stem])
        if stem in HISTORY_ONLY_INPUTS:
            reason = (
                f"no unprocessed input at the repository head: {HISTORY_ONLY_INPUTS[stem]} exists only in "
                f"its history; the head files for this item are not scored"
            )
        else:
            raise ValueError(f"inventory files of {spec.name} fit no input and no known gap: {files}")
        excluded.append({"id": stem, "reason": reason, "files_at_head": files})
    return ConditionPlan(spec, planned, systems, excluded)


def plan_all(rows: list[InventoryRow] | None = None) -> dict[str, ConditionPlan]:
    """Plans of every condition (from the committed inventory by default)."""
    rows = load_inventory() if rows is None else rows
    return {name: plan_condition(spec, rows) for name, spec in CONDITIONS.items()}


# --------------------------------------------------------------------------- suites


def _card(plan: ConditionPlan, manifest_sha: str) -> dict[str, Any]:
    spec = plan.spec
    n = len(plan.utterances)
    systems = [f"{s} (published)" for s in plan.systems]
    provenance = (
        f"Files of the MaskSR2 demo page repository {REPOSITORY} (branch main, head 7498870, 2024-09-14), "
        f"read from a copy prepared with `urgentbench data prepare {CORPUS_NAME}` and verified against "
        f"urgentbench/data/checksums/masksr2_demo_inventory.csv (presence, readability, rate, channels, "
        f"duration within 1 ms; the inventory has no sha256, so the bytes are not pinned). Utterance id = "
        f"unprocessed file stem; inputs are the page's unprocessed files, references its targets, paired by "
        f"the page's naming rules; nothing is simulated or rescaled. Generated by "
        f"`python -m urgentbench.data.masksr2_demo --build-suites`."
    )
    card: dict[str, Any] = {
        "name": f"{CORPUS_NAME}/{spec.name}",
        "version": SUITE_VERSION,
        "description": spec.description + f" {n} utterances.",
        "sample_rate": spec.sample_rate,
        "manifest": "manifest.jsonl",
        "manifest_sha256": manifest_sha,
        "metrics": list(spec.metrics),
        "categories": {k: list(v) for k, v in spec.categories.items()},
        "citation": CITATION,
        "corpora": [CORPUS_NAME],
        "licence": LICENCE,
        "provenance": provenance,
        "published_systems": systems,
        "published_systems_note": (
            "Scored from the page's own output files by "
            "`python -m urgentbench.data.masksr2_demo --score` (urgentbench.data.masksr2_demo.score_published), "
            "together with the `noisy` system (the unprocessed input)."
        ),
        "excluded": plan.excluded,
    }
    if spec.notes:
        card["notes"] = list(spec.notes)
    return card


def build_suites(
    out_dir: str | os.PathLike = SUITES_ROOT, rows: list[InventoryRow] | None = None
) -> dict[str, Path]:
    """Write ``<out_dir>/<condition>/manifest.jsonl`` and ``card.yaml`` for every condition (deterministic).

    Returns:
        Condition -> card path.
    """
    import yaml

    out_dir = Path(out_dir)
    plans = plan_all(rows)
    written = {}
    for name, plan in plans.items():
        folder = out_dir / name
        sha = write_manifest(folder / "manifest.jsonl", [u.to_utterance(plan.spec) for u in plan.utterances])
        card = _card(plan, sha)
        text = (
            "# Generated by `python -m urgentbench.data.masksr2_demo --build-suites`; do not edit by hand.\n"
            + yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=110)
        )
        (folder / "card.yaml").write_text(text, encoding="utf-8")
        written[name] = folder / "card.yaml"
        logger.info("wrote %s (%d utterances)", folder, len(plan.utterances))
    return written


# --------------------------------------------------------------------------- verification


def check_file(root: Path, row: InventoryRow) -> str | None:
    """Check one file against its inventory row; None when it is fine, else the problem."""
    import soundfile as sf

    path = root / row.path
    if not path.is_file():
        return f"{row.path}: missing"
    try:
        data, sr = sf.read(path, dtype="int16", always_2d=True)
    except Exception as exc:  # libsndfile raises several types for broken files
        lines = str(exc).strip().splitlines()
        return f"{row.path}: unreadable ({type(exc).__name__}{': ' + lines[0] if lines else ''})"
    problems = []
    if sr != row.sample_rate:
        problems.append(f"{sr} Hz, expected {row.sample_rate} Hz")
    if data.shape[1] != row.channels:
        problems.append(f"{data.shape[1]} channel(s), expected {row.channels}")
    duration = data.shape[0] / sr if sr else 0.0
    if abs(duration - row.duration_s) > DURATION_TOLERANCE_S:
        problems.append(f"{duration:.4f} s ({data.shape[0]} frames), expected {row.duration_s} s")
    return f"{row.path}: " + "; ".join(problems) if problems else None


def verify_copy(root: str | os.PathLike, rows: list[InventoryRow] | None = None, progress: bool = False) -> list[str]:
    """Every problem of a copy of the demo repository (empty when it matches the inventory)."""
    from tqdm import tqdm

    root = Path(root)
    rows = load_inventory() if rows is None else rows
    problems = []
    for row in tqdm(rows, disable=not progress, unit="file", desc=f"verify {CORPUS_NAME}"):
        problem = check_file(root, row)
        if problem:
            problems.append(problem)
    return problems


# --------------------------------------------------------------------------- download


def _fetch(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` with the project's resuming, retrying downloader.

    The inventory pins no sha256 or size, so the downloader only guarantees a complete
    transfer; the file is then checked like a local copy (rate, channels, duration).

    Raises:
        urgentbench.data.download.DownloadError: When the download fails for good.
    """
    from urgentbench.data.download import download

    download(url, dest, progress=False)


def download_copy(dest: str | os.PathLike, rows: list[InventoryRow] | None = None, progress: bool = True) -> list[str]:
    """Fetch every inventory file missing or wrong under ``dest`` from the repository's raw URLs.

    Returns:
        One problem per file that could not be fetched (the others are in place).
    """
    from tqdm import tqdm

    dest = Path(dest)
    rows = load_inventory() if rows is None else rows
    problems = []
    for row in tqdm(rows, disable=not progress, unit="file", desc=f"download {CORPUS_NAME}"):
        target = dest / row.path
        if target.is_file() and check_file(dest, row) is None:
            continue
        url = RAW_BASE_URL + urllib.parse.quote(row.path)
        try:
            _fetch(url, target)
        except Exception as exc:  # network errors come in many types; list them all
            problems.append(f"{row.path}: download from {url} failed ({type(exc).__name__}: {exc})")
    return problems


# --------------------------------------------------------------------------- published outputs


def _place(src: Path, dest: Path) -> str:
    """Hard-link ``src`` to ``dest``, copying when linking is impossible; returns the mode used."""
    try:
        os.link(src, dest)
        return "hardlink"
    except OSError:
        shutil.copy2(src, dest)
        return "copy"


def _trim_copy(src: Path, dest: Path, frames: int) -> None:
    """Write the first ``frames`` samples of ``src`` to ``dest`` with the same format and subtype."""
    import soundfile as sf

    info = sf.info(src)
    data, sr = sf.read(src, dtype="int16", always_2d=True)
    sf.write(dest, data[:frames], sr, subtype=info.subtype, format=info.format)


def build_published(
    root: str | os.PathLike, plans: dict[str, ConditionPlan] | None = None
) -> dict[str, Any]:
    """Materialise ``<root>/.urgentbench/published/<condition>/<system>/<utt id>.<ext>`` and its index.

    Outputs are hard links to the page's files (copies across file systems), except
    known padded outputs, which are trimmed to the input length and recorded as quirks.
    A missing output is simply absent (the scorer records it as missing). The directory
    is rebuilt from scratch each time.

    Returns:
        The index written to ``published.json``.
    """
    import soundfile as sf

    root = Path(root)
    plans = plan_all() if plans is None else plans
    final = root / PUBLISHED_DIR
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".published.", suffix=".tmp", dir=final.parent))
    index: dict[str, Any] = {
        "corpus": CORPUS_NAME,
        "inventory_sha256": inventory_sha256(),
        "omitted_conditions": dict(OMITTED_CONDITIONS),
        "conditions": {},
    }
    try:
        for name, plan in plans.items():
            entries = {}
            for system in plan.systems:
                folder = staging / name / system
                folder.mkdir(parents=True)
                sources, quirks, missing, modes = {}, [], [], set()
                for utt in plan.utterances:
                    row = utt.outputs.get(system)
                    if row is None:
                        missing.append(utt.id)
                        continue
                    src = root / row.path
                    dest = folder / f"{utt.id}{row.suffix}"
                    n_in = sf.info(root / utt.input.path).frames
                    n_out = sf.info(src).frames
                    excess = n_out - n_in
                    if excess and KNOWN_PADDED_OUTPUTS.get(row.path) == excess:
                        hops = f" ({n_out} = {n_out // 512} x 512)" if n_out % 512 == 0 else ""
                        _trim_copy(src, dest, n_in)
                        modes.add("trimmed copy")
                        quirks.append(
                            {
                                "utterance": utt.id,
                                "source": row.path,
                                "problem": (
                                    f"{n_out} samples, {excess} more than the input's {n_in}: {PADDING_NOTE}{hops}"
                                ),
                                "action": f"trimmed the last {excess} samples so the output is as long as the input",
                            }
                        )
                        logger.info("%s: trimmed %d trailing samples (%s)", row.path, excess, PADDING_NOTE)
                        sources[utt.id] = row.path
                        continue
                    modes.add(_place(src, dest))
                    sources[utt.id] = row.path
                    if excess:
                        quirks.append(
                            {
                                "utterance": utt.id,
                                "source": row.path,
                                "problem": f"{n_out} samples vs the input's {n_in} (not a documented quirk)",
                                "action": "left as is; the scorer reports the length mismatch for this utterance",
                            }
                        )
                        logger.warning("%s: %d samples vs the input's %d; not trimmed", row.path, n_out, n_in)
                entries[system] = {
                    "display_name": f"{system} (published)",
                    "directory": str(PUBLISHED_DIR / name / system),
                    "suite": f"{CORPUS_NAME}/{name}",
                    "outputs": len(sources),
                    "missing": missing,
                    "sources": sources,
                    "placement": sorted(modes),
                    "quirks": quirks,
                }
            index["conditions"][name] = entries
        (staging / PUBLISHED_INDEX).write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return index


def _published_index(root: Path | None = None) -> dict[str, Any]:
    root = corpus_root(CORPUS_NAME) if root is None else Path(root)
    path = root / PUBLISHED_DIR / PUBLISHED_INDEX
    if not path.is_file():
        raise CorpusError(
            CORPUS_NAME,
            [f"{path}: no published outputs; run `urgentbench data prepare {CORPUS_NAME}` again"],
        )
    return json.loads(path.read_text(encoding="utf-8"))


def published_systems(condition: str, root: str | os.PathLike | None = None) -> list[tuple[str, Path, dict[str, Any]]]:
    """The published systems of a condition: ``(display name, output directory, metadata)``.

    Args:
        condition: A condition name (``gsr``) or suite name (``masksr2-demo/gsr``).
        root: Prepared corpus root (default: the recorded one).

    Raises:
        ValueError: For an unknown condition.
        CorpusNotPreparedError: When the corpus is not prepared.
    """
    condition = _condition_name(condition)
    root = corpus_root(CORPUS_NAME) if root is None else Path(root)
    entries = _published_index(root)["conditions"].get(condition, {})
    out = []
    for system, entry in sorted(entries.items()):
        metadata = {
            "source": f"published outputs of the MaskSR2 demo page ({REPOSITORY})",
            "paper": CITATION,
            "system": system,
            "condition": condition,
            "outputs": entry["outputs"],
            "missing": list(entry["missing"]),
            "placement": list(entry["placement"]),
            "quirks": list(entry["quirks"]),
        }
        out.append((entry["display_name"], root / entry["directory"], metadata))
    return out


def _condition_name(condition: str) -> str:
    name = condition.split("/", 1)[1] if condition.startswith(f"{CORPUS_NAME}/") else condition
    if name not in CONDITIONS:
        raise ValueError(f"unknown {CORPUS_NAME} condition {condition!r}; known: {', '.join(CONDITIONS)}")
    return name


def _flat_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata for the results store: scalars only (lists joined, quirks as sentences)."""
    flat: dict[str, Any] = {}
    for key, value in metadata.items():
        if key == "quirks":
            flat[key] = "; ".join(f"{q['utterance']}: {q['problem']}; {q['action']}" for q in value) or "none"
        elif isinstance(value, list):
            flat[key] = ", ".join(str(v) for v in value) or "none"
        else:
            flat[key] = value
    return flat


def score_published(
    condition: str = "all",
    results_dir: str | os.PathLike = "results",
    jobs: int = 1,
    metrics: list[str] | None = None,
    *,
    include_noisy: bool = True,
    skip_unavailable: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Score the published systems (and the unprocessed ``noisy`` row) on the ``masksr2-demo/*`` suites.

    Afterwards ``urgentbench leaderboard --suite masksr2-demo/<condition>`` ranks them like
    any entry.

    Args:
        condition: A condition, its suite name, or ``"all"``.
        results_dir: Results folder (SQLite store and cached inputs).
        jobs: Worker processes.
        metrics: Metric names (default: each suite's).
        include_noisy: Also run the ``noisy`` system (URGENT's unprocessed row).
        skip_unavailable: Skip metrics whose packages are missing instead of failing.
        progress: Show progress bars.

    Returns:
        Condition -> :class:`urgentbench.runner.RunReport`.

    Raises:
        CorpusNotPreparedError: When the corpus is not prepared.
        RunError: For unavailable metrics.
    """
    from urgentbench import runner
    from urgentbench.suites import get_suite

    names = list(CONDITIONS) if condition == "all" else [_condition_name(condition)]
    reports = {}
    for name in names:
        suite = get_suite(f"{CORPUS_NAME}/{name}")
        suite.verify()
        suite.check_corpora()
        specs = runner.resolve_metrics(metrics, suite, skip_unavailable)
        ids = [u.id for u in suite.utterances()]
        producers = [runner.system_producer("noisy")] if include_noisy else []
        for display, directory, metadata in published_systems(name):
            producers.append(runner.directory_producer(directory, display, ids, _flat_metadata(metadata)))
        reports[name] = runner.run(
            suite,
            producers,
            specs,
            results_dir,
            jobs=jobs,
            command=f"urgentbench.data.masksr2_demo.score_published({name!r})",
            progress=progress,
        )
        logger.info("%s: %d jobs, %d rows", suite.key, reports[name].jobs, reports[name].rows_written)
    return reports


# --------------------------------------------------------------------------- the corpus


class MaskSR2Demo(Corpus):
    """The MaskSR2 demo page's 305 audio files (inputs, targets and published outputs)."""

    name = CORPUS_NAME
    description = (
        "Audio of the MaskSR2 demo page (github.com/MaskSR/MaskSR2): GSR, bandwidth extension (1/2/4/8 kHz), "
        "declipping (0.1/0.25) and DNS-2020 clips with MaskSR-L, MaskSR2-L, DeepFilterNet3, VoiceFixer, FRCRN "
        "and DEMUCS outputs; about 87 MB."
    )
    licence = LICENCE
    citation = CITATION
    homepage = PAGE_URL

    def prepare(self, source: Path | None = None, *, dest: Path | None = None, progress: bool = True) -> Path:
        """Verify a checkout of the demo repository (or download one) and build the published outputs.

        Args:
            source: A local checkout (or any folder with the repository's layout); None
                downloads every inventory file from the repository's raw URLs.
            dest: Download folder (default ``data_home() / "masksr2-demo"``); only with
                ``source=None``.
            progress: Show progress bars.

        Returns:
            The prepared root (``source`` itself, or the download folder).

        Raises:
            CorpusError: Listing every missing, unreadable, wrong-rate, wrong-channel or
                wrong-length file (and every failed download).
        """
        rows = load_inventory()
        problems: list[str] = []
        if source is None:
            root = Path(dest) if dest is not None else data_home() / CORPUS_NAME
            root.mkdir(parents=True, exist_ok=True)
            problems += download_copy(root, rows, progress)
        else:
            root = Path(source).expanduser()
            if not root.is_dir():
                raise CorpusError(CORPUS_NAME, [f"{root}: not a directory"])
        root = root.resolve()
        failed = {p.split(":", 1)[0] for p in problems}
        problems += [p for p in verify_copy(root, rows, progress) if p.split(":", 1)[0] not in failed]
        if problems:
            raise CorpusError(CORPUS_NAME, problems)
        try:
            index = build_published(root)
        except OSError as exc:
            raise CorpusError(CORPUS_NAME, [f"{root / PUBLISHED_DIR}: cannot write published outputs ({exc})"]) from exc
        record_corpus(
            CORPUS_NAME,
            root,
            source="download" if source is None else str(Path(source).expanduser().resolve()),
            files=len(rows),
            inventory_sha256=inventory_sha256(),
            verification="presence, readability, rate, channels, duration within 1 ms (the inventory has no sha256)",
            published=str(PUBLISHED_DIR),
            published_outputs=sum(e["outputs"] for c in index["conditions"].values() for e in c.values()),
        )
        logger.info("%s prepared at %s", CORPUS_NAME, root)
        return root


# --------------------------------------------------------------------------- command line


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m urgentbench.data.masksr2_demo``: build suites, prepare, score published outputs."""
    parser = argparse.ArgumentParser(prog="python -m urgentbench.data.masksr2_demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-suites", action="store_true", help="regenerate data_manifests/masksr2-demo/")
    parser.add_argument("--suites-dir", default=str(SUITES_ROOT), help="where --build-suites writes")
    parser.add_argument("--prepare", metavar="DIR", nargs="?", const="", help="verify DIR (or download) and record it")
    parser.add_argument("--score", action="store_true", help="score the published outputs")
    parser.add_argument("--condition", default="all", help="condition for --score (default: all)")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--metrics", help="comma-separated metrics (default: each suite's)")
    parser.add_argument("--skip-unavailable", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not (args.build_suites or args.prepare is not None or args.score):
        parser.error("nothing to do: give --build-suites, --prepare [DIR] and/or --score")
    try:
        if args.build_suites:
            build_suites(args.suites_dir)
        if args.prepare is not None:
            MaskSR2Demo().prepare(Path(args.prepare) if args.prepare else None, progress=not args.quiet)
        if args.score:
            metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
            score_published(args.condition, args.results_dir, args.jobs, metrics,
                            skip_unavailable=args.skip_unavailable, progress=not args.quiet)
    except (CorpusError, ValueError, RuntimeError) as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
