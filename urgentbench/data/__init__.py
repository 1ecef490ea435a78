"""External corpora: where prepared copies live, and how manifests refer to them.

A manifest path of the form ``@<corpus>/<relative path>`` points into a prepared corpus
(``urgentbench data prepare <corpus>``). Prepared corpora are recorded in
``$URGENTBENCH_DATA/corpora.json`` (default ``~/.local/share/urgentbench``).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


class CorpusNotPreparedError(RuntimeError):
    """A suite needs a corpus that has not been prepared; the message holds the command that fixes it."""

    def __init__(self, corpus: str):
        self.corpus = corpus
        super().__init__(
            f"corpus {corpus!r} is not prepared; run: urgentbench data prepare {corpus} "
            f"(downloads it) or: urgentbench data prepare {corpus} --from DIR (a local copy)"
        )


def data_home() -> Path:
    """Folder holding ``corpora.json`` and downloaded corpora (``$URGENTBENCH_DATA``)."""
    env = os.environ.get("URGENTBENCH_DATA")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "urgentbench"


def _records_path() -> Path:
    return data_home() / "corpora.json"


def prepared_corpora() -> dict[str, dict[str, Any]]:
    """Every recorded corpus: name -> ``{"root": ..., "prepared": ..., ...}``."""
    path = _records_path()
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def record_corpus(name: str, root: str | os.PathLike, **info: Any) -> None:
    """Record that corpus ``name`` is prepared (verified) at ``root``; written atomically."""
    records = prepared_corpora()
    records[name] = {
        "root": str(Path(root).resolve()),
        "prepared": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **info,
    }
    path = _records_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".corpora.", suffix=".json.tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(records, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def corpus_root(name: str) -> Path:
    """Root folder of a prepared corpus.

    Raises:
        CorpusNotPreparedError: When ``name`` has not been prepared (or its folder is gone).
    """
    record = prepared_corpora().get(name)
    if record is None or not Path(record["root"]).is_dir():
        raise CorpusNotPreparedError(name)
    return Path(record["root"])


def resolve_corpus_path(path: str) -> Path:
    """Resolve ``@corpus/relative`` to an absolute path inside the prepared corpus."""
    if not path.startswith("@"):
        raise ValueError(f"not a corpus path: {path!r}")
    corpus, _, relative = path[1:].partition("/")
    return corpus_root(corpus) / relative
