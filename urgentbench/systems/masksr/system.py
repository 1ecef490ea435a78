"""The benchmark systems ``masksr-{S,M,L}`` and ``masksr2-{S,M,L}``: checkpoint loading and inference.

Inference at 44.1 kHz (the runner resamples other rates in and out):

1. the input is peak-normalised to ``input_peak`` (the model was trained on peak levels
   of -20 to -1 dBFS) and zero-padded to a whole number of 512-sample hops;
2. the encoder embeds the degraded input and MaskGIT decoding
   (:mod:`~urgentbench.systems.masksr.decode`) generates the 9 x T DAC tokens;
3. the frozen DAC decodes the tokens; the output is cut to the input length and given the
   inverse of the input gain.

**Long inputs** (more than ``chunk_seconds``) are generated chunk by chunk: every chunk
after the first starts with the last ``overlap_seconds`` of tokens of the previous one as
*known* tokens (kept fixed while decoding), so the generation continues seamlessly; the
codec then decodes the whole token sequence at once. Each chunk's encoder sees exactly
its own samples.

**Checkpoint.** From the asset ``<variant>-<size>``, named like the system (``urgentbench assets add masksr2-L
--from FILE``) or ``--system-args checkpoint=PATH``; no public checkpoint exists, so
without either the system is unavailable with a message saying how to train or add one.
A checkpoint carries its own configuration; it must be of the system's variant (MaskSR or
MaskSR2); a different size (e.g. a tiny test model) is accepted with a warning and
recorded in the provenance. Checkpoints of a randomly initialised codec carry the codec
weights; otherwise the ``dac-44khz`` asset is loaded.

Options: ``checkpoint``, ``steps``, ``temperature``, ``guidance_scale``,
``chunk_seconds``, ``overlap_seconds`` (None: the checkpoint config's decode defaults,
20 / 1.0 / 1.0 / 8 s / 1 s for the built-in sizes), ``seed`` (0; sampling is
reproducible per input), ``threads``, ``device`` (``cpu`` or ``cuda``; default CUDA when
available).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from urgentbench.systems.base import System, mono_waveform

logger = logging.getLogger(__name__)

#: Native rate of MaskSR (the DAC 44.1 kHz codec).
SAMPLE_RATE = 44100

_DECODE_OPTIONS = ("steps", "temperature", "guidance_scale", "chunk_seconds", "overlap_seconds")


class MaskSRSystem(System):
    """MaskSR / MaskSR2 inference.

    Card arguments:
        variant: ``masksr`` or ``masksr2``.
        size: ``S``, ``M`` or ``L`` (``tiny`` for tests); with the variant it names the
            checkpoint asset, ``<variant>-<size>``.
    """

    card_arguments: ClassVar[tuple[str, ...]] = ("variant", "size")

    def __init__(self, **options: Any):
        """Check the card arguments and the options.

        Raises:
            ValueError: For an unknown variant, size or option, or a bad value.
        """
        super().__init__(**options)
        from urgentbench.systems.masksr.configs import SIZES, VARIANTS

        if self.args["variant"] not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {self.args['variant']!r}")
        if self.args["size"] not in SIZES:
            raise ValueError(f"size must be one of {', '.join(SIZES)}, got {self.args['size']!r}")
        #: ``masksr`` or ``masksr2``.
        self.variant: str = self.args["variant"]
        #: ``S``, ``M``, ``L`` or ``tiny``.
        self.size: str = self.args["size"]
        #: The asset holding a trained checkpoint of this variant and size.
        self.checkpoint_asset = f"{self.variant}-{self.size}"
        o = self.options
        from urgentbench.validation import require_int

        for key in ("steps",):
            if o[key] is not None:
                require_int(o[key], key)
        for key in ("temperature", "guidance_scale", "chunk_seconds", "overlap_seconds"):
            v = o[key]
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ValueError(f"{key} must be a non-negative number, got {v!r}")
        if o["chunk_seconds"] is not None and o["chunk_seconds"] < 0.5:
            raise ValueError(f"chunk_seconds must be at least 0.5, got {o['chunk_seconds']!r}")
        if o["device"] not in (None, "cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {o['device']!r}")
        self._model: Any = None
        self._codec: Any = None
        self._info: dict[str, Any] = {}

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """See the module docstring."""
        return {"checkpoint": None, **{k: None for k in _DECODE_OPTIONS}, "seed": 0, "threads": None, "device": None}

    def needed_assets(self) -> list[str]:
        """The checkpoint asset unless ``checkpoint`` is given; the codec unless the checkpoint carries one."""
        path = self.options["checkpoint"]
        codec = [a for a in self.card.assets if a == "dac-44khz"]
        if not path:
            return [self.checkpoint_asset, *codec]
        from urgentbench.systems.masksr.checkpoint import CheckpointError, has_codec_weights

        try:
            own_codec = has_codec_weights(Path(path).expanduser())
        except CheckpointError:
            return []  # setup() reports the bad file with its name
        return [] if own_codec else codec

    # ----------------------------------------------------------------- loading
    def _checkpoint_path(self) -> tuple[Path, str]:
        if self.options["checkpoint"]:
            path = Path(self.options["checkpoint"]).expanduser()
            if not path.is_file():
                raise ValueError(f"checkpoint {path} does not exist")
            return path, "checkpoint"
        from urgentbench.assets import get_asset
        from urgentbench.systems.masksr.assets import CHECKPOINT_FILE

        return get_asset(self.checkpoint_asset).path() / CHECKPOINT_FILE, "asset"

    def setup(self) -> None:
        """Load the checkpoint (asset or ``checkpoint``), build the network and the codec.

        Raises:
            AssetError: When the checkpoint or codec asset is missing (with the fix).
            CheckpointError: For a file that is not a MaskSR checkpoint.
            ValueError: For a checkpoint of the other variant.
        """
        import torch

        from urgentbench.hashing import sha256_file
        from urgentbench.metrics._threads import resolve_threads
        from urgentbench.systems.masksr.checkpoint import load_checkpoint
        from urgentbench.systems.masksr.codec import Codec
        from urgentbench.systems.masksr.model import MaskSR

        threads = resolve_threads(self.options["threads"])
        if threads:
            torch.set_num_threads(threads)
        path, source = self._checkpoint_path()
        ckpt = load_checkpoint(path)
        cfg = ckpt.config
        if cfg.variant != self.variant:
            raise ValueError(
                f"{path}: the checkpoint holds a {cfg.variant} model, system {self.card.name} needs {self.variant}"
            )
        if cfg.size != self.size:
            logger.warning("%s: checkpoint of size %s run as system %s", path, cfg.size, self.card.name)
        random_parts = list(ckpt.extra.get("random_components") or cfg.random_components())
        if random_parts:
            logger.warning(
                "%s: trained against a randomly initialised %s (random_init; a test or smoke-run checkpoint): "
                "its outputs are not those of a real %s model", path, " and ".join(random_parts), cfg.variant,
            )
        device = self.options["device"] or ("cuda" if torch.cuda.is_available() else "cpu")
        model = MaskSR(cfg)
        model.load_state_dict(ckpt.model, strict=True)
        self._model = model.eval().to(device)
        self._codec = Codec.build(cfg.codec, ckpt.codec or None).to(device)
        self._cfg = cfg
        self._device = torch.device(device)
        self._info = {
            "source": source, "file": str(path), "sha256": sha256_file(path), "step": ckpt.step,
            "size": cfg.size, "variant": cfg.variant, "config": cfg.to_dict(),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "codec": "in checkpoint (random init)" if cfg.codec.pretrained is None else cfg.codec.pretrained,
            "random_init": random_parts,
        }
        logger.debug("%s loaded from %s (step %d)", self.card.name, path, ckpt.step)

    def decode_settings(self) -> dict[str, Any]:
        """The decoding parameters in effect: options, else the checkpoint config's defaults."""
        d = self._cfg.decode
        return {k: (self.options[k] if self.options[k] is not None else getattr(d, k)) for k in _DECODE_OPTIONS} | {
            "input_peak": d.input_peak, "seed": self.options["seed"]}

    def provenance(self) -> dict[str, Any]:
        """Card, options, packages, checkpoint (file, sha256, step, config) and decoding settings."""
        prov = super().provenance()
        prov["weights"] = dict(self._info)
        if self._model is not None:
            prov["decode"] = self.decode_settings()
        return prov

    # ----------------------------------------------------------------- inference
    def generate_tokens(self, x: Any, settings: dict[str, Any]) -> Any:
        """Tokens ``[1, 9, T]`` for the padded, normalised waveform ``x`` ``[1, T * hop]`` (chunked)."""
        import torch

        from urgentbench.systems.masksr.decode import maskgit_decode

        hop, sr = self._cfg.codec.hop_length, self._cfg.codec.sample_rate
        total = x.shape[-1] // hop
        chunk = max(2, int(round(settings["chunk_seconds"] * sr / hop)))
        overlap = min(chunk - 1, int(round(settings["overlap_seconds"] * sr / hop)))
        lm = self._model.lm
        gen = torch.Generator(device=self._device).manual_seed(int(settings["seed"]))
        tokens = torch.full((1, lm.n_codebooks, total), lm.mask_id, dtype=torch.long, device=self._device)
        start = 0
        while True:
            end = min(start + chunk, total)
            cond = self._model.condition(x[:, start * hop : end * hop])
            known = tokens[:, :, start:end]
            tokens[:, :, start:end] = maskgit_decode(
                lm, cond, steps=settings["steps"], temperature=settings["temperature"],
                guidance_scale=settings["guidance_scale"], known=known, generator=gen,
            )
            if end == total:
                return tokens
            start = end - overlap

    def enhance(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Restore one mono waveform at 44.1 kHz.

        Returns:
            ``(restored, 44100)``, exactly as long as the input.

        Raises:
            ValueError: For another rate or a non-mono or empty waveform.
        """
        x = mono_waveform(waveform, sample_rate, SAMPLE_RATE, "MaskSR")
        if self._model is None:
            self.setup()
        import torch

        settings = self.decode_settings()
        n = x.size
        peak = float(np.abs(x).max())
        gain = settings["input_peak"] / peak if peak > 0 else 1.0
        hop = self._cfg.codec.hop_length
        padded = max(1, -(-n // hop)) * hop
        with torch.inference_mode():
            xt = torch.zeros(1, padded, device=self._device)
            xt[0, :n] = torch.from_numpy(x * gain).to(self._device)
            tokens = self.generate_tokens(xt, settings)
            y = self._codec.decode(tokens)[0, :n].double().cpu().numpy()
        return (y / gain).astype(np.float32), SAMPLE_RATE
