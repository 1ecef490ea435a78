"""Recipes of the VCTK-based 44.1 kHz suites: gsr, bwe-1k/2k/4k/8k, declip-0.1/0.25.

The manifests depend on the file list of the prepared VCTK corpus, which only exists
after ``urgentbench data prepare vctk``; so the committed cards are *templates*
(``status: needs-build``, no manifest) and a user builds the manifests with::

    urgentbench data prepare vctk          # and, for gsr: urgentbench data prepare demand
    urgentbench data build-suite gsr       # or: all

Every choice is deterministic (no clock, no global random state, no file-system order):

* **Utterances.** Per speaker, the prepared utterances are ranked by ``(no transcript,
  sha256("urgentbench-vctk-select/<id>"))`` and the first :data:`PER_SPEAKER` are
  taken, then sorted by id; the same utterances are used by every suite, so the BWE
  cut-offs and clip thresholds are comparable item by item.
* **Parameters.** Each utterance's parameters come from
  ``numpy.random.default_rng(seed)`` with ``seed`` derived from the suite name, the
  recipe version and the utterance id (stored in the manifest); every parameter is drawn
  in a fixed order whether the condition uses it or not.
* **Output.** The manifest is written with sorted keys, one line per utterance in id
  order; the card has no timestamps. Same corpus files -> byte-identical manifest and card.

Suite versions: :data:`RECIPE_VERSION` when both corpora were prepared from their pinned
archives; otherwise ``<version>+local.<fingerprint>`` (fingerprint of the corpora's
``FILES.csv``), so results on an unverifiable copy are never stored under the canonical
version.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from urgentbench.data.vctk_gsr import GSR_CONDITIONS, GSR_RANGES, gsr_chain
from urgentbench.manifest import DegradationSpec, Utterance, write_manifest

__all__ = [
    "GSR_CONDITIONS", "GSR_RANGES", "RECIPE_VERSION", "SUITE_NAMES", "build_suite", "gsr_chain", "suite_utterances",
    "template_card",
]

logger = logging.getLogger(__name__)

RECIPE_VERSION = "1.0"
SAMPLE_RATE = 44100
#: Utterances per test speaker in every suite (8 speakers -> 400 utterances).
PER_SPEAKER = 50
BWE_CUTOFFS = {"bwe-1k": 1000, "bwe-2k": 2000, "bwe-4k": 4000, "bwe-8k": 8000}
DECLIP_THRESHOLDS = {"declip-0.1": 0.1, "declip-0.25": 0.25}
SUITE_NAMES = ("gsr", *BWE_CUTOFFS, *DECLIP_THRESHOLDS)

METRICS = ["dnsmos", "pesq", "estoi", "sdr", "si_sdr", "lsd", "mcd", "spk_sim", "wer"]
CATEGORIES = {
    "non-intrusive": ["dnsmos_ovrl"],
    "intrusive": ["pesq", "estoi", "sdr", "mcd", "lsd"],
    "downstream": ["spk_sim", "wer"],
}
CITATION_MASKSR = (
    'X. Li, Q. Wang, X. Liu, "MaskSR: Masked Language Model for Full-band Speech Restoration", Interspeech '
    '2024, arXiv:2406.02092; X. Liu, X. Li, J. Serrà, S. Pascual, "Joint Semantic Knowledge Distillation and '
    'Masked Acoustic Modeling for Full-band Speech Restoration with Improved Intelligibility", ICASSP 2025, '
    "arXiv:2409.09357."
)
CITATION_URGENT = (
    'W. Zhang et al., "URGENT Challenge: Universality, Robustness, and Generalizability For Speech '
    'Enhancement", Interspeech 2024 (SNR range, early-RIR target, peak scaling).'
)


def _build_command(name: str) -> str:
    prep = "urgentbench data prepare vctk" + (" && urgentbench data prepare demand" if name == "gsr" else "")
    return f"{prep} && urgentbench data build-suite {name}"


def _corpora(name: str) -> list[str]:
    return ["vctk", "demand"] if name == "gsr" else ["vctk"]


def _utterance_seed(suite: str, uid: str) -> int:
    digest = hashlib.sha256(f"urgentbench/{suite}/{RECIPE_VERSION}/{uid}".encode()).hexdigest()
    return int(digest[:15], 16)


def select_items(items: Sequence[Any], per_speaker: int = PER_SPEAKER) -> list[Any]:
    """The utterances used by every suite (see the module docstring), sorted by id.

    Args:
        items: :class:`~urgentbench.data.vctk.VCTKItem` objects.
        per_speaker: How many per speaker.
    """
    from urgentbench.data.vctk import SPEAKERS

    chosen = []
    for spk in SPEAKERS:
        mine = [it for it in items if it.speaker == spk]
        mine.sort(
            key=lambda it: (
                it.text is None,
                hashlib.sha256(f"urgentbench-vctk-select/{it.id}".encode()).hexdigest(),
            )
        )
        chosen.extend(sorted(mine[:per_speaker], key=lambda it: it.id))
    return chosen


# ----------------------------------------------------------------------------------------
# suites
# ----------------------------------------------------------------------------------------


def suite_utterances(
    name: str, items: Sequence[Any], noise_files: dict[str, str] | None = None
) -> list[Utterance]:
    """The manifest lines of suite ``name`` from the prepared VCTK items.

    Args:
        name: One of :data:`SUITE_NAMES`.
        items: All prepared :class:`~urgentbench.data.vctk.VCTKItem` objects.
        noise_files: DEMAND environment -> prepared path (needed for ``gsr``).

    Raises:
        KeyError: For an unknown suite.
        ValueError: For ``gsr`` without DEMAND files.
    """
    if name not in SUITE_NAMES:
        raise KeyError(f"unknown VCTK suite {name!r}; known: {', '.join(SUITE_NAMES)}")
    if name == "gsr" and not noise_files:
        raise ValueError("the gsr suite needs the DEMAND noise files (urgentbench data prepare demand)")
    from urgentbench.data.vctk import SPEAKERS

    chosen = select_items(items)
    speaker_index = {spk: i for i, spk in enumerate(SPEAKERS)}
    position: dict[str, int] = {}
    utterances = []
    for it in chosen:
        seed = _utterance_seed(name, it.id)
        if name == "gsr":
            k = position.get(it.speaker, 0)
            position[it.speaker] = k + 1
            condition = GSR_CONDITIONS[(k + speaker_index[it.speaker]) % len(GSR_CONDITIONS)]
            chain, tags = gsr_chain(condition, seed, noise_files or {})
        elif name in BWE_CUTOFFS:
            chain = [DegradationSpec("bandwidth_limit_poly", {"cutoff_hz": float(BWE_CUTOFFS[name])})]
            tags = {"condition": "bwe"}
        else:
            chain = [DegradationSpec("clipping", {"threshold": DECLIP_THRESHOLDS[name]})]
            tags = {"condition": "declip"}
        tags["corpus"] = "vctk"
        utterances.append(
            Utterance(
                id=it.id,
                sample_rate=SAMPLE_RATE,
                clean=f"@vctk/{it.audio}",
                text=it.text,
                speaker=it.speaker,
                seed=seed,
                degradations=chain,
                tags=tags,
            )
        )
    return utterances


def _description(name: str) -> str:
    base = (
        f"{PER_SPEAKER * 8} utterances ({PER_SPEAKER} per speaker) of the 8 VCTK 0.92 test speakers (p360 p361 "
        "p362 p363 p364 p374 p376 s5; mic1, whole silence-trimmed utterances, resampled to 44.1 kHz)"
    )
    if name == "gsr":
        return (
            "Full-band (44.1 kHz) general speech restoration: " + base + ", each degraded by one of 8 "
            "conditions (noise, reverb, bandwidth, clipping alone; reverb+noise, noise+bandwidth, "
            "reverb+noise+bandwidth, reverb+noise+bandwidth+clipping; 50 utterances each). Noise: DEMAND "
            "recordings (CC BY-SA 3.0) or generated noise, half each, at -5..20 dB SNR; reverberation: "
            "pyroomacoustics shoebox RIRs, RT60 0.2..1.0 s, target = early RIR (URGENT); band limitation: "
            "MaskSR's Chebyshev recipe at 2..16 kHz; clipping at 0.1..0.5 of the extremes."
        )
    if name in BWE_CUTOFFS:
        fc = BWE_CUTOFFS[name]
        return (
            f"Bandwidth extension from {fc} Hz to 44.1 kHz: {base}, low-passed with an order-8 Chebyshev "
            f"type-I filter (0.1 dB ripple) at {fc} Hz applied zero-phase, then resampled to {2 * fc} Hz and "
            "back with scipy resample_poly (the MaskSR / NVSR / VoiceFixer recipe)."
        )
    t = DECLIP_THRESHOLDS[name]
    return (
        f"Declipping at threshold {t}: {base}, clipped as clip(x, {t}*min(x), {t}*max(x)) with no "
        "renormalisation (the MaskSR recipe); the clipped input keeps the reference's scale."
    )


def _parameters(name: str) -> dict[str, Any]:
    if name == "gsr":
        return {
            "conditions": list(GSR_CONDITIONS),
            "ranges": GSR_RANGES,
            "chain_order": ["reverb_pra", "noise_file | noise", "bandwidth_limit_poly", "clipping"],
        }
    if name in BWE_CUTOFFS:
        fc = BWE_CUTOFFS[name]
        return {
            "filter": "cheby1, order 8, 0.1 dB ripple, sosfiltfilt (zero-phase)",
            "cutoff_hz": fc,
            "resample": f"scipy.signal.resample_poly to {2 * fc} Hz and back",
        }
    return {
        "threshold": DECLIP_THRESHOLDS[name],
        "formula": "clip(x, t*min(x), t*max(x)), no renormalisation",
    }


def _provenance(name: str) -> str:
    text = (
        "Clean speech: CSTR VCTK Corpus 0.92 (CC BY 4.0), mic1 FLACs of the 8 test speakers, resampled once "
        "from 48 to 44.1 kHz with soxr HQ and rounded to 16 bit by `urgentbench data prepare vctk` (archive "
        "sha256 pinned, every produced file recorded and checked). Utterance selection and all parameters are "
        "deterministic (urgentbench.data.vctk_suites; seeds in the manifest). Rendering: URGENT peak scaling "
        "of input and reference together to 0.9, 16-bit grid."
    )
    if name == "gsr":
        text += (
            " Noise: DEMAND channel 1 (CC BY-SA 3.0; archives pinned by Zenodo size + md5, extracted files "
            "recorded) or generated from seeds. RIRs: pyroomacoustics 0.10 image source model from the stored "
            "geometry, RT60 and order (no RIR files). MaskSR's own GSR recipe (sources, ranges) is not public; "
            "ranges follow URGENT where it has them (SNR, early-RIR target), own choices otherwise (RT60, rooms, "
            "cut-offs, clip thresholds)."
        )
    return text


def _licence(name: str) -> str:
    lic = "Manifest and card: as urgentbench. Audio rendered from it: VCTK 0.92 is CC BY 4.0 (attribute CSTR)"
    if name == "gsr":
        lic += "; noisy inputs mixing DEMAND noise are adaptations of CC BY-SA 3.0 material (share alike)"
    return lic + "."


def _card(
    name: str, version: str, manifest_sha256: str | None, utterances: Sequence[Utterance] | None
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "name": name,
        "version": version,
        "description": _description(name),
        "sample_rate": SAMPLE_RATE,
        "manifest": "manifest.jsonl",
        "manifest_sha256": manifest_sha256,
        "metrics": list(METRICS),
        "categories": {k: list(v) for k, v in CATEGORIES.items()},
        "citation": (CITATION_MASKSR + " " + CITATION_URGENT) if name == "gsr" else CITATION_MASKSR,
        "licence": _licence(name),
        "provenance": _provenance(name),
        "corpora": _corpora(name),
        "build": _build_command(name),
        "recipe": f"urgentbench.data.vctk_suites (recipe version {RECIPE_VERSION})",
        "selection": f"{PER_SPEAKER} utterances per speaker, ranked by (no transcript, sha256 of the id)",
        "parameters": _parameters(name),
    }
    if utterances is None:
        card["status"] = "needs-build"
        card["note"] = (
            "Template: the manifest depends on the VCTK 0.92 file list, which is only known after preparing the "
            f"corpus. Build it with: {_build_command(name)}"
        )
    else:
        counts: dict[str, int] = {}
        for u in utterances:
            counts[u.tags["condition"]] = counts.get(u.tags["condition"], 0) + 1
        card["utterances"] = len(utterances)
        card["conditions"] = dict(sorted(counts.items()))
        card["with_transcript"] = sum(1 for u in utterances if u.text)
    return card


def template_card(name: str) -> dict[str, Any]:
    """The committed card of a suite before it is built (no manifest)."""
    return _card(name, RECIPE_VERSION, None, None)


def _write_card(folder: Path, card: dict[str, Any], header: str) -> None:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    text = header + yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=100)
    (folder / "card.yaml").write_text(text, encoding="utf-8")


def _fingerprint(*roots: Path) -> str:
    h = hashlib.sha256()
    for root in roots:
        h.update((root / "FILES.csv").read_bytes())
    return h.hexdigest()


def build_suite(
    name: str,
    out_dir: str | os.PathLike | None = None,
    *,
    vctk_root: str | os.PathLike | None = None,
    demand_root: str | os.PathLike | None = None,
    verified: bool | None = None,
) -> Path:
    """Write ``<out_dir>/<name>/manifest.jsonl`` and ``card.yaml`` from the prepared corpora.

    Every recorded corpus file is checked first (sha256 and size).

    Args:
        name: One of :data:`SUITE_NAMES`.
        out_dir: Folder of suite folders (default: this checkout's ``data_manifests``).
        vctk_root: Prepared VCTK root (default: the recorded one).
        demand_root: Prepared DEMAND root (default: the recorded one; gsr only).
        verified: Whether the corpora came from their pinned archives (default: from the
            corpus records); False adds ``+local.<fingerprint>`` to the version.

    Returns:
        The suite folder.

    Raises:
        CorpusNotPreparedError: When a needed corpus is not prepared (naming the command).
        CorpusError: Naming every missing or changed corpus file and its expected sha256.
    """
    from urgentbench.data import corpus_root, prepared_corpora
    from urgentbench.data.demand import noise_files as demand_files
    from urgentbench.data.vctk import load_utterances

    if name not in SUITE_NAMES:
        raise KeyError(f"unknown VCTK suite {name!r}; known: {', '.join(SUITE_NAMES)}")
    if out_dir is None:
        from urgentbench.suites import PROJECT_SUITES_DIR

        out_dir = PROJECT_SUITES_DIR
    vroot = Path(vctk_root) if vctk_root is not None else corpus_root("vctk")
    roots = [vroot]
    noise = None
    if name == "gsr":
        droot = Path(demand_root) if demand_root is not None else corpus_root("demand")
        roots.append(droot)
        noise = demand_files(droot)
    items = load_utterances(vroot)
    if verified is None:
        records = prepared_corpora()
        verified = all(records.get(c, {}).get("archive_verified", False) for c in _corpora(name))
    version = RECIPE_VERSION if verified else f"{RECIPE_VERSION}+local.{_fingerprint(*roots)[:10]}"
    utterances = suite_utterances(name, items, noise)
    folder = Path(out_dir) / name
    sha = write_manifest(folder / "manifest.jsonl", utterances)
    card = _card(name, version, sha, utterances)
    _write_card(folder, card, f"# Generated by `urgentbench data build-suite {name}`; do not edit by hand.\n")
    logger.info(
        "%s: wrote %d utterances (version %s, sha256 %s) to %s", name, len(utterances), version, sha, folder
    )
    return folder


def write_templates(out_dir: str | os.PathLike | None = None) -> None:
    """Write the template cards (``status: needs-build``) of every suite, removing stale manifests."""
    if out_dir is None:
        from urgentbench.suites import PROJECT_SUITES_DIR

        out_dir = PROJECT_SUITES_DIR
    for name in SUITE_NAMES:
        folder = Path(out_dir) / name
        (folder / "manifest.jsonl").unlink(missing_ok=True)
        _write_card(
            folder,
            template_card(name),
            f"# Template written by `python -m urgentbench.data.vctk_suites --templates`.\n"
            f"# Build the manifest with: {_build_command(name)}\n",
        )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m urgentbench.data.vctk_suites [--templates | NAME ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m urgentbench.data.vctk_suites", description="build the VCTK-based suites"
    )
    parser.add_argument("names", nargs="*", help=f"suites ({', '.join(SUITE_NAMES)}, or all)")
    parser.add_argument("--templates", action="store_true", help="write the template cards instead")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder of suite folders (default data_manifests)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.templates:
        write_templates(args.out)
        return 0
    names = list(SUITE_NAMES) if args.names in ([], ["all"]) else args.names
    for name in names:
        build_suite(name, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
