"""Issue 17: the official URGENT test sets as corpora, `suite import`, the Hugging Face loader, languages.

The hub cannot be reached from here, so every dataset is built by the test with `datasets`
itself (tests/urgent_helpers.py) and loaded through the same code the hub path uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import TRANSCRIPTS, load_speech, white_noise_mix
from urgent_helpers import ROWS, build_hf_dataset, official_rows

from urgentbench.cli import main
from urgentbench.data import prepared_corpora
from urgentbench.data.hf_loader import HFSource, audio_payload, load_split, parse_hf_spec, probe_audio
from urgentbench.data.kaldi_import import read_folder_pair, read_kaldi
from urgentbench.manifest import Transcript, Utterance, read_manifest
from urgentbench.metrics.asr_language import urgent_texts, whisper_language
from urgentbench.store import ResultStore
from urgentbench.suites import SUITES, get_suite

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("datasets")


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Isolated data home, suites folder and datasets cache; the hub is off."""
    monkeypatch.setenv("URGENTBENCH_DATA", str(tmp_path / "home"))
    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(tmp_path / "suites"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    SUITES.rescan()
    yield tmp_path
    monkeypatch.undo()
    SUITES.rescan()


def official_copy(root: Path, rows: tuple = ROWS, layout: str = "repo") -> Path:
    columns = official_rows(rows)
    columns.pop("language")  # the 2024 schema has no language column
    return build_hf_dataset(root, {"test_nonblind": columns}, layout=layout)


def store_rows(results: Path) -> list[tuple]:
    with ResultStore(results / "results.sqlite") as store:
        return store.dump()


# ----------------------------------------------------------------------------------------
# the loader
# ----------------------------------------------------------------------------------------


def test_hf_spec_parsing():
    assert parse_hf_spec("owner/set:cfg:test", "abc") == HFSource("owner/set", "cfg", "test", "abc")
    assert parse_hf_spec("owner/set") == HFSource("owner/set")
    assert parse_hf_spec("owner/set::test") == HFSource("owner/set", None, "test")
    with pytest.raises(ValueError, match="REPO:CONFIG:SPLIT"):
        parse_hf_spec("a:b:c:d")


@pytest.mark.parametrize("layout", ["repo", "disk"])
def test_local_copies_load_undecoded_at_their_own_rates(env: Path, layout: str):
    copy = official_copy(env / "copy", layout=layout)
    path = copy if layout == "repo" else copy / "test_nonblind"
    source = HFSource(str(path), "test_nonblind" if layout == "repo" else None, "validation")
    dataset, commit = load_split(source)
    assert commit is None
    rates, cleans = [], []
    for row in dataset:
        data, name = audio_payload(row["noisy_audio"])
        assert name == f"{row['id']}.flac"
        rates.append(probe_audio(data).sample_rate)
        cleans.append(row["clean_audio"] is not None)
    assert rates == [r[1] for r in ROWS] and cleans == [r[4] for r in ROWS]


def test_offline_hub_error_names_repository_revision_and_from(env: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "urgentbench.cli", "-q", "data", "prepare", "urgent2024", "--revision", "abc123"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env={**os.environ},
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "urgent-challenge/urgent2024_official" in proc.stderr and "revision abc123" in proc.stderr
    assert "urgentbench data prepare urgent2024 --from DIR" in proc.stderr
    assert proc.stderr.count("\n  - ") == 1  # one line, not one per subset


# ----------------------------------------------------------------------------------------
# urgent2024 end to end
# ----------------------------------------------------------------------------------------


def test_prepare_urgent2024_from_local_copy_and_run(env: Path, capsys):
    copy = official_copy(env / "copy")
    assert main(["-q", "data", "prepare", "urgent2024", "--from", str(copy)]) == 0
    assert prepared_corpora()["urgent2024"]["subsets"] == ["test-nonblind"]  # the copy holds one configuration
    suite = get_suite("urgent2024/test-nonblind")
    assert suite.extra["protocol"] == "urgent2024" and suite.extra["sample_rates"] == {8000: 1, 16000: 2, 48000: 1}
    utts = {u.id: u for u in suite.utterances()}
    assert [utts[r[0]].sample_rate for r in ROWS] == [8000, 16000, 48000, 16000]
    assert utts["fileid_1"].text == TRANSCRIPTS["a"] and utts["fileid_1"].language == "eng"
    assert utts["fileid_3"].text is None  # <not-available>: no transcript, WER skips it
    assert utts["fileid_4"].clean is None and utts["fileid_4"].tags == {"snr_db": "8.0"}
    assert utts["fileid_2"].noisy == "@urgent2024/test-nonblind/noisy/fileid_2.flac"
    assert len(utts["fileid_2"].noisy_sha256) == 64

    results = env / "results"
    code = main(["-q", "run", "--suite", "urgent2024/test-nonblind", "--system", "noisy,deepfilternet3",
                 "--protocol", "urgent2024", "--metrics", "pesq,estoi", "--jobs", "1", "--results-dir", str(results)])
    assert code == 0
    rows = store_rows(results)
    scored = {(r[2], r[4], r[5]) for r in rows if r[9] is None}
    assert scored == {(s, u, m) for s in ("noisy", "deepfilternet3") for u in ("fileid_1", "fileid_2", "fileid_3")
                      for m in ("pesq", "estoi")}  # fileid_4 has no reference: no intrusive metric
    values = {(r[2], r[4], r[5]): json.loads(r[8])[r[5]] for r in rows}
    assert all(np.isfinite(v) and (0.3 < v <= 1.0 if k[2] == "estoi" else 1.0 <= v <= 4.65) for k, v in values.items())
    # the enhanced outputs differ from the noisy inputs at every rate (8, 16 and 48 kHz)
    assert all(values[("deepfilternet3", u, "estoi")] != values[("noisy", u, "estoi")]
               for u in ("fileid_1", "fileid_2", "fileid_3"))


def test_a_changed_source_file_is_refused_when_read(env: Path):
    copy = official_copy(env / "copy", rows=ROWS[:2])
    assert main(["-q", "data", "prepare", "urgent2024", "--from", str(copy)]) == 0
    prepared = env / "home" / "urgent2024" / "test-nonblind" / "noisy" / "fileid_2.flac"
    x, sr = sf.read(prepared)
    sf.write(prepared, 0.5 * x, sr, subtype="PCM_16", format="FLAC")
    results = env / "results"
    main(["-q", "run", "--suite", "urgent2024/test-nonblind", "--system", "noisy", "--metrics", "estoi",
          "--jobs", "1", "--results-dir", str(results)])
    errors = {r[4]: r[9] for r in store_rows(results)}
    assert errors["fileid_1"] is None
    assert "sha256" in errors["fileid_2"] and "differs from the manifest" in errors["fileid_2"]


def test_bad_official_copy_lists_every_problem_at_once(env: Path, capsys):
    columns = official_rows()
    columns.pop("language")
    columns["transcript"][0] = None  # a null transcript
    rate48 = official_rows(((ROWS[2][0], 48000, "a", "x", True, "eng"),))
    rate16 = official_rows(((ROWS[2][0], 16000, "a", "x", True, "eng"),))
    columns["clean_audio"][2] = rate16["clean_audio"][0]  # noisy 48 kHz, clean 16 kHz in one row
    columns["noisy_audio"][2] = rate48["noisy_audio"][0]
    columns["noisy_audio"][1] = {"bytes": b"not audio at all", "path": "fileid_2.flac"}  # unreadable
    columns["id"][3] = "fileid_1"  # a duplicate id
    copy = build_hf_dataset(env / "copy", {"test_nonblind": columns})
    assert main(["-q", "data", "prepare", "urgent2024", "--from", str(copy)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("  - ")]
    assert len(lines) == 4, err
    assert "row 0: fileid_1: transcript is null" in err
    assert "row 1: fileid_2: noisy: unreadable audio" in err
    assert "row 2: fileid_3: noisy is 48000 Hz but the reference is 16000 Hz" in err
    assert "test-nonblind row 3: duplicate id 'fileid_1' (first at row 0)" in err
    assert "urgent2024" not in prepared_corpora()
    assert not (env / "suites" / "urgent2024").exists()


def test_column_mismatch_is_one_line_naming_the_columns(env: Path, capsys):
    columns = official_rows(ROWS[:1])
    columns.pop("language")
    columns["text"] = columns.pop("transcript")
    copy = build_hf_dataset(env / "copy", {"test_nonblind": columns})
    assert main(["-q", "data", "prepare", "urgent2024", "--from", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "no transcript column 'transcript'; its columns are id, noisy_audio, clean_audio, snr_dB, text" in err


# ----------------------------------------------------------------------------------------
# urgent2025: the extracted archives (Kaldi tables)
# ----------------------------------------------------------------------------------------


def write_flac(path: Path, x: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, rate, subtype="PCM_16", format="FLAC")


def test_prepare_urgent2025_from_extracted_archives(env: Path):
    base = env / "urgent2025" / "nonblind_test"
    langs = {"fileid_1": ("eng", 16000), "fileid_2": ("deu", 48000)}
    wav, spk, text, u2l, u2fs = [], [], [], [], []
    for i, (uid, (lang, rate)) in enumerate(langs.items()):
        clean = 0.5 * load_speech("ab"[i], rate)[: rate]
        write_flac(base / "clean" / "0" / f"{uid}.flac", clean, rate)
        write_flac(base / "noisy" / "0" / f"{uid}.flac", white_noise_mix(clean, 5.0, i), rate)
        wav.append(f"{uid} /organisers/disk/nonblind_test/noisy/0/{uid}.flac")  # another machine's path
        spk.append(f"{uid} /organisers/disk/nonblind_test/clean/0/{uid}.flac")
        text.append(f"{uid} {TRANSCRIPTS['ab'[i]]}")
        u2l.append(f"{uid} {lang}")
        u2fs.append(f"{uid} {rate}")
    for name, lines in (("wav.scp", wav), ("spk1.scp", spk), ("text", text), ("utt2lang", u2l), ("utt2fs", u2fs)):
        (base / "data").mkdir(parents=True, exist_ok=True)
        (base / "data" / name).write_text("\n".join(lines) + "\n")
    assert main(["-q", "data", "prepare", "urgent2025", "--from", str(env / "urgent2025")]) == 0
    utts = {u.id: u for u in get_suite("urgent2025/test-nonblind").utterances()}
    assert utts["fileid_2"].language == "deu" and utts["fileid_2"].sample_rate == 48000
    assert utts["fileid_2"].noisy == "@urgent2025/nonblind_test/noisy/0/fileid_2.flac"


def test_urgent2025_without_from_says_how_to_get_it(env: Path, capsys):
    assert main(["-q", "data", "prepare", "urgent2025"]) == 2
    assert "--from DIR" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------
# suite import
# ----------------------------------------------------------------------------------------


def kaldi_folder(root: Path) -> Path:
    """A Kaldi data folder of a 16 kHz and a 48 kHz utterance with references, text and languages."""
    for i, (uid, rate) in enumerate((("utt16k", 16000), ("utt48k", 48000))):
        clean = 0.5 * load_speech("ab"[i], rate)[: int(1.5 * rate)]
        write_flac(root / "audio" / "clean" / f"{uid}.flac", clean, rate)
        write_flac(root / "audio" / "noisy" / f"{uid}.flac", white_noise_mix(clean, 5.0, i), rate)
    data = root / "data"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text("utt16k audio/noisy/utt16k.flac\nutt48k audio/noisy/utt48k.flac\n")
    (data / "spk1.scp").write_text("utt16k audio/clean/utt16k.flac\nutt48k audio/clean/utt48k.flac\n")
    (data / "text").write_text(f"utt16k {TRANSCRIPTS['a']}\nutt48k <not-available>\n")
    (data / "utt2lang").write_text("utt16k eng\nutt48k deu\n")
    (data / "utt2fs").write_text("utt16k 16000\nutt48k 48000\n")
    return data


def test_suite_import_kaldi_folder_scores(env: Path, capsys):
    data = kaldi_folder(env / "mine")
    args = ["-q", "suite", "import", "mine", "--noisy", str(data / "wav.scp"), "--ref", str(data / "spk1.scp"),
            "--text", str(data / "text"), "--utt2lang", str(data / "utt2lang"), "--utt2fs", str(data / "utt2fs")]
    assert main(args) == 0
    suite = get_suite("mine")
    utts = {u.id: u for u in suite.utterances()}
    assert {k: u.sample_rate for k, u in utts.items()} == {"utt16k": 16000, "utt48k": 48000}
    assert utts["utt16k"].language == "eng" and utts["utt48k"].text is None
    assert suite.version.startswith("1.0+") and "wer" in suite.metrics
    results = env / "results"
    assert main(["-q", "run", "--suite", "mine", "--system", "noisy", "--metrics", "pesq,sdr", "--jobs", "1",
                 "--results-dir", str(results)]) == 0
    rows = store_rows(results)
    assert {(r[4], r[5]) for r in rows if r[9] is None} == {(u, m) for u in utts for m in ("pesq", "sdr")}
    # the same data imported again gives the same version; other data another
    assert main(args) == 0 and get_suite("mine").version == suite.version


def test_suite_import_reports_every_bad_line_at_once(env: Path, capsys):
    data = kaldi_folder(env / "mine")
    audio = env / "mine" / "audio"
    write_flac(audio / "noisy" / "wrong_rate.flac", np.zeros(4800) + 0.01, 48000)
    write_flac(audio / "clean" / "wrong_rate.flac", np.zeros(1600) + 0.01, 16000)
    (audio / "noisy" / "broken.flac").write_bytes(b"\x00" * 100)
    (data / "wav.scp").write_text(
        "utt16k audio/noisy/utt16k.flac\n"
        "utt48k audio/noisy/utt48k.flac\n"
        "gone audio/noisy/gone.flac\n"
        "utt16k audio/noisy/utt16k.flac\n"
        "wrong_rate audio/noisy/wrong_rate.flac\n"
        "broken audio/noisy/broken.flac\n"
    )
    (data / "spk1.scp").write_text(
        "utt16k audio/clean/utt16k.flac\nutt48k audio/clean/utt48k.flac\nwrong_rate audio/clean/wrong_rate.flac\n"
        "stray audio/clean/utt16k.flac\n"
    )
    (data / "text").write_text("utt16k a\nutt48k b\ngone c\nwrong_rate d\nbroken e\n")
    code = main(["-q", "suite", "import", "mine", "--noisy", str(data / "wav.scp"), "--ref", str(data / "spk1.scp"),
                 "--text", str(data / "text")])
    assert code == 2
    err = capsys.readouterr().err
    lines = [line[4:] for line in err.splitlines() if line.startswith("  - ")]
    assert lines == [
        "spk1.scp:4: id 'stray' is not in wav.scp",
        "wav.scp:3: gone: noisy file audio/noisy/gone.flac not found",
        "wav.scp:4: duplicate id 'utt16k' (first at wav.scp:1)",
        "wav.scp:5: wrong_rate: noisy is 48000 Hz but the reference is 16000 Hz (rate mismatch)",
        f"wav.scp:6: broken: noisy {audio / 'noisy' / 'broken.flac'}: unreadable audio (Format not recognised.)",
    ], err
    assert not (env / "suites" / "mine").exists()


def test_folder_pair_and_hf_import(env: Path):
    pair = env / "pair"
    for i, rate in enumerate((16000, 48000)):
        clean = 0.5 * load_speech("ab"[i], rate)[:rate]
        write_flac(pair / "clean" / f"s{i}.flac", clean, rate)
        write_flac(pair / "noisy" / f"s{i}.flac", white_noise_mix(clean, 5.0, i), rate)
    write_flac(pair / "noisy" / "alone.flac", np.zeros(1600) + 0.01, 16000)
    items, problems = read_folder_pair(pair / "noisy", pair / "clean")
    assert [i.id for i in items] == ["s0", "s1"] and len(problems) == 1 and "alone.flac: no reference" in problems[0]
    (pair / "noisy" / "alone.flac").unlink()
    assert main(["-q", "suite", "import", "pairs", "--noisy", str(pair / "noisy"), "--ref", str(pair / "clean")]) == 0
    assert {u.id: u.sample_rate for u in get_suite("pairs").utterances()} == {"s0": 16000, "s1": 48000}

    columns = official_rows()
    copy = build_hf_dataset(env / "hf", {"default": columns}, layout="disk")
    assert main(["-q", "suite", "import", "group/hfset", "--hf", f"{copy / 'default'}", "--noisy-column", "noisy_audio",
                 "--ref-column", "clean_audio", "--text-column", "transcript", "--language-column", "language",
                 "--id-column", "id"]) == 0
    utts = {u.id: u for u in get_suite("group/hfset").utterances()}
    assert utts["fileid_3"].language == "deu" and utts["fileid_4"].clean is None
    assert Path(utts["fileid_1"].noisy).is_file() and utts["fileid_1"].noisy.endswith("fileid_1.flac")


def test_import_refuses_an_existing_suite_name(env: Path, capsys):
    data = kaldi_folder(env / "mine")
    assert main(["-q", "suite", "import", "demo", "--noisy", str(data / "wav.scp")]) == 2
    assert "suite 'demo' already exists" in capsys.readouterr().err


def test_kaldi_reader_finds_moved_files_and_refuses_pipes(tmp_path: Path):
    write_flac(tmp_path / "copy" / "noisy" / "a.flac", np.zeros(800) + 0.01, 8000)
    scp = tmp_path / "copy" / "data" / "wav.scp"
    scp.parent.mkdir(parents=True)
    scp.write_text("a /far/away/noisy/a.flac\nb sox b.wav -t wav - |\n")
    items, problems = read_kaldi(scp)
    assert [i.noisy.path for i in items] == [tmp_path / "copy" / "noisy" / "a.flac"]
    assert problems == ["wav.scp:2: b: noisy is a piped command ('sox b.wav -t wav - |'); give audio file paths"]


# ----------------------------------------------------------------------------------------
# manifest fields and languages
# ----------------------------------------------------------------------------------------


def test_new_manifest_fields_only_when_set():
    plain = Utterance("a", 16000, noisy="x.flac", text="hi")
    assert set(plain.to_dict()) == {"id", "sample_rate", "noisy", "text", "seed", "degradations", "tags"}
    tagged = Utterance.from_dict({**plain.to_dict(), "language": "deu", "noisy_sha256": "ab" * 32})
    assert isinstance(tagged.text, Transcript) and tagged.text.language == "deu" and tagged.text == "hi"
    assert Utterance.from_dict(json.loads(json.dumps(tagged.to_dict()))) == tagged
    import pickle

    assert pickle.loads(pickle.dumps(tagged)).text.language == "deu"
    demo = get_suite("demo")
    from urgentbench.manifest import write_manifest

    assert write_manifest(Path(os.devnull), read_manifest(demo.manifest_path)) == demo.manifest_sha256


def test_languages_and_urgent_normalisers():
    assert [whisper_language(c) for c in ("eng", "deu", "ger", "zho", "fr", "en-US", "spanish")] == [
        "en", "de", "de", "zh", "fr", "en", "es"]
    with pytest.raises(ValueError, match="'xx1' is not one Whisper decodes"):
        whisper_language("xx1")
    assert urgent_texts("Mr. Smith paid $20!", "eng") == ("mister smith paid $20", "mr smith paid 20")
    assert urgent_texts("Herr Müller, bitte!", "deu") == ("herr müller bitte", "herr müller bitte")


@pytest.mark.slow  # loads Whisper base
def test_wer_decodes_in_the_utterances_language(speech16):
    from urgentbench.metrics import get_metric_class
    from urgentbench.metrics.base import BatchItem, MetricError

    metric = get_metric_class("wer")()
    metric.setup()
    english = metric.compute(speech16, None, 16000, transcript=Transcript(TRANSCRIPTS["a"], "eng"))
    plain = metric.compute(speech16, None, 16000, transcript=TRANSCRIPTS["a"])
    german = metric.compute(speech16, None, 16000, transcript=Transcript(TRANSCRIPTS["a"], "deu"))
    assert english["hypothesis"] == plain["hypothesis"] and english["wer"] < 0.4
    assert german["hypothesis"] != english["hypothesis"] and german["wer"] > english["wer"] + 0.2
    batched = metric.compute_batch([
        BatchItem(speech16, None, 16000, Transcript(TRANSCRIPTS["a"], "deu")),
        BatchItem(speech16, None, 16000, Transcript(TRANSCRIPTS["a"], "eng")),
        BatchItem(speech16, None, 16000, "<not-available>"),
    ])
    assert batched[0]["hypothesis"] == german["hypothesis"] and batched[1]["hypothesis"] == english["hypothesis"]
    assert isinstance(batched[2], MetricError) and "<not-available>" in str(batched[2])
