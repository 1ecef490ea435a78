"""RNNoise through ``pyrnnoise``'s bundled ``librnnoise`` (weights compiled into the library).

Loading: ``import pyrnnoise`` imports the package's high-level class, which needs
``audiolab`` (a heavy dependency not installed here). Only the ctypes binding
``pyrnnoise/rnnoise.py`` is needed; it is loaded from its file under a private module name
(it declares the C signatures of ``rnnoise_create``, ``rnnoise_process_frame`` and
``rnnoise_destroy`` on its own ``ctypes.CDLL`` handle, which nothing else shares).

Processing: the C function is called directly, frame by frame (480 samples = 10 ms at
48 kHz), on float32 samples on the 16-bit scale (``x * 32768``), and its output is scaled
back by 1/32768. The binding's ``process_mono_frame`` is not used: it converts the output
to ``int16`` with a plain cast (out-of-range values wrap around instead of clipping), and
it refuses float frames with samples outside [-1, 1] through an ``assert``.

Alignment and length: the output lags the input by 960 samples (20 ms; measured by
cross-correlation on speech). The input is extended at the end by its mirror image
(960 samples plus up to one frame, to a whole number of frames), the first 960 output
samples are dropped and the rest is cut to exactly the input length. The mirror image
gives the network a plausible continuation to finish the last 20 ms on (zero padding
makes it fade the end slightly more).

State: every file gets a fresh ``DenoiseState`` (``rnnoise_create``), destroyed
afterwards, so a file's output does not depend on the files before it.

Integrity: the weights are the ``rnnoise_arrays`` table of the library; :meth:`RNNoise.setup`
hashes that table (names, types, sizes and contents of all arrays), which is the same on
every platform, and checks it against the pinned digest.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from urgentbench.systems.base import System, mono_waveform

logger = logging.getLogger(__name__)

_RATE = 48000
_FRAME = 480
#: Output delay of the library in samples (20 ms at 48 kHz).
_DELAY = 960
#: RNNoise works on samples on the 16-bit scale.
_SCALE = 32768.0
#: sha256 over the library's weight table (see :func:`weights_digest`), pyrnnoise 0.4.5.
_WEIGHTS_SHA256 = "01112f122a411b72cb39c3df014f3c7079a8e3bb1b0c74b99791f9bda41d8a64"
#: Trained parameters counted from the weight table: float arrays of conv1, conv2, the
#: three 384-unit GRUs (input and recurrent weights, biases, recurrent diagonals), the
#: 32-band output layer and the VAD output; int8 copies and quantisation scales excluded.
PARAMETERS = 2_888_225
_INSTALL = "pip install pyrnnoise==0.4.5"
_REINSTALL = "pip install --force-reinstall --no-deps pyrnnoise==0.4.5"
_MODULE_NAME = "urgentbench_systems._pyrnnoise_binding"


class _WeightArray(ctypes.Structure):
    """``WeightArray`` of ``nnet.h``: one named array of the compiled-in model."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("type", ctypes.c_int),
        ("size", ctypes.c_int),
        ("data", ctypes.c_void_p),
    ]


def load_binding() -> ModuleType:
    """Load ``pyrnnoise/rnnoise.py`` from its file, without importing the ``pyrnnoise`` package.

    Returns:
        The binding module (``lib``, ``FRAME_SIZE``, ...).

    Raises:
        RuntimeError: When pyrnnoise is not installed or its library cannot be loaded.
    """
    spec = importlib.util.find_spec("pyrnnoise")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"pyrnnoise is not installed; fix: {_INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / "rnnoise.py"
    file_spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
    if file_spec is None or file_spec.loader is None:
        raise RuntimeError(f"cannot load {path}; fix: {_REINSTALL}")
    module = importlib.util.module_from_spec(file_spec)
    try:
        file_spec.loader.exec_module(module)
    except OSError as exc:
        raise RuntimeError(f"cannot load the RNNoise library from {path.parent}: {exc}") from exc
    return module


