"""The official URGENT test sets as corpora: ``urgentbench data prepare urgent2024 | urgent2025 | urgent2026-validation``.

Where each set is published and how its columns (or Kaldi tables) map onto a suite is data,
``urgent_official.yaml`` beside this module; this module only carries out the mapping.

* ``urgent2024`` and ``urgent2026-validation`` are Hugging Face datasets. Without
  ``--from`` each configuration is loaded from the hub through
  :mod:`urgentbench.data.hf_loader`, pinned to a commit (``--revision``, else the default
  branch's commit at the time, recorded in the card); when the hub cannot be reached the
  one-line error names the repository and revision and the ``--from DIR`` alternative.
  ``--from DIR`` reads a local copy the same way: a clone of the dataset repository, one
  ``save_to_disk`` folder per configuration (``DIR/<config>/``), or a ``save_to_disk``
  folder of one configuration. Subsets whose configuration a local copy lacks are skipped.
  The audio of each subset is written as its original encoded files under
  ``<data root>/<subset>/{noisy,clean}/`` and the manifest refers to it as
  ``@<corpus>/<subset>/...``.
* ``urgent2025`` is distributed as zip archives (no direct download URL is recorded), so
  ``--from DIR`` reads an extracted copy in the official layout: every folder under ``DIR``
  that holds a ``wav.scp`` (with ``spk1.scp``, ``text``, ``utt2lang``, ``utt2fs`` beside it)
  is one subset, named by the first pattern its path matches (``non-blind`` / ``blind`` /
  ``validation``). Files stay where they are (``@urgent2025/<path under DIR>``).

Every utterance keeps its own rate, its language (2024: English for all) and the sha256 of
each file; transcripts written ``<not-available>`` become "no transcript" (WER/CER skip
them, as the official scripts do); rows without a clean reference are non-intrusive-only
items (as ``dns2020-real``). All problems of all subsets (mapped columns the dataset lacks,
null cells, unreadable audio, noisy and reference at different rates or lengths,
duplicate ids, missing or extra files) are listed at once before anything is recorded.
Preparing a hub revision again that yields other files than the suite already holds is
refused (a commit's content never changes, so a difference means a damaged copy).
"""

from __future__ import annotations

import logging
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import yaml

from urgentbench.data import data_home, record_corpus
from urgentbench.data.base import Corpus, CorpusError
from urgentbench.data.hf_loader import HFSource, HubError
from urgentbench.data.kaldi_import import ColumnMapping, read_dataset, read_kaldi
from urgentbench.data.suite_import import (
    SuiteImportError,
    default_metrics,
    default_suites_dir,
    fingerprint,
    materialise,
    summary,
    write_suite,
)
from urgentbench.manifest import Utterance

__all__ = ["URGENT2024", "URGENT2025", "URGENT2026Validation", "official_table"]

logger = logging.getLogger(__name__)

SUITE_VERSION = "1.0"
_SUBSET_DEPTH = 5


