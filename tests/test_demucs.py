"""The DEMUCS systems (``demucs-dns48``, ``demucs-dns64``, ``demucs-master64``) and their assets.

The official weights cannot be downloaded here, so the wrapper is exercised with randomly
initialised models of each architecture (seeded): exact length, chunking without seams,
the runner path, checkpoint loading, the sha256-prefix check and the listing.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from urgentbench.assets import AssetError  # noqa: E402
from urgentbench.systems.demucs_assets import DENOISER_PACKAGE  # noqa: E402

try:  # denoiser 0.1.5's code comes from its pinned source archive (urgentbench assets fetch denoiser-0.1.5)
    DENOISER_PACKAGE.load()
except AssetError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(str(exc), allow_module_level=True)

from denoiser.demucs import Demucs  # noqa: E402

from urgentbench import assets as assets_mod  # noqa: E402
from urgentbench.assets import AssetError, AssetFile, get_asset, register_asset  # noqa: E402
from urgentbench.cli import main  # noqa: E402
from urgentbench.runner import run_system  # noqa: E402
from urgentbench.systems import SYSTEMS  # noqa: E402

SR = 16_000
ARCH = {"demucs-dns48": 48, "demucs-dns64": 64, "demucs-master64": 64}


def random_model(hidden: int, seed: int = 0) -> Demucs:
    torch.manual_seed(seed)
    return Demucs(hidden=hidden, sample_rate=SR).eval()


def system_with(name: str, model, **options):
    system = SYSTEMS.get(name).build(**options)
    system.use_model(model)
    return system


def noise(seconds: float, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(round(seconds * SR))) * 0.1).astype(np.float32)


@pytest.fixture(scope="module")
def models() -> dict:
    return {name: random_model(hidden, seed=i) for i, (name, hidden) in enumerate(ARCH.items())}


def test_cards_and_assets():
    for name, hidden in ARCH.items():
        system = SYSTEMS.get(name).build()
        card = system.card
        assert (card.sample_rate, system.hidden, card.assets) == (SR, hidden, [system.asset, "denoiser-0.1.5"])
        assert card.parameters == sum(p.numel() for p in Demucs(hidden=hidden).parameters())
        asset = get_asset(system.asset)
        (f,) = asset.files
        assert f.size is None and f.sha256 == "" and len(f.sha256_prefix) == 16
        assert f.name == f"{name.removeprefix('demucs-')}-{f.sha256_prefix}.th"
        assert asset.urls[f.name] == f"https://dl.fbaipublicfiles.com/adiyoss/denoiser/{f.name}"
        assert asset.partially_pinned and "CC-BY-NC-4.0" in asset.licence


def test_one_shot_is_the_upstream_forward(models):
    model = models["demucs-dns48"]
    x = noise(3.3)
    y, rate = system_with("demucs-dns48", model).enhance(x, SR)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)[None, None])[0, 0].numpy()
    assert rate == SR and model.normalize  # the wrapper does not change the model
    np.testing.assert_allclose(y, ref, atol=1e-6)


@pytest.mark.parametrize("name", list(ARCH))
def test_exact_length(models, name):
    system = system_with(name, models[name])
    for n in (800, 801, 1, 2, 4097, 16_001):
        y, rate = system.enhance(noise(n / SR, seed=n), SR)
        assert rate == SR and y.shape == (n,) and y.dtype == np.float32 and np.isfinite(y).all()


def test_long_input_is_chunked_to_exact_length(models):
    system = system_with("demucs-dns48", models["demucs-dns48"])
    x = noise(40.0)
    assert len(system.chunk_bounds(len(x))) == 2
    y, _ = system.enhance(x, SR)
    assert y.shape == x.shape and np.isfinite(y).all()


def test_chunking_has_no_seams(models):
    """Chunked processing (4 s chunks) equals one-shot processing of the same random model."""
    model = models["demucs-dns64"]
    x = noise(13.7)
    chunked = system_with("demucs-dns64", model, chunk_seconds=4.0)
    bounds = chunked.chunk_bounds(len(x))
    assert len(bounds) >= 5 and bounds[0][0] == 0 and bounds[-1][1] == len(x)
    y_chunked, _ = chunked.enhance(x, SR)
    y_once, _ = system_with("demucs-dns64", model, chunk_seconds=30.0).enhance(x, SR)
    rms = float(np.sqrt(np.mean(y_once.astype(np.float64) ** 2)))
    assert rms > 0
    # everywhere, and in particular around every chunk boundary
    assert np.max(np.abs(y_chunked - y_once)) < 1e-3 * rms
    for start, _end in bounds[1:]:
        seam = slice(start - 400, min(start + 2 * SR + 400, len(x)))
        assert np.max(np.abs(y_chunked[seam] - y_once[seam])) < 1e-3 * rms


def test_crossfade_weights_sum_to_one():
    """With a pointwise 'model' the chunked output is exactly the one-shot output."""

    class Pointwise(torch.nn.Module):
        chin = chout = 1
        sample_rate = SR
        normalize = True
        floor = 1e-3

        def valid_length(self, n):
            return n + 3

        def forward(self, x):
            return torch.tanh(x) * 0.5

    x = noise(9.1)
    y_chunked, _ = system_with("demucs-dns48", Pointwise(), chunk_seconds=4.0).enhance(x, SR)
    y_once, _ = system_with("demucs-dns48", Pointwise()).enhance(x, SR)
    np.testing.assert_allclose(y_chunked, y_once, rtol=1e-6, atol=1e-8)


def test_runner_path_at_44k(models):
    system = system_with("demucs-master64", models["demucs-master64"])
    rate = 44_100
    x = (np.random.default_rng(3).standard_normal(rate * 2 + 7) * 0.05).astype(np.float32)
    y, clipped = run_system(system, x, rate, "fixture")
    assert y.shape == x.shape and np.isfinite(y).all() and clipped >= 0


def _save_official(model, path):
    torch.save(model.state_dict(), path)  # the official files are plain state dicts


@pytest.mark.parametrize("fmt", ["state_dict", "package", "training"])
def test_checkpoint_option(tmp_path, models, fmt):
    from denoiser.utils import serialize_model

    model = models["demucs-dns64"]
    path = tmp_path / "custom.th"
    if fmt == "state_dict":
        _save_official(model, path)
    elif fmt == "package":
        torch.save(serialize_model(model), path)
    else:
        torch.save({"model": serialize_model(random_model(64, seed=9)), "best_state": model.state_dict()}, path)
    system = SYSTEMS.get("demucs-dns64").build(checkpoint=str(path))
    system.setup()
    x = noise(1.7)
    y, _ = system.enhance(x, SR)
    y_ref, _ = system_with("demucs-dns64", model).enhance(x, SR)
    np.testing.assert_array_equal(y, y_ref)
    weights = system.provenance()["weights"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert weights["sha256"] == digest and weights["source"] == "checkpoint" and not weights["official"]
    assert SYSTEMS.get("demucs-dns64").availability({"checkpoint": str(path)}).ok


def test_checkpoint_named_like_official_must_match_prefix(tmp_path, models):
    spec = SYSTEMS.get("demucs-dns48")
    path = tmp_path / get_asset(spec.build().asset).files[0].name
    _save_official(models["demucs-dns48"], path)
    with pytest.raises(ValueError, match="does not start with"):
        spec.build(checkpoint=str(path)).setup()


def test_asset_prefix_check(tmp_path, monkeypatch, models):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    good = tmp_path / "good.th"
    _save_official(models["demucs-dns48"], good)
    bad = tmp_path / "bad.th"
    _save_official(random_model(48, seed=5), bad)
    asset = get_asset("demucs-dns48")
    prefix = hashlib.sha256(good.read_bytes()).hexdigest()[:16]
    assert not hashlib.sha256(bad.read_bytes()).hexdigest().startswith(prefix)
    patched = type(asset)(
        **{**asset.__dict__, "files": (AssetFile(asset.files[0].name, sha256_prefix=prefix),)}
    )
    monkeypatch.setattr(assets_mod, "_VERIFIED", {})
    register_asset(patched, override=True)
    try:
        with pytest.raises(AssetError, match=f"sha256 starting with {prefix}"):
            patched.add(bad)
        assert patched.status().state == "missing"
        patched.add(good)
        assert patched.status().state == "present" and patched.problem() is None
        system = SYSTEMS.get("demucs-dns48").build()
        system.setup()
        assert system.provenance()["weights"]["official"] is True
        x = noise(0.5)
        np.testing.assert_array_equal(
            system.enhance(x, SR)[0], system_with("demucs-dns48", models["demucs-dns48"]).enhance(x, SR)[0]
        )
        # a corrupted copy is detected
        (patched.directory() / patched.files[0].name).write_bytes(bad.read_bytes())
        assert patched.status().state == "corrupt"
    finally:
        register_asset(asset, override=True)


def test_listed_unavailable_with_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path))
    assert main(["ls", "systems"]) == 0
    out = capsys.readouterr().out
    for name in ARCH:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert "missing" in line
        assert f"urgentbench assets fetch {name}" in line and f"urgentbench assets add {name} --from FILE" in line
    assert main(["assets", "ls"]) == 0
    out = capsys.readouterr().out
    assert "partially pinned: sha256 prefix only" in out
