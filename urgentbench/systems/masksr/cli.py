"""The ``urgentbench train`` sub-command (arguments and handler); imports torch only when run."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

EPILOG = """examples:
  urgentbench train masksr2 --size L --clean /data/speech --noise /data/noise --out runs/masksr2-L
  urgentbench train masksr --size tiny --clean speech/ --steps 20 --out runs/tiny      # CPU smoke run
  torchrun --nproc_per_node 8 -m urgentbench.cli train masksr2 --size L --clean ... --noise ... --out ...
then: urgentbench assets add masksr2-L --from runs/masksr2-L/model.safetensors
  or: urgentbench run --system masksr2-L --suite demo --system-args checkpoint=runs/masksr2-L/model.safetensors
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``urgentbench train``."""
    from urgentbench.systems.masksr.configs import SIZES, VARIANTS
    from urgentbench.validation import cli_int

    p.add_argument("variant", choices=VARIANTS, help="masksr (no distillation head) or masksr2")
    p.add_argument("--size", choices=SIZES, default="L", help="model size (default L; tiny for CPU smoke runs)")
    p.add_argument("--config", metavar="YAML", help="YAML file overriding parts of the built-in config")
    p.add_argument("--set", dest="overrides", metavar="K=V,...",
                   help="dotted overrides, e.g. train.lr=1e-4,semantic.target=layer")
    p.add_argument("--clean", required=True, metavar="DIR", help="clean speech folder (searched recursively)")
    p.add_argument("--noise", metavar="DIR", help="noise folder (default: the simulation's generated noise types)")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/<variant>-<size>)")
    p.add_argument("--steps", type=cli_int(1), help="total optimizer steps (default: train.max_steps)")
    p.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run in --out")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")


def cmd_train(args: argparse.Namespace) -> int:
    """Train MaskSR / MaskSR2 (see :mod:`urgentbench.systems.masksr.train`)."""
    from urgentbench.systems.masksr.configs import load_config
    from urgentbench.systems.masksr.train import train
    from urgentbench.validation import parse_kv

    cfg = load_config(args.variant, args.size, args.config, parse_kv(args.overrides))
    if args.steps is not None:  # a positive integer (checked by argparse)
        cfg.train.max_steps = args.steps
    out = Path(args.out or f"runs/{args.variant}-{args.size}")
    result = train(cfg, args.clean, args.noise, out, resume=not args.no_resume, device=args.device)
    last = result["losses"][-1] if result["losses"] else {}
    print(f"trained to step {result['step']}"
          + (f" (loss {last['loss']:.4f})" if "loss" in last else "")
          + f"; inference weights: {out / 'model.safetensors'}")
    return 0
