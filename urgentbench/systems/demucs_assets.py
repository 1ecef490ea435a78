"""The official DEMUCS denoiser weights (facebookresearch/denoiser), one asset per ``demucs-*`` system.

Kept apart from the wrapper (:mod:`urgentbench.systems.demucs`) so that listing assets and
system cards imports no system code.
"""

from __future__ import annotations

from urgentbench.assets import Asset, AssetFile, DownloadSource, PackageCode

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

#: The DEMUCS network code: denoiser 0.1.5's source archive as published on PyPI (there is no
#: wheel). The package cannot be a dependency: it asks for torchaudio (whose releases pin one
#: torch each), sounddevice (PortAudio) and hydra-core<1 for its training and live scripts,
#: none of which ``denoiser/demucs.py`` imports. Only ``denoiser/`` is taken from the archive.
_DENOISER_SDIST = "denoiser-0.1.5.tar.gz"
DENOISER_CODE = Asset(
    name="denoiser-0.1.5",
    description="DEMUCS network code (the denoiser 0.1.5 source archive from PyPI, imported at run time)",
    licence=_DEMUCS_LICENCE,
    homepage="https://pypi.org/project/denoiser/0.1.5/",
    files=(AssetFile(_DENOISER_SDIST, "f8a6a67838872d9c374a3565eb9bf04b6212a60b37f00b14cbd1e2441124cccd", 49_764),),
    sources=(
        DownloadSource(
            urls={
                _DENOISER_SDIST: (
                    "https://files.pythonhosted.org/packages/5b/ad/13bfc4d0f4e9af97950deec31a018ddf7b"
                    "09fd56a4cabeebf22d7450e175/" + _DENOISER_SDIST,
                )
            }
        ),
    ),
)
#: The ``denoiser`` package, imported from :data:`DENOISER_CODE`.
DENOISER_PACKAGE = PackageCode(
    asset="denoiser-0.1.5", archive=_DENOISER_SDIST, package="denoiser", prefix="denoiser-0.1.5/denoiser"
)

#: The assets of the DEMUCS systems (registered by :mod:`urgentbench.systems`).
ASSET_PINS = ((DEMUCS_DNS48, ()), (DEMUCS_DNS64, ()), (DEMUCS_MASTER64, ()), (DENOISER_CODE, ("denoiser",)))
