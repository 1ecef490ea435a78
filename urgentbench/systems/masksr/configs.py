"""Configurations of MaskSR / MaskSR2: sizes S, M, L (and a tiny one for tests), with the source of every value.

Neither paper's hyper-parameter tables could be read (see ``shared/research/masksr-and-data.md``);
only what third-party summaries and the demo page say is known. Every value below is therefore
tagged in :data:`SOURCES` as either

* ``paper``: stated for MaskSR / MaskSR2 (by the abstracts or by summaries of the papers), or
* ``chosen``: not known; chosen here, with the reason.

:func:`hyperparameter_table` renders that list for a system card; the cards under
``urgentbench/systems/cards/masksr*-*.yaml`` carry it as a comment block, regenerated with
``python -m urgentbench.systems.masksr.configs --write-cards`` (a test checks they match).

A configuration is a tree of dataclasses (:class:`MaskSRConfig`); it is stored as JSON in
every checkpoint, so a checkpoint always rebuilds the exact model it holds.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The two model variants.
VARIANTS = ("masksr", "masksr2")
#: Named sizes; ``tiny`` exists for tests and smoke runs on a CPU.
SIZES = ("S", "M", "L", "tiny")
#: Semantic target kinds of MaskSR2 (the paper's L9-K500, L9-feature and Avg-feature).
SEMANTIC_TARGETS = ("kmeans", "layer", "average")


@dataclass
class CodecConfig:
    """The frozen acoustic tokenizer (Descript Audio Codec, 44.1 kHz).

    Args:
        pretrained: Asset holding the official DAC 44.1 kHz weights (transformers format);
            None builds a randomly initialised codec from ``dac`` (tests, smoke runs) whose
            weights are then stored inside every checkpoint.
        sample_rate: Codec rate in Hz.
        hop_length: Samples per token frame (44100 / 512 = 86.13 frames per second).
        n_codebooks: Residual codebooks used.
        codebook_size: Entries per codebook.
        dac: ``transformers.DacConfig`` arguments of a random codec (ignored when pretrained).
        seed: torch seed of a random codec's initialisation.
    """

    pretrained: str | None = "dac-44khz"
    sample_rate: int = 44100
    hop_length: int = 512
    n_codebooks: int = 9
    codebook_size: int = 1024
    dac: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass
class EncoderConfig:
    """Speech encoder: power-law compressed STFT magnitude -> MLP -> transformer blocks."""

    n_fft: int = 2048
    win_length: int = 2048
    hop_length: int = 512
    exponent: float = 0.3
    dim: int = 1024
    mlp_hidden: int = 1024
    layers: int = 8
    heads: int = 16
    ff_mult: int = 4
    dropout: float = 0.1


@dataclass
class SemanticConfig:
    """MaskSR2's semantic distillation head (disabled for MaskSR).

    Args:
        enabled: True for MaskSR2.
        target: ``kmeans`` (layer-``layer`` features quantised by k-means, the paper's
            L9-K500), ``layer`` (continuous layer-``layer`` features, L9-feature) or
            ``average`` (mean over ``average_layers``, Avg-feature).
        layer: HuBERT transformer layer (1-based) for ``kmeans`` and ``layer``.
        average_layers: Layers averaged for ``average``.
        n_clusters: k-means clusters.
        teacher: Asset holding the HuBERT teacher (transformers format); None builds a
            randomly initialised one from ``hubert`` (tests).
        hubert: ``transformers.HubertConfig`` arguments of a random teacher.
        teacher_dim: Width of the teacher's features (768 for HuBERT base).
        teacher_rate: Teacher input rate in Hz; the target is resampled to it.
        normalize_input: Zero-mean unit-variance teacher input (fairseq HuBERT base: no).
        weight: Weight of the distillation loss against the masked-LM loss.
        kmeans_path: Centroids (``.npy`` or ``.safetensors`` with key ``centroids``, or a
            fairseq/sklearn ``joblib`` k-means model) for ``kmeans``; None fits them on
            teacher features of the first ``kmeans_fit_batches`` training batches.
        kmeans_fit_batches: Batches of teacher features the k-means is fitted on.
        kmeans_iters: Lloyd iterations of that fit.
        seed: torch seed of a random teacher's initialisation.
    """

    enabled: bool = False
    target: str = "kmeans"
    layer: int = 9
    average_layers: list[int] = field(default_factory=lambda: list(range(1, 13)))
    n_clusters: int = 500
    teacher: str | None = "hubert-base-ls960"
    hubert: dict[str, Any] = field(default_factory=dict)
    teacher_dim: int = 768
    teacher_rate: int = 16000
    normalize_input: bool = False
    weight: float = 1.0
    kmeans_path: str | None = None
    kmeans_fit_batches: int = 64
    kmeans_iters: int = 50
    seed: int = 0


@dataclass
class MLMConfig:
    """Masked language model over the parallel codebooks."""

    dim: int = 1024
    layers: int = 16
    heads: int = 16
    ff_mult: int = 4
    dropout: float = 0.1
    null_cond_prob: float = 0.1


@dataclass
class DecodeConfig:
    """MaskGIT iterative parallel decoding and long-file handling (inference defaults)."""

    steps: int = 20
    temperature: float = 1.0
    guidance_scale: float = 1.0
    chunk_seconds: float = 8.0
    overlap_seconds: float = 1.0
    input_peak: float = 0.5


@dataclass
class SimulationConfig:
    """On-the-fly degradation of clean speech with urgentbench's simulation pipeline."""

    p_reverb: float = 0.4
    rt60: list[float] = field(default_factory=lambda: [0.2, 1.0])
    room_x: list[float] = field(default_factory=lambda: [3.0, 10.0])
    room_y: list[float] = field(default_factory=lambda: [3.0, 8.0])
    room_z: list[float] = field(default_factory=lambda: [2.5, 4.0])
    mic_distance: list[float] = field(default_factory=lambda: [0.5, 3.0])
    p_noise: float = 0.9
    snr_db: list[float] = field(default_factory=lambda: [-5.0, 25.0])
    p_clipping: float = 0.25
    clip_threshold: list[float] = field(default_factory=lambda: [0.1, 0.5])
    p_bandwidth: float = 0.5
    cutoff_hz: list[int] = field(default_factory=lambda: [1000, 2000, 4000, 6000, 8000, 11025, 16000])
    peak_db: list[float] = field(default_factory=lambda: [-20.0, -1.0])


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping."""

    segment_seconds: float = 4.0
    batch_size: int = 16
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    weight_decay: float = 0.01
    warmup_steps: int = 5000
    max_steps: int = 500_000
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    precision: str = "auto"
    num_workers: int = 4
    log_every: int = 50
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3
    seed: int = 0


@dataclass
class MaskSRConfig:
    """A complete MaskSR / MaskSR2 configuration."""

    variant: str = "masksr2"
    size: str = "L"
    codec: CodecConfig = field(default_factory=CodecConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)
    mlm: MLMConfig = field(default_factory=MLMConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-ready)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), as stored in checkpoints."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def random_components(self) -> list[str]:
        """The frozen parts this configuration initialises randomly instead of loading: ``codec`` and/or ``teacher``.

        Training records them in the checkpoint (``random_init``); loading a checkpoint for
        scoring warns about them.
        """
        parts = []
        if self.codec.pretrained is None:
            parts.append("codec")
        if self.semantic.enabled and self.semantic.teacher is None:
            parts.append("teacher")
        return parts

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<config>") -> MaskSRConfig:
        """Build from a (possibly partial) nested dict; unknown keys are errors.

        Raises:
            ValueError: Naming ``source`` and the unknown key or bad value.
        """
        cfg = cls()
        _merge(cfg, data, source, "")
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "<config>") -> None:
        """Check values that would otherwise fail deep inside training.

        Raises:
            ValueError: Naming ``source`` and the problem.
        """
        problems = []
        if self.variant not in VARIANTS:
            problems.append(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.semantic.enabled != (self.variant == "masksr2"):
            problems.append("semantic.enabled must be true for masksr2 and false for masksr")
        if self.semantic.target not in SEMANTIC_TARGETS:
            problems.append(f"semantic.target must be one of {SEMANTIC_TARGETS}, got {self.semantic.target!r}")
        if self.encoder.hop_length != self.codec.hop_length:
            problems.append("encoder.hop_length must equal codec.hop_length (one encoder frame per token frame)")
        for name, sub in (("encoder", self.encoder), ("mlm", self.mlm)):
            if sub.dim % sub.heads or (sub.dim // sub.heads) % 2:
                problems.append(f"{name}.dim must be a multiple of {name}.heads with an even head width")
        if not 0.0 <= self.mlm.null_cond_prob < 1.0:
            problems.append("mlm.null_cond_prob must be in [0, 1)")
        if self.train.precision not in ("auto", "fp32", "bf16", "fp16"):
            problems.append("train.precision must be auto, fp32, bf16 or fp16")
        if self.decode.steps < 1:
            problems.append("decode.steps must be >= 1")
        if self.decode.overlap_seconds >= self.decode.chunk_seconds:
            problems.append("decode.overlap_seconds must be shorter than decode.chunk_seconds")
        if problems:
            raise ValueError(f"{source}: " + "; ".join(problems))


def _merge(obj: Any, data: Any, source: str, prefix: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: {prefix or 'the config'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        if key not in fields:
            raise ValueError(f"{source}: unknown key {prefix + key!r} (known: {', '.join(fields)})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, source, f"{prefix}{key}.")
        else:
            setattr(obj, key, copy.deepcopy(value))


#: Per-size architecture: (encoder dim, encoder layers, LM dim, LM layers, heads).
_ARCH = {
    "S": (512, 4, 512, 8, 8),
    "M": (768, 6, 768, 12, 12),
    "L": (1024, 8, 1024, 16, 16),
}

#: Tiny random codec and teacher for tests (same structure: 9 x 1024 codebooks, hop 512, 320-sample HuBERT frames).
TINY_DAC = {
    "encoder_hidden_size": 4,
    "decoder_hidden_size": 16,
    "hidden_size": 16,
    "codebook_dim": 8,
    "downsampling_ratios": [2, 4, 8, 8],
    "upsampling_ratios": [8, 8, 4, 2],
}
TINY_HUBERT = {
    "hidden_size": 16,
    "num_hidden_layers": 9,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "conv_dim": [8] * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}


def get_config(variant: str, size: str) -> MaskSRConfig:
    """The built-in configuration of ``variant`` (masksr, masksr2) at ``size`` (S, M, L, tiny).

    Raises:
        ValueError: For an unknown variant or size.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown MaskSR variant {variant!r}; known: {', '.join(VARIANTS)}")
    if size not in SIZES:
        raise ValueError(f"unknown MaskSR size {size!r}; known: {', '.join(SIZES)}")
    cfg = MaskSRConfig(variant=variant, size=size)
    cfg.semantic.enabled = variant == "masksr2"
    if size == "tiny":
        cfg.codec = CodecConfig(pretrained=None, dac=dict(TINY_DAC), seed=0)
        cfg.encoder = EncoderConfig(dim=32, mlp_hidden=32, layers=1, heads=2, dropout=0.0)
        cfg.mlm = MLMConfig(dim=32, layers=2, heads=2, dropout=0.0)
        cfg.semantic.teacher = None
        cfg.semantic.hubert = dict(TINY_HUBERT)
        cfg.semantic.teacher_dim = TINY_HUBERT["hidden_size"]
        cfg.semantic.average_layers = list(range(1, 10))
        cfg.semantic.n_clusters = 8
        cfg.semantic.kmeans_fit_batches = 2
        cfg.semantic.kmeans_iters = 10
        cfg.decode = DecodeConfig(steps=4, chunk_seconds=2.0, overlap_seconds=0.5)
        cfg.train = TrainConfig(
            segment_seconds=0.5, batch_size=2, lr=2e-3, warmup_steps=0, max_steps=20, num_workers=0,
            log_every=1, checkpoint_every=10, keep_checkpoints=2,
        )
        cfg.simulation = SimulationConfig(p_reverb=0.0)
    else:
        enc_dim, enc_layers, lm_dim, lm_layers, heads = _ARCH[size]
        cfg.encoder = EncoderConfig(dim=enc_dim, mlp_hidden=enc_dim, layers=enc_layers, heads=heads)
        cfg.mlm = MLMConfig(dim=lm_dim, layers=lm_layers, heads=heads)
    cfg.validate(f"built-in {variant}-{size}")
    return cfg


