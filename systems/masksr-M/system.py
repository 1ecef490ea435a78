"""MaskSR-M; the wrapper is :mod:`urgentbench.systems.masksr.system`."""

from urgentbench.systems.masksr.system import MaskSRSystem


class MaskSRM(MaskSRSystem):
    """MaskSR at size M (checkpoint: asset ``masksr-M`` or ``checkpoint=PATH``)."""

    variant = "masksr"
    size = "M"
