"""External corpora: downloads, verification, DNS-2020 preparation, its suites and the `data` CLI.

Nothing here touches the internet: downloads come from a local HTTP server, and the corpus
is a stand-in tree of small synthetic WAV files whose checksums the tests recompute.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import load_speech, white_noise_mix

from urgentbench.cli import main
from urgentbench.data import corpus_root, prepared_corpora, resolve_corpus_path
from urgentbench.data.base import CorpusError
from urgentbench.data.corpora import CORPORA, FileEntry, verify_files, write_checksums
from urgentbench.data.dns2020 import (
    DNS2020,
    TEST_SET,
    build_suites,
    parse_real_name,
    parse_synthetic_name,
    pinned_checksums,
)
from urgentbench.data.download import DownloadError, download, part_path
from urgentbench.manifest import file_sha256, read_manifest
from urgentbench.suites import PROJECT_SUITES_DIR, get_suite

ROOT = Path(__file__).resolve().parents[1]
DNS_SUITES = {"dns2020-no-reverb": 150, "dns2020-with-reverb": 150, "dns2020-real": 300}


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------


def write_wav(path: Path, x: np.ndarray, sample_rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sample_rate, subtype="PCM_16", format="WAV")


def tone(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(n)).astype(np.float32)


def stand_in_files(root: Path, paths: list[str], n_samples: int = 160) -> list[FileEntry]:
    """Tiny valid 16 kHz mono WAVs at ``paths`` under ``root``, with recomputed checksums."""
    entries = []
    for i, rel in enumerate(paths):
        path = root / rel
        write_wav(path, tone(n_samples, i))
        entries.append(FileEntry(rel, file_sha256(path), path.stat().st_size))
    return entries


def recompute(root: Path, entries: list[FileEntry]) -> list[FileEntry]:
    return [FileEntry(e.path, file_sha256(root / e.path), (root / e.path).stat().st_size) for e in entries]


@pytest.fixture()
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $URGENTBENCH_DATA, so nothing is prepared."""
    home = tmp_path / "urgentbench-data"
    monkeypatch.setenv("URGENTBENCH_DATA", str(home))
    return home


