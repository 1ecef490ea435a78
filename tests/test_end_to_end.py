"""`urgentbench run` end to end on demo utterances, with every metric of the demo suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from urgentbench.cli import main


@pytest.mark.slow
def test_run_demo_noisy_vs_deepfilternet3(tmp_path: Path):
    results = tmp_path / "results"
    code = main(["-q", "run", "--system", "noisy,deepfilternet3", "--suite", "demo", "--limit", "4",
                 "--jobs", "2", "--results-dir", str(results)])
    assert code == 0
    enhanced = list((results / "enhanced" / "demo@1.0").glob("deepfilternet3-*/*.flac"))
    assert len(enhanced) == 4
    code = main(["-q", "leaderboard", "--suite", "demo", "--results-dir", str(results),
                 "--output-dir", str(tmp_path / "lb"), "--allow-partial"])
    assert code == 0
    lb = json.loads((tmp_path / "lb" / "demo" / "leaderboard.json").read_text())
    rows = {r["system"]: r for r in lb["rows"]}
    assert set(rows) == {"noisy", "deepfilternet3"}
    for system in rows.values():
        # every metric of the suite produced a value on these utterances
        for output in ("dnsmos_ovrl", "pesq", "estoi", "sdr", "si_sdr", "lsd", "mcd", "spk_sim", "wer", "cer"):
            assert system["values"][output] is not None, output
    dfn, noisy = rows["deepfilternet3"]["values"], rows["noisy"]["values"]
    for output in ("dnsmos_ovrl", "pesq", "si_sdr"):
        assert dfn[output] > noisy[output], output
    assert lb["rows"][0]["system"] == "deepfilternet3"
