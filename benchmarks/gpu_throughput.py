"""Benchmark: throughput of the model metrics on one device, batched, with real-size random-init models.

The question (issue 19): can one GPU score an URGENT-sized evaluation set (1000
utterances, the full model-metric set) in under 10 minutes? naba89/fast_urgent_eval does
it in under 10 minutes on four A100s. Model weights cannot be copied to the GPU machine,
so every checkpoint is built here with random weights and the real architecture and size
(the builders of the metrics' own tests, at the published sizes): UTMOS22 strong, SCOREQ
NR (wav2vec 2.0 base), mHuBERT-147 (HuBERT base, layer 8), the wav2vec 2.0 large LV-60
phoneme recogniser of LPS (24 layers, its head sized to the test vocabulary), RawNet3,
emotion2vec base. NISQA uses its real weights (``../shared/assets/nisqa/nisqa.tar``) and
DNSMOS its packaged ONNX models, when present; Whisper uses the ``whisper-base-ct2`` asset
of the default cache when installed (faster-whisper), else a random-init openai-whisper
base (which decodes to its token limit: a worst case). Random weights cost the same
arithmetic as trained ones for every encoder; only Whisper's decoding length depends on
the weights.

Utterances are synthetic and speech-like (harmonic voiced segments with syllable-rate
envelopes and pauses, plus noise at 5-20 dB SNR as the "enhanced" signal), with lengths
and rates drawn like an URGENT non-blind set: log-normal durations (median 6 s) clipped to
2-20 s, rates from 8 to 48 kHz. Each metric gets them at its working rate (resampled
before timing, as the runner resamples once per rate) in batches of ``--batch``
utterances through ``compute_batch``, the runner's path; set-up and one warm-up
utterance are not timed. The script prints utterances/s per metric and the projected
time for 1000 utterances, and writes a JSON to ``benchmarks/results/``.

    .venv/bin/python benchmarks/gpu_throughput.py --device cpu --n 8
    .venv/bin/python benchmarks/gpu_throughput.py --device cuda          # on a GPU machine: N=1000

The GPU figure is for when a GPU machine is available (a CUDA build of torch, onnxruntime-gpu
for DNSMOS, CTranslate2 with CUDA for faster-whisper); this repository records the CPU run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the checkpoint builders of the metrics' own tests

from urgentbench.audio import resample  # noqa: E402
from urgentbench.metrics import get_metric_class  # noqa: E402
from urgentbench.metrics.base import BatchItem  # noqa: E402

logger = logging.getLogger("gpu_throughput")

#: The model metrics timed, in URGENT's order, with the options the benchmark builds them with.
METRICS = ("dnsmos", "nisqa", "utmos", "scoreq", "speechbertscore", "lps", "spk_sim", "emo_sim", "wer")
#: Rates of the synthetic utterances and their weights (URGENT mixes 8-48 kHz sources).
RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
RATE_WEIGHTS = (0.10, 0.30, 0.10, 0.10, 0.10, 0.15, 0.15)
SHARED_NISQA = ROOT.parent / "shared" / "assets" / "nisqa" / "nisqa.tar"


# --------------------------------------------------------------------------- synthetic utterances


def synthetic_utterance(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """(enhanced, clean reference, rate): speech-like voiced segments and pauses, noise at 5-20 dB SNR."""
    rate = int(rng.choice(RATES, p=RATE_WEIGHTS))
    seconds = float(np.clip(rng.lognormal(np.log(6.0), 0.5), 2.0, 20.0))
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = rng.uniform(90, 240) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.2, 0.8) * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    formants = rng.uniform([500, 1200, 2400], [900, 2000, 3200])
    voiced = np.zeros(n)
    for k in range(1, 40):
        freq = k * f0.mean()
        if freq >= rate / 2 - 200:
            break
        gain = sum(np.exp(-(((freq - f) / 250.0) ** 2)) for f in formants) + 0.05
        voiced += gain / k * np.sin(k * phase)
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, None) ** 2
    pauses = (np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, 6)) > -0.7).astype(float)
    clean = voiced * syllables * pauses
    clean = 0.1 * clean / (np.max(np.abs(clean)) + 1e-9)
    noise = rng.standard_normal(n)
    snr = rng.uniform(5, 20)
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr / 10))
    return (clean + noise).astype(np.float32), clean.astype(np.float32), rate


def synthetic_set(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """``n`` synthetic utterances (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    return [synthetic_utterance(rng) for _ in range(n)]


# --------------------------------------------------------------------------- real-size checkpoints


@contextlib.contextmanager
def real_size_assets(cache: Path, work: Path) -> Iterator[dict[str, dict]]:
    """Install random-init checkpoints of the real sizes into ``cache`` (``URGENTBENCH_CACHE``).

    Yields:
        Metric name -> extra options (a ``model_dir`` or a model file) it is built with;
        a metric absent from the mapping could not be prepared (its reason logged).
    """
    import torch
    from conftest import CODE_ASSETS
    from test_emotion_similarity import _fairseq_cfg, _published, _seeded
    from test_scoreq import _random_state
    from test_ssl_metrics import write_tiny_phoneme_ctc
    from test_utmos_rawnet3 import _install_rawnet3, _seeded_state
    from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2ForCTC

    from urgentbench.assets import AssetFile, get_asset, register_asset
    from urgentbench.metrics._emotion2vec_net import Emotion2vec, Emotion2vecConfig
    from urgentbench.metrics._rawnet3_net import RawNet3
    from urgentbench.metrics._utmos_net import UTMOS22Strong

    default_assets = Path.home() / ".cache" / "urgentbench" / "assets"
    (cache / "assets").mkdir(parents=True, exist_ok=True)
    for name in (*CODE_ASSETS, "whisper-base-ct2"):  # upstream code and the real Whisper base, when installed
        for suffix in ("", ".code"):
            source = default_assets / f"{name}{suffix}"
            if source.is_dir() and not (cache / "assets" / source.name).exists():
                (cache / "assets" / source.name).symlink_to(source, target_is_directory=True)
    options: dict[str, dict] = {"dnsmos": {}}
    torch.manual_seed(0)
    if SHARED_NISQA.is_file():
        get_asset("nisqa-v2").add(SHARED_NISQA)
        options["nisqa"] = {}
    else:
        logger.warning("nisqa skipped: %s not found", SHARED_NISQA)

    torch.save(UTMOS22Strong().eval().state_dict(), work / "utmos22_strong_step7459_v1.pt")
    get_asset("utmos22-strong").add(work / "utmos22_strong_step7459_v1.pt")
    options["utmos"] = {}

    torch.save(_random_state({}), work / "adapt_nr_telephone.pt")  # ScoreqNR's defaults: wav2vec 2.0 base
    get_asset("scoreq-natural-nr").add(work / "adapt_nr_telephone.pt")
    options["scoreq"] = {}

    HubertModel(HubertConfig()).eval().save_pretrained(work / "mhubert")  # HuBERT base = mHuBERT-147's size
    options["speechbertscore"] = {"model_dir": str(work / "mhubert")}

    ctc = write_tiny_phoneme_ctc(work / "phoneme-ctc")  # vocabulary and preprocessor files
    large = Wav2Vec2Config.from_pretrained(ctc)
    large.update({"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
                  "conv_dim": (512,) * 7, "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16})
    (ctc / "pytorch_model.bin").unlink()
    Wav2Vec2ForCTC(large).eval().save_pretrained(ctc)  # wav2vec 2.0 large LV-60 (do_stable_layer_norm)
    options["lps"] = {"model_dir": str(ctc)}

    state = _seeded_state(RawNet3())
    state["loss.weight"] = torch.randn(3 * 10, 192)
    _install_rawnet3(work, state)
    options["spk_sim"] = {"model": "rawnet3"}

    emo = get_asset("emotion2vec-base")
    src = work / "emotion2vec_base.pt"
    cfg = _fairseq_cfg(tiny=False)
    torch.save(_published(_seeded(Emotion2vec(Emotion2vecConfig.from_fairseq(cfg)).state_dict()), cfg), src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    register_asset(dataclasses.replace(emo, files=(AssetFile(src.name, digest, src.stat().st_size),)),
                   aliases=("emotion2vec_base",), override=True)
    try:
        get_asset("emotion2vec-base").add(src)
        options["emo_sim"] = {}
        if (cache / "assets" / "whisper-base-ct2").exists():
            options["wer"] = {}
        else:
            options["wer"] = {"backend": "openai-whisper", "model": str(_random_whisper(work))}
        yield options
    finally:
        register_asset(emo, aliases=("emotion2vec_base",), override=True)


def _random_whisper(work: Path) -> Path:
    """A random-init openai-whisper checkpoint with Whisper base's dimensions."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=512, n_audio_head=8, n_audio_layer=6,
                           n_vocab=51865, n_text_ctx=448, n_text_state=512, n_text_head=8, n_text_layer=6)
    path = work / "whisper-base-random.pt"
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": Whisper(dims).state_dict()}, path)
    return path


# --------------------------------------------------------------------------- timing


def time_metric(name: str, options: dict, device: str, utterances: list, batch: int) -> dict:
    """Set up ``name`` on ``device`` and time ``compute_batch`` over ``utterances`` in batches of ``batch``."""
    cls = get_metric_class(name)
    metric = cls(**options, device=device)
    start = time.perf_counter()
    metric.setup()
    setup_s = time.perf_counter() - start
    items = []
    for est, ref, rate in utterances:
        working = metric.working_rate(rate)
        if working != rate:
            est, ref = resample(est, rate, working), resample(ref, rate, working)
        items.append(BatchItem(est.astype(np.float32), ref.astype(np.float32), working, "hello world"))
    metric.compute_batch(items[:1])  # warm-up (kernels, caches), not timed
    start = time.perf_counter()
    failed, reasons = 0, set()
    for k in range(0, len(items), batch):
        for result in metric.compute_batch(items[k : k + batch]):
            if isinstance(result, Exception):
                failed += 1
                reasons.add(str(result)[:120])
    seconds = time.perf_counter() - start
    rate = len(items) / seconds
    return {
        "utterances": len(items), "failed": failed, "failure_reasons": sorted(reasons)[:3], "seconds": round(seconds, 3),
        "utterances_per_s": round(rate, 3), "projected_1000_s": round(1000 / rate, 1), "setup_s": round(setup_s, 2),
        "metric_batch_size": cls.batch_size, "device": metric.provenance().get("device", device),
        "options": {k: v for k, v in options.items() if k != "model_dir"},
    }


def device_name(device: str) -> str:
    """The card's name for CUDA, else the CPU's description."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.machine()} {platform.processor() or 'CPU'}, {os.cpu_count()} cores"


def main() -> int:
    """Run the benchmark; non-zero when a metric could not be set up."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--n", type=int, default=1000, help="synthetic utterances (default 1000)")
    parser.add_argument("--batch", type=int, default=16, help="utterances per compute_batch call (the runner's batch)")
    parser.add_argument("--metrics", default=",".join(METRICS), help="comma-separated subset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/gpu_throughput-DEVICE-N.json)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    import torch

    torch.manual_seed(args.seed)
    utterances = synthetic_set(args.n, args.seed)
    audio_s = sum(len(e) / r for e, _, r in utterances)
    print(f"{args.n} synthetic utterances, {audio_s:.0f} s of audio ({audio_s / args.n:.1f} s mean); device "
          f"{args.device}: {device_name(args.device)}; torch {torch.__version__}")
    results: dict[str, dict] = {}
    errors = 0
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        os.environ["URGENTBENCH_CACHE"] = str(cache)
        work = Path(tmp) / "work"
        work.mkdir()
        with real_size_assets(cache, work) as options:
            for name in [m.strip() for m in args.metrics.split(",") if m.strip()]:
                if name not in options:
                    results[name] = {"skipped": "no checkpoint available"}
                    continue
                try:
                    results[name] = time_metric(name, options[name], args.device, utterances, args.batch)
                except Exception as exc:  # one metric's failure is reported, the others still run
                    errors += 1
                    results[name] = {"error": " ".join(str(exc).split())[:300]}
                r = results[name]
                if "utterances_per_s" in r:
                    print(f"  {name:16s} {r['utterances_per_s']:9.2f} utt/s  1000 utt: {r['projected_1000_s']:8.1f} s"
                          f"  (failed {r['failed']}, set-up {r['setup_s']:.1f} s)")
                else:
                    print(f"  {name:16s} {r}")
    total = sum(r.get("projected_1000_s", 0.0) for r in results.values())
    print(f"projected time for 1000 utterances, every metric above in turn: {total:.0f} s ({total / 60:.1f} min)")
    out = args.out or ROOT / "benchmarks" / "results" / f"gpu_throughput-{args.device.replace(':', '')}-{args.n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "device": args.device, "device_name": device_name(args.device), "n": args.n, "batch": args.batch,
        "seed": args.seed, "audio_seconds": round(audio_s, 1), "torch": torch.__version__,
        "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"), "metrics": results,
        "projected_1000_s_total": round(total, 1),
    }
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
