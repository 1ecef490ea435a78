"""DEMAND: recorded full-band (48 kHz) environmental noise, CC BY-SA 3.0.

DEMAND (Diverse Environments Multichannel Acoustic Noise Database; Thiemann, Ito, Vincent,
2013) holds 16-channel, 5-minute, 48 kHz recordings of real noise in 18 environments,
published on Zenodo (record 1227121) as one ``<ENV>_48k.zip`` per environment with the
files ``<ENV>/ch01.wav`` ... ``<ENV>/ch16.wav``. It is licensed **CC BY-SA 3.0**:
derived test sets may be redistributed, with attribution, under the same licence. That,
the full band (48 kHz) and its use in VoiceBank-DEMAND and URGENT-style pipelines are why
urgentbench uses it.

Pins: Zenodo publishes each archive's size and md5. The six environments in
:data:`ENVIRONMENTS` are those whose size and md5 were available to this project
(DKITCHEN, DWASHING, OHALLWAY, OOFFICE, TCAR, TMETRO: domestic, office and transport
noise); the others are left out until theirs are recorded. ``urgentbench data prepare
demand`` downloads the six archives (resumable), checks size and md5, extracts only
channel 1 (``<ENV>/ch01.wav``, mono 48 kHz, kept at 48 kHz) and records the sha256 and
size of every extracted file (``FILES.csv``) and archive (``SOURCES.csv``); later loads
check every file against that record. ``--from DIR`` takes a folder with the zips, or an
extracted copy (``DIR/<ENV>/ch01.wav``; then only format and completeness can be checked,
which is said in the log and the corpus record).

Generated noises (``noise`` degradation: white, pink, brown, hum, modulated) are used
alongside DEMAND in the suites, so no suite depends on one noise source.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import ClassVar

from tqdm import tqdm

from urgentbench.data import corpus_root, data_home, record_corpus
from urgentbench.data.base import Corpus, CorpusError
from urgentbench.data.corpora import FileEntry
from urgentbench.data.download import DownloadError, download
from urgentbench.data.produced import (
    archive_problems,
    atomic_write_bytes,
    entry_for,
    file_digests,
    open_zip,
    verify_produced,
    write_records,
)

__all__ = ["DEMAND", "ENVIRONMENTS", "noise_files"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48000
#: Environment -> (archive size in bytes, Zenodo md5 of ``<ENV>_48k.zip``).
ENVIRONMENTS: dict[str, tuple[int, str]] = {
    "DKITCHEN": (336_992_458, "b4d38241fbd50d8a17f8742ca6870c10"),
    "DWASHING": (306_101_499, "ecf765f12b8d3ada7ef0ec664b8f8d73"),
    "OHALLWAY": (252_905_617, "cb9227a75d2c1342de0b6548da4bbb1b"),
    "OOFFICE": (277_643_831, "6f87edf8a6b03f17b3f693af1754aab4"),
    "TCAR": (373_520_251, "8550f03e8356d8054ae845e8b4b6c773"),
    "TMETRO": (367_513_573, "00d895020233f94348aafce7140d671f"),
}
#: Channel used (one microphone of the array).
CHANNEL = "ch01.wav"
#: Every DEMAND recording is 300 s long; suites sample offsets within this.
DURATION_S = 300.0
LICENCE = "CC BY-SA 3.0 (DEMAND, Thiemann, Ito, Vincent 2013; Zenodo record 1227121)"
CITATION = (
    'J. Thiemann, N. Ito, E. Vincent, "The Diverse Environments Multi-channel Acoustic Noise Database '
    '(DEMAND): A database of multichannel environmental noise recordings", Proc. Meetings on Acoustics '
    "19, 035081 (2013); data: https://doi.org/10.5281/zenodo.1227121."
)
HOMEPAGE = "https://zenodo.org/records/1227121"


def noise_path(environment: str) -> str:
    """Path of an environment's channel-1 recording relative to the corpus root."""
    return f"{environment}/{CHANNEL}"


