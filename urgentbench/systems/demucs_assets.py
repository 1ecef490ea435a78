"""The official DEMUCS denoiser weights (facebookresearch/denoiser), one asset per ``demucs-*`` system.

Kept apart from the wrapper (:mod:`urgentbench.systems.demucs`) so that listing assets and
system cards imports no system code.
"""

from __future__ import annotations

from urgentbench.assets import Asset, AssetFile, DownloadSource

#: DEMUCS (facebookresearch/denoiser) pre-trained weights, as listed in denoiser/pretrained.py
#: of denoiser 0.1.5. Each file name ends with the first 16 hex digits of its sha256 (the
#: torch.hub ``check_hash`` convention); the full digests and sizes are not published, so
#: these assets are partially pinned (sha256 prefix only).
_DEMUCS_ROOT = "https://dl.fbaipublicfiles.com/adiyoss/denoiser/"
_DEMUCS_LICENCE = (
    "CC-BY-NC-4.0 (facebookresearch/denoiser code and pre-trained models, Facebook, Inc.: "
    "non-commercial use only, attribution required; LICENSE of the repository and of denoiser 0.1.5)"
)


def _demucs_asset(name: str, stem: str, prefix: str, description: str) -> Asset:
    filename = f"{stem}-{prefix}.th"
    return Asset(
        name=name,
        description=description,
        licence=_DEMUCS_LICENCE,
        homepage="https://github.com/facebookresearch/denoiser",
        files=(AssetFile(filename, sha256_prefix=prefix),),
        sources=(DownloadSource(urls={filename: (_DEMUCS_ROOT + filename,)}),),
    )


#: The official weights, asset ``demucs-<model>`` for each of :data:`MODELS`.
DEMUCS_DNS48 = _demucs_asset(
    "demucs-dns48", "dns48", "11decc9d8e3f0998", "DEMUCS denoiser, causal, H=48, trained on DNS (16 kHz)"
)
DEMUCS_DNS64 = _demucs_asset(
    "demucs-dns64", "dns64", "a7761ff99a7d5bb6", "DEMUCS denoiser, causal, H=64, trained on DNS (16 kHz)"
)
DEMUCS_MASTER64 = _demucs_asset(
    "demucs-master64",
    "master64",
    "8a5dfb4bb92753dd",
    "DEMUCS denoiser, causal, H=64, trained on DNS and Valentini (16 kHz)",
)

#: The assets of the DEMUCS systems (registered by :mod:`urgentbench.systems`).
ASSET_PINS = ((DEMUCS_DNS48, ()), (DEMUCS_DNS64, ()), (DEMUCS_MASTER64, ()))
