"""MaskSR2-L; the wrapper is :mod:`urgentbench.systems.masksr.system`."""

from urgentbench.systems.masksr.system import MaskSRSystem


class MaskSR2L(MaskSRSystem):
    """MaskSR2 at size L (checkpoint: asset ``masksr2-L`` or ``checkpoint=PATH``)."""

    variant = "masksr2"
    size = "L"
