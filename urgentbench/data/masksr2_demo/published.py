"""The page's outputs as scoreable directories: ``<root>/.urgentbench/published/<condition>/<system>/<utt id>.<ext>``.

Outputs are hard-linked (copied when the file system refuses links), byte-identical to
the page's files, except the documented quirk
(:data:`~urgentbench.data.masksr2_demo.recipe.KNOWN_PADDED_OUTPUTS`): a padded output is
trimmed to its input's length **explicitly**, and the trim is recorded in the ``quirks``
of the published system's metadata; the scorer itself never trims.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import soundfile as sf

from urgentbench.data import corpus_root
from urgentbench.data.base import CorpusError
from urgentbench.data.masksr2_demo.pairing import ConditionPlan, plan_all
from urgentbench.data.masksr2_demo.recipe import (
    CITATION,
    CORPUS_NAME,
    KNOWN_PADDED_OUTPUTS,
    OMITTED_CONDITIONS,
    PADDING_NOTE,
    PUBLISHED_DIR,
    PUBLISHED_INDEX,
    REPOSITORY,
    condition_name,
    inventory_sha256,
)

logger = logging.getLogger(__name__)


def _place(src: Path, dest: Path) -> str:
    """Hard-link ``src`` to ``dest``, copying when linking is impossible; returns the mode used."""
    try:
        os.link(src, dest)
        return "hardlink"
    except OSError:
        shutil.copy2(src, dest)
        return "copy"


def _trim_copy(src: Path, dest: Path, frames: int) -> None:
    """Write the first ``frames`` samples of ``src`` to ``dest`` with the same format and subtype."""
    info = sf.info(src)
    data, sr = sf.read(src, dtype="int16", always_2d=True)
    sf.write(dest, data[:frames], sr, subtype=info.subtype, format=info.format)


def build_published(
    root: str | os.PathLike, plans: dict[str, ConditionPlan] | None = None
) -> dict[str, Any]:
    """Materialise ``<root>/.urgentbench/published/<condition>/<system>/<utt id>.<ext>`` and its index.

    Outputs are hard links to the page's files (copies across file systems), except
    known padded outputs, which are trimmed to the input length and recorded as quirks.
    A missing output is simply absent (the scorer records it as missing). The directory
    is rebuilt from scratch each time.

    Returns:
        The index written to ``published.json``.
    """
    root = Path(root)
    plans = plan_all() if plans is None else plans
    final = root / PUBLISHED_DIR
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".published.", suffix=".tmp", dir=final.parent))
    index: dict[str, Any] = {
        "corpus": CORPUS_NAME,
        "inventory_sha256": inventory_sha256(),
        "omitted_conditions": dict(OMITTED_CONDITIONS),
        "conditions": {},
    }
    try:
        for name, plan in plans.items():
            entries = {}
            for system in plan.systems:
                folder = staging / name / system
                folder.mkdir(parents=True)
                sources, quirks, missing, modes = {}, [], [], set()
                for utt in plan.utterances:
                    row = utt.outputs.get(system)
                    if row is None:
                        missing.append(utt.id)
                        continue
                    src = root / row.path
                    dest = folder / f"{utt.id}{row.suffix}"
                    n_in = sf.info(root / utt.input.path).frames
                    n_out = sf.info(src).frames
                    excess = n_out - n_in
                    if excess and KNOWN_PADDED_OUTPUTS.get(row.path) == excess:
                        hops = f" ({n_out} = {n_out // 512} x 512)" if n_out % 512 == 0 else ""
                        _trim_copy(src, dest, n_in)
                        modes.add("trimmed copy")
                        quirks.append(
                            {
                                "utterance": utt.id,
                                "source": row.path,
                                "problem": (
                                    f"{n_out} samples, {excess} more than the input's {n_in}: {PADDING_NOTE}{hops}"
                                ),
                                "action": f"trimmed the last {excess} samples so the output is as long as the input",
                            }
                        )
                        logger.info("%s: trimmed %d trailing samples (%s)", row.path, excess, PADDING_NOTE)
                        sources[utt.id] = row.path
                        continue
                    modes.add(_place(src, dest))
                    sources[utt.id] = row.path
                    if excess:
                        quirks.append(
                            {
                                "utterance": utt.id,
                                "source": row.path,
                                "problem": f"{n_out} samples vs the input's {n_in} (not a documented quirk)",
                                "action": "left as is; the scorer reports the length mismatch for this utterance",
                            }
                        )
                        logger.warning("%s: %d samples vs the input's %d; not trimmed", row.path, n_out, n_in)
                entries[system] = {
                    "display_name": f"{system} (published)",
                    "directory": str(PUBLISHED_DIR / name / system),
                    "suite": f"{CORPUS_NAME}/{name}",
                    "outputs": len(sources),
                    "missing": missing,
                    "sources": sources,
                    "placement": sorted(modes),
                    "quirks": quirks,
                }
            index["conditions"][name] = entries
        (staging / PUBLISHED_INDEX).write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return index


def _published_index(root: Path | None = None) -> dict[str, Any]:
    root = corpus_root(CORPUS_NAME) if root is None else Path(root)
    path = root / PUBLISHED_DIR / PUBLISHED_INDEX
    if not path.is_file():
        raise CorpusError(
            CORPUS_NAME,
            [f"{path}: no published outputs; run `urgentbench data prepare {CORPUS_NAME}` again"],
        )
    return json.loads(path.read_text(encoding="utf-8"))


def published_systems(condition: str, root: str | os.PathLike | None = None) -> list[tuple[str, Path, dict[str, Any]]]:
    """The published systems of a condition: ``(display name, output directory, metadata)``.

    Args:
        condition: A condition name (``gsr``) or suite name (``masksr2-demo/gsr``).
        root: Prepared corpus root (default: the recorded one).

    Raises:
        ValueError: For an unknown condition.
        CorpusNotPreparedError: When the corpus is not prepared.
    """
    condition = condition_name(condition)
    root = corpus_root(CORPUS_NAME) if root is None else Path(root)
    entries = _published_index(root)["conditions"].get(condition, {})
    out = []
    for system, entry in sorted(entries.items()):
        metadata = {
            "source": f"published outputs of the MaskSR2 demo page ({REPOSITORY})",
            "paper": CITATION,
            "system": system,
            "condition": condition,
            "outputs": entry["outputs"],
            "missing": list(entry["missing"]),
            "placement": list(entry["placement"]),
            "quirks": list(entry["quirks"]),
        }
        out.append((entry["display_name"], root / entry["directory"], metadata))
    return out


def store_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata for the results store: scalars only (lists joined, quirks as sentences)."""
    flat: dict[str, Any] = {}
    for key, value in metadata.items():
        if key == "quirks":
            flat[key] = "; ".join(f"{q['utterance']}: {q['problem']}; {q['action']}" for q in value) or "none"
        elif isinstance(value, list):
            flat[key] = ", ".join(str(v) for v in value) or "none"
        else:
            flat[key] = value
    return flat
