"""urgentbench against the official URGENT 2025 evaluation scripts, on the same files (issue 19).

Runs the official scripts where they lie, ``../shared/reference/urgent2025_evaluation_metrics/
evaluation_metrics/`` (never a copy), and ``urgentbench score`` on the same references and
outputs, interleaved A B A B ... (``--reps`` repetitions of each), and prints:

- per-metric max / mean absolute differences of the values, per utterance matched by id
  (PESQ, ESTOI, SDR, MCD, LSD, DNSMOS OVRL), with the issue's tolerances;
- the SDR spread: the official float32 SDR (numpy 1.26) against ``urgentbench score --protocol
  urgent2025`` (the timed runs), against urgentbench's float64 default, and against the same
  float32 call under numpy 2;
- wall-time ratios official / urgentbench (of the minima and of the medians) for one system
  (one submission) and several systems sharing the references, at 44.1 kHz and 16 kHz;
- urgentbench's harness overhead: wall time against its own per-row kernel seconds (the
  ``seconds`` column of its results store) divided by the workers.

A JSON of every figure goes to ``benchmarks/results/vs_official.json`` (``--json``).

What is timed
    official   ``calculate_intrusive_se_metrics.py --nj J --chunksize C`` then J processes of
               ``calculate_nonintrusive_dnsmos.py --nsplits J --job k`` side by side (the way
               the scripts' README runs them), one system after another.
    urgentbench ``urgentbench score --jobs J --protocol urgent2025 --metrics pesq,estoi,sdr,mcd,lsd,dnsmos``
               (the official values' configuration: float32 SDR; DNSMOS without the P.808 model the
               official script runs and discards) into a fresh results folder each repetition (it
               holds the rendered inputs, but no scores and no reference-state cache), one call per
               system into the same folder. Its one-time caches outside the results folder (DNSMOS's
               split graph) are made by the warm-up, as the side venv's numba cache is.
    Both sides run with the machine's environment as it is (no thread settings imposed), after
    one untimed warm-up run of each on two utterances (a fresh side venv compiles and caches
    librosa's numba code on first use, which added about 100 s to the first official run).
    ``--official-chunksize`` defaults to 1: the README's ``--chunksize 60`` would hand a set of
    60 files or fewer to a single worker, i.e. one core; 1 lets both workers share the work,
    the official scripts' fastest use of ``--nj``.

Material (prepared once per invocation, untimed)
    44.1 kHz  the demo suite's rendered noisy inputs and references (urgentbench's input cache).
    16 kHz    suite ``bench-official-16k``, written by this script into the work folder: the same
              rendered pairs, each a recorded noisy/clean pair that urgentbench renders at 16 kHz
              (its own resampler, soxr), found through ``$URGENTBENCH_SUITES_PATH``.
    Systems   one system: ``noisy``; several: ``noisy`` plus ``wiener`` and ``rnnoise``, enhanced
              first with ``urgentbench enhance`` (untimed).

The official scripts' side environment (made once, cached)
    A virtualenv at ``~/.cache/urgentbench/bench-official-venv`` (``--side-venv``), built with
    pip from the package index: numpy 1.26 (the official SDR's ``np.linalg.solve`` call raises
    under numpy 2), the same versions of the metric packages urgentbench pins where they install
    with numpy 1.26 (pesq, pystoi, fast_bss_eval, pysptk, fastdtw, librosa, soxr, soundfile,
    onnxruntime, scipy, tqdm), setuptools < 81 (pysptk imports ``pkg_resources``), torch 2.13.0
    (the DNSMOS script imports torch and wraps the model call in ``torch.no_grad()``; with torch
    installed, fast_bss_eval imports it too, as in URGENT's own environment) and espnet installed
    with ``--no-deps`` (the DNSMOS script imports ``espnet2.enh.layers.dnsmos.DNSMOS_local``; its
    ONNX path needs only numpy, librosa and onnxruntime; espnet's full dependency set is not
    installed and not needed). The DNSMOS models are the official ONNX files shipped in the
    ``speechmos`` package, passed with ``--primary_model`` / ``--p808_model``.

    One shim, not on the computation path: ``espnet2/enh/layers/dnsmos.py`` imports ``torchaudio``
    at module level but uses it only when ``--convert_to_torch true`` (ONNX converted to PyTorch,
    the GPU route). torchaudio cannot be installed against this torch, so a stand-in module
    ``torchaudio`` (every attribute access raises) is put on the DNSMOS processes' PYTHONPATH;
    the CPU/ONNX path never touches it, so every number comes from the official code.

Usage::

    make bench-official                      # = python benchmarks/vs_official.py
    python benchmarks/vs_official.py --reps 1 --limit 4
    python benchmarks/vs_official.py --rates 44100 --cases one
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OFFICIAL_DIR = REPO.parent / "shared" / "reference" / "urgent2025_evaluation_metrics" / "evaluation_metrics"
INTRUSIVE_SCRIPT = "calculate_intrusive_se_metrics.py"
DNSMOS_SCRIPT = "calculate_nonintrusive_dnsmos.py"
OUR_METRICS = "pesq,estoi,sdr,mcd,lsd,dnsmos"
#: urgentbench is timed as a participant reproduces the official values: the URGENT 2025 protocol
#: (float32 SDR as the official script; DNSMOS without the P.808 model the script runs and discards)
PROTOCOL_ARGS = ["--protocol", "urgent2025"]
SUITE_16K = "bench-official-16k"

#: Official output file stem -> (urgentbench metric, field of its stored result).
OFFICIAL_METRICS: dict[str, tuple[str, str]] = {
    "PESQ": ("pesq", "pesq"),
    "ESTOI": ("estoi", "estoi"),
    "SDR": ("sdr", "sdr"),
    "MCD": ("mcd", "mcd"),
    "LSD": ("lsd", "lsd"),
    "DNSMOS_OVRL": ("dnsmos", "dnsmos_ovrl"),
}
#: Issue 19's tolerances (absolute); SDR has none: its float32/float64 spread is reported instead.
TOLERANCES: dict[str, float | None] = {
    "PESQ": 1e-4, "ESTOI": 1e-4, "MCD": 1e-3, "LSD": 1e-3, "DNSMOS_OVRL": 1e-4, "SDR": None,
}

#: The side environment of the official scripts (see the module docstring).
SIDE_REQUIREMENTS = (
    "numpy==1.26.4",
    "setuptools==80.10.2",
    "torch==2.13.0",
    "pesq==0.0.4",
    "pystoi==0.4.1",
    "fast_bss_eval==0.1.4",
    "pysptk==1.0.1",
    "fastdtw==0.3.4",
    "librosa==0.11.0",
    "soxr==1.1.0",
    "soundfile==0.14.0",
    "onnxruntime==1.32.0",
    "scipy==1.17.1",
    "tqdm==4.70.1",
    "requests==2.34.2",
)
SIDE_NO_DEPS = ("espnet==202511",)
SIDE_PACKAGES_REPORTED = ("numpy", "scipy", "torch", "pesq", "pystoi", "fast_bss_eval", "pysptk", "fastdtw",
                          "librosa", "soxr", "soundfile", "onnxruntime", "espnet")
TORCHAUDIO_SHIM = '''"""Stand-in for torchaudio, written by urgentbench's benchmarks/vs_official.py.

