"""The ``frcrn`` system (ClearerVoice-Studio's FRCRN_SE_16K) and its asset.

The published checkpoint cannot be downloaded here, and the ``clearvoice`` package does not
install next to this project (it would replace torch and downgrade numpy and librosa), so
the network is checked against the checkpoint's names and shapes derived by hand from
clearvoice 0.1.2's ``models/frcrn_se`` code (``DCCRN(model_depth=14)``), and exercised with
random weights saved in the checkpoint's layouts. Everything that runs the network uses a
small width (same depth, kernels, strides and names) so that the file stays fast.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import urgentbench.assets.asset as asset_module  # noqa: E402
from urgentbench.assets import AssetError, AssetFile, get_asset, register_asset  # noqa: E402
from urgentbench.cli import main  # noqa: E402
from urgentbench.runner import run_system  # noqa: E402
from urgentbench.systems import SYSTEMS  # noqa: E402
from urgentbench.systems import frcrn as fr  # noqa: E402
from urgentbench.systems.frcrn_net import FRCRN, parameter_count  # noqa: E402

SR = 16_000
TINY = 8


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the machines running the tests are small and shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_model(width: int = TINY, seed: int = 0) -> FRCRN:
    """A network with every parameter and batch-norm statistic moved off its initial value."""
    torch.manual_seed(seed)
    model = FRCRN(width=width)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def system_with(model: FRCRN, **options):
    system = SYSTEMS.get("frcrn").build(**options)
    system.use_model(model)
    return system


def signal(n: int, seed: int = 1) -> np.ndarray:
    """A modulated tone in noise (not silent anywhere, level well below full scale)."""
    t = np.arange(n) / SR
    tone = 0.1 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.7 * t))
    return (tone + 0.02 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


# ----------------------------------------------------------------------------- the published layout

_DUPLICATES = {"encoder": "encoders", "decoder": "decoders", "se_layer_enc": "se_layers_enc",
               "se_layer_dec": "se_layers_dec", "fsmn_enc": "fsmn_enc", "fsmn_dec": "fsmn_dec"}


def published_manifest() -> dict[str, tuple[int, ...]]:
    """Names and shapes of FRCRN_SE_16K's state dict, written out from clearvoice's frcrn_se code.

    ``DCCRN``: ``ConvSTFT``/``ConviSTFT`` (640-sample window, 640-point DFT: 642 kernel rows), two
    ``UNet(model_depth=14)``: 7 ``Encoder`` (``ComplexConv2d`` 1->128 then 128->128, kernels
    (5, 2) and last (2, 2), ``ComplexBatchNorm2d``), 7 ``Decoder`` (``ComplexConvTranspose2d``,
    inputs 128 then 256 with the skip, kernels (2|5|5|5|6|5|5, 2), last output 1), FSMNs of
    width 128 and memory order 20, ``SELayer(128, 8)``, a 1x1 ``ComplexConv2d`` output.
    """
    m: dict[str, tuple[int, ...]] = {
        "stft.weight": (642, 1, 640), "istft.weight": (642, 1, 640),
        "istft.window": (1, 640, 1), "istft.enframe": (640, 1, 640),
    }

    def pair(prefix, stem, shape, bias):
        for part in ("re", "im"):
            m[f"{prefix}.{stem}_{part}.weight"] = shape
            m[f"{prefix}.{stem}_{part}.bias"] = (bias,)

    def norm(prefix, c):
        for part in ("re", "im"):
            for field in ("weight", "bias", "running_mean", "running_var"):
                m[f"{prefix}.bn_{part}.{field}"] = (c,)
            m[f"{prefix}.bn_{part}.num_batches_tracked"] = ()

    def fsmn(prefix, layers):
        for part in ("re", "im"):
            for layer in layers:
                p = f"{prefix}.fsmn_{part}_{layer}"
                m.update({f"{p}.linear.weight": (128, 128), f"{p}.linear.bias": (128,),
                          f"{p}.project.weight": (128, 128), f"{p}.conv1.weight": (128, 1, 20, 1)})

    def gate(prefix):
        for part in ("r", "i"):
            m.update({f"{prefix}.fc_{part}.0.weight": (16, 128), f"{prefix}.fc_{part}.0.bias": (16,),
                      f"{prefix}.fc_{part}.2.weight": (128, 16), f"{prefix}.fc_{part}.2.bias": (128,)})

    decoders = [(128, 128, 2), (256, 128, 5), (256, 128, 5), (256, 128, 5), (256, 128, 6), (256, 128, 5),
                (256, 1, 5)]
    for u in ("unet", "unet2"):
        for i in range(7):
            pair(f"{u}.encoder{i}.conv", "conv", (128, 1 if i == 0 else 128, 2 if i == 6 else 5, 2), 128)
            norm(f"{u}.encoder{i}.bn", 128)
            cin, cout, kf = decoders[i]
            pair(f"{u}.decoder{i}.transconv", "tconv", (cin, cout, kf, 2), cout)
            norm(f"{u}.decoder{i}.bn", cout)
            fsmn(f"{u}.fsmn_enc{i}", ("L1",))
            fsmn(f"{u}.fsmn_dec{i}", ("L1",))
            gate(f"{u}.se_layer_enc{i}")
            if i < 6:
                gate(f"{u}.se_layer_dec{i}")
        fsmn(f"{u}.fsmn", ("L1", "L2"))
        pair(f"{u}.linear", "conv", (1, 1, 1, 1), 1)
    return m


def with_upstream_duplicates(state: dict) -> dict:
    """``state`` as upstream's ``state_dict()`` lists it: every layer also under its ModuleList name."""
    out = dict(state)
    pattern = re.compile(r"\.(" + "|".join(_DUPLICATES) + r")(\d+)\.")
    for key, value in state.items():
        match = pattern.search(key)
        if match:
            out[pattern.sub(lambda mm: f".{_DUPLICATES[mm.group(1)]}.{mm.group(2)}.", key)] = value
    return out


