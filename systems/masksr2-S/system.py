"""MaskSR2-S; the wrapper is :mod:`urgentbench.systems.masksr.system`."""

from urgentbench.systems.masksr.system import MaskSRSystem


class MaskSR2S(MaskSRSystem):
    """MaskSR2 at size S (checkpoint: asset ``masksr2-S`` or ``checkpoint=PATH``)."""

    variant = "masksr2"
    size = "S"