espnet2.enh.layers.dnsmos imports torchaudio at module level but uses it only on its
convert_to_torch (PyTorch/GPU) path. The benchmark runs the ONNX path, which never reaches
this module; any use raises instead of computing anything.
"""


def __getattr__(name):
    raise AttributeError(
        f"torchaudio.{name}: torchaudio is a stand-in in the bench-official environment "
        "(only the DNSMOS ONNX path is supported there)"
    )
'''
DNSMOS_MODELS = ("dnsmos_models/sig_bak_ovr.onnx", "dnsmos_models/model_v8.onnx")


# ---------------------------------------------------------------------------------------------
# Parsing and comparing values (tested in tests/test_bench_official.py)
# ---------------------------------------------------------------------------------------------
def parse_score(text: str, source: str) -> float:
    """One value as the official scripts write it (``f"{uid} {value}"``): a float, ``nan`` or ``None``.

    Raises:
        ValueError: Naming ``source`` when the text is not a number.
    """
    text = text.strip()
    if text == "None":  # a metric function that returned nothing
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{source}: {text!r} is not a number") from None


def official_files(folder: Path, stem: str) -> list[Path]:
    """``<stem>.scp`` and the split files ``<stem>.<k>.scp`` in ``folder`` (k in numeric order)."""
    whole = [folder / f"{stem}.scp"] if (folder / f"{stem}.scp").is_file() else []
    split = [p for p in folder.glob(f"{stem}.*.scp") if p.name[len(stem) + 1:-4].isdigit()]
    return whole + sorted(split, key=lambda p: int(p.name[len(stem) + 1:-4]))


def read_official_scores(folder: str | os.PathLike, stem: str) -> dict[str, float]:
    """Values of one official metric from ``folder``: ``<stem>.scp`` and/or the split files ``<stem>.<k>.scp``.

    Each line is ``<uid> <value>``.

    Raises:
        ValueError: Naming the file and line for a malformed line or an id given twice,
            and the folder when no file of that metric exists.
    """
    folder = Path(folder)
    files = official_files(folder, stem)
    if not files:
        raise ValueError(f"{folder}: no {stem}.scp (or {stem}.<k>.scp) written by the official script")
    values: dict[str, float] = {}
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            where = f"{path}:{number}"
            if len(parts) != 2:
                raise ValueError(f"{where}: expected '<uid> <value>', got {line!r}")
            uid, value = parts
            if uid in values:
                raise ValueError(f"{where}: utterance {uid!r} appears twice")
            values[uid] = parse_score(value, where)
    return values


def read_official(folders: Iterable[str | os.PathLike], prefix: str = "") -> dict[str, dict[str, float]]:
    """All official values found in ``folders`` (the intrusive and the DNSMOS output folders).

    Returns ``{official metric: {prefix + uid: value}}`` for the metrics of :data:`OFFICIAL_METRICS`
    whose files exist in one of the folders.
    """
    out: dict[str, dict[str, float]] = {}
    for folder in folders:
        for stem in OFFICIAL_METRICS:
            if not official_files(Path(folder), stem):
                continue
            values = read_official_scores(folder, stem)
            out.setdefault(stem, {}).update({prefix + uid: v for uid, v in values.items()})
    return out


def ours_from_rows(rows: Iterable[tuple[str, str, str, str | None]], prefix_system: bool = False) -> dict[str, dict[str, float]]:
    """Values of urgentbench's store rows as ``{official metric: {uid: value}}``.

    ``rows``: ``(system, utt_id, metric, result_json)``; a missing value (``result_json`` None,
    a failure stored with its reason) becomes NaN. With ``prefix_system`` ids are ``system/uid``.
    """
    out: dict[str, dict[str, float]] = {}
    for system, utt_id, metric, result_json in rows:
        for official, (name, key) in OFFICIAL_METRICS.items():
            if name != metric:
                continue
            value = math.nan
            if result_json:
                value = float(json.loads(result_json).get(key, math.nan))
            uid = f"{system}/{utt_id}" if prefix_system else utt_id
            out.setdefault(official, {})[uid] = value
    return out


def read_ours(results_dir: str | os.PathLike, prefix_system: bool = False) -> dict[str, dict[str, float]]:
    """The values urgentbench stored in ``results_dir`` (see :func:`ours_from_rows`)."""
    with sqlite3.connect(Path(results_dir) / "results.sqlite") as db:
        rows = db.execute("SELECT system, utt_id, metric, result_json FROM scores").fetchall()
    return ours_from_rows(rows, prefix_system)


@dataclass
class Difference:
    """How one metric's values of the two sides differ."""

    metric: str
    compared: int = 0
    max_abs: float = 0.0
    mean_abs: float = 0.0
    worst: str | None = None
    #: Ids with a value on one side only (NaN counts as no value).
    only_official: list[str] = field(default_factory=list)
    only_ours: list[str] = field(default_factory=list)
    #: Ids missing (NaN or absent) on both sides.
    missing_both: int = 0
    tolerance: float | None = None
    above_1e3: int = 0

    @property
    def within(self) -> bool | None:
        """True/False against the tolerance (None: the metric has none); missing on one side fails."""
        if self.tolerance is None:
            return None
        return not self.only_official and not self.only_ours and self.max_abs <= self.tolerance

    def to_dict(self) -> dict:
        """JSON form."""
        return {
            "compared": self.compared, "max_abs": self.max_abs,
            "mean_abs": self.mean_abs if self.compared else None, "worst": self.worst,
            "only_official": self.only_official, "only_urgentbench": self.only_ours,
            "missing_both": self.missing_both, "tolerance": self.tolerance, "within_tolerance": self.within,
            "above_1e-3": self.above_1e3,
        }


