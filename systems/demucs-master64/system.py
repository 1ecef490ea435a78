"""DEMUCS master64 (causal, H=64, trained on DNS Challenge and Valentini data); the wrapper is :mod:`urgentbench.systems.demucs`."""

from urgentbench.systems.demucs import DemucsSystem


class DemucsMaster64(DemucsSystem):
    """Official DEMUCS master64 weights (asset ``demucs-master64``); options as :class:`DemucsSystem`."""

    asset = "demucs-master64"
    hidden = 64
