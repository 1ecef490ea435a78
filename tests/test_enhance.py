"""`urgentbench enhance`: a system on the user's own files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import load_speech, white_noise_mix

from urgentbench.cli import main
from urgentbench.metrics.functional import si_sdr


def test_enhance_folder_keeps_rates_lengths_and_reports_bad_files(tmp_path: Path, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    clean16 = load_speech("a", 16000)
    noisy16 = white_noise_mix(clean16, 5.0)
    sf.write(src / "a16.wav", noisy16, 16000)
    noisy44 = white_noise_mix(load_speech("b", 44100), 5.0, seed=1)
    sf.write(src / "sub" / "b44.flac", noisy44, 44100, subtype="PCM_16")
    (src / "broken.wav").write_text("not audio")
    sf.write(src / "stereo.wav", np.stack([noisy16, noisy16], axis=1), 16000)

    code = main(["-q", "enhance", "--system", "wiener", "--input", str(src), "--output", str(tmp_path / "out")])
    assert code == 1  # two bad files
    out = capsys.readouterr().out
    assert "2 file(s) written" in out and "2 failed" in out
    assert "broken.wav: not a readable audio file" in out
    assert "stereo.wav: expected mono audio, got 2 channels" in out

    y16, sr16 = sf.read(tmp_path / "out" / "a16.flac", dtype="float32")
    y44, sr44 = sf.read(tmp_path / "out" / "sub" / "b44.flac", dtype="float32")
    assert (sr16, len(y16)) == (16000, len(noisy16))
    assert (sr44, len(y44)) == (44100, len(noisy44))
    assert si_sdr(clean16, y16) > si_sdr(clean16, noisy16) + 2.0


def test_enhance_single_file_and_unknown_system(tmp_path: Path, capsys):
    noisy = white_noise_mix(load_speech("a", 16000), 10.0)
    sf.write(tmp_path / "x.wav", noisy, 16000)
    assert main(["-q", "enhance", "--system", "noisy", "--input", str(tmp_path / "x.wav"),
                 "--output", str(tmp_path / "o")]) == 0
    y, _ = sf.read(tmp_path / "o" / "x.flac", dtype="float32")
    assert np.max(np.abs(y - noisy)) <= 1 / 32768  # identity up to 16-bit rounding
    assert main(["-q", "enhance", "--system", "weiner", "--input", str(tmp_path / "x.wav"),
                 "--output", str(tmp_path / "o")]) == 2
    assert "Did you mean 'wiener'" in capsys.readouterr().err
