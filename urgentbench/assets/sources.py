"""Where an asset's files come from: data files inside installed packages, or upstream downloads."""

from __future__ import annotations

import importlib.util
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from urgentbench.assets.pins import AssetError, AssetFile
from urgentbench.hashing import CHUNK, sha256_file

logger = logging.getLogger(__name__)


class Source(Protocol):
    """A way of producing an asset's files (from installed packages, or by downloading them)."""

    #: True for sources that work offline and are used automatically on first use.
    local: bool

    def problem(self, files: Sequence[AssetFile]) -> str | None:
        """Why this source cannot produce ``files`` here, or None when it can (as far as one can tell)."""

    def fix(self) -> str:
        """The exact shell command that makes this source usable (empty when there is none)."""

    def describe(self) -> str:
        """One line saying where the files come from."""

    def build(self, files: Sequence[AssetFile], dest: Path, progress: bool = False) -> None:
        """Write ``files`` into the folder ``dest``."""


@dataclass(frozen=True)
class PackagePart:
    """A data file shipped inside an installed Python package.

    Args:
        module: Importable name of the package that holds the file.
        path: Path of the file relative to the package folder.
    """

    module: str
    path: str

    def locate(self) -> Path | None:
        """Return the file's path, or None when the package or the file is absent (never imports it)."""
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            return None
        if spec is None:
            return None
        folders = list(spec.submodule_search_locations or [])
        if not folders and spec.origin:
            folders = [str(Path(spec.origin).parent)]
        for folder in folders:
            candidate = Path(folder) / self.path
            if candidate.is_file():
                return candidate
        return None


@dataclass(frozen=True)
class PackageSource:
    """Asset files assembled from data files inside installed packages (a local source).

    Args:
        parts: For each asset file name, the package files concatenated (in order) to form it.
        install: The exact command installing the packages (the fix for a missing part).
    """

    parts: Mapping[str, tuple[PackagePart, ...]]
    install: str
    #: Works offline: used automatically on first use.
    local: ClassVar[bool] = True

    def problem(self, files: Sequence[AssetFile]) -> str | None:
        """Report missing packages or part files, or part sizes that cannot add up to the pinned size."""
        for f in files:
            parts = self.parts.get(f.name)
            if not parts:
                return f"no package provides {f.name}"
            total = 0
            for part in parts:
                located = part.locate()
                if located is None:
                    if importlib.util.find_spec(part.module) is None:
                        return f"package '{part.module}' is not installed"
                    return f"package '{part.module}' lacks {part.path}"
                total += located.stat().st_size
            if not f.size_matches(total):
                return f"the package parts of {f.name} hold {total:,} B, expected {f.size:,} B"
        return None

    def fix(self) -> str:
        """The install command for the packages."""
        return self.install

    def describe(self) -> str:
        """Which packages the files come from."""
        modules = sorted({p.module for parts in self.parts.values() for p in parts})
        return "assembled from the installed packages " + ", ".join(modules)

    def build(self, files: Sequence[AssetFile], dest: Path, progress: bool = False) -> None:
        """Concatenate the parts of every file into ``dest`` (``progress`` is ignored: it is a local copy)."""
        for f in files:
            target = dest / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                for part in self.parts[f.name]:
                    located = part.locate()
                    if located is None:
                        raise AssetError(f"package '{part.module}' lacks {part.path}; fix: {self.install}")
                    with open(located, "rb") as src:
                        shutil.copyfileobj(src, out, CHUNK)


@dataclass(frozen=True)
class DownloadSource:
    """Asset files downloaded from their upstream URLs (a remote source, used only by :func:`fetch`).

    Args:
        urls: For each asset file name, the URLs to try in order (mirrors).
    """

    urls: Mapping[str, tuple[str, ...]]
    #: Needs the network: used only by an explicit fetch.
    local: ClassVar[bool] = False

    def problem(self, files: Sequence[AssetFile]) -> str | None:
        """Report a file without any URL (whether the network is reachable is only known by trying)."""
        for f in files:
            if not self.urls.get(f.name):
                return f"no download URL for {f.name}"
        return None

    def fix(self) -> str:
        """No command makes a download source usable; it needs network access only."""
        return ""

    def describe(self) -> str:
        """The hosts the files are downloaded from."""
        hosts = sorted({url.split("/")[2] for urls in self.urls.values() for url in urls if "//" in url})
        return "downloaded from " + ", ".join(hosts)

    def build(self, files: Sequence[AssetFile], dest: Path, progress: bool = False) -> None:
        """Download every file into ``dest``, skipping files already there and verified.

        ``dest`` is a stable staging folder, so that an interrupted download resumes from
        its ``.part`` file on the next call.

        Raises:
            AssetError: When every URL of a file failed; the message lists each failure.
        """
        from urgentbench.data.download import DownloadError, download

        for f in files:
            target = dest / f.name
            if target.is_file() and f.size_matches(target.stat().st_size) and f.matches(sha256_file(target)):
                logger.info("%s: already downloaded", target)
                continue
            failures = []
            for url in self.urls[f.name]:
                try:
                    # A partially pinned file is checked against its prefix by the caller.
                    download(url, target, sha256=f.sha256 or None, size=f.size, progress=progress)
                    break
                except DownloadError as exc:
                    logger.warning("%s", exc)
                    failures.append(str(exc))
            else:
                raise AssetError(f"{f.name} could not be downloaded: " + "; ".join(failures))
