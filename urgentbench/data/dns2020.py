"""The DNS Challenge 2020 (Interspeech 2020) test set and the three suites built on it.

The corpus is the folder ``datasets/test_set/`` of github.com/microsoft/DNS-Challenge,
branch ``interspeech2020/master``: 900 16 kHz mono WAV files::

    datasets/test_set/synthetic/no_reverb/noisy/clnsp{K}_{noise}_snr{S}_tl-{L}_fileid_{N}.wav  (150)
    datasets/test_set/synthetic/no_reverb/clean/clean_fileid_{N}.wav                           (150)
    datasets/test_set/synthetic/with_reverb/noisy/...   same 150 names, different audio        (150)
    datasets/test_set/synthetic/with_reverb/clean/...   reverberant clean speech              (150)
    datasets/test_set/real_recordings/{audioset,ms}_realrec_*.wav                              (300)

The sha256 and size of every file (from the Git-LFS pointers) are pinned in the package
file ``urgentbench/data/checksums/dns2020_test_set.csv``.

``urgentbench data prepare dns2020`` downloads each file from the Git-LFS media server
(``DNS2020.BASE_URL``, overridable with ``$URGENTBENCH_DNS2020_BASE_URL``) into
``data_home()/dns2020``. ``urgentbench data prepare dns2020 --from DIR`` verifies a local
copy instead; ``DIR`` may be a clone of the repository (containing ``datasets/test_set``),
its ``datasets`` folder, or the ``test_set`` folder itself. Manifests refer to the files as
``@dns2020/datasets/test_set/...``, so the recorded root is the folder that contains
``datasets/``; for a ``test_set`` folder that does not sit in a folder named ``datasets``,
a link folder ``<data_home>/links/dns2020/datasets/test_set`` (a symbolic link to it) is
made and recorded as the root, and the files stay where they are.

The suites ``dns2020-no-reverb``, ``dns2020-with-reverb`` and ``dns2020-real`` are built
from the checksum list alone (no audio needed) with::

    python -m urgentbench.data.dns2020 --build-suites
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from tqdm import tqdm

from urgentbench.data import data_home, record_corpus
from urgentbench.data.base import Corpus, CorpusError
from urgentbench.data.corpora import FileEntry, read_checksums, verify_files
from urgentbench.data.download import DownloadError, download
from urgentbench.manifest import Utterance, write_manifest

__all__ = [
    "DNS2020",
    "TEST_SET",
    "build_suites",
    "parse_real_name",
    "parse_synthetic_name",
    "pinned_checksums",
    "suite_utterances",
]

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


def _fingerprint(entries: Sequence[FileEntry]) -> str:
    h = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e.path):
        h.update(f"{e.path}\t{e.sha256}\t{e.size}\n".encode())
    return h.hexdigest()


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
# the corpus
# ----------------------------------------------------------------------------------------


def locate_test_set(source: Path) -> Path | None:
    """The ``test_set`` folder: ``source/datasets/test_set``, ``source/test_set`` or ``source`` itself."""
    for candidate in (source / "datasets" / "test_set", source / "test_set", source):
        if (candidate / "synthetic").is_dir() or (candidate / "real_recordings").is_dir():
            return candidate
    return None


class DNS2020(Corpus):
    """The DNS Challenge 2020 (Interspeech 2020) test set (900 files, about 276 MB).

    Args:
        checksums: The files to verify: a checksum CSV path or a list of entries. Default:
            the pinned list of all 900 files (tests pass stand-in lists).
        base_url: Download base URL; the file's path in the repository is appended. Default:
            ``$URGENTBENCH_DNS2020_BASE_URL``, else :attr:`BASE_URL`.
    """

    name: ClassVar[str] = "dns2020"
    description: ClassVar[str] = (
        "DNS Challenge 2020 (Interspeech 2020) test set: 150 synthetic noisy/clean pairs without and 150 "
        "with reverberation, and 300 real noisy recordings; 16 kHz mono, about 276 MB"
    )
    licence: ClassVar[str] = LICENCE
    citation: ClassVar[str] = CITATION
    homepage: ClassVar[str] = HOMEPAGE
    #: Git-LFS media URL of branch interspeech2020/master; ``<path>`` in the repository is appended.
    BASE_URL: ClassVar[str] = (
        "https://media.githubusercontent.com/media/microsoft/DNS-Challenge/interspeech2020/master/"
    )
    BASE_URL_ENV: ClassVar[str] = "URGENTBENCH_DNS2020_BASE_URL"
    #: Checksum CSV used when the constructor gets none (None: the pinned package file).
    checksums_file: ClassVar[str | os.PathLike | None] = None
    #: Parallel downloads.
    download_jobs: ClassVar[int] = 4

    def __init__(
        self,
        checksums: str | os.PathLike | Sequence[FileEntry] | None = None,
        base_url: str | None = None,
    ):
        if checksums is None:
            checksums = self.checksums_file
        if checksums is None:
            self.entries = pinned_checksums()
        elif isinstance(checksums, (str, os.PathLike)):
            self.entries = read_checksums(checksums)
        else:
            self.entries = [FileEntry.coerce(e) for e in checksums]
        self.base_url = base_url or os.environ.get(self.BASE_URL_ENV) or self.BASE_URL

    def url(self, path: str) -> str:
        """Download URL of a file given by its path in the repository."""
        return self.base_url.rstrip("/") + "/" + urllib.parse.quote(path)

    def prepare(self, source: Path | None = None, *, dest: Path | None = None, progress: bool = True) -> Path:
        """Verify a local copy (``source``) or download the test set, then record the root.

        Args:
            source: A clone of the repository, its ``datasets`` folder or the ``test_set``
                folder; None downloads every file.
            dest: Download folder (default ``data_home()/dns2020``). With a ``source`` whose
                ``test_set`` folder is not inside a folder named ``datasets``: where the link
                folder is made (default ``data_home()/links/dns2020``).
            progress: Show progress bars.

        Returns:
            The recorded root (``@dns2020/...`` paths resolve against it).

        Raises:
            CorpusError: Listing every missing, corrupt, wrong-rate or unreadable file (or
                every failed download).
        """
        if source is not None:
            root = self._root_from_source(Path(source).expanduser(), dest)
            origin = {"source": str(Path(source).expanduser().resolve())}
        else:
            root = Path(dest).expanduser() if dest is not None else data_home() / self.name
            self._download_all(root, progress)
            origin = {"source": self.base_url}
        problems = verify_files(
            root, self.entries, check_audio=True, sample_rate=SAMPLE_RATE, channels=1, progress=progress
        )
        if problems:
            raise CorpusError(self.name, problems)
        record_corpus(
            self.name, root, files=len(self.entries), checksums=_fingerprint(self.entries), **origin
        )
        logger.info("%s: %d files verified under %s", self.name, len(self.entries), root)
        return Path(root).resolve()

    def _root_from_source(self, source: Path, dest: Path | None) -> Path:
        if not source.is_dir():
            raise CorpusError(self.name, [f"{source}: no such folder"])
        test_set = locate_test_set(source)
        if test_set is None:
            raise CorpusError(
                self.name,
                [
                    f"{source}: no DNS-2020 test set found; expected {source}/{TEST_SET}/ (a clone of "
                    f"microsoft/DNS-Challenge, branch interspeech2020/master, with its LFS files) or the "
                    f"test_set folder itself (holding synthetic/ and real_recordings/)"
                ],
            )
        test_set = test_set.resolve()
        if test_set.parent.name == "datasets":
            return test_set.parent.parent
        return self._link_root(test_set, dest)

    def _link_root(self, test_set: Path, dest: Path | None) -> Path:
        """Make ``<root>/datasets/test_set`` a symbolic link to ``test_set`` and return ``root``."""
        root = Path(dest).expanduser() if dest is not None else data_home() / "links" / self.name
        link = root / TEST_SET
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            raise CorpusError(
                self.name,
                [f"{link}: exists and is not a link; pass another --dest for the link folder"],
            )
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(test_set, target_is_directory=True)
        except OSError as exc:
            raise CorpusError(
                self.name,
                [
                    f"cannot link {link} to {test_set} ({exc}); move the test_set folder into a folder "
                    f"named datasets and pass that folder's parent"
                ],
            ) from exc
        logger.info("linked %s -> %s", link, test_set)
        return root

    def _download_all(self, root: Path, progress: bool) -> None:
        """Download every listed file that is missing or wrong under ``root``.

        Raises:
            CorpusError: Listing every file whose download failed.
        """
        root.mkdir(parents=True, exist_ok=True)

        def fetch(entry: FileEntry) -> str | None:
            target = root / entry.path
            if target.is_file() and not verify_files(root, [entry], check_audio=False):
                return None  # present and verified
            download(self.url(entry.path), target, sha256=entry.sha256, size=entry.size, progress=False)
            return entry.path

        failures = []
        fetched = 0
        with ThreadPoolExecutor(max_workers=max(1, self.download_jobs)) as pool, tqdm(
            total=len(self.entries), desc=f"{self.name}", unit="file", disable=not progress
        ) as bar:
            futures = {pool.submit(fetch, e): e for e in self.entries}
            for future in as_completed(futures):
                try:
                    fetched += future.result() is not None
                except DownloadError as exc:
                    failures.append(f"{futures[future].path}: {exc}")
                bar.update(1)
        logger.info("%s: downloaded %d files, %d already present", self.name, fetched,
                    len(self.entries) - fetched - len(failures))
        if failures:
            raise CorpusError(self.name, sorted(failures))


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


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``--build-suites`` regenerates the three suites from the checksum list."""
    parser = argparse.ArgumentParser(
        prog="python -m urgentbench.data.dns2020", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--build-suites", action="store_true", help="write the dns2020-* manifests and cards")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder of the suite folders (default data_manifests)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if not args.build_suites:
        parser.print_help()
        return 2
    build_suites(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
