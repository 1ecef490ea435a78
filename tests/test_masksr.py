"""MaskSR / MaskSR2: model, training recipe and systems, with tiny random codec and teacher (transformers configs)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from conftest import load_speech, white_noise_mix  # noqa: E402

from urgentbench.systems.masksr.checkpoint import (  # noqa: E402
    CheckpointError,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from urgentbench.systems.masksr.codec import Codec  # noqa: E402
from urgentbench.systems.masksr.configs import (  # noqa: E402
    CARD_BEGIN,
    CARD_END,
    card_block,
    get_config,
    load_config,
)
from urgentbench.systems.masksr.decode import guided_logits, maskgit_decode  # noqa: E402
from urgentbench.systems.masksr.encoder import compressed_magnitude  # noqa: E402
from urgentbench.systems.masksr.mlm import cosine_mask  # noqa: E402
from urgentbench.systems.masksr.model import MaskSR  # noqa: E402
from urgentbench.systems.masksr.semantic import HubertTeacher, align_frames, fit_kmeans  # noqa: E402

SR = 44100
HOP = 512
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def codec():
    return Codec.build(get_config("masksr", "tiny").codec)


@pytest.fixture(scope="module")
def utterance():
    """One second of fixture speech (a multiple of the hop), its noisy version and its 16 kHz copy."""
    from urgentbench.audio import resample

    clean = load_speech("a", SR)[SR // 2 : SR // 2 + 86 * HOP].astype(np.float32)
    noisy = white_noise_mix(clean, 5.0, seed=3)
    return torch.from_numpy(noisy)[None], torch.from_numpy(clean)[None], torch.from_numpy(resample(clean, SR, 16000))[None]


def _model(variant: str = "masksr2", seed: int = 0) -> MaskSR:
    torch.manual_seed(seed)
    return MaskSR(get_config(variant, "tiny"))


def _write_speech(folder: Path) -> Path:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("a", "b"):
        sf.write(folder / f"{name}.flac", load_speech(name, 22050), 22050)
    return folder


# ---------------------------------------------------------------------------- model pieces


def test_compressed_magnitude_matches_numpy_stft(utterance):
    noisy = utterance[0]
    feats = compressed_magnitude(noisy)
    assert feats.shape == (1, noisy.shape[-1] // HOP, 1025)
    x = np.pad(noisy[0].numpy().astype(np.float64), 1024)  # centred frames, zero padding
    window = np.hanning(2049)[:2048]  # periodic Hann, as torch.hann_window
    for t in (0, 5, 40):
        ref = np.abs(np.fft.rfft(x[t * HOP : t * HOP + 2048] * window)) ** 0.3
        np.testing.assert_allclose(feats[0, t].numpy(), ref, rtol=2e-3, atol=2e-3)


def test_frames_of_encoder_codec_and_alignment(codec, utterance):
    noisy, clean, clean16 = utterance
    codes = codec.encode(clean)
    assert codes.shape == (1, 9, 86) and codes.dtype == torch.long and int(codes.max()) < 1024
    assert codec.decode(codes).shape == clean.shape
    with pytest.raises(ValueError, match="multiple of the hop"):
        codec.encode(clean[:, :-1])
    # teacher frame k is centred on (320 k + 200) / 16000 s; encoder frame t on 512 t / 44100 s
    index = torch.arange(49, dtype=torch.float64)[None, :, None]
    aligned = align_frames(index, 86)
    expected = np.clip((np.arange(86) * HOP / SR * 16000 - 200) / 320, 0, 48)
    np.testing.assert_allclose(aligned[0, :, 0].numpy(), expected, atol=1e-9)
    nearest = align_frames(torch.arange(49)[None], 86, mode="nearest")
    np.testing.assert_array_equal(nearest[0].numpy(), np.round(expected).astype(int))


def test_forward_backward_shapes(codec, utterance):
    noisy, clean, clean16 = utterance
    model = _model("masksr2")
    teacher = HubertTeacher.build(model.cfg.semantic)
    feats = teacher(clean16)
    assert feats.shape == (1, (clean16.shape[-1] - 400) // 320 + 1, 16)
    model.semantic.set_centroids(fit_kmeans(feats[0], 8, seed=1))
    codes = codec.encode(clean)
    sem = model.semantic.targets(feats, 86, HOP, SR)
    assert sem.shape == (1, 86) and int(sem.max()) < 8
    cond = model.condition(noisy)
    assert cond.shape == (1, 86, 32)
    logits = model.lm(codes, cond)
    assert logits.shape == (1, 9, 86, 1024)
    assert model.semantic(cond).shape == (1, 86, 8)
    out = model(noisy, codes, sem)
    assert set(out) == {"loss", "mlm_loss", "semantic_loss", "accuracy", "masked"}
    total = float((out["mlm_loss"] + out["semantic_loss"]).detach())
    assert math.isclose(float(out["loss"].detach()), total, rel_tol=1e-6)
    out["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    # MaskSR has no head and refuses semantic targets; continuous targets for MaskSR2 "layer"
    masksr = _model("masksr")
    assert masksr.semantic is None
    with pytest.raises(ValueError, match="no semantic head"):
        masksr(noisy, codes, sem)
    cfg = load_config("masksr2", "tiny", overrides={"semantic.target": "layer"})
    layer_model = MaskSR(cfg)
    target = layer_model.semantic.targets(HubertTeacher.build(cfg.semantic)(clean16), 86, HOP, SR)
    assert target.shape == (1, 86, 16)
    assert float(layer_model(noisy, codes, target)["semantic_loss"].detach()) > 0


def test_cosine_mask_schedule():
    g = torch.Generator().manual_seed(0)
    mask = cosine_mask(4000, 9, 20, generator=g)
    fractions = mask.float().mean(dim=(1, 2))
    assert float(fractions.min()) >= 1 / 180  # at least one position
    # E[cos(pi r / 2)] for r ~ U(0, 1) is 2 / pi
    assert abs(float(fractions.mean()) - 2 / math.pi) < 0.02


def test_kmeans_recovers_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = torch.cat([c + 0.1 * torch.randn(200, 2, generator=g) for c in centres])
    found = fit_kmeans(x, 3, seed=2)
    order = found[:, 0].argsort(descending=False)
    dist = torch.cdist(centres, found).min(dim=1).values
    assert float(dist.max()) < 0.05, (found[order], dist)


# ---------------------------------------------------------------------------- decoding


def test_decode_shapes_known_tokens_and_cfg(utterance):
    noisy = utterance[0]
    model = _model("masksr").eval()
    torch.manual_seed(5)
    with torch.no_grad():
        model.lm.null_cond.normal_()
        cond = model.condition(noisy)
    lm = model.lm
    tokens = maskgit_decode(lm, cond, steps=4, generator=torch.Generator().manual_seed(1))
    assert tokens.shape == (1, 9, 86) and tokens.dtype == torch.long
    assert int(tokens.min()) >= 0 and int(tokens.max()) < 1024
    again = maskgit_decode(lm, cond, steps=4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(tokens, again)
    # known tokens stay as given
    known = torch.full_like(tokens, lm.mask_id)
    known[:, :, :10] = tokens[:, :, :10].flip(0).roll(1, dims=2)
    out = maskgit_decode(lm, cond, steps=3, known=known, generator=torch.Generator().manual_seed(2))
    assert torch.equal(out[:, :, :10], known[:, :, :10]) and bool((out < 1024).all())
    # classifier-free guidance: (1 + w) l_cond - w l_uncond
    masked = torch.full_like(tokens, lm.mask_id)
    with torch.no_grad():
        plain = lm(masked, cond)
        uncond = lm(masked, cond, torch.ones(1, dtype=torch.bool))
        guided = guided_logits(lm, masked, cond, 1.5)
    assert torch.allclose(guided_logits(lm, masked, cond, 0.0), plain)
    torch.testing.assert_close(guided, 2.5 * plain - 1.5 * uncond, rtol=1e-4, atol=1e-4)
    assert float((guided - plain).abs().max()) > 1e-3
    with pytest.raises(ValueError, match="steps"):
        maskgit_decode(lm, cond, steps=0)


# ---------------------------------------------------------------------------- training


def test_few_steps_lower_the_loss(codec, utterance):
    noisy, clean, _ = utterance
    codes = codec.encode(clean)
    model = _model("masksr")
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)

    def loss() -> float:
        with torch.no_grad():
            return float(model(noisy, codes, generator=torch.Generator().manual_seed(7))["loss"])

    before = loss()
    for step in range(5):
        out = model(noisy, codes, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert loss() < before - 0.1


@pytest.mark.slow
def test_tiny_model_overfits_one_utterance(codec, utterance):
    noisy, clean, _ = utterance
    n = 16 * HOP
    noisy, clean = noisy[:, :n], clean[:, :n]
    codes = codec.encode(clean)
    model = _model("masksr")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(OVERFIT_STEPS):
        out = model(noisy, codes, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        losses = [float(model(noisy, codes, generator=torch.Generator().manual_seed(10**6 + i))["loss"]) for i in range(4)]
        assert np.mean(losses) < 1.5, losses
        tokens = maskgit_decode(model.lm, model.condition(noisy), steps=4, temperature=0, guidance_scale=0)
    assert float((tokens == codes).float().mean()) > 0.9


OVERFIT_STEPS = 300


def test_checkpoint_round_trips_bit_exactly(tmp_path, codec, utterance):
    noisy, clean, _ = utterance
    codes = codec.encode(clean)
    cfg = get_config("masksr", "tiny")
    model = _model("masksr")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(2):
        out = model(noisy, codes)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    first = save_checkpoint(tmp_path / "a.safetensors", cfg, model, 2, optimizer=opt, codec=codec, extra={"x": 1})
    ckpt = load_checkpoint(first)
    assert ckpt.step == 2 and ckpt.extra == {"x": 1} and ckpt.config.to_dict() == cfg.to_dict()
    fresh = _model("masksr", seed=9)
    fresh.load_state_dict(ckpt.model)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    fresh_opt.load_state_dict(ckpt.optimizer)
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    fresh_codec = Codec.build(ckpt.config.codec, ckpt.codec)
    for a, b in zip(codec.model.state_dict().values(), fresh_codec.model.state_dict().values()):
        assert torch.equal(a, b)
    second = save_checkpoint(tmp_path / "b.safetensors", ckpt.config, fresh, 2, optimizer=fresh_opt,
                             codec=fresh_codec, extra={"x": 1})
    assert first.read_bytes() == second.read_bytes()
    # one more optimizer step from both gives identical weights (the optimizer state is complete)
    for m, o in ((model, opt), (fresh, fresh_opt)):
        torch.manual_seed(3)
        out = m(noisy, codes)
        o.zero_grad()
        out["loss"].backward()
        o.step()
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(a, b)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        read_metadata(bad)


@pytest.mark.slow
def test_training_resumes_and_continues_the_step_count(tmp_path):
    from urgentbench.systems.masksr.train import train

    clean = _write_speech(tmp_path / "clean")
    cfg = get_config("masksr2", "tiny")
    out = tmp_path / "run"
    first = train(cfg, clean, None, out, max_steps=3, device="cpu")
    assert first["step"] == 3 and [r["step"] for r in first["losses"]] == [1, 2, 3]
    centroids = load_checkpoint(out / "checkpoints" / "step_00000003.safetensors").model["semantic.centroids"]
    second = train(cfg, clean, None, out, max_steps=5, device="cpu")
    assert second["step"] == 5 and [r["step"] for r in second["losses"]] == [4, 5]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(r["loss"]) and r["semantic_loss"] > 0 for r in log)
    last = load_checkpoint(out / "checkpoints" / "step_00000005.safetensors")
    assert last.step == 5 and last.optimizer is not None
    assert int(last.optimizer["state"][0]["step"]) == 5  # AdamW's own count continued too
    assert torch.equal(last.model["semantic.centroids"], centroids)  # fitted once, then kept
    assert load_checkpoint(out / "model.safetensors").optimizer is None
    with pytest.raises(FileExistsError, match="already holds checkpoints"):
        train(cfg, clean, None, out, max_steps=6, device="cpu", resume=False)


@pytest.mark.slow
def test_ddp_two_cpu_processes_gloo(tmp_path):
    clean = _write_speech(tmp_path / "clean")
    out = tmp_path / "run"
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_port", "29517", "-m", "urgentbench.cli", "-q", "train",
           "masksr", "--size", "tiny", "--clean", str(clean), "--steps", "2", "--out", str(out), "--device", "cpu"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 and r["step"] == 2 for r in ranks)
    assert ranks[0]["param_sha256"] == ranks[1]["param_sha256"]  # gradients were all-reduced
    assert load_checkpoint(out / "checkpoints" / "step_00000002.safetensors").step == 2


# ---------------------------------------------------------------------------- systems


def test_unavailable_without_checkpoint(tmp_path, monkeypatch):
    from urgentbench.requirements import MissingRequirementError
    from urgentbench.systems import SYSTEMS, build_system

    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path))
    for name, variant in (("masksr2-L", "masksr2"), ("masksr-S", "masksr")):
        summary = SYSTEMS.get(name).availability().summary()
        label = "MaskSR2" if variant == "masksr2" else "MaskSR"
        assert f"no public {label} checkpoint exists" in summary
        size = name[-1]
        assert f"urgentbench train {variant} --size {size}" in summary
        assert f"urgentbench assets add {name} --from" in summary and "checkpoint=PATH" in summary
    with pytest.raises(MissingRequirementError, match="no public MaskSR2 checkpoint"):
        build_system("masksr2-M")


def test_cards_list_every_hyperparameter():
    from urgentbench.systems import SYSTEMS

    for variant in ("masksr", "masksr2"):
        for size in "SML":
            card = SYSTEMS.get(f"{variant}-{size}").card
            text = Path(card.path).read_text()
            block = text[text.index(CARD_BEGIN) : text.index(CARD_END) + len(CARD_END)] + "\n"
            assert block == card_block(variant, size), "regenerate: python -m urgentbench.systems.masksr.configs --write-cards"
            assert card.sample_rate == SR and card.assets == [f"{variant}-{size}", "dac-44khz"]
            if size != "L":  # L (325 M parameters) is too big to build in a quick test
                assert card.parameters == sum(p.numel() for p in MaskSR(get_config(variant, size)).parameters())
            assert ("semantic.layer: 9  [paper" in block) == (variant == "masksr2")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    cfg = get_config("masksr2", "tiny")
    model = _model("masksr2")
    model.semantic.set_centroids(torch.randn(8, 16))
    save_checkpoint(path, cfg, model, 0, codec=Codec.build(cfg.codec))
    return path


def test_system_end_to_end_with_tiny_checkpoint(tiny_checkpoint, tmp_path, monkeypatch):
    from urgentbench.runner import run_system
    from urgentbench.systems import SYSTEMS

    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path))
    spec = SYSTEMS.get("masksr2-S")
    assert spec.availability({"checkpoint": str(tiny_checkpoint)}).ok  # no codec asset needed
    system = spec.build(checkpoint=str(tiny_checkpoint), steps=3)
    x = white_noise_mix(load_speech("b", 16000)[:16000 + 77], 10.0)
    y, _ = run_system(system, x, 16000, "fixture")  # resampled to 44.1 kHz and back
    assert y.shape == x.shape and np.isfinite(y).all() and np.abs(y).max() > 0
    prov = system.provenance()
    assert prov["weights"]["source"] == "checkpoint" and prov["weights"]["size"] == "tiny"
    assert prov["decode"]["steps"] == 3 and prov["decode"]["guidance_scale"] == 1.0
    # deterministic, and chunked generation keeps the length and continues the previous chunk's tokens
    x44 = np.asarray(white_noise_mix(load_speech("a", SR)[: int(1.7 * SR) + 5], 10.0), dtype=np.float32)
    a, rate = system.enhance(x44, SR)
    b, _ = system.enhance(x44, SR)
    assert rate == SR and a.shape == x44.shape and np.array_equal(a, b)
    chunked = spec.build(checkpoint=str(tiny_checkpoint), steps=2, chunk_seconds=0.6, overlap_seconds=0.2)
    chunked.setup()
    y2, _ = chunked.enhance(x44, SR)
    assert y2.shape == x44.shape and np.isfinite(y2).all()
    with pytest.raises(ValueError, match="needs masksr"):
        SYSTEMS.get("masksr-S").build(checkpoint=str(tiny_checkpoint)).setup()


def test_scoring_path_never_imports_training(tiny_checkpoint, tmp_path):
    """Building, setting up and running a MaskSR system loads no training code."""
    code = f"""
