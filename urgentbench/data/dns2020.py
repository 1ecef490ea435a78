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
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import ClassVar

from tqdm import tqdm

from urgentbench.data import data_home, record_corpus
from urgentbench.data.base import Corpus, CorpusError
from urgentbench.data.corpora import FileEntry, read_checksums, verify_files
from urgentbench.data.dns2020_suites import (
    CATEGORIES_SYNTHETIC,
    CHECKSUMS_RESOURCE,
    CITATION,
    CONDITIONS,
    HOMEPAGE,
    LICENCE,
    METRICS_SYNTHETIC,
    PROVENANCE_SOURCE,
    SAMPLE_RATE,
    SUITE_VERSION,
    SUITES,
    TAG_NOTES_REAL,
    TAG_NOTES_SYNTHETIC,
    TEST_SET,
    build_suites,
    card_dict,
    parse_real_name,
    parse_synthetic_name,
    pinned_checksums,
    snr_bin,
    suite_utterances,
)
from urgentbench.data.download import DownloadError, download

__all__ = [
    "CATEGORIES_SYNTHETIC", "CHECKSUMS_RESOURCE", "CITATION", "CONDITIONS", "DNS2020", "HOMEPAGE", "LICENCE",
    "METRICS_SYNTHETIC", "PROVENANCE_SOURCE", "SAMPLE_RATE", "SUITES", "SUITE_VERSION", "TAG_NOTES_REAL",
    "TAG_NOTES_SYNTHETIC", "TEST_SET", "build_suites", "card_dict", "locate_test_set", "main", "parse_real_name",
    "parse_synthetic_name", "pinned_checksums", "snr_bin", "suite_utterances",
]

logger = logging.getLogger(__name__)


def _fingerprint(entries: Sequence[FileEntry]) -> str:
    h = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e.path):
        h.update(f"{e.path}\t{e.sha256}\t{e.size}\n".encode())
    return h.hexdigest()


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
