"""VCTK 0.92: the 8 test speakers of VoiceFixer / NVSR / MaskSR, mic1, resampled to 44.1 kHz.

Source: the University of Edinburgh DataShare archive ``VCTK-Corpus-0.92.zip``
(CC BY 4.0; sha256 and size pinned in :class:`VCTK`). ``urgentbench data prepare vctk``

* downloads the archive (resumable, with a progress bar) into ``<root>/download/``, or
  takes a local copy with ``--from`` (the zip itself, a folder holding it, or an
  already-extracted copy);
* verifies the archive against its pin;
* reads only the ``mic1`` FLACs of speakers p360 p361 p362 p363 p364 p374 p376 s5
  (``wav48_silence_trimmed/<spk>/<spk>_<nnn>_mic1.flac``, 48 kHz) and their
  transcripts (``txt/<spk>/<spk>_<nnn>.txt``);
* resamples each FLAC once to 44.1 kHz with soxr (HQ), rounds it to the 16-bit grid and
  writes ``<root>/wav44/<spk>/<spk>_<nnn>_mic1.flac``; copies the transcripts to
  ``<root>/txt/<spk>/<spk>_<nnn>.txt``;
* records the sha256 and size of every file it produced (``FILES.csv``) and of every
  source file it read (``SOURCES.csv``), so later loads (:func:`load_utterances`, suite
  builds) check every file and name the file and its expected checksum on a mismatch.

An already-extracted copy (no archive) can only be checked for completeness and format
(every test speaker present, readable mono 48 kHz FLACs): whether its files are those of
the official archive cannot be verified, because the archive's members are not
published with checksums. Such a preparation is recorded as ``archive_verified: false``
and suites built from it get a ``+local.<fingerprint>`` version suffix.

Facts used (../shared/research/masksr-and-data.md §4.3): the MaskSR2 demo targets are
VCTK 0.92 mic1 resampled to 44.1 kHz; the test speakers are the 8 above. The ``silence
trimmed`` FLACs are used as they are (no further trimming).
"""

from __future__ import annotations

import io
import logging
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from tqdm import tqdm

from urgentbench.data import data_home, prepared_corpora, record_corpus
from urgentbench.data.base import Corpus, CorpusError
from urgentbench.data.corpora import FileEntry
from urgentbench.data.download import DownloadError, download
from urgentbench.data.produced import (
    archive_problems,
    atomic_write_bytes,
    entry_for,
    open_zip,
    verify_produced,
    write_records,
)

__all__ = ["SPEAKERS", "VCTK", "VCTKItem", "load_utterances"]

logger = logging.getLogger(__name__)

#: The 8 VCTK test speakers of NU-Wave2 / NVSR / VoiceFixer / MaskSR / MaskSR2.
SPEAKERS = ("p360", "p361", "p362", "p363", "p364", "p374", "p376", "s5")
SOURCE_RATE = 48000
SAMPLE_RATE = 44100
AUDIO_DIR = "wav44"
TEXT_DIR = "txt"
LICENCE = "CC BY 4.0 (CSTR VCTK Corpus 0.92, University of Edinburgh)"
CITATION = (
    'J. Yamagishi, C. Veaux, K. MacDonald, "CSTR VCTK Corpus: English Multi-speaker Corpus for CSTR '
    'Voice Cloning Toolkit (version 0.92)", University of Edinburgh, CSTR, 2019, '
    "https://doi.org/10.7488/ds/2645."
)
HOMEPAGE = "https://datashare.ed.ac.uk/handle/10283/3443"

_SPK = "|".join(SPEAKERS)
_AUDIO = re.compile(rf"(?:^|/)wav48_silence_trimmed/(?P<spk>{_SPK})/(?P=spk)_(?P<num>\d+)_mic1\.flac$")
_TEXT = re.compile(rf"(?:^|/)txt/(?P<spk>{_SPK})/(?P=spk)_(?P<num>\d+)\.txt$")