def load_config(variant: str, size: str, path: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> MaskSRConfig:
    """Built-in config, then a YAML file's values, then dotted ``overrides`` (``train.lr=1e-4``).

    Raises:
        ValueError: For an unreadable file, unknown keys or bad values (naming the file).
    """
    import yaml

    data = get_config(variant, size).to_dict()
    if path is not None:
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot read the MaskSR config ({exc})") from exc
        for key in ("variant", "size"):
            if key in loaded and loaded[key] != data[key]:
                raise ValueError(f"{path}: {key} is {loaded[key]!r} but the command asks for {data[key]!r}")
        cfg = MaskSRConfig.from_dict(data, str(path))
        _merge(cfg, loaded, str(path), "")
        data = cfg.to_dict()
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"override {dotted!r}: {part!r} is not a config section")
            node = node[part]
        if leaf not in node:
            raise ValueError(f"override {dotted!r}: unknown key {leaf!r}")
        node[leaf] = value
    return MaskSRConfig.from_dict(data, str(path) if path else "<overrides>")


# ----------------------------------------------------------------------------------------
# sources of the values, for the system cards
# ----------------------------------------------------------------------------------------

#: Dotted key -> (source, reason). ``paper``: stated for MaskSR/MaskSR2 (abstracts or summaries,
#: see shared/research/masksr-and-data.md); ``chosen``: unknown, chosen here.
SOURCES: dict[str, tuple[str, str]] = {
    "codec.pretrained": ("paper", "frozen DAC 44.1 kHz codec (HF transformers port descript/dac_44khz)"),
    "codec.sample_rate": ("paper", "full-band 44.1 kHz"),
    "codec.hop_length": ("paper", "~86 token frames per second; demo outputs padded to multiples of 512"),
    "codec.n_codebooks": ("paper", "9 residual codebooks"),
    "codec.codebook_size": ("paper", "1024 entries per codebook"),
    "encoder.n_fft": ("paper", "STFT window 2048"),
    "encoder.win_length": ("paper", "STFT window 2048"),
    "encoder.hop_length": ("paper", "STFT hop 512 (one encoder frame per token frame)"),
    "encoder.exponent": ("paper", "power-law compression |X|^0.3"),
    "encoder.dim": ("chosen", "layer widths are unknown; S/M/L follow common 512/768/1024 transformer widths"),
    "encoder.mlp_hidden": ("chosen", "unknown; equal to the encoder width"),
    "encoder.layers": ("chosen", "unknown; about half as deep as the LM"),
    "encoder.heads": ("chosen", "unknown; 64-dimensional heads"),
    "encoder.ff_mult": ("chosen", "unknown; the usual 4x feed-forward"),
    "encoder.dropout": ("chosen", "unknown; 0.1 as in most transformer recipes"),
    "semantic.target": ("paper", "MaskSR2 ablates L9-K500 (kmeans), L9-feature (layer) and Avg-feature "
                                 "(average); which one is the headline model is unknown, kmeans is the default"),
    "semantic.layer": ("paper", "HuBERT layer 9"),
    "semantic.average_layers": ("chosen", "which layers Avg-feature averages is unknown; all 12"),
    "semantic.n_clusters": ("paper", "500 k-means clusters (K500)"),
    "semantic.teacher": ("paper", "frozen HuBERT pre-trained on LibriSpeech (base, 960 h, here facebook/hubert-base-ls960)"),
    "semantic.teacher_rate": ("paper", "target speech downsampled to 16 kHz"),
    "semantic.teacher_dim": ("paper", "width of HuBERT base features (768)"),
    "semantic.kmeans_fit_batches": ("chosen", "unknown; batches of teacher features the k-means is fitted on"),
    "semantic.kmeans_iters": ("chosen", "unknown; Lloyd iterations after k-means++ initialisation"),
    "semantic.normalize_input": ("chosen", "fairseq's HuBERT base was trained on unnormalised waveforms"),
    "semantic.weight": ("chosen", "the distillation loss form and weight are unknown; CE (kmeans) or "
                                  "L1 + cosine distance (features), weight 1"),
    "semantic.kmeans_path": ("chosen", "the paper's k-means model is not public; fitted on teacher features "
                                       "of the training data unless given"),
    "mlm.dim": ("chosen", "unknown"),
    "mlm.layers": ("chosen", "unknown; S/M/L = 8/12/16 bidirectional blocks"),
    "mlm.heads": ("chosen", "unknown; 64-dimensional heads"),
    "mlm.ff_mult": ("chosen", "unknown; the usual 4x feed-forward"),
    "mlm.dropout": ("chosen", "unknown; 0.1"),
    "mlm.null_cond_prob": ("paper", "null condition for 10 % of training examples (classifier-free guidance)"),
    "mask schedule": ("paper", "r ~ U(0,1), masking ratio cos(pi r / 2), CE on masked positions only; "
                               "positions masked uniformly over the 9 x T grid (chosen)"),
    "codebook modelling": ("paper", "parallel (all 9 codebooks predicted at once; token embeddings summed per frame)"),
    "conditioning": ("chosen", "encoder output projected and added frame by frame to the token embeddings"),
    "positions": ("chosen", "rotary position embeddings (any length)"),
    "decode.steps": ("chosen", "the number of sampling iterations is unknown"),
    "decode.temperature": ("chosen", "unknown; 1.0 with MaskGIT's annealed confidence noise"),
    "decode.guidance_scale": ("chosen", "unknown; logits = (1+w) l_cond - w l_uncond (paper's form) with w = 1"),
    "decode.chunk_seconds": ("chosen", "long files are generated chunk by chunk (attention cost)"),
    "decode.overlap_seconds": ("chosen", "each chunk continues the previous one's last second of tokens"),
    "decode.input_peak": ("chosen", "input peak-normalised for the model; the output gets the inverse gain"),
    "simulation": ("chosen", "training corpora, SNR/RT60 ranges and degradation probabilities are unknown; "
                             "GSR-style mix of reverberation, noise, clipping and band limitation"),
    "train.segment_seconds": ("chosen", "unknown"),
    "train.batch_size": ("chosen", "unknown; per GPU"),
    "train.lr": ("chosen", "unknown; AdamW, linear warm-up then cosine decay"),
    "train.betas": ("chosen", "unknown"),
    "train.weight_decay": ("chosen", "unknown"),
    "train.warmup_steps": ("chosen", "unknown"),
    "train.max_steps": ("chosen", "training steps and hours are unknown"),
    "train.grad_clip": ("chosen", "unknown"),
    "train.min_lr_ratio": ("chosen", "unknown; final learning rate as a fraction of train.lr"),
    "train.num_workers": ("chosen", "bookkeeping: data-loader processes per GPU"),
    "train.log_every": ("chosen", "bookkeeping"),
    "train.checkpoint_every": ("chosen", "bookkeeping"),
    "train.keep_checkpoints": ("chosen", "bookkeeping"),
    "train.seed": ("chosen", "bookkeeping"),
    "train.precision": ("chosen", "bf16 autocast on GPUs that support it, fp16 with loss scaling otherwise, fp32 on CPU"),
}


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key not in ("dac", "hubert"):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def hyperparameter_table(variant: str, size: str) -> list[str]:
    """Lines ``key: value  [source: reason]`` for every hyper-parameter of a built-in config."""
    cfg = get_config(variant, size)
    flat = _flatten(cfg.to_dict())
    lines = [f"simulation  [{SOURCES['simulation'][0]}: {SOURCES['simulation'][1]}]"]
    skip = {"variant", "size", "semantic.enabled", "codec.dac", "codec.seed", "semantic.hubert", "semantic.seed"}
    if variant == "masksr":
        skip |= {k for k in flat if k.startswith("semantic.")}
    for key, value in flat.items():
        if key in skip:
            continue
        source = SOURCES.get(key) or (("chosen", "unknown, see simulation above") if key.startswith("simulation.")
                                      else ("chosen", "unknown"))
        lines.append(f"{key}: {json.dumps(value)}  [{source[0]}: {source[1]}]")
    for key in ("mask schedule", "codebook modelling", "conditioning", "positions"):
        lines.append(f"{key}  [{SOURCES[key][0]}: {SOURCES[key][1]}]")
    return lines


