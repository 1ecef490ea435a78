"""Suites: a versioned manifest plus a YAML card, found in ``data_manifests/<suite>/``.

Sub-suites of one corpus may be grouped one level deeper, ``data_manifests/<group>/<suite>/``;
their name is the relative folder path (``masksr2-demo/gsr``).

``card.yaml`` fields: ``name``, ``version``, ``description``, ``sample_rate``,
``manifest`` (file name, relative to the folder), ``manifest_sha256``, ``metrics``
(metric names computed), ``categories`` (URGENT category -> list of ranked outputs),
``citation``, ``provenance``. Loading a suite checks the manifest's sha256, so a
silently edited manifest is never scored under the old version.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from urgentbench.manifest import ManifestError, Utterance, file_sha256, read_manifest
from urgentbench.registry import Registry

PROJECT_SUITES_DIR = Path(__file__).resolve().parents[1] / "data_manifests"
#: The suites shipped inside the package (the wheel's copy of ``data_manifests``: cards, the
#: demo suite's manifest and clean audio). In a checkout ``urgentbench/suites_data`` is a link
#: to ``data_manifests``, so both name the same suites and the project folder wins.
PACKAGE_SUITES_DIR = Path(__file__).resolve().parent / "suites_data"


class SuiteError(ValueError):
    """A suite card or manifest that cannot be used."""


@dataclass
class Suite:
    """A loaded suite card; utterances are read lazily from its manifest."""

    name: str
    version: str
    description: str
    sample_rate: int
    manifest: str
    manifest_sha256: str
    metrics: list[str]
    categories: dict[str, list[str]]
    folder: Path
    citation: str = ""
    provenance: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_card(cls, card_path: str | os.PathLike) -> Suite:
        """Read ``card.yaml``.

        Raises:
            SuiteError: With the file and the problem.
        """
        card_path = Path(card_path)
        try:
            data = yaml.safe_load(card_path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise SuiteError(f"{card_path}: cannot read suite card ({exc})") from exc
        required = ("name", "version", "description", "sample_rate", "manifest", "manifest_sha256", "metrics")
        if not isinstance(data, dict):
            raise SuiteError(f"{card_path}: a suite card must be a YAML mapping")
        missing = [k for k in required if k not in data]
        if missing:
            raise SuiteError(f"{card_path}: missing field(s) {', '.join(missing)}")
        known = {f for f in cls.__dataclass_fields__ if f not in ("folder", "extra")}
        extra = {k: v for k, v in data.items() if k not in known}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["version"] = str(kwargs["version"])
        kwargs.setdefault("categories", {})
        return cls(**kwargs, folder=card_path.parent, extra=extra)

    @property
    def key(self) -> str:
        """``name@version``, the identity results are stored under."""
        return f"{self.name}@{self.version}"

    @property
    def manifest_path(self) -> Path:
        """Absolute path of the manifest."""
        return self.folder / self.manifest

    def verify(self) -> None:
        """Check that the manifest exists and matches the card's sha256.

        Raises:
            SuiteError: When the manifest is missing or was modified.
        """
        if not self.manifest_path.is_file():
            if self.extra.get("build"):  # a recipe suite whose manifest is built locally
                raise SuiteError(
                    f"suite {self.name!r} is not built yet ({self.manifest_path} does not exist); "
                    f"run: {self.extra['build']}"
                )
            raise SuiteError(f"{self.manifest_path}: manifest of suite {self.name!r} not found")
        actual = file_sha256(self.manifest_path)
        if actual != self.manifest_sha256:
            raise SuiteError(
                f"{self.manifest_path}: sha256 {actual} does not match the card's "
                f"{self.manifest_sha256}; bump the suite version and update the card"
            )

    def utterances(self, limit: int | None = None) -> list[Utterance]:
        """Read the manifest (after :meth:`verify`), optionally only the first ``limit`` lines."""
        self.verify()
        out = []
        try:
            for utt in read_manifest(self.manifest_path):
                out.append(utt)
                if limit is not None and len(out) >= limit:
                    break
        except ManifestError as exc:
            raise SuiteError(str(exc)) from exc
        return out

    def resolve(self, relative: str) -> Path:
        """Resolve a manifest path: ``@corpus/...`` into a prepared corpus, else against the suite folder.

        Raises:
            CorpusNotPreparedError: For a corpus that is not prepared.
        """
        if relative.startswith("@"):
            from urgentbench.data import resolve_corpus_path

            return resolve_corpus_path(relative)
        p = Path(relative)
        return p if p.is_absolute() else self.folder / p

    def check_corpora(self) -> None:
        """Fail before any work when a corpus the suite needs (card field ``corpora``) is not prepared.

        Raises:
            CorpusNotPreparedError: Naming the exact ``urgentbench data prepare`` command.
        """
        from urgentbench.data import corpus_root

        for corpus in self.extra.get("corpora") or []:
            corpus_root(corpus)

    def ranked_outputs(self) -> dict[str, list[str]]:
        """Category -> outputs that count for ranking."""
        return {c: list(v) for c, v in self.categories.items()}


def suite_dirs() -> list[Path]:
    """Directories searched for suite folders (``$URGENTBENCH_SUITES_PATH`` first, then the project's, then the package's)."""
    dirs = [Path(p) for p in os.environ.get("URGENTBENCH_SUITES_PATH", "").split(os.pathsep) if p]
    dirs.append(PROJECT_SUITES_DIR)
    if PACKAGE_SUITES_DIR.resolve() != PROJECT_SUITES_DIR.resolve():  # an installed wheel, not a checkout
        dirs.append(PACKAGE_SUITES_DIR)
    return [d for d in dirs if d.is_dir()]


def suite_cards(directory: Path) -> list[tuple[str, Path]]:
    """``(suite name, card path)`` of the suites in one search directory.

    A suite is a folder holding ``card.yaml``, one or two levels deep: ``<suite>/card.yaml``
    is named ``<suite>``, and ``<group>/<suite>/card.yaml`` (sub-suites of one corpus, e.g.
    ``masksr2-demo/gsr``) is named ``<group>/<suite>``, its folder path relative to
    ``directory``. Cards write the same name in their ``name`` field.
    """
    cards = [*directory.glob("*/card.yaml"), *directory.glob("*/*/card.yaml")]
    found = [(card.parent.relative_to(directory).as_posix(), card) for card in cards]
    return sorted(found, key=lambda item: item[0])


def _discover(registry: Registry[Path]) -> None:
    seen: set[str] = set()
    for directory in suite_dirs():
        for name, card in suite_cards(directory):
            if name.lower() not in seen:
                seen.add(name.lower())
                registry.register(name, card, origin=str(card))


#: Suite name -> path of its card.
SUITES: Registry[Path] = Registry("suite")
SUITES.add_discoverer(_discover)


def get_suite(name: str) -> Suite:
    """Load suite ``name``'s card.

    Raises:
        UnknownNameError: For an unknown suite.
        SuiteError: For a broken card.
    """
    return Suite.from_card(SUITES.get(name))