@dataclass(frozen=True)
class VCTKItem:
    """One prepared utterance.

    Args:
        speaker: Speaker id (``p360``).
        utterance: Utterance number as in the file name (``001``).
        audio: Path of the 44.1 kHz FLAC relative to the corpus root.
        text: Transcript, or None when VCTK has none for it.
    """

    speaker: str
    utterance: str
    audio: str
    text: str | None

    @property
    def id(self) -> str:
        """``<speaker>_<utterance>`` (``p360_001``)."""
        return f"{self.speaker}_{self.utterance}"


def audio_path(speaker: str, number: str) -> str:
    """Path of a prepared FLAC relative to the corpus root."""
    return f"{AUDIO_DIR}/{speaker}/{speaker}_{number}_mic1.flac"


def text_path(speaker: str, number: str) -> str:
    """Path of a prepared transcript relative to the corpus root."""
    return f"{TEXT_DIR}/{speaker}/{speaker}_{number}.txt"


def _decode_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return " ".join(text.split())


class _Source:
    """What ``prepare`` reads: a zip archive or an extracted folder (internal)."""

    def __init__(self, archive: Path | None = None, folder: Path | None = None):
        self.archive = archive
        self.folder = folder
        self._zip: zipfile.ZipFile | None = None

    def open(self, corpus: str) -> None:
        if self.archive is not None:
            self._zip = open_zip(self.archive, corpus)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def names(self) -> list[str]:
        if self._zip is not None:
            return [n for n in self._zip.namelist() if not n.endswith("/")]
        assert self.folder is not None
        return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)  # checks the member's CRC-32
        assert self.folder is not None
        return (self.folder / name).read_bytes()

    def describe(self) -> str:
        return str(self.archive if self.archive is not None else self.folder)


