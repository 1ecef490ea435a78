"""Upstream Python code pinned as an asset and imported from it at run time.

Some upstream packages whose network code urgentbench runs cannot be installed beside it
by pip: their metadata pins versions that exclude ours (``nisqa`` 2.0.post2 pins
``torch==2.2.1`` and ``numpy==1.26.4``), or asks for packages that need a compiler or a
system library that the code urgentbench uses never touches (``resemblyzer`` 0.1.4 asks for
the source-only ``webrtcvad``; ``denoiser`` 0.1.5 for ``torchaudio``, ``sounddevice`` and
``hydra-core<1``). For those, the package's own release file (its wheel or source archive,
as published on the package index) is an asset like a checkpoint: pinned by size and
sha256, fetched only by ``urgentbench assets fetch NAME`` (or installed from a local copy
with ``urgentbench assets add NAME --from FILE``), and verified before use. The modules
are imported from that file, so the code that runs is the upstream release byte for byte,
and the dependencies it really imports are ordinary dependencies of urgentbench's extras.

:class:`PackageCode` names such a package: the asset, the file in it, and where the
package folder lies inside the archive. :meth:`PackageCode.load` extracts that folder once
(next to the asset folder, keyed by the archive's sha256) and imports the package under its
own name from there, whatever else is installed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType

from urgentbench.assets.pins import AssetError

logger = logging.getLogger(__name__)

_LOCK = threading.Lock()
#: Attribute set on a package imported from a release file: that file's pinned sha256.
_MARK = "__urgentbench_release__"


@dataclass(frozen=True)
class PackageCode:
    """An upstream package imported from its pinned release file (an asset).

    Args:
        asset: Name of the asset holding the release file.
        archive: File name of the wheel (``.whl``) or source archive (``.tar.gz``) in the asset.
        package: The top-level import name (``"nisqa"``).
        prefix: Folder of the package inside the archive (``"nisqa"`` in a wheel,
            ``"denoiser-0.1.5/denoiser"`` in a source archive).
        also: Other top-level packages of the same archive, beside ``prefix``, that the
            package imports (``espnet2`` needs ``espnet``): extracted into the same folder,
            each importable through its own :class:`PackageCode` with the same asset.
    """

    asset: str
    archive: str
    package: str
    prefix: str
    also: tuple[str, ...] = ()

    # The attributes a requirement has (urgentbench.requirements.PackageRequirement), so that
    # plug-ins list the code beside their packages and `urgentbench doctor` reports it.
    @property
    def module(self) -> str:
        """The import name (as a package requirement names it)."""
        return self.package

    @property
    def install(self) -> str:
        """The command that obtains the release file: ``urgentbench assets fetch NAME``."""
        return f"urgentbench assets fetch {self.asset}"

    def problem(self) -> str | None:
        """What is missing, with the fix commands; None when the release file is present and intact."""
        from urgentbench.assets.registry import get_asset

        return get_asset(self.asset).problem()

    def provenance(self) -> dict[str, str]:
        """The release file run: asset name, file name and its pinned sha256."""
        from urgentbench.assets.registry import get_asset

        pinned = next((f for f in get_asset(self.asset).files if f.name == self.archive), None)
        return {"asset": self.asset, "file": self.archive, "sha256": pinned.sha256 if pinned else ""}

    def is_available(self) -> bool:
        """True when the release file is present and intact."""
        return self.problem() is None

    def source_folder(self) -> Path:
        """The folder holding the extracted package (``<folder>/<package>/``), extracting it on first use.

        Raises:
            AssetError: When the asset is missing or corrupt (with the fix commands), or the
                archive has no ``prefix`` folder or a member escaping it.
        """
        from urgentbench.assets.registry import get_asset

        asset = get_asset(self.asset)
        folder = asset.path()  # sha256-verified before anything is read from it
        pinned = next((f for f in asset.files if f.name == self.archive), None)
        if pinned is None:
            raise AssetError(f"asset '{self.asset}' has no file {self.archive}")
        root = folder.parent / f"{folder.name}.code" / (pinned.sha256 or "unpinned")[:16]
        packages = self._packages()
        if all((root / name / "__init__.py").is_file() for name, _ in packages):
            return root
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=root.parent))
        try:
            for name, prefix in packages:
                try:
                    count = _extract(folder / self.archive, prefix, staging / name)
                except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
                    raise AssetError(
                        f"{folder / self.archive}: not a readable archive ({exc}); fix: {asset.repair_fix()}"
                    ) from None
                if not (staging / name / "__init__.py").is_file():
                    raise AssetError(f"{folder / self.archive}: no package {name!r} under {prefix}/ ({count} files there)")
            if root.exists() and not all((root / name / "__init__.py").is_file() for name, _ in packages):
                shutil.rmtree(root, ignore_errors=True)  # an extraction by a PackageCode naming fewer packages
            try:
                os.replace(staging, root)
            except OSError:
                if not (root / self.package / "__init__.py").is_file():  # not another process's copy
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        logger.debug("%s: extracted %s to %s", self.asset, self.package, root)
        return root

    def _packages(self) -> list[tuple[str, str]]:
        """(import name, folder in the archive) of the package and of every ``also`` package."""
        parent = PurePosixPath(self.prefix).parent
        return [(self.package, self.prefix)] + [(name, str(parent / name)) for name in self.also]

    def load(self) -> ModuleType:
        """Import the package from its release file and return it (``import PACKAGE`` then finds it).

        Submodules are imported as usual afterwards (``from nisqa import NISQA_lib``). A
        module of the same name imported earlier from elsewhere is replaced, with a warning.

        Raises:
            AssetError: When the asset is missing or corrupt (the message holds the fix commands).
        """
        release = self.provenance()["sha256"]
        current = sys.modules.get(self.package)
        if current is not None and getattr(current, _MARK, None) == release:
            return current  # verified and imported earlier in this process
        root = self.source_folder()
        init = root / self.package / "__init__.py"
        with _LOCK:
            current = sys.modules.get(self.package)
            if current is not None and getattr(current, _MARK, None) == release:
                return current
            if current is not None:
                logger.warning(
                    "module %s was imported from %s; using the pinned release of asset %s instead",
                    self.package, getattr(current, "__file__", "?"), self.asset,
                )
                for name in [n for n in sys.modules if n == self.package or n.startswith(self.package + ".")]:
                    del sys.modules[name]
            spec = importlib.util.spec_from_file_location(
                self.package, init, submodule_search_locations=[str(root / self.package)]
            )
            if spec is None or spec.loader is None:  # pragma: no cover - a file location always has a loader
                raise AssetError(f"{init}: cannot be imported")
            module = importlib.util.module_from_spec(spec)
            setattr(module, _MARK, release)
            sys.modules[self.package] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[self.package]
                raise
            return module


def _member_path(name: str, prefix: str) -> PurePosixPath | None:
    """The path of archive member ``name`` relative to ``prefix`` (None: outside it)."""
    path = PurePosixPath(name)
    base = PurePosixPath(prefix)
    try:
        relative = path.relative_to(base)
    except ValueError:
        return None
    if not relative.parts or any(part in ("..", "") for part in relative.parts) or path.is_absolute():
        return None
    return relative


def _extract(archive: Path, prefix: str, dest: Path) -> int:
    """Copy the regular files under ``prefix`` of a wheel/zip or tar archive into ``dest``; returns their count."""
    count = 0
    dest.mkdir(parents=True, exist_ok=True)
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                relative = _member_path(info.filename, prefix)
                if relative is None or info.is_dir():
                    continue
                target = dest.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                count += 1
        return count
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            relative = _member_path(member.name, prefix)
            if relative is None or not member.isfile():
                continue
            target = dest.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            if src is None:  # pragma: no cover - regular files always have data
                continue
            with src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            count += 1
    return count