CARD_BEGIN = "# --- hyper-parameters (generated by `python -m urgentbench.systems.masksr.configs --write-cards`) ---"
CARD_END = "# --- end of hyper-parameters ---"


def card_block(variant: str, size: str) -> str:
    """The generated comment block of a system card."""
    body = "\n".join(f"#   {line}" for line in hyperparameter_table(variant, size))
    return f"{CARD_BEGIN}\n# [paper] = stated for MaskSR/MaskSR2; [chosen] = unknown, chosen here (reason given)\n{body}\n{CARD_END}\n"


def write_cards(cards_dir: str | Path) -> list[Path]:
    """Replace (or append) the generated block in ``<cards_dir>/masksr*-{S,M,L}.yaml``."""
    written = []
    for variant in VARIANTS:
        for size in ("S", "M", "L"):
            path = Path(cards_dir) / f"{variant}-{size}.yaml"
            text = path.read_text()
            block = card_block(variant, size)
            if CARD_BEGIN in text:
                head = text[: text.index(CARD_BEGIN)]
                tail = text[text.index(CARD_END) + len(CARD_END):].lstrip("\n")
                text = head + block + tail
            else:
                text = text.rstrip("\n") + "\n" + block
            path.write_text(text)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """``--write-cards``: regenerate the card blocks; ``--show VARIANT SIZE``: print a config as YAML."""
    import yaml

    parser = argparse.ArgumentParser(prog="python -m urgentbench.systems.masksr.configs")
    parser.add_argument("--write-cards", action="store_true")
    parser.add_argument("--show", nargs=2, metavar=("VARIANT", "SIZE"))
    args = parser.parse_args(argv)
    if args.write_cards:
        from urgentbench.systems import CARDS_DIR

        for path in write_cards(CARDS_DIR):
            sys.stdout.write(f"wrote {path}\n")
    if args.show:
        sys.stdout.write(yaml.safe_dump(get_config(*args.show).to_dict(), sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
