"""``urgentbench suite import``: a Kaldi/ESPnet data folder, a folder pair or a Hugging Face dataset as a suite.

Three sources, one result (``<suites dir>/<NAME>/manifest.jsonl`` + ``card.yaml``, every
file's sha256 in the manifest):

* **Kaldi / ESPnet tables** (:func:`read_kaldi`): ``wav.scp`` (noisy inputs), optionally
  ``spk1.scp`` (references), ``text``, ``utt2lang``, ``utt2fs``; each line ``<id> <value>``.
  Paths are used as written when they exist, else looked up relative to the table's folder
  and its parents, else by their last components under those folders (a copy moved from
  another machine). A piped command (``... |``) is refused. An id without a reference line
  is a non-intrusive-only item (as URGENT's real recordings); every id needs a ``text`` and
  ``utt2lang`` line when those tables are given (write ``<not-available>`` for an
  unknown transcript, as URGENT does).
* **A folder pair** (:func:`read_folder_pair`): ``noisy/`` and ``clean/`` matched by file
  name (relative path without extension); a file without its partner is a problem.
* **A Hugging Face dataset** (:func:`read_dataset`), through
  :mod:`urgentbench.data.hf_loader` with a column mapping; the encoded audio is written
  under ``$URGENTBENCH_DATA/imports/<NAME>/``.

Every bad line is reported at once, one line each with its table and line number (or row),
before anything is written: malformed lines, duplicate ids, ids in a side table that
``wav.scp`` lacks, missing or unreadable audio, multi-channel audio, noisy and reference
at different rates or lengths, a rate that contradicts ``utt2fs``, null cells.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from urgentbench.data.hf_loader import (
    HFSource,
    audio_payload,
    column_names,
    iter_rows,
    load_split,
    missing_columns,
)
from urgentbench.data.suite_import import (
    AudioRef,
    ImportItem,
    SuiteImportError,
    default_metrics,
    default_suites_dir,
    fingerprint,
    materialise,
    safe_name,
    summary,
    write_suite,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "ColumnMapping",
    "import_suite",
    "read_dataset",
    "read_folder_pair",
    "read_kaldi",
    "read_table",
]

logger = logging.getLogger(__name__)

#: Audio file extensions a folder pair is scanned for.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif")
IMPORT_VERSION = "1.0"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*(/[A-Za-z0-9][A-Za-z0-9._+-]*)?$")


# ----------------------------------------------------------------------------------------
# Kaldi tables
# ----------------------------------------------------------------------------------------


def read_table(path: str | os.PathLike, problems: list[str]) -> list[tuple[int, str, str]]:
    """``(line number, key, value)`` of a Kaldi table; malformed lines go to ``problems``.

    A missing file is one problem and an empty result.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        problems.append(f"{path}: not found")
        return []
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot be read ({exc})")
        return []
    out = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) < 2:
            problems.append(f"{path.name}:{lineno}: {parts[0]!r} has no value (expected '<id> <value>')")
            continue
        out.append((lineno, parts[0], parts[1].strip()))
    return out


def _bases(table: Path, extra: Sequence[Path]) -> list[Path]:
    folder = table.resolve().parent
    found = [*extra, folder, folder.parent, folder.parent.parent]
    unique: list[Path] = []
    for b in found:
        if b not in unique:
            unique.append(b)
    return unique


def resolve_audio_path(value: str, bases: Sequence[Path]) -> Path | None:
    """A table value as an existing file: as written, relative to a base, or by its last components under a base.

    The last-components lookup needs at least two components (``noisy/fileid_1.flac``), so
    that a noisy and a clean file of the same name are never confused.
    """
    path = Path(value).expanduser()
    if path.is_absolute() and path.is_file():
        return path
    if not path.is_absolute():
        for base in bases:
            if (base / path).is_file():
                return base / path
    parts = path.parts[1:] if path.is_absolute() else path.parts
    for k in range(len(parts) - 1, 1, -1):
        tail = Path(*parts[-k:])
        for base in bases:
            if (base / tail).is_file():
                return base / tail
    return None


