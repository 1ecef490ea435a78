"""The leaderboard as typed records, computed once and read by every renderer.

:func:`~urgentbench.report.leaderboard.build_leaderboard` computes them; every renderer
(Markdown, CSV, JSON, HTML) reads them.

The JSON form (``leaderboard.json``) is each record's fields in declaration order, nested
records as objects; a field declared *optional* is left out while it is ``None`` (so a
leaderboard without missing outputs prints as it always did). :meth:`Leaderboard.to_json`
writes it and :meth:`Leaderboard.from_dict` reads it back, so a stored ``leaderboard.json``
can be rendered again without the results.

A record can also be read like its JSON object (``lb["rows"][0]["system"]``, ``"filled" in
row``): the keys are the JSON keys, and an optional field that is ``None`` is absent.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: The group of value columns that are shown but not ranked.
NOT_RANKED = "not ranked"


def optional(**kwargs: Any) -> Any:
    """A field that is ``None`` unless it has something to say, and then absent from the JSON form."""
    return field(default=None, metadata={"optional": True}, **kwargs)


class Record:
    """Mixin of the leaderboard dataclasses: the JSON form and read access by JSON key."""

    _nested: ClassVar[dict[str, type]] = {}

    def keys(self) -> list[str]:
        """The JSON keys, in order (optional fields that are ``None`` left out)."""
        return [
            f.name for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if not (f.metadata.get("optional") and getattr(self, f.name) is None)
        ]

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def get(self, key: str, default: Any = None) -> Any:
        """The value of a JSON key, or ``default`` when it is absent."""
        return getattr(self, key) if key in self.keys() else default

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (nested records as dicts; other values as they are, not copied)."""
        return {key: _plain(getattr(self, key)) for key in self.keys()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """The record of a JSON object written by :meth:`to_dict`.

        Raises:
            ValueError: For a key the record does not have, or a required one missing.
        """
        names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = [k for k in data if k not in names]
        missing = [n for n, f in names.items() if n not in data and not f.metadata.get("optional")]
        if unknown or missing:
            problems = ([f"unknown key(s) {', '.join(unknown)}"] if unknown else []) + (
                [f"missing key(s) {', '.join(missing)}"] if missing else []
            )
            raise ValueError(f"not a {cls.__name__} of this urgentbench version: {'; '.join(problems)}")
        values = dict(data)
        for key, kind in cls._nested.items():
            if key in values and values[key] is not None:
                value = values[key]
                values[key] = [kind.from_dict(v) for v in value] if isinstance(value, list) else kind.from_dict(value)
        return cls(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list) and value and isinstance(value[0], Record):
        return [v.to_dict() for v in value]
    return value


@dataclass(frozen=True)
class Statistics(Record):
    """How the intervals and paired tests were computed (:func:`urgentbench.report.stats.describe`)."""

    ci_method: str
    confidence: float
    n_resamples: int
    seed: int
    paired_test: str
    alpha: float
    #: The system every other one is tested against (the first ranked), None when none is ranked
    paired_reference: str | None


@dataclass(frozen=True)
class LeaderboardRow(Record):
    """A ranked system: values, ranks, category and overall scores, failures, intervals."""

    system: str
    config_hash: str
    metadata: dict[str, Any]
    #: Mean of the category scores (lower is better); None when nothing is ranked
    overall: float | None
    #: Category -> mean of the ranks of its outputs
    categories: dict[str, float]
    values: dict[str, float | None]
    ranks: dict[str, float]
    n_valid: dict[str, int]
    #: Metric -> failures of the metric on valid outputs (left out of URGENT's nan-mean)
    failures: dict[str, int]
    failure_examples: dict[str, str]
    #: Output -> ``[low, high]`` 95 % bootstrap interval (None when undefined)
    ci: dict[str, list[float] | None]
    #: Metric -> failures that are the participant's (missing or unusable outputs)
    participant_failures: dict[str, int] | None = optional()
    participant_examples: dict[str, str] | None = optional()
    #: Metric -> applicable utterances never scored
    not_scored: dict[str, int] | None = optional()
    #: Metric -> values filled with the worst of the other systems (``--missing worst``)
    filled: dict[str, int] | None = optional()
    #: Output -> p-value of the paired test against the first row (every row but the first)
    p_vs_first: dict[str, float | None] | None = optional()

    @property
    def n_filled(self) -> int:
        """How many values were filled with the worst of the other systems."""
        return sum((self.filled or {}).values())


@dataclass(frozen=True)
class NotRanked(Record):
    """A system that is listed but not ranked, with the reason (outputs missing, not scored)."""

    system: str
    scored: dict[str, int]
    expected: dict[str, int]
    #: Metric -> why stored scores were not used (other options, version or checkpoints)
    stale: dict[str, str]
    reason: str
    participant_failures: dict[str, int] | None = optional()
    participant_examples: dict[str, str] | None = optional()
    not_scored: dict[str, int] | None = optional()
    filled: dict[str, int] | None = optional()


@dataclass(frozen=True)
class Leaderboard(Record):
    """A suite's leaderboard: ranked rows, systems not ranked, and how it was computed."""

    _nested: ClassVar[dict[str, type]] = {"statistics": Statistics, "rows": LeaderboardRow, "incomplete": NotRanked}

    suite: str
    suite_version: str
    manifest_sha256: str
    n_utterances: int
    tie_method: str
    protocol: str | None
    #: Category -> ranked outputs, in URGENT's category order
    categories: dict[str, list[str]]
    #: Outputs shown but not ranked
    other_metrics: list[str]
    higher_is_better: dict[str, bool]
    descriptions: dict[str, str]
    metric_versions: dict[str, str]
    #: Metric -> model file -> sha256 (None when the file has no digest)
    metric_models: dict[str, dict[str, str | None]]
    #: Outputs the protocol ranks that have no values here
    not_computed: list[str]
    #: Package -> versions the values were computed with
    packages: dict[str, list[str]]
    mixed_packages: dict[str, list[str]]
    urgentbench: str
    statistics: Statistics
    rows: list[LeaderboardRow]
    incomplete: list[NotRanked]
    #: The missing-value policy, recorded only when it is not the default (``unranked``)
    missing_policy: str | None = optional()

    def columns(self) -> list[tuple[str, str, str]]:
        """(group, output, header) for every value column: ranked categories first, then :data:`NOT_RANKED`."""
        cols = [(category, o, self.header(o)) for category, outputs in self.categories.items() for o in outputs]
        return cols + [(NOT_RANKED, o, self.header(o)) for o in self.other_metrics]

    def header(self, output: str) -> str:
        """``name ↑`` (higher is better) or ``name ↓``."""
        return f"{output} {'↑' if self.higher_is_better[output] else '↓'}"

    def to_json(self) -> str:
        """``leaderboard.json``: the JSON form, indented by two, non-ASCII kept, with a final newline."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Leaderboard:
        """The leaderboard of a ``leaderboard.json`` text.

        Raises:
            ValueError: When it is not valid JSON or not a leaderboard of this version.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("not a leaderboard: the JSON is not an object")
        return cls.from_dict(data)
