"""Hostile files: outputs that are special files, forged or lossy, a poisoned README, damaged caches.

Special files and forged headers among outputs, lossy content named .flac, a poisoned
README.yaml, and damaged or replaced audio caches (issue 15, defects 2, 5 and 7).

Every case asserts the exact outcome: the one-line problem of strict validation, the reason
stored for the utterance by ``score --no-strict``, or the value scored after a cache repair.
The CLI runs that could hang on a special file run in a subprocess with a timeout.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_runner import make_suite

from urgentbench.audio import (
    AudioError,
    ChecksumError,
    checksum_path,
    file_problem,
    read_checked_flac,
    read_file_bytes,
    write_flac,
)
from urgentbench.cli import main
from urgentbench.layout import enhanced_path
from urgentbench.runner import (
    MetricSpec,
    RunOptions,
    directory_producer,
    input_paths,
    load_inputs,
    max_output_bytes,
    run,
    system_producer,
)
from urgentbench.store import ResultStore
from urgentbench.submission import SubmissionError, expected_length, open_submission, validate_submission
from urgentbench.suites import Suite, get_suite

ROOT = Path(__file__).resolve().parents[1]
N_UTTS = 16
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
#: Far beyond any real utterance: a FLAC STREAMINFO can declare up to 2**36 - 1 samples.
FORGED_FRAMES = 2**36 - 1


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Suite, dict[str, np.ndarray], Path]]:
    """A mini suite of 16 utterances, their references and a results folder caching the inputs."""
    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(make_suite(tmp_path, n=N_UTTS)))
    from urgentbench.suites import SUITES

    SUITES.rescan()
    suite = get_suite("mini")
    results = tmp_path / "results"
    refs = {u.id: load_inputs(u, suite.folder, results, suite.key)[1] for u in suite.utterances()}
    yield suite, refs, results
    monkeypatch.undo()
    SUITES.rescan()


def _encode(x: np.ndarray, fmt: str = "FLAC", subtype: str | None = None, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def _output(ref: np.ndarray, seed: int) -> np.ndarray:
    """A plausible enhanced output: the reference plus a little noise, on the 16-bit grid."""
    y = ref + 0.01 * np.random.default_rng(seed).standard_normal(len(ref))
    return (np.round(y * 32767) / 32768).astype(np.float32)


def _forge_total_samples(flac: bytes, total: int) -> bytes:
    """A FLAC whose STREAMINFO declares ``total`` samples (the audio frames are untouched)."""
    assert flac[:4] == b"fLaC" and flac[4] & 0x7F == 0  # STREAMINFO first
    data = bytearray(flac)
    word = int.from_bytes(data[18:26], "big")  # rate(20) channels(3) bits(5) total samples(36)
    word = (word & ~((1 << 36) - 1)) | total
    data[18:26] = word.to_bytes(8, "big")
    return bytes(data)


def _bind_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    return sock


# --------------------------------------------------------------------------- the hostile outputs folder


def _plant(out: Path, ids: list[str], refs: dict[str, np.ndarray], keep: list) -> dict[str, tuple[list[str], str | None]]:
    """One hostile (or tolerated) output per utterance in ``out``.

    Returns:
        ``{utterance id: (strict problems without the file name, reason stored by --no-strict
        without the "no enhanced audio: AudioError: <path>: " prefix, or None when scored)}``.
    """
    expected: dict[str, tuple[list[str], str | None]] = {}
    it = iter(ids)
    real = str(out.resolve())

    def path_of(utt: str) -> Path:
        return out / f"{utt}.flac"

    # 1. a link to /dev/zero: hashing it never ended
    u = next(it)
    path_of(u).symlink_to("/dev/zero")
    problem = f"is a symbolic link to '/dev/zero', outside {real!r}; refused"
    expected[u] = ([problem], problem)
    # 2. a FIFO: open() blocked for ever
    u = next(it)
    os.mkfifo(path_of(u))
    problem = "is a named pipe (FIFO), not a regular file"
    expected[u] = ([problem], problem)
    # 3. a directory named like an output: IsADirectoryError with a traceback
    u = next(it)
    path_of(u).mkdir()
    problem = "is a directory, not a regular file"
    expected[u] = ([problem], problem)
    # 4. a socket
    u = next(it)
    keep.append(_bind_socket(path_of(u)))
    problem = "is a socket, not a regular file"
    expected[u] = ([problem], problem)
    # 5. a broken link
    u = next(it)
    path_of(u).symlink_to("nowhere.flac")
    problem = "is a broken symbolic link (to 'nowhere.flac', which does not exist)"
    expected[u] = ([problem], problem)
    # 6. a link loop
    u = next(it)
    path_of(u).symlink_to(f"{u}.flac")
    problem = "is a symbolic link loop"
    expected[u] = ([problem], problem)
    # 7. a link escaping through '..' to a perfectly good file
    u = next(it)
    outside = out.parent / f"outside_{u}.flac"
    outside.write_bytes(_encode(_output(refs[u], 7)))
    path_of(u).symlink_to(Path("..") / outside.name)
    problem = f"is a symbolic link to {str(outside.resolve())!r}, outside {real!r}; refused"
    expected[u] = ([problem], problem)
    # 8. a link inside the folder, but to a folder
    u = next(it)
    (out / "folder").mkdir()
    path_of(u).symlink_to("folder")
    problem = f"is a symbolic link to a directory ({str((out / 'folder').resolve())!r}), not a regular file"
    expected[u] = ([problem], problem)
    # 9. an empty file
    u = next(it)
    path_of(u).write_bytes(b"")
    problem = "file is empty (0 bytes)"
    expected[u] = ([problem], problem)
    # 10. a FLAC header declaring 2**36 - 1 samples (a reader trusting it allocates 256 GiB)
    u = next(it)
    n = len(refs[u])
    path_of(u).write_bytes(_forge_total_samples(_encode(_output(refs[u], 10)), FORGED_FRAMES))
    length = f"{FORGED_FRAMES} samples, expected exactly the input's {n} (outputs are never trimmed or padded)"
    # (libsndfile gives up seeking past the real end of the data: that is the decoding problem)
    expected[u] = ([length, "not a readable audio file (Internal psf_fseek() failed.)"], length)
    # 11. MP3 bytes named .flac
    u = next(it)
    path_of(u).write_bytes(_encode(_output(refs[u], 11), "MP3", "MPEG_LAYER_III"))
    problem = "lossy MP3 content in a .flac file; outputs must be lossless FLAC or WAV"
    expected[u] = ([problem], problem)
    # 12. Ogg Vorbis bytes named .flac
    u = next(it)
    path_of(u).write_bytes(_encode(_output(refs[u], 12), "OGG", "VORBIS"))
    problem = "lossy Ogg Vorbis content in a .flac file; outputs must be lossless FLAC or WAV"
    expected[u] = ([problem], problem)
    # 13. a (sparse) file larger than any output of that length can be: refused by its size
    u = next(it)
    size = max_output_bytes(len(refs[u])) + 1
    with open(path_of(u), "wb") as f:
        f.truncate(size)
    problem = f"{size} bytes, more than the {size - 1} allowed for this file"
    expected[u] = ([problem], problem)
    # 14. a FLAC cut in half
    u = next(it)
    whole = _encode(_output(refs[u], 14))
    path_of(u).write_bytes(whole[: len(whole) // 2])
    expected[u] = (["not a readable audio file (flac decoder lost sync.)"], "not a readable audio file (flac decoder lost sync.)")
    # 15. lossless WAV bytes named .flac: tolerated and scored
    u = next(it)
    path_of(u).write_bytes(_encode(_output(refs[u], 15), "WAV", "PCM_16"))
    expected[u] = ([], None)
    # 16. a link to a regular file inside the folder: followed and scored
    u = next(it)
    (out / "store").mkdir()
    (out / "store" / "kept.bin").write_bytes(_encode(_output(refs[u], 16)))
    path_of(u).symlink_to(Path("store") / "kept.bin")
    expected[u] = ([], None)
    assert next(it, None) is None
    return expected


def _stored(results: Path) -> dict[str, tuple[dict | None, str | None]]:
    db = sqlite3.connect(results / "results.sqlite")
    rows = db.execute("SELECT utt_id, result_json, error FROM scores WHERE metric = 'sdr'").fetchall()
    db.close()
    return {utt: (None if result is None else json.loads(result), error) for utt, result, error in rows}


def _score(args: list[str], env_suites: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``urgentbench score`` in a subprocess, so that a hang fails the test instead of stalling it."""
    environ = {**os.environ, "URGENTBENCH_SUITES_PATH": env_suites}
    return subprocess.run(
        [sys.executable, "-m", "urgentbench.cli", "-q", "score", *args],
        env=environ, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX special files")
def test_hostile_outputs_through_the_cli_strict_and_not(env, tmp_path: Path):
    """Sixteen hostile or odd outputs, scored through `urgentbench score` strict and --no-strict."""
    suite, refs, results = env
    ids = sorted(refs)
    out = tmp_path / "outputs"
    out.mkdir()
    out = out.resolve()
    keep: list[socket.socket] = []
    expected = _plant(out, ids, refs, keep)
    suites = os.environ["URGENTBENCH_SUITES_PATH"]
    common = ["--suite", "mini", "--outputs", str(out), "--name", "hostile", "--metrics", "sdr",
              "--results-dir", str(results), "--jobs", "1"]
    try:
        strict = _score(common, suites)
        nothing_stored = not (results / "results.sqlite").exists() or not _stored(results)
        loose = _score([*common, "--no-strict"], suites)
    finally:
        for sock in keep:
            sock.close()

    # strict: every problem listed, one line each naming its file, and nothing scored
    assert strict.returncode == 2, strict.stderr
    lines = strict.stderr.splitlines()
    n_problems = sum(len(p) for p, _ in expected.values())
    header = f"urgentbench: error: {out}: {n_problems} problem(s), nothing was scored (use --no-strict to score anyway):"
    assert lines[-n_problems - 1] == header
    assert lines[:-n_problems - 1] == [  # the file a link points to, inside the folder, is no output of its own
        f"WARNING urgentbench.submission: {out / 'store' / 'kept.bin'}: not a .flac or .wav file; ignored"
    ]
    listed = [line.removeprefix("  ") for line in lines[-n_problems:]]
    want = [f"{out / f'{u}.flac'}: {p}" for u in ids for p in expected[u][0]]
    assert sorted(listed) == sorted(want)
    assert "Traceback" not in strict.stderr
    assert nothing_stored

    # not strict: each bad file is that utterance's failure with its one-line reason, the rest is scored
    assert loose.returncode == 0, loose.stderr
    assert "Traceback" not in loose.stderr
    rows = _stored(results)
    assert sorted(rows) == ids
    for u in ids:
        result, error = rows[u]
        reason = expected[u][1]
        if reason is None:
            assert error is None and result is not None, (u, error)
        else:
            assert result is None and error == f"no enhanced audio: AudioError: {out / f'{u}.flac'}: {reason}", u
    # the tolerated ones score what a plain FLAC of the same samples scores
    clean = tmp_path / "clean"
    clean.mkdir()
    for u in ids[14:]:
        sf.write(clean / f"{u}.flac", _output(refs[u], 15 if u == ids[14] else 16), 16000, subtype="PCM_16")
    again = _score(["--suite", "mini", "--outputs", str(clean), "--name", "clean", "--metrics", "sdr",
                    "--results-dir", str(tmp_path / "clean-results"), "--jobs", "1", "--no-strict",
                    "--limit", str(N_UTTS)], suites)
    assert again.returncode == 0, again.stderr
    reference = _stored(tmp_path / "clean-results")
    for u in ids[14:]:
        assert rows[u][0] == reference[u][0]

    # the lossy ones are warned about on stderr, one line per file, and noted in the leaderboard metadata
    for u, kind in ((ids[10], "MP3"), (ids[11], "Ogg Vorbis")):
        line = f"{out / f'{u}.flac'}: lossy {kind} content in a .flac file; outputs must be lossless FLAC or WAV"
        assert loose.stderr.splitlines().count(f"WARNING urgentbench.submission: {line}") == 1
    with ResultStore(results / "results.sqlite") as store:
        (info,) = store.systems("mini", "1")
    assert info["metadata"]["lossy_outputs"] == (
        f"2 output(s) with lossy content, scored as failures: {ids[10]}.flac, {ids[11]}.flac"
    )


# --------------------------------------------------------------------------- single files


def test_character_device_inside_the_folder_is_refused(env, tmp_path: Path):
    suite, refs, _ = env
    utt = suite.utterances()[0]
    out = tmp_path / "outputs"
    out.mkdir()
    try:
        os.mknod(out / f"{utt.id}.flac", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # what /dev/zero is
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot create a device node here ({exc})")
    with open_submission(out, suite, workdir=tmp_path / "work") as sub:
        problems = validate_submission(sub, suite, limit=1)
    assert problems == [f"{out / f'{utt.id}.flac'}: is a character device, not a regular file"]
    assert file_problem(out / f"{utt.id}.flac") == "is a character device, not a regular file"


@pytest.mark.skipif(IS_ROOT, reason="root reads files whatever their permissions")
def test_unreadable_file_is_a_one_line_problem(env, tmp_path: Path):
    suite, refs, _ = env
    utt = suite.utterances()[0]
    out = tmp_path / "outputs"
    out.mkdir()
    path = out / f"{utt.id}.flac"
    path.write_bytes(_encode(_output(refs[utt.id], 0)))
    path.chmod(0)
    try:
        with open_submission(out, suite, workdir=tmp_path / "work") as sub:
            problems = validate_submission(sub, suite, limit=1)
        assert problems == [f"{path}: cannot be read (Permission denied)"]
        producer = directory_producer(out, "locked", [utt.id])
        assert producer.digests == ((utt.id, None),)
    finally:
        path.chmod(0o600)


def test_wav_header_claiming_gigabytes_reads_only_what_is_there(env, tmp_path: Path):
    """A WAV data chunk declaring 2 GB over 1000 real samples: counted as the 1000 it holds."""
    suite, refs, _ = env
    utt = suite.utterances()[0]
    wav = bytearray(_encode(_output(refs[utt.id], 0)[:1000], "WAV", "PCM_16"))
    at = wav.find(b"data")
    wav[at + 4 : at + 8] = (0x7FFFFFF0).to_bytes(4, "little")
    out = tmp_path / "outputs"
    out.mkdir()
    (out / f"{utt.id}.wav").write_bytes(bytes(wav))
    with open_submission(out, suite, workdir=tmp_path / "work") as sub:
        problems = validate_submission(sub, suite, limit=1)
    n = len(refs[utt.id])
    assert problems == [
        f"{out / f'{utt.id}.wav'}: 1000 samples, expected exactly the input's {n} (outputs are never trimmed or padded)"
    ]


def test_output_changed_after_it_was_checked_is_refused(env, tmp_path: Path):
    """The bytes scored are the bytes hashed: a file swapped between check and scoring is refused."""
    suite, refs, results = env
    utts = suite.utterances()[:2]
    out = tmp_path / "outputs"
    out.mkdir()
    for i, u in enumerate(utts):
        sf.write(out / f"{u.id}.flac", _output(refs[u.id], i), 16000, subtype="PCM_16")
    producer = directory_producer(out, "swapper", [u.id for u in utts])
    sf.write(out / f"{utts[1].id}.flac", refs[utts[1].id], 16000, subtype="PCM_16")  # the reference: SI-SDR 50
    run(suite, [producer], [MetricSpec("sdr")], RunOptions(results_dir=results, limit=2, progress=False))
    rows = _stored(results)
    assert rows[utts[0].id][1] is None and rows[utts[0].id][0]["sdr"] < 50
    assert rows[utts[1].id] == (
        None,
        f"no enhanced audio: AudioError: {out.resolve() / f'{utts[1].id}.flac'}: "
        "changed after the outputs were checked (sha256 differs); refused",
    )


# --------------------------------------------------------------------------- README.yaml and the submission path


def _folder_with_readme(tmp_path: Path, refs: dict[str, np.ndarray]) -> Path:
    sub = tmp_path / "team"
    (sub / "enhanced").mkdir(parents=True)
    sub = sub.resolve()
    for i, (utt, ref) in enumerate(sorted(refs.items())):
        sf.write(sub / "enhanced" / f"{utt}.flac", _output(ref, i), 16000, subtype="PCM_16")
    return sub


def test_readme_with_a_python_tag_names_the_yaml_problem(env, tmp_path: Path, capsys: pytest.CaptureFixture):
    suite, refs, results = env
    sub = _folder_with_readme(tmp_path, refs)
    marker = tmp_path / "pwned"
    (sub / "README.yaml").write_text(f'team: !!python/object/apply:os.system ["touch {marker}"]\n')
    code = main(["-q", "score", "--suite", "mini", "--outputs", str(sub), "--metrics", "sdr",
                 "--results-dir", str(results), "--jobs", "1"])
    assert code == 2
    assert capsys.readouterr().err == (
        f"urgentbench: error: {sub / 'README.yaml'}: YAML tag '!!python/object/apply:os.system' is not allowed "
        "(line 1, column 7); README.yaml must be plain key: value text "
        "(so no team name could be read from it; pass --name)\n"
    )
    assert not marker.exists()


def test_readme_that_is_a_fifo_or_escaping_link_is_never_opened(env, tmp_path: Path):
    suite, refs, _ = env
    sub = _folder_with_readme(tmp_path, refs)
    os.mkfifo(sub / "README.yaml")
    with open_submission(sub, suite, workdir=tmp_path / "work") as opened:
        assert opened.readme_problem == f"{sub / 'README.yaml'}: is a named pipe (FIFO), not a regular file"
        assert opened.metadata == {}
    (sub / "README.yaml").unlink()
    secret = tmp_path / "secret.yaml"
    secret.write_text("team: somebody else\n")
    (sub / "README.yaml").symlink_to(secret)
    with open_submission(sub, suite, workdir=tmp_path / "work") as opened:
        assert opened.readme_problem == (
            f"{sub / 'README.yaml'}: is a symbolic link to {str(secret.resolve())!r}, "
            f"outside {str(sub.resolve())!r}; refused"
        )
        assert opened.team is None


def test_submission_path_that_is_a_fifo_is_refused_without_opening_it(env, tmp_path: Path):
    suite, _, _ = env
    fifo = tmp_path / "submission.zip"
    os.mkfifo(fifo)
    with pytest.raises(SubmissionError) as info:
        open_submission(fifo, suite, workdir=tmp_path / "work")
    assert str(info.value) == f"{fifo}: is a named pipe (FIFO), not a folder or a zip archive"


# --------------------------------------------------------------------------- audio-level checks


def test_read_file_bytes_refuses_special_files_before_opening(tmp_path: Path):
    fifo = tmp_path / "pipe.flac"
    os.mkfifo(fifo)
    with pytest.raises(AudioError) as info:
        read_file_bytes(fifo)
    assert str(info.value) == f"{fifo}: is a named pipe (FIFO), not a regular file"
    with pytest.raises(AudioError) as info:
        read_file_bytes("/dev/zero")
    assert str(info.value) == "/dev/zero: is a character device, not a regular file"
    link = tmp_path / "zero.flac"
    link.symlink_to("/dev/zero")
    with pytest.raises(AudioError) as info:
        read_file_bytes(link)  # no folder to stay in: still never read, for what it points to
    assert str(info.value) == f"{link}: is a symbolic link to a character device ('/dev/zero'), not a regular file"


# --------------------------------------------------------------------------- cached audio (defect 5)


@pytest.fixture(scope="module")
def demo_base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The demo suite's first utterance enhanced by ``noisy`` and scored with SDR, and its SI-SDR from a fresh run."""
    suite = get_suite("demo")
    producer = system_producer("noisy")
    base = tmp_path_factory.mktemp("demo-cache")
    fresh = base / "fresh"
    run(suite, [producer], [MetricSpec("si_sdr")], RunOptions(results_dir=fresh, limit=1, progress=False))
    (value,) = [json.loads(r) for (r,) in sqlite3.connect(fresh / "results.sqlite").execute(
        "SELECT result_json FROM scores WHERE metric = 'si_sdr'")]
    run(
        suite, [producer], [MetricSpec("sdr")],
        RunOptions(results_dir=base / "results", limit=1, progress=False),
    )
    return base / "results", value["si_sdr"]


@pytest.fixture()
def demo_cache(demo_base: tuple[Path, float], tmp_path: Path) -> tuple[Suite, Path, list, float]:
    """A private copy of :func:`demo_base`'s results folder, free to damage."""
    base, value = demo_base
    results = tmp_path / "results"
    shutil.copytree(base, results)
    return get_suite("demo"), results, [system_producer("noisy")], value


def _rescore_si_sdr(suite: Suite, results: Path, producers: list) -> float:
    run(
        suite, producers, [MetricSpec("sdr"), MetricSpec("si_sdr")],
        RunOptions(results_dir=results, limit=1, progress=False),
    )
    (row,) = sqlite3.connect(results / "results.sqlite").execute(
        "SELECT result_json, error FROM scores WHERE metric = 'si_sdr'").fetchall()
    assert row[1] is None
    return json.loads(row[0])["si_sdr"]


def _enhanced_file(suite: Suite, results: Path, producer) -> Path:
    return enhanced_path(results, suite.key, producer.name, producer.config_hash, suite.utterances(1)[0].id)


@pytest.mark.parametrize("damage", ["truncated", "overwritten", "replaced by the reference", "no checksum"])
def test_damaged_enhanced_cache_is_regenerated_and_scored_correctly(demo_cache, damage: str, caplog):
    suite, results, producers, fresh_value = demo_cache
    path = _enhanced_file(suite, results, producers[0])
    good = path.read_bytes()
    assert checksum_path(path).read_text() == f"{hashlib.sha256(good).hexdigest()}  {path.name}\n"
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 3])
    elif damage == "overwritten":
        path.write_bytes(good[:2000] + bytes(500) + good[2500:])
    elif damage == "replaced by the reference":
        utt = suite.utterances(1)[0]
        path.write_bytes(input_paths(results, suite.key, utt.id)[1].read_bytes())
    else:
        checksum_path(path).unlink()
    with caplog.at_level(logging.INFO, logger="urgentbench.pipeline"):
        value = _rescore_si_sdr(suite, results, producers)
    assert value == fresh_value  # not SI-SDR 50 of the reference, not a failure
    assert path.read_bytes() == good  # enhanced again, re-recorded
    assert checksum_path(path).read_text() == f"{hashlib.sha256(good).hexdigest()}  {path.name}\n"
    reason = ("no sha256 recorded when it was written" if damage == "no checksum"
              else "sha256 differs from the one recorded when it was written (damaged or replaced)")
    utt_id = suite.utterances(1)[0].id
    level = "INFO" if damage == "no checksum" else "WARNING"  # an older cache is expected, damage is not
    assert [(r.levelname, r.getMessage()) for r in caplog.records if "cached output" in r.getMessage()] == [
        (level, f"cached output {path}: {reason}; enhancing {utt_id} again with noisy")
    ]