def save_published(model: FRCRN, path, duplicates: bool = True, prefix: str = "module.", counters: bool = True):
    """Write ``model`` in the published checkpoint's layout: ``{"model": state, "optimizer": ...}``."""
    state = {k: v for k, v in model.state_dict().items() if counters or not k.endswith("num_batches_tracked")}
    if duplicates:
        state = with_upstream_duplicates(state)
    torch.save({"model": {prefix + k: v for k, v in state.items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999)}]}, "epoch": 88}, path)
    return path


def test_state_dict_has_the_published_names_and_shapes():
    model = FRCRN()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = published_manifest()
    assert shapes == expected
    tensors = {k: s for k, s in expected.items() if not k.endswith("num_batches_tracked")}
    # as independent ports count the published file: 812 tensors, 14,387,164 values, besides 56 counters
    assert len(tensors) == 812 and len(expected) - len(tensors) == 56
    assert sum(int(np.prod(s)) for s in tensors.values()) == 14_387_164
    # upstream's own state_dict() lists 1692 names (each U-Net layer twice)
    assert len(with_upstream_duplicates(model.state_dict())) == 1692
    assert parameter_count(model) == SYSTEMS.get("frcrn").card.parameters == 13_141_844


def test_fixed_kernels_are_upstream_conv_stft():
    """Analysis rows rfft(eye)[:640] and synthesis rows pinv(...).T, both times sqrt(periodic Hann)."""
    model = FRCRN(width=TINY)
    window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(640) / 640))
    basis = np.fft.rfft(np.eye(640))[:640]
    kernel = np.concatenate([basis.real, basis.imag], 1).T
    np.testing.assert_allclose(model.stft.weight[:, 0].numpy(), kernel * window, atol=2e-6)
    np.testing.assert_allclose(model.istft.weight[:, 0].numpy(), np.linalg.pinv(kernel).T * window, atol=2e-8)
    np.testing.assert_array_equal(model.istft.window[0, :, 0].numpy(), window.astype(np.float32))
    # a unit mask: analysis then synthesis returns the input (past the first half-frame)
    x = torch.from_numpy(signal(8000))[None]
    frames = model.stft(x)
    y = model.istft(frames)[0]
    assert y.shape == (8000,)
    np.testing.assert_allclose(y[320:-320].numpy(), x[0, 320:-320].numpy(), atol=1e-5)


@pytest.mark.parametrize("layout", ["published", "no-duplicates", "bare"])
def test_checkpoint_layouts_load_strict(tmp_path, layout):
    model = random_model(seed=2)
    path = tmp_path / "last_best_checkpoint.pt"
    if layout == "published":
        save_published(model, path)
    elif layout == "no-duplicates":
        save_published(model, path, duplicates=False, prefix="", counters=False)
    else:
        torch.save(model.state_dict(), path)
    loaded = fr.read_checkpoint(path)
    assert loaded.width == TINY
    for key, value in model.state_dict().items():
        if not (layout == "no-duplicates" and key.endswith("num_batches_tracked")):
            assert torch.equal(loaded.state_dict()[key], value), key
    x = signal(9000)
    np.testing.assert_array_equal(system_with(loaded).enhance(x, SR)[0], system_with(model).enhance(x, SR)[0])


