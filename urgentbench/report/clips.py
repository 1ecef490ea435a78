"""The HTML leaderboard's listening section: a few utterances as Ogg previews and spectrograms.

Files are written next to the page, ``audio/<utterance>/<clip>.ogg`` and ``.png``. Inputs
come from the results folder's cache (:func:`urgentbench.layout.input_audio`, rendered when
the cache is missing), systems' outputs from its enhanced folders (or, for a scored
directory of outputs, from that directory).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from urgentbench.audio import read_audio
from urgentbench.layout import enhanced_dir, find_output, input_audio
from urgentbench.manifest import Utterance
from urgentbench.report.ogg import fixed_ogg_serial
from urgentbench.report.spectrogram import peak_db, spectrogram_png
from urgentbench.report.summary import SystemSummary
from urgentbench.suites import Suite

logger = logging.getLogger(__name__)

AUDIO_DIR = "audio"
_MARKER = ".generated-by-urgentbench"


@dataclass
class Clip:
    """One playable signal of an utterance (unprocessed, reference or a system's output)."""

    label: str
    kind: str
    audio: str | None = None
    spectrogram: str | None = None
    note: str = ""


@dataclass
class AudioItem:
    """An utterance of the audio section."""

    utt_id: str
    condition: str
    text: str
    clips: list[Clip] = field(default_factory=list)


def pick_utterances(utterances: list[Utterance], n: int) -> list[Utterance]:
    """Up to ``n`` utterances, one per distinct ``condition`` tag first (in manifest order)."""
    chosen, seen = [], set()
    for utt in utterances:
        cond = utt.tags.get("condition", "")
        if cond not in seen:
            chosen.append(utt)
            seen.add(cond)
        if len(chosen) >= n:
            return chosen
    for utt in utterances:
        if len(chosen) >= n:
            break
        if utt not in chosen:
            chosen.append(utt)
    return chosen


def _slug(text: str) -> str:
    """A safe file name for any text (a hash keeps distinct names distinct)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:40] or "x"
    return f"{base}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


def _system_audio(results_dir: Path, suite: Suite, summary: SystemSummary, utt_id: str) -> Path | None:
    path = enhanced_dir(results_dir, suite.key, summary.system, summary.config_hash) / f"{utt_id}.flac"
    if path.exists():
        return path
    outputs = (summary.metadata or {}).get("outputs")
    if outputs:
        for folder in (Path(outputs), Path(outputs) / "enhanced"):
            if folder.is_dir():
                found = find_output(folder, utt_id)
                if found is not None:
                    return found
    return None


def prepare_audio(
    suite: Suite,
    systems: list[str],
    summaries: dict[str, SystemSummary],
    results_dir: str | Path,
    out_dir: str | Path,
    n_utterances: int = 3,
) -> list[AudioItem]:
    """Write Ogg previews and spectrogram PNGs of a few utterances into ``out_dir/audio``.

    Args:
        suite: The suite.
        systems: System names as the leaderboard shows them, in rank order (not ranked last).
        summaries: Shown name -> system summary (for where its outputs are).
        results_dir: The results folder (cached inputs, enhanced audio).
        out_dir: The page's folder.
        n_utterances: How many utterances to include.

    Returns:
        The utterances with their clips; a clip whose audio cannot be found or read has
        no files and a note saying why.
    """
    results_dir = Path(results_dir).resolve()
    audio_root = Path(out_dir) / AUDIO_DIR
    if audio_root.exists() and (audio_root / _MARKER).exists():
        shutil.rmtree(audio_root)
    audio_root.mkdir(parents=True, exist_ok=True)
    (audio_root / _MARKER).write_text("files here are rewritten by `urgentbench leaderboard --format html`\n")
    items = []
    for utt in pick_utterances(suite.utterances(), n_utterances):
        item = AudioItem(utt.id, utt.tags.get("condition", ""), utt.text or "")
        signals: list[tuple[Clip, np.ndarray | None, int]] = []
        try:
            noisy, reference = input_audio(utt, suite.folder, results_dir, suite.key)
        except Exception as exc:  # a corpus not prepared, a bad manifest entry: the page still renders
            logger.warning("%s: no input audio for the page: %s", utt.id, exc)
            noisy, reference = None, None
        signals.append((Clip("unprocessed", "input"), noisy, utt.sample_rate))
        if utt.has_reference:
            signals.append((Clip("reference", "reference"), reference, utt.sample_rate))
        for system in systems:
            summary = summaries.get(system)
            path = None if summary is None else _system_audio(results_dir, suite, summary, utt.id)
            wave, rate = None, utt.sample_rate
            if path is not None:
                try:
                    wave, rate = read_audio(path)
                except Exception as exc:
                    logger.warning("%s: cannot read %s: %s", system, path, exc)
            signals.append((Clip(system, "system"), wave, rate))
        top = max((peak_db(w, r) for _, w, r in signals if w is not None), default=0.0)
        folder = audio_root / _slug(utt.id)
        folder.mkdir(parents=True, exist_ok=True)
        for clip, wave, rate in signals:
            if wave is None:
                clip.note = "audio not available"
            else:
                name = _slug(f"{clip.kind}:{clip.label}")
                ogg = io.BytesIO()
                sf.write(ogg, np.clip(wave, -1.0, 1.0), rate, format="OGG", subtype="VORBIS")
                (folder / f"{name}.ogg").write_bytes(fixed_ogg_serial(ogg.getvalue()))
                (folder / f"{name}.png").write_bytes(spectrogram_png(wave, rate, top_db=top))
                clip.audio = f"{AUDIO_DIR}/{folder.name}/{name}.ogg"
                clip.spectrogram = f"{AUDIO_DIR}/{folder.name}/{name}.png"
            item.clips.append(clip)
        items.append(item)
    return items