class DEMAND(Corpus):
    """DEMAND 48 kHz noise, channel 1 of six environments.

    Args:
        base_url: Download base; ``<ENV>_48k.zip`` is appended (default :attr:`BASE_URL`, or
            ``$URGENTBENCH_DEMAND_BASE_URL``).
        environments: Environment -> (size, md5) pins (tests pass stand-ins').
    """

    name: ClassVar[str] = "demand"
    description: ClassVar[str] = (
        "DEMAND recorded environmental noise, 48 kHz, channel 1 of 6 environments (kitchen, washing, "
        "hallway, office, car, metro), 5 min each; downloads about 1.9 GB of zips"
    )
    licence: ClassVar[str] = LICENCE
    citation: ClassVar[str] = CITATION
    homepage: ClassVar[str] = HOMEPAGE
    BASE_URL: ClassVar[str] = "https://zenodo.org/records/1227121/files/"
    BASE_URL_ENV: ClassVar[str] = "URGENTBENCH_DEMAND_BASE_URL"

    def __init__(self, base_url: str | None = None, environments: dict[str, tuple[int, str]] | None = None):
        self.base_url = base_url or os.environ.get(self.BASE_URL_ENV) or self.BASE_URL
        self.environments = dict(environments if environments is not None else ENVIRONMENTS)

    def url(self, environment: str) -> str:
        """Download URL of one environment's archive."""
        return self.base_url.rstrip("/") + f"/{environment}_48k.zip"

    def prepare(self, source: Path | None = None, *, dest: Path | None = None, progress: bool = True) -> Path:
        """Download (or take ``source``), verify the archives, extract channel 1, record checksums.

        Args:
            source: A folder holding ``<ENV>_48k.zip`` files, or an extracted copy
                (``<ENV>/ch01.wav``); None downloads.
            dest: Corpus root (default ``data_home()/demand``).
            progress: Show progress bars.

        Returns:
            The recorded root.

        Raises:
            CorpusError: Listing every missing or mismatching archive, every missing,
                unreadable, non-48 kHz or multichannel recording.
        """
        import soundfile as sf

        root = (Path(dest).expanduser() if dest is not None else data_home() / self.name).resolve()
        source = Path(source).expanduser() if source is not None else None
        if source is not None and not source.is_dir():
            raise CorpusError(self.name, [f"{source}: no such folder"])
        problems: list[str] = []
        produced: list[FileEntry] = []
        sources: list[FileEntry] = []
        verified = True
        for env, (size, md5) in tqdm(
            sorted(self.environments.items()), desc="demand", unit="env", disable=not progress
        ):
            rel = noise_path(env)
            zipped = source / f"{env}_48k.zip" if source is not None else None
            if zipped is None or zipped.is_file():
                archive = zipped if zipped is not None else root / "download" / f"{env}_48k.zip"
                if zipped is None and archive_problems(archive, size=size, md5=md5):
                    try:
                        download(self.url(env), archive, size=size, progress=progress)
                    except DownloadError as exc:
                        problems.append(str(exc))
                        continue
                bad = archive_problems(archive, size=size, md5=md5)
                if bad:
                    problems.extend(bad)
                    if zipped is None:  # a corrupt download: fetch it again next time
                        archive.unlink(missing_ok=True)
                    continue
                try:
                    with open_zip(archive, self.name) as zf:
                        data = zf.read(f"{env}/{CHANNEL}")  # checks the member's CRC-32
                except KeyError:
                    problems.append(f"{archive}: has no member {env}/{CHANNEL}")
                    continue
                except CorpusError as exc:
                    problems.extend(exc.problems)
                    continue
                sources.append(FileEntry(archive.name, file_digests(archive, ["sha256"])["sha256"], size))
                atomic_write_bytes(root / rel, data)
            else:
                if not (source / rel).is_file():
                    problems.append(
                        f"{env}: neither {env}_48k.zip (expected md5 {md5}, {size} bytes) nor {env}/{CHANNEL} "
                        f"found in {source}"
                    )
                    continue
                verified = False
                data = (source / rel).read_bytes()
                sources.append(FileEntry(rel, hashlib.sha256(data).hexdigest(), len(data)))
                if (source / rel).resolve() != (root / rel).resolve():
                    atomic_write_bytes(root / rel, data)
            try:
                info = sf.info(str(root / rel))
            except Exception as exc:  # libsndfile errors come in several types
                problems.append(f"{rel}: not readable as audio ({exc})")
                continue
            issues = []
            if info.samplerate != SAMPLE_RATE:
                issues.append(f"sample rate {info.samplerate} Hz, expected {SAMPLE_RATE} Hz")
            if info.channels != 1:
                issues.append(f"{info.channels} channels, expected 1")
            if info.frames < SAMPLE_RATE:
                issues.append(f"only {info.frames} samples")
            if issues:
                problems.append(f"{rel}: {'; '.join(issues)}")
                continue
            produced.append(entry_for(root, rel))
        if problems:
            raise CorpusError(self.name, problems)
        write_records(root, produced, sources)
        info_record = {
            "source": str(source) if source is not None else self.base_url,
            "archive_verified": verified,
            "files": len(produced),
            "environments": sorted(self.environments),
        }
        if not verified:
            note = (
                "extracted recordings were used: they were checked to be readable, mono and 48 kHz, but not "
                "against the archives' pins (no per-file checksums are published)"
            )
            info_record["unverified"] = note
            logger.warning("%s: %s", self.name, note)
        record_corpus(self.name, root, **info_record)
        logger.info("%s: %d recordings under %s", self.name, len(produced), root)
        return root


def noise_files(root: str | os.PathLike | None = None) -> dict[str, str]:
    """Environment -> prepared recording (relative path), after checking every recorded file.

    Raises:
        CorpusNotPreparedError: When ``urgentbench data prepare demand`` has not been run.
        CorpusError: Naming every missing or changed file and its expected sha256.
    """
    root = Path(root) if root is not None else corpus_root(DEMAND.name)
    entries = verify_produced(DEMAND.name, root, sample_rate=SAMPLE_RATE)
    out = {}
    for e in entries:
        env, _, name = e.path.partition("/")
        if name == CHANNEL:
            out[env] = e.path
    return dict(sorted(out.items()))
