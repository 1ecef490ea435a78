"""The MaskSR2 demo page (github.com/MaskSR/MaskSR2) as a corpus, its sub-suites and its published outputs.

The demo page of MaskSR2 (Liu, Li, Serrà, Pascual, ICASSP 2025) serves 305 audio files:
unprocessed inputs, targets and the outputs of MaskSR-L, MaskSR2-L and four baselines for
general speech restoration, bandwidth extension, declipping and DNS-2020 denoising. This
package

* verifies a local copy (or downloads one) against the committed inventory
  ``urgentbench/data/checksums/masksr2_demo_inventory.csv`` (:mod:`.recipe`,
  :mod:`.local_copy`). The inventory has **no sha256**: a file is checked for presence,
  readability, sample rate, channel count and duration (within 1 ms of the inventory),
  not for its bytes;
* generates one sub-suite per condition, ``data_manifests/masksr2-demo/<condition>/``
  (suite name ``masksr2-demo/<condition>``), whose manifests point into the prepared
  copy with ``@masksr2-demo/<path>`` (:mod:`.suite_builder`);
* pairs every published output with its input (flat ``<stem>_proc`` folders for
  MaskSR-L, MaskSR2-L and DeepFilterNet3; same-name files in the condition folders for
  VoiceFixer, FRCRN and DEMUCS; :mod:`.pairing`) and materialises one directory per
  (condition, system) under ``<root>/.urgentbench/published/`` (:mod:`.published`) that
  :func:`urgentbench.runner.directory_producer` scores like any outside entry
  (:mod:`.scoring`).

Only utterances whose unprocessed input is at the repository head are in the suites; the
four whose input exists only in the repository history are listed as ``excluded`` in the
cards. The DNS-2020 ``with_reverb`` condition is omitted: its inputs and targets are
history-only.

Outputs are hard-linked into the published directories (copied when the file system
refuses links), byte-identical to the page's files, except the one documented quirk:
``MaskSR-L/10_simulated_proc.wav`` (and its intelligibility-table copy) is 308 samples
longer than its input (untrimmed codec padding). That file is trimmed to the input length
**explicitly** and the trim is recorded in the ``quirks`` of the published-system metadata;
the scorer itself never trims.

Command line::

    urgentbench data build-suite masksr2-demo            # regenerate the committed suites
    urgentbench data prepare masksr2-demo [--from DIR]   # verify a checkout (or download), build published outputs
    urgentbench data score-published masksr2-demo [--condition gsr]
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from urgentbench.data import data_home, record_corpus
from urgentbench.data.base import Corpus, CorpusError
from urgentbench.data.masksr2_demo.local_copy import check_file, download_copy, fetch_file, verify_copy
from urgentbench.data.masksr2_demo.pairing import (
    ConditionPlan,
    PlannedUtterance,
    implied_input_stem,
    output_path,
    plan_all,
    plan_condition,
    target_path,
    utterance_tags,
)
from urgentbench.data.masksr2_demo.published import build_published, published_systems, store_metadata
from urgentbench.data.masksr2_demo.recipe import (
    CITATION,
    CONDITIONS,
    CORPUS_NAME,
    DURATION_TOLERANCE_S,
    FLAT_SYSTEM_FOLDERS,
    FULL_CATEGORIES,
    FULL_METRICS,
    HISTORY_ONLY_INPUTS,
    INTELLIGIBILITY_SYSTEM_FOLDERS,
    INVENTORY_PATH,
    KNOWN_PADDED_OUTPUTS,
    LICENCE,
    NON_INTRUSIVE_CATEGORIES,
    NON_INTRUSIVE_METRICS,
    OMITTED_CONDITIONS,
    PADDING_NOTE,
    PAGE_URL,
    PUBLISHED_DIR,
    PUBLISHED_INDEX,
    RAW_BASE_URL,
    REPOSITORY,
    SIBLING_SYSTEMS,
    SUITE_VERSION,
    SUITES_ROOT,
    ConditionSpec,
    InventoryRow,
    condition_name,
    inventory_sha256,
    load_inventory,
    natural_key,
)
from urgentbench.data.masksr2_demo.scoring import score_published
from urgentbench.data.masksr2_demo.suite_builder import build_suites, intelligibility_transcripts
from urgentbench.data.masksr2_demo.transcripts import TranscriptError, parse_transcripts

__all__ = [
    "CITATION", "CONDITIONS", "CORPUS_NAME", "DURATION_TOLERANCE_S", "FLAT_SYSTEM_FOLDERS", "FULL_CATEGORIES",
    "FULL_METRICS", "HISTORY_ONLY_INPUTS", "INTELLIGIBILITY_SYSTEM_FOLDERS", "INVENTORY_PATH", "KNOWN_PADDED_OUTPUTS",
    "LICENCE", "NON_INTRUSIVE_CATEGORIES", "NON_INTRUSIVE_METRICS", "OMITTED_CONDITIONS", "PADDING_NOTE", "PAGE_URL",
    "PUBLISHED_DIR", "PUBLISHED_INDEX", "RAW_BASE_URL", "REPOSITORY", "SIBLING_SYSTEMS", "SUITES_ROOT",
    "SUITE_VERSION", "ConditionPlan", "ConditionSpec", "InventoryRow", "MaskSR2Demo", "PlannedUtterance", "TranscriptError",
    "build_published", "build_suites", "check_file", "condition_name", "download_copy", "fetch_file",
    "implied_input_stem", "intelligibility_transcripts", "inventory_sha256", "load_inventory", "natural_key", "output_path", "parse_transcripts", "plan_all",
    "plan_condition", "published_systems", "score_published", "store_metadata", "target_path", "utterance_tags",
    "verify_copy",
]

logger = logging.getLogger(__name__)

#: How :meth:`MaskSR2Demo.prepare` downloads one file (looked up at call time, so it can be replaced).
_fetch = fetch_file


class MaskSR2Demo(Corpus):
    """The MaskSR2 demo page's 305 audio files (inputs, targets and published outputs)."""

    name = CORPUS_NAME
    description = (
        "Audio of the MaskSR2 demo page (github.com/MaskSR/MaskSR2): GSR, bandwidth extension (1/2/4/8 kHz), "
        "declipping (0.1/0.25) and DNS-2020 clips with MaskSR-L, MaskSR2-L, DeepFilterNet3, VoiceFixer, FRCRN "
        "and DEMUCS outputs; about 87 MB."
    )
    licence = LICENCE
    citation = CITATION
    homepage = PAGE_URL

    def prepare(self, source: Path | None = None, *, dest: Path | None = None, progress: bool = True) -> Path:
        """Verify a checkout of the demo repository (or download one) and build the published outputs.

        Args:
            source: A local checkout (or any folder with the repository's layout); None
                downloads every inventory file from the repository's raw URLs.
            dest: Download folder (default ``data_home() / "masksr2-demo"``); only with
                ``source=None``.
            progress: Show progress bars.

        Returns:
            The prepared root (``source`` itself, or the download folder).

        Raises:
            CorpusError: Listing every missing, unreadable, wrong-rate, wrong-channel or
                wrong-length file (and every failed download).
        """
        rows = load_inventory()
        problems: list[str] = []
        if source is None:
            root = Path(dest) if dest is not None else data_home() / CORPUS_NAME
            root.mkdir(parents=True, exist_ok=True)
            problems += download_copy(root, rows, progress, fetch=_fetch)
        else:
            root = Path(source).expanduser()
            if not root.is_dir():
                raise CorpusError(CORPUS_NAME, [f"{root}: not a directory"])
        root = root.resolve()
        failed = {p.split(":", 1)[0] for p in problems}
        problems += [p for p in verify_copy(root, rows, progress) if p.split(":", 1)[0] not in failed]
        if problems:
            raise CorpusError(CORPUS_NAME, problems)
        try:
            index = build_published(root)
        except OSError as exc:
            raise CorpusError(CORPUS_NAME, [f"{root / PUBLISHED_DIR}: cannot write published outputs ({exc})"]) from exc
        record_corpus(
            CORPUS_NAME,
            root,
            source="download" if source is None else str(Path(source).expanduser().resolve()),
            files=len(rows),
            inventory_sha256=inventory_sha256(),
            verification="presence, readability, rate, channels, duration within 1 ms (the inventory has no sha256)",
            published=str(PUBLISHED_DIR),
            published_outputs=sum(e["outputs"] for c in index["conditions"].values() for e in c.values()),
        )
        logger.info("%s prepared at %s", CORPUS_NAME, root)
        return root

    def build_suites(self, out_dir: Path | None = None) -> dict[str, Path]:
        """Write ``<out_dir>/masksr2-demo/<condition>/`` (manifest and card) for every condition.

        Returns:
            Suite name (``masksr2-demo/<condition>``) -> card path.
        """
        folder = SUITES_ROOT if out_dir is None else Path(out_dir) / CORPUS_NAME
        return {f"{CORPUS_NAME}/{name}": card for name, card in build_suites(folder).items()}

    def score_published(self, condition: str = "all", *args: Any, **options: Any) -> dict[str, Any]:
        """Score the page's published systems and ``noisy`` on the sub-suites (:func:`score_published`, same arguments)."""
        return score_published(condition, *args, **options)
