"""The MaskSR2 demo corpus: verification, sub-suites, published outputs, nested suite discovery.

Runs on a synthetic stand-in with exactly the inventory's layout (305 files at the right
rates, channel counts and durations, fixture speech plus noise); no network.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from conftest import load_speech

from urgentbench.data import masksr2_demo as md
from urgentbench.data.base import CorpusError
from urgentbench.data.masksr2_demo.transcripts import TranscriptError, parse_transcripts
from urgentbench.manifest import read_manifest
from urgentbench.pipeline.options import RunOptions

#: SNR (dB) of each system's stand-in output; the unprocessed input is at 0 dB.
STANDIN_SNR = {"MaskSR2-L": 25.0, "MaskSR-L": 18.0, "VoiceFixer": 12.0, "DeepFilterNet3": 8.0, "FRCRN": 10.0, "DEMUCS": 6.0}

#: A copy of the demo page's index.md (its text only): the page every stand-in checkout carries.
SEED_INDEX = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "masksr2-demo-index.md"


def index_md_text() -> str:
    """The page's index.md: the shared copy, else its intelligibility table rebuilt from the committed manifest."""
    if SEED_INDEX.is_file():
        return SEED_INDEX.read_text(encoding="utf-8")
    rows = "".join(
        f'<tr><td><audio><source src="For_intelligibility_table/unprocessed/{u.id}.wav"></audio></td>'
        f"<td></td><th>{u.text}</th><td></td><td></td><th></th></tr>\n"
        for u in read_manifest(md.SUITES_ROOT / "intelligibility" / "manifest.jsonl") if u.text
    )
    return (
        "#### MaskSR2 vs. MaskSR: Improved Intelligibility\n<table><thead><tr><th>Unprocessed</th><th>Target</th>"
        "<th>Transcription</th><th>MaskSR-L</th><th>MaskSR2-L</th><th>Improved words</th></tr></thead>\n"
        f"<tbody>\n{rows}</tbody></table>\n"
    )


#: Files that carry an extra chunk after the data chunk on the page (section 5.7).
PMX_FILES = {
    "GSR/Target/8_clean.wav",
    "GSR/Target/9_clean.wav",
    "GSR/VoiceFixer/9_simulated.wav",
    *(f"DNS2020_real_recordings/FRCRN/audioset_realrec_{s}.wav" for s in (
        "airconditioner_8v4sEeK2Owc", "airconditioner_EK746oGQz6E", "barking_5F9Gd2JNcw8",
        "barking_9uNc2tH5aV4", "car_0AVTgzegI4s",
    )),
}

#: Published outputs per condition and system: the page's files (section 5.6) minus those of
#: utterances whose input is history-only, FLAC twins counted once.
EXPECTED_OUTPUTS = {
    "gsr": {"MaskSR-L": 12, "MaskSR2-L": 12, "DeepFilterNet3": 12, "VoiceFixer": 12},
    **{f"bwe-{k}k": {"MaskSR-L": 2, "MaskSR2-L": 2, "DeepFilterNet3": 2, "VoiceFixer": 2} for k in (1, 2, 4, 8)},
    "declip-0.1": {"MaskSR-L": 4, "MaskSR2-L": 4, "DeepFilterNet3": 4, "VoiceFixer": 4},
    "declip-0.25": {"MaskSR-L": 4, "MaskSR2-L": 4, "DeepFilterNet3": 4, "VoiceFixer": 4},
    "dns-no-reverb": {"MaskSR-L": 4, "MaskSR2-L": 4, "DeepFilterNet3": 4, "FRCRN": 4, "DEMUCS": 4},
    "dns-real": {"MaskSR-L": 4, "MaskSR2-L": 4, "DeepFilterNet3": 4, "FRCRN": 4, "DEMUCS": 4},
    "intelligibility": {"MaskSR-L": 10, "MaskSR2-L": 10},
}
EXPECTED_UTTERANCES = {
    "gsr": 12, "bwe-1k": 2, "bwe-2k": 2, "bwe-4k": 2, "bwe-8k": 2, "declip-0.1": 4, "declip-0.25": 4,
    "dns-no-reverb": 4, "dns-real": 4, "intelligibility": 10,
}


