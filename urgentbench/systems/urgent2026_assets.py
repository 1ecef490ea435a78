"""The URGENT 2026 track-1 baseline checkpoints (``urgent2026-bsrnn``, ``urgent2026-bsrnn-flow``).

The organisers publish both on Hugging Face (``lichenda/icassp_2026_urgent_baseline``, as
linked from the baseline repository's readme): ``bsrnn.ckpt`` (discriminative BSRNN) and
``flow_bsrnn.ckpt`` (BSRNN-Flow), PyTorch Lightning checkpoints of models trained on the
700-hour "700h-TBF" subset of the challenge data. No digest is published, so the files
are unpinned: the sha256 and size of the copy that ``urgentbench assets fetch`` or ``assets
add`` installs are recorded, and it is verified against that record from then on. The
repository's commit could not be looked up here, so the download follows ``main``.

Kept apart from the systems (:mod:`urgentbench.systems.urgent2026`) so that listing assets
and system cards imports no system code (and no torch).
"""

from __future__ import annotations

from urgentbench.assets import Asset, AssetFile, DownloadSource

_REPO = "https://huggingface.co/lichenda/icassp_2026_urgent_baseline"
_LICENCE = (
    "Apache-2.0 (the URGENT 2026 track-1 baseline repository, urgent-challenge/urgent2026_challenge_track1, "
    "which publishes these checkpoints); the training data's own licences apply to the data"
)
#: File name of each checkpoint in the Hugging Face repository (and in the asset folder).
BSRNN_FILE = "bsrnn.ckpt"
FLOW_FILE = "flow_bsrnn.ckpt"


def _asset(name: str, filename: str, description: str) -> Asset:
    return Asset(
        name=name,
        description=description,
        licence=_LICENCE,
        homepage=_REPO,
        files=(AssetFile(filename),),
        sources=(DownloadSource(urls={filename: (f"{_REPO}/resolve/main/{filename}",)}),),
    )


URGENT2026_BSRNN = _asset(
    "urgent2026-bsrnn",
    BSRNN_FILE,
    "URGENT 2026 track-1 discriminative baseline: BSRNN (196 channels, 6 layers) Lightning checkpoint, 700h-TBF",
)
URGENT2026_BSRNN_FLOW = _asset(
    "urgent2026-bsrnn-flow",
    FLOW_FILE,
    "URGENT 2026 track-1 generative baseline: BSRNN-Flow (384 channels, 6 layers) Lightning checkpoint "
    "with EMA weights, 700h-TBF",
)

#: The assets of the URGENT 2026 baseline systems (registered by :mod:`urgentbench.systems`).
ASSET_PINS = ((URGENT2026_BSRNN, ()), (URGENT2026_BSRNN_FLOW, ()))
