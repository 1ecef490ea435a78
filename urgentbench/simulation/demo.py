"""Build the ``demo`` suite: synthetic speech, a sampled degradation manifest and its card.

The demo suite lives in ``data_manifests/demo/`` and is committed:

* ``clean/<speaker>_<nn>.flac``: 24 single Harvard sentences (public domain) spoken by
  six eSpeak NG voices, 22.05 kHz (eSpeak's native rate), peak 0.5, 16-bit FLAC.
  :func:`synthesise_clean` recreates them; it needs the ``espeak-ng`` program (1.51 was
  used), which nothing else in urgentbench needs.
* ``manifest.jsonl``: one line per utterance; every degradation parameter is sampled
  here once, from ``numpy.random.default_rng(2024)``, within :data:`RANGES`, and the
  rendered noisy input's sha256 is stored so any change in rendering is detected.
* ``card.yaml``: the suite card, with the manifest's sha256 and the condition list.

Regenerate with ``python -m urgentbench.simulation.demo`` (manifest and card) or
``python -m urgentbench.simulation.demo --resynthesise`` (clean audio too).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from urgentbench.manifest import DegradationSpec, Utterance, read_manifest, write_manifest
from urgentbench.simulation.degradations import NOISE_TYPES, Reverb
from urgentbench.simulation.render import render_utterance

logger = logging.getLogger(__name__)

SUITE_NAME = "demo"
SUITE_VERSION = "1.0"
SAMPLE_RATE = 44100
SAMPLING_SEED = 2024
#: Peak level of the synthesised clean files.
CLEAN_PEAK = 0.5
#: Silence kept before the first and after the last active sample of a synthesised file (s).
CLEAN_MARGIN_S = 0.15


@dataclass(frozen=True)
class Voice:
    """An eSpeak NG voice setting, used as one demo speaker.

    Args:
        label: Speaker label (manifest ``speaker`` and file-name prefix).
        espeak: ``-v`` argument (language + variant).
        pitch: ``-p`` argument (0-99).
        speed: ``-s`` argument (words per minute).
    """

    label: str
    espeak: str
    pitch: int
    speed: int


#: The six demo speakers.
VOICES: tuple[Voice, ...] = (
    Voice("usm1", "en-us", 45, 145),
    Voice("usf3", "en-us+f3", 60, 135),
    Voice("gbm3", "en-gb-x-rp+m3", 40, 120),
    Voice("usf2", "en-us+f2", 55, 140),
    Voice("gbf4", "en-gb+f4", 65, 125),
    Voice("usm7", "en-us+m7", 35, 135),
)

#: 24 sentences from the Harvard lists 1-5 (IEEE 1969, public domain), each used once.
SENTENCES: tuple[str, ...] = (
    "The box was thrown beside the parked truck.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
    "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.",
    "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.",
    "The wrist was badly strained and hung limp.",
    "The meal was cooked before the bell rang.",
    "A king ruled the state in the early days.",
    "The ship was torn apart on the sharp reef.",
    "The lazy cow lay in the cool grass.",
    "The rope will bind the seven books at once.",
)

#: Condition name -> (degradation chain, number of utterances). Chains run in URGENT's
#: order: reverberation, additive noise, then the other distortions.
CONDITIONS: dict[str, tuple[tuple[str, ...], int]] = {
    "noise": (("noise",), 11),
    "reverb+noise": (("reverb", "noise"), 4),
    "noise+clipping": (("noise", "clipping"), 2),
    "noise+bandwidth_limit": (("noise", "bandwidth_limit"), 2),
    "reverb+noise+clipping+bandwidth_limit": (("reverb", "noise", "clipping", "bandwidth_limit"), 2),
    "reverb": (("reverb",), 1),
    "clipping": (("clipping",), 1),
    "bandwidth_limit": (("bandwidth_limit",), 1),
}

#: Parameter ranges the manifest is sampled from (uniform unless a list of choices).
RANGES: dict[str, dict[str, Any]] = {
    "noise": {
        "snr_db": [-5.0, 20.0],
        "type": list(NOISE_TYPES),
        "seed": [0, 2**31 - 2],
    },
    "reverb": {
        "room_dims": {"x": [4.0, 7.0], "y": [3.5, 6.0], "z": [2.6, 3.2]},
        "rt60": [0.2, 0.7],
        "source_mic": {"wall_margin_m": 0.5, "height_m": [1.0, 1.8], "distance_m": [0.7, 3.0]},
    },
    "clipping": {"threshold": [0.15, 0.5]},
    "bandwidth_limit": {"cutoff_hz": [4000, 8000]},
}


@dataclass(frozen=True)
class CleanItem:
    """One clean demo file: where it is, who says it, what is said."""

    path: str
    speaker: str
    text: str
    voice: Voice


def clean_catalogue() -> list[CleanItem]:
    """The 24 clean files: sentence ``i`` is spoken by voice ``i % 6``.

    Returns:
        Items with paths relative to the suite folder (``clean/<speaker>_<nn>.flac``).
    """
    items = []
    counts: dict[str, int] = {}
    for i, text in enumerate(SENTENCES):
        voice = VOICES[i % len(VOICES)]
        counts[voice.label] = counts.get(voice.label, 0) + 1
        path = f"clean/{voice.label}_{counts[voice.label]:02d}.flac"
        items.append(CleanItem(path=path, speaker=voice.label, text=text, voice=voice))
    return items


def default_suite_dir() -> Path:
    """``data_manifests/demo`` of this checkout."""
    from urgentbench.suites import PROJECT_SUITES_DIR

    return PROJECT_SUITES_DIR / SUITE_NAME


# ----------------------------------------------------------------------------------------
# clean speech
# ----------------------------------------------------------------------------------------


def _espeak(voice: Voice, text: str, wav: Path, executable: str) -> None:
    cmd = [executable, "-v", voice.espeak, "-p", str(voice.pitch), "-s", str(voice.speed)]
    cmd += ["-w", str(wav), text]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"espeak-ng failed for voice {voice.espeak!r}: {exc.stderr.strip()}") from exc


def _trim(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cut leading/trailing silence (below 1 % of the peak), keeping :data:`CLEAN_MARGIN_S`."""
    active = np.nonzero(np.abs(x) >= 0.01 * np.max(np.abs(x)))[0]
    margin = int(round(CLEAN_MARGIN_S * sample_rate))
    return x[max(0, active[0] - margin) : min(len(x), active[-1] + 1 + margin)]


