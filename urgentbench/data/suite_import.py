"""Turning recorded test data into a suite: check every item, fingerprint every file, write manifest and card.

The readers (:mod:`urgentbench.data.kaldi_import` for Kaldi/ESPnet folders, folder pairs
and Hugging Face datasets; :mod:`urgentbench.data.urgent_official` for the URGENT test sets)
produce :class:`ImportItem` objects and the problems they found while reading.
:func:`materialise` then opens every audio file once and lists, all at once and before
anything is written, one line per bad item: missing or unreadable audio, more than one
channel, noisy and reference at different rates or lengths, a rate that contradicts
``utt2fs``, a duplicate id. Good items become :class:`~urgentbench.manifest.Utterance`
objects that keep their own rate, language and the sha256 of each file's bytes (rendering
refuses a file that later differs). :func:`write_suite` writes ``manifest.jsonl`` and
``card.yaml``; the suite version carries a fingerprint of the content, so results on
different data are never stored under the same version.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from urgentbench.data.hf_loader import AudioProbe, file_extension, probe_audio
from urgentbench.manifest import Utterance, write_manifest
from urgentbench.suites import PROJECT_SUITES_DIR, SUITES

__all__ = [
    "AudioRef",
    "ImportItem",
    "SuiteImportError",
    "default_suites_dir",
    "fingerprint",
    "materialise",
    "safe_name",
    "write_suite",
]

logger = logging.getLogger(__name__)

#: How URGENT's metadata writes a missing transcript; stored as "no transcript".
NOT_AVAILABLE = "<not-available>"


class SuiteImportError(ValueError):
    """Input that cannot become a suite; the message lists every problem, one per line."""

    def __init__(self, what: str, problems: Sequence[str]):
        self.problems = list(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{what}: {len(self.problems)} problem(s), nothing written:\n{listing}")


@dataclass
class AudioRef:
    """Where one audio file's bytes are: a file on disk, or encoded bytes from a dataset.

    Args:
        path: A file (Kaldi / folder imports; the manifest refers to it where it is).
        data: Encoded bytes (dataset imports; written out under the suite's data folder).
        name: The original file name (for the extension of written bytes).
    """

    path: Path | None = None
    data: bytes | None = None
    name: str = ""

    def read(self) -> bytes:
        """The bytes.

        Raises:
            ValueError: One line when the file is missing or cannot be read.
        """
        if self.data is not None:
            return self.data
        if self.path is None:
            raise ValueError("no audio")
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            raise ValueError(f"file {self.path} not found") from None
        except OSError as exc:
            raise ValueError(f"file {self.path} cannot be read ({exc.strerror or exc})") from None


@dataclass
class ImportItem:
    """One utterance as read from the source, before its audio is checked.

    Args:
        id: Utterance id (``<id>.flac`` is what systems write).
        where: Where it was read (``wav.scp:12``, ``row 7``), for problem lines.
        noisy: The degraded input.
        clean: The reference, if any.
        text: Transcript (``<not-available>`` and empty become None).
        language: Language code, if known.
        declared_rate: A rate the source states (``utt2fs``), checked against the files.
        tags: Per-condition labels.
    """

    id: str
    where: str
    noisy: AudioRef
    clean: AudioRef | None = None
    text: str | None = None
    language: str | None = None
    declared_rate: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


def safe_name(uid: str) -> str:
    """A file-name-safe form of an id (path separators and odd characters replaced)."""
    keep = "".join(c if c.isalnum() or c in "-_.+=@" else "_" for c in uid)
    return keep.lstrip(".") or "item"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _probe(label: str, ref: AudioRef) -> tuple[bytes, AudioProbe]:
    data = ref.read()
    try:
        probe = probe_audio(data)
    except ValueError as exc:
        where = f" {ref.path}" if ref.path is not None else ""
        raise ValueError(f"{label}{where}: {exc}") from None
    if probe.frames <= 0:
        raise ValueError(f"{label}: audio has no samples")
    if probe.channels != 1:
        raise ValueError(f"{label}: {probe.channels} channels; URGENT scores mono audio only")
    return data, probe


def materialise(
    items: Sequence[ImportItem],
    read_problems: Sequence[str],
    *,
    what: str,
    data_dir: str | os.PathLike | None = None,
    path_prefix: str | None = None,
    disk_root: tuple[Path, str] | None = None,
) -> list[Utterance]:
    """Check every item's audio and build the utterances; nothing is written when anything is wrong.

    Args:
        items: The items read from the source.
        read_problems: Problems the reader already found (malformed lines, extra ids ...).
        what: Names the import in the error (``"suite import mysuite"``).
        data_dir: Where encoded bytes (dataset items) are written, as
            ``<data_dir>/noisy/<id><ext>`` and ``<data_dir>/clean/<id><ext>``; the folder is
            replaced as a whole once everything checked out.
        path_prefix: Manifest path prefix for written files (``@urgent2024/test-nonblind``);
            default: their absolute paths.
        disk_root: ``(folder, prefix)``: files on disk inside ``folder`` are referred to as
            ``<prefix>/<path relative to folder>`` (a prepared corpus, ``@urgent2025``); other
            files on disk by their absolute path.

    Returns:
        One utterance per item, in the items' order.

    Raises:
        SuiteImportError: Listing every problem (reader's and audio), one line each.
    """
    problems = list(read_problems)
    counts = Counter(item.id for item in items)
    first_seen: dict[str, str] = {}
    repeats: set[int] = set()
    for index, item in enumerate(items):
        if counts[item.id] > 1:
            if item.id in first_seen:
                problems.append(f"{item.where}: duplicate id {item.id!r} (first at {first_seen[item.id]})")
                repeats.add(index)
                continue
            first_seen[item.id] = item.where
    staging = None
    if data_dir is not None and any(i.noisy.data is not None or (i.clean and i.clean.data is not None) for i in items):
        staging = Path(f"{os.fspath(data_dir)}.staging-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
    utterances: list[Utterance] = []
    try:
        for index, item in enumerate(items):
            if index in repeats:
                continue
            utt = _check_item(item, problems, staging, path_prefix, data_dir, disk_root)
            if utt is not None:
                utterances.append(utt)
        if problems:
            raise SuiteImportError(what, sorted(problems, key=_problem_order))
        if staging is not None:
            final = Path(data_dir)  # type: ignore[arg-type]
            shutil.rmtree(final, ignore_errors=True)
            final.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(final)
            staging = None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return utterances


_WHERE = re.compile(r"^(?P<file>[^\s:]*(?:\s[^\s:]+)*?):(?P<line>\d+):")
_ROW = re.compile(r"^(?P<prefix>[^:]*?)row (?P<row>\d+):")


def _problem_order(problem: str) -> tuple[str, int]:
    """Sort key: by table and line number (``wav.scp:12:``) or row (``[subset ]row 7:``); others first."""
    match = _ROW.match(problem)
    if match:
        return f"{match['prefix']}row", int(match["row"])
    match = _WHERE.match(problem)
    if match:
        return match["file"], int(match["line"])
    return "", 0


def _check_item(
    item: ImportItem,
    problems: list[str],
    staging: Path | None,
    prefix: str | None,
    data_dir: str | os.PathLike | None,
    disk_root: tuple[Path, str] | None = None,
) -> Utterance | None:
    """The utterance of one item, or None after appending its problems (one line)."""
    label = f"{item.where}: {item.id}"
    issues: list[str] = []
    noisy_data = clean_data = None
    noisy_probe = clean_probe = None
    try:
        noisy_data, noisy_probe = _probe("noisy", item.noisy)
    except ValueError as exc:
        issues.append(str(exc))
    if item.clean is not None:
        try:
            clean_data, clean_probe = _probe("reference", item.clean)
        except ValueError as exc:
            issues.append(str(exc))
    if noisy_probe and clean_probe:
        if noisy_probe.sample_rate != clean_probe.sample_rate:
            issues.append(
                f"noisy is {noisy_probe.sample_rate} Hz but the reference is {clean_probe.sample_rate} Hz "
                f"(rate mismatch)"
            )
        elif noisy_probe.frames != clean_probe.frames:
            issues.append(
                f"noisy has {noisy_probe.frames} samples but the reference has {clean_probe.frames} (length mismatch)"
            )
    if noisy_probe and item.declared_rate and item.declared_rate != noisy_probe.sample_rate:
        issues.append(f"declared {item.declared_rate} Hz (utt2fs) but the noisy file is {noisy_probe.sample_rate} Hz")
    if issues:
        problems.append(f"{label}: {'; '.join(issues)}")
        return None
    assert noisy_probe is not None and noisy_data is not None
    try:
        noisy_path = _place(item.noisy, noisy_data, noisy_probe, "noisy", item.id, staging, prefix, data_dir, disk_root)
        clean_path = None
        if item.clean is not None and clean_data is not None and clean_probe is not None:
            clean_path = _place(item.clean, clean_data, clean_probe, "clean", item.id, staging, prefix, data_dir, disk_root)
    except ValueError as exc:
        problems.append(f"{label}: {exc}")
        return None
    text = item.text.strip() if item.text is not None else None
    return Utterance(
        id=item.id,
        sample_rate=noisy_probe.sample_rate,
        noisy=noisy_path,
        clean=clean_path,
        text=None if not text or text == NOT_AVAILABLE else text,
        language=item.language or None,
        noisy_sha256=_digest(noisy_data),
        clean_sha256=_digest(clean_data) if clean_data is not None else None,
        tags=dict(item.tags),
    )


def _place(
    ref: AudioRef,
    data: bytes,
    probe: AudioProbe,
    role: str,
    uid: str,
    staging: Path | None,
    prefix: str | None,
    data_dir: str | os.PathLike | None,
    disk_root: tuple[Path, str] | None = None,
) -> str:
    """The manifest path of one file; dataset bytes are written into the staging folder."""
    if ref.data is None:
        assert ref.path is not None
        resolved = ref.path.resolve()
        if disk_root is not None and resolved.is_relative_to(disk_root[0].resolve()):
            return f"{disk_root[1].rstrip('/')}/{resolved.relative_to(disk_root[0].resolve()).as_posix()}"
        return str(resolved)
    if staging is None or data_dir is None:
        raise ValueError("encoded audio needs a data folder to be written to")
    relative = f"{role}/{safe_name(uid)}{file_extension(probe, ref.name)}"
    target = staging / relative
    if target.exists():
        raise ValueError(f"its file name {relative} collides with another id's (ids differ only in odd characters)")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    if prefix is not None:
        return f"{prefix.rstrip('/')}/{relative}"
    return str((Path(data_dir) / relative).resolve())


def fingerprint(utterances: Iterable[Utterance]) -> str:
    """sha256 over what identifies the content: ids, file digests, rates, transcripts, languages."""
    h = hashlib.sha256()
    for u in sorted(utterances, key=lambda u: u.id):
        fields = (u.id, u.sample_rate, u.noisy_sha256, u.clean_sha256, u.text, u.language)
        h.update(("\t".join("" if f is None else str(f) for f in fields) + "\n").encode("utf-8"))
    return h.hexdigest()


def default_suites_dir() -> Path:
    """Where new suites go: the first folder of ``$URGENTBENCH_SUITES_PATH``, else the project's ``data_manifests``."""
    for entry in os.environ.get("URGENTBENCH_SUITES_PATH", "").split(os.pathsep):
        if entry:
            return Path(entry).expanduser()
    return PROJECT_SUITES_DIR


#: Metrics of an imported suite: (with a reference, without, with transcripts).
METRICS_INTRUSIVE = ["dnsmos", "pesq", "estoi", "sdr", "si_sdr", "lsd", "mcd", "spk_sim"]
CATEGORIES = {
    "non-intrusive": ["dnsmos_ovrl"],
    "intrusive": ["pesq", "estoi", "sdr", "mcd", "lsd"],
    "downstream": ["spk_sim"],
}


def summary(utterances: Sequence[Utterance]) -> dict[str, Any]:
    """Counts a card reports: utterances, per rate, with reference, with transcript, per language."""
    rates = Counter(u.sample_rate for u in utterances)
    languages = Counter(u.language for u in utterances if u.language)
    out: dict[str, Any] = {
        "utterances": len(utterances),
        "sample_rates": {int(r): n for r, n in sorted(rates.items())},
        "with_reference": sum(1 for u in utterances if u.clean is not None),
        "with_transcript": sum(1 for u in utterances if u.text),
    }
    if languages:
        out["languages"] = dict(sorted(languages.items()))
    return out


def default_metrics(utterances: Sequence[Utterance]) -> tuple[list[str], dict[str, list[str]]]:
    """The metric list and ranked categories that fit the content (intrusive only with references, WER with text)."""
    has_ref = any(u.clean is not None for u in utterances)
    has_text = any(u.text for u in utterances)
    metrics = list(METRICS_INTRUSIVE) if has_ref else ["dnsmos"]
    categories = {k: list(v) for k, v in CATEGORIES.items()} if has_ref else {"non-intrusive": ["dnsmos_ovrl"]}
    if has_text:
        metrics.append("wer")
        categories.setdefault("downstream", []).append("wer")
    return metrics, categories


def write_suite(folder: str | os.PathLike, card: dict[str, Any], utterances: Sequence[Utterance], header: str) -> Path:
    """Write ``manifest.jsonl`` and ``card.yaml`` (with the manifest's sha256) into ``folder``.

    Args:
        folder: The suite folder (``<suites dir>/<name>``).
        card: Card fields; ``manifest`` and ``manifest_sha256`` are filled in, and
            ``sample_rate`` (the highest rate) when absent.
        utterances: The manifest lines.
        header: A comment line for the top of the card (how it was generated).

    Returns:
        The folder.
    """
    import yaml

    folder = Path(folder)
    sha = write_manifest(folder / "manifest.jsonl", utterances)
    full = dict(card)
    full["manifest"] = "manifest.jsonl"
    full["manifest_sha256"] = sha
    full.setdefault("sample_rate", max((u.sample_rate for u in utterances), default=16000))
    order = ["name", "version", "description", "sample_rate", "manifest", "manifest_sha256", "metrics", "categories"]
    ordered = {k: full[k] for k in order if k in full}
    ordered.update({k: v for k, v in full.items() if k not in ordered})
    text = header.rstrip("\n") + "\n" + yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, width=100)
    (folder / "card.yaml").write_text(text, encoding="utf-8")
    SUITES.rescan()  # the new suite is usable at once, in this process too
    logger.info("wrote %s (%d utterances, manifest sha256 %s)", folder, len(utterances), sha)
    return folder