def compare_values(metric: str, official: Mapping[str, float], ours: Mapping[str, float]) -> Difference:
    """Per-utterance absolute differences of one metric, matched by id."""
    diff = Difference(metric=metric, tolerance=TOLERANCES.get(metric))
    total = 0.0
    for uid in sorted(set(official) | set(ours)):
        a, b = official.get(uid, math.nan), ours.get(uid, math.nan)
        if math.isnan(a) and math.isnan(b):
            diff.missing_both += 1
        elif math.isnan(b):
            diff.only_official.append(uid)
        elif math.isnan(a):
            diff.only_ours.append(uid)
        else:
            d = abs(a - b)
            diff.compared += 1
            total += d
            diff.above_1e3 += d > 1e-3
            if diff.worst is None or d > diff.max_abs:
                diff.max_abs, diff.worst = d, uid
    diff.mean_abs = total / diff.compared if diff.compared else math.nan
    return diff


def compare_all(official: Mapping[str, Mapping[str, float]], ours: Mapping[str, Mapping[str, float]]) -> dict[str, Difference]:
    """:func:`compare_values` for every official metric present on either side."""
    return {m: compare_values(m, official.get(m, {}), ours.get(m, {})) for m in OFFICIAL_METRICS if m in official or m in ours}


def ratios(official_s: list[float], ours_s: list[float]) -> dict[str, float]:
    """Wall-time figures of one case: minima, medians and official / urgentbench of each."""
    o_min, u_min = min(official_s), min(ours_s)
    o_med, u_med = statistics.median(official_s), statistics.median(ours_s)
    return {
        "official_min_s": o_min, "official_median_s": o_med, "urgentbench_min_s": u_min, "urgentbench_median_s": u_med,
        "ratio_min": o_min / u_min, "ratio_median": o_med / u_med,
    }


# ---------------------------------------------------------------------------------------------
# The side environment
# ---------------------------------------------------------------------------------------------
def default_side_venv() -> Path:
    """``$URGENTBENCH_CACHE`` (or ``~/.cache/urgentbench``) ``/bench-official-venv``."""
    from urgentbench.assets import cache_dir

    return cache_dir() / "bench-official-venv"