def test_full_size_published_checkpoint_loads(tmp_path):
    path = save_published(FRCRN(), tmp_path / "last_best_checkpoint.pt")
    loaded = fr.read_checkpoint(path)
    assert loaded.width == 128 and parameter_count(loaded) == 13_141_844


def test_bad_checkpoints_are_named(tmp_path):
    model = random_model(seed=3)
    state = with_upstream_duplicates(model.state_dict())
    key = next(k for k in state if ".encoders.1." in k and k.endswith("weight"))
    state[key] = state[key] + 1
    torch.save({"model": state}, tmp_path / "dup.pt")
    with pytest.raises(ValueError, match="same layer but hold different values"):
        fr.read_checkpoint(tmp_path / "dup.pt")
    torch.save({"model": {"encoder.weight": torch.zeros(3)}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an FRCRN checkpoint"):
        fr.read_checkpoint(tmp_path / "other.pt")
    state = dict(model.state_dict())
    state.pop("unet2.linear.conv_im.bias")
    torch.save(state, tmp_path / "short.pt")
    with pytest.raises(ValueError, match="do not fit the FRCRN architecture.*unet2.linear.conv_im.bias"):
        fr.read_checkpoint(tmp_path / "short.pt")


# ----------------------------------------------------------------------------- the wrapper


def test_padding_follows_upstream():
    """Inputs are padded as clearvoice pads them: to 1 s, to 1.75 s, or by n - 12000 * floor((n - 16000) / 12000); whole frames cover n."""
    cases = {1: 16_000, 15_999: 16_000, 16_000: 28_000, 27_999: 28_160, 28_000: 28_160, 28_001: 28_001 + 16_001,
             45_000: 2 * 45_000 - 24_000, 40_000: 40_000, 52_000: 52_160}
    for n, padded in cases.items():
        assert fr.upstream_padded_length(n) == padded, n
    # 28 000, 40 000 and 52 000 are left as they are upstream, which then drops their last 160
    # samples (whole frames end at 27 840, 39 840, 51 840); here whole frames cover them
    model = random_model(seed=4)
    x = signal(21_000)
    system = system_with(model)
    gain, inverse = fr.level_gains(x)
    padded = np.zeros(28_000, dtype=np.float32)
    padded[:21_000] = (x.astype(np.float64) * gain).astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(padded)[None])[0, :21_000].double().numpy() * inverse
    np.testing.assert_allclose(system.enhance(x, SR)[0], ref, rtol=1e-6, atol=1e-7)


def test_level_normalisation_is_upstream_audio_norm():
    x = signal(30_000).astype(np.float64)
    gain, inverse = fr.level_gains(x)
    first = 10 ** (-25 / 20) / (np.sqrt(np.mean(x**2)) + 1e-6)
    p = (x * first) ** 2
    second = 10 ** (-25 / 20) / (np.sqrt(np.mean(p[p > p.mean()])) + 1e-6)
    assert gain == pytest.approx(first * second, rel=1e-12) and inverse == pytest.approx(1 / (first * second + 1e-6))
    system = system_with(random_model(seed=5))
    y, _ = system.enhance(x.astype(np.float32), SR)
    y_loud, _ = system.enhance((x * 8).astype(np.float32), SR)
    np.testing.assert_allclose(y_loud, 8 * y, rtol=1e-4, atol=1e-6 * np.abs(y).max())
    silent, _ = system.enhance(np.zeros(5000, dtype=np.float32), SR)
    assert silent.shape == (5000,) and not silent.any()


@pytest.mark.parametrize("n", [1, 639, 640, 15_999, 16_001, 27_999, 28_000, 40_123])
def test_exact_length_at_16k(n):
    y, rate = system_with(random_model(seed=6)).enhance(signal(n, seed=n), SR)
    assert rate == SR and y.shape == (n,) and y.dtype == np.float32 and np.isfinite(y).all()


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 24000, 32000, 44100, 48000])
def test_runner_keeps_rate_and_length(rate):
    n = int(rate * 1.3) + 7
    t = np.arange(n) / rate
    x = (0.1 * np.sin(2 * np.pi * 300 * t) + 0.01 * np.random.default_rng(rate).standard_normal(n)).astype(np.float32)
    y, clipped = run_system(system_with(random_model(seed=7)), x, rate, "fixture")
    assert y.shape == x.shape and np.isfinite(y).all() and clipped >= 0


