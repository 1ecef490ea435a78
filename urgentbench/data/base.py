"""The corpus protocol: something ``urgentbench data prepare NAME [--from DIR]`` can fetch and verify."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar


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
