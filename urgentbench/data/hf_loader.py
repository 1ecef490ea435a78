"""The one loader of Hugging Face audio datasets, from the hub or from a local copy.

Used by the official URGENT corpora (``urgentbench data prepare urgent2024``) and by
``urgentbench suite import NAME --hf REPO[:CONFIG:SPLIT]``. A source is one split of one
configuration of a dataset:

* on the hub (``owner/name``): the revision is resolved to a commit first
  (:func:`resolve_revision`; a fast, one-line failure when the hub cannot be reached, the
  repository or revision does not exist, or access is gated), then the split is streamed
  with ``datasets.load_dataset(repo, config, split=..., revision=commit, streaming=True)``,
  so nothing is duplicated into the ``datasets`` cache;
* a local copy: a ``save_to_disk`` folder (``load_from_disk``; a ``DatasetDict`` folder picks
  the split), a clone of the hub repository or any folder of data files
  (``load_dataset(folder, config, split=...)``, which reads the repository card's
  ``configs`` exactly as the hub path does), or one ``.parquet`` / ``.arrow`` / ``.jsonl`` file.

Audio columns are cast to ``Audio(decode=False)``: ``datasets`` 4 and later decode audio
through torchcodec, which is not usable here, and the encoded bytes are what the sha256 of
each file is computed over. :func:`audio_payload` returns those bytes (reading the file
when a row refers to one by path) and :func:`probe_audio` reads rate, channels and length
with soundfile.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = [
    "AudioProbe",
    "HFSource",
    "HubError",
    "audio_columns",
    "audio_payload",
    "column_names",
    "file_extension",
    "iter_rows",
    "load_split",
    "missing_columns",
    "parse_hf_spec",
    "probe_audio",
    "resolve_revision",
]

logger = logging.getLogger(__name__)

#: Install hint for the optional dependency.
DATASETS_INSTALL = "pip install 'urgentbench[data]' (the Hugging Face datasets package)"

_DATA_FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".jsonl": "json", ".json": "json", ".csv": "csv"}


class HubError(ValueError):
    """A dataset that cannot be loaded; the message is one line naming the source and the fix."""


@dataclass(frozen=True)
class HFSource:
    """One split of one configuration of a Hugging Face dataset.

    Args:
        path: A hub repository id (``owner/name``) or a local folder or file.
        config: Configuration name (``None``: the dataset's default).
        split: Split name (``None``: the only split, or an error naming the splits).
        revision: Hub branch, tag or commit (``None``: the default branch); ignored for
            local copies.
    """

    path: str
    config: str | None = None
    split: str | None = None
    revision: str | None = None

    @property
    def is_local(self) -> bool:
        """True when ``path`` is a local folder or file (not a hub repository id)."""
        return Path(self.path).expanduser().exists()

    def describe(self) -> str:
        """``path (config X, split Y, revision Z)`` for messages."""
        parts = [f"config {self.config}" if self.config else "", f"split {self.split}" if self.split else ""]
        if not self.is_local:
            parts.append(f"revision {self.revision or 'main'}")
        inner = ", ".join(p for p in parts if p)
        return f"{self.path} ({inner})" if inner else self.path


def parse_hf_spec(spec: str, revision: str | None = None) -> HFSource:
    """Parse ``REPO``, ``REPO:CONFIG`` or ``REPO:CONFIG:SPLIT`` (an empty CONFIG means the default).

    A local path that exists is taken whole, even when it contains ``:``.

    Raises:
        ValueError: For an empty repository or more than three parts.
    """
    spec = spec.strip()
    if Path(spec).expanduser().exists():
        return HFSource(spec, revision=revision)
    parts = spec.split(":")
    if not parts[0] or len(parts) > 3:
        raise ValueError(f"--hf {spec!r}: expected REPO, REPO:CONFIG or REPO:CONFIG:SPLIT")
    config = parts[1] or None if len(parts) > 1 else None
    split = parts[2] or None if len(parts) > 2 else None
    return HFSource(parts[0], config, split, revision)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise HubError(f"loading Hugging Face datasets needs the datasets package: {DATASETS_INSTALL}") from None
    return datasets


def resolve_revision(repo: str, revision: str | None, *, from_hint: str = "") -> str:
    """The commit sha that ``revision`` (default: the default branch) of a hub dataset points to.

    Args:
        repo: ``owner/name``.
        revision: Branch, tag or commit; None for the default branch.
        from_hint: What to do instead when the hub cannot be reached (appended to the message).

    Raises:
        HubError: One line naming the repository and revision: unreachable hub (offline mode
            or no network), unknown repository, unknown revision, gated or private dataset.
    """
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hub_errors

    where = f"{repo} at revision {revision or 'main'}"
    hint = f"; {from_hint}" if from_hint else ""
    try:
        info = HfApi().dataset_info(repo, revision=revision)
    except hub_errors.RevisionNotFoundError:
        raise HubError(f"dataset {repo}: revision {revision!r} does not exist (any more){hint}") from None
    except hub_errors.GatedRepoError:
        raise HubError(
            f"dataset {where} is gated: accept its terms on the hub and log in (huggingface-cli login){hint}"
        ) from None
    except hub_errors.RepositoryNotFoundError:
        raise HubError(f"dataset {repo} not found on the Hugging Face hub (or private){hint}") from None
    except Exception as exc:  # offline mode, DNS failure, refused connection, HTTP 5xx ...
        raise HubError(f"cannot reach the Hugging Face hub to load {where} ({_first_line(exc)}){hint}") from None
    sha = getattr(info, "sha", None)
    if not sha:
        raise HubError(f"dataset {where}: the hub did not report a commit for this revision{hint}")
    return str(sha)


def _pick_split(obj: Any, source: HFSource) -> Any:
    """The split of a DatasetDict (or the dataset itself)."""
    datasets = _import_datasets()
    if isinstance(obj, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        names = list(obj.keys())
        if source.split is None:
            if len(names) == 1:
                return obj[names[0]]
            raise HubError(f"{source.describe()}: several splits ({', '.join(names)}); name one")
        if source.split not in obj:
            raise HubError(f"{source.describe()}: no split {source.split!r}; splits: {', '.join(names)}")
        return obj[source.split]
    return obj


def _load_local(source: HFSource) -> Any:
    datasets = _import_datasets()
    path = Path(source.path).expanduser().resolve()
    if path.is_dir() and source.config and (path / source.config).is_dir() and _is_saved(path / source.config):
        return _pick_split(datasets.load_from_disk(str(path / source.config)), source)
    if path.is_dir() and _is_saved(path):
        return _pick_split(datasets.load_from_disk(str(path)), source)
    if path.is_file():
        builder = _DATA_FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise HubError(f"{path}: not a dataset file (.parquet, .arrow, .jsonl, .json or .csv) or folder")
        loaded = datasets.load_dataset(builder, data_files={source.split or "data": str(path)}, streaming=True)
        return _pick_split(loaded, replace(source, split=source.split or "data"))
    kwargs: dict[str, Any] = {"streaming": True}
    if source.split is not None:
        kwargs["split"] = source.split
    return _pick_split(datasets.load_dataset(str(path), source.config, **kwargs), source)


def _is_saved(folder: Path) -> bool:
    """A ``save_to_disk`` folder (a Dataset or a DatasetDict)."""
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


def load_split(source: HFSource, *, from_hint: str = "") -> tuple[Any, str | None]:
    """Open one split of a dataset with its audio columns undecoded.

    Args:
        source: The dataset split.
        from_hint: What to do instead when the hub cannot be reached (for the message).

    Returns:
        ``(dataset, commit)``: an iterable (Dataset or IterableDataset) whose rows are
        dicts, and the resolved hub commit (None for a local copy).

    Raises:
        HubError: One line: missing package, unreachable hub, unknown repository, revision,
            configuration or split, unreadable local copy.
    """
    datasets = _import_datasets()
    commit = None
    try:
        if source.is_local:
            dataset = _load_local(source)
        else:
            commit = resolve_revision(source.path, source.revision, from_hint=from_hint)
            kwargs: dict[str, Any] = {"revision": commit, "streaming": True}
            if source.split is not None:
                kwargs["split"] = source.split
            dataset = _pick_split(datasets.load_dataset(source.path, source.config, **kwargs), source)
    except HubError:
        raise
    except Exception as exc:  # datasets raises ValueError, FileNotFoundError, ConnectionError, DatasetNotFoundError...
        hint = f"; {from_hint}" if from_hint and not source.is_local else ""
        raise HubError(f"cannot load {source.describe()}: {_first_line(exc)}{hint}") from None
    columns = audio_columns(dataset)
    for name in columns:
        dataset = dataset.cast_column(name, datasets.Audio(decode=False))
    logger.info("opened %s (audio columns: %s)", source.describe(), ", ".join(columns) or "none")
    return dataset, commit


def audio_columns(dataset: Any) -> list[str]:
    """Names of the columns whose feature is ``datasets.Audio``."""
    datasets = _import_datasets()
    features = getattr(dataset, "features", None) or {}
    return [name for name, feature in features.items() if isinstance(feature, datasets.Audio)]


def column_names(dataset: Any) -> list[str]:
    """The dataset's columns (from its features; for a stream without features, from the first row)."""
    features = getattr(dataset, "features", None)
    if features:
        return list(features)
    for row in dataset:
        return list(row)
    return []


def iter_rows(dataset: Any) -> Iterator[dict[str, Any]]:
    """Rows of a loaded split as plain dicts, in order."""
    for row in dataset:
        yield dict(row)


def audio_payload(value: Any, base: str | os.PathLike | None = None) -> tuple[bytes, str]:
    """The encoded bytes of one audio cell and a file name for them.

    Args:
        value: An undecoded ``Audio`` cell (``{"bytes": ..., "path": ...}``), raw bytes, or
            a path.
        base: Folder a relative ``path`` is resolved against (a local copy's folder).

    Returns:
        ``(bytes, name)``; ``name`` is the cell's file name (may be empty).

    Raises:
        ValueError: For an empty cell or a path that cannot be read (one line).
    """
    if value is None:
        raise ValueError("no audio (null)")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value), ""
    if isinstance(value, (str, os.PathLike)):
        value = {"bytes": None, "path": str(value)}
    if not isinstance(value, Mapping):
        raise ValueError(f"not an audio cell ({type(value).__name__})")
    data, path = value.get("bytes"), value.get("path")
    name = Path(path).name if path else ""
    if data:
        return bytes(data), name
    if not path:
        raise ValueError("audio cell has neither bytes nor a path")
    file = Path(path)
    if not file.is_absolute() and base is not None:
        file = Path(base) / file
    try:
        return file.read_bytes(), name
    except OSError as exc:
        raise ValueError(f"audio file {file} cannot be read ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class AudioProbe:
    """What soundfile reports about encoded audio."""

    sample_rate: int
    channels: int
    frames: int
    format: str


def probe_audio(data: bytes) -> AudioProbe:
    """Rate, channels, frames and container format of encoded audio (WAV, FLAC, OGG, ...).

    Raises:
        ValueError: When libsndfile cannot read it (one line).
    """
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
    except Exception as exc:  # LibsndfileError, RuntimeError, TypeError
        reason = re.sub(r"^Error opening <[^>]*>: ", "", _first_line(exc))
        raise ValueError(f"unreadable audio ({reason})") from None
    return AudioProbe(int(info.samplerate), int(info.channels), int(info.frames), str(info.format))


#: File extension for each soundfile container format.
EXTENSIONS = {"WAV": ".wav", "WAVEX": ".wav", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3", "AIFF": ".aiff"}


def file_extension(probe: AudioProbe, name: str = "") -> str:
    """The extension to store encoded audio under: its container's (``.flac``), else the cell name's."""
    ext = EXTENSIONS.get(probe.format.upper())
    if ext:
        return ext
    suffix = Path(name).suffix.lower()
    return suffix if suffix else ".audio"


def missing_columns(available: Sequence[str], wanted: Mapping[str, str | None]) -> list[str]:
    """The mapped column names (role -> column) that the dataset lacks, as ``role 'column'``."""
    have = set(available)
    return [f"{role} column {col!r}" for role, col in wanted.items() if col and col not in have]