# ----------------------------------------------------------------------------------------
# a local HTTP server with Range support
# ----------------------------------------------------------------------------------------


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    ignore_range: bool = False
    fail_next: int = 0  # answer this many requests with 503
    cut_next_after: int | None = None  # send only this many body bytes once, then close


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        range_header = self.headers.get("Range")
        state.requests.append((path, range_header))
        if state.fail_next > 0:
            state.fail_next -= 1
            self.send_error(503, "try again")
            return
        body = state.files.get(path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if match and not state.ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if state.cut_next_after is not None:
            chunk, state.cut_next_after = chunk[: state.cut_next_after], None
            self.close_connection = True
        self.wfile.write(chunk)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, ServerState]]:
    """``(base URL, state)`` of an HTTP server on 127.0.0.1 serving ``state.files``."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = ServerState()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", httpd.state  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()


# ----------------------------------------------------------------------------------------
# download
# ----------------------------------------------------------------------------------------


def file_sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _payload(n: int = 200_000, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def test_download_resumes_a_partial_file(server, tmp_path: Path):
    base, state = server
    body = _payload()
    state.files["a/b c.bin"] = body
    dest = tmp_path / "out" / "b c.bin"
    dest.parent.mkdir()
    part_path(dest).write_bytes(body[:70_000])
    sha = file_sha256_bytes(body)
    download(base + "a/b%20c.bin", dest, sha256=sha, size=len(body), progress=False)
    assert dest.read_bytes() == body
    assert not part_path(dest).exists()
    assert state.requests == [("a/b c.bin", "bytes=70000-")]


def test_download_restarts_when_the_server_ignores_range(server, tmp_path: Path):
    base, state = server
    body = _payload(seed=1)
    state.files["f.bin"] = body
    state.ignore_range = True
    dest = tmp_path / "f.bin"
    part_path(dest).write_bytes(b"x" * 5000)  # wrong bytes: must be replaced, not appended to
    download(base + "f.bin", dest, sha256=file_sha256_bytes(body), size=len(body), progress=False)
    assert dest.read_bytes() == body
    assert state.requests == [("f.bin", "bytes=5000-")]


def test_download_retries_transient_errors_and_resumes_after_a_dropped_connection(server, tmp_path: Path):
    base, state = server
    body = _payload(seed=2)
    state.files["f.bin"] = body
    state.fail_next = 2
    state.cut_next_after = 50_000
    dest = tmp_path / "f.bin"
    download(base + "f.bin", dest, sha256=file_sha256_bytes(body), size=len(body), progress=False, backoff=0)
    assert dest.read_bytes() == body
    assert [r for _, r in state.requests] == [None, None, None, "bytes=50000-"]


def test_download_gives_up_after_the_retries(server, tmp_path: Path):
    base, state = server
    state.files["f.bin"] = b"data"
    state.fail_next = 10
    with pytest.raises(DownloadError, match=r"HTTP 503.*gave up after 3 attempts"):
        download(base + "f.bin", tmp_path / "f.bin", retries=2, backoff=0, progress=False)
    assert len(state.requests) == 3


def test_download_does_not_retry_a_missing_file(server, tmp_path: Path):
    base, state = server
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        download(base + "nothing.bin", tmp_path / "nothing.bin", backoff=0, progress=False)
    assert base + "nothing.bin" in str(err.value)
    assert len(state.requests) == 1


def test_corrupted_download_is_deleted_and_names_url_file_and_checksums(server, tmp_path: Path):
    base, state = server
    good, bad = _payload(seed=3), bytearray(_payload(seed=3))
    bad[1000] ^= 0xFF
    state.files["f.bin"] = bytes(bad)
    dest = tmp_path / "f.bin"
    expected = file_sha256_bytes(good)
    with pytest.raises(DownloadError) as err:
        download(base + "f.bin", dest, sha256=expected, size=len(good), progress=False)
    message = str(err.value)
    assert base + "f.bin" in message and str(dest) in message
    assert expected in message and file_sha256_bytes(bytes(bad)) in message
    assert not dest.exists() and not part_path(dest).exists()


def test_download_with_wrong_size_names_expected_checksum(server, tmp_path: Path):
    base, state = server
    state.files["f.bin"] = b"short"
    with pytest.raises(DownloadError, match=r"got 5 bytes, expected 10 \(expected sha256 abc\)"):
        download(base + "f.bin", tmp_path / "f.bin", sha256="abc", size=10, progress=False)
    assert not part_path(tmp_path / "f.bin").exists()


# ----------------------------------------------------------------------------------------
# verification
# ----------------------------------------------------------------------------------------


def test_verify_files_lists_every_problem_at_once(tmp_path: Path):
    names = ["ok.wav", "missing.wav", "changed.wav", "rate8k.wav", "garbage.wav", "stereo.wav", "pointer.wav"]
    entries = stand_in_files(tmp_path, names)
    (tmp_path / "missing.wav").unlink()
    changed = bytearray((tmp_path / "changed.wav").read_bytes())
    changed[-1] ^= 0xFF  # same size, different bytes
    (tmp_path / "changed.wav").write_bytes(bytes(changed))
    write_wav(tmp_path / "rate8k.wav", tone(80, 0), 8000)
    (tmp_path / "garbage.wav").write_bytes(b"RIFF not really a wave file" * 10)
    write_wav(tmp_path / "stereo.wav", np.stack([tone(160, 1), tone(160, 2)], axis=1))
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 320044\n"
    (tmp_path / "pointer.wav").write_bytes(pointer)
    # the test changed these files on purpose; pin their new checksums so only the audio checks fail
    by_name = {e.path: e for e in entries}
    for name in ("rate8k.wav", "garbage.wav", "stereo.wav"):
        by_name[name] = recompute(tmp_path, [by_name[name]])[0]
    problems = verify_files(tmp_path, list(by_name.values()), sample_rate=16000, channels=1)
    found = {p.split(":", 1)[0]: p for p in problems}
    assert set(found) == set(names) - {"ok.wav"}
    sha = {e.path: e.sha256 for e in entries}
    assert found["missing.wav"] == f"missing.wav: missing (expected sha256 {sha['missing.wav']})"
    assert f"expected {sha['changed.wav']}" in found["changed.wav"]
    assert "sample rate 8000 Hz, expected 16000 Hz" in found["rate8k.wav"]
    assert "not readable as audio" in found["garbage.wav"]
    assert "2 channels, expected 1" in found["stereo.wav"]
    assert "Git-LFS pointer" in found["pointer.wav"] and sha["pointer.wav"] in found["pointer.wav"]
    # without audio checks only the checksum problems remain
    problems = verify_files(tmp_path, list(by_name.values()), check_audio=False)
    assert {p.split(":", 1)[0] for p in problems} == {"missing.wav", "changed.wav", "pointer.wav"}


# ----------------------------------------------------------------------------------------
# DNS-2020: names, suites
# ----------------------------------------------------------------------------------------


def test_synthetic_names_are_parsed_from_the_right():
    fields = parse_synthetic_name("clnsp178_baby_416649_0_snr15_tl-32_fileid_127.wav")
    assert fields == {
        "clean_clip": 178, "noise": "baby_416649_0", "noise_class": "baby", "snr_db": 15,
        "target_level_dbfs": -32, "fileid": 127,
    }
    fields = parse_synthetic_name("clnsp155_oDyn0_Ti63Q_snr16_tl-35_fileid_149.wav")
    assert (fields["noise"], fields["noise_class"], fields["fileid"]) == ("oDyn0_Ti63Q", "unlabelled", 149)
    fields = parse_synthetic_name("clnsp1_air_conditioner_151977_0_snr3_tl-20_fileid_5.wav")
    assert fields["noise_class"] == "air_conditioner"
    with pytest.raises(ValueError, match="not a DNS-2020 synthetic"):
        parse_synthetic_name("clean_fileid_5.wav")
    assert parse_real_name("audioset_realrec_babycry_0eHkPKES-Oc.wav") == {
        "source": "audioset", "noise_class": "babycry"}
    assert parse_real_name("ms_realrec_headset_Headphone-cafeteria-spk3-1.wav") == {
        "source": "ms", "device": "headset", "noise_class": "cafe"}


def test_checksum_list_is_complete_and_matches_the_shared_copy():
    entries = pinned_checksums()
    assert len(entries) == 900 and len({e.path for e in entries}) == 900
    assert all(e.path.startswith(TEST_SET + "/") and re.fullmatch(r"[0-9a-f]{64}", e.sha256) for e in entries)
    shared = Path("/work/shared/data/dns2020_test_set.csv")
    if shared.is_file():
        packaged = ROOT / "urgentbench" / "data" / "checksums" / "dns2020_test_set.csv"
        assert packaged.read_bytes() == shared.read_bytes()


@pytest.mark.parametrize("suite_name", sorted(DNS_SUITES))
def test_committed_dns2020_suites(suite_name: str):
    suite = get_suite(suite_name)
    suite.verify()  # manifest sha256 matches the card
    utterances = list(read_manifest(suite.manifest_path))
    assert len(utterances) == DNS_SUITES[suite_name]
    assert len({u.id for u in utterances}) == len(utterances)
    listed = {f"@dns2020/{e.path}" for e in pinned_checksums()}
    for utt in utterances:
        assert utt.noisy in listed and (utt.clean is None or utt.clean in listed)
        assert utt.sample_rate == 16000 and not utt.degradations and utt.text is None
    assert suite.extra["corpora"] == ["dns2020"]
    assert suite.sample_rate == 16000
    if suite_name == "dns2020-real":
        assert all(u.clean is None and u.tags["source"] in {"audioset", "ms"} for u in utterances)
        assert suite.metrics == ["dnsmos"] and suite.categories == {"non-intrusive": ["dnsmos_ovrl"]}
        assert "no clean reference and no transcript" in suite.description
    else:
        assert "wer" not in suite.metrics
        assert suite.categories["intrusive"] == ["pesq", "estoi", "sdr", "mcd", "lsd"]
        for utt in utterances:
            fileid = utt.id.rsplit("_", 1)[1]
            assert utt.noisy.endswith(f"_fileid_{fileid}.wav")
            assert utt.clean.endswith(f"/clean_fileid_{fileid}.wav")
            assert utt.tags["condition"] in utt.noisy and utt.tags["condition"] in utt.clean
            assert f"_snr{utt.tags['snr_db']}_" in utt.noisy
            lo, hi = map(int, utt.tags["snr_bin"].split("-"))
            assert lo <= int(utt.tags["snr_db"]) <= hi
    if suite_name == "dns2020-with-reverb":
        assert "REVERBERANT clean speech" in suite.description


def test_suites_are_rebuilt_identically_from_the_checksum_list(tmp_path: Path):
    build_suites(tmp_path)
    for suite_name in DNS_SUITES:
        for file in ("manifest.jsonl", "card.yaml"):
            rebuilt, committed = tmp_path / suite_name / file, PROJECT_SUITES_DIR / suite_name / file
            assert rebuilt.read_bytes() == committed.read_bytes()


# ----------------------------------------------------------------------------------------
# DNS-2020: prepare
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_stand_in(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[FileEntry]]:
    """Tiny stand-ins for all 900 listed files under ``<clone>/datasets/test_set`` (checksums recomputed)."""
    clone = tmp_path_factory.mktemp("dns-clone")
    entries = stand_in_files(clone, [e.path for e in pinned_checksums()], n_samples=16)
    return clone, entries


def test_prepare_from_clone_datasets_or_test_set_folder(full_stand_in, data_home: Path, tmp_path: Path):
    clone, entries = full_stand_in
    corpus = DNS2020(checksums=entries)
    assert corpus.prepare(clone, progress=False) == clone.resolve()
    assert corpus_root("dns2020") == clone.resolve()
    record = prepared_corpora()["dns2020"]
    assert record["files"] == 900 and record["source"] == str(clone.resolve())
    assert corpus.prepare(clone / "datasets", progress=False) == clone.resolve()

    # a test_set folder that is not inside a folder named datasets: a link folder is recorded
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = elsewhere / "test_set"
    (clone / TEST_SET).rename(moved)
    try:
        root = corpus.prepare(moved, progress=False)
        assert root == (data_home / "links" / "dns2020").resolve()
        utt = get_suite("dns2020-no-reverb").utterances(limit=1)[0]
        assert resolve_corpus_path(utt.clean).is_file() and resolve_corpus_path(utt.noisy).is_file()
        assert corpus.prepare(moved, progress=False) == root  # the link is replaced, not an error
    finally:
        moved.rename(clone / TEST_SET)


def test_pinned_checksums_reject_stand_ins_and_name_the_files(full_stand_in, data_home: Path):
    clone, _ = full_stand_in
    with pytest.raises(CorpusError) as err:
        DNS2020().prepare(clone, progress=False)
    assert len(err.value.problems) == 900
    pinned = {e.path: e.sha256 for e in pinned_checksums()}
    first = err.value.problems[0]
    path = first.split(":", 1)[0]
    assert f"expected {pinned[path]}" in first or f"expected sha256 {pinned[path]}" in first
    assert "dns2020" not in prepared_corpora()


def test_prepare_fails_naming_a_corrupted_file(full_stand_in, data_home: Path):
    clone, entries = full_stand_in
    victim = clone / entries[5].path
    original = victim.read_bytes()
    try:
        victim.write_bytes(original[:-2] + b"\x00\x01")
        with pytest.raises(CorpusError) as err:
            DNS2020(checksums=entries).prepare(clone, progress=False)
        expected = f"{entries[5].path}: sha256 {file_sha256(victim)}, expected {entries[5].sha256}"
        assert err.value.problems == [expected]
    finally:
        victim.write_bytes(original)


def test_prepare_from_lists_every_problem(tmp_path: Path, data_home: Path):
    clone = tmp_path / "clone"
    paths = [e.path for e in pinned_checksums()][::100]  # 9 files from every subset
    entries = stand_in_files(clone, paths)
    missing, changed, rate, unreadable = paths[0], paths[2], paths[4], paths[6]
    (clone / missing).unlink()
    (clone / changed).write_bytes((clone / changed).read_bytes()[:-1] + b"\x7f")
    write_wav(clone / rate, tone(80, 0), 8000)
    (clone / unreadable).write_bytes(b"\x00" * 500)
    entries = [recompute(clone, [e])[0] if e.path in (rate, unreadable) else e for e in entries]
    with pytest.raises(CorpusError) as err:
        DNS2020(checksums=entries).prepare(clone, progress=False)
    problems = err.value.problems
    assert [p.split(":", 1)[0] for p in problems] == [missing, changed, rate, unreadable]
    assert "missing" in problems[0] and "sha256" in problems[1] and "8000 Hz" in problems[2]
    assert "not readable as audio" in problems[3]
    assert all(p in str(err.value) for p in problems)
    assert "dns2020" not in prepared_corpora()


def test_prepare_from_a_folder_without_the_test_set(tmp_path: Path, data_home: Path):
    with pytest.raises(CorpusError, match="no DNS-2020 test set found"):
        DNS2020().prepare(tmp_path, progress=False)
    with pytest.raises(CorpusError, match="no such folder"):
        DNS2020().prepare(tmp_path / "nope", progress=False)


def test_prepare_downloads_skips_verified_files_and_resumes(
    server, tmp_path: Path, data_home: Path, monkeypatch: pytest.MonkeyPatch
):
    base, state = server
    source = tmp_path / "remote"
    paths = [e.path for e in pinned_checksums()][::150]  # 6 files
    entries = stand_in_files(source, paths)
    state.files = {p: (source / p).read_bytes() for p in paths}
    monkeypatch.setenv("URGENTBENCH_DNS2020_BASE_URL", base)
    corpus = DNS2020(checksums=entries)
    assert corpus.url(paths[0]) == base + urllib.parse.quote(paths[0])

    dest = data_home / "dns2020"
    resumed = dest / paths[1]
    resumed.parent.mkdir(parents=True)
    part_path(resumed).write_bytes(state.files[paths[1]][:100])
    root = corpus.prepare(progress=False)
    assert root == dest.resolve() and corpus_root("dns2020") == dest.resolve()
    assert all((dest / p).read_bytes() == state.files[p] for p in paths)
    assert (paths[1], "bytes=100-") in state.requests
    assert prepared_corpora()["dns2020"]["source"] == base

    state.requests.clear()
    corpus.prepare(progress=False)
    assert state.requests == []  # everything present and verified: nothing downloaded

    # every failed download is listed, not just the first
    (dest / paths[2]).unlink()
    (dest / paths[3]).unlink()
    del state.files[paths[2]], state.files[paths[3]]
    with pytest.raises(CorpusError) as err:
        corpus.prepare(progress=False)
    assert [p.split(":", 1)[0] for p in err.value.problems] == sorted([paths[2], paths[3]])
    assert all("HTTP 404" in p for p in err.value.problems)


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------


def test_run_on_an_unprepared_corpus_fails_before_any_work(data_home: Path, tmp_path: Path, capsys):
    results = tmp_path / "results"
    code = main(["-q", "run", "--system", "noisy", "--suite", "dns2020-no-reverb", "--limit", "2",
                 "--metrics", "pesq", "--results-dir", str(results)])
    assert code == 2
    err = capsys.readouterr().err
    assert "urgentbench data prepare dns2020" in err and "Traceback" not in err
    assert not results.exists()


def test_cli_prepare_lists_every_problem_without_a_traceback(tmp_path: Path):
    clone = tmp_path / "clone"
    stand_in_files(clone, [e.path for e in pinned_checksums()][:3])
    proc = subprocess.run(
        [sys.executable, "-m", "urgentbench.cli", "-q", "data", "prepare", "dns2020", "--from", str(clone)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "URGENTBENCH_DATA": str(tmp_path / "home")},
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "900 problem(s)" in proc.stderr
    assert proc.stderr.count("\n  - ") == 900


@pytest.mark.slow  # loads the DNSMOS model
def test_cli_data_ls_and_run_on_prepared_stand_in(
    tmp_path: Path, data_home: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    assert main(["data", "ls"]) == 0
    out = capsys.readouterr().out
    assert "dns2020: not prepared" in out and "masksr2-demo" in out and "licence:" in out

    # stand-in audio for the first two utterances of dns2020-no-reverb, checksums recomputed
    clone = tmp_path / "clone"
    suite = get_suite("dns2020-no-reverb")
    entries = []
    for i, utt in enumerate(suite.utterances(limit=2)):
        clean = load_speech("ab"[i], 16000)
        noisy = white_noise_mix(clean, snr_db=5.0, seed=i)
        for rel, x in ((utt.clean, clean), (utt.noisy, noisy)):
            rel = rel.removeprefix("@dns2020/")
            write_wav(clone / rel, 0.5 * x / np.max(np.abs(x)))
            entries.append(FileEntry(rel, file_sha256(clone / rel), (clone / rel).stat().st_size))
    checksums = tmp_path / "checksums.csv"
    write_checksums(checksums, entries)
    monkeypatch.setattr(DNS2020, "checksums_file", checksums)

    assert main(["-q", "data", "prepare", "dns2020", "--from", str(clone)]) == 0
    assert f"recorded at {clone.resolve()}" in capsys.readouterr().out
    assert main(["data", "ls"]) == 0
    assert f"dns2020: prepared at {clone.resolve()}" in capsys.readouterr().out

    results = tmp_path / "results"
    code = main(["-q", "run", "--system", "noisy", "--suite", "dns2020-no-reverb", "--limit", "2",
                 "--metrics", "pesq,dnsmos", "--jobs", "1", "--results-dir", str(results)])
    assert code == 0
    from urgentbench.store import ResultStore

    with ResultStore(results / "results.sqlite") as store:
        rows = store.dump()
    assert len(rows) == 4
    assert {r[4] for r in rows} == {"dns2020_nr_fileid_0", "dns2020_nr_fileid_2"}
    for row in rows:
        assert row[9] is None, row  # no error
        result = json.loads(row[8])
        assert all(np.isfinite(v) for v in result.values() if isinstance(v, float))


def test_corpora_registry_is_lazy_and_suggests_names():
    assert {"dns2020", "masksr2-demo"} <= set(CORPORA.names())
    assert isinstance(CORPORA.entry("masksr2-demo").target, (str, type))
    assert CORPORA.get("DNS2020") is DNS2020
    with pytest.raises(KeyError, match="Did you mean 'dns2020'"):
        CORPORA.get("dns202")
