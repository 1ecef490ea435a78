"""Per-condition breakdowns (URGENT's ``get_breakdown.py`` idea): system means per group of utterances.

Groups come from an utterance's tags. Besides the tags written in the manifest, tags are
derived from the degradation chain, so every suite can be broken down by them without a
new manifest version:

- ``snr_bin``: additive-noise SNR in 5 dB bins (``"5..10"``), or ``"no noise"``;
- ``rt60_bin``: reverberation time in 0.2 s bins (``"0.4..0.6"``), or ``"no reverb"``;
- ``clip_threshold``: clipping threshold, or ``"none"``;
- ``cutoff_hz``: bandwidth-limitation cut-off, or ``"none"``;
- ``sample_rate`` and ``speaker``.

A tag written in the manifest wins over a derived one of the same name.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from urgentbench.manifest import Utterance
from urgentbench.report.summary import SystemSummary, summarize
from urgentbench.runner import MetricSpec
from urgentbench.store import ResultStore
from urgentbench.suites import Suite

logger = logging.getLogger(__name__)


def _bin(value: float, width: float, digits: int = 0) -> str:
    low = math.floor(value / width) * width
    return f"{low:.{digits}f}..{low + width:.{digits}f}"


def utterance_tags(utt: Utterance) -> dict[str, str]:
    """Manifest tags plus tags derived from the degradation parameters."""
    tags: dict[str, str] = {
        "sample_rate": str(utt.sample_rate),
        "snr_bin": "no noise",
        "rt60_bin": "no reverb",
        "clip_threshold": "none",
        "cutoff_hz": "none",
    }
    if utt.speaker:
        tags["speaker"] = utt.speaker
    for step in utt.degradations:
        params = step.params
        if step.name in ("noise", "noise_file") and "snr_db" in params:
            tags["snr_bin"] = _bin(float(params["snr_db"]), 5.0)
        elif step.name in ("reverb", "reverb_pra") and "rt60" in params:
            tags["rt60_bin"] = _bin(float(params["rt60"]), 0.2, digits=1)
        elif step.name == "clipping" and "threshold" in params:
            tags["clip_threshold"] = f"{float(params['threshold']):g}"
        elif step.name in ("bandwidth_limit", "bandwidth_limit_poly") and "cutoff_hz" in params:
            tags["cutoff_hz"] = f"{float(params['cutoff_hz']):g}"
    tags.update(utt.tags)
    return tags


def group_utterances(utterances: list[Utterance], tag: str) -> dict[str, list[Utterance]]:
    """Utterances grouped by the value of ``tag`` (sorted by group name).

    Raises:
        ValueError: When no utterance has the tag, listing the tags that exist.
    """
    groups: dict[str, list[Utterance]] = {}
    known: set[str] = set()
    for utt in utterances:
        tags = utterance_tags(utt)
        known |= set(tags)
        if tag in tags:
            groups.setdefault(tags[tag], []).append(utt)
    if not groups:
        raise ValueError(f"no utterance has the tag {tag!r}; known tags: {', '.join(sorted(known))}")
    return dict(sorted(groups.items(), key=lambda kv: _group_order(kv[0])))


def _group_order(name: str) -> tuple[int, float, str]:
    """Numeric groups ("-5..0", "16000", "0.25") in numeric order, then the others by name."""
    try:
        return (0, float(name.split("..")[0]), name)
    except ValueError:
        return (1, 0.0, name)


def breakdown_table(groups: dict[str, list[SystemSummary]], outputs: list[tuple[str, bool]], tag: str) -> str:
    """Markdown: one section per group with each system's value of every output.

    Args:
        groups: group -> list of :class:`~urgentbench.report.leaderboard.SystemSummary`.
        outputs: ``(output name, higher_is_better)`` columns.
        tag: The tag grouped by (for the heading).
    """
    lines = [f"# Breakdown by {tag}", ""]
    for group, summaries in groups.items():
        n = max((max(s.scored.values(), default=0) for s in summaries), default=0)
        lines += [f"## {tag} = {group} ({n} utterances)", ""]
        header = ["system"] + [f"{name} {'↑' if hib else '↓'}" for name, hib in outputs]
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
        for s in summaries:
            cells = [s.display_name] + [
                "—" if s.values.get(name) is None else f"{s.values[name]:.3f}" for name, _ in outputs
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


@dataclass
class Breakdown:
    """The system summaries of every group of utterances by one tag."""

    tag: str
    #: group -> system summaries on the group's utterances (groups in :func:`group_utterances` order)
    groups: dict[str, list[SystemSummary]]
    #: group -> number of utterances
    sizes: dict[str, int]

    def markdown(self, outputs: list[tuple[str, bool]]) -> str:
        """:func:`breakdown_table` of this breakdown."""
        return breakdown_table(self.groups, outputs, self.tag)

    def page_rows(self) -> list[dict[str, Any]]:
        """One row per (group, system) for the HTML page: ``group``, ``n`` utterances, ``system``, ``values``."""
        return [
            {"group": group, "n": self.sizes[group], "system": s.display_name, "values": s.values}
            for group, summaries in self.groups.items()
            for s in summaries
        ]


def breakdowns(
    store: ResultStore,
    suite: Suite,
    metrics: list[MetricSpec],
    tags: list[str],
    systems: list[str] | None = None,
    skip_unknown: bool = False,
) -> list[Breakdown]:
    """Summaries per group of utterances for every tag.

    Args:
        store: The results store.
        suite: The suite.
        metrics: Metrics to aggregate.
        tags: Tags to group by (:func:`utterance_tags`).
        systems: Only these stored system names (default: all).
        skip_unknown: Skip a tag no utterance has, with a warning, instead of raising.

    Raises:
        ValueError: For a tag no utterance has (unless ``skip_unknown``).
    """
    out = []
    for tag in tags:
        try:
            groups = group_utterances(suite.utterances(), tag)
        except ValueError as exc:
            if not skip_unknown:
                raise
            logger.warning("no breakdown by %s: %s", tag, exc)
            continue
        out.append(Breakdown(
            tag,
            {group: summarize(store, suite, metrics, systems=systems, utterances=utts) for group, utts in groups.items()},
            {group: len(utts) for group, utts in groups.items()},
        ))
    return out