def test_crossfade_weights_sum_to_one(monkeypatch):
    """With a pointwise stand-in for the model, chunked processing equals one pass exactly."""
    x = signal(16_000 * 19 + 77)
    chunked = system_with(random_model(seed=8), chunk_seconds=8)
    once = system_with(random_model(seed=8), chunk_seconds=60)
    for system in (chunked, once):
        monkeypatch.setattr(system, "run_piece", lambda piece: np.tanh(piece.astype(np.float64)) * 0.5)
    bounds = chunked.chunk_bounds(x.size)
    assert len(bounds) == 4 and all(start % 320 == 0 for start, _ in bounds) and bounds[-1][1] == x.size
    assert all(bounds[i][1] - bounds[i + 1][0] >= 4 * SR for i in range(len(bounds) - 1))
    np.testing.assert_allclose(chunked.enhance(x, SR)[0], once.enhance(x, SR)[0], rtol=1e-6, atol=1e-9)


def test_chunking_has_no_seams():
    """8-s chunks agree with one pass of the same random network everywhere, seams included.

    They differ only through the squeeze-and-excitation means (over a chunk instead of the
    whole input): measured 2.8e-3 of the output RMS at most (near the last, shortest chunk),
    1.3e-4 on average, past the first half-frame, where the synthesis divides by a vanishing
    window (upstream's edge) and the relative difference is larger.
    """
    model = random_model(seed=0)
    x = signal(16_000 * 20 + 123)
    chunked = system_with(model, chunk_seconds=8)
    y_chunked, _ = chunked.enhance(x, SR)
    y_once, _ = system_with(model).enhance(x, SR)
    rms = float(np.sqrt(np.mean(y_once.astype(np.float64) ** 2)))
    assert rms > 0
    diff = np.abs(y_chunked - y_once)
    diff[:320] = 0
    assert diff.max() < 5e-3 * rms and diff.mean() < 3e-4 * rms
    for start, _end in chunked.chunk_bounds(x.size)[1:]:
        assert diff[start - 400 : start + 4 * SR + 400].max() < 5e-3 * rms


def test_options_are_checked(tmp_path):
    spec = SYSTEMS.get("frcrn")
    with pytest.raises(ValueError, match="chunk_seconds must be a number >= 8"):
        spec.build(chunk_seconds=5)
    with pytest.raises(ValueError, match="unknown option"):
        spec.build(width=8)


# ----------------------------------------------------------------------------- asset and messages


def test_card_and_asset():
    card = SYSTEMS.get("frcrn").card
    assert (card.sample_rate, card.assets, card.entry) == (SR, ["frcrn-se-16k"], "urgentbench.systems.frcrn:FRCRNSystem")
    assert "urgentbench assets fetch frcrn-se-16k" in card.code
    assert "urgentbench assets add frcrn-se-16k --from last_best_checkpoint.pt" in card.code
    assert "Apache-2.0" in card.licence and "ICASSP 2022" in card.paper and card.algorithmic_latency_ms == 30_000
    asset = get_asset("frcrn-se-16k")
    (f,) = asset.files
    assert f.name == "last_best_checkpoint.pt" and len(f.sha256) == 64 and f.size == 161_053_751
    assert asset.urls[f.name].startswith("https://huggingface.co/alibabasglab/FRCRN_SE_16K/resolve/")
    assert asset.sources[0].urls[f.name][-1].endswith("/resolve/main/last_best_checkpoint.pt")


@pytest.mark.parametrize("content", [None, b"not a checkpoint"])
def test_missing_or_corrupt_checkpoint_option_says_what_to_do(tmp_path, content):
    path = tmp_path / "model.pt"
    if content is None:
        with pytest.raises(ValueError, match="does not exist") as err:
            SYSTEMS.get("frcrn").build(checkpoint=str(path))
    else:
        path.write_bytes(content)
        with pytest.raises(ValueError, match="not a readable FRCRN checkpoint") as err:
            SYSTEMS.get("frcrn").build(checkpoint=str(path)).setup()
    message = str(err.value)
    assert "urgentbench assets fetch frcrn-se-16k" in message and "checkpoint=PATH" in message and "\n" not in message


