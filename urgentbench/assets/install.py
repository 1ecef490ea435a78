"""How a verified asset folder is put in place: hashing copies, a lock between processes, an atomic swap."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from urgentbench.hashing import CHUNK

__all__ = ["copy_hashing", "file_lock", "install_folder"]


def copy_hashing(src: Path, dest: Path) -> tuple[int, str]:
    """Copy ``src`` to ``dest`` and return the size and sha256 of the bytes written."""
    digest = hashlib.sha256()
    size = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        for block in iter(lambda: fin.read(CHUNK), b""):
            digest.update(block)
            fout.write(block)
            size += len(block)
    return size, digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (POSIX ``flock``; a no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent fetches of one asset are not guarded
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def install_folder(tmp: Path, folder: Path) -> None:
    """Move the verified folder ``tmp`` to ``folder`` atomically, replacing an existing copy."""
    try:
        os.rename(tmp, folder)
        return
    except OSError:
        if not folder.exists():
            raise
    # ``folder`` exists: another process just built it, a broken copy, or a copy being
    # replaced (fetch --force, add). Move it aside first (atomic), then move ours in.
    trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
    try:
        os.rename(folder, trash / "asset")
    except FileNotFoundError:
        pass  # removed concurrently
    try:
        os.rename(tmp, folder)
    except OSError:
        if not folder.exists():
            raise
        # Lost a race with a concurrent builder; its copy is verified like ours.
    shutil.rmtree(trash, ignore_errors=True)
