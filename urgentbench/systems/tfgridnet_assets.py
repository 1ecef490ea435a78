"""The URGENT 2024 TF-GridNet baseline checkpoint (``wyz/tfgridnet_for_urgent24`` on Hugging Face).

Kept apart from the wrapper (:mod:`urgentbench.systems.tfgridnet`) so that listing assets
and system cards imports no system code (nor torch).

Facts, from the Hugging Face repository ``wyz/tfgridnet_for_urgent24`` (model card, file
tree, ``meta.yaml``, commit history):

* the model card calls it "a pre-trained baseline model for the URGENT 2024 Challenge",
  trained by Wangyou Zhang with ESPnet's ``urgent24`` recipe
  (``egs2/urgent24/enh1/conf/tuning/train_enh_tfgridnet.yaml``); licence tag CC-BY-4.0;
* ``meta.yaml``: ``model_file: exp/enh_train_enh_tfgridnet_raw/21epoch.pth``,
  ``train_config: exp/enh_train_enh_tfgridnet_raw/config.yaml``, espnet '202402' (a
  development build: the 202402 release has no TF-GridNetV3), torch 2.0.1;
* history of ``main``: 9230748 and e97826a (initial upload, 2024-06-28), 909ccbb
  "Update checkpoint" (2024-07-03), then README edits up to 85f2296 (2024-08-07).

Only abbreviated commit ids are published in what could be read here, so the URLs
follow ``main`` (whose checkpoint last changed in 909ccbb). Hugging Face states no
digest that can be checked offline: both files are unpinned, their sha256 and size are
recorded when first fetched or added and verified before every use.
"""

from __future__ import annotations

from urgentbench.assets import Asset, AssetFile, DownloadSource

#: Registry name of the asset (also the system's name).
ASSET = "urgent2024-tfgridnet"
#: The checkpoint (ESPnet enhancement-model state dict) and its training configuration.
CHECKPOINT = "21epoch.pth"
CONFIG = "config.yaml"

REPO = "wyz/tfgridnet_for_urgent24"
#: Revision the URLs follow; the last checkpoint change is commit 909ccbb (2024-07-03).
REVISION = "main"
EXP = "exp/enh_train_enh_tfgridnet_raw"
_BASE = f"https://huggingface.co/{REPO}/resolve/{REVISION}/{EXP}"

URGENT2024_TFGRIDNET = Asset(
    name=ASSET,
    description=f"URGENT 2024 baseline TF-GridNetV3 (ESPnet), checkpoint and config ({REPO}, {EXP})",
    licence="CC-BY-4.0 (wyz/tfgridnet_for_urgent24 model card: attribution required)",
    homepage=f"https://huggingface.co/{REPO}/tree/{REVISION}/{EXP}",
    used_by=(f"system {ASSET}",),
    files=(AssetFile(CHECKPOINT), AssetFile(CONFIG)),
    sources=(DownloadSource(urls={CHECKPOINT: (f"{_BASE}/{CHECKPOINT}",), CONFIG: (f"{_BASE}/{CONFIG}",)}),),
)

#: The assets of the TF-GridNet system (registered by :mod:`urgentbench.systems`).
ASSET_PINS = ((URGENT2024_TFGRIDNET, ()),)
