"""Submissions in URGENT's format: safe extraction, validation of everything at once, scoring."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from conftest import FIXTURES
from test_runner import make_suite

from urgentbench.manifest import Utterance
from urgentbench.runner import MetricSpec, RunOptions, load_inputs, score_key
from urgentbench.simulation.render import render_utterance
from urgentbench.store import ResultStore
from urgentbench.submission import (
    SubmissionError,
    UnsafeArchiveError,
    expected_length,
    open_submission,
    score_submission,
    validate_submission,
)
from urgentbench.suites import Suite, get_suite

METRICS = [MetricSpec("pesq"), MetricSpec("sdr")]
Env = tuple[Suite, dict[str, np.ndarray], Path]
README = {
    "team": "Team Quiet",
    "data used": ["DNS5 speech", "WHAM! noise"],
    "pretrained models": "none",
    "notes": "x" * 5000,
}


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """A mini suite of 8 utterances, their references, and the results folder caching inputs."""
    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(make_suite(tmp_path, n=8)))
    from urgentbench.suites import SUITES

    SUITES.rescan()
    suite = get_suite("mini")
    results = tmp_path / "results"
    refs = {u.id: load_inputs(u, suite.folder, results, suite.key)[1] for u in suite.utterances()}
    yield suite, refs, results
    monkeypatch.undo()
    SUITES.rescan()


def _flac(x: np.ndarray, rate: int = 16000, fmt: str = "FLAC", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def _enhanced(refs: dict[str, np.ndarray], seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {f"{i}.flac": _flac(r + 0.001 * rng.standard_normal(len(r))) for i, r in refs.items()}


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


def test_valid_zip_scores_and_readme_reaches_the_leaderboard_metadata(env, tmp_path: Path):
    suite, refs, results = env
    files = {f"team_quiet/enhanced/{k}": v for k, v in _enhanced(refs).items()}
    files["team_quiet/README.yaml"] = yaml.safe_dump(README).encode()
    files["__MACOSX/team_quiet/._README.yaml"] = b"\x00\x05\x16\x07junk"  # ignored
    files["team_quiet/enhanced/.DS_Store"] = b"junk"  # ignored
    archive = _zip(tmp_path / "team quiet.zip", files)

    run = score_submission(archive, suite, None, METRICS, RunOptions(results_dir=results, progress=False))
    assert run.problems == [] and run.warnings == []
    assert run.report.errors == [] and run.report.rows_written == 8 * 2
    with ResultStore(results / "results.sqlite") as store:
        (info,) = store.systems("mini", "1")
        for metric in METRICS:
            rows = store.rows(score_key(suite, run.producer, metric))
            assert len(rows) == 8 and all(r.error is None for r in rows)
    assert info["display_name"] == "Team Quiet"  # no --name: the README's team
    meta = info["metadata"]
    assert meta["team"] == "Team Quiet"
    assert meta["data used"] == "DNS5 speech; WHAM! noise"
    assert meta["pretrained models"] == "none"
    assert len(meta["notes"]) == 500 and meta["notes"].endswith("…")  # length-capped
    assert meta["submission"] == "team quiet.zip" and len(meta["submission_sha256"]) == 64
    assert all(isinstance(v, str) for v in meta.values())
    assert _listing(results / "submissions") == []  # the extraction folder is removed

    # re-scoring the same archive reuses every stored result
    again = score_submission(
        archive, suite, "renamed", METRICS,
        RunOptions(results_dir=results, progress=False),
    )
    assert again.producer.config_hash == run.producer.config_hash


def test_folder_submission_flat_and_urgent_layout(env, tmp_path: Path):
    suite, refs, results = env
    flat = tmp_path / "flat"
    flat.mkdir()
    for name, data in _enhanced(refs).items():
        (flat / name).write_bytes(data)
    with pytest.raises(SubmissionError, match="no name given and README.yaml has no team name"):
        score_submission(flat, suite, None, METRICS, RunOptions(results_dir=results, progress=False))
    run = score_submission(
        flat, suite, "flat-team", METRICS,
        RunOptions(results_dir=results, progress=False, limit=3),
    )
    assert run.problems == [] and run.warnings == []  # a plain folder needs no README
    assert run.report.rows_written == 3 * 2 and not run.report.errors
    assert run.metadata == {"outputs": str(flat.resolve())}
    assert flat.is_dir() and len(list(flat.iterdir())) == 8  # a folder is never touched

    urgent = tmp_path / "urgent"
    (urgent / "enhanced").mkdir(parents=True)
    for name, data in _enhanced(refs, seed=1).items():
        (urgent / "enhanced" / name).write_bytes(data)
    run = score_submission(
        urgent, suite, "urgent-team", METRICS,
        RunOptions(results_dir=results, progress=False, limit=3),
    )
    # a folder in URGENT's layout without README.yaml: a warning, not a problem
    assert run.problems == [] and len(run.warnings) == 1 and "README.yaml: not found" in run.warnings[0]
    (urgent / "README.yaml").write_text("team: [unclosed\n")
    sub = open_submission(urgent, suite, workdir=tmp_path / "work")
    assert validate_submission(sub, suite) == []
    assert len(sub.warnings) == 1 and "not valid YAML" in sub.warnings[0]


def test_every_problem_is_reported_at_once(env, tmp_path: Path):
    suite, refs, results = env
    ids = sorted(refs)
    files = {f"enhanced/{k}": v for k, v in _enhanced(refs).items()}
    del files[f"enhanced/{ids[0]}.flac"]  # missing
    files["enhanced/not_in_suite.flac"] = files[f"enhanced/{ids[7]}.flac"]  # extra
    files[f"enhanced/{ids[1]}.wav"] = _flac(refs[ids[1]], fmt="WAV")  # duplicate of the .flac
    files[f"enhanced/{ids[2]}.flac"] = _flac(refs[ids[2]], rate=8000)  # wrong rate
    files[f"enhanced/{ids[3]}.flac"] = _flac(np.stack([refs[ids[3]]] * 2, axis=1))  # stereo
    files[f"enhanced/{ids[4]}.flac"] = _flac(refs[ids[4]][:-10])  # length mismatch
    files[f"enhanced/{ids[5]}.flac"] = b"this is not audio"  # unreadable
    nan = refs[ids[6]].copy()
    nan[100:103] = [np.nan, np.inf, -np.inf]
    del files[f"enhanced/{ids[6]}.flac"]
    files[f"enhanced/{ids[6]}.wav"] = _flac(nan, fmt="WAV", subtype="FLOAT")  # NaN / Inf
    archive = _zip(tmp_path / "bad.zip", files)  # and no README.yaml

    sub = open_submission(archive, suite, workdir=tmp_path / "work")
    problems = validate_submission(sub, suite, jobs=2)
    sub.cleanup()
    expected = [
        f"{archive}:README.yaml: not found",
        f"{archive}:enhanced/{ids[0]}.flac: missing",
        f"{archive}:enhanced/{ids[1]}.flac: duplicate outputs for utterance '{ids[1]}'",
        f"{archive}:enhanced/{ids[2]}.flac: sample rate 8000 Hz, expected the input's 16000 Hz",
        f"{archive}:enhanced/{ids[3]}.flac: 2 channels, expected mono",
        f"{archive}:enhanced/{ids[4]}.flac: {len(refs[ids[4]]) - 10} samples, expected exactly the input's "
        f"{len(refs[ids[4]])}",
        f"{archive}:enhanced/{ids[5]}.flac: not a readable audio file",
        f"{archive}:enhanced/{ids[6]}.wav: 3 NaN or Inf samples",
        f"{archive}:enhanced/not_in_suite.flac: 'not_in_suite' is not an utterance of suite 'mini'",
    ]
    assert len(problems) == len(expected), "\n".join(problems)
    for line, start in zip(problems, expected):
        assert line.startswith(start), (line, start)
        assert "\n" not in line
    assert _listing(tmp_path / "work") == []

    # strict (the default): nothing is scored and the error lists every problem, one per line
    with pytest.raises(SubmissionError) as info:
        score_submission(archive, suite, "bad", METRICS, RunOptions(results_dir=results, progress=False))
    assert info.value.problems == problems
    assert all(p in str(info.value).splitlines()[i + 1] for i, p in enumerate(problems))
    with ResultStore(results / "results.sqlite") as store:
        assert store.systems("mini", "1") == []

    # not strict: scored anyway, the bad utterances become missing values with their reason
    run = score_submission(
        archive, suite, "bad", METRICS,
        RunOptions(results_dir=results, progress=False, strict=False),
    )
    assert run.problems == problems
    failed = {line.split("/")[1].split(":")[0] for line in run.report.errors}
    assert failed == {ids[0], ids[2], ids[3], ids[4], ids[5], ids[6]}


def test_same_id_in_two_folders_and_misnamed_files(env, tmp_path: Path):
    suite, refs, _ = env
    ids = sorted(refs)
    folder = tmp_path / "sub"
    (folder / "enhanced" / "retry").mkdir(parents=True)
    (folder / "README.yaml").write_text("team: t\n")
    for name, data in _enhanced(refs).items():
        (folder / "enhanced" / name).write_bytes(data)
    (folder / "enhanced" / "retry" / f"{ids[0]}.flac").write_bytes(_flac(refs[ids[0]]))
    (folder / "enhanced" / f"{ids[1]}.flac").rename(folder / "enhanced" / f"{ids[1]}.FLAC")
    (folder / "enhanced" / "notes.txt").write_text("hello")
    sub = open_submission(folder, suite, workdir=tmp_path / "work")
    problems = validate_submission(sub, suite)
    enhanced = folder / "enhanced"
    assert problems == [
        f"{enhanced}/{ids[0]}.flac: duplicate outputs for utterance '{ids[0]}': "
        f"enhanced/{ids[0]}.flac, enhanced/retry/{ids[0]}.flac",
        f"{enhanced}/retry/{ids[0]}.flac: not directly in {enhanced}",
        f"{enhanced}/{ids[1]}.FLAC: extension must be lower-case .flac or .wav",
    ]
    assert sub.warnings == [f"{enhanced}/notes.txt: not a .flac or .wav file; ignored"]
    assert sub.metadata == {"team": "t"}


def test_readme_missing_or_malformed_in_a_zip_is_a_problem(env, tmp_path: Path):
    suite, refs, _ = env
    files = {f"enhanced/{k}": v for k, v in _enhanced(refs).items()}
    cases = [
        (None, "README.yaml: not found"),
        (b"- just\n- a list\n", "expected a YAML mapping"),
        (b"team: [unclosed\n", "not valid YAML"),
    ]
    for readme, message in cases:
        if readme is not None:
            files["README.yaml"] = readme
        with open_submission(_zip(tmp_path / "s.zip", files), suite, workdir=tmp_path / "work") as sub:
            problems = validate_submission(sub, suite)
        assert len(problems) == 1 and message in problems[0], problems
    # audio outside enhanced/ in a zip: the layout is a problem, the files are still found
    flat = {k.removeprefix("enhanced/"): v for k, v in files.items()}
    flat["README.yaml"] = b"team: t\n"
    with open_submission(_zip(tmp_path / "flat.zip", flat), suite, workdir=tmp_path / "work") as sub:
        problems = validate_submission(sub, suite)
    assert len(problems) == 1 and "no enhanced/ folder" in problems[0]


def test_macos_debris_is_ignored_and_never_extracted(env, tmp_path: Path):
    suite, refs, _ = env
    files = {f"sub/enhanced/{k}": v for k, v in _enhanced(refs).items()}
    files["sub/README.yaml"] = b"team: t\n"
    files["__MACOSX/sub/enhanced/._x.flac"] = b"junk"
    files["sub/.DS_Store"] = b"junk"
    files["sub/enhanced/._y.flac"] = b"junk"
    with open_submission(_zip(tmp_path / "mac.zip", files), suite, workdir=tmp_path / "work") as sub:
        assert validate_submission(sub, suite) == [] and sub.warnings == []
        listing = _listing(sub.extraction_dir)
        assert sub.root.name == "sub" and sub.team == "t"
    assert not any("MACOSX" in p or "DS_Store" in p or "._" in p for p in listing)


# --------------------------------------------------------------------------- hostile archives


def _entry(name: str, data: bytes = b"x", mode: int | None = None) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    if mode is not None:
        info.external_attr = mode << 16
    return info, data


@pytest.fixture(scope="module")
def bomb_bytes() -> bytes:
    """200 MB of zeros deflated to about 200 KB, as one entry."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("enhanced/mini_000.wav")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as f:
            zeros = bytes(1 << 20)
            for _ in range(200):
                f.write(zeros)
    return buf.getvalue()