def read_kaldi(
    noisy: str | os.PathLike,
    ref: str | os.PathLike | None = None,
    text: str | os.PathLike | None = None,
    utt2lang: str | os.PathLike | None = None,
    utt2fs: str | os.PathLike | None = None,
    *,
    roots: Sequence[str | os.PathLike] = (),
) -> tuple[list[ImportItem], list[str]]:
    """Items of a Kaldi/ESPnet data folder and the problems found reading it.

    Args:
        noisy: ``wav.scp``: ``<id> <noisy audio path>``.
        ref: ``spk1.scp``: ``<id> <reference path>`` (ids without a line have no reference).
        text: ``<id> <transcript>`` (``<not-available>`` for none); every id needs a line.
        utt2lang: ``<id> <language>``; every id needs a line.
        utt2fs: ``<id> <rate in Hz>``, checked against the files.
        roots: Further folders relative paths are looked up in.

    Returns:
        ``(items, problems)``; problems name the table and line.
    """
    problems: list[str] = []
    noisy = Path(noisy)
    bases = _bases(noisy, [Path(r).expanduser().resolve() for r in roots])
    entries = read_table(noisy, problems)
    side: dict[str, dict[str, tuple[int, str]]] = {}
    for role, table in (("ref", ref), ("text", text), ("utt2lang", utt2lang), ("utt2fs", utt2fs)):
        if table is None:
            continue
        rows: dict[str, tuple[int, str]] = {}
        for lineno, key, value in read_table(table, problems):
            if key in rows:
                problems.append(f"{Path(table).name}:{lineno}: duplicate id {key!r} (first at line {rows[key][0]})")
                continue
            rows[key] = (lineno, value)
        side[role] = rows
    ids = {key for _, key, _ in entries}
    for role, table in (("ref", ref), ("text", text), ("utt2lang", utt2lang), ("utt2fs", utt2fs)):
        if table is None:
            continue
        for key, (lineno, _) in side[role].items():
            if key not in ids:
                problems.append(f"{Path(table).name}:{lineno}: id {key!r} is not in {noisy.name}")
    items = []
    seen: dict[str, str] = {}
    for lineno, key, value in entries:
        where = f"{noisy.name}:{lineno}"
        if key in seen:
            problems.append(f"{where}: duplicate id {key!r} (first at {seen[key]})")
            continue
        seen[key] = where
        issues: list[str] = []
        noisy_path = _table_audio(value, bases, issues, "noisy")
        clean_ref = None
        if ref is not None and key in side["ref"]:
            ref_line, ref_value = side["ref"][key]
            clean_path = _table_audio(ref_value, _bases(Path(ref), bases), issues, f"reference ({Path(ref).name}:{ref_line})")
            clean_ref = AudioRef(path=clean_path) if clean_path else None
        transcript = None
        if text is not None:
            if key in side["text"]:
                transcript = side["text"][key][1]
            else:
                issues.append(f"no line in {Path(text).name} (write <not-available> for no transcript)")
        language = None
        if utt2lang is not None:
            if key in side["utt2lang"]:
                language = side["utt2lang"][key][1].split()[0]
            else:
                issues.append(f"no line in {Path(utt2lang).name}")
        declared = None
        if utt2fs is not None and key in side["utt2fs"]:
            fs_line, fs_value = side["utt2fs"][key]
            try:
                declared = int(float(fs_value))
            except ValueError:
                issues.append(f"{Path(utt2fs).name}:{fs_line}: rate {fs_value!r} is not a number")
        if issues:
            problems.append(f"{where}: {key}: {'; '.join(issues)}")
            continue
        assert noisy_path is not None
        items.append(
            ImportItem(key, where, AudioRef(path=noisy_path), clean_ref, transcript, language, declared)
        )
    return items, problems


def _table_audio(value: str, bases: Sequence[Path], issues: list[str], role: str) -> Path | None:
    if value.endswith("|"):
        issues.append(f"{role} is a piped command ({value!r}); give audio file paths")
        return None
    found = resolve_audio_path(value, bases)
    if found is None:
        issues.append(f"{role} file {value} not found")
    return found


# ----------------------------------------------------------------------------------------
# folder pair
# ----------------------------------------------------------------------------------------


def _audio_files(folder: Path) -> dict[str, Path]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS:
            out[path.relative_to(folder).with_suffix("").as_posix()] = path
    return out