def synthesise_clean(suite_dir: str | os.PathLike | None = None, executable: str = "espeak-ng") -> list[Path]:
    """(Re)create the clean demo files with eSpeak NG.

    Each sentence is synthesised at eSpeak's native 22.05 kHz, trimmed to the speech
    plus 0.15 s on each side, peak-normalised to 0.5 and written as 16-bit FLAC.

    Args:
        suite_dir: Suite folder (default ``data_manifests/demo``).
        executable: The espeak-ng program.

    Returns:
        Paths of the written files.

    Raises:
        RuntimeError: When espeak-ng is not installed or fails.
    """
    from urgentbench.audio import read_audio, to_pcm16_grid, write_flac

    suite_dir = Path(suite_dir) if suite_dir is not None else default_suite_dir()
    if shutil.which(executable) is None:
        raise RuntimeError(
            f"{executable!r} not found; install eSpeak NG (e.g. 'apt-get install espeak-ng') to "
            "resynthesise the demo speech"
        )
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for item in clean_catalogue():
            wav = Path(tmp) / "speech.wav"
            _espeak(item.voice, item.text, wav, executable)
            x, sr = read_audio(wav, allow_silence=False)
            x = _trim(x.astype(np.float64), sr)
            x = x * (CLEAN_PEAK / np.max(np.abs(x)))
            pcm, _ = to_pcm16_grid(x)
            out = suite_dir / item.path
            write_flac(out, pcm, sr)
            logger.info("wrote %s (%.2f s, voice %s)", out, len(pcm) / sr, item.voice.espeak)
            written.append(out)
    return written


# ----------------------------------------------------------------------------------------
# manifest sampling
# ----------------------------------------------------------------------------------------


def _uniform(rng: np.random.Generator, bounds: Sequence[float], digits: int) -> float:
    return round(float(rng.uniform(bounds[0], bounds[1])), digits)