def _lie_about_size(blob: bytes, declared: int) -> bytes:
    """Patch the uncompressed size of the (only) entry in both its local and central headers."""
    data = bytearray(blob)
    local = data.index(b"PK\x03\x04")
    central = data.rindex(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, declared)
    struct.pack_into("<I", data, central + 24, declared)
    return bytes(data)


HOSTILE = {
    "absolute": ("absolute path", lambda tmp: [_entry(str(tmp / "abs_evil.flac"))]),
    "dotdot": ("'..' component", lambda tmp: [_entry("ok"), _entry("../evil"), _entry("../../evil")]),
    "backslash-dotdot": ("'..' component", lambda tmp: [_entry("..\\..\\evil")]),
    "symlink": ("symbolic link", lambda tmp: [_entry("enhanced/mini_000.flac", b"/etc/passwd", 0o120777)]),
    "device": ("not a regular file", lambda tmp: [_entry("enhanced/dev", b"", 0o020644)]),
    "duplicate": ("duplicate name", lambda tmp: [_entry("enhanced/a.flac"), _entry("enhanced/a.flac")]),
    "case-duplicate": ("duplicate name", lambda tmp: [_entry("enhanced/a.flac"), _entry("Enhanced/A.flac")]),
    "file-and-folder": ("lies under a file", lambda tmp: [_entry("enhanced"), _entry("enhanced/a.flac")]),
    "too-many-files": ("more than 10 files", lambda tmp: [_entry(f"enhanced/{i}.flac") for i in range(30)]),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_archives_are_refused_before_anything_is_written(env, tmp_path: Path, kind: str):
    suite, _, _ = env
    message, build = HOSTILE[kind]
    archive = tmp_path / "in" / "hostile.zip"
    archive.parent.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is asked to write
        with zipfile.ZipFile(archive, "w") as zf:
            for info, data in build(tmp_path):
                zf.writestr(info, data)
    before = _listing(tmp_path)
    workdir = tmp_path / "work" / "nested"
    with pytest.raises(UnsafeArchiveError) as info:
        open_submission(archive, suite, workdir=workdir, max_files=10)
    text = str(info.value)
    assert message in text and str(archive) in text and "entry" in text
    assert "\n" not in text
    assert not (tmp_path / "work").exists()  # refused before even the work folder was made
    assert _listing(tmp_path) == before
    assert not (tmp_path / "evil").exists() and not (tmp_path / "work" / "evil").exists()
    assert not (tmp_path / "abs_evil.flac").exists()


def test_zip_bomb_is_refused_by_declared_size_and_by_ratio(env, tmp_path: Path, bomb_bytes: bytes):
    suite, _, _ = env
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(bomb_bytes)
    workdir = tmp_path / "work"
    too_big = r"uncompressed size exceeds the limit of 10000000 bytes at entry 'enhanced/mini_000\.wav'"
    with pytest.raises(UnsafeArchiveError, match=too_big):
        open_submission(archive, suite, workdir=workdir, max_total_bytes=10_000_000, max_ratio=1e9)
    ratio = r"entry 'enhanced/mini_000.wav' declares a compression ratio of \d+:1, above the limit of 200:1"
    with pytest.raises(UnsafeArchiveError, match=ratio):
        open_submission(archive, suite, workdir=workdir)  # default 2 GiB cap, ratio cap 200:1
    assert not workdir.exists()


def test_zip_bomb_lying_about_its_size_is_stopped_while_streaming(env, tmp_path: Path, bomb_bytes: bytes):
    suite, _, _ = env
    archive = tmp_path / "liar.zip"
    archive.write_bytes(_lie_about_size(bomb_bytes, 1000))  # headers claim 1000 bytes
    workdir = tmp_path / "work"
    message = r"liar.zip: entry 'enhanced/mini_000.wav' cannot be extracted"
    with pytest.raises(SubmissionError, match=message) as info:
        open_submission(archive, suite, workdir=workdir, max_total_bytes=10_000)
    assert "\n" not in str(info.value)
    assert _listing(workdir) == []  # the fresh folder, with its partial file, is gone


def test_extraction_goes_to_a_fresh_folder_every_time(env, tmp_path: Path):
    suite, refs, _ = env
    files = {f"enhanced/{k}": v for k, v in _enhanced(refs).items()}
    files["README.yaml"] = b"team: t\n"
    archive = _zip(tmp_path / "s.zip", files)
    workdir = tmp_path / "work"
    a = open_submission(archive, suite, workdir=workdir)
    b = open_submission(archive, suite, workdir=workdir)
    assert a.extraction_dir != b.extraction_dir
    assert a.extraction_dir.parent == b.extraction_dir.parent == workdir.resolve()
    a.cleanup()
    b.cleanup()
    assert _listing(workdir) == []
    (tmp_path / "notes.zip").write_text("not a zip")
    with pytest.raises(SubmissionError, match="neither a folder nor a zip archive"):
        open_submission(tmp_path / "notes.zip", suite, workdir=workdir)
    with pytest.raises(SubmissionError, match="submission not found"):
        open_submission(tmp_path / "nope.zip", suite, workdir=workdir)


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 44100, 48000])
def test_expected_length_matches_the_rendered_input(env, rate: int):
    suite, _, _ = env
    for utt in (
        Utterance(id="sim", sample_rate=rate, clean=str(FIXTURES / "speech_a_22k.flac")),
        Utterance(id="rec", sample_rate=rate, noisy=str(FIXTURES / "speech_b_22k.flac")),
    ):
        assert expected_length(utt, suite) == len(render_utterance(utt, suite.folder).noisy)


def test_expected_length_holds_through_every_builtin_degradation():
    """Degradations never change the length, so the clean source gives the input's length."""
    suite = get_suite("demo")
    covered: set[str] = set()
    for utt in suite.utterances():
        names = {d.name for d in utt.degradations}
        if names <= covered:
            continue
        covered |= names
        assert expected_length(utt, suite) == len(render_utterance(utt, suite.folder).noisy), utt.id
    assert covered >= {"noise", "reverb", "clipping", "bandwidth_limit"}
