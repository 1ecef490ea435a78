"""The corpus protocol: something ``urgentbench data prepare NAME [--from DIR]`` can fetch and verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from urgentbench.pipeline.options import RunOptions


class CorpusError(RuntimeError):
    """A corpus copy that cannot be used; the message lists every problem, one per line."""

    def __init__(self, corpus: str, problems: list[str]):
        self.corpus = corpus
        self.problems = list(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"corpus {corpus!r}: {len(self.problems)} problem(s):\n{listing}")


class Corpus:
    """Base class of corpora.

    Subclasses set the class attributes and implement :meth:`prepare`, which takes a local
    copy (``source``) or downloads from the official source (``source=None``), verifies
    every file the suites use against pinned sha256 and size, records the prepared root
    with :func:`urgentbench.data.record_corpus`, and returns it.

    A corpus that defines suites of its own implements :meth:`build_suites`
    (``urgentbench data build-suite <corpus>``); one that publishes system outputs
    implements :meth:`score_published` (``urgentbench data score-published <corpus>``).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    licence: ClassVar[str]
    citation: ClassVar[str] = ""
    homepage: ClassVar[str] = ""

    def prepare(self, source: Path | None = None, *, dest: Path | None = None, progress: bool = True) -> Path:
        """Verify (and if needed download) the corpus and record where it lives.

        Args:
            source: A local copy; None downloads from the official source.
            dest: Where downloads go (default: ``data_home() / name``).
            progress: Show progress bars.

        Raises:
            CorpusError: Listing every missing, corrupt, wrong-rate or unreadable file.
        """
        raise NotImplementedError

    def build_suites(self, out_dir: Path | None = None) -> dict[str, Path]:
        """Write the manifests and cards of the suites made from this corpus (deterministic).

        Args:
            out_dir: Folder of the suite folders (default: the project's ``data_manifests``).

        Returns:
            Suite name -> card path.

        Raises:
            ValueError: When the corpus has no suites of its own.
        """
        raise ValueError(f"corpus {self.name!r} has no suites of its own to build")

    def score_published(self, condition: str = "all", options: RunOptions | None = None) -> dict[str, Any]:
        """Score the system outputs the corpus publishes on its suites, as entries like any other.

        Args:
            condition: A sub-suite of the corpus, or ``"all"``.
            options: The run's options (results folder, workers, metrics, protocol, ...),
                passed whole to :func:`urgentbench.runner.run`; default :class:`RunOptions`.

        Returns:
            Sub-suite -> :class:`urgentbench.pipeline.results.RunReport`.

        Raises:
            ValueError: When the corpus publishes no system outputs.
        """
        raise ValueError(f"corpus {self.name!r} publishes no system outputs")
