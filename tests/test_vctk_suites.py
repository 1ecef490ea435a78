"""VCTK and DEMAND corpora, the gsr / bwe-* / declip-* recipes, and their degradations.

Stand-in corpora are made from the real (synthesised) speech fixtures in the VCTK and
DEMAND layouts; their archive pins are computed by the tests.
"""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import load_speech

from urgentbench.data.base import CorpusError
from urgentbench.data.vctk import SPEAKERS

SR48 = 48000
UTTS = ("001", "002", "003")


# ----------------------------------------------------------------------------------------
# stand-in corpora
# ----------------------------------------------------------------------------------------


def _utterance_audio(index: int) -> np.ndarray:
    """A distinct 1.2 s stretch of real speech at 48 kHz for each index."""
    speech = load_speech("ab"[index % 2], SR48)
    n = int(1.2 * SR48)
    start = (index * 7919) % (len(speech) - n)
    return speech[start : start + n] * (0.5 + 0.02 * (index % 7))


def make_vctk_tree(folder: Path, *, reverse: bool = False) -> Path:
    """A miniature VCTK 0.92 layout: 8 test speakers x 3 utterances (+ mic2, + a non-test speaker).

    ``s5_003`` has no transcript. ``reverse`` creates the files in the opposite order.
    """
    root = folder / "VCTK-Corpus-0.92"
    jobs = []
    for i, spk in enumerate((*SPEAKERS, "p225")):
        for j, num in enumerate(UTTS):
            jobs.append((i * len(UTTS) + j, spk, num))
    for index, spk, num in reversed(jobs) if reverse else jobs:
        wav = root / "wav48_silence_trimmed" / spk
        wav.mkdir(parents=True, exist_ok=True)
        x = _utterance_audio(index)
        sf.write(wav / f"{spk}_{num}_mic1.flac", x, SR48, subtype="PCM_16")
        sf.write(wav / f"{spk}_{num}_mic2.flac", 0.5 * x, SR48, subtype="PCM_16")
        if (spk, num) != ("s5", "003"):
            txt = root / "txt" / spk
            txt.mkdir(parents=True, exist_ok=True)
            (txt / f"{spk}_{num}.txt").write_text(f"Please call {spk} number {num}.\n")
    (root / "speaker-info.txt").write_text("ID AGE GENDER ACCENTS\n")
    return root


def make_zip(tree: Path, archive: Path) -> tuple[str, int]:
    """Zip ``tree``'s contents (no top-level folder, as the official archive); return (sha256, size)."""
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(tree.rglob("*")):
            if path.is_file():  # fixed time stamps: the same files give the same archive bytes
                info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), date_time=(2019, 11, 13, 0, 0, 0))
                zf.writestr(info, path.read_bytes())
    data = archive.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def make_demand(
    folder: Path, environments: tuple[str, ...] = ("DKITCHEN", "TCAR")
) -> dict[str, tuple[int, str]]:
    """Stand-in ``<ENV>_48k.zip`` files (ch01 + ch02, 4 s of coloured noise each); return their pins."""
    folder.mkdir(parents=True, exist_ok=True)
    pins = {}
    for k, env in enumerate(environments):
        rng = np.random.default_rng(k)
        noise = np.cumsum(rng.standard_normal(4 * SR48)) * 0.001
        noise = 0.3 * (noise - np.convolve(noise, np.ones(480) / 480, mode="same"))
        archive = folder / f"{env}_48k.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for ch in ("ch01", "ch02"):
                tmp = folder / f"{env}_{ch}.wav"
                sf.write(tmp, noise if ch == "ch01" else -noise, SR48, subtype="PCM_16")
                zf.write(tmp, f"{env}/{ch}.wav")
                tmp.unlink()
        data = archive.read_bytes()
        pins[env] = (len(data), hashlib.md5(data).hexdigest())
    return pins


@pytest.fixture()
def data_home(tmp_path, monkeypatch):
    """An empty URGENTBENCH_DATA for the test."""
    home = tmp_path / "data_home"
    monkeypatch.setenv("URGENTBENCH_DATA", str(home))
    return home


@pytest.fixture(scope="module")
def vctk_source(tmp_path_factory):
    """(tree, archive, sha256, size) of a stand-in VCTK copy."""
    folder = tmp_path_factory.mktemp("vctk_src")
    tree = make_vctk_tree(folder)
    archive = folder / "VCTK-Corpus-0.92.zip"
    sha, size = make_zip(tree, archive)
    return tree, archive, sha, size


