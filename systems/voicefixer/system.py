"""VoiceFixer (general speech restoration, 44.1 kHz); the wrapper is :mod:`urgentbench.systems.voicefixer`."""

from urgentbench.systems.voicefixer import VoiceFixerSystem


class VoiceFixer(VoiceFixerSystem):
    """Official VoiceFixer checkpoints (asset ``voicefixer``), mode 0; options as :class:`VoiceFixerSystem`."""
