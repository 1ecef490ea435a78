"""WER/CER with the openai-whisper backend: pinned checkpoint assets, options, and a random tiny model end to end."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from conftest import TRANSCRIPTS, load_speech

from urgentbench.assets import OPENAI_WHISPER, AssetError, DownloadSource, get_asset
from urgentbench.metrics import get_metric_class
from urgentbench.metrics.asr import error_counts
from urgentbench.metrics.whisper_backends import NoRepeatNGram, banned_next_tokens

SR = 16000


def test_asset_pins_equal_whispers_model_table():
    """Every entry of whisper._MODELS is an asset with the URL's sha256, and nothing else is."""
    import whisper

    source = inspect.getsource(whisper._download)
    # whisper itself treats the URL's second-to-last path part as the file's full sha256
    assert 'expected_sha256 = url.split("/")[-2]' in source
    assert "hashlib.sha256(model_bytes).hexdigest() != expected_sha256" in source
    canonical = set()
    for size, url in whisper._MODELS.items():
        asset = get_asset(f"openai-whisper-{size}")  # "large" and "turbo" are aliases
        canonical.add(asset.name)
        (pinned,) = asset.files
        sha256, filename = url.split("/")[-2:]
        assert len(sha256) == 64 and int(sha256, 16) >= 0
        assert (pinned.name, pinned.sha256) == (filename, sha256)
        (download,) = [s for s in asset.sources if isinstance(s, DownloadSource)]
        assert download.urls[filename] == (url,)
    assert canonical == {a.name for a in OPENAI_WHISPER.values()}
    assert get_asset("openai-whisper-large").name == "openai-whisper-large-v3"
    assert get_asset("openai-whisper-turbo").name == "openai-whisper-large-v3-turbo"


def test_backend_and_model_size_options():
    cls = get_metric_class("wer")
    name = cls.model_name
    defaults = cls.default_options()
    assert name(defaults) == "whisper-base-ct2"  # the offline default stays Whisper base, faster-whisper
    assert name({**defaults, "backend": "openai-whisper"}) == "openai-whisper-base"
    assert name({**defaults, "backend": "openai-whisper", "model_size": "small.en"}) == "openai-whisper-small.en"
    assert name({**defaults, "backend": "openai-whisper", "model": "/x/ckpt.pt"}) == "/x/ckpt.pt"
    assert [a.name for a in cls.assets_for({"backend": "openai-whisper", "model_size": "turbo"})] == [
        "openai-whisper-large-v3-turbo"
    ]
    assert cls.assets_for({"backend": "openai-whisper", "model": "/x/ckpt.pt"}) == ()
    with pytest.raises(ValueError, match="backend must be one of faster-whisper, openai-whisper"):
        name({**defaults, "backend": "whisperx"})
    with pytest.raises(ValueError, match="openai-whisper has no model size 'huge'"):
        name({**defaults, "backend": "openai-whisper", "model_size": "huge"})
    with pytest.raises(ValueError, match="only 'base'.*backend=openai-whisper"):
        name({**defaults, "model_size": "small"})
    assert "only 'base'" in cls.availability({"model_size": "small"}).summary()


def test_missing_checkpoint_makes_the_metric_unavailable_with_fix_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    cls = get_metric_class("wer")
    fixes = (
        "urgentbench assets fetch openai-whisper-base",
        "urgentbench assets add openai-whisper-base --from FILE",
    )
    avail = cls.availability({"backend": "openai-whisper"})
    assert not avail.ok
    assert "asset 'openai-whisper-base' is missing" in avail.summary()
    assert all(fix in avail.summary() for fix in fixes)
    metric = cls(backend="openai-whisper")
    with pytest.raises(AssetError) as err:
        metric.setup()
    assert all(fix in str(err.value) for fix in fixes)
    assert not (tmp_path / "cache" / "assets" / "openai-whisper-base").exists()  # nothing downloaded


def test_no_repeat_ngram_filter():
    assert banned_next_tokens([1, 2, 3, 1, 2], 3) == {3}
    assert banned_next_tokens([1, 2, 1, 2, 1], 3) == {2}
    assert banned_next_tokens([5, 6, 7], 3) == set()
    assert banned_next_tokens([4], 3) == set()
    assert banned_next_tokens([1, 2, 1], 2) == {2}
    assert banned_next_tokens([1, 2], 1) == {1, 2}
    import torch

    sample_begin = 2
    tokens = torch.tensor([[9, 9, 1, 2, 3, 1, 2], [9, 9, 4, 5, 6, 7, 8]])
    logits = torch.zeros(2, 10)
    NoRepeatNGram(3, sample_begin).apply(logits, tokens)
    assert torch.isinf(logits[0, 3]) and int(torch.isinf(logits).sum()) == 1
    with pytest.raises(ValueError):
        NoRepeatNGram(0, 0)


def _tiny_checkpoint(path, seed: int = 0) -> None:
    """A randomly initialised Whisper of tiny dimensions (multilingual vocabulary) in OpenAI's format."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(seed)
    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=32,
        n_audio_head=2,
        n_audio_layer=1,
        n_vocab=51865,
        n_text_ctx=448,
        n_text_state=32,
        n_text_head=2,
        n_text_layer=1,
    )
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": Whisper(dims).state_dict()}, path)


@pytest.mark.slow
def test_random_tiny_openai_whisper_runs_through_the_backend(tmp_path):
    from urgentbench.assets import sha256_file

    checkpoint = tmp_path / "tiny-random.pt"
    _tiny_checkpoint(checkpoint)
    metric = get_metric_class("wer")(backend="openai-whisper", model=str(checkpoint), beam_size=2, cpu_threads=1)
    speech = load_speech("a", SR)[: 2 * SR]
    result = metric.compute(speech, None, SR, transcript=TRANSCRIPTS["a"])
    hypothesis = result["hypothesis"]
    assert isinstance(hypothesis, str) and hypothesis  # garbage, but a transcript
    normalised = metric.normalize(hypothesis)
    assert normalised == " ".join(normalised.split()) and normalised == normalised.lower()
    counts = error_counts(metric.normalize(TRANSCRIPTS["a"]), normalised)
    assert {k: result[k] for k in counts} == counts
    assert result["wer"] == counts["wer_edits"] / counts["wer_ref_words"] > 0
    # deterministic (temperature 0, beam search): the same transcript again
    assert metric.transcribe(speech) == hypothesis
    prov = metric.provenance()
    assert prov["backend"] == "openai-whisper"
    assert prov["model"] == {"path": str(checkpoint.resolve()), "sha256": sha256_file(checkpoint)}
    faster = get_metric_class("wer")(beam_size=2).provenance()["decoding"]
    assert {k: v for k, v in faster.items() if k != "compute_type"} == prov["decoding"]


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    """Checkpoints are loaded with weights_only=True: arbitrary pickled objects are refused."""
    import pickle

    import torch

    bad = tmp_path / "evil.pt"
    torch.save({"dims": {}, "model_state_dict": {}, "payload": np.random.default_rng(0)}, bad)
    metric = get_metric_class("wer")(backend="openai-whisper", model=str(bad))
    with pytest.raises(pickle.UnpicklingError):
        metric.setup()
    with pytest.raises(ValueError, match="not a .pt checkpoint for the openai-whisper backend"):
        get_metric_class("wer")(backend="openai-whisper", model=str(tmp_path / "missing.pt")).setup()
