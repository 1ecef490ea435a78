"""The ``urgent`` export format: the files URGENT's ``evaluation_metrics/`` scripts write.

urgentbench's numbers can so be compared with the official scripts' file by file. One
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
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from urgentbench.pipeline.specs import MetricSpec
from urgentbench.report.export_rows import ExportError, SystemResults
from urgentbench.suites import Suite

logger = logging.getLogger(__name__)

#: Protocols whose ``calculate_wer.py`` writes ``{}`` for an utterance without a reference transcript.
EMPTY_WER_LINES_PROTOCOLS = ("urgent2024", "urgent2025")
_OPS = ("delete", "insert", "replace", "equal")


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