def _append_pmx_chunk(path: Path) -> None:
    """Append an Adobe-XMP-like ``_PMX`` chunk after the data chunk and fix the RIFF size."""
    payload = b"<x:xmpmeta/>"
    blob = bytearray(path.read_bytes()) + b"_PMX" + struct.pack("<I", len(payload)) + payload
    blob[4:8] = struct.pack("<I", len(blob) - 8)
    path.write_bytes(bytes(blob))


def make_standin(root: Path) -> Path:
    """Write a synthetic copy of the demo repository's 305 head audio files under ``root``."""
    rows = md.load_inventory()
    speech = {sr: np.tile(load_speech("a", sr), 3).astype(np.float64) for sr in (16000, 44100)}
    rng = np.random.default_rng(0)
    for row in rows:
        sr = row.sample_rate
        n = round(row.duration_s * sr)
        if row.path in md.KNOWN_PADDED_OUTPUTS:  # the page's file: 132,300 + 308 frames
            n = round(3.0 * sr) + md.KNOWN_PADDED_OUTPUTS[row.path]
        clean = speech[sr][:n]
        if row.role == "target":
            x = clean
        else:
            snr = 0.0 if row.role == "unprocessed" else STANDIN_SNR[row.system]
            noise = rng.standard_normal(n)
            x = clean + noise * np.sqrt(np.mean(clean**2) / 10 ** (snr / 10))
        path = root / row.path
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.9 * x / np.max(np.abs(x))).astype(np.float32), sr, subtype="PCM_16")
        if row.path in PMX_FILES:
            _append_pmx_chunk(path)
    (root / "index.md").write_text(index_md_text(), encoding="utf-8")
    return root


def link_copy(src: Path, dest: Path) -> Path:
    """A copy of a tree made of hard links (files are replaced, never edited, by the tests)."""
    for path in src.rglob("*"):
        if path.is_file() and ".urgentbench" not in path.parts:
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    return dest


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_standin(tmp_path_factory.mktemp("MaskSR2"))