class VCTK(Corpus):
    """VCTK 0.92, the 8 test speakers, mic1, resampled once to 44.1 kHz.

    Args:
        url: Download URL (default :attr:`URL`, or ``$URGENTBENCH_VCTK_URL``).
        archive_sha256: Pinned sha256 of the archive (tests pass a stand-in's).
        archive_size: Pinned size in bytes.
    """

    name: ClassVar[str] = "vctk"
    description: ClassVar[str] = (
        "CSTR VCTK Corpus 0.92, the 8 test speakers of VoiceFixer/NVSR/MaskSR (p360 p361 p362 p363 p364 "
        "p374 p376 s5), mic1, resampled once to 44.1 kHz with soxr HQ, with transcripts; downloads the "
        "11.7 GB archive"
    )
    licence: ClassVar[str] = LICENCE
    citation: ClassVar[str] = CITATION
    homepage: ClassVar[str] = HOMEPAGE
    URL: ClassVar[str] = "https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip"
    URL_ENV: ClassVar[str] = "URGENTBENCH_VCTK_URL"
    ARCHIVE_NAME: ClassVar[str] = "VCTK-Corpus-0.92.zip"
    ARCHIVE_SHA256: ClassVar[str] = "f96258be9fdc2cbff6559541aae7ea4f59df3fcaf5cf963aae5ca647357e359c"
    ARCHIVE_SIZE: ClassVar[int] = 11_747_302_977

    def __init__(
        self, url: str | None = None, archive_sha256: str | None = None, archive_size: int | None = None
    ):
        self.url = url or os.environ.get(self.URL_ENV) or self.URL
        self.archive_sha256 = (archive_sha256 or self.ARCHIVE_SHA256).lower()
        self.archive_size = archive_size if archive_size is not None else self.ARCHIVE_SIZE

    # -- locating the source --------------------------------------------------------
    def _source(self, source: Path | None, root: Path, progress: bool) -> tuple[_Source, bool]:
        """The source to read and whether it is the pinned archive (verified)."""
        if source is None:
            archive = root / "download" / self.ARCHIVE_NAME
            if archive_problems(archive, size=self.archive_size, sha256=self.archive_sha256):
                try:
                    download(
                        self.url,
                        archive,
                        sha256=self.archive_sha256,
                        size=self.archive_size,
                        progress=progress,
                    )
                except DownloadError as exc:
                    raise CorpusError(self.name, [str(exc)]) from exc
            return _Source(archive=archive), True
        if source.is_file():
            return self._verified_archive(source), True
        if not source.is_dir():
            raise CorpusError(self.name, [f"{source}: no such file or folder"])
        if (source / self.ARCHIVE_NAME).is_file():
            return self._verified_archive(source / self.ARCHIVE_NAME), True
        folder = self._extracted_root(source)
        if folder is None:
            raise CorpusError(
                self.name,
                [
                    (f"{source}: neither {self.ARCHIVE_NAME} nor an extracted VCTK 0.92 copy (a folder holding "
                    f"wav48_silence_trimmed/ and txt/) was found")
                ],
            )
        return _Source(folder=folder), False

    def _verified_archive(self, archive: Path) -> _Source:
        problems = archive_problems(archive, size=self.archive_size, sha256=self.archive_sha256)
        if problems:
            raise CorpusError(
                self.name, problems + [f"expected the official {self.ARCHIVE_NAME} ({self.url})"]
            )
        return _Source(archive=archive)

    @staticmethod
    def _extracted_root(source: Path) -> Path | None:
        for candidate in (
            source,
            source / "VCTK-Corpus-0.92",
            *sorted(p for p in source.iterdir() if p.is_dir()),
        ):
            if (candidate / "wav48_silence_trimmed").is_dir():
                return candidate
        return None

    # -- prepare --------------------------------------------------------------------
    def prepare(self, source: Path | None = None, *, dest: Path | None = None, progress: bool = True) -> Path:
        """Download or take a local copy, verify it, extract and resample the test speakers.

        Args:
            source: The archive, a folder holding it, or an extracted copy; None downloads.
            dest: Corpus root, where the 44.1 kHz files (and a download) go (default
                ``data_home()/vctk``).
            progress: Show progress bars.

        Returns:
            The recorded root.

        Raises:
            CorpusError: Listing every problem: an archive that does not match its pin, a
                test speaker without mic1 files, an unreadable FLAC, a wrong sample rate or
                channel count.
        """
        root = (Path(dest).expanduser() if dest is not None else data_home() / self.name).resolve()
        src, verified = self._source(
            Path(source).expanduser() if source is not None else None, root, progress
        )
        src.open(self.name)
        try:
            produced, sources, missing_text = self._extract(src, root, progress)
        finally:
            src.close()
        write_records(root, produced, sources)
        info = {
            "source": src.describe() if source is not None else self.url,
            "archive_verified": verified,
            "files": len(produced),
            "utterances": sum(1 for e in produced if e.path.endswith(".flac")),
            "missing_transcripts": missing_text,
            "sample_rate": SAMPLE_RATE,
        }
        if not verified:
            note = (
                "an extracted copy was used: every test speaker's mic1 FLAC was checked to be readable, mono "
                "and 48 kHz, but whether the files are those of the official archive could NOT be verified "
                "(no per-file checksums are published); suites built from it get a +local version suffix"
            )
            info["unverified"] = note
            logger.warning("%s: %s", self.name, note)
        record_corpus(self.name, root, **info)
        logger.info(
            "%s: %d utterances of %d speakers at %d Hz under %s (%d without transcript)",
            self.name,
            info["utterances"],
            len(SPEAKERS),
            SAMPLE_RATE,
            root,
            missing_text,
        )
        return root

    def _members(self, src: _Source) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
        audio: dict[tuple[str, str], str] = {}
        text: dict[tuple[str, str], str] = {}
        for name in src.names():
            m = _AUDIO.search(name)
            if m:
                audio[(m["spk"], m["num"])] = name
                continue
            m = _TEXT.search(name)
            if m:
                text[(m["spk"], m["num"])] = name
        return audio, text

    def _extract(
        self, src: _Source, root: Path, progress: bool
    ) -> tuple[list[FileEntry], list[FileEntry], int]:
        import hashlib

        import soundfile as sf

        from urgentbench.audio import resample, to_pcm16_grid, write_flac

        audio, text = self._members(src)
        problems = [
            f"{src.describe()}: no wav48_silence_trimmed/{spk}/{spk}_NNN_mic1.flac files for test speaker {spk}"
            for spk in SPEAKERS
            if not any(key[0] == spk for key in audio)
        ]
        produced: list[FileEntry] = []
        sources: list[FileEntry] = []
        missing_text = 0
        for key in tqdm(
            sorted(audio), desc="vctk: resampling to 44.1 kHz", unit="file", disable=not progress
        ):
            member = audio[key]
            data = src.read(member)
            sources.append(FileEntry(member, hashlib.sha256(data).hexdigest(), len(data)))
            try:
                x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
            except Exception as exc:  # libsndfile errors come in several types
                problems.append(
                    f"{member}: not readable as audio ({str(exc).splitlines()[0] if str(exc) else exc})"
                )
                continue
            issues = []
            if sr != SOURCE_RATE:
                issues.append(f"sample rate {sr} Hz, expected {SOURCE_RATE} Hz")
            if x.shape[1] != 1:
                issues.append(f"{x.shape[1]} channels, expected 1")
            if x.shape[0] == 0:
                issues.append("audio has no samples")
            if issues:
                problems.append(f"{member}: {'; '.join(issues)}")
                continue
            y, clipped = to_pcm16_grid(resample(x[:, 0], SOURCE_RATE, SAMPLE_RATE))
            if clipped:
                logger.warning("%s: %d samples clipped when rounding to 16 bit", member, clipped)
            rel = audio_path(*key)
            write_flac(root / rel, y, SAMPLE_RATE)
            produced.append(entry_for(root, rel))
            if key in text:
                raw = src.read(text[key])
                sources.append(FileEntry(text[key], hashlib.sha256(raw).hexdigest(), len(raw)))
                rel_text = text_path(*key)
                atomic_write_bytes(root / rel_text, (_decode_text(raw) + "\n").encode("utf-8"))
                produced.append(entry_for(root, rel_text))
            else:
                missing_text += 1
        if problems:
            raise CorpusError(self.name, problems)
        return produced, sources, missing_text


