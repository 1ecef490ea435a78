"""DEMUCS dns64 (causal, H=64, trained on DNS Challenge data); the wrapper is :mod:`urgentbench.systems.demucs`."""

from urgentbench.systems.demucs import DemucsSystem


class DemucsDNS64(DemucsSystem):
    """Official DEMUCS dns64 weights (asset ``demucs-dns64``); options as :class:`DemucsSystem`."""

    asset = "demucs-dns64"
    hidden = 64