def prepare_vctk(source: Path, dest: Path, sha: str, size: int) -> Path:
    from urgentbench.data.vctk import VCTK

    return VCTK(archive_sha256=sha, archive_size=size).prepare(source, dest=dest, progress=False)


# ----------------------------------------------------------------------------------------
# VCTK corpus
# ----------------------------------------------------------------------------------------


def test_vctk_prepare_from_archive(vctk_source, data_home, tmp_path):
    from urgentbench.data import prepared_corpora
    from urgentbench.data.corpora import read_checksums
    from urgentbench.data.vctk import load_utterances

    _, archive, sha, size = vctk_source
    root = prepare_vctk(archive, tmp_path / "vctk", sha, size)
    record = prepared_corpora()["vctk"]
    assert record["archive_verified"] is True and record["missing_transcripts"] == 1
    items = load_utterances(root, check_audio=True)
    assert len(items) == 8 * 3  # mic2 files and the non-test speaker p225 are left out
    assert {it.speaker for it in items} == set(SPEAKERS)
    by_id = {it.id: it for it in items}
    assert by_id["p360_002"].text == "Please call p360 number 002."
    assert by_id["s5_003"].text is None
    x, sr = sf.read(root / by_id["p374_001"].audio)
    assert sr == 44100
    # resampled once with soxr HQ from the 48 kHz source: same speech, same duration
    src, _ = sf.read(vctk_source[0] / "wav48_silence_trimmed/p374/p374_001_mic1.flac")
    assert abs(len(x) - len(src) * 44100 / 48000) <= 1
    import soxr

    expected = soxr.resample(src.astype(np.float32), 48000, 44100, quality="HQ")
    assert np.max(np.abs(x - expected)) < 2 / 32768
    produced = {e.path for e in read_checksums(root / "FILES.csv")}
    assert "wav44/p360/p360_001_mic1.flac" in produced and "txt/p360/p360_001.txt" in produced
    sources = {e.path for e in read_checksums(root / "SOURCES.csv")}
    assert "wav48_silence_trimmed/p360/p360_001_mic1.flac" in sources


def test_vctk_archive_with_wrong_checksum_is_refused(vctk_source, data_home, tmp_path):
    _, archive, sha, size = vctk_source
    wrong = "0" * 64
    with pytest.raises(CorpusError) as err:
        prepare_vctk(archive, tmp_path / "vctk", wrong, size)
    text = str(err.value)
    assert str(archive) in text and f"expected {wrong}" in text and sha in text
    with pytest.raises(CorpusError, match=rf"{size - 1}"):
        prepare_vctk(archive, tmp_path / "vctk", sha, size - 1)


def test_vctk_load_rejects_corrupt_and_missing_files(vctk_source, data_home, tmp_path):
    from urgentbench.data.corpora import read_checksums
    from urgentbench.data.vctk import load_utterances

    _, archive, sha, size = vctk_source
    root = prepare_vctk(archive, tmp_path / "vctk", sha, size)
    pins = {e.path: e.sha256 for e in read_checksums(root / "FILES.csv")}
    corrupt, gone = "wav44/p361/p361_002_mic1.flac", "txt/p376/p376_001.txt"
    data = bytearray((root / corrupt).read_bytes())
    data[-10] ^= 0xFF  # same size, different content
    (root / corrupt).write_bytes(bytes(data))
    (root / gone).unlink()
    with pytest.raises(CorpusError) as err:
        load_utterances(root)
    problems = err.value.problems
    assert any(p.startswith(corrupt) and f"expected {pins[corrupt]}" in p for p in problems)
    assert any(p.startswith(gone) and f"missing (expected sha256 {pins[gone]})" in p for p in problems)
    assert "urgentbench data prepare vctk" in str(err.value)


def test_vctk_extracted_copy_is_marked_unverified(vctk_source, data_home, tmp_path, caplog):
    from urgentbench.data import prepared_corpora

    tree, _, sha, size = vctk_source
    with caplog.at_level("WARNING"):
        prepare_vctk(tree, tmp_path / "vctk", sha, size)  # an extracted copy, no archive
    record = prepared_corpora()["vctk"]
    assert record["archive_verified"] is False
    assert "could NOT be verified" in record["unverified"]
    assert "could NOT be verified" in caplog.text