@cache
def official_table() -> dict[str, Any]:
    """The parsed ``urgent_official.yaml``."""
    text = resources.files("urgentbench.data").joinpath("urgent_official.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


class _Official(Corpus):
    """Shared parts of the official sets; subclasses set :attr:`name` (a key of the table)."""

    supports_revision: ClassVar[bool] = False

    @classmethod
    def spec(cls) -> dict[str, Any]:
        """This corpus's entry of the table."""
        return official_table()[cls.name]

    def suite_name(self, subset: str) -> str:
        """``<corpus>/<subset>``, or the corpus name for a corpus of one subset."""
        return self.name if len(self.spec()["subsets"]) == 1 else f"{self.name}/{subset}"

    def _write(
        self,
        subset: str,
        utterances: list[Utterance],
        out_dir: Path,
        origin: dict[str, Any],
        problems: list[str],
    ) -> Path | None:
        """Write one subset's suite; a hub revision whose content differs from the suite already there is refused."""
        spec = self.spec()
        name = self.suite_name(subset)
        folder = out_dir / name
        content = fingerprint(utterances)
        previous = _read_card(folder / "card.yaml")
        revision = origin.get("revision")
        if (
            revision
            and previous.get("source", {}).get("revision") == revision
            and previous.get("content_sha256") not in (None, content)
        ):
            problems.append(
                f"{name}: revision {revision} of {spec.get('repo')} gave other files than when it was first "
                f"prepared (content {content[:12]}, recorded {str(previous['content_sha256'])[:12]}); the copy is "
                f"damaged or the hub served other data: refusing to replace the suite"
            )
            return None
        metrics, categories = default_metrics(utterances)
        counts = summary(utterances)
        rates = ", ".join(f"{r / 1000:g}" for r in counts["sample_rates"])
        card = {
            "name": name,
            "version": f"{SUITE_VERSION}+{content[:10]}",
            "description": (
                f"{spec['title']}: the {subset} set, {counts['utterances']} utterances at their own rates "
                f"({rates} kHz), {counts['with_reference']} with a clean reference (the others are scored "
                f"with non-intrusive metrics only), {counts['with_transcript']} with a transcript. "
                f"Score with the official metric set: --protocol {spec['protocol']}."
            ),
            "metrics": metrics,
            "categories": categories,
            "protocol": spec["protocol"],
            "citation": " ".join(str(spec.get("citation", "")).split()),
            "licence": spec["licence"],
            "homepage": spec["homepage"],
            "provenance": (
                f"Prepared by `urgentbench data prepare {self.name}` from "
                + (f"{spec['repo']} at commit {revision}" if revision else f"a local copy ({origin.get('from')})")
                + ". Every file's sha256 is in the manifest and checked when the audio is read; transcripts "
                "written <not-available> are stored as none."
            ),
            "corpora": [self.name],
            "source": {k: v for k, v in origin.items() if v is not None},
            "content_sha256": content,
            **counts,
        }
        return write_suite(folder, card, utterances, f"# Written by `urgentbench data prepare {self.name}`; do not edit by hand.")


def _read_card(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _saved(folder: Path) -> bool:
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


def _local_configs(path: Path) -> list[str] | None:
    """Configurations a local copy holds (None: a single configuration of unknown name)."""
    if _saved(path):
        return None
    found = [p.name for p in sorted(path.iterdir()) if p.is_dir() and _saved(p)] if path.is_dir() else []
    if found:
        return found
    if path.is_dir():
        try:
            import datasets

            return list(datasets.get_dataset_config_names(str(path)))
        except Exception as exc:  # no README configs: one default configuration
            logger.debug("no configurations listed in %s (%s)", path, exc)
    return None


class _HFOfficial(_Official):
    """An official set published as a Hugging Face dataset."""

    supports_revision: ClassVar[bool] = True

    def prepare(
        self,
        source: Path | None = None,
        *,
        dest: Path | None = None,
        progress: bool = True,
        revision: str | None = None,
        out_dir: Path | None = None,
    ) -> Path:
        """Load every subset (from the hub, or a local copy), check it, write its audio and suite.

        Args:
            source: A local copy (see the module docstring); None loads from the hub.
            dest: Data root the audio is written under (default ``$URGENTBENCH_DATA/<name>``).
            progress: Unused (the loader logs what it opens).
            revision: Hub branch, tag or commit (default: the table's, else the default branch).
            out_dir: Folder of suite folders (default: the first of ``$URGENTBENCH_SUITES_PATH``,
                else the project's ``data_manifests``).

        Returns:
            The recorded data root.

        Raises:
            CorpusError: One line per problem, every subset's at once (a hub that cannot be
                reached is one line naming the repository, revision and ``--from``).
        """
        spec = self.spec()
        root = Path(dest).expanduser() if dest is not None else data_home() / self.name
        out = Path(out_dir).expanduser() if out_dir is not None else default_suites_dir()
        mapping = ColumnMapping(
            noisy=spec["columns"]["noisy"], ref=spec["columns"].get("ref"), text=spec["columns"].get("text"),
            language=spec["columns"].get("language"), id=spec["columns"].get("id"),
            tags=spec["columns"].get("tags") or {},
        )
        revision = revision or spec.get("revision")
        hint = f"download the dataset elsewhere and run: urgentbench data prepare {self.name} --from DIR"
        local = Path(source).expanduser() if source is not None else None
        if local is not None and not local.exists():
            raise CorpusError(self.name, [f"{local}: no such file or folder"])
        configs = _local_configs(local) if local is not None else None
        single = local is not None and configs is None  # one configuration: its folder name says which
        if single and local.stem not in {str(s.get("config")) for s in spec["subsets"].values()}:
            names = ", ".join(str(s.get("config")) for s in spec["subsets"].values())
            raise CorpusError(self.name, [
                f"{local}: a single dataset without configurations; name its folder after its configuration "
                f"({names}), keep one save_to_disk folder per configuration under DIR, or pass a clone of {spec['repo']}"
            ])
        problems: list[str] = []
        prepared: list[tuple[str, list[Utterance], dict[str, Any]]] = []
        commit = None
        for subset, sub in spec["subsets"].items():
            config, split = sub.get("config"), sub.get("split")
            if single:
                if local.stem != str(config):
                    continue
                hf = HFSource(str(local), None, split)
            elif local is not None:
                if configs is not None and config is not None and config not in configs:
                    logger.info("%s: the local copy has no configuration %r; %s skipped", self.name, config, subset)
                    continue
                path = local / config if config and (local / config).is_dir() and _saved(local / config) else local
                hf = HFSource(str(path), config if path == local else None, split)
            else:
                hf = HFSource(spec["repo"], config, split, commit or revision)
            try:
                items, read_problems, loaded = read_dataset(hf, mapping, from_hint=hint)
            except HubError as exc:
                if local is None:  # the hub is down for every subset: one line is enough
                    raise CorpusError(self.name, [str(exc)]) from None
                problems.append(f"{subset}: {exc}")
                continue
            commit = commit or loaded
            if spec.get("language"):
                for item in items:
                    item.language = item.language or spec["language"]
            for item in items:
                item.where = f"{subset} {item.where}"
            try:
                utterances = materialise(
                    items, [f"{subset} {p}" for p in read_problems], what=f"{self.name} {subset}", data_dir=root / subset,
                    path_prefix=f"@{self.name}/{subset}",
                )
            except SuiteImportError as exc:
                problems.extend(exc.problems)
                continue
            origin = {"revision": loaded, "repo": spec["repo"] if loaded else None, "config": config, "split": split,
                      "from": str(local.resolve()) if local is not None else None}
            prepared.append((subset, utterances, origin))
        if not prepared and not problems:
            problems.append(f"{local}: holds none of the configurations {', '.join(str(s.get('config')) for s in spec['subsets'].values())}")
        if problems:  # nothing is recorded or written while anything is wrong
            raise CorpusError(self.name, problems)
        for subset, utterances, origin in prepared:
            self._write(subset, utterances, out, origin, problems)
        if problems:
            raise CorpusError(self.name, problems)
        record_corpus(self.name, root, revision=commit, subsets=[s for s, _, _ in prepared],
                      source=str(local.resolve()) if local is not None else spec["repo"])
        logger.info("%s: prepared %s under %s", self.name, ", ".join(s for s, _, _ in prepared), root)
        return root.resolve()


class URGENT2024(_HFOfficial):
    """URGENT 2024's official validation, non-blind and blind test sets (Hugging Face hub)."""

    name: ClassVar[str] = "urgent2024"
    description: ClassVar[str] = (
        "URGENT 2024 (NeurIPS 2024) official validation, non-blind and blind test sets: multi-rate (8-48 kHz) "
        "English speech with noise, reverberation, band limitation and clipping; urgent-challenge/urgent2024_official"
    )
    licence: ClassVar[str] = "CC BY-NC-SA 4.0"
    homepage: ClassVar[str] = "https://huggingface.co/datasets/urgent-challenge/urgent2024_official"


class URGENT2026Validation(_HFOfficial):
    """URGENT 2026 track 1's leaderboard validation set (Hugging Face hub)."""

    name: ClassVar[str] = "urgent2026-validation"
    description: ClassVar[str] = (
        "URGENT 2026 track 1 (ICASSP 2026) leaderboard validation set: multi-rate, multilingual; "
        "lichenda/urgent26_track1_leaderboard_validation"
    )
    licence: ClassVar[str] = "see the dataset card"
    homepage: ClassVar[str] = "https://huggingface.co/datasets/lichenda/urgent26_track1_leaderboard_validation"


class URGENT2025(_Official):
    """URGENT 2025's official validation, non-blind and blind test sets (extracted zip archives)."""

    name: ClassVar[str] = "urgent2025"
    description: ClassVar[str] = (
        "URGENT 2025 (Interspeech 2025) official validation, non-blind and blind test sets: 8-48 kHz, "
        "multilingual (utt2lang); an extracted copy of the challenge's zip archives (--from DIR)"
    )
    licence: ClassVar[str] = "see the challenge's data page"
    homepage: ClassVar[str] = "https://urgent-challenge.github.io/urgent2025/data/"

    def subset_folders(self, source: Path) -> tuple[dict[str, Path], list[str]]:
        """Subset -> folder holding its ``wav.scp``, and the folders no pattern names."""
        patterns = [(s, re.compile(v["pattern"], re.IGNORECASE)) for s, v in self.spec()["subsets"].items()]
        table = self.spec()["tables"]["noisy"]
        found: dict[str, Path] = {}
        problems = []
        for scp in sorted(source.rglob(table)):
            if len(scp.relative_to(source).parts) > _SUBSET_DEPTH:
                continue
            text = scp.parent.relative_to(source.parent).as_posix()
            subset = next((s for s, pat in patterns if pat.search(text)), None)
            if subset is None:
                problems.append(f"{scp}: belongs to no subset (its path names none of validation, non-blind, blind)")
            elif subset in found:
                problems.append(f"{scp}: a second {subset} set (first: {found[subset] / table})")
            else:
                found[subset] = scp.parent
        return found, problems

    def prepare(
        self,
        source: Path | None = None,
        *,
        dest: Path | None = None,
        progress: bool = True,
        out_dir: Path | None = None,
    ) -> Path:
        """Check an extracted copy (``--from DIR``) and write one suite per subset found.

        Raises:
            CorpusError: Without ``--from`` (no direct download URL is recorded), or listing
                every problem of every subset.
        """
        spec = self.spec()
        if source is None:
            raise CorpusError(self.name, [
                f"the URGENT 2025 sets are zip archives linked from {spec['homepage']} (no direct URL recorded); "
                f"download and extract them, then run: urgentbench data prepare {self.name} --from DIR"
            ])
        source = Path(source).expanduser().resolve()
        if not source.is_dir():
            raise CorpusError(self.name, [f"{source}: no such folder"])
        out = Path(out_dir).expanduser() if out_dir is not None else default_suites_dir()
        folders, problems = self.subset_folders(source)
        if not folders and not problems:
            problems.append(f"{source}: no {spec['tables']['noisy']} found (expected the extracted official archives)")
        tables = spec["tables"]
        prepared = []
        for subset, folder in folders.items():
            side = {role: folder / tables[role] for role in ("ref", "text", "language", "rate")}
            items, read_problems = read_kaldi(
                folder / tables["noisy"],
                *(side[r] if side[r].is_file() else None for r in ("ref", "text", "language", "rate")),
                roots=[source],
            )
            for item in items:
                item.where = f"{subset} {item.where}"
            try:
                utterances = materialise(items, [f"{subset} {p}" for p in read_problems],
                                         what=f"{self.name} {subset}", disk_root=(source, f"@{self.name}"))
            except SuiteImportError as exc:
                problems.extend(exc.problems)
                continue
            prepared.append((subset, utterances, {"from": str(source), "folder": str(folder)}))
        if problems:  # nothing is recorded or written while anything is wrong
            raise CorpusError(self.name, problems)
        for subset, utterances, origin in prepared:
            self._write(subset, utterances, out, origin, problems)
        if problems:
            raise CorpusError(self.name, problems)
        record_corpus(self.name, source, subsets=[s for s, _, _ in prepared], source=str(source))
        return source
