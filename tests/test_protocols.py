"""URGENT editions as pinned protocols, and the rule that scores made with different checkpoints never mix."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from urgentbench.assets import Asset, AssetFile
from urgentbench.cli import main
from urgentbench.metrics import METRICS
from urgentbench.metrics.base import Metric, Output
from urgentbench.protocols import PROTOCOLS, MetricRef, Protocol, get_protocol
from urgentbench.registry import UnknownNameError
from urgentbench.report.leaderboard import build_leaderboard, summarize
from urgentbench.runner import MetricSpec, ProducerSpec, RunError, resolve_metrics, score_key
from urgentbench.store import ResultStore, ScoreRow
from urgentbench.suites import get_suite


def test_editions_follow_the_official_categories():
    p24, p25, p26 = (get_protocol(n) for n in ("urgent2024", "urgent2025", "urgent2026"))
    assert p24.ranked_outputs()["intrusive"] == ["pesq", "estoi", "sdr", "mcd", "lsd"]
    assert p26.ranked_outputs()["intrusive"] == ["pesq", "estoi"]  # SDR, MCD, LSD dropped in 2026
    assert "utmos" not in p24.ranked_outputs()["non-intrusive"]
    assert "utmos" in p25.ranked_outputs()["non-intrusive"]
    # 2024 ranks WER (WAcc), 2025 and later CER (CAcc)
    assert "wer" in p24.ranked_outputs()["downstream"] and "cer" not in p24.ranked_outputs()["downstream"]
    assert "cer" in p25.ranked_outputs()["downstream"] and "wer" not in p25.ranked_outputs()["downstream"]
    sbs = {p.name: dict(p.metric_specs()[[s.name for s in p.metric_specs()].index("speechbertscore")].options)
           for p in (p24, p25, p26)}
    assert sbs["urgent2024"] == {"model": "hubert-base", "layer": 8}
    assert sbs["urgent2025"] == sbs["urgent2026"] == {"model": "mhubert-147", "layer": 8}
    # what cannot be computed is said, never silently dropped
    assert all(not p.missing() for p in (p24, p25, p26))  # every ranked metric is computed
    assert not [r for p in (p24, p25, p26) for r in p.refs() if r.deviation]  # with the official model
    assert all(r.deviation for r in p26.missing())


@pytest.mark.parametrize("name", ["urgent2024", "urgent2025", "urgent2026"])
def test_every_computable_metric_exists_with_its_outputs_and_options(name):
    protocol = get_protocol(name)
    for spec in protocol.metric_specs():
        cls = METRICS.get(spec.name)
        unknown = set(dict(spec.options)) - set(cls.default_options())
        assert not unknown, f"{name}: {spec.name} has no option(s) {unknown}"
        cls(**dict(spec.options))  # the pinned options are accepted
    for ref in protocol.refs():
        if ref.computable:
            assert any(o.name == ref.output for o in METRICS.get(ref.metric).outputs), ref


def test_one_metric_pinned_twice_with_different_options_is_refused():
    bad = Protocol(
        "bad",
        "t",
        {"downstream": (MetricRef("wer", "wer", {"beam_size": 5}), MetricRef("cer", "wer", {"beam_size": 1}))},
    )
    with pytest.raises(ValueError, match="two option sets"):
        bad.metric_specs()


def test_unknown_protocol_suggests():
    with pytest.raises(UnknownNameError, match="urgent2025"):
        get_protocol("urgent2052")


def test_show_prints_checkpoints_and_deviations(capsys):
    assert main(["protocols", "show", "urgent2025"]) == 0
    out = capsys.readouterr().out
    assert "owsm-v3.1-ebf: " in out and "cer: metric owsm_wer (normalizer=whisper_basic, beam_size=5)" in out
    assert "deviation" not in out and "NOT COMPUTED" not in out
    assert main(["protocols", "show", "urgent2026"]) == 0
    out = capsys.readouterr().out
    for output, model in (("scoreq", "scoreq"), ("emo_sim", "emotion2vec"), ("lid_acc", "owsm_ctc_v4_1B"), ("cer", "OWSM v3.1")):
        assert f"  {output}: metric " in out and model in out, output
    assert "deviation" not in out and "NOT COMPUTED" not in out and "whisper-base" not in out
    assert "soxr" in out
    assert main(["protocols", "ls"]) == 0
    assert set(capsys.readouterr().out.split()) >= {f"{p.name}:" for p in (e.load() for e in PROTOCOLS)}


def test_resolve_metrics_uses_the_pinned_options():
    suite = get_suite("demo")
    specs = resolve_metrics(["owsm_wer", "pesq"], suite, skip_unavailable=True, protocol="urgent2025")
    assert [dict(s.options) for s in specs if s.name == "owsm_wer"] in ([], [{"normalizer": "whisper_basic", "beam_size": 5}])
    with pytest.raises(RunError, match="not part of protocol urgent2025"):
        resolve_metrics(["wer"], suite, protocol="urgent2025")  # Whisper is never substituted
    with pytest.raises(RunError, match="not part of protocol urgent2026"):
        resolve_metrics(["sdr"], suite, protocol="urgent2026")


def test_a_whole_protocol_runs_as_far_as_the_machine_allows(tmp_path, monkeypatch):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "empty-cache"))  # no downloaded assets
    skipped: list[str] = []
    specs = resolve_metrics(None, get_suite("demo"), protocol="urgent2026", skipped=skipped)
    names = {s.name for s in specs}
    assert {"pesq", "estoi", "dnsmos"} <= names and "utmos" not in names
    by_metric = {line.split(":", 1)[0]: line for line in skipped}
    assert "urgentbench assets fetch utmos22-strong" in by_metric["utmos"]
    assert "urgentbench assets add mhubert-147" in by_metric["speechbertscore"]
    assert "urgentbench assets fetch scoreq-natural-nr" in by_metric["scoreq"]
    assert "urgentbench assets fetch emotion2vec-base" in by_metric["emo_sim"]
    assert "urgentbench assets fetch owsm-v3.1-ebf" in by_metric["owsm_wer"]
    assert "urgentbench assets fetch owsm-ctc-v4-1b" in by_metric["lid_acc"]
    assert "wer" not in names  # no silent Whisper substitute
    # named metrics are still required to be available
    with pytest.raises(RunError, match="utmos22-strong"):
        resolve_metrics(["utmos"], get_suite("demo"), protocol="urgent2026")


def test_markdown_names_the_protocol_checkpoints_and_absent_metrics(tmp_path):
    from urgentbench.report.leaderboard import to_markdown

    suite = get_suite("demo")
    specs = [MetricSpec("pesq"), MetricSpec("dnsmos")]
    with ResultStore(tmp_path / "results.sqlite") as store:
        run = store.start_run(suite.name, suite.version, "test", {})
        store.register_system(suite.name, suite.version, "s", "c", "s", {})
        producer = ProducerSpec(name="s", config_hash="c")
        for spec, value in ((specs[0], {"pesq": 2.0}), (specs[1], {"dnsmos_ovrl": 3.0, "dnsmos_sig": 3.0, "dnsmos_bak": 3.0, "dnsmos_p808": 3.0})):
            store.write([ScoreRow(score_key(suite, producer, spec), u.id, value, None, 0.0) for u in suite.utterances()], run)
        summaries = summarize(store, suite, specs)
    protocol = get_protocol("urgent2025")
    lb = build_leaderboard(suite, summaries, specs, categories=protocol.ranked_outputs(), protocol=protocol.name)
    assert lb["not_computed"][:2] == ["nisqa_mos", "utmos"] and "pesq" not in lb["not_computed"]
    assert lb["metric_models"]["dnsmos"]["sig_bak_ovr.onnx"].startswith("269fbebd")
    text = to_markdown(lb)
    assert "Protocol: `urgent2025`" in text
    assert "without values here (left out of the categories): nisqa_mos, utmos" in text
    assert "sig_bak_ovr.onnx `269fbebdb513aa23…`" in text


# ----------------------------------------------------------------------------- checkpoints never mix


class _ToyModelMetric(Metric):
    name = "toy_model_metric"
    category = "intrusive"
    outputs = (Output("toy", True, "toy score"),)
    asset: ClassVar[Asset]

    @classmethod
    def assets(cls):
        return (cls.asset,)


@pytest.fixture
def toy_metric(tmp_path, monkeypatch):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "cache"))
    _ToyModelMetric.asset = Asset("toy-weights", "toy", "CC0-1.0", files=(AssetFile("w.bin"),))
    METRICS.register("toy_model_metric", _ToyModelMetric, override=True)
    yield _ToyModelMetric
    METRICS.unregister("toy_model_metric")


def _install(tmp_path, cls, payload: bytes):
    src = tmp_path / "w.bin"
    src.write_bytes(payload)
    cls.asset.add(src)


def test_scores_from_another_checkpoint_are_not_ranked_with_new_ones(tmp_path, toy_metric):
    suite = get_suite("demo")
    utts = suite.utterances()
    spec = MetricSpec("toy_model_metric")
    _install(tmp_path, toy_metric, b"checkpoint A")
    key_a = spec.options_hash
    producers = [ProducerSpec(name="sys1", config_hash="c1"), ProducerSpec(name="sys2", config_hash="c2")]
    with ResultStore(tmp_path / "results.sqlite") as store:
        run = store.start_run(suite.name, suite.version, "test", {})
        for p in producers:
            store.register_system(suite.name, suite.version, p.name, p.config_hash, p.name, {})
        # sys1 scored with checkpoint A
        store.write([ScoreRow(score_key(suite, producers[0], spec), u.id, {"toy": 1.0}, None, 0.0) for u in utts], run)
        # the user installs a different checkpoint (same asset name), then scores sys2
        _install(tmp_path, toy_metric, b"checkpoint B")
        assert spec.options_hash != key_a
        store.write(
            [ScoreRow(score_key(suite, producers[1], spec), u.id, {"toy": float(np.float32(2.0))}, None, 0.0) for u in utts],
            run,
        )
        summaries = summarize(store, suite, [spec])
    by_name = {s.system: s for s in summaries}
    assert by_name["sys1"].scored["toy_model_metric"] == 0
    assert "model checkpoints" in by_name["sys1"].stale["toy_model_metric"]
    assert not by_name["sys2"].stale
    lb = build_leaderboard(suite, summaries, [spec], categories={"intrusive": ["toy"]})
    assert [r["system"] for r in lb["rows"]] == ["sys2"]
    assert lb["incomplete"][0]["system"] == "sys1" and lb["incomplete"][0]["stale"]
    assert lb["metric_models"]["toy_model_metric"] == {"toy-weights": toy_metric.asset.effective_sha256()}


def test_values_from_different_library_versions_are_flagged(tmp_path):
    from urgentbench.report.leaderboard import to_markdown

    suite = get_suite("demo")
    utts = suite.utterances()
    spec = MetricSpec("pesq")
    producer = ProducerSpec(name="s", config_hash="c")
    with ResultStore(tmp_path / "results.sqlite") as store:
        store.register_system(suite.name, suite.version, "s", "c", "s", {})
        half = len(utts) // 2
        for version, part in (("4.6.0", utts[:half]), ("4.8.5", utts[half:])):
            run = store.start_run(suite.name, suite.version, "test", {"packages": {"ctranslate2": version, "pesq": "0.0.4"}})
            store.write([ScoreRow(score_key(suite, producer, spec), u.id, {"pesq": 2.0}, None, 0.0) for u in part], run)
        store.start_run(suite.name, suite.version, "wrote nothing", {"packages": {"pesq": "9.9"}})
        packages = store.package_versions(suite.name, suite.version, [("s", "c")])
        assert store.package_versions(suite.name, suite.version, [("other", "c")]) == {}
        summaries = summarize(store, suite, [spec])
    assert packages == {"ctranslate2": ["4.6.0", "4.8.5"], "pesq": ["0.0.4"]}
    lb = build_leaderboard(suite, summaries, [spec], categories={"intrusive": ["pesq"]}, packages=packages)
    assert lb["mixed_packages"] == {"ctranslate2": ["4.6.0", "4.8.5"]}
    assert "**Mixed package versions**: these values were computed with ctranslate2 4.6.0, 4.8.5" in to_markdown(lb)