def test_missing_checkpoint_stops_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["-q", "run", "--system", "frcrn", "--suite", "demo", "--system-args",
                 f"checkpoint={tmp_path / 'nope.pt'}", "--limit", "1", "--metrics", "si_sdr", "--jobs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and "urgentbench assets fetch frcrn-se-16k" in err


def test_missing_and_corrupt_asset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(asset_module, "_VERIFIED", {})
    assert main(["ls", "systems"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("frcrn "))
    assert "asset 'frcrn-se-16k' is missing" in line and "urgentbench assets fetch frcrn-se-16k" in line
    assert "urgentbench assets add frcrn-se-16k --from FILE" in line
    with pytest.raises(AssetError, match="urgentbench assets fetch frcrn-se-16k"):
        SYSTEMS.get("frcrn").build().setup()
    # a random-weight file stands in for the published one (pin patched to its sha256)
    model = random_model(seed=9)
    good = save_published(model, tmp_path / "last_best_checkpoint.pt")
    asset = get_asset("frcrn-se-16k")
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    patched = type(asset)(**{**asset.__dict__, "files": (AssetFile(asset.files[0].name, digest),)})
    register_asset(patched, override=True)
    try:
        with pytest.raises(AssetError, match="sha256"):
            patched.add(save_published(random_model(seed=10), tmp_path / "other.pt"))
        patched.add(good)
        system = SYSTEMS.get("frcrn").build()
        system.setup()
        weights = system.provenance()["weights"]
        assert weights["official"] is True and weights["source"] == "asset" and weights["sha256"] == digest
        x = signal(9000)
        np.testing.assert_array_equal(system.enhance(x, SR)[0], system_with(model).enhance(x, SR)[0])
        (patched.directory() / "last_best_checkpoint.pt").write_bytes(b"garbage")
        monkeypatch.setattr(asset_module, "_VERIFIED", {})
        with pytest.raises(AssetError, match="corrupt .*urgentbench assets fetch frcrn-se-16k"):
            SYSTEMS.get("frcrn").build().setup()
        assert "corrupt" in SYSTEMS.get("frcrn").availability().summary()
    finally:
        register_asset(asset, override=True)


def test_demo_run_with_a_random_checkpoint(tmp_path, monkeypatch, capsys):
    """``urgentbench run`` end to end on two demo utterances with a checkpoint in the published layout."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("URGENTBENCH_THREADS", "1")
    path = save_published(random_model(seed=11), tmp_path / "last_best_checkpoint.pt")
    code = main(["-q", "run", "--system", "frcrn", "--suite", "demo", "--system-args", f"checkpoint={path}",
                 "--limit", "2", "--metrics", "pesq", "--jobs", "1"])
    assert code == 0, capsys.readouterr()
    with sqlite3.connect(tmp_path / "results" / "results.sqlite") as db:
        rows = db.execute("SELECT system, metric, error, result_json FROM scores").fetchall()
    assert len(rows) == 2 and all(r[:3] == ("frcrn", "pesq", None) and "pesq" in r[3] for r in rows)


@pytest.mark.slow
def test_equals_clearvoice_dccrn_when_its_source_is_given(monkeypatch):
    """Same random weights in clearvoice's ``DCCRN`` and here: equal outputs (full size).

    clearvoice cannot be installed next to this project, so this runs only when
    ``URGENTBENCH_CLEARVOICE_SRC`` names its package folder (``clearvoice/`` of the 0.1.2
    wheel or of a ClearerVoice-Studio checkout, the one holding ``models/frcrn_se``). Measured
    with the 0.1.2 wheel: 2.2e-5 at most on outputs up to 18 (1.2e-6 relative), and through
    clearvoice's ``audio_norm`` + ``decode_one_audio_frcrn_se_16k`` against ``enhance``,
    4e-7 at most on outputs up to 0.22.
    """
    import os
    import sys

    src = os.environ.get("URGENTBENCH_CLEARVOICE_SRC")
    if not src:
        pytest.skip("set URGENTBENCH_CLEARVOICE_SRC to clearvoice's package folder to compare with its code")
    monkeypatch.syspath_prepend(os.path.join(src, "models"))
    try:
        from frcrn_se.frcrn import DCCRN
    finally:  # clearvoice's modules are not kept for other tests
        for name in [n for n in sys.modules if n == "frcrn_se" or n.startswith("frcrn_se.")]:
            del sys.modules[name]

    torch.manual_seed(0)
    theirs = DCCRN(complex=True, model_complexity=45, model_depth=14, log_amp=False, padding_mode="zeros",
                   win_len=640, win_inc=320, fft_len=640, win_type="hanning")
    with torch.no_grad():
        for m in theirs.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    theirs.eval()
    state = fr.model_state({"model": {"module." + k: v for k, v in theirs.state_dict().items()}}, "clearvoice")
    mine = FRCRN()
    mine.load_state_dict(state, strict=True)
    x = torch.from_numpy(signal(24_000))[None]
    with torch.inference_mode():
        ref = theirs.inference(x).numpy()
        out = mine.eval()(x)[0].numpy()
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5 * max(1.0, float(np.abs(ref).max())))