def _sample_reverb(rng: np.random.Generator) -> dict[str, Any]:
    r = RANGES["reverb"]
    dims = [_uniform(rng, r["room_dims"][axis], 2) for axis in ("x", "y", "z")]
    rt60 = _uniform(rng, r["rt60"], 3)
    sm = r["source_mic"]
    margin = sm["wall_margin_m"]
    while True:  # rejection sampling of the source-microphone distance (deterministic: seeded)
        pos = [
            [
                _uniform(rng, [margin, dims[0] - margin], 2),
                _uniform(rng, [margin, dims[1] - margin], 2),
                _uniform(rng, sm["height_m"], 2),
            ]
            for _ in range(2)
        ]
        if sm["distance_m"][0] <= float(np.linalg.norm(np.subtract(pos[0], pos[1]))) <= sm["distance_m"][1]:
            break
    params = {"room_dims": dims, "rt60": rt60, "source": pos[0], "mic": pos[1]}
    Reverb.from_params(params).ism_setup()  # check the RT60 is reachable in this room
    return params


def _sample_params(name: str, rng: np.random.Generator, noise_type: str | None) -> dict[str, Any]:
    if name == "noise":
        r = RANGES["noise"]
        return {
            "snr_db": _uniform(rng, r["snr_db"], 2),
            "type": noise_type,
            "seed": int(rng.integers(r["seed"][0], r["seed"][1] + 1)),
        }
    if name == "reverb":
        return _sample_reverb(rng)
    if name == "clipping":
        return {"threshold": _uniform(rng, RANGES["clipping"]["threshold"], 3)}
    if name == "bandwidth_limit":
        return {"cutoff_hz": int(rng.choice(RANGES["bandwidth_limit"]["cutoff_hz"]))}
    raise ValueError(f"no sampler for degradation {name!r}")


def sample_manifest(seed: int = SAMPLING_SEED) -> list[Utterance]:
    """Sample the demo manifest (without ``render_sha256``).

    ``numpy.random.default_rng(seed)`` shuffles the conditions, the clean files and the
    noise types (spread evenly over the noisy utterances), then draws one seed per
    utterance; each utterance's parameters come from ``default_rng(that seed)``.

    Args:
        seed: Sampling seed.

    Returns:
        Utterances ``demo_0001`` .. ``demo_0024``.
    """
    rng = np.random.default_rng(seed)
    catalogue = clean_catalogue()
    conditions = [name for name, (_, count) in CONDITIONS.items() for _ in range(count)]
    if len(conditions) != len(catalogue):
        raise ValueError(f"{len(conditions)} conditions for {len(catalogue)} clean files")
    conditions = [conditions[i] for i in rng.permutation(len(conditions))]
    cleans = [catalogue[i] for i in rng.permutation(len(catalogue))]
    n_noisy = sum(1 for c in conditions if "noise" in CONDITIONS[c][0])
    types = [NOISE_TYPES[i % len(NOISE_TYPES)] for i in range(n_noisy)]
    types = [types[i] for i in rng.permutation(n_noisy)]

    utterances = []
    for i, (condition, clean) in enumerate(zip(conditions, cleans)):
        utt_seed = int(rng.integers(0, 2**31 - 1))
        urng = np.random.default_rng(utt_seed)
        chain = CONDITIONS[condition][0]
        specs = []
        for name in chain:
            noise_type = types.pop() if name == "noise" else None
            specs.append(DegradationSpec(name=name, params=_sample_params(name, urng, noise_type)))
        utterances.append(
            Utterance(
                id=f"{SUITE_NAME}_{i + 1:04d}",
                sample_rate=SAMPLE_RATE,
                clean=clean.path,
                text=clean.text,
                speaker=clean.speaker,
                seed=utt_seed,
                degradations=specs,
                tags={"condition": condition},
            )
        )
    return utterances


# ----------------------------------------------------------------------------------------
# card and build
# ----------------------------------------------------------------------------------------

DESCRIPTION = (
    "A small, fully reproducible demo suite: 24 synthetic (eSpeak NG) English utterances "
    "from six voices with simulated URGENT-style degradations (generated additive noise at "
    "-5..20 dB SNR, image-method room reverberation, clipping, bandwidth limitation), "
    "rendered at 44.1 kHz. For smoke tests and examples, not for ranking real systems."
)

CITATION = (
    "Zhang et al., \"URGENT Challenge: Universality, Robustness, and Generalizability For "
    "Speech Enhancement\", Interspeech 2024 (simulation protocol). Sentences: IEEE Recommended "
    "Practice for Speech Quality Measurements (Harvard sentences), IEEE Trans. Audio "
    "Electroacoust. 17(3), 1969."
)

