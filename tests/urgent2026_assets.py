"""Tiny random-init checkpoints for every model asset of the ``urgent2026`` protocol.

Each builder is the one the metric's own tests use (imported from those test modules), so a
checkpoint here has the real architecture and published file layout at a small size where
the architecture allows it. NISQA is the only real checkpoint: its weights live in
``../shared/assets/nisqa`` (CI provides them). DNSMOS, PESQ and ESTOI need no asset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

#: Metric of the protocol -> the model asset it loads (the one its skip line names).
MODEL_ASSETS = {
    "nisqa": "nisqa-v2",
    "utmos": "utmos22-strong",
    "scoreq": "scoreq-natural-nr",
    "speechbertscore": "mhubert-147",
    "lps": "wav2vec2-lv-60-espeak-cv-ft",
    "spk_sim": "rawnet3-voxcelebs12",
    "emo_sim": "emotion2vec-base",
    "lid_acc": "owsm-ctc-v4-1b",
    "owsm_wer": "owsm-v3.1-ebf",
}


@contextlib.contextmanager
def tiny_urgent2026_assets(cache: Path, work: Path) -> Iterator[dict[str, Path]]:
    """Install a checkpoint for every asset of :data:`MODEL_ASSETS` into ``cache`` (``URGENTBENCH_CACHE``).

    ``URGENTBENCH_CACHE`` must already point at ``cache``. The upstream-code assets
    (ESPnet's wheel, NISQA's code) are linked from the default cache as
    ``conftest.seed_code_assets`` does. emotion2vec's pin (a published sha256) is swapped
    for the tiny file's while the context is open and restored afterwards.

    Yields:
        Asset name -> its installed folder.
    """
    import torch
    from conftest import seed_code_assets
    from test_emotion_similarity import _fairseq_cfg, _published, _seeded
    from test_nisqa_assets import shared_file
    from test_owsm import write_tiny_owsm
    from test_scoreq import SMALL, _random_state
    from test_ssl_metrics import write_tiny_hubert, write_tiny_phoneme_ctc
    from test_utmos_rawnet3 import _install_rawnet3, _seeded_state

    from urgentbench.assets import AssetFile, get_asset, register_asset
    from urgentbench.metrics._emotion2vec_net import Emotion2vec, Emotion2vecConfig
    from urgentbench.metrics._rawnet3_net import RawNet3
    from urgentbench.metrics._utmos_net import UTMOS22Strong

    seed_code_assets(cache)
    work.mkdir(parents=True, exist_ok=True)
    installed: dict[str, Path] = {"nisqa-v2": get_asset("nisqa-v2").add(shared_file("nisqa.tar"))}

    torch.manual_seed(0)  # UTMOS22 strong has one size: the published one (random weights)
    torch.save(UTMOS22Strong().eval().state_dict(), work / "utmos22_strong_step7459_v1.pt")
    installed["utmos22-strong"] = get_asset("utmos22-strong").add(work / "utmos22_strong_step7459_v1.pt")

    torch.save(_random_state(SMALL), work / "adapt_nr_telephone.pt")
    installed["scoreq-natural-nr"] = get_asset("scoreq-natural-nr").add(work / "adapt_nr_telephone.pt")

    installed["mhubert-147"] = get_asset("mhubert-147").add(write_tiny_hubert(work / "mhubert"))
    lps = "wav2vec2-lv-60-espeak-cv-ft"
    installed[lps] = get_asset(lps).add(write_tiny_phoneme_ctc(work / "phoneme-ctc"))

    rawnet_state = _seeded_state(RawNet3())
    rawnet_state["loss.weight"] = torch.randn(3 * 10, 192)  # the training loss's centres, as published
    installed["rawnet3-voxcelebs12"] = _install_rawnet3(work, rawnet_state)

    for kind, name in (("owsm", "owsm-v3.1-ebf"), ("owsm_ctc", "owsm-ctc-v4-1b")):
        installed[name] = get_asset(name).add(write_tiny_owsm(work / kind, kind, published=True))

    emo = get_asset("emotion2vec-base")
    src = work / "emotion2vec_base.pt"
    cfg = _fairseq_cfg()
    torch.save(_published(_seeded(Emotion2vec(Emotion2vecConfig.from_fairseq(cfg)).state_dict()), cfg), src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    patched = dataclasses.replace(emo, files=(AssetFile("emotion2vec_base.pt", digest, src.stat().st_size),))
    register_asset(patched, aliases=("emotion2vec_base",), override=True)
    try:
        installed["emotion2vec-base"] = patched.add(src)
        yield installed
    finally:
        register_asset(emo, aliases=("emotion2vec_base",), override=True)
