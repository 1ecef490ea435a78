"""Unpinned asset files (no published digest): trust on first use, then verified like pinned ones."""

from __future__ import annotations

import json

import pytest

from urgentbench.assets import CORRUPT, PINS_FILE, PRESENT, Asset, AssetError, AssetFile, sha256_file


@pytest.fixture
def asset(tmp_path, monkeypatch):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    return Asset(
        name="toy-unpinned",
        description="test asset",
        licence="CC0-1.0",
        files=(AssetFile("config.json", "0" * 64, 2), AssetFile("model.safetensors")),
    )


def _copy(tmp_path, weights: bytes):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "config.json").write_bytes(b"{}")
    (src / "model.safetensors").write_bytes(weights)
    return src


def test_prefix_and_digest_validation():
    assert AssetFile("x").unpinned
    assert not AssetFile("x", sha256_prefix="abcdef12").unpinned
    with pytest.raises(ValueError, match="8 to 63"):
        AssetFile("x", sha256_prefix="abc")


def test_add_records_digest_and_detects_later_tampering(tmp_path, asset):
    # config.json is fully pinned to a digest that "{}" does not have: refused, nothing installed
    src = _copy(tmp_path, b"weights-v1")
    with pytest.raises(AssetError, match="config.json"):
        asset.add(src)
    assert not asset.directory().exists()

    good = Asset(
        name=asset.name,
        description="",
        licence="",
        files=(AssetFile("config.json", sha256_file(src / "config.json"), 2), AssetFile("model.safetensors")),
    )
    folder = good.add(src)
    pins = json.loads((folder / PINS_FILE).read_text())
    assert pins == {"model.safetensors": {"sha256": sha256_file(src / "model.safetensors"), "size": 10}}
    assert good.status().state == PRESENT
    assert good.path() == folder
    prov = good.provenance()
    assert prov["files"]["model.safetensors"]["sha256"] == pins["model.safetensors"]["sha256"]
    assert prov["files"]["model.safetensors"]["pinned"] == "first use"
    assert prov["sha256"] == good.effective_sha256() != good.sha256

    # same size, different bytes: caught against the recorded digest
    (folder / "model.safetensors").write_bytes(b"weights-v2")
    status = good.status()
    assert status.state == CORRUPT and "recorded when it was installed" in status.detail
    with pytest.raises(AssetError, match="corrupt"):
        good.path(recheck=True)

    # a different copy installed later gives a different effective digest
    first = prov["sha256"]
    good.add(_copy(tmp_path, b"weights-v2"))
    assert good.effective_sha256() != first


def test_copy_without_record_is_not_trusted(tmp_path, asset):
    asset = Asset(name=asset.name, description="", licence="", files=(AssetFile("model.safetensors"),))
    folder = asset.directory()
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w")
    assert asset.status().state == CORRUPT
    assert "no recorded sha256" in asset.status().detail