import json, sys, warnings, numpy as np
from urgentbench.systems import SYSTEMS
system = SYSTEMS.get("masksr2-S").build(checkpoint={str(tiny_checkpoint)!r}, steps=2)
system.setup()
y, rate = system.enhance(np.full(2000, 0.01, dtype=np.float32), {SR})
print(json.dumps([y.shape[0], rate, system.provenance()["weights"]["random_init"],
                  sorted(m for m in sys.modules if m.startswith("urgentbench.systems.masksr."))]))
"""
    env = {**os.environ, "URGENTBENCH_CACHE": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    n, rate, random_init, loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (n, rate) == (2000, SR)
    assert random_init == ["codec", "teacher"]  # the tiny config's random parts, read from the config
    assert "urgentbench.systems.masksr.system" in loaded and "urgentbench.systems.masksr.codec" in loaded
    assert "urgentbench.systems.masksr.train" not in loaded


def test_system_from_added_asset(tiny_checkpoint, tmp_path, monkeypatch):
    from urgentbench import assets as assets_mod
    from urgentbench.assets import add
    from urgentbench.systems import SYSTEMS

    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(assets_mod, "_VERIFIED", {})
    add("masksr2-S", tiny_checkpoint)
    assert SYSTEMS.get("masksr2-S").build().needed_assets() == ["masksr2-S", "dac-44khz"]
    system = SYSTEMS.get("masksr2-S").build(steps=2)
    system.setup()  # the asset's copy; the codec comes from the checkpoint itself
    assert system.provenance()["weights"]["source"] == "asset"
    assert system.enhance(np.zeros(1000, dtype=np.float32) + 0.01, SR)[0].shape == (1000,)
