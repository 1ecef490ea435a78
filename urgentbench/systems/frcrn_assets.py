"""The FRCRN_SE_16K checkpoint (``alibabasglab/FRCRN_SE_16K`` on Hugging Face), asset ``frcrn-se-16k``.

Kept apart from the wrapper (:mod:`urgentbench.systems.frcrn`) so that listing assets and
system cards imports no system code.

Facts: ClearerVoice-Studio's inference reads ``checkpoints/FRCRN_SE_16K/last_best_checkpoint``
(a text file naming the weights file) and downloads the repository
``alibabasglab/FRCRN_SE_16K`` from Hugging Face when it is missing; the weights file there is
``last_best_checkpoint.pt`` (161 MB), a ``torch.save`` dictionary whose ``"model"`` entry is
the network's state dict. The publisher's ClearVoice Space holds the same weights
(``checkpoints/FRCRN_SE_16K/model.ckpt-88-8491630.pt``), and Hugging Face's Git LFS record
shown there gives the sha256 pinned below; the size is the one third-party ports of the
model repository's ``last_best_checkpoint.pt`` record for the same digest.
"""

from __future__ import annotations

from urgentbench.assets import Asset, AssetFile, DownloadSource

#: Registry name of the asset.
ASSET = "frcrn-se-16k"
#: The weights file as published.
CHECKPOINT_FILE = "last_best_checkpoint.pt"

_HF = "https://huggingface.co/alibabasglab/FRCRN_SE_16K/resolve"
#: The model repository's revision that third-party ports pin for this file; ``main`` is the mirror.
_HF_REVISION = "3766e6a64b0d8cb58f08d913d617bf129f11ed53"

#: The published checkpoint (sha256 of Hugging Face's LFS record, see the module docstring).
FRCRN_ASSET = Asset(
    name=ASSET,
    description="FRCRN_SE_16K speech enhancement checkpoint (ClearerVoice-Studio, 16 kHz)",
    licence="Apache-2.0 (alibabasglab/FRCRN_SE_16K on Hugging Face; ClearerVoice-Studio, Alibaba)",
    homepage="https://huggingface.co/alibabasglab/FRCRN_SE_16K",
    files=(AssetFile(CHECKPOINT_FILE, "b22256adbb91b68cf5a3db8f6657a4fb17066eecd5f069803e59c186c1cf3ebb", 161_053_751),),
    sources=(
        DownloadSource(
            urls={CHECKPOINT_FILE: (f"{_HF}/{_HF_REVISION}/{CHECKPOINT_FILE}", f"{_HF}/main/{CHECKPOINT_FILE}")}
        ),
    ),
)
#: The assets of the FRCRN system (registered by :mod:`urgentbench.systems`).
ASSET_PINS = ((FRCRN_ASSET, ("frcrn",)),)
