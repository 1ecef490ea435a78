"""MaskSR-S; the wrapper is :mod:`urgentbench.systems.masksr.system`."""

from urgentbench.systems.masksr.system import MaskSRSystem


class MaskSRS(MaskSRSystem):
    """MaskSR at size S (checkpoint: asset ``masksr-S`` or ``checkpoint=PATH``)."""

    variant = "masksr"
    size = "S"