PROVENANCE = (
    "Clean speech: Harvard sentences (public domain) synthesised by this project with eSpeak NG "
    "1.51 (six voice settings), 22.05 kHz, peak 0.5, 16-bit FLAC. Noise: generated from seeds "
    "(white, pink, brown, mains hum, amplitude-modulated pink); no recorded noise. Reverberation: "
    "shoebox rooms, image source method (pyroomacoustics geometry), no ray tracing. All "
    "parameters sampled once with numpy.random.default_rng(2024) and stored in the manifest; "
    "rendering is deterministic and checked by render_sha256. See PROVENANCE.md."
)


def card_dict(manifest_sha256: str, utterances: list[Utterance]) -> dict[str, Any]:
    """The suite card's content.

    Args:
        manifest_sha256: sha256 of the written manifest.
        utterances: The manifest's utterances (for per-condition counts).
    """
    conditions: dict[str, Any] = {}
    for name, (chain, _) in CONDITIONS.items():
        count = sum(1 for u in utterances if u.tags.get("condition") == name)
        conditions[name] = {
            "count": count,
            "chain": list(chain),
            "ranges": {step: copy.deepcopy(RANGES[step]) for step in chain},  # no YAML anchors
        }
    return {
        "name": SUITE_NAME,
        "version": SUITE_VERSION,
        "description": DESCRIPTION,
        "sample_rate": SAMPLE_RATE,
        "manifest": "manifest.jsonl",
        "manifest_sha256": manifest_sha256,
        "metrics": ["dnsmos", "pesq", "estoi", "sdr", "si_sdr", "lsd", "mcd", "spk_sim", "wer"],
        "categories": {
            "non-intrusive": ["dnsmos_ovrl"],
            "intrusive": ["pesq", "estoi", "sdr", "mcd", "lsd"],
            "downstream": ["spk_sim", "wer"],
        },
        "citation": CITATION,
        "provenance": PROVENANCE,
        "conditions": conditions,
        "sampling_seed": SAMPLING_SEED,
        "noise_snr_definition": (
            "active-speech power of the signal the noise is added to (20 ms frames within 40 dB "
            "of the loudest frame) over the mean power of the whole noise"
        ),
    }


def build_demo(suite_dir: str | os.PathLike | None = None, resynthesise: bool = False) -> str:
    """Write the demo manifest (with ``render_sha256``) and card; optionally the clean audio first.

    Args:
        suite_dir: Suite folder (default ``data_manifests/demo``).
        resynthesise: Recreate the clean files with eSpeak NG first.

    Returns:
        The manifest's sha256.
    """
    import yaml

    suite_dir = Path(suite_dir) if suite_dir is not None else default_suite_dir()
    if resynthesise:
        synthesise_clean(suite_dir)
    utterances = sample_manifest()
    for utt in utterances:
        utt.render_sha256 = render_utterance(utt, suite_dir).sha256
        logger.info("rendered %s (%s)", utt.id, utt.tags["condition"])
    sha = write_manifest(suite_dir / "manifest.jsonl", utterances)
    card = card_dict(sha, utterances)
    text = "# Generated by `python -m urgentbench.simulation.demo`; do not edit by hand.\n"
    text += yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=100)
    (suite_dir / "card.yaml").write_text(text, encoding="utf-8")
    logger.info("wrote %s (sha256 %s) and card.yaml", suite_dir / "manifest.jsonl", sha)
    return sha


def verify_demo(suite_dir: str | os.PathLike | None = None) -> list[str]:
    """Render every utterance of the manifest and compare with its ``render_sha256``.

    Returns:
        Ids whose rendering differs (empty when all match).
    """
    suite_dir = Path(suite_dir) if suite_dir is not None else default_suite_dir()
    bad = []
    for utt in read_manifest(suite_dir / "manifest.jsonl"):
        if render_utterance(utt, suite_dir).sha256 != utt.render_sha256:
            bad.append(utt.id)
    return bad


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: rebuild (default) or verify the demo suite."""
    parser = argparse.ArgumentParser(
        prog="python -m urgentbench.simulation.demo", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "--suite-dir", type=Path, default=None, help="suite folder (default data_manifests/demo)"
    )
    parser.add_argument(
        "--resynthesise", action="store_true", help="recreate the clean speech with espeak-ng first"
    )
    parser.add_argument(
        "--verify", action="store_true", help="only check that rendering matches the stored render_sha256"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.verify:
        bad = verify_demo(args.suite_dir)
        if bad:
            logger.error("rendering differs from render_sha256 for: %s", ", ".join(bad))
            return 1
        logger.info("all utterances render to their render_sha256")
        return 0
    build_demo(args.suite_dir, resynthesise=args.resynthesise)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