def test_vctk_bad_source_lists_every_problem(vctk_source, data_home, tmp_path):
    tree, _, sha, size = vctk_source
    bad = tmp_path / "bad" / "VCTK-Corpus-0.92"
    shutil.copytree(tree, bad)
    shutil.rmtree(bad / "wav48_silence_trimmed" / "p364")  # a missing speaker
    sf.write(bad / "wav48_silence_trimmed/p360/p360_002_mic1.flac", np.zeros(1600) + 0.1, 16000)  # wrong rate
    (bad / "wav48_silence_trimmed/p361/p361_003_mic1.flac").write_bytes(b"not audio at all")  # unreadable
    with pytest.raises(CorpusError) as err:
        prepare_vctk(bad.parent, tmp_path / "vctk", sha, size)
    text = "\n".join(err.value.problems)
    assert len(err.value.problems) == 3
    assert "test speaker p364" in text
    assert "p360_002_mic1.flac: sample rate 16000 Hz, expected 48000 Hz" in text
    assert "p361_003_mic1.flac: not readable as audio" in text


def test_vctk_download_from_http_server(vctk_source, data_home, tmp_path):
    from urgentbench.data.vctk import VCTK, load_utterances

    _, archive, sha, size = vctk_source
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(archive.parent))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{archive.name}"
        root = VCTK(url=url, archive_sha256=sha, archive_size=size).prepare(
            None, dest=tmp_path / "v", progress=False
        )
    finally:
        server.shutdown()
    assert (root / "download" / archive.name).stat().st_size == size
    assert len(load_utterances(root)) == 24


# ----------------------------------------------------------------------------------------
# DEMAND corpus
# ----------------------------------------------------------------------------------------


def test_demand_prepare_verify_and_reject(data_home, tmp_path):
    from urgentbench.data.demand import DEMAND, noise_files

    pins = make_demand(tmp_path / "zips")
    root = DEMAND(environments=pins).prepare(tmp_path / "zips", dest=tmp_path / "demand", progress=False)
    files = noise_files(root)
    assert files == {"DKITCHEN": "DKITCHEN/ch01.wav", "TCAR": "TCAR/ch01.wav"}
    assert sf.info(str(root / files["TCAR"])).samplerate == 48000
    assert not (root / "TCAR" / "ch02.wav").exists()  # only channel 1 is extracted

    # a zip that does not match its md5 pin: named with the expected md5
    bad_pins = dict(pins, TCAR=(pins["TCAR"][0], "f" * 32))
    with pytest.raises(CorpusError) as err:
        DEMAND(environments=bad_pins).prepare(tmp_path / "zips", dest=tmp_path / "d2", progress=False)
    assert any("TCAR_48k.zip" in p and f"expected {'f' * 32}" in p for p in err.value.problems)

    # a changed recording after prepare: named with its expected sha256
    from urgentbench.data.corpora import read_checksums

    expected = {e.path: e.sha256 for e in read_checksums(root / "FILES.csv")}["DKITCHEN/ch01.wav"]
    with sf.SoundFile(str(root / "DKITCHEN/ch01.wav"), "r+") as f:
        f.seek(1000)
        f.write(np.full(10, 0.5))
    with pytest.raises(CorpusError, match=rf"DKITCHEN/ch01.wav: sha256 [0-9a-f]{{64}}, expected {expected}"):
        noise_files(root)


# ----------------------------------------------------------------------------------------
# degradations
# ----------------------------------------------------------------------------------------


