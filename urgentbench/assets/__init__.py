"""Model assets: pinned files that metrics and systems load, verified by sha256 and cached locally.

An :class:`Asset` names a set of files (each pinned by size and sha256), says where they
come from, under which licence, and what needs them. Obtained copies live in the cache
folder ``$URGENTBENCH_CACHE/assets/<name>/`` (default ``~/.cache/urgentbench``, or
``$XDG_CACHE_HOME/urgentbench``).

An asset is in one of three states (:meth:`Asset.status`):

- **present**: every file is in the cache folder with its pinned size and sha256;
- **missing**: there is no cached copy;
- **corrupt**: a cached copy exists but a file is absent, has the wrong size or the
  wrong sha256.

How a copy is obtained is described by the asset's *sources*, tried in order:

- :class:`PackageSource` (local): the files ship inside installed Python packages,
  possibly split into parts that are concatenated (the Whisper base model is split
  across two packages because of the package index's size limit). A local source is
  used automatically on first use (:meth:`Asset.path`).
- :class:`DownloadSource` (remote): the files are downloaded from their upstream URLs
  (mirrors tried in order), with a progress bar, resumption and verification
  (:func:`urgentbench.data.download.download`). Nothing is ever downloaded implicitly:
  only ``urgentbench assets fetch NAME`` (:func:`fetch`) does.

Whatever the sources, ``urgentbench assets add NAME --from FILE`` (:func:`add`) installs
a local copy after checking it against the pins. A missing or corrupt asset is reported
with the exact commands that fix it (:meth:`Asset.problem`).

A file whose publisher states only a prefix of its sha256 (the torch.hub convention of a
hash prefix in the file name) is *partially pinned*: it is verified against that prefix
(``AssetFile.sha256_prefix``), its size is checked only when known, and ``urgentbench
assets ls`` says so. A full pin is preferred whenever the full digest is known.

A file whose publisher states no digest at all (a Hugging Face model file, say) is
*unpinned*: trust on first use. The sha256 and size of the copy that ``fetch`` or ``add``
installs are recorded next to it (``.urgentbench-pins.json`` in the asset folder); from
then on that copy is verified against the record like a pinned file, results name the
recorded digest in their provenance, and ``urgentbench assets ls`` shows the file as
unpinned with its recorded digest.

Files are handed out only after their sha256 matched (:meth:`Asset.path` hashes every
file once per process). Writes are atomic: files are assembled in a temporary folder
next to the final one, verified, and renamed into place, so a crash or a concurrent
worker never leaves a half-written asset under its final name.

The package is the asset *mechanics* only, one module per concern:

- :mod:`~urgentbench.assets.pins`: the pinned files, the cache folder, the digest cache;
- :mod:`~urgentbench.assets.sources`: package and download sources;
- :mod:`~urgentbench.assets.code`: upstream code imported from a pinned release file (:class:`PackageCode`);
- :mod:`~urgentbench.assets.asset`: :class:`Asset` (checks, fetch, add, atomic install);
- :mod:`~urgentbench.assets.registry`: the registry of assets and ``fetch``/``add``/``verify``.

It declares no asset: each pin is defined beside the metric or system that loads it and
registered by the metric and system registries (see :mod:`urgentbench.assets.registry`);
what needs each asset (``urgentbench assets ls``) is worked out by
:func:`urgentbench.asset_users.needed_by`, which may import both sides.
"""

from __future__ import annotations

import importlib
from typing import Any

from urgentbench.assets.asset import _VERIFIED, Asset
from urgentbench.assets.code import PackageCode
from urgentbench.assets.pins import (
    CACHE_ENV,
    CORRUPT,
    DIGEST_CACHE_FILE,
    MISSING,
    PINS_FILE,
    PRESENT,
    AssetError,
    AssetFile,
    AssetStatus,
    cache_dir,
    cached_sha256,
    hash_and_remember,
)
from urgentbench.assets.registry import ASSETS, add, fetch, get_asset, register_asset, verify
from urgentbench.assets.sources import DownloadSource, PackagePart, PackageSource, Source
from urgentbench.hashing import sha256_file

#: Names this module exported when it also held the built-in catalogue: each is now defined
#: beside its metric or system and is looked up in the registry by asset name on access.
_PINS_BY_NAME = {
    "WHISPER_BASE_CT2": "whisper-base-ct2",
    "NISQA_V2": "nisqa-v2",
    "NISQA_TTS": "nisqa-tts",
    "DEMUCS_DNS48": "demucs-dns48",
    "DEMUCS_DNS64": "demucs-dns64",
    "DEMUCS_MASTER64": "demucs-master64",
}
_OPENAI_WHISPER_PREFIX = "openai-whisper-"


def __getattr__(name: str) -> Any:
    """The former catalogue names (``NISQA_V2``, ``OPENAI_WHISPER``...) and ``needed_by``, resolved lazily."""
    if name in _PINS_BY_NAME:
        return get_asset(_PINS_BY_NAME[name])
    if name == "OPENAI_WHISPER":
        return {
            n[len(_OPENAI_WHISPER_PREFIX) :]: get_asset(n)
            for n in ASSETS.names()
            if n.startswith(_OPENAI_WHISPER_PREFIX)
        }
    if name == "needed_by":
        # the listing layer imports metrics and systems; loaded by name, like a registry target
        return importlib.import_module("urgentbench.asset_users").needed_by
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ASSETS",
    "CACHE_ENV",
    "CORRUPT",
    "DIGEST_CACHE_FILE",
    "MISSING",
    "PINS_FILE",
    "PRESENT",
    "Asset",
    "AssetError",
    "AssetFile",
    "AssetStatus",
    "DownloadSource",
    "PackageCode",
    "PackagePart",
    "PackageSource",
    "Source",
    "_VERIFIED",
    "add",
    "cache_dir",
    "cached_sha256",
    "fetch",
    "get_asset",
    "hash_and_remember",
    "register_asset",
    "sha256_file",
    "verify",
]
