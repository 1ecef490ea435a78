"""ESPnet's speech-to-text inference code, run from its pinned release file.

URGENT decodes with ESPnet's own classes: ``espnet2.bin.s2t_inference.Speech2Text`` (OWSM
v3.1, WER/CER) and ``espnet2.bin.s2t_inference_ctc.Speech2TextGreedySearch`` (OWSM-CTC v4,
language identification). ``pip install espnet`` cannot go beside urgentbench: its metadata
pulls in a different torch and a long list of packages for other tasks (TTS front ends,
Kaldi I/O, Hydra, torchaudio...). So, as for NISQA's code, the ``espnet`` 202511 wheel
from the package index is an asset (``espnet-202511``, pinned by sha256 and size, fetched
by ``urgentbench assets fetch espnet-202511``) whose ``espnet`` and ``espnet2`` packages
are imported from that file (:class:`urgentbench.assets.PackageCode`).

The few packages the S2T inference path really calls are ordinary dependencies
(:data:`PACKAGES`: sentencepiece, typeguard, humanfriendly, torch-complex, PyYAML,
librosa). Importing ``espnet2.bin.s2t_inference`` also imports, at module level, modules
of tasks it never runs (speech enhancement beamformers, state-space decoders, TTS text
front ends, Kaldi readers), which in turn import packages that are not installed here
(:data:`IMPORT_ONLY`, torchaudio among them, which has no release for torch 2.13). While
ESPnet is imported, and only for those names and only when they are not installed, a
placeholder module stands in for each; every use of one raises :class:`ImportError`
naming the package, so nothing can silently run on a stand-in. The placeholders are
removed from ``sys.modules`` afterwards, so the rest of the process never sees them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types
from typing import Any

from urgentbench.assets import Asset, AssetFile, DownloadSource, PackageCode
from urgentbench.requirements import PackageRequirement, pip

#: The pinned ESPnet release.
ESPNET_VERSION = "202511"
ASSET = f"espnet-{ESPNET_VERSION}"
_WHEEL = f"espnet-{ESPNET_VERSION}-py3-none-any.whl"

ESPNET_CODE = Asset(
    name=ASSET,
    description=f"ESPnet {ESPNET_VERSION} (the wheel from PyPI; its S2T inference code is imported at run time)",
    licence="Apache-2.0 (ESPnet)",
    homepage=f"https://pypi.org/project/espnet/{ESPNET_VERSION}/",
    used_by=("metric owsm_wer", "metric lid_acc"),
    files=(AssetFile(_WHEEL, "4777fd8a121be9bfecd0db34fd8e14894a9b9dc8513db97d3bbded0c20ba886e", 2_214_596),),
    sources=(
        DownloadSource(
            urls={
                _WHEEL: (
                    "https://files.pythonhosted.org/packages/2f/c1/3920340e7669676ab1626204e582f596"
                    "16617e046fa98b7f7c9569520f16/" + _WHEEL,
                )
            }
        ),
    ),
)
#: ``espnet2`` and ``espnet`` (which it imports), both from :data:`ESPNET_CODE`.
ESPNET2_PACKAGE = PackageCode(asset=ASSET, archive=_WHEEL, package="espnet2", prefix="espnet2", also=("espnet",))
ESPNET_PACKAGE = PackageCode(asset=ASSET, archive=_WHEEL, package="espnet", prefix="espnet", also=("espnet2",))

#: The assets of this module (registered by :mod:`urgentbench.metrics`).
ASSET_PINS = ((ESPNET_CODE, ("espnet",)),)

#: What ESPnet's S2T inference path calls at run time.
PACKAGES = (
    PackageRequirement("torch", "pip install torch==2.13.0"),
    PackageRequirement("sentencepiece", pip("sentencepiece>=0.2")),
    PackageRequirement("typeguard", pip("typeguard>=4")),
    PackageRequirement("humanfriendly", pip("humanfriendly>=10")),
    PackageRequirement("torch_complex", pip("torch-complex>=0.4")),
    PackageRequirement("yaml", pip("pyyaml>=6")),
    PackageRequirement("librosa", pip("librosa>=0.10")),
    ESPNET2_PACKAGE,
)

#: Packages imported at module level by ESPnet modules that the S2T inference path loads
#: but never calls (checked: none of their attributes is used while decoding).
IMPORT_ONLY = (
    "torchaudio", "hydra", "omegaconf", "opt_einsum", "h5py", "kaldiio",
    "g2p_en", "jamo", "tacotron_cleaner", "jaconv", "einops", "configargparse",
)  # fmt: skip

_LOCK = threading.Lock()


class _Absent:
    """Any attribute of a placeholder module: unusable (calling or instantiating raises)."""

    _package = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ImportError(f"{self._package} is not installed (ESPnet imported it; urgentbench never runs that code)")


class _PlaceholderFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Stands in, last on ``sys.meta_path``, for the :data:`IMPORT_ONLY` packages that are not installed."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".", 1)[0] not in IMPORT_ONLY:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(spec.name, f"placeholder for the absent {spec.name} (urgentbench)")
        module.__path__ = []  # a package: submodule imports resolve to placeholders too
        top = spec.name.split(".", 1)[0]

        def getattr_(attribute: str) -> Any:
            if attribute.startswith("__"):
                raise AttributeError(attribute)
            return type(attribute, (_Absent,), {"_package": top})

        module.__getattr__ = getattr_  # type: ignore[method-assign]
        self.created.append(spec.name)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module is the placeholder itself."""


def import_espnet(*modules: str) -> list[types.ModuleType]:
    """Import ESPnet modules from the pinned release file (placeholders for :data:`IMPORT_ONLY`).

    Args:
        modules: Dotted module names (``"espnet2.bin.s2t_inference"``).

    Returns:
        The imported modules, in order.

    Raises:
        AssetError: When the ``espnet-202511`` asset is missing or corrupt (with the fix command).
        ImportError: When a package the inference path needs is not installed.
    """
    with _LOCK:
        ESPNET_PACKAGE.load()
        ESPNET2_PACKAGE.load()
        finder = _PlaceholderFinder()
        sys.meta_path.append(finder)
        try:
            return [importlib.import_module(name) for name in modules]
        finally:
            sys.meta_path.remove(finder)
            for name in finder.created:
                sys.modules.pop(name, None)
