"""MaskSR-L; the wrapper is :mod:`urgentbench.systems.masksr.system`."""

from urgentbench.systems.masksr.system import MaskSRSystem


class MaskSRL(MaskSRSystem):
    """MaskSR at size L (checkpoint: asset ``masksr-L`` or ``checkpoint=PATH``)."""

    variant = "masksr"
    size = "L"