@pytest.fixture(scope="module")
def prepared(standin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The stand-in prepared as ``masksr2-demo`` (a private ``$URGENTBENCH_DATA``)."""
    home = tmp_path_factory.mktemp("data_home")
    root = link_copy(standin, tmp_path_factory.mktemp("prepared"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("URGENTBENCH_DATA", str(home))
        md.MaskSR2Demo().prepare(root, progress=False)
        yield root


def test_standin_matches_inventory(standin: Path):
    rows = md.load_inventory()
    assert len(rows) == 305
    assert md.verify_copy(standin, rows) == []
    info = sf.info(standin / "GSR/Target/8_clean.wav")  # the chunk after data is ignored by the parser
    assert info.frames == 132300


def test_prepare_records_corpus_and_every_suite_resolves(prepared: Path):
    from urgentbench.data import corpus_root, prepared_corpora
    from urgentbench.simulation.render import render_utterance
    from urgentbench.suites import get_suite

    record = prepared_corpora()["masksr2-demo"]
    assert Path(record["root"]) == prepared.resolve() == corpus_root("masksr2-demo")
    assert record["files"] == 305
    assert "no sha256" in record["verification"]
    for name, n in EXPECTED_UTTERANCES.items():
        suite = get_suite(f"masksr2-demo/{name}")
        suite.check_corpora()
        utts = suite.utterances()
        assert len(utts) == n, name
        for utt in utts:
            assert suite.resolve(utt.noisy).is_file()
            if name == "dns-real":
                assert utt.clean is None
            else:
                assert suite.resolve(utt.clean).is_file()
            rendered = render_utterance(utt, suite.folder)  # pairs of equal length at the suite rate
            assert rendered.sample_rate == suite.sample_rate
            assert utt.tags["condition"].endswith(name.split("/")[-1]) or name == "intelligibility"
    bwe = get_suite("masksr2-demo/bwe-2k").utterances()
    assert {u.tags["cutoff_hz"] for u in bwe} == {"2000"} and {u.speaker for u in bwe} == {"p360", "p363"}
    declip = get_suite("masksr2-demo/declip-0.25").utterances()
    assert {u.tags["clip_threshold"] for u in declip} == {"0.25"}


def test_published_outputs_are_reconstructed(prepared: Path):
    from urgentbench.suites import get_suite

    rows = md.load_inventory()
    accounted: set[str] = set()
    for condition, expected in EXPECTED_OUTPUTS.items():
        systems = md.published_systems(condition)
        found = {}
        ids = {u.id for u in get_suite(f"masksr2-demo/{condition}").utterances()}
        for display, directory, metadata in systems:
            assert display == f"{metadata['system']} (published)"
            files = sorted(p for p in directory.iterdir())
            assert {p.stem for p in files} <= ids
            assert len(files) == metadata["outputs"]
            assert sorted(metadata["missing"]) == sorted(ids - {p.stem for p in files})
            found[metadata["system"]] = len(files)
        assert found == expected, condition
        index = json.loads((prepared / ".urgentbench/published/published.json").read_text())
        for entry in index["conditions"][condition].values():
            accounted.update(entry["sources"].values())
    # every page output is published, a FLAC twin of a published WAV, in an excluded item, or with_reverb
    plans = md.plan_all(rows)
    excluded = {f for p in plans.values() for e in p.excluded for f in e["files_at_head"]}
    for row in rows:
        if row.role != "system" or row.condition == "dns-with-reverb":
            continue
        twin = row.path.endswith(".flac") and row.path[:-5] + ".wav" in accounted
        assert row.path in accounted or row.path in excluded or twin, row.path
    # no MaskSR-L output for gsr 4: nothing to pair (its input is history-only), so the item is excluded
    gsr = plans["gsr"]
    assert [e["id"] for e in gsr.excluded] == ["4_simulated"]
    assert [e["id"] for e in plans["declip-0.1"].excluded] == ["p360_012_mic1_10.00"]
    assert [e["id"] for e in plans["dns-no-reverb"].excluded] == ["clnsp177_0kuIP7fLNpM_snr6_tl-26_fileid_90"]
    assert [e["id"] for e in plans["dns-real"].excluded] == ["audioset_realrec_barking_9uNc2tH5aV4"]
    assert "DNS2020_no_reverb/Target/clean_fileid_90.wav" in plans["dns-no-reverb"].excluded[0]["files_at_head"]


def test_padded_masksr_output_is_trimmed_and_recorded(prepared: Path):
    for condition, source in (("gsr", "MaskSR-L/10_simulated_proc.wav"),
                              ("intelligibility", "For_intelligibility_table/masksr_L/10_simulated_proc.wav")):
        systems = {m["system"]: (d, m) for _, d, m in md.published_systems(f"masksr2-demo/{condition}")}
        directory, metadata = systems["MaskSR-L"]
        assert sf.info(prepared / source).frames == 132608
        assert sf.info(directory / "10_simulated.wav").frames == 132300
        page, _ = sf.read(prepared / source, dtype="int16")
        trimmed, _ = sf.read(directory / "10_simulated.wav", dtype="int16")
        np.testing.assert_array_equal(trimmed, page[:132300])
        [quirk] = metadata["quirks"]
        assert quirk["utterance"] == "10_simulated" and quirk["source"] == source
        assert "308" in quirk["problem"] and "trimmed" in quirk["action"]
        # every other output is the page's file itself (a hard link), untouched
        masksr2_dir, masksr2_meta = systems["MaskSR2-L"]
        assert masksr2_meta["quirks"] == []
        assert os.path.samefile(masksr2_dir / "10_simulated.wav", prepared / masksr2_meta_source(condition))


def masksr2_meta_source(condition: str) -> str:
    return "MaskSR2-L/10_simulated_proc.wav" if condition == "gsr" else "For_intelligibility_table/masksr2_L/10_simulated_proc.wav"


def test_every_problem_is_listed(standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("URGENTBENCH_DATA", str(tmp_path / "home"))
    root = link_copy(standin, tmp_path / "broken")
    deleted = "SR/Target/p360_354_mic1_1000_cheby1.wav"
    truncated = "DECLIP/0.25/noisy/p361_005_mic1_4.00.wav"
    wrong_rate = "DNS2020_no_reverb/Target/clean_fileid_81.wav"
    garbage = "MaskSR2-L/3_simulated_proc.wav"
    (root / deleted).unlink()
    blob = (root / truncated).read_bytes()
    (root / truncated).unlink()
    (root / truncated).write_bytes(blob[: len(blob) // 2])
    data, _ = sf.read(root / wrong_rate, dtype="int16")
    (root / wrong_rate).unlink()
    sf.write(root / wrong_rate, data, 22050, subtype="PCM_16")
    (root / garbage).unlink()
    (root / garbage).write_bytes(b"this is not audio" * 100)

    with pytest.raises(CorpusError) as err:
        md.MaskSR2Demo().prepare(root, progress=False)
    problems = err.value.problems
    assert len(problems) == 4, problems
    text = str(err.value)
    assert f"{deleted}: missing" in text
    assert f"{truncated}: " in text and "expected 6.0137 s" in text
    assert f"{wrong_rate}: 22050 Hz, expected 16000 Hz" in text
    assert f"{garbage}: unreadable" in text
    assert not (tmp_path / "home" / "corpora.json").exists()  # nothing recorded
    assert not (root / ".urgentbench").exists()


def test_download_fetches_every_inventory_file(standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("URGENTBENCH_DATA", str(tmp_path / "home"))
    urls = []

    def fake_fetch(url: str, dest: Path) -> None:
        urls.append(url)
        assert url.startswith(md.RAW_BASE_URL)
        relative = url[len(md.RAW_BASE_URL):]
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(standin / relative, dest)

    monkeypatch.setattr(md, "_fetch", fake_fetch)
    root = md.MaskSR2Demo().prepare(None, progress=False)
    assert root == (tmp_path / "home" / "masksr2-demo").resolve()
    assert len(urls) == 305
    assert md.RAW_BASE_URL + "MaskSR-L/10_simulated_proc.wav" in urls
    urls.clear()
    md.MaskSR2Demo().prepare(None, progress=False)  # everything in place: nothing fetched again
    assert urls == []


def test_nested_suites_are_discovered(capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from urgentbench.cli import main
    from urgentbench.registry import UnknownNameError
    from urgentbench.suites import SUITES, get_suite

    assert main(["ls", "suites"]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED_UTTERANCES:
        assert f"masksr2-demo/{name} " in out
    assert get_suite("demo").name == "demo"
    with pytest.raises(UnknownNameError) as err:
        get_suite("masksr2-demo/gsx")
    assert "Did you mean 'masksr2-demo/gsr'" in str(err.value)
    with pytest.raises(UnknownNameError) as err:
        get_suite("masksr2-demo")
    assert "masksr2-demo/" in str(err.value).split("Known")[0]

    # a nested group on the search path is found too, named by its folder path
    group = tmp_path / "suites" / "team" / "mini"
    group.mkdir(parents=True)
    (group / "manifest.jsonl").write_text("")
    (group / "card.yaml").write_text(yaml.safe_dump({
        "name": "team/mini", "version": "1", "description": "x", "sample_rate": 16000,
        "manifest": "manifest.jsonl", "manifest_sha256": "0" * 64, "metrics": ["sdr"],
    }))
    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(tmp_path / "suites"))
    SUITES.rescan()
    try:
        assert get_suite("team/mini").folder == group
        assert "masksr2-demo/gsr" in SUITES.names()
    finally:
        monkeypatch.undo()
        SUITES.rescan()


def test_committed_suites_match_cards_and_regenerate(tmp_path: Path):
    from urgentbench.manifest import file_sha256
    from urgentbench.suites import Suite

    written = md.build_suites(tmp_path)
    assert sorted(written) == sorted(EXPECTED_UTTERANCES)
    for name in EXPECTED_UTTERANCES:
        committed = md.SUITES_ROOT / name
        suite = Suite.from_card(committed / "card.yaml")
        assert suite.name == f"masksr2-demo/{name}"
        assert suite.version == ("1.1" if name == "intelligibility" else "1.0")
        assert file_sha256(suite.manifest_path) == suite.manifest_sha256
        suite.verify()
        assert suite.extra["corpora"] == ["masksr2-demo"]
        assert ("wer" in suite.metrics) == (name == "intelligibility"), name
        for f in ("card.yaml", "manifest.jsonl"):
            assert (tmp_path / name / f).read_bytes() == (committed / f).read_bytes(), f"{name}/{f} is stale"
    assert Suite.from_card(md.SUITES_ROOT / "dns-real" / "card.yaml").metrics == ["dnsmos"]
    gsr = Suite.from_card(md.SUITES_ROOT / "gsr" / "card.yaml")
    assert gsr.extra["excluded"][0]["id"] == "4_simulated"


def test_score_published_and_rank(prepared: Path, tmp_path: Path):
    from urgentbench.report.leaderboard import build_leaderboard, summarize, to_markdown
    from urgentbench.runner import resolve_metrics
    from urgentbench.store import ResultStore
    from urgentbench.suites import get_suite

    results = tmp_path / "results"
    options = RunOptions(results_dir=results, jobs=1, metrics=["pesq", "sdr"], progress=False)
    reports = md.score_published("bwe-1k", options)
    assert reports["bwe-1k"].errors == []
    assert reports["bwe-1k"].jobs == 2 * 5  # 2 utterances x (noisy + 4 published systems)
    suite = get_suite("masksr2-demo/bwe-1k")
    metrics = resolve_metrics(["pesq", "sdr"], suite)
    with ResultStore(results / "results.sqlite") as store:
        summaries = summarize(store, suite, metrics)
    lb = build_leaderboard(suite, summaries, metrics)
    ranked = [r["system"] for r in lb["rows"]]
    assert set(ranked) == {"noisy", "MaskSR-L (published)", "MaskSR2-L (published)",
                           "DeepFilterNet3 (published)", "VoiceFixer (published)"}
    assert ranked[0] == "MaskSR2-L (published)" and ranked[-1] == "noisy"
    assert all(r["overall"] is not None for r in lb["rows"]) and lb["incomplete"] == []
    meta = next(r["metadata"] for r in lb["rows"] if r["system"] == "MaskSR-L (published)")
    assert meta["condition"] == "bwe-1k" and meta["quirks"] == "none"
    assert "MaskSR2-L (published)" in to_markdown(lb)
    # scoring again computes nothing
    again = RunOptions(results_dir=results, metrics=["pesq", "sdr"], progress=False)
    assert md.score_published("bwe-1k", again)["bwe-1k"].jobs == 0


def test_cli_builds_the_committed_suites_and_refuses_corpora_without_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture
):
    from urgentbench.cli import main

    assert main(["-q", "data", "build-suite", "masksr2-demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED_UTTERANCES:
        assert f"masksr2-demo/{name}: built " in out
        for f in ("card.yaml", "manifest.jsonl"):
            assert (tmp_path / "masksr2-demo" / name / f).read_bytes() == (md.SUITES_ROOT / name / f).read_bytes()
    assert "`urgentbench data build-suite masksr2-demo`" in (md.SUITES_ROOT / "gsr" / "card.yaml").read_text()
    assert main(["-q", "data", "score-published", "vctk"]) == 2
    assert main(["-q", "data", "build-suite", "vctk"]) == 2
    err = capsys.readouterr().err
    assert "corpus 'vctk' publishes no system outputs" in err and "corpus 'vctk' has no suites of its own" in err


def test_transcripts_are_parsed_from_the_page():
    if not SEED_INDEX.is_file():
        pytest.skip(f"{SEED_INDEX} (the page's index.md) is not here")
    transcripts = parse_transcripts(SEED_INDEX)
    assert len(transcripts) == 8
    assert transcripts["2_simulated"] == "Throughout the centuries, people have explained the rainbow."
    assert transcripts["10_simulated"] == "I have so much respect for him. His friend"
    assert transcripts["p364_065_429"] == "It's not going to work."
    assert list(transcripts)[-2:] == ["p360_354_mic1_1000_cheby1", "p363_283_mic1_1000_cheby1"]
    # the committed suite carries exactly these, on the clips of the page's table
    texts = {u.id: u.text for u in read_manifest(md.SUITES_ROOT / "intelligibility" / "manifest.jsonl")}
    assert {k: v for k, v in texts.items() if v is not None} == transcripts
    assert texts["p360_018_272"] is None and texts["p374_120_364"] is None


def test_a_missing_transcript_is_a_one_line_error(tmp_path: Path):
    page = index_md_text()
    empty = tmp_path / "empty" / "index.md"
    empty.parent.mkdir()
    empty.write_text(page.replace("<th>I would not do that.</th>", "<th>  </th>"), encoding="utf-8")
    with pytest.raises(TranscriptError) as err:
        parse_transcripts(empty.parent)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{empty}:")
    assert "'p360_354_mic1_1000_cheby1' has no transcription" in message
    no_table = tmp_path / "index.md"
    no_table.write_text(page.replace("Transcription", "Words"), encoding="utf-8")
    with pytest.raises(TranscriptError, match=r"index\.md: no table with a 'Transcription' column"):
        parse_transcripts(no_table)
    with pytest.raises(TranscriptError, match="cannot read the page"):
        parse_transcripts(tmp_path / "absent.md")
    # the suite builder stops on it too, before writing anything
    with pytest.raises(TranscriptError):
        md.build_suites(tmp_path / "suites", source=empty.parent)
    assert not (tmp_path / "suites").exists()


def test_intelligibility_suite_is_built_from_the_checkout(standin: Path, tmp_path: Path):
    written = md.build_suites(tmp_path, source=standin)
    for name in EXPECTED_UTTERANCES:
        for f in ("card.yaml", "manifest.jsonl"):
            assert (tmp_path / name / f).read_bytes() == (md.SUITES_ROOT / name / f).read_bytes(), f"{name}/{f}"
    utts = {u.id: u for u in read_manifest(written["intelligibility"].parent / "manifest.jsonl")}
    assert sum(u.text is not None for u in utts.values()) == 8


def test_score_published_intelligibility_stores_wer(prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    import sqlite3

    from urgentbench.cli import main

    results = tmp_path / "results"
    rc = main(["-q", "data", "score-published", "masksr2-demo", "--condition", "intelligibility",
               "--metrics", "wer", "--limit", "2", "--results-dir", str(results), "--jobs", "1"])
    assert rc == 0, capsys.readouterr().err
    with sqlite3.connect(results / "results.sqlite") as db:
        rows = db.execute(
            "SELECT system, utt_id, result_json, error FROM scores WHERE suite=? AND suite_version=? AND metric=?",
            ("masksr2-demo/intelligibility", "1.1", "wer"),
        ).fetchall()
    by_system: dict[str, list] = {}
    for system, utt_id, result, error in rows:
        assert error is None and result is not None, (system, utt_id, error)
        by_system.setdefault(system, []).append((utt_id, json.loads(result)))
    for system in ("MaskSR-L (published)", "MaskSR2-L (published)"):
        assert sorted(u for u, _ in by_system[system]) == ["10_simulated", "2_simulated"], system
        for utt_id, values in by_system[system]:
            # scored against the page's transcript (9 and 8 words), the stand-in speech says something else
            assert values["wer_ref_words"] == {"10_simulated": 9, "2_simulated": 8}[utt_id]
            assert isinstance(values["wer"], float) and values["wer"] > 0.5
            assert isinstance(values["cer"], float) and values["hypothesis"]
    assert "noisy" in by_system