def side_env(venv: Path, shim: bool) -> dict[str, str]:
    """Environment of an official-script process: this one's, without our venv, plus the shim."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    if shim:
        env["PYTHONPATH"] = str(venv / "shims")
    return env


def ensure_side_venv(venv: Path, rebuild: bool = False) -> Path:
    """Build the official scripts' virtualenv once (pip, the package index); return its python."""
    stamp = venv / ".bench-official.json"
    wanted = {"requirements": list(SIDE_REQUIREMENTS), "no_deps": list(SIDE_NO_DEPS)}
    python = venv / "bin" / "python"
    shim = venv / "shims" / "torchaudio" / "__init__.py"
    if not rebuild and stamp.is_file() and python.is_file():
        try:
            if json.loads(stamp.read_text()) == wanted:
                if not shim.is_file() or shim.read_text() != TORCHAUDIO_SHIM:
                    shim.parent.mkdir(parents=True, exist_ok=True)
                    shim.write_text(TORCHAUDIO_SHIM)
                return python
        except (OSError, ValueError):
            pass
    print(f"building the official scripts' environment in {venv} (once; a few minutes)", flush=True)
    if venv.exists():
        shutil.rmtree(venv)
    base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    log = venv / "pip-install.log"
    with log.open("w") as fh:
        for cmd in ([*pip, *SIDE_REQUIREMENTS], [*pip, "--no-deps", *SIDE_NO_DEPS]):
            fh.write(f"$ {' '.join(cmd)}\n")
            fh.flush()
            if subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                raise SystemExit(f"pip could not build the official scripts' environment ({log}):\n{tail}")
    shim.parent.mkdir(parents=True, exist_ok=True)
    shim.write_text(TORCHAUDIO_SHIM)
    check = ("import numpy, fast_bss_eval, pysptk, pesq, pystoi, librosa, soxr, onnxruntime, torch, tqdm\n"
             "from espnet2.enh.layers.dnsmos import DNSMOS_local\n"
             "assert numpy.__version__.startswith('1.26'), numpy.__version__\n")
    subprocess.run([str(python), "-W", "ignore", "-c", check], check=True, env=side_env(venv, shim=True))
    stamp.write_text(json.dumps(wanted))
    return python


def side_versions(python: Path, venv: Path) -> dict[str, str]:
    """Versions of the side environment's metric packages."""
    code = ("import importlib.metadata as m, json, sys\n"
            f"names = {list(SIDE_PACKAGES_REPORTED)!r}\n"
            "out = {}\n"
            "for n in names:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = None\n"
            "out['python'] = sys.version.split()[0]\n"
            "print(json.dumps(out))\n")
    done = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True, env=side_env(venv, False))
    return json.loads(done.stdout)


def dnsmos_model_paths() -> tuple[Path, Path]:
    """The official DNSMOS ONNX files shipped in the ``speechmos`` package (urgentbench's source too)."""
    spec = importlib.util.find_spec("speechmos")
    folders = list(spec.submodule_search_locations or []) if spec else []
    found = []
    for rel in DNSMOS_MODELS:
        hits = [Path(f) / rel for f in folders if (Path(f) / rel).is_file()]
        if not hits:
            raise SystemExit(f"speechmos/{rel}: not found; install urgentbench's dependencies (make install)")
        found.append(hits[0])
    return found[0], found[1]


# ---------------------------------------------------------------------------------------------
# Material
# ---------------------------------------------------------------------------------------------
@dataclass
class Material:
    """One rate's files: a suite, its rendered inputs and each system's outputs."""

    label: str
    suite_name: str
    suite_key: str
    sample_rate: int
    ids: list[str]
    cache: Path  # a results folder holding only inputs/<suite key>/{noisy,reference}
    refs: Path  # the rendered references (inside cache)
    outputs: dict[str, Path] = field(default_factory=dict)  # system -> folder of <id>.flac
    limit_arg: list[str] = field(default_factory=list)


def render_inputs(suite, utterances, cache: Path) -> None:
    """Render a suite's noisy inputs and references into ``cache`` with urgentbench's own code."""
    from urgentbench import runner

    for utt in utterances:
        runner.load_inputs(utt, suite.folder, cache, suite.key)


