"""Assets of the MaskSR systems: the DAC codec, the HuBERT teacher, and (user-trained) checkpoints.

* ``dac-44khz``: Descript Audio Codec 44.1 kHz in ``transformers`` format
  (huggingface.co/descript/dac_44khz), MIT licence. Needed for training and inference.
* ``hubert-base-ls960`` (defined with the SSL metrics, :mod:`urgentbench.metrics._ssl`):
  HuBERT base pre-trained on LibriSpeech 960 h, MaskSR2's teacher; needed for training only.
* ``masksr-S`` ... ``masksr2-L``: one checkpoint per system. **No public checkpoint
  exists** (the authors released neither code nor weights), so these assets have no
  source: a user trains a model (``urgentbench train``) and installs it with
  ``urgentbench assets add masksr2-L --from runs/masksr2-L/model.safetensors``. The copy
  installed first is recorded and verified from then on (unpinned files, trust on first use).

Hugging Face publishes no digest that can be checked offline, so the codec files are
unpinned as well (their sha256 is recorded when fetched or added); the repository's
commit could not be looked up here, so the download follows ``main``.

:mod:`urgentbench.systems` registers these objects in the asset registry on its first
lookup (:data:`ASSET_PINS`), so listing assets imports this module but never torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from urgentbench.assets import Asset, AssetError, AssetFile, DownloadSource

_HF = "https://huggingface.co"

DAC_44KHZ = Asset(
    name="dac-44khz",
    description="Descript Audio Codec 44.1 kHz (9 x 1024 codebooks, hop 512), transformers format; MaskSR's tokenizer",
    licence="MIT (descript-audio-codec weights, Descript Inc.)",
    homepage=f"{_HF}/descript/dac_44khz",
    files=(AssetFile("config.json"), AssetFile("model.safetensors")),
    sources=(DownloadSource(urls={
        name: (f"{_HF}/descript/dac_44khz/resolve/main/{name}",) for name in ("config.json", "model.safetensors")
    }),),
)

#: File name of a checkpoint inside its asset folder.
CHECKPOINT_FILE = "model.safetensors"


@dataclass(frozen=True)
class CheckpointAsset(Asset):
    """A checkpoint that nobody publishes: the only ways to get it are training it or adding a local file.

    Args:
        variant: ``masksr`` or ``masksr2``.
        size: ``S``, ``M`` or ``L``.
    """

    variant: str = "masksr2"
    size: str = "L"

    def train_command(self) -> str:
        """The command that trains this checkpoint."""
        return (f"urgentbench train {self.variant} --size {self.size} --clean DIR --noise DIR "
                f"--out runs/{self.name}")

    def fix_commands(self) -> list[str]:
        """Train, then add the result; or add any local checkpoint."""
        return [f"{self.train_command()} && urgentbench assets add {self.name} --from runs/{self.name}/{CHECKPOINT_FILE}",
                f"urgentbench assets add {self.name} --from FILE"]

    def problem(self, deep: bool = True) -> str | None:
        """Say that no public checkpoint exists and how to train or add one (None when installed)."""
        status = self.status(deep, cached=True)
        if status.state == "missing":
            label = "MaskSR2" if self.variant == "masksr2" else "MaskSR"
            return (
                f"no public {label} checkpoint exists (the authors released no code or weights); train one with "
                f"`{self.train_command()}`, then `urgentbench assets add {self.name} --from "
                f"runs/{self.name}/{CHECKPOINT_FILE}`, or pass --system-args checkpoint=PATH"
            )
        return super().problem(deep)

    def fetch(self, progress: bool = True, force: bool = False):
        """There is nothing to download: a present copy is returned, anything else raises.

        Raises:
            AssetError: With the train / add commands.
        """
        folder = self.directory()
        if not force and folder.exists() and self.status(deep=True).state == "present":
            return folder
        raise AssetError(self.problem() or f"asset '{self.name}' has no download source; fix: {self.fix()}")


def checkpoint_asset(variant: str, size: str) -> CheckpointAsset:
    """The checkpoint asset of system ``{variant}-{size}``."""
    label = "MaskSR2" if variant == "masksr2" else "MaskSR"
    return CheckpointAsset(
        name=f"{variant}-{size}",
        description=f"{label}-{size} checkpoint trained with urgentbench's recipe (no public checkpoint exists)",
        licence="whatever the trainer chooses (trained by the user; the codec's MIT and the data's licences apply)",
        homepage="https://arxiv.org/abs/2409.09357" if variant == "masksr2" else "https://arxiv.org/abs/2406.02092",
        files=(AssetFile(CHECKPOINT_FILE),),
        sources=(),
        variant=variant,
        size=size,
    )


CHECKPOINT_ASSETS = tuple(checkpoint_asset(v, s) for v in ("masksr", "masksr2") for s in ("S", "M", "L"))


MASKSR_S = CHECKPOINT_ASSETS[0]
MASKSR_M = CHECKPOINT_ASSETS[1]
MASKSR_L = CHECKPOINT_ASSETS[2]
MASKSR2_S = CHECKPOINT_ASSETS[3]
MASKSR2_M = CHECKPOINT_ASSETS[4]
MASKSR2_L = CHECKPOINT_ASSETS[5]

#: The assets of the MaskSR systems (registered by :mod:`urgentbench.systems`); the HuBERT
#: teacher is the SpeechBERTScore metric's ``hubert-base-ls960``.
ASSET_PINS = ((DAC_44KHZ, ()), *((asset, ()) for asset in CHECKPOINT_ASSETS))
