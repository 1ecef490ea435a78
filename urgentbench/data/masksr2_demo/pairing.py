"""Pairing the page's files by its naming rules: inputs, targets and each system's output per utterance.

:func:`plan_condition` accounts for every inventory row of a condition: used, a FLAC twin
of a used WAV, or part of an utterance excluded because its input exists only in the
repository's history (:data:`~urgentbench.data.masksr2_demo.recipe.HISTORY_ONLY_INPUTS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from urgentbench.data.masksr2_demo.recipe import (
    CONDITIONS,
    CORPUS_NAME,
    FLAT_SYSTEM_FOLDERS,
    HISTORY_ONLY_INPUTS,
    INTELLIGIBILITY_SYSTEM_FOLDERS,
    SIBLING_SYSTEMS,
    ConditionSpec,
    InventoryRow,
    load_inventory,
    natural_key,
)
from urgentbench.manifest import Utterance

_VCTK_SPEAKER = re.compile(r"^(p\d{3}|s\d+)_")
_BWE = re.compile(r"_mic1_(\d+)_cheby1$")
_DECLIP = re.compile(r"_mic1_(\d+\.\d+)$")
_GSR = re.compile(r"^(\d+)_simulated$")
_DNS_FILEID = re.compile(r"_fileid_(\d+)$")
_DNS_SNR = re.compile(r"_snr(\d+)_tl-(\d+)_fileid_\d+$")
_REALREC = re.compile(r"^audioset_realrec_([a-z]+)_")


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

    def to_utterance(self, spec: ConditionSpec, text: str | None = None) -> Utterance:
        """The manifest line (``text``: the clip's transcript, when known)."""
        tags, speaker = utterance_tags(spec, self.label, self.id)
        return Utterance(
            id=self.id,
            sample_rate=spec.sample_rate,
            noisy=f"@{CORPUS_NAME}/{self.input.path}",
            clean=None if self.target is None else f"@{CORPUS_NAME}/{self.target.path}",
            text=text,
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
