"""The whole ``urgent2026`` protocol end to end, every model a tiny random-init checkpoint (issue 20).

``urgentbench run --protocol urgent2026`` on two utterances, through the CLI, with a
checkpoint of the real architecture installed for every asset of the protocol
(:mod:`urgent2026_assets`): no metric is skipped, every ranked and reported output has a
stored value for both utterances, and the protocol's leaderboard ranks every category.
The demo suite's utterances carry no language (LID accuracy would be undefined), so the
run uses a two-utterance copy of it whose utterances are English (``language: eng``).
With an empty asset cache, the same run names exactly the model-backed metrics as not
computed, each with the ``urgentbench assets fetch`` command that enables it.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import pytest
import yaml
from urgent2026_assets import MODEL_ASSETS, tiny_urgent2026_assets

import urgentbench
from urgentbench.cli import main
from urgentbench.manifest import write_manifest
from urgentbench.protocols import get_protocol
from urgentbench.report.schema import Leaderboard
from urgentbench.suites import SUITES, get_suite

PROTOCOL = get_protocol("urgent2026")
RUN = ["run", "--system", "noisy", "--protocol", "urgent2026", "--limit", "2", "--jobs", "1"]


def _english_demo(root: Path) -> Path:
    """A suite ``demo-eng``: the demo suite's first two utterances with ``language: eng``; the search folder."""
    demo = get_suite("demo")
    folder = root / "demo-eng"
    folder.mkdir(parents=True)
    (folder / "clean").symlink_to(demo.folder / "clean", target_is_directory=True)
    utts = [dataclasses.replace(u, language="eng") for u in demo.utterances(2)]
    card = yaml.safe_load((demo.folder / "card.yaml").read_text())
    card.update(name="demo-eng", version="1.0-eng", manifest_sha256=write_manifest(folder / "manifest.jsonl", utts))
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return root


@pytest.fixture
def english_demo(tmp_path, monkeypatch):
    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(_english_demo(tmp_path / "suites")))
    SUITES.rescan()
    yield get_suite("demo-eng")
    monkeypatch.undo()
    SUITES.rescan()


def _not_computed(out: str) -> dict[str, str]:
    """Metric -> its line in the run's ``not computed (N):`` list."""
    head, sep, tail = out.partition("\nnot computed (")
    if not sep:
        return {}
    count, _, rest = tail.partition("):\n")
    lines = [line.strip() for line in rest.splitlines()[: int(count)]]
    return {line.split(":", 1)[0]: line for line in lines}


@pytest.mark.slow
def test_empty_cache_skips_exactly_the_model_metrics_with_their_fetch_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("URGENTBENCH_CACHE", str(tmp_path / "empty-cache"))
    assert main([*RUN, "--suite", "demo", "--results-dir", str(tmp_path / "results")]) == 0
    skipped = _not_computed(capsys.readouterr().out)
    assert set(skipped) == set(MODEL_ASSETS)
    for metric, asset in MODEL_ASSETS.items():
        assert f"urgentbench assets fetch {asset}" in skipped[metric], skipped[metric]
    for metric in ("owsm_wer", "lid_acc"):  # ESPnet's code too, named once
        assert skipped[metric].count("urgentbench assets fetch espnet-202511") == 1, skipped[metric]
    # what needs no asset was computed: the ranked outputs of DNSMOS, PESQ and ESTOI on both utterances
    df = urgentbench.load_results(tmp_path / "results", "demo", protocol="urgent2026").to_pandas()
    df = df[df["utt_id"].isin([u.id for u in get_suite("demo").utterances(2)])]
    assert set(df["metric"]) == {"dnsmos", "pesq", "estoi"}
    ranked = df[df["output"].isin(["dnsmos_ovrl", "pesq", "estoi"])]
    assert len(ranked) == 6 and (ranked["status"] == "ok").all(), ranked.to_string()


@pytest.mark.slow
def test_urgent2026_end_to_end_with_tiny_models(tmp_path, monkeypatch, capsys, english_demo):
    cache = tmp_path / "cache"
    monkeypatch.setenv("URGENTBENCH_CACHE", str(cache))
    results_dir = tmp_path / "results"
    with tiny_urgent2026_assets(cache, tmp_path / "checkpoints") as installed:
        assert set(installed) == set(MODEL_ASSETS.values())
        assert set(installed) | {"espnet-202511"} == set(PROTOCOL.assets())
        rc = main([*RUN, "--suite", "demo-eng", "--results-dir", str(results_dir)])
        out = capsys.readouterr().out
        assert rc == 0, out
        assert _not_computed(out) == {}, out

        # ESPnet came from the pinned wheel in the cache, never from an installed distribution
        for package in ("espnet", "espnet2"):
            origin = Path(sys.modules[package].__file__)
            assert "site-packages" not in origin.parts and "espnet-202511.code" in origin.parts, origin

        results = urgentbench.load_results(results_dir, "demo-eng", protocol="urgent2026")
        df = results.to_pandas()
        failed = df[df["status"] == "failed"]
        assert failed.empty, failed[["utt_id", "output", "error"]].to_string()
        assert set(df[df["status"] != "ok"]["output"]) == {"dnsmos_p808"}  # P.808 is off in URGENT's protocols
        utts = [u.id for u in english_demo.utterances()]
        for ref in PROTOCOL.refs():  # ranked and reported outputs
            assert ref.computable, ref.output
            rows = df[df["output"] == ref.output]
            assert sorted(rows["utt_id"]) == utts and (rows["status"] == "ok").all(), ref.output
            assert all(math.isfinite(v) for v in rows["value"]), (ref.output, list(rows["value"]))
        lid = df[df["output"] == "lid_acc"]["value"]
        assert set(lid) <= {0.0, 1.0}
        assert {"wer", "cer"} <= set(df["output"])  # cer ranked, wer reported

        board = results.leaderboard(protocol="urgent2026")
        assert board.protocol == "urgent2026" and board.not_computed == []
        assert board.categories == PROTOCOL.ranked_outputs()
        (row,) = board.rows
        assert row.system == "noisy" and row.overall is not None
        assert set(row.categories) == set(PROTOCOL.categories)
        for category, outputs in PROTOCOL.ranked_outputs().items():
            assert outputs and math.isfinite(row.categories[category]), category
            for output in outputs:
                assert row.values[output] is not None and row.ranks[output] == 1, output
        # the same from the command line: leaderboard.json holds the same record
        out_dir = tmp_path / "leaderboards"
        assert main(["leaderboard", "--suite", "demo-eng", "--protocol", "urgent2026", "--results-dir",
                     str(results_dir), "--output-dir", str(out_dir), "--format", "json"]) == 0
        capsys.readouterr()
        (written,) = out_dir.rglob("leaderboard.json")
        cli_board = Leaderboard.from_json(written.read_text())
        assert cli_board.categories == board.categories and cli_board.protocol == "urgent2026"
        (cli_row,) = cli_board.rows
        assert cli_row.ranks == row.ranks and cli_row.categories == row.categories
