"""Upstream code pinned as an asset (urgentbench.assets.PackageCode): fetched file verified, extracted, imported."""

from __future__ import annotations

import hashlib
import importlib
import io
import sys
import tarfile
import zipfile

import pytest

from urgentbench.assets import Asset, AssetError, AssetFile, DownloadSource, PackageCode, register_asset


def _wheel(path, files):
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def _sdist(path, files):
    with tarfile.open(path, "w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _register(name, archive):
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    asset = Asset(
        name=name,
        description="test release file",
        licence="test",
        homepage="",
        files=(AssetFile(archive.name, digest, archive.stat().st_size),),
        sources=(DownloadSource(urls={archive.name: ("https://example.invalid/" + archive.name,)}),),
    )
    register_asset(asset, override=True)
    return asset


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(importlib.import_module("urgentbench.assets.asset"), "_VERIFIED", {})
    yield tmp_path
    for name in [n for n in sys.modules if n.split(".")[0] in ("ubtoy", "ubtoysd")]:
        del sys.modules[name]


def test_a_wheel_is_imported_from_the_verified_file(cache):
    wheel = _wheel(
        cache / "ubtoy-1.0-py3-none-any.whl",
        {
            "ubtoy/__init__.py": "from .core import answer\n",
            "ubtoy/core.py": "def answer():\n    return 42\n",
            "ubtoy/data/weights.txt": "w",
            "ubtoy-1.0.dist-info/METADATA": "Requires-Dist: torch==2.2.1\n",
            "../escape.py": "raise SystemExit('must never be extracted')\n",
        },
    )
    asset = _register("ubtoy-code", wheel)
    code = PackageCode(asset="ubtoy-code", archive=wheel.name, package="ubtoy", prefix="ubtoy")
    # missing: the problem names the fix, nothing is imported
    assert "urgentbench assets fetch ubtoy-code" in code.problem()
    assert code.install == "urgentbench assets fetch ubtoy-code" and code.module == "ubtoy"
    with pytest.raises(AssetError, match="ubtoy-code"):
        code.load()
    assert "ubtoy" not in sys.modules
    asset.add(wheel)
    assert code.problem() is None and code.is_available()
    module = code.load()
    import ubtoy.core

    assert module.answer() == 42 and ubtoy.core.answer() == 42
    root = code.source_folder()
    assert (root / "ubtoy" / "data" / "weights.txt").read_text() == "w"
    assert not (root / "escape.py").exists() and not (root.parent / "escape.py").exists()
    assert code.load() is module  # imported once per process
    assert code.provenance() == {"asset": "ubtoy-code", "file": wheel.name, "sha256": asset.files[0].sha256}


def test_a_source_archive_and_a_module_of_the_same_name_imported_earlier(cache, caplog):
    sdist = _sdist(
        cache / "ubtoysd-0.1.tar.gz",
        {"ubtoysd-0.1/setup.py": "", "ubtoysd-0.1/ubtoysd/__init__.py": "ORIGIN = 'release'\n"},
    )
    asset = _register("ubtoysd-code", sdist)
    asset.add(sdist)
    other = type(sys)("ubtoysd")
    other.ORIGIN = "elsewhere"
    sys.modules["ubtoysd"] = other
    code = PackageCode(asset="ubtoysd-code", archive=sdist.name, package="ubtoysd", prefix="ubtoysd-0.1/ubtoysd")
    with caplog.at_level("WARNING"):
        module = code.load()
    assert module.ORIGIN == "release" and sys.modules["ubtoysd"] is module
    assert "using the pinned release" in caplog.text


def test_a_corrupt_release_file_is_refused_and_a_wrong_prefix_named(cache):
    wheel = _wheel(cache / "ubtoy-1.0-py3-none-any.whl", {"ubtoy/__init__.py": "X = 1\n"})
    asset = _register("ubtoy-code", wheel)
    asset.add(wheel)
    wrong = PackageCode(asset="ubtoy-code", archive=wheel.name, package="ubtoy", prefix="src/ubtoy")
    with pytest.raises(AssetError, match="no package 'ubtoy' under src/ubtoy"):
        wrong.load()
    (asset.directory() / wheel.name).write_bytes(b"tampered")
    importlib.import_module("urgentbench.assets.asset")._VERIFIED.clear()  # a new process
    code = PackageCode(asset="ubtoy-code", archive=wheel.name, package="ubtoy", prefix="ubtoy")
    assert "corrupt" in code.problem()
    with pytest.raises(AssetError, match="corrupt"):
        code.load()


def test_the_three_upstream_packages_are_pinned_release_files():
    from urgentbench.assets import get_asset
    from urgentbench.metrics.nisqa import NISQA_PACKAGE
    from urgentbench.metrics.speaker import RESEMBLYZER_PACKAGE
    from urgentbench.systems.demucs_assets import DENOISER_PACKAGE

    for code, archive in (
        (NISQA_PACKAGE, "nisqa-2.0.post2-py3-none-any.whl"),
        (RESEMBLYZER_PACKAGE, "Resemblyzer-0.1.4-py3-none-any.whl"),
        (DENOISER_PACKAGE, "denoiser-0.1.5.tar.gz"),
    ):
        (f,) = get_asset(code.asset).files
        assert f.name == code.archive == archive and len(f.sha256) == 64 and f.size
        assert get_asset(code.asset).urls[f.name].startswith("https://files.pythonhosted.org/packages/")


def test_two_top_level_packages_of_one_wheel_import_each_other(cache):
    wheel = _wheel(
        cache / "ubtoy-2.0-py3-none-any.whl",
        {
            "ubtoy/__init__.py": "from ubtoysd.base import BASE\nVALUE = BASE + 1\n",
            "ubtoysd/__init__.py": "",
            "ubtoysd/base.py": "BASE = 41\n",
        },
    )
    _register("ubtoy2-code", wheel).add(wheel)
    # a PackageCode naming one package only extracts that one; the one naming both re-extracts
    alone = PackageCode(asset="ubtoy2-code", archive=wheel.name, package="ubtoysd", prefix="ubtoysd")
    assert not (alone.source_folder() / "ubtoy").exists()
    top = PackageCode(asset="ubtoy2-code", archive=wheel.name, package="ubtoy", prefix="ubtoy", also=("ubtoysd",))
    other = PackageCode(asset="ubtoy2-code", archive=wheel.name, package="ubtoysd", prefix="ubtoysd", also=("ubtoy",))
    root = top.source_folder()
    assert root == other.source_folder() and (root / "ubtoysd" / "base.py").is_file()
    other.load()
    assert top.load().VALUE == 42
    assert sys.modules["ubtoysd"].__file__.startswith(str(root))
