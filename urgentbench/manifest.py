"""Suite manifests: one :class:`Utterance` per JSONL line, degradations stored as parameters.

A manifest is the versioned artefact of a suite (URGENT's two-stage design): every
random decision is sampled once into it, and rendering from it is deterministic.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from urgentbench.hashing import sha256_file


class ManifestError(ValueError):
    """A manifest line that cannot be used; names the file, the line and the problem."""


@dataclass(frozen=True)
class DegradationSpec:
    """One step of a degradation chain: a registered degradation name and its parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"name": ..., "params": {...}}``."""
        return {"name": self.name, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DegradationSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(name=d["name"], params=dict(d.get("params") or {}))


class Transcript(str):
    """A transcript that knows its language (:attr:`Utterance.text` of an utterance with a ``language``).

    It is a plain ``str`` everywhere (equality, JSON, hashing); metrics receive the
    utterance's text as their ``transcript`` argument, so an ASR metric reads the
    language from it (``getattr(transcript, "language", None)``) without every metric's
    signature growing a parameter.
    """

    __slots__ = ("language",)

    def __new__(cls, text: str, language: str | None = None) -> Transcript:
        """``text`` in ``language`` (an ISO 639 code as the corpus gives it; None when unknown)."""
        obj = super().__new__(cls, text)
        obj.language = language
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (Transcript, (str(self), self.language))


@dataclass
class Utterance:
    """One test item of a suite.

    Args:
        id: Unique id; enhanced files are named ``<id>.flac``.
        sample_rate: Rate of the rendered noisy input and reference.
        clean: Clean source audio, relative to the suite folder (or absolute); None when
            the suite has no reference (real recordings).
        noisy: A recorded degraded input, used instead of simulating from ``clean``.
        text: Transcript of the speech, if known.
        speaker: Speaker id, if known.
        seed: Seed of the utterance (already used to sample the parameters below).
        degradations: The chain applied to ``clean`` to make the noisy input.
        tags: Labels for per-condition breakdowns (``{"condition": "noise+reverb"}``).
        render_sha256: sha256 of the rendered 16-bit noisy input, for bit-exact checks.
        language: Language of the speech (ISO 639 code as the corpus gives it, e.g. ``eng``
            or ``de``), if known; ASR metrics decode with it.
        noisy_sha256: sha256 of the recorded ``noisy`` file's bytes; rendering refuses a
            file that differs.
        clean_sha256: sha256 of the ``clean`` file's bytes; rendering refuses a file that
            differs.
    """

    id: str
    sample_rate: int
    clean: str | None = None
    noisy: str | None = None
    text: str | None = None
    speaker: str | None = None
    seed: int = 0
    degradations: list[DegradationSpec] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    render_sha256: str | None = None
    language: str | None = None
    noisy_sha256: str | None = None
    clean_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.text is not None and self.language:
            self.text = Transcript(self.text, self.language)

    def to_dict(self) -> dict[str, Any]:
        """JSON form of one manifest line (fields with None are omitted)."""
        d: dict[str, Any] = {"id": self.id, "sample_rate": self.sample_rate}
        for key in ("clean", "noisy", "text", "speaker"):
            if getattr(self, key) is not None:
                d[key] = str(getattr(self, key))
        d["seed"] = self.seed
        d["degradations"] = [s.to_dict() for s in self.degradations]
        d["tags"] = dict(self.tags)
        for key in ("render_sha256", "language", "noisy_sha256", "clean_sha256"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Utterance:
        """Build from a parsed manifest line.

        Raises:
            ManifestError: When a required field is missing or has the wrong type.
        """
        if not isinstance(d, dict):
            raise ManifestError("a manifest line must be a JSON object")
        for key, typ in (("id", str), ("sample_rate", int)):
            if not isinstance(d.get(key), typ):
                raise ManifestError(f"field {key!r} missing or not {typ.__name__}")
        if d.get("clean") is None and d.get("noisy") is None:
            raise ManifestError(f"utterance {d['id']!r} has neither 'clean' nor 'noisy'")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ManifestError(f"utterance {d['id']!r} has unknown field(s) {sorted(unknown)}")
        return cls(
            id=d["id"],
            sample_rate=d["sample_rate"],
            clean=d.get("clean"),
            noisy=d.get("noisy"),
            text=d.get("text"),
            speaker=d.get("speaker"),
            seed=int(d.get("seed", 0)),
            degradations=[DegradationSpec.from_dict(s) for s in d.get("degradations") or []],
            tags={str(k): str(v) for k, v in (d.get("tags") or {}).items()},
            render_sha256=d.get("render_sha256"),
            language=d.get("language"),
            noisy_sha256=d.get("noisy_sha256"),
            clean_sha256=d.get("clean_sha256"),
        )

    @property
    def has_reference(self) -> bool:
        """True when a clean reference exists (intrusive metrics can run)."""
        return self.clean is not None


def read_manifest(path: str | os.PathLike) -> Iterator[Utterance]:
    """Lazily read a JSONL manifest.

    Raises:
        ManifestError: Naming the file and line of the first bad line.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield Utterance.from_dict(json.loads(line))
            except (json.JSONDecodeError, ManifestError, TypeError, ValueError) as exc:
                raise ManifestError(f"{path}:{lineno}: {exc}") from exc


def write_manifest(path: str | os.PathLike, utterances: Iterable[Utterance]) -> str:
    """Write utterances as JSONL (ids must be unique) and return the file's sha256."""
    path = Path(path)
    seen: set[str] = set()
    lines = []
    for utt in utterances:
        if utt.id in seen:
            raise ManifestError(f"{path}: duplicate utterance id {utt.id!r}")
        seen.add(utt.id)
        lines.append(json.dumps(utt.to_dict(), sort_keys=True, ensure_ascii=False))
    blob = ("\n".join(lines) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return hashlib.sha256(blob).hexdigest()


#: sha256 of a file's bytes (the one implementation, :func:`urgentbench.hashing.sha256_file`).
file_sha256 = sha256_file