def read_folder_pair(noisy_dir: str | os.PathLike, clean_dir: str | os.PathLike | None) -> tuple[list[ImportItem], list[str]]:
    """Items of a ``noisy/`` (and ``clean/``) folder pair, matched by relative path without extension.

    The id is the relative path without extension, ``/`` replaced by ``_``.

    Returns:
        ``(items, problems)``: a noisy file without a clean partner (or the reverse), two
        files of one name with different extensions, or an empty folder is a problem.
    """
    problems: list[str] = []
    noisy_dir = Path(noisy_dir)
    noisy = _audio_files(noisy_dir)
    if not noisy:
        problems.append(f"{noisy_dir}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    clean: dict[str, Path] = {}
    if clean_dir is not None:
        clean_dir = Path(clean_dir)
        clean = _audio_files(clean_dir)
        for key in sorted(set(clean) - set(noisy)):
            problems.append(f"{clean[key]}: no noisy file named {key}.* in {noisy_dir}")
    items = []
    for key, path in noisy.items():
        if clean_dir is not None and key not in clean:
            problems.append(f"{path}: no reference named {key}.* in {clean_dir}")
            continue
        clean_ref = AudioRef(path=clean[key]) if key in clean else None
        items.append(ImportItem(key.replace("/", "_"), str(path), AudioRef(path=path), clean_ref))
    return items, problems


# ----------------------------------------------------------------------------------------
# Hugging Face datasets
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnMapping:
    """Which dataset column plays which role (None: absent). Tags map a tag name to a column."""

    noisy: str
    ref: str | None = None
    text: str | None = None
    language: str | None = None
    id: str | None = None
    tags: Mapping[str, str] | None = None

    def roles(self) -> dict[str, str | None]:
        """Role -> column, tags included (``tag snr_db``)."""
        out = {"noisy audio": self.noisy, "reference audio": self.ref, "transcript": self.text,
               "language": self.language, "id": self.id}
        out.update({f"tag {k}": v for k, v in (self.tags or {}).items()})
        return out


def read_dataset(
    source: HFSource, mapping: ColumnMapping, *, from_hint: str = ""
) -> tuple[list[ImportItem], list[str], str | None]:
    """Items of one dataset split with a column mapping.

    Returns:
        ``(items, problems, commit)``: the hub commit the split was loaded at (None for a
        local copy). A mapped column the dataset lacks stops reading (one problem naming
        every missing column and the available ones); a null audio cell, a null transcript
        or language cell, an unreadable audio cell is one problem naming the row.

    Raises:
        HubError: When the dataset cannot be opened at all.
    """
    dataset, commit = load_split(source, from_hint=from_hint)
    available = column_names(dataset)
    missing = missing_columns(available, mapping.roles())
    if missing:
        return [], [
            f"{source.describe()}: no {', no '.join(missing)}; its columns are {', '.join(available)}"
        ], commit
    base = Path(source.path).expanduser() if source.is_local else None
    items: list[ImportItem] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for index, row in enumerate(iter_rows(dataset)):
        uid = str(row[mapping.id]) if mapping.id and row.get(mapping.id) is not None else f"{index:06d}"
        where = f"row {index}"
        if uid in seen:
            problems.append(f"{where}: duplicate id {uid!r} (first at {seen[uid]})")
            continue
        seen[uid] = where
        issues = []
        noisy = _cell_audio(row.get(mapping.noisy), base, issues, f"{mapping.noisy}")
        clean = None
        if mapping.ref and row.get(mapping.ref) is not None:
            clean = _cell_audio(row.get(mapping.ref), base, issues, f"{mapping.ref}")
        text = language = None
        if mapping.text:
            text = row.get(mapping.text)
            if text is None:
                issues.append(f"{mapping.text} is null (use <not-available> for no transcript)")
        if mapping.language:
            language = row.get(mapping.language)
            if language is None:
                issues.append(f"{mapping.language} is null")
        if mapping.id and row.get(mapping.id) is None:
            issues.append(f"{mapping.id} is null")
        if issues:
            problems.append(f"{where}: {uid}: {'; '.join(issues)}")
            continue
        tags = {k: str(row[c]) for k, c in (mapping.tags or {}).items() if row.get(c) is not None}
        assert noisy is not None
        items.append(ImportItem(uid, where, noisy, clean, None if text is None else str(text),
                                None if language is None else str(language), tags=tags))
    return items, problems, commit


def _cell_audio(value: Any, base: Path | None, issues: list[str], column: str) -> AudioRef | None:
    try:
        data, name = audio_payload(value, base)
    except ValueError as exc:
        issues.append(f"{column}: {exc}")
        return None
    return AudioRef(data=data, name=name)


# ----------------------------------------------------------------------------------------
# the command
# ----------------------------------------------------------------------------------------


def check_suite_name(name: str, folder: Path) -> None:
    """Refuse a malformed name, or one that another suite (elsewhere) already has.

    Raises:
        ValueError: One line.
    """
    if not _NAME.match(name):
        raise ValueError(
            f"suite name {name!r}: use letters, digits, '.', '_', '+', '-' (one '/' for a group, e.g. mine/test)"
        )
    from urgentbench.suites import SUITES

    if name in SUITES.names():
        existing = Path(SUITES.get(name)).parent.resolve()
        if existing != folder.resolve():
            raise ValueError(f"suite {name!r} already exists at {existing}; choose another name")
    card = folder / "card.yaml"
    if card.is_file() and "suite import" not in card.read_text(encoding="utf-8").split("\n", 1)[0]:
        raise ValueError(f"{folder} holds a suite that `suite import` did not write; choose another name")


def import_suite(
    name: str,
    *,
    noisy: str | os.PathLike | None = None,
    ref: str | os.PathLike | None = None,
    text: str | os.PathLike | None = None,
    utt2lang: str | os.PathLike | None = None,
    utt2fs: str | os.PathLike | None = None,
    hf: HFSource | None = None,
    mapping: ColumnMapping | None = None,
    out_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    description: str = "",
    licence: str = "",
    command: str = "",
) -> Path:
    """Import a test set as suite ``name`` and return its folder.

    Exactly one source: ``noisy`` as a ``wav.scp`` file (Kaldi, with the optional tables),
    ``noisy`` as a folder (folder pair with ``ref`` as the clean folder), or ``hf`` with
    ``mapping``.

    Args:
        name: Suite name (``mine`` or ``group/mine``).
        noisy: A Kaldi ``wav.scp`` (the noisy inputs), or the folder of noisy files of a folder pair.
        ref: With a ``wav.scp``: ``spk1.scp`` (the references); with a folder: the clean folder.
        text: Kaldi ``text`` (``<id> <transcript>``; ``<not-available>`` for none).
        utt2lang: ``<id> <language>`` lines.
        utt2fs: ``<id> <rate in Hz>`` lines, checked against the files.
        hf: A Hugging Face dataset (hub id or local copy, config, split, revision).
        mapping: With ``hf``: which columns hold the noisy audio, reference, transcript, language, id.
        out_dir: Folder of suite folders (default: :func:`default_suites_dir`).
        data_dir: Where dataset audio is written (default ``$URGENTBENCH_DATA/imports/<name>``).
        description: For the card (default: a summary of the content).
        licence: For the card.
        command: The command line, recorded in the card's provenance.

    Raises:
        SuiteImportError: Listing every bad line or row (nothing is written).
        HubError: When a dataset cannot be opened.
        ValueError: For a bad name or a bad combination of arguments.
    """
    from urgentbench.data import data_home

    folder = Path(out_dir).expanduser() / name if out_dir is not None else default_suites_dir() / name
    check_suite_name(name, folder)
    commit = None
    if hf is not None:
        if noisy is not None or mapping is None:
            raise ValueError("--hf takes its columns from --noisy-column/--ref-column/--text-column, not --noisy")
        items, problems, commit = read_dataset(hf, mapping)
        kind, origin = "huggingface", {"dataset": hf.path, "config": hf.config, "split": hf.split, "revision": commit}
    elif noisy is not None and Path(noisy).is_dir():
        if text or utt2lang or utt2fs:
            raise ValueError("--text, --utt2lang and --utt2fs go with a wav.scp, not with a folder pair")
        items, problems = read_folder_pair(noisy, ref)
        kind, origin = "folder-pair", {"noisy": str(Path(noisy).resolve()), "clean": str(Path(ref).resolve()) if ref else None}
    elif noisy is not None:
        items, problems = read_kaldi(noisy, ref, text, utt2lang, utt2fs)
        kind = "kaldi"
        origin = {k: str(Path(v).resolve()) for k, v in
                  (("wav.scp", noisy), ("spk1.scp", ref), ("text", text), ("utt2lang", utt2lang), ("utt2fs", utt2fs)) if v}
    else:
        raise ValueError("give --noisy wav.scp, --noisy DIR [--ref DIR], or --hf REPO[:CONFIG:SPLIT]")
    target_data = Path(data_dir) if data_dir is not None else data_home() / "imports" / safe_name(name)
    utterances = materialise(items, problems, what=f"suite import {name}", data_dir=target_data)
    if not utterances:
        raise SuiteImportError(f"suite import {name}", ["no utterances"])
    metrics, categories = default_metrics(utterances)
    counts = summary(utterances)
    card: dict[str, Any] = {
        "name": name,
        "version": f"{IMPORT_VERSION}+{fingerprint(utterances)[:10]}",
        "description": description or _auto_description(kind, counts),
        "metrics": metrics,
        "categories": categories,
        "licence": licence or "not stated (imported data; check its terms before sharing results or audio)",
        "provenance": (
            f"Imported by `{command or 'urgentbench suite import'}` from a {kind} source; every file's sha256 "
            f"is in the manifest (noisy_sha256, clean_sha256) and checked when the audio is read."
        ),
        "source": {"kind": kind, **{k: v for k, v in origin.items() if v is not None}},
        **counts,
    }
    write_suite(folder, card, utterances, f"# Written by `urgentbench suite import {name}`; do not edit by hand.")
    logger.info("suite %s: %d utterances from %s", name, len(utterances), kind)
    return folder


def _auto_description(kind: str, counts: Mapping[str, Any]) -> str:
    rates = ", ".join(f"{r / 1000:g} kHz" for r in counts["sample_rates"])
    what = {"kaldi": "a Kaldi/ESPnet data folder", "folder-pair": "a noisy/clean folder pair",
            "huggingface": "a Hugging Face dataset"}[kind]
    return (
        f"Imported from {what}: {counts['utterances']} recorded noisy inputs ({rates}), "
        f"{counts['with_reference']} with a clean reference, {counts['with_transcript']} with a transcript."
    )
