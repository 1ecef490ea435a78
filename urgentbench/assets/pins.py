"""What an asset is made of and where copies live: the pinned files, the cache folder, the digest cache.

The lowest layer of :mod:`urgentbench.assets`: no sources, no registry. Everything here
is plain data plus the cache folder's location and the remembered sha256 of files already
hashed (so that listings verify checksums without re-reading unchanged files).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from urgentbench.hashing import sha256_file

logger = logging.getLogger(__name__)

#: Environment variable that overrides the cache folder.
CACHE_ENV = "URGENTBENCH_CACHE"

#: File in an asset folder recording the digests of its unpinned files at install time.
PINS_FILE = ".urgentbench-pins.json"

#: File in the cache folder (beside ``assets/``) remembering the sha256 of asset files already
#: hashed, keyed by path and checked against the file's size, mtime and ctime (nanoseconds),
#: so that availability checks (``urgentbench ls``) verify checksums without re-reading files.
DIGEST_CACHE_FILE = "asset-sha256-cache.json"

#: The three states of an asset (see :meth:`urgentbench.assets.Asset.status`).
PRESENT = "present"
MISSING = "missing"
CORRUPT = "corrupt"

#: Serialises rewrites of the digest cache within a process.
_DIGEST_LOCK = threading.Lock()


class AssetError(RuntimeError):
    """An asset is missing, corrupt or cannot be obtained; the message says why and how to fix it."""


def cache_dir() -> Path:
    """Return the urgentbench cache folder.

    ``$URGENTBENCH_CACHE`` when set, else ``$XDG_CACHE_HOME/urgentbench``, else
    ``~/.cache/urgentbench``.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "urgentbench"



def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _digest_cache_path() -> Path:
    return cache_dir() / DIGEST_CACHE_FILE


def _read_digest_cache() -> dict[str, Any]:
    try:
        data = json.loads(_digest_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def hash_and_remember(path: Path) -> str:
    """sha256 of ``path`` (read in full), remembered in the digest cache for :func:`cached_sha256`.

    The digest is remembered only when the file's size, mtime and ctime did not change while
    it was read. A cache that cannot be written (read-only cache folder) is skipped.
    """
    before = _stamp(path)
    digest = sha256_file(path)
    if _stamp(path) != before:
        return digest
    with _DIGEST_LOCK:
        cache = {k: v for k, v in _read_digest_cache().items() if os.path.exists(k)}
        cache[str(Path(path).resolve())] = {"stat": before, "sha256": digest}
        target = _digest_cache_path()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{DIGEST_CACHE_FILE}.", suffix=".tmp", dir=target.parent)
            with os.fdopen(fd, "w") as fh:
                json.dump(cache, fh, sort_keys=True)
            os.replace(tmp, target)
        except OSError as exc:
            logger.debug("cannot write the digest cache %s: %s", target, exc)
    return digest


def cached_sha256(path: Path) -> str:
    """sha256 of ``path``, from the digest cache when the file's size, mtime and ctime are unchanged.

    Any change to the file (its bytes rewritten, even at the same size) changes its mtime or
    ctime, so it is hashed again; ``urgentbench ls`` stays fast for files already verified.
    """
    hit = _read_digest_cache().get(str(Path(path).resolve()))
    if isinstance(hit, dict) and hit.get("stat") == _stamp(path) and isinstance(hit.get("sha256"), str):
        return hit["sha256"]
    return hash_and_remember(path)


@dataclass(frozen=True)
class AssetFile:
    """One pinned file of an asset.

    Args:
        name: Path of the file inside the asset folder (``"model.bin"``).
        sha256: Expected hex sha256 of the complete file; empty for a partially pinned
            file (``sha256_prefix`` given) or an unpinned one (neither given: trust on
            first use, see the module docstring).
        size: Expected size in bytes; None when unknown (checked only when given).
        sha256_prefix: For a partially pinned file: the leading hex digits of its sha256
            that the publisher states (at least 8), used when the full digest is unknown.
    """

    name: str
    sha256: str = ""
    size: int | None = None
    sha256_prefix: str = ""

    def __post_init__(self) -> None:
        hexdigits = set("0123456789abcdef")
        if self.sha256:
            if len(self.sha256) != 64 or not set(self.sha256) <= hexdigits:
                raise ValueError(f"{self.name}: sha256 must be 64 lower-case hex digits")
            if self.sha256_prefix:
                raise ValueError(f"{self.name}: give either sha256 or sha256_prefix, not both")
        elif self.sha256_prefix and not (8 <= len(self.sha256_prefix) < 64 and set(self.sha256_prefix) <= hexdigits):
            raise ValueError(f"{self.name}: a sha256_prefix must have 8 to 63 lower-case hex digits")
        if self.size is not None and self.size < 0:
            raise ValueError(f"{self.name}: size must be non-negative")

    @property
    def unpinned(self) -> bool:
        """True when no digest is published: the copy installed first is recorded and trusted."""
        return not self.sha256 and not self.sha256_prefix

    @property
    def fully_pinned(self) -> bool:
        """True when the full sha256 and the size are known."""
        return bool(self.sha256) and self.size is not None

    def matches(self, digest: str) -> bool:
        """Whether a file with sha256 ``digest`` is this file (prefix match when partially pinned).

        An unpinned file matches any digest here; its installed copy is checked against the
        digest recorded at install time instead (:meth:`Asset.recorded_pins`).
        """
        if self.sha256:
            return digest == self.sha256
        return digest.startswith(self.sha256_prefix)

    def size_matches(self, size: int) -> bool:
        """Whether ``size`` bytes is this file's size (always true when the size is unknown)."""
        return self.size is None or size == self.size

    def expected(self) -> str:
        """The expectation in words: ``sha256 X (N B)`` or ``sha256 starting with X``."""
        if self.sha256:
            digest = f"sha256 {self.sha256}"
        elif self.sha256_prefix:
            digest = f"sha256 starting with {self.sha256_prefix}"
        else:
            digest = "any sha256 (unpinned)"
        return digest if self.size is None else f"{digest} ({self.size:,} B)"

    def pin_line(self) -> str:
        """``name size sha256`` (``?``, ``prefix:X`` or ``unpinned`` for what is not known), for digests."""
        size = "?" if self.size is None else str(self.size)
        if self.sha256:
            digest = self.sha256
        elif self.sha256_prefix:
            digest = "prefix:" + self.sha256_prefix
        else:
            digest = "unpinned"
        return f"{self.name} {size} {digest}\n"


@dataclass(frozen=True)
class AssetStatus:
    """The state of an asset's cached copy.

    Args:
        name: Asset name.
        state: ``"present"``, ``"missing"`` or ``"corrupt"``.
        detail: What is wrong (empty when present).
        folder: The cache folder that was checked.
        buildable: True when a local source (installed packages) can produce the files
            without a download; such an asset is built on first use.
    """

    name: str
    state: str
    detail: str
    folder: Path
    buildable: bool = False
