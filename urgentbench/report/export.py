"""Export stored results in the formats people compare against (``urgentbench export``).

Formats:

- ``urgent``: the files URGENT's ``evaluation_metrics/`` scripts write, so that
  urgentbench's numbers can be compared with the official scripts' file by file. One
  folder per system, laid out as the URGENT 2026 track-1 ``eval_all.sh`` lays out its
  ``${output_dir}``: ``<system>/score/<group>/<METRIC>.scp`` and ``<group>/RESULTS.txt``
  (groups ``se``, ``dnsmos``, ``nisqa``, ``utmos``, ``speechbert_score``, ``lps``,
  ``spk_sim``, ``cer``; see :data:`OFFICIAL_OUTPUTS`). Per-utterance lines are
  ``f"{uid} {value}"`` (Python's shortest float text; a value that could not be computed
  is ``nan``, as the intrusive script writes a failed PESQ), sorted by utterance id as
  the README's ``LC_ALL=C sort`` makes ``inf.scp``. ``RESULTS.txt`` has one
  ``f"{METRIC}: {mean:.4f}"`` line per metric of the group, in the script's ``METRICS``
  order, the mean over the utterances that have a value (the scripts' ``np.nanmean``).
  ``WER.scp``/``CER.scp`` hold ``calculate_wer.py``'s JSON per utterance (normalised
  hypothesis and reference, and the ``delete``/``insert``/``replace``/``equal`` counts of
  the Levenshtein alignment, ``Levenshtein.opcodes`` as the script uses it, here through
  rapidfuzz) and its ``RESULTS.txt`` the corpus-level rate, (replace + delete + insert) /
  (replace + delete + equal), followed by the four totals, as the script computes it. An
  utterance whose transcription failed is ``{}`` (the script leaves such lines out of
  the totals); utterances whose reference transcript is missing or ``<not-available>``
  are left out, as URGENT 2026's ``calculate_wer.py`` leaves them out, or written as ``{}``
  under the ``urgent2024``/``urgent2025`` protocols, as URGENT 2025's writes them. A
  metric with no stored row for a system writes no file. Outputs the official scripts do
  not write (``si_sdr``, DNSMOS's SIG/BAK/P.808, NISQA's dimensions, ``plcmos``) are left out.
- ``csv`` and ``parquet`` (through pandas; parquet needs pyarrow): one row per
  utterance x system x metric output, for every utterance the metric applies to, with
  the provenance of the number: suite, suite version and manifest sha256; system,
  display name and config hash; metric, metric version, options hash, output and how it
  aggregates (``mean``, or ``corpus`` for WER/CER: total edits over total reference
  length, whose counts are in ``details``); the run that wrote the row (id, start, the
  urgentbench version and git commit, protocol, package versions, the metric's options
  and the checkpoint digests recorded for the metric and the system); the utterance's
  sample rate and tags (``tag_<name>``). A value that is missing stays missing (NaN in
  ``value``, an empty CSV cell), never 0: ``status`` says why (``failed``, with
  ``failure`` = ``participant`` or ``metric`` and the reason in ``error``; ``not
  scored``; ``no value`` when the metric returned none for that output).

Values are the stored rows of the suite's current version under the same metric keys
(metric version, options and checkpoints) the leaderboard reads, and the means are the
leaderboard's (:func:`urgentbench.report.summary.summarize`, without the ``--missing
worst`` fill).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from urgentbench.report.escape import one_line
from urgentbench.report.summary import SystemSummary, summarize, unique_names
from urgentbench.runner import MetricSpec, ProducerSpec, score_key
from urgentbench.store import ResultStore, ScoreRow
from urgentbench.suites import Suite

logger = logging.getLogger(__name__)

#: ``urgentbench export --format`` values.
FORMATS = ("urgent", "csv", "parquet")
#: Protocols whose ``calculate_wer.py`` writes ``{}`` for an utterance without a reference transcript.
EMPTY_WER_LINES_PROTOCOLS = ("urgent2024", "urgent2025")
_ASR_OUTPUTS = ("wer", "cer")
_OPS = ("delete", "insert", "replace", "equal")


class ExportError(ValueError):
    """Results that cannot be exported as asked (nothing stored, unknown system, ...); one line."""


@dataclass(frozen=True)
class OfficialOutput:
    """Where one urgentbench output goes in the official scripts' files.

    Args:
        output: urgentbench output name (``"pesq"``).
        name: The official metric name, the ``.scp`` file's stem (``"PESQ"``).
        group: Folder under ``score/`` (``eval_all.sh``'s ``--output_dir``).
        script: The official script that writes it.
    """

    output: str
    name: str
    group: str
    script: str


#: urgentbench outputs the official scripts write, in the order of each script's ``METRICS``
#: (URGENT 2025 ``calculate_intrusive_se_metrics.py``: PESQ, ESTOI, SDR, LSD, MCD; 2026 keeps PESQ, ESTOI).
OFFICIAL_OUTPUTS: tuple[OfficialOutput, ...] = (
    OfficialOutput("pesq", "PESQ", "se", "calculate_intrusive_se_metrics.py"),
    OfficialOutput("estoi", "ESTOI", "se", "calculate_intrusive_se_metrics.py"),
    OfficialOutput("sdr", "SDR", "se", "calculate_intrusive_se_metrics.py"),
    OfficialOutput("lsd", "LSD", "se", "calculate_intrusive_se_metrics.py"),
    OfficialOutput("mcd", "MCD", "se", "calculate_intrusive_se_metrics.py"),
    OfficialOutput("dnsmos_ovrl", "DNSMOS_OVRL", "dnsmos", "calculate_nonintrusive_dnsmos.py"),
    OfficialOutput("nisqa_mos", "NISQA_MOS", "nisqa", "calculate_nonintrusive_nisqa.py"),
    OfficialOutput("utmos", "UTMOS", "utmos", "calculate_nonintrusive_utmos.py"),
    OfficialOutput("speechbertscore", "SpeechBERTScore", "speechbert_score", "calculate_speechbert_score.py"),
    OfficialOutput("lps", "PhonemeSimilarity", "lps", "calculate_phoneme_similarity.py"),
    OfficialOutput("spk_sim", "SpeakerSimilarity", "spk_sim", "calculate_speaker_similarity.py"),
    OfficialOutput("wer", "WER", "cer", "calculate_wer.py"),
    OfficialOutput("cer", "CER", "cer", "calculate_wer.py"),
)


@dataclass
class SystemResults:
    """The stored rows of one system configuration on a suite, per metric.

    Attributes:
        summary: The system's summary (its means, as the leaderboard computes them).
        name: The name a leaderboard shows for it.
        folder: Its folder name in the ``urgent`` format (file-system safe, unique).
        rows: Metric name -> utterance id -> stored row (applicable utterances only).
        runs: Metric name -> utterance id -> id of the run that wrote the row.
    """

    summary: SystemSummary
    name: str
    folder: str
    rows: dict[str, dict[str, ScoreRow]] = field(default_factory=dict)
    runs: dict[str, dict[str, int]] = field(default_factory=dict)


def select_systems(store: ResultStore, suite: Suite, wanted: Iterable[str] | None = None) -> list[str] | None:
    """Stored system names matching ``wanted`` (a system or display name), None for all.

    Raises:
        ExportError: When nothing is stored for the suite version, or for a name asked for
            (the message lists the stored systems).
    """
    stored = store.systems(suite.name, suite.version)
    if not stored:
        raise ExportError(
            f"{store.path}: no results stored for {suite.name} v{suite.version}; "
            f"run `urgentbench run --suite {suite.name} ...` first"
        )
    wanted = [w for w in (wanted or []) if w]
    if not wanted:
        return None
    found, unknown = [], []
    for name in wanted:
        match = [info["system"] for info in stored if name in (info["system"], info["display_name"])]
        found += match
        if not match:
            unknown.append(name)
    if unknown:
        names = ", ".join(sorted({one_line(info["system"]) for info in stored}))
        raise ExportError(
            f"--systems: nothing stored for {', '.join(repr(n) for n in unknown)} on {suite.name} "
            f"v{suite.version} in {store.path}; stored systems: {names}"
        )
    return list(dict.fromkeys(found))


def collect(
    store: ResultStore, suite: Suite, metrics: list[MetricSpec], systems: Iterable[str] | None = None
) -> list[SystemResults]:
    """Every stored row of the chosen systems (default: all) for ``metrics`` on ``suite``.

    Raises:
        ExportError: When nothing is stored, or a system asked for is not.
    """
    chosen = select_systems(store, suite, systems)
    utterances = suite.utterances()
    summaries = summarize(store, suite, metrics, systems=chosen, utterances=utterances)
    names = unique_names(summaries)
    folders = _folder_names(summaries)
    out = []
    for s in summaries:
        result = SystemResults(summary=s, name=names[id(s)], folder=folders[id(s)])
        producer = ProducerSpec(name=s.system, config_hash=s.config_hash)
        for metric in metrics:
            ids = {u.id for u in utterances if metric.applies_to(u)}
            key = score_key(suite, producer, metric)
            result.rows[metric.name] = {r.utt_id: r for r in store.rows(key) if r.utt_id in ids}
            result.runs[metric.name] = store.row_runs(key)
        out.append(result)
    return out


def export(
    store: ResultStore,
    suite: Suite,
    metrics: list[MetricSpec],
    fmt: str,
    output_dir: str | os.PathLike,
    systems: Iterable[str] | None = None,
    protocol: str | None = None,
) -> list[Path]:
    """Write the stored results of ``suite`` in format ``fmt`` under ``output_dir``.

    ``urgent`` writes ``<output_dir>/<system>/score/<group>/...`` (module docstring),
    ``csv`` ``<output_dir>/results.csv`` and ``parquet`` ``<output_dir>/results.parquet``.

    Args:
        store: The results store.
        suite: The suite (its current version's rows).
        metrics: The metrics to export (as the leaderboard resolves them).
        fmt: One of :data:`FORMATS`.
        output_dir: Destination folder (created).
        systems: Only these systems (stored or display names); default all.
        protocol: The protocol the metrics follow (``urgent2025`` changes how utterances
            without a transcript appear in ``WER.scp``).

    Returns:
        The files written.

    Raises:
        ExportError: For an unknown format, nothing stored, an unknown system, or WER rows
            whose edit operations cannot be recovered (``urgent``).
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    results = collect(store, suite, metrics, systems)
    output_dir = Path(output_dir)
    if fmt == "urgent":
        return write_urgent(results, suite, metrics, output_dir, protocol=protocol)
    frame = results_frame(results, suite, metrics, store.runs())
    return [write_table(frame, output_dir / f"results.{fmt}", fmt)]


# ---------------------------------------------------------------------------- urgent format
def write_urgent(
    results: list[SystemResults],
    suite: Suite,
    metrics: list[MetricSpec],
    output_dir: Path,
    protocol: str | None = None,
) -> list[Path]:
    """Write each system's results as URGENT's ``evaluation_metrics`` scripts write them.

    Returns:
        The files written.

    Raises:
        ExportError: When a stored WER/CER row's edit operations cannot be recovered.
    """
    by_output = {o.name: m for m in metrics for o in m.cls.outputs}
    official = [o for o in OFFICIAL_OUTPUTS if o.output in by_output]
    left_out = [name for name in by_output if name not in {o.output for o in OFFICIAL_OUTPUTS}]
    if left_out:
        logger.info("not written in the urgent format (no official script writes them): %s", ", ".join(left_out))
    if not official:
        raise ExportError(
            f"none of the exported metrics ({', '.join(m.name for m in metrics)}) has an official URGENT "
            f"output file; the official outputs are {', '.join(o.output for o in OFFICIAL_OUTPUTS)}"
        )
    utterances = {u.id: u for u in suite.utterances()}
    empty_wer_lines = protocol in EMPTY_WER_LINES_PROTOCOLS
    written = []
    for system in results:
        root = output_dir / system.folder / "score"
        # outputs of metrics with no stored row for this system are not written (no empty files)
        present = [o for o in official if system.rows.get(by_output[o.output].name)]
        if not present:
            logger.warning("%s: nothing stored for %s; no files written", system.name,
                           ", ".join(sorted({by_output[o.output].name for o in official})))
        for group in dict.fromkeys(o.group for o in present):
            entries = [o for o in present if o.group == group]
            folder = root / group
            if group == "cer":
                metric = by_output[entries[0].output]
                files = _asr_files(system, metric, entries, utterances, empty_wer_lines)
            else:
                files = {}
                for entry in entries:
                    metric = by_output[entry.output]
                    files[f"{entry.name}.scp"] = _score_lines(system, metric, entry.output)
                files["RESULTS.txt"] = "".join(
                    f"{entry.name}: {_mean_text(system.summary.values.get(entry.output))}\n" for entry in entries
                )
            for name, text in files.items():
                written.append(_write_text(folder / name, text))
        _log_gaps(system, metrics)
    return written


def _score_lines(system: SystemResults, metric: MetricSpec, output: str) -> str:
    """``f"{uid} {value}"`` lines of one output, ``nan`` where no value, sorted by utterance id."""
    lines = []
    for utt_id, row in sorted(system.rows.get(metric.name, {}).items()):
        value = None if row.result is None else row.result.get(output)
        lines.append(f"{utt_id} {_value_text(value)}\n")
    return "".join(lines)


def _value_text(value: Any) -> str:
    """A per-utterance value as the scripts' f-string prints a Python float (``nan`` for none)."""
    if value is None:
        return "nan"
    return f"{float(value)}"


def _mean_text(value: float | None) -> str:
    """A ``RESULTS.txt`` number: ``f"{mean:.4f}"`` (``nan`` when no utterance has a value, as np.nanmean gives)."""
    return f"{float('nan') if value is None else float(value):.4f}"


def _asr_files(
    system: SystemResults,
    metric: MetricSpec,
    entries: list[OfficialOutput],
    utterances: dict[str, Any],
    empty_lines: bool,
) -> dict[str, str]:
    """``WER.scp``, ``CER.scp`` and ``RESULTS.txt`` as ``calculate_wer.py`` writes them."""
    from urgentbench.metrics.asr_language import NOT_AVAILABLE

    rows = system.rows.get(metric.name, {})
    instance = metric.build()
    unavailable = {u for u, utt in utterances.items() if not utt.text or str(utt.text).strip() == NOT_AVAILABLE}
    ids = sorted((set(rows) | unavailable) if empty_lines else (set(rows) - unavailable))
    lines: dict[str, list[str]] = {e.output: [] for e in entries}
    totals = {e.output: dict.fromkeys(_OPS, 0) for e in entries}
    for utt_id in ids:
        row = rows.get(utt_id)
        if row is None or row.result is None:  # no reference transcript, or the transcription failed
            for e in entries:
                lines[e.output].append(f"{utt_id} {{}}\n")
            continue
        details = asr_operations(instance, utterances[utt_id], row.result, system.name)
        for e in entries:
            lines[e.output].append(f"{utt_id} {json.dumps(details[e.output])}\n")
            for op in _OPS:
                totals[e.output][op] += details[e.output][op]
    files = {f"{e.name}.scp": "".join(lines[e.output]) for e in entries}
    results = []
    for e in entries:
        results.append(f"{e.name}: {_mean_text(system.summary.values.get(e.output))}\n")
        results += [f"    {op}: {totals[e.output][op]}\n" for op in _OPS]
    files["RESULTS.txt"] = "".join(results)
    return files


def edit_operations(reference: list[Any], hypothesis: list[Any]) -> dict[str, int]:
    """``delete``/``insert``/``replace``/``equal`` counts of the Levenshtein alignment, as ``calculate_wer.py`` counts them.

    The alignment is ``Levenshtein.opcodes``' (rapidfuzz's implementation, which the
    ``Levenshtein`` package wraps); an insertion counts hypothesis tokens, every other
    operation reference tokens.
    """
    from rapidfuzz.distance import Levenshtein

    counts = dict.fromkeys(_OPS, 0)
    for op, ref_start, ref_end, hyp_start, hyp_end in Levenshtein.opcodes(reference, hypothesis):
        counts[op] += (hyp_end - hyp_start) if op == "insert" else (ref_end - ref_start)
    return counts


def asr_operations(metric: Any, utterance: Any, result: dict[str, Any], system: str = "") -> dict[str, dict[str, Any]]:
    """``calculate_wer.py``'s per-utterance WER and CER dicts from a stored WER row.

    The stored row holds the raw hypothesis and the edit and reference counts; the
    normalised texts are made again as the metric makes them (the English normaliser for
    an utterance without a language; with one, URGENT 2025's: English for English WER,
    basic for CER and other languages), the operations are counted on them, and the
    result is checked against the stored counts.

    Returns:
        ``{"wer": {...}, "cer": {...}}``, each ``hyp_text``, ``ref_text`` (strings for WER,
        lists of characters for CER), ``delete``, ``insert``, ``replace``, ``equal``.

    Raises:
        ExportError: When the row has no hypothesis, or the recomputed counts differ from
            the stored ones (the normaliser changed since the row was scored).
    """
    where = f"{system + ' ' if system else ''}{utterance.id}"
    if "hypothesis" not in result or not utterance.text:
        raise ExportError(f"{where}: the stored WER row has no transcript to align; score it again")
    language = getattr(utterance, "language", None)
    pair = metric.normalise_pair(str(utterance.text), str(result["hypothesis"]), language)
    ref_wer, hyp_wer = pair.wer_reference, pair.wer_hypothesis
    ref_chars, hyp_chars = list(pair.cer_reference), list(pair.cer_hypothesis)
    out = {
        "wer": {"hyp_text": hyp_wer, "ref_text": ref_wer, **edit_operations(ref_wer.split(), hyp_wer.split())},
        "cer": {"hyp_text": hyp_chars, "ref_text": ref_chars, **edit_operations(ref_chars, hyp_chars)},
    }
    for output, edits_key, length_key in (("wer", "wer_edits", "wer_ref_words"), ("cer", "cer_edits", "cer_ref_chars")):
        ops = out[output]
        edits, length = ops["replace"] + ops["delete"] + ops["insert"], ops["replace"] + ops["delete"] + ops["equal"]
        if (result.get(edits_key), result.get(length_key)) != (edits, length):
            raise ExportError(
                f"{where}: the stored {output.upper()} counts ({result.get(edits_key)} edits, {result.get(length_key)} "
                f"reference units) do not follow from the stored transcript with this normaliser ({edits}, {length}); "
                f"score it again to export the urgent format"
            )
    return out


def _log_gaps(system: SystemResults, metrics: list[MetricSpec]) -> None:
    """Warn about failures (written as ``nan``/``{}``) and unscored utterances (left out)."""
    s = system.summary
    for metric in metrics:
        failed = s.failures.get(metric.name, 0)
        unscored = len(s.unscored_ids.get(metric.name, ()))
        if failed:
            logger.warning("%s: %d failed utterance(s) of %s exported as missing values (e.g. %s)",
                           system.name, failed, metric.name, s.failure_examples.get(metric.name, ""))
        if unscored:
            logger.warning("%s: %d utterance(s) not scored with %s, left out", system.name, unscored, metric.name)


# ---------------------------------------------------------------------------- long table
#: Leading columns of :func:`results_frame` (``tag_<name>`` columns follow).
COLUMNS = (
    "suite", "suite_version", "manifest_sha256",
    "system", "display_name", "config_hash",
    "utt_id", "sample_rate",
    "metric", "metric_version", "options_hash", "output", "aggregate", "higher_is_better",
    "value", "status", "failure", "error", "seconds", "details",
    "run_id", "run_started", "urgentbench_version", "git_commit", "protocol", "packages",
    "metric_options", "metric_checkpoints", "system_checkpoints",
)
OK, FAILED, NOT_SCORED, NO_VALUE = "ok", "failed", "not scored", "no value"


def results_frame(
    results: list[SystemResults], suite: Suite, metrics: list[MetricSpec], runs: list[dict[str, Any]] | None = None
) -> Any:
    """A pandas DataFrame with one row per utterance x system x metric output (module docstring).

    Args:
        results: From :func:`collect`.
        suite: The suite.
        metrics: The exported metrics.
        runs: The store's run records (:meth:`urgentbench.store.ResultStore.runs`) for the
            provenance columns; without them those columns are empty.
    """
    import pandas as pd

    run_info = {r["run_id"]: r for r in runs or []}
    utterances = suite.utterances()
    tag_names = sorted({k for u in utterances for k in u.tags})
    records = []
    for system in results:
        s = system.summary
        for metric in metrics:
            cls = metric.cls
            rows = system.rows.get(metric.name, {})
            run_ids = system.runs.get(metric.name, {})
            for utt in utterances:
                if not metric.applies_to(utt):
                    continue
                row = rows.get(utt.id)
                run = run_info.get(run_ids.get(utt.id)) if row is not None else None
                provenance = _run_columns(run, s.system, s.config_hash, metric)
                details = None
                if row is not None and row.result is not None:
                    extra = {k: v for k, v in row.result.items() if k not in {o.name for o in cls.outputs}}
                    details = _json(extra) if extra else None
                for output in cls.outputs:
                    value = None if row is None or row.result is None else row.result.get(output.name)
                    if row is None:
                        status = NOT_SCORED
                    elif row.error is not None:
                        status = FAILED
                    elif value is None or (isinstance(value, float) and math.isnan(value)):
                        status = NO_VALUE
                    else:
                        status = OK
                    record = {
                        "suite": suite.name,
                        "suite_version": suite.version,
                        "manifest_sha256": suite.manifest_sha256,
                        "system": s.system,
                        "display_name": s.display_name,
                        "config_hash": s.config_hash,
                        "utt_id": utt.id,
                        "sample_rate": utt.sample_rate,
                        "metric": metric.name,
                        "metric_version": str(cls.version),
                        "options_hash": metric.options_hash,
                        "output": output.name,
                        "aggregate": output.aggregate,
                        "higher_is_better": output.higher_is_better,
                        "value": float("nan") if status != OK else float(value),
                        "status": status,
                        "failure": None if row is None else row.failure,
                        "error": None if row is None else row.error,
                        "seconds": None if row is None else float(row.seconds),
                        "details": details,
                        **provenance,
                    }
                    record.update({f"tag_{k}": utt.tags.get(k) for k in tag_names})
                    records.append(record)
    columns = list(COLUMNS) + [f"tag_{k}" for k in tag_names]
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame["value"] = frame["value"].astype("float64")
    frame["seconds"] = frame["seconds"].astype("float64")
    frame["sample_rate"] = frame["sample_rate"].astype("Int64")
    frame["run_id"] = frame["run_id"].astype("Int64")
    return frame


def _run_columns(run: dict[str, Any] | None, system: str, config_hash: str, metric: MetricSpec) -> dict[str, Any]:
    """Provenance columns from the run that wrote a row (all None without one)."""
    empty = dict.fromkeys(
        ("run_id", "run_started", "urgentbench_version", "git_commit", "protocol", "packages",
         "metric_options", "metric_checkpoints", "system_checkpoints")
    )
    if run is None:
        return empty
    prov = run.get("provenance") or {}
    metric_entry = next(
        (m for m in prov.get("metrics", []) if m.get("name") == metric.name and m.get("options_hash") == metric.options_hash),
        None,
    ) or next((m for m in prov.get("metrics", []) if m.get("name") == metric.name), None)
    system_entry = next(
        (p for p in prov.get("systems", []) if p.get("name") == system and p.get("config_hash") == config_hash), None
    )
    packages = {k: v for k, v in (prov.get("packages") or {}).items() if v is not None}
    protocol = prov.get("protocol")
    system_digests = _digests(system_entry) if system_entry else {}
    return {
        **empty,
        "run_id": run.get("run_id"),
        "run_started": run.get("started"),
        "urgentbench_version": prov.get("urgentbench"),
        "git_commit": prov.get("git_commit"),
        "protocol": protocol.get("name") if isinstance(protocol, dict) else protocol,
        "packages": _json(packages) if packages else None,
        "metric_options": _json(metric_entry["options"]) if metric_entry and "options" in metric_entry else None,
        "metric_checkpoints": _json(metric_entry["models"]) if metric_entry and metric_entry.get("models") else None,
        "system_checkpoints": _json(system_digests) if system_digests else None,
    }


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _digests(obj: Any, path: str = "") -> dict[str, str]:
    """Every sha256 recorded in a provenance entry: dotted key path -> digest."""
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(value, str) and _SHA256.match(value):
                out[sub] = value
            else:
                out.update(_digests(value, sub))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out.update(_digests(value, f"{path}[{i}]"))
    return out


def write_table(frame: Any, path: Path, fmt: str) -> Path:
    """Write the long table as ``csv`` or ``parquet`` (atomically: a temporary file, then a rename).

    Raises:
        ExportError: For parquet without pyarrow (with the install command).
    """
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ExportError(
                "--format parquet needs pyarrow: pip install 'urgentbench[export]' (or pip install pyarrow)"
            ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if fmt == "csv":
            frame.to_csv(tmp, index=False)
        elif fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            raise ExportError(f"unknown table format {fmt!r}; use csv or parquet")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# ---------------------------------------------------------------------------- helpers
def _folder_names(summaries: list[SystemSummary]) -> dict[int, str]:
    """``id(summary)`` -> a file-system-safe, unique folder name (the display name; ``-<config hash>`` when shared)."""
    safe = {id(s): _safe_name(s.display_name or s.system) for s in summaries}
    counts: dict[str, int] = {}
    for name in safe.values():
        counts[name] = counts.get(name, 0) + 1
    return {id(s): safe[id(s)] if counts[safe[id(s)]] == 1 else f"{safe[id(s)]}-{s.config_hash}" for s in summaries}


def _safe_name(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9._+-]`` replaced by ``_`` (never empty, ``.`` or ``..``)."""
    out = re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip(".")
    return out or "system"


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _write_text(path: Path, text: str) -> Path:
    """Write ``text`` atomically (a temporary file in the same folder, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