def prepared_root() -> Path:
    """Root of the prepared VCTK corpus.

    Raises:
        CorpusNotPreparedError: When ``urgentbench data prepare vctk`` has not been run.
    """
    from urgentbench.data import corpus_root

    return corpus_root(VCTK.name)


def archive_verified() -> bool:
    """True when the prepared copy came from the pinned archive (False for an extracted copy)."""
    return bool(prepared_corpora().get(VCTK.name, {}).get("archive_verified", False))


def load_utterances(root: str | os.PathLike | None = None, *, check_audio: bool = False) -> list[VCTKItem]:
    """The prepared utterances, after checking every recorded file's sha256 and size.

    Args:
        root: Corpus root (default: the prepared one).
        check_audio: Also open every FLAC (rate 44.1 kHz, mono).

    Returns:
        Items sorted by speaker and utterance number.

    Raises:
        CorpusNotPreparedError: When the corpus is not prepared.
        CorpusError: Naming every missing or changed file and its expected sha256.
    """
    root = Path(root) if root is not None else prepared_root()
    entries = verify_produced(VCTK.name, root, sample_rate=SAMPLE_RATE, check_audio=check_audio)
    paths = {e.path for e in entries}
    items = []
    for path in sorted(paths):
        m = re.fullmatch(rf"{AUDIO_DIR}/(?P<spk>{_SPK})/(?P=spk)_(?P<num>\d+)_mic1\.flac", path)
        if m is None:
            continue
        rel_text = text_path(m["spk"], m["num"])
        text = (root / rel_text).read_text(encoding="utf-8").strip() if rel_text in paths else None
        items.append(VCTKItem(speaker=m["spk"], utterance=m["num"], audio=path, text=text))
    return items


def iter_speakers(items: list[VCTKItem]) -> Iterator[tuple[str, list[VCTKItem]]]:
    """``(speaker, items)`` in :data:`SPEAKERS` order."""
    for spk in SPEAKERS:
        yield spk, [it for it in items if it.speaker == spk]