def test_bandwidth_limit_poly_is_masksr_recipe_on_real_speech(speech44):
    from scipy.signal import cheby1, resample_poly, sosfiltfilt

    from urgentbench.simulation.degradations import RenderState, build_degradation

    x = speech44.astype(np.float64)
    for fc in (1000, 2000, 4000, 8000):
        state = build_degradation({"name": "bandwidth_limit_poly", "params": {"cutoff_hz": fc}}).apply(
            RenderState.from_clean(x, 44100)
        )
        sos = cheby1(N=8, rp=0.1, Wn=fc / 22050, btype="low", output="sos")
        g = np.gcd(2 * fc, 44100)
        y = resample_poly(
            resample_poly(sosfiltfilt(sos, x), 2 * fc // g, 44100 // g), 44100 // g, 2 * fc // g
        )
        np.testing.assert_allclose(state.noisy, y[: len(x)], atol=1e-12)
        np.testing.assert_array_equal(state.target, x)
        # nothing of the speech is left above 1.2 fc (> 60 dB down), while the clean speech has energy there
        spec_in, spec_out = np.abs(np.fft.rfft(x)) ** 2, np.abs(np.fft.rfft(state.noisy)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / 44100)
        below, above = f < 0.8 * fc, f > 1.2 * fc
        assert 10 * np.log10(spec_out[above].sum() / spec_out[below].sum()) < -60
        assert 10 * np.log10(spec_in[above].sum() / spec_in[below].sum()) > -40


def test_noise_file_segment_and_snr(data_home, tmp_path, speech44):
    from urgentbench.data.demand import DEMAND
    from urgentbench.simulation.degradations import RenderState, active_speech_power, build_degradation

    pins = make_demand(tmp_path / "zips")
    DEMAND(environments=pins).prepare(tmp_path / "zips", dest=tmp_path / "demand", progress=False)
    spec = {"name": "noise_file", "params": {"path": "@demand/TCAR/ch01.wav", "offset_s": 2.5, "snr_db": 7.0}}
    x = speech44.astype(np.float64)
    out = build_degradation(spec).apply(RenderState.from_clean(x, 44100))
    noise = out.noisy - x
    snr = 10 * np.log10(active_speech_power(x, 44100) / np.mean(noise**2))
    assert snr == pytest.approx(7.0, abs=1e-6)
    # the segment starts 2.5 s into the (4 s, 48 kHz) file and wraps around its end
    import soxr

    whole, _ = sf.read(tmp_path / "demand/TCAR/ch01.wav")
    n48 = int(np.ceil(len(x) * 48000 / 44100))
    wrapped = whole[(np.arange(n48) + int(2.5 * 48000)) % len(whole)]
    ref = soxr.resample(wrapped.astype(np.float32), 48000, 44100, quality="HQ")[: len(x)]
    corr = np.corrcoef(noise[2000:-2000], ref[2000 : len(x) - 2000])[0, 1]
    assert corr > 0.99
    again = build_degradation(spec).apply(RenderState.from_clean(x, 44100))
    np.testing.assert_array_equal(again.noisy, out.noisy)


ROOM = {"room_dims": [6.0, 4.5, 3.0], "source": [1.5, 1.2, 1.6], "mic": [4.2, 3.1, 1.4]}


@pytest.mark.parametrize("rt60", [0.3, 0.6, 0.9])
def test_reverb_pra_rt60_and_determinism(rt60):
    import pyroomacoustics as pra

    from urgentbench.simulation.degradations import build_degradation

    threads_before = pra.constants.get("num_threads")
    spec = {"name": "reverb_pra", "params": {**ROOM, "rt60": rt60, "max_order": 40}}
    h = build_degradation(spec).rir(44100)
    assert pra.constants.get("num_threads") == threads_before  # pinned constants are restored
    results = []
    worker = threading.Thread(target=lambda: results.append(build_degradation(spec).rir(44100)))
    worker.start()
    worker.join()
    np.testing.assert_array_equal(results[0], h)  # same bits in another thread / call
    measured = pra.experimental.measure_rt60(h, fs=44100, decay_db=30)
    assert measured == pytest.approx(rt60, rel=0.3)
    # the direct path arrives at distance / c (+ pyroomacoustics' 40-sample filter delay); nothing before it
    distance = np.linalg.norm(np.subtract(ROOM["source"], ROOM["mic"]))
    arrival = distance / 343.0 * 44100 + 40
    mag = np.abs(h)
    assert abs(int(np.argmax(mag >= 0.5 * mag.max())) - arrival) <= 2
    assert mag[: int(arrival) - 45].max() < 0.02 * mag.max()


def test_reverb_pra_longer_rt60_gives_longer_tail():
    import pyroomacoustics as pra

    from urgentbench.simulation.degradations import build_degradation

    values = [
        pra.experimental.measure_rt60(
            build_degradation({"name": "reverb_pra", "params": {**ROOM, "rt60": t, "max_order": 40}}).rir(
                16000
            ),
            fs=16000,
            decay_db=30,
        )
        for t in (0.25, 0.5, 1.0)
    ]
    assert values[0] < values[1] < values[2]


def test_reverb_pra_bad_parameters():
    from urgentbench.simulation.degradations import DegradationParamError, build_degradation

    with pytest.raises(DegradationParamError, match="max_order"):
        build_degradation({"name": "reverb_pra", "params": {**ROOM, "rt60": 0.5, "max_order": 0}})
    with pytest.raises(DegradationParamError, match="missing parameter"):
        build_degradation({"name": "reverb_pra", "params": {**ROOM, "rt60": 0.5}})
    with pytest.raises(DegradationParamError, match="not reachable"):
        build_degradation({"name": "reverb_pra", "params": {**ROOM, "rt60": 0.05, "max_order": 10}}).rir(
            16000
        )


# ----------------------------------------------------------------------------------------
# suites
# ----------------------------------------------------------------------------------------


@pytest.fixture()
def prepared(vctk_source, data_home, tmp_path):
    """VCTK (from the stand-in archive) and DEMAND prepared under a fresh data home."""
    from urgentbench.data.demand import DEMAND

    _, archive, sha, size = vctk_source
    vroot = prepare_vctk(archive, tmp_path / "vctk", sha, size)
    pins = make_demand(tmp_path / "zips")
    droot = DEMAND(environments=pins).prepare(tmp_path / "zips", dest=tmp_path / "demand", progress=False)
    return vroot, droot


def _read_all(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_suite_build_is_reproducible(prepared, vctk_source, tmp_path):
    from urgentbench.data.demand import DEMAND
    from urgentbench.data.vctk_suites import SUITE_NAMES, build_suite

    vroot, droot = prepared
    for name in SUITE_NAMES:
        build_suite(name, tmp_path / "out1", vctk_root=vroot, demand_root=droot)
    first = _read_all(tmp_path / "out1")
    assert len(first) == 2 * len(SUITE_NAMES)

    # an independent preparation from a copy written in the opposite file order, built in reverse order
    _, _, sha, size = vctk_source
    tree2 = make_vctk_tree(tmp_path / "src2", reverse=True)
    archive2 = tmp_path / "src2" / "VCTK-Corpus-0.92.zip"
    assert make_zip(tree2, archive2)[0] == sha  # the same archive bytes
    vroot2 = prepare_vctk(archive2, tmp_path / "vctk2", sha, size)
    droot2 = DEMAND(environments=make_demand(tmp_path / "zips2")).prepare(
        tmp_path / "zips2", dest=tmp_path / "demand2", progress=False
    )
    for name in reversed(SUITE_NAMES):
        build_suite(name, tmp_path / "out2", vctk_root=vroot2, demand_root=droot2)
    assert _read_all(tmp_path / "out2") == first


def test_suite_contents(prepared, tmp_path):
    from urgentbench.data.vctk_suites import GSR_CONDITIONS, build_suite
    from urgentbench.suites import Suite

    vroot, droot = prepared
    for name in ("gsr", "bwe-2k", "declip-0.25"):
        build_suite(name, tmp_path / "out", vctk_root=vroot, demand_root=droot)
    bwe = Suite.from_card(tmp_path / "out/bwe-2k/card.yaml")
    assert bwe.version == "1.0" and bwe.sample_rate == 44100 and bwe.extra["corpora"] == ["vctk"]
    utts = bwe.utterances()
    assert (
        len(utts) == 24
        and utts[0].id == "p360_001"
        and utts[0].clean == "@vctk/wav44/p360/p360_001_mic1.flac"
    )
    assert utts[0].degradations[0].to_dict() == {
        "name": "bandwidth_limit_poly",
        "params": {"cutoff_hz": 2000.0},
    }
    assert {u.speaker for u in utts} == set(SPEAKERS) and utts[0].text == "Please call p360 number 001."
    gsr = Suite.from_card(tmp_path / "out/gsr/card.yaml")
    conditions = [u.tags["condition"] for u in gsr.utterances()]
    assert set(conditions) == set(GSR_CONDITIONS) and len(conditions) == 24
    assert gsr.extra["corpora"] == ["vctk", "demand"] and gsr.extra["parameters"]["ranges"]["snr_db"] == [
        -5.0,
        20.0,
    ]
    kinds = {s.name for u in gsr.utterances() for s in u.degradations}
    assert kinds == {"reverb_pra", "noise_file", "noise", "bandwidth_limit_poly", "clipping"}
    for u in gsr.utterances():
        for s in u.degradations:
            if s.name == "noise_file":
                assert -5 <= s.params["snr_db"] <= 20 and s.params["path"].startswith("@demand/")
            if s.name == "reverb_pra":
                assert 0.2 <= s.params["rt60"] <= 1.0 and 1 <= s.params["max_order"] <= 40


def test_unverified_corpus_gets_local_version(vctk_source, data_home, tmp_path):
    from urgentbench.data.vctk_suites import build_suite
    from urgentbench.suites import Suite

    tree, _, sha, size = vctk_source
    vroot = prepare_vctk(tree, tmp_path / "vctk", sha, size)  # an extracted copy
    build_suite("declip-0.1", tmp_path / "out", vctk_root=vroot)
    version = Suite.from_card(tmp_path / "out/declip-0.1/card.yaml").version
    assert version.startswith("1.0+local.") and len(version) == len("1.0+local.") + 10


def test_rendered_declip_and_bwe_follow_the_formulas(prepared, tmp_path):
    from scipy.signal import cheby1, resample_poly, sosfiltfilt

    from urgentbench.data.vctk_suites import build_suite
    from urgentbench.simulation.render import render_utterance
    from urgentbench.suites import Suite

    vroot, _droot = prepared
    lsb = 1 / 32768
    for t in (0.1, 0.25):
        build_suite(f"declip-{t}", tmp_path / "out", vctk_root=vroot)
        suite = Suite.from_card(tmp_path / f"out/declip-{t}/card.yaml")
        for utt in suite.utterances()[:6]:
            r = render_utterance(utt, suite.folder)
            ref, noisy = r.reference.astype(np.float64), r.noisy.astype(np.float64)
            assert np.max(np.abs(ref)) == pytest.approx(0.9, abs=lsb)  # the reference is the peak
            np.testing.assert_allclose(noisy, np.clip(ref, t * ref.min(), t * ref.max()), atol=1.01 * lsb)
            # no renormalisation: the clipped input stays at t times the reference's extremes
            assert noisy.max() == pytest.approx(t * ref.max(), abs=1.01 * lsb)
            assert noisy.min() == pytest.approx(t * ref.min(), abs=1.01 * lsb)
            assert np.mean(np.abs(noisy) >= 0.999 * min(abs(t * ref.min()), t * ref.max())) > 0.01
    build_suite("bwe-4k", tmp_path / "out", vctk_root=vroot)
    suite = Suite.from_card(tmp_path / "out/bwe-4k/card.yaml")
    for utt in suite.utterances()[:4]:
        r = render_utterance(utt, suite.folder)
        x, _ = sf.read(vroot / utt.clean.removeprefix("@vctk/"))
        sos = cheby1(N=8, rp=0.1, Wn=4000 / 22050, btype="low", output="sos")
        y = resample_poly(resample_poly(sosfiltfilt(sos, x), 80, 441), 441, 80)[: len(x)]
        scale = 0.9 / max(np.abs(x).max(), np.abs(y).max())
        np.testing.assert_allclose(r.noisy, y * scale, atol=1.01 * lsb)
        np.testing.assert_allclose(r.reference, x * scale, atol=1.01 * lsb)


def test_gsr_renders_bit_identically_in_any_order(prepared, tmp_path):
    from urgentbench.data.vctk_suites import build_suite
    from urgentbench.simulation.render import render_utterance
    from urgentbench.suites import Suite

    vroot, droot = prepared
    build_suite("gsr", tmp_path / "out", vctk_root=vroot, demand_root=droot)
    suite = Suite.from_card(tmp_path / "out/gsr/card.yaml")
    utts = suite.utterances()
    forward = {u.id: render_utterance(u, suite.folder).sha256 for u in utts}
    backward = {u.id: render_utterance(u, suite.folder).sha256 for u in reversed(utts)}
    assert forward == backward and len(set(forward.values())) == len(utts)


def test_template_cards_and_cli(prepared, tmp_path, capsys):
    from urgentbench.cli import main
    from urgentbench.suites import Suite, SuiteError

    card = Suite.from_card(Path(__file__).parents[1] / "data_manifests" / "gsr" / "card.yaml")
    assert card.extra["status"] == "needs-build" and card.manifest_sha256 is None
    with pytest.raises(SuiteError, match="urgentbench data prepare vctk && urgentbench data prepare demand"):
        card.utterances()
    assert main(["data", "build-suite", "bwe-8k", "--out", str(tmp_path / "cli")]) == 0
    built = Suite.from_card(tmp_path / "cli/bwe-8k/card.yaml")
    assert len(built.utterances()) == 24 and built.extra["utterances"] == 24
    assert main(["data", "build-suite", "bwe-3k", "--out", str(tmp_path / "cli")]) == 2
    assert "unknown suite 'bwe-3k'" in capsys.readouterr().err