def test_damaged_cached_input_is_rendered_again(demo_cache, caplog):
    suite, results, producers, fresh_value = demo_cache
    utt = suite.utterances(1)[0]
    noisy_path, _ = input_paths(results, suite.key, utt.id)
    good = noisy_path.read_bytes()
    noisy_path.write_bytes(good[:-100] + bytes(100))
    with caplog.at_level(logging.WARNING, logger="urgentbench.pipeline"):
        noisy, reference = load_inputs(utt, suite.folder, results, suite.key)
    assert noisy_path.read_bytes() == good
    assert [r.getMessage() for r in caplog.records] == [
        f"cached input {noisy_path}: sha256 differs from the one recorded when it was written "
        "(damaged or replaced); rendering it again"
    ]
    assert np.array_equal(noisy, read_checked_flac(noisy_path)[0])


def test_expected_length_ignores_a_replaced_cached_input(env):
    suite, refs, results = env
    utt = suite.utterances()[0]
    noisy_path, _ = input_paths(results, suite.key, utt.id)
    true_length = expected_length(utt, suite, results)
    assert true_length == len(refs[utt.id])
    noisy_path.write_bytes(_encode(np.zeros(1234, np.float32)))  # valid FLAC, wrong length, no matching record
    assert expected_length(utt, suite, results) == true_length


def test_checksum_record_is_sha256sum_format_and_malformed_records_are_refused(tmp_path: Path):
    x = (np.arange(1600) % 64 / 256).astype(np.float32)
    path = tmp_path / "x.flac"
    digest = write_flac(path, x, 16000, record_checksum=True)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert checksum_path(path).read_text() == f"{digest}  x.flac\n"
    check = subprocess.run(["sha256sum", "-c", "x.flac.sha256"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout == "x.flac: OK\n"
    y, rate = read_checked_flac(path)
    assert rate == 16000 and np.array_equal(y, x)
    checksum_path(path).write_text("not a digest\n")
    with pytest.raises(ChecksumError) as info:
        read_checked_flac(path)
    assert str(info.value) == f"{path}: its checksum record x.flac.sha256 is malformed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.flac", "x.flac.sha256"]  # no temporary left