def write_16k_suite(suites_root: Path, source: Material) -> Path:
    """Suite ``bench-official-16k``: the 44.1 kHz rendered pairs as recorded inputs, rendered at 16 kHz."""
    from urgentbench.manifest import file_sha256

    folder = suites_root / SUITE_16K
    (folder / "src").mkdir(parents=True, exist_ok=True)
    lines = []
    noisy_dir = source.cache / "inputs" / source.suite_key / "noisy"
    for uid in source.ids:
        shutil.copy(noisy_dir / f"{uid}.flac", folder / "src" / f"{uid}.noisy.flac")
        shutil.copy(source.refs / f"{uid}.flac", folder / "src" / f"{uid}.clean.flac")
        lines.append(json.dumps({
            "id": uid, "sample_rate": 16000, "clean": f"src/{uid}.clean.flac", "noisy": f"src/{uid}.noisy.flac",
            "seed": 0, "degradations": [], "tags": {"condition": "demo-16k"},
        }, sort_keys=True))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    card = {
        "name": SUITE_16K, "version": "1.0", "sample_rate": 16000, "manifest": "manifest.jsonl",
        "manifest_sha256": file_sha256(manifest),
        "description": "benchmarks/vs_official.py: the demo suite's rendered pairs at 16 kHz (not for ranking)",
        "metrics": OUR_METRICS.split(","),
    }
    import yaml

    (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return folder / "card.yaml"


def copy_outputs(src_dir: Path, ids: list[str], dest: Path) -> Path:
    """``<id>.flac`` files of ``src_dir`` (the rendered noisy inputs) copied as a system's outputs folder."""
    dest.mkdir(parents=True, exist_ok=True)
    for uid in ids:
        shutil.copy(src_dir / f"{uid}.flac", dest / f"{uid}.flac")
    return dest


def enhance(urgentbench: str, system: str, src: Path, dest: Path, env: dict[str, str]) -> Path:
    """``urgentbench enhance`` (untimed preparation)."""
    subprocess.run([urgentbench, "-q", "enhance", "--system", system, "--input", str(src), "--output", str(dest)],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return dest


def check_lengths(material: Material) -> None:
    """The official script asserts equal shapes: fail here, clearly, if an output's length differs."""
    import soundfile as sf

    for folder in material.outputs.values():
        for uid in material.ids:
            ref, out = sf.info(str(material.refs / f"{uid}.flac")), sf.info(str(folder / f"{uid}.flac"))
            if (ref.frames, ref.samplerate) != (out.frames, out.samplerate):
                raise SystemExit(f"{folder / f'{uid}.flac'}: {out.frames} samples at {out.samplerate} Hz, the "
                                 f"reference has {ref.frames} at {ref.samplerate} Hz")


def prepare(root: Path, limit: int | None, rates: list[int], systems: list[str], urgentbench: str,
            env: dict[str, str]) -> list[Material]:
    """Render the 44.1 kHz demo material (and the 16 kHz suite from it) and every system's outputs."""
    from urgentbench.suites import PROJECT_SUITES_DIR, Suite

    demo = Suite.from_card(PROJECT_SUITES_DIR / "demo" / "card.yaml")
    utts = demo.utterances(limit)
    cache44 = root / "m44" / "cache"
    render_inputs(demo, utts, cache44)
    ids = [u.id for u in utts]
    m44 = Material("44.1 kHz", "demo", demo.key, demo.sample_rate, ids, cache44,
                   cache44 / "inputs" / demo.key / "reference",
                   limit_arg=["--limit", str(len(ids))] if limit is not None else [])
    materials = []
    if 44100 in rates:
        materials.append(m44)
    if 16000 in rates:
        card = write_16k_suite(root / "suites", m44)
        s16 = Suite.from_card(card)
        cache16 = root / "m16" / "cache"
        render_inputs(s16, s16.utterances(), cache16)
        materials.append(Material("16 kHz", SUITE_16K, s16.key, 16000, ids, cache16,
                                  cache16 / "inputs" / s16.key / "reference"))
    for m in materials:
        base = m.cache.parent / "outputs"
        noisy = copy_outputs(m.cache / "inputs" / m.suite_key / "noisy", m.ids, base / "noisy")
        m.outputs["noisy"] = noisy
        for system in systems:
            if system != "noisy":
                m.outputs[system] = enhance(urgentbench, system, noisy, base / system, env)
        check_lengths(m)
        for system, folder in m.outputs.items():
            (m.cache.parent / f"{system}.scp").write_text("".join(f"{u} {folder / f'{u}.flac'}\n" for u in m.ids))
        (m.cache.parent / "reference.scp").write_text("".join(f"{u} {m.refs / f'{u}.flac'}\n" for u in m.ids))
    return materials


# ---------------------------------------------------------------------------------------------
# Timed runs
# ---------------------------------------------------------------------------------------------
@dataclass
class Official:
    """How to run the official scripts."""

    python: Path
    venv: Path
    folder: Path
    jobs: int
    chunksize: int
    models: tuple[Path, Path]


def _checked(procs: list[tuple[subprocess.Popen, Path]]) -> None:
    failed = []
    for proc, log in procs:
        if proc.wait() != 0:
            failed.append(f"{' '.join(map(str, proc.args[:2]))} exited {proc.returncode}; last lines of {log}:\n"
                          + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
    if failed:
        raise SystemExit("official script failed:\n" + "\n".join(failed))


def run_official_system(off: Official, ref_scp: Path, inf_scp: Path, out: Path, n_utts: int) -> tuple[float, float]:
    """The intrusive script with ``--nj``, then ``jobs`` DNSMOS processes side by side; their wall seconds."""
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    log = out / "intrusive.log"
    with log.open("w") as fh:
        cmd = [str(off.python), str(off.folder / INTRUSIVE_SCRIPT), "--ref_scp", str(ref_scp), "--inf_scp", str(inf_scp),
               "--output_dir", str(out / "intrusive"), "--nj", str(off.jobs), "--chunksize", str(off.chunksize)]
        _checked([(subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=side_env(off.venv, False)), log)])
    intrusive_s = time.perf_counter() - start
    splits = max(1, min(off.jobs, n_utts))
    procs = []
    env = side_env(off.venv, True)
    for job in range(1, splits + 1):
        log = out / f"dnsmos.{job}.log"
        fh = log.open("w")
        cmd = [str(off.python), str(off.folder / DNSMOS_SCRIPT), "--inf_scp", str(inf_scp), "--output_dir",
               str(out / "dnsmos"), "--device", "cpu", "--nsplits", str(splits), "--job", str(job),
               "--primary_model", str(off.models[0]), "--p808_model", str(off.models[1])]
        procs.append((subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env), log))
        fh.close()
    _checked(procs)
    return intrusive_s, time.perf_counter() - start - intrusive_s


def run_official(off: Official, m: Material, systems: list[str], out: Path) -> tuple[float, float, float]:
    """Every system, one after another; returns the wall seconds: all, intrusive script, DNSMOS processes."""
    start = time.perf_counter()
    intrusive = dnsmos = 0.0
    for system in systems:
        i, d = run_official_system(off, m.cache.parent / "reference.scp", m.cache.parent / f"{system}.scp",
                                   out / system, len(m.ids))
        intrusive, dnsmos = intrusive + i, dnsmos + d
    return time.perf_counter() - start, intrusive, dnsmos


def fresh_results(m: Material, dest: Path) -> Path:
    """A results folder holding the rendered inputs only (no scores, no reference-state cache)."""
    shutil.copytree(m.cache / "inputs", dest / "inputs")
    return dest


def run_ours(urgentbench: str, m: Material, systems: list[str], results: Path, jobs: int, env: dict[str, str],
             extra: list[str] | None = None, metrics: str = OUR_METRICS) -> float:
    """``urgentbench score`` once per system into ``results``; returns the wall seconds."""
    start = time.perf_counter()
    for system in systems:
        cmd = [urgentbench, "-q", "score", "--suite", m.suite_name, "--outputs", str(m.outputs[system]), "--name", system,
               "--metrics", metrics, "--jobs", str(jobs), "--results-dir", str(results), *m.limit_arg, *(extra or [])]
        done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def kernel_seconds(results: Path) -> tuple[float, float]:
    """Sum of urgentbench's per-row kernel seconds and of its runs' in-process seconds (start to finish)."""
    from datetime import datetime

    with sqlite3.connect(results / "results.sqlite") as db:
        kernel = db.execute("SELECT COALESCE(SUM(seconds), 0) FROM scores").fetchone()[0]
        runs = db.execute("SELECT started, finished FROM runs WHERE finished IS NOT NULL").fetchall()
    inproc = 0.0
    for started, finished in runs:
        try:
            inproc += (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
        except ValueError:
            pass
    return float(kernel), inproc


def sdr_float32_numpy2(m: Material, systems: list[str]) -> dict[str, float]:
    """The official SDR call on float32 samples under this (numpy 2) environment.

    ``compute_permutation=False`` raises in ``np.linalg.solve`` under numpy 2, so the same
    float32 solve goes through ``compute_permutation=True`` (one source: the same pairing).
    """
    import fast_bss_eval
    import numpy as np
    import soundfile as sf

    out = {}
    for system in systems:
        for uid in m.ids:
            ref, _ = sf.read(str(m.refs / f"{uid}.flac"), dtype="float32")
            inf, _ = sf.read(str(m.outputs[system] / f"{uid}.flac"), dtype="float32")
            sdr, _, _, _ = fast_bss_eval.bss_eval_sources(ref[None], inf[None], compute_permutation=True, clamp_db=50.0)
            out[f"{system}/{uid}"] = float(np.mean(sdr))
    return out


def warm_up(off: Official, m: Material, out: Path, urgentbench: str, jobs: int, env: dict[str, str]) -> None:
    """Untimed: both sides once on two utterances, so that one-off costs land in neither side's timings.

    One-off costs: librosa's numba compilation, cached on first use in a fresh venv; a cold page cache.
    """
    n = min(2, len(m.ids))
    ref_scp, inf_scp = out / "reference.scp", out / "noisy.scp"
    out.mkdir(parents=True, exist_ok=True)
    ref_scp.write_text("".join(f"{u} {m.refs / f'{u}.flac'}\n" for u in m.ids[:n]))
    inf_scp.write_text("".join(f"{u} {m.outputs['noisy'] / f'{u}.flac'}\n" for u in m.ids[:n]))
    print("warm-up (untimed) ...", flush=True)
    run_official_system(off, ref_scp, inf_scp, out / "official", n)
    run_ours(urgentbench, m, ["noisy"], fresh_results(m, out / "urgentbench"), jobs, env, ["--limit", str(n), *PROTOCOL_ARGS])


def bench_case(off: Official, m: Material, case: str, systems: list[str], out: Path, reps: int, urgentbench: str,
               jobs: int, env: dict[str, str]) -> dict:
    """One material and set of systems: ``reps`` interleaved official / urgentbench runs, then the comparison.

    The values are compared on the first repetition of each side, then the SDR spread is measured;
    returns the case's JSON figures.
    """
    label = "one system (one submission)" if case == "one" else f"{len(systems)} systems ({', '.join(systems)})"
    t_off, t_ours, overhead, off_parts = [], [], [], []
    for rep in range(reps):
        out_off, res = out / f"official-{rep}", out / f"urgentbench-{rep}"
        for folder in (out_off, res):
            if folder.exists():
                shutil.rmtree(folder)
        total, intrusive, dnsmos = run_official(off, m, systems, out_off)
        t_off.append(total)
        off_parts.append({"intrusive_s": intrusive, "dnsmos_s": dnsmos})
        wall = run_ours(urgentbench, m, systems, fresh_results(m, res), jobs, env, PROTOCOL_ARGS)
        t_ours.append(wall)
        kernel, inproc = kernel_seconds(res)
        per_worker = kernel / jobs
        overhead.append({"wall_s": wall, "kernel_s": kernel, "in_process_s": inproc, "overhead_s": wall - per_worker,
                         "overhead_pct_of_kernel": 100 * (wall - per_worker) / per_worker if per_worker else None})
        print(f"  {label}, rep {rep + 1}/{reps}: official {total:.1f} s (intrusive script {intrusive:.1f}, DNSMOS "
              f"{dnsmos:.1f}), urgentbench {wall:.1f} s (kernels {kernel:.1f} s on {jobs} workers; "
              f"load {os.getloadavg()[0]:.2f})", flush=True)

    official_vals: dict[str, dict[str, float]] = {}
    for system in systems:
        found = read_official([out / "official-0" / system / "intrusive", out / "official-0" / system / "dnsmos"],
                              prefix=f"{system}/")
        for metric, vals in found.items():
            official_vals.setdefault(metric, {}).update(vals)
    diffs = compare_all(official_vals, read_ours(out / "urgentbench-0", prefix_system=True))
    fig = ratios(t_off, t_ours)
    pcts = [o["overhead_pct_of_kernel"] for o in overhead if o["overhead_pct_of_kernel"] is not None]
    med = statistics.median(pcts) if pcts else math.nan
    print(f"  {label}: official min {fig['official_min_s']:.1f} s / median {fig['official_median_s']:.1f} s; "
          f"urgentbench min {fig['urgentbench_min_s']:.1f} s / median {fig['urgentbench_median_s']:.1f} s; "
          f"ratio {fig['ratio_min']:.2f}x (min), {fig['ratio_median']:.2f}x (median)")
    print(f"  urgentbench harness overhead, (wall - kernel/{jobs}) / (kernel/{jobs}): median {med:.1f} % "
          f"(in-process run time, without CLI start-up: {statistics.median(o['in_process_s'] for o in overhead):.0f} s "
          f"of {statistics.median(o['wall_s'] for o in overhead):.1f} s wall)")
    print_differences(f"values, official vs urgentbench ({sum(d.compared for d in diffs.values())} values):", diffs)
    return {
        "systems": systems, "official_s": t_off, "official_parts": off_parts, "urgentbench_s": t_ours, **fig,
        "urgentbench_overhead": overhead, "overhead_pct_median": med,
        "differences": {k: d.to_dict() for k, d in diffs.items()},
        "values_within_tolerance": all(d.within is not False for d in diffs.values()),
        "sdr_spread": sdr_spread(m, systems, official_vals.get("SDR", {}), diffs.get("SDR"), out / "urgentbench-default",
                                 urgentbench, jobs, env),
    }


def sdr_spread(m: Material, systems: list[str], official_sdr: Mapping[str, float], protocol: Difference | None,
               default_dir: Path, urgentbench: str, jobs: int, env: dict[str, str]) -> dict:
    """Untimed: the official float32 SDR (numpy 1.26) against urgentbench's three ways of computing it.

    Against ``--protocol urgent2025`` (the timed runs: float32, as the official script), against
    urgentbench's default (float64, an extra untimed run), and against the same float32 call under numpy 2.
    """
    if default_dir.exists():
        shutil.rmtree(default_dir)
    run_ours(urgentbench, m, systems, fresh_results(m, default_dir), jobs, env, [], metrics="sdr")
    spread = {
        "urgentbench_protocol_urgent2025": protocol.to_dict() if protocol else None,
        "urgentbench_default_float64": compare_values(
            "SDR", official_sdr, read_ours(default_dir, prefix_system=True).get("SDR", {})).to_dict(),
        "official_call_float32_numpy2": compare_values("SDR", official_sdr, sdr_float32_numpy2(m, systems)).to_dict(),
    }
    print("  SDR spread, official float32 (numpy 1.26) against:")
    for name, d in spread.items():
        if d and d["compared"]:
            print(f"    {name:34} max {d['max_abs']:.4f} dB, mean {d['mean_abs']:.4f} dB, "
                  f"{d['above_1e-3']} of {d['compared']} above 0.001 dB")
    return spread


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------
def machine() -> dict:
    """What the run was measured on."""
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def print_differences(title: str, diffs: Mapping[str, Difference]) -> None:
    """One table of per-metric differences."""
    print(f"  {title}")
    print(f"    {'metric':12} {'n':>4} {'max |diff|':>11} {'mean |diff|':>11}  {'tolerance':>9}  within  worst")
    for name, d in diffs.items():
        tol = f"{d.tolerance:.0e}" if d.tolerance is not None else "-"
        within = {None: "-", True: "yes", False: "NO"}[d.within]
        extra = ""
        if d.only_official or d.only_ours:
            extra = f"  one side missing: official only {d.only_official}, urgentbench only {d.only_ours}"
        print(f"    {name:12} {d.compared:4d} {d.max_abs:11.3g} {d.mean_abs:11.3g}  {tol:>9}  {within:6}  {d.worst}{extra}")


def main(argv: list[str] | None = None) -> int:
    """Run the cases asked for, print the comparison, write its JSON; 1 when a value is beyond its tolerance."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each side, interleaved (default 3)")
    parser.add_argument("--limit", type=int, help="only the first K demo utterances")
    parser.add_argument("--jobs", type=int, default=2, help="urgentbench --jobs and the official --nj / DNSMOS processes")
    parser.add_argument("--official-chunksize", type=int, default=1,
                        help="the intrusive script's --chunksize (default 1; see the docstring)")
    parser.add_argument("--rates", default="44100,16000", help="material: 44100 and/or 16000")
    parser.add_argument("--cases", default="one,multi", help="one (one submission) and/or multi (several systems)")
    parser.add_argument("--systems", default="noisy,wiener,rnnoise", help="systems of the multi-system case")
    parser.add_argument("--official-dir", type=Path, default=OFFICIAL_DIR)
    parser.add_argument("--side-venv", type=Path, help="the official scripts' venv (default ~/.cache/urgentbench/bench-official-venv)")
    parser.add_argument("--rebuild-venv", action="store_true")
    parser.add_argument("--workdir", type=Path, help="keep the material and every run's output here (default: a temporary folder)")
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the untimed warm-up run of both sides (numba caches, page cache)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "vs_official.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    rates = [int(r) for r in args.rates.split(",")]
    cases = args.cases.split(",")
    multi_systems = args.systems.split(",")
    if "noisy" not in multi_systems:
        multi_systems.insert(0, "noisy")
    for script in (INTRUSIVE_SCRIPT, DNSMOS_SCRIPT):
        if not (args.official_dir / script).is_file():
            raise SystemExit(f"{args.official_dir / script}: official script not found (--official-dir)")

    venv = args.side_venv or default_side_venv()
    python = ensure_side_venv(venv, args.rebuild_venv)
    off = Official(python, venv, args.official_dir, args.jobs, args.official_chunksize, dnsmos_model_paths())
    urgentbench = str(Path(sys.executable).parent / "urgentbench")
    started = machine()
    print(f"machine: {started}")
    busy = started["load_average"][0] > 0.5
    if busy:
        print(f"WARNING: the machine is busy (load average {started['load_average'][0]:.2f}): timings are "
              "preliminary, re-measure on an idle machine", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-official-") as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["URGENTBENCH_SUITES_PATH"] = os.pathsep.join(p for p in (str(root / "suites"), env.get("URGENTBENCH_SUITES_PATH")) if p)
        env["PYTHONWARNINGS"] = "ignore"  # pysptk's pkg_resources warning in every process
        print("preparing material (untimed) ...", flush=True)
        materials = prepare(root, args.limit, rates, multi_systems if "multi" in cases else ["noisy"], urgentbench, env)
        if not args.no_warmup:
            warm_up(off, materials[0], root / "runs" / "warmup", urgentbench, args.jobs, env)
        report: dict = {
            "issue": 19, "machine_start": started, "preliminary_busy_machine": busy, "settings": {
                "reps": args.reps, "limit": args.limit, "jobs": args.jobs, "official_chunksize": args.official_chunksize,
                "metrics": OUR_METRICS, "systems_multi": multi_systems,
                "official_dir": str(args.official_dir), "side_env": side_versions(python, venv),
                "torchaudio": "stand-in module (import only; not on the ONNX path)",
            },
            "materials": {},
        }
        ok = True
        summary = []
        for m in materials:
            print(f"\n=== {m.label}: suite {m.suite_key}, {len(m.ids)} utterances")
            mrep: dict = {"suite": m.suite_key, "utterances": len(m.ids), "cases": {}}
            for case in cases:
                systems = ["noisy"] if case == "one" else multi_systems
                crep = bench_case(off, m, case, systems, root / "runs" / m.suite_name / case, args.reps, urgentbench,
                                  args.jobs, env)
                ok = ok and crep["values_within_tolerance"]
                mrep["cases"][case] = crep
                summary.append((m.label, crep))
            report["materials"][m.label] = mrep
        print("\nsummary (wall seconds; ratio = official / urgentbench)")
        print(f"  {'material':9} {'systems':>7} {'official min/med':>17} {'urgentbench min/med':>20} {'ratio min':>9} "
              f"{'ratio med':>9} {'overhead':>8}")
        for label, c in summary:
            print(f"  {label:9} {len(c['systems']):7d} {c['official_min_s']:8.1f}/{c['official_median_s']:<8.1f} "
                  f"{c['urgentbench_min_s']:11.1f}/{c['urgentbench_median_s']:<8.1f} {c['ratio_min']:8.2f}x "
                  f"{c['ratio_median']:8.2f}x {c['overhead_pct_median']:7.1f}%")
        report["machine_end"] = machine()
        report["values_within_tolerance"] = ok
    print(f"\nmachine at the end: {report['machine_end']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"figures written to {args.json}")
    if not ok:
        print("some metric differs from the official value beyond its tolerance (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
