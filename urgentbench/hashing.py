"""sha256 of files and streams: the one implementation every stage uses (assets, manifests, caches)."""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

#: Read size for hashing (1 MiB).
CHUNK = 1 << 20


def sha256_stream(stream: BinaryIO) -> str:
    """Hex sha256 of everything left in a binary stream, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(CHUNK), b""):
        digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (opened as given: callers that take untrusted paths check them first)."""
    with open(path, "rb") as fh:
        return sha256_stream(fh)
