"""MaskSR2-M; the wrapper is :mod:`urgentbench.systems.masksr.system`."""

from urgentbench.systems.masksr.system import MaskSRSystem


class MaskSR2M(MaskSRSystem):
    """MaskSR2 at size M (checkpoint: asset ``masksr2-M`` or ``checkpoint=PATH``)."""

    variant = "masksr2"
    size = "M"
