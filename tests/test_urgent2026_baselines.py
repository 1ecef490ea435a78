"""The URGENT 2026 track-1 baselines (``urgent2026-bsrnn``, ``urgent2026-bsrnn-flow``).

The official checkpoints cannot be downloaded here, so the networks are checked against the
organisers' reference code (``../shared/reference/urgent2026_track1_baseline``, on ESPnet
202511's modules from the pinned ``espnet-202511`` asset) with random weights of the official
configuration: same parameter names, shapes and order (``load_state_dict(strict=True)``),
same outputs at 16 and 48 kHz, the flow sampler included. The wrappers are exercised with
small random networks: length and rate, seamless chunking, checkpoints in the official
Lightning layout (EMA weights, a pickled ``Config``), missing and corrupt checkpoints, and
a demo run end to end.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import urgentbench.assets.asset as asset_module  # noqa: E402
from urgentbench.assets import AssetError, get_asset  # noqa: E402
from urgentbench.cli import main  # noqa: E402
from urgentbench.systems import SYSTEMS  # noqa: E402
from urgentbench.systems.bsrnn_flow import FlowBSRNN, FlowSE, prior_noise  # noqa: E402
from urgentbench.systems.bsrnn_nets import BSRNNSE, active_parameter_count, parameter_count  # noqa: E402
from urgentbench.systems.urgent2026_checkpoint import load_file  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "urgent2026_track1_baseline"
BSRNN, FLOW = "urgent2026-bsrnn", "urgent2026-bsrnn-flow"
RATES = (8000, 16000, 22050, 44100, 48000)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the machines running the tests are small and shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ref():
    """The reference modules (baseline_code on ESPnet 202511's enhancement layers)."""
    if not REFERENCE.is_dir():
        pytest.skip(f"the reference baseline code is not at {REFERENCE}")
    from urgentbench.metrics.espnet_runtime import import_espnet

    try:
        import_espnet("espnet2.enh.encoder.stft_encoder", "espnet2.enh.decoder.stft_decoder",
                      "espnet2.enh.separator.bsrnn_separator", "espnet2.enh.diffusion.score_based_diffusion")
    except AssetError as exc:  # pragma: no cover - depends on the machine (make install fetches it)
        pytest.skip(str(exc))
    sys.path.insert(0, str(REFERENCE))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from baseline_code import sampling
            from baseline_code.config import Config
            from baseline_code.models import bsrnn, bsrnn_flowse, odes
            from espnet2.enh.decoder.stft_decoder import STFTDecoder
            from espnet2.enh.encoder.stft_encoder import STFTEncoder
        yield {"BSRNN_SE": bsrnn.BSRNN_SE, "FlowBSRNN": bsrnn_flowse.BSRNN, "FLOWMATCHING": odes.FLOWMATCHING,
               "solver": sampling.get_white_box_solver, "solvers": sampling.ODEsolverRegistry, "Config": Config, "STFTEncoder": STFTEncoder,
               "STFTDecoder": STFTDecoder}
    finally:
        sys.path.remove(str(REFERENCE))


def ref_flow(ref, channels=384, layers=6):
    return ref["FlowBSRNN"](input_dim=769, num_spk=1, num_layer=layers, target_fs=48000, causal=False,
                            num_channel=channels).eval()


def same_weights(reference, mine):
    """Load the reference's random weights into ours (strict) after checking names, shapes and order."""
    theirs = [(n, tuple(p.shape)) for n, p in reference.named_parameters()]
    assert theirs == [(n, tuple(p.shape)) for n, p in mine.named_parameters()]  # the EMA list relies on the order
    mine.load_state_dict(reference.state_dict(), strict=True, assign=True)
    return mine.eval()


def noise(n: int, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


@pytest.fixture(scope="module")
def official_flow(ref):
    torch.manual_seed(0)
    reference = ref_flow(ref)
    with torch.device("meta"):  # no second random initialisation of 103 M parameters
        mine = FlowBSRNN(384, 6)
    return reference, same_weights(reference, mine)


# ---------------------------------------------------------------------------- the networks


def test_discriminative_network_equals_the_reference(ref):
    torch.manual_seed(0)
    reference = ref["BSRNN_SE"](num_channel=196, num_layer=6).eval()  # conf/models/BSRNN_baseline.yaml
    mine = same_weights(reference, BSRNNSE(196, 6))
    assert parameter_count(mine) == SYSTEMS.get(BSRNN).card.parameters == 37_800_844
    for fs in (16000, 48000):
        x = torch.from_numpy(noise(fs // 4 + 3, seed=fs))[None]
        with torch.no_grad():
            expected = reference(x, torch.tensor([x.shape[1]]), fs)[0]
            got = mine(x, fs)
        assert got.shape == expected.shape == x.shape
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
        assert expected.abs().max() > 1e-3  # not a trivially silent output
    # the bands up to 8 kHz only at 16 kHz (27 of 34), all at 48 kHz; the yaml's "Parameters: 32.0456657409668 M"
    # and "36.01795196533203 M" are these counts without the GroupNorm parameters, in units of 2^20
    norms = {id(p) for m in mine.modules() if isinstance(m, torch.nn.GroupNorm) for p in m.parameters()}
    for fs, count, yaml_mi in ((16000, 33_628_912, 32.0456657409668), (48000, 37_800_844, 36.01795196533203)):
        x = torch.from_numpy(noise(fs // 10))[None]
        assert active_parameter_count(mine, lambda x=x, fs=fs: mine(x, fs)) == count
        mine(x, fs).sum().backward()
        counted = sum(p.numel() for p in mine.parameters() if p.grad is not None and id(p) not in norms)
        mine.zero_grad(set_to_none=True)
        assert counted / 2**20 == pytest.approx(yaml_mi, abs=1e-9)


def test_flow_estimator_equals_the_reference(ref, official_flow):
    reference, mine = official_flow
    assert parameter_count(mine) == SYSTEMS.get(FLOW).card.parameters == 103_245_488
    enc = ref["STFTEncoder"](n_fft=1536, hop_length=384, use_builtin_complex=True, default_fs=48000,
                             spec_transform_type="exponent", spec_abs_exponent=0.667, spec_factor=0.065)
    front = FlowSE(8, 1)  # the features do not depend on the network
    for fs in (16000, 48000):
        wave = torch.from_numpy(noise(fs // 20, seed=fs))[None]
        with torch.no_grad():
            y = enc(wave, torch.tensor([wave.shape[1]]), fs=fs)[0].permute(0, 2, 1).unsqueeze(1)
            torch.testing.assert_close(front.features(wave, fs), y, rtol=0, atol=1e-6)
            x = y + 0.4 * torch.randn_like(y)
            t = torch.tensor([0.63])
            expected = reference(torch.cat([x, y], dim=1), t)
            got = mine(x, y, t)
        assert got.shape == expected.shape == y.shape
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def reference_enhance(ref, dnn, wave, fs, seed, steps, solver="euler", hop=384):
    """FlowSEModel.enhance as the reference composes it (encoder, white-box sampler, decoder)."""
    kw = dict(n_fft=1536, hop_length=hop, default_fs=48000, spec_transform_type="exponent",
              spec_abs_exponent=0.667, spec_factor=0.065)
    enc, dec = ref["STFTEncoder"](use_builtin_complex=True, **kw), ref["STFTDecoder"](**kw)
    lengths = torch.tensor([wave.shape[1]])
    y = enc(wave, lengths, fs=fs)[0].permute(0, 2, 1).unsqueeze(1)
    ode = ref["FLOWMATCHING"](sigma_min=0.05, sigma_max=0.5)

    def field(x, t, cond):
        return -dnn(torch.cat([x, cond], dim=1), t)

    torch.manual_seed(seed)
    if solver == "euler":
        sample, _ = ref["solver"](solver, ode, field, y, T_rev=1.0, t_eps=0.03, N=steps)()
    else:  # the reference's white-box sampler sets its time points for euler only; its loop, other solvers
        step = ref["solvers"].get_by_name(solver)(ode, field)
        sample, _ = ode.prior_sampling(y.shape, y)
        times = torch.linspace(1.0, 0.03, steps)
        for i in range(steps):
            size = times[i] - times[i + 1] if i + 1 < steps else times[-1]
            sample = step.update_fn(sample, torch.ones(1) * times[i], y, size)
    return dec(sample.squeeze(1).permute(0, 2, 1), lengths, fs)[0]


def test_flow_sampler_equals_the_reference_at_the_official_size(ref, official_flow):
    """The whole enhancement (Euler) with the official network; 2 steps on 30 ms to keep the test short."""
    reference, mine = official_flow
    model = FlowSE(8, 1)
    model.dnn = mine
    for fs in (16000, 48000):
        wave = torch.from_numpy(noise(3 * fs // 100, seed=fs + 1))[None]
        with torch.no_grad():
            expected = reference_enhance(ref, reference, wave, fs, seed=3, steps=2)
            got = model(wave, fs, steps=2, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("solver", ["euler", "midpoint", "heun"])
def test_flow_sampler_equals_the_reference(ref, solver):
    """The official 15 steps, every solver, a small estimator (the official one is too slow for 15 steps here)."""
    torch.manual_seed(1)
    reference = ref_flow(ref, channels=16, layers=2)
    model = FlowSE(16, 2)
    same_weights(reference, model.dnn)
    for fs in (16000, 48000):
        wave = torch.from_numpy(noise(fs // 5, seed=fs + 2))[None]
        with torch.no_grad():
            expected = reference_enhance(ref, reference, wave, fs, seed=7, steps=15, solver=solver)
            got = model(wave, fs, steps=15, solver=solver, generator=torch.Generator().manual_seed(7))
        scale = float(expected.abs().max())
        assert scale > 1e-3
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5 * max(1.0, scale))


def test_prior_noise_is_the_references_draw():
    y = torch.zeros(1, 57, 257, dtype=torch.complex64).permute(0, 2, 1).unsqueeze(1)  # the reference's layout
    torch.manual_seed(11)
    expected = torch.randn_like(y)
    got = prior_noise(57, 257, torch.Generator().manual_seed(11))
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    longer = prior_noise(90, 257, torch.Generator().manual_seed(11))
    torch.testing.assert_close(longer[..., :57], expected, rtol=0, atol=0)  # chunks slice one draw


# ---------------------------------------------------------------------------- the wrappers


def small_model(name: str, seed: int = 0, channels: int = 8, layers: int = 1):
    """A small network of the system's architecture, every parameter random (norms included)."""
    torch.manual_seed(seed)
    model = BSRNNSE(channels, layers) if name == BSRNN else FlowSE(channels, layers)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def system_with(name: str, model, **options):
    system = SYSTEMS.get(name).build(**options)
    system.use_model(model)
    return system


@pytest.mark.parametrize("name", [BSRNN, FLOW])
@pytest.mark.parametrize("rate", RATES)
def test_length_and_rate_are_kept(name, rate):
    system = system_with(name, small_model(name), **({"steps": 2} if name == FLOW else {}))
    for n in (7, 2 * rate // 5 + 3):  # shorter than half a window (zero-padded inside), and 0.4 s
        y, out_rate = system.enhance(noise(n, seed=n), rate)
        assert out_rate == rate and y.shape == (n,) and y.dtype == np.float32 and np.isfinite(y).all()
        assert np.max(np.abs(y)) == pytest.approx(0.9, abs=1e-6)  # official inference.py's peak


def test_native_rate_and_rates_beyond_the_layout():
    system = system_with(BSRNN, small_model(BSRNN), output_peak=None)
    assert system.native_rate_follows_input
    y, rate = system.enhance(noise(9_603), 96_000)  # resampled to 48 kHz and back inside
    assert rate == 96_000 and y.shape == (9_603,)
    with pytest.raises(ValueError, match="at least 8000 Hz"):
        system.enhance(noise(4000), 4000)


def test_one_shot_is_the_network_itself():
    model = small_model(BSRNN)
    x = noise(16_000 + 5)
    y, _ = system_with(BSRNN, model, output_peak=None).enhance(x, 16_000)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)[None], 16_000)[0].numpy()
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-6)


class Pointwise(torch.nn.Module):
    """A 'network' without context: chunked processing must give exactly the one-shot output."""

    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(3.0))

    def forward(self, wave, fs):
        return torch.tanh(self.gain * wave)


def test_crossfade_weights_sum_to_one():
    x = noise(16_000 * 20 + 11)
    chunked = system_with(BSRNN, Pointwise(), chunk_seconds=6, output_peak=None)
    bounds = chunked.chunk_bounds(len(x), 16_000)
    assert len(bounds) >= 4 and bounds[0][0] == 0 and bounds[-1][1] == len(x)
    assert all(start % 160 == 0 for start, _ in bounds)  # on the STFT hop grid (10 ms)
    y_chunked, _ = chunked.enhance(x, 16_000)
    y_once, _ = system_with(BSRNN, Pointwise(), output_peak=None).enhance(x, 16_000)
    np.testing.assert_allclose(y_chunked, y_once, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", [BSRNN, FLOW])
def test_chunking_has_no_seams(name):
    """Chunked vs one-shot with a real (small, random) network: close everywhere, no spike at the seams.

    Both networks normalise over their whole input, so a chunk's output differs slightly from
    the one-shot output everywhere; a seam would add a local error on top of that.
    """
    model, rate = small_model(name, seed=2), 8_000
    extra = {"steps": 2} if name == FLOW else {}
    x = noise(rate * 15, seed=5)
    chunked = system_with(name, model, chunk_seconds=6, output_peak=None, **extra)
    y_chunked, _ = chunked.enhance(x, rate)
    y_once, _ = system_with(name, model, output_peak=None, **extra).enhance(x, rate)
    rms = float(np.sqrt(np.mean(y_once.astype(np.float64) ** 2)))
    err = np.abs(y_chunked - y_once).astype(np.float64)
    assert err.max() < 0.15 * rms
    window = rate // 10
    per_window = err[: len(err) // window * window].reshape(-1, window).max(axis=1)
    seams = {s // window + k for s, _ in chunked.chunk_bounds(len(x), rate)[1:] for k in range(31)}
    inside = np.array([v for i, v in enumerate(per_window) if i not in seams])
    at_seams = np.array([per_window[i] for i in sorted(seams) if i < len(per_window)])
    assert at_seams.max() <= 2.0 * np.percentile(inside, 99)


def test_flow_output_is_reproducible_and_follows_the_seed():
    model = small_model(FLOW)
    x = noise(8_000)
    a = system_with(FLOW, model, steps=2).enhance(x, 16_000)[0]
    b = system_with(FLOW, model, steps=2).enhance(x, 16_000)[0]
    c = system_with(FLOW, model, steps=2, seed=1).enhance(x, 16_000)[0]
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


@pytest.mark.parametrize("bad", [{"solver": "rk45"}, {"steps": 0}, {"seed": -1}, {"ema": "yes"},
                                 {"chunk_seconds": 2}, {"output_peak": 0}, {"device": "tpu"}])
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError):
        SYSTEMS.get(FLOW).build(**bad)


def test_defaults_are_the_official_inference():
    system = SYSTEMS.get(FLOW).build()
    assert {k: system.options[k] for k in ("solver", "steps", "output_peak", "ema")} == {
        "solver": "euler", "steps": 15, "output_peak": 0.9, "ema": True}
    assert SYSTEMS.get(BSRNN).build().needed_assets() == [BSRNN]


# ---------------------------------------------------------------------------- checkpoints


def official_config(ref, **settings):
    """The baseline's own ``Config`` object, as Lightning pickles it into ``hyper_parameters``."""
    return ref["Config"](**settings)


def write_lightning(path: Path, ref, name: str, model, ema_shift: float | None = None) -> Path:
    """A checkpoint in the official layout (what train_se.py's Lightning trainer saves)."""
    if name == BSRNN:
        state = {f"se_model.{k}": v for k, v in model.state_dict().items()}
        cfg = official_config(ref, model_type="discriminative", se_model="bsrnn",
                              model_configs={"num_channel": 8, "num_layer": 1})
    else:
        state = {f"dnn.{k}": v for k, v in model.dnn.state_dict().items()}
        cfg = official_config(ref, model_type="flowse", n_fft=1536, hop_length=384, spec_transform_type="exponent",
                              spec_abs_exponent=0.667, spec_factor=0.065, sigma_min=0.05, sigma_max=0.5,
                              t_eps=0.03, T_rev=1.0, bsrnn_hidden=8, num_layer=1)
    ckpt = {"epoch": 3, "global_step": 1200, "pytorch-lightning_version": "2.4.0", "state_dict": state,
            "hparams_name": "kwargs", "hyper_parameters": {"cfg": cfg},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-4}]}], "lr_schedulers": [{"gamma": 0.85}]}
    if ema_shift is not None:  # torch_ema's state: shadow parameters in the network's parameter order
        shadow = [p.detach() + ema_shift for p in model.dnn.parameters()]
        ckpt["ema"] = {"decay": 0.999, "num_updates": 1200, "shadow_params": shadow, "collected_params": None}
    torch.save(ckpt, path)
    return path


def test_official_layout_loads_with_weights_only(tmp_path, ref):
    model = small_model(BSRNN)
    path = write_lightning(tmp_path / "bsrnn.ckpt", ref, BSRNN, model)
    with pytest.raises(Exception, match="Unsupported global"):  # the pickled Config is not allowed as is
        torch.load(path, map_location="cpu", weights_only=True)
    raw = load_file(path)  # inert stand-in for the Config: its attributes, no code run
    assert raw["hyper_parameters"]["cfg"].attributes()["model_configs"] == {"num_channel": 8, "num_layer": 1}
    system = SYSTEMS.get(BSRNN).build(checkpoint=str(path))
    system.setup()
    x = noise(12_345)
    np.testing.assert_array_equal(system.enhance(x, 22_050)[0], system_with(BSRNN, model).enhance(x, 22_050)[0])
    weights = system.provenance()["weights"]
    assert weights["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (weights["source"], weights["channels"], weights["layers"]) == ("checkpoint", 8, 1)
    assert SYSTEMS.get(BSRNN).availability({"checkpoint": str(path)}).ok


def test_flow_checkpoint_samples_with_its_ema_weights(tmp_path, ref):
    model = small_model(FLOW)
    path = write_lightning(tmp_path / "flow_bsrnn.ckpt", ref, FLOW, model, ema_shift=0.01)
    averaged = small_model(FLOW)
    with torch.no_grad():
        for p, q in zip(averaged.dnn.parameters(), model.dnn.parameters()):
            p.copy_(q + 0.01)
    x = noise(9_000)
    for ema, expected_model in ((True, averaged), (False, model)):
        system = SYSTEMS.get(FLOW).build(checkpoint=str(path), steps=2, ema=ema)
        system.setup()
        assert system.provenance()["weights"]["ema"] is ema
        expected = system_with(FLOW, expected_model, steps=2).enhance(x, 16_000)[0]
        np.testing.assert_array_equal(system.enhance(x, 16_000)[0], expected)


def test_checkpoint_of_the_other_model_is_named(tmp_path, ref):
    path = write_lightning(tmp_path / "flow_bsrnn.ckpt", ref, FLOW, small_model(FLOW), ema_shift=0.0)
    with pytest.raises(ValueError, match="BSRNN-Flow checkpoint .*use urgent2026-bsrnn-flow"):
        SYSTEMS.get(BSRNN).build(checkpoint=str(path)).setup()
    path = write_lightning(tmp_path / "bsrnn.ckpt", ref, BSRNN, small_model(BSRNN))
    with pytest.raises(ValueError, match="discriminative BSRNN checkpoint: use urgent2026-bsrnn"):
        SYSTEMS.get(FLOW).build(checkpoint=str(path)).setup()


def test_missing_or_unreadable_local_checkpoint(tmp_path):
    with pytest.raises(ValueError, match=f"does not exist .*urgentbench assets fetch {BSRNN}"):
        SYSTEMS.get(BSRNN).build(checkpoint=str(tmp_path / "nope.ckpt"))
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(ValueError, match=f"not a readable PyTorch checkpoint.*fix: .*urgentbench assets fetch {FLOW}"):
        SYSTEMS.get(FLOW).build(checkpoint=str(junk)).setup()


def test_missing_and_corrupt_asset(tmp_path, monkeypatch, capsys, ref):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(asset_module, "_VERIFIED", {})
    assert main(["ls", "systems"]) == 0
    out = capsys.readouterr().out
    for name in (BSRNN, FLOW):
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert f"asset '{name}' is missing" in line
        assert f"urgentbench assets fetch {name}" in line and f"urgentbench assets add {name} --from FILE" in line
        assert not SYSTEMS.get(name).availability().ok
    asset = get_asset(BSRNN)
    (f,) = asset.files
    assert f.unpinned and asset.urls[f.name] == (
        "https://huggingface.co/lichenda/icassp_2026_urgent_baseline/resolve/main/bsrnn.ckpt")
    assert get_asset(FLOW).urls["flow_bsrnn.ckpt"].endswith("/icassp_2026_urgent_baseline/resolve/main/flow_bsrnn.ckpt")
    # a file that is not a checkpoint, added as the asset (its digest is recorded at install)
    junk = tmp_path / "bsrnn.ckpt"
    junk.write_bytes(b"\x00" * 64)
    asset.add(junk)
    with pytest.raises(ValueError, match=f"not a readable PyTorch checkpoint.*fix: urgentbench assets fetch {BSRNN}"):
        SYSTEMS.get(BSRNN).build().setup()
    # a good file, then changed in place: corrupt, with the fix commands
    good = write_lightning(tmp_path / "good.ckpt", ref, BSRNN, small_model(BSRNN))
    asset.add(good)
    system = SYSTEMS.get(BSRNN).build()
    system.setup()
    assert system.provenance()["weights"]["source"] == "asset"
    (asset.directory() / f.name).write_bytes(junk.read_bytes())
    monkeypatch.setattr(asset_module, "_VERIFIED", {})
    with pytest.raises(AssetError, match=f"corrupt .*urgentbench assets fetch {BSRNN}"):
        SYSTEMS.get(BSRNN).build().setup()


@pytest.mark.slow
def test_demo_run_with_a_random_checkpoint(tmp_path, monkeypatch, capsys, ref):
    """``urgentbench run`` end to end on two demo utterances (44.1 kHz) with --system-args checkpoint=PATH.

    The checkpoint is in the official layout with a smaller network (48 channels, 2 layers;
    the size is read from the checkpoint): the official 38 M network takes about 11 s per 4-s
    demo utterance on this machine's CPU.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("URGENTBENCH_THREADS", "1")
    path = write_lightning(tmp_path / "bsrnn.ckpt", ref, BSRNN, small_model(BSRNN, channels=48, layers=2))
    code = main(["-q", "run", "--system", BSRNN, "--suite", "demo", "--system-args", f"checkpoint={path}",
                 "--limit", "2", "--metrics", "pesq", "--jobs", "1"])
    assert code == 0, capsys.readouterr()
    with sqlite3.connect(tmp_path / "results" / "results.sqlite") as db:
        rows = db.execute("SELECT system, metric, error, result_json FROM scores").fetchall()
    assert len(rows) == 2 and all(r[:3] == (BSRNN, "pesq", None) and "pesq" in r[3] for r in rows)