def _weight_table(lib: ctypes.CDLL) -> list[_WeightArray]:
    """The entries of the library's ``rnnoise_arrays`` table (it ends with a NULL name)."""
    first = _WeightArray.in_dll(lib, "rnnoise_arrays")
    table = ctypes.cast(ctypes.addressof(first), ctypes.POINTER(_WeightArray))
    entries = []
    while table[len(entries)].name is not None:
        entries.append(table[len(entries)])
    return entries


def count_parameters(lib: ctypes.CDLL) -> int:
    """Trained parameters in the library's weight table (see :data:`PARAMETERS`).

    Counts the float32 arrays (type 0) except the quantisation helpers ``*_subias`` and
    ``*_scale``; the int8 arrays are copies of the float weights and are not counted.
    """
    floats = [e for e in _weight_table(lib) if e.type == 0 and not e.name.endswith((b"_subias", b"_scale"))]
    return sum(e.size for e in floats) // 4


def weights_digest(lib: ctypes.CDLL) -> str:
    """sha256 over the library's ``rnnoise_arrays`` table: each array's name, type, size and bytes.

    Args:
        lib: The loaded ``librnnoise``.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    for entry in _weight_table(lib):
        digest.update(entry.name + b"\0")
        digest.update(int(entry.type).to_bytes(4, "little") + int(entry.size).to_bytes(8, "little"))
        digest.update(ctypes.string_at(entry.data, entry.size))
    return digest.hexdigest()


class RNNoise(System):
    """RNNoise at 48 kHz, one fresh denoiser state per file (no options)."""

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._lib: Any = None

    def setup(self) -> None:
        """Load the library and check its weights and frame size.

        Raises:
            RuntimeError: When pyrnnoise is missing or its library is not the pinned model.
        """
        binding = load_binding()
        lib = binding.lib
        frame = int(lib.rnnoise_get_frame_size())
        if frame != _FRAME:
            raise RuntimeError(f"librnnoise reports {frame}-sample frames, expected {_FRAME}")
        digest = weights_digest(lib)
        if digest != _WEIGHTS_SHA256:
            raise RuntimeError(
                f"librnnoise weights have sha256 {digest[:12]}…, expected {_WEIGHTS_SHA256[:12]}… "
                f"(RNNoise as bundled in pyrnnoise 0.4.5); fix: {_REINSTALL}"
            )
        self._lib = lib

    def provenance(self) -> dict[str, Any]:
        """Card, options, the weight table's sha256, the parameter count and pyrnnoise's version."""
        prov = super().provenance()
        prov["weights_sha256"] = _WEIGHTS_SHA256
        prov["model_parameters"] = PARAMETERS
        return prov

    def enhance(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Denoise one 48 kHz waveform.

        Args:
            waveform: Mono float32 waveform at 48 kHz.
            sample_rate: Must be 48000 (the runner resamples to the card's rate).

        Returns:
            ``(enhanced, 48000)``, time-aligned with and exactly as long as the input.

        Raises:
            ValueError: For another rate or a non-mono or empty waveform.
        """
        x = mono_waveform(waveform, sample_rate, _RATE, "RNNoise")
        if self._lib is None:
            self.setup()
        lib = self._lib
        n = len(x)
        total = -(-(n + _DELAY) // _FRAME) * _FRAME
        signal = np.ascontiguousarray(np.pad(x, (0, total - n), mode="symmetric") * np.float32(_SCALE))
        out = np.empty_like(signal)
        float_p = ctypes.POINTER(ctypes.c_float)
        step = _FRAME * signal.itemsize
        in_addr, out_addr = signal.ctypes.data, out.ctypes.data
        state = lib.rnnoise_create(None)
        if not state:
            raise RuntimeError("rnnoise_create returned NULL")
        try:
            for offset in range(0, total * signal.itemsize, step):
                lib.rnnoise_process_frame(
                    state, ctypes.cast(out_addr + offset, float_p), ctypes.cast(in_addr + offset, float_p)
                )
        finally:
            lib.rnnoise_destroy(state)
        y = out[_DELAY : _DELAY + n] / np.float32(_SCALE)
        return np.ascontiguousarray(y, dtype=np.float32), _RATE
