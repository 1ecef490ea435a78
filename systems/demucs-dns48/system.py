"""DEMUCS dns48 (causal, H=48, trained on DNS Challenge data); the wrapper is :mod:`urgentbench.systems.demucs`."""

from urgentbench.systems.demucs import DemucsSystem


class DemucsDNS48(DemucsSystem):
    """Official DEMUCS dns48 weights (asset ``demucs-dns48``); options as :class:`DemucsSystem`."""

    asset = "demucs-dns48"
    hidden = 48
