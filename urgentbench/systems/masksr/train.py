r"""Training recipe of MaskSR / MaskSR2: simulated data on the fly, DDP, mixed precision, safetensors checkpoints.

One code path serves a laptop CPU (tiny config, one process) and a GPU cluster (L config,
``torchrun`` on one or many nodes)::

    urgentbench train masksr2 --size L --clean /data/speech --noise /data/noise --out runs/masksr2-L
    torchrun --nproc_per_node 8 --nnodes 4 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \
        -m urgentbench.cli train masksr2 --size L --clean /data/speech --noise /data/noise --out runs/masksr2-L

* **Distributed.** Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is initialised
  with NCCL on GPUs and gloo on CPUs; the network is wrapped in
  ``DistributedDataParallel``. Every rank simulates its own examples (streams seeded by
  rank and data-loader worker), so ``train.batch_size`` is per process.
* **Precision.** ``train.precision: auto`` uses bf16 autocast on GPUs that support it,
  fp16 autocast with a gradient scaler on older GPUs and fp32 on CPUs; the STFT, the codec,
  the teacher and the losses always run in fp32.
* **Targets.** Each step tokenizes the (early-reverberant) target with the frozen DAC and,
  for MaskSR2, runs the frozen HuBERT on its 16 kHz copy; k-means centroids (L9-K500) are
  loaded from ``semantic.kmeans_path`` or fitted on rank 0 from the teacher features of
  the first ``semantic.kmeans_fit_batches`` batches and broadcast; they are stored in the
  checkpoints.
* **Checkpoints** (:mod:`~urgentbench.systems.masksr.checkpoint`) go to
  ``OUT/checkpoints/step_XXXXXXXX.safetensors`` every ``train.checkpoint_every`` steps and
  at the end (the last ``train.keep_checkpoints`` are kept), with the optimizer state; the
  final inference weights go to ``OUT/model.safetensors``. A run whose ``OUT`` holds
  checkpoints resumes from the newest one: weights, optimizer, loss scaler, step count
  and the learning-rate schedule continue where they stopped.
* **Logs.** Averaged losses are appended to ``OUT/train_log.jsonl`` every
  ``train.log_every`` steps (and logged); ``OUT/config.yaml`` records the configuration.
* **Assets.** The codec (``codec.pretrained``) and, for MaskSR2, the HuBERT teacher
  (``semantic.teacher``) are checked before anything is built; a missing one stops the run
  with the asset's fix commands (:class:`~urgentbench.assets.AssetError`).
* **Random initialisation.** A configuration without a pretrained codec or teacher (size
  ``tiny``, for tests and smoke runs) trains against randomly initialised ones. The log
  says so, and every checkpoint records it in its metadata (``extra.random_init: true``,
  ``extra.random_components``: ``["codec", "teacher"]``), so such a checkpoint is never
  taken for a real model; a system loading it warns (:mod:`~urgentbench.systems.masksr.system`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from urgentbench.systems.masksr.checkpoint import (
    checkpoint_files,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from urgentbench.systems.masksr.codec import Codec
from urgentbench.systems.masksr.configs import MaskSRConfig
from urgentbench.systems.masksr.model import MaskSR
from urgentbench.systems.masksr.semantic import HubertTeacher, fit_kmeans, load_centroids

logger = logging.getLogger(__name__)


@dataclass
class DistInfo:
    """Where this process runs."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the one that writes files)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group with more than one rank is in use."""
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Initialise torch.distributed from ``torchrun``'s environment (``WORLD_SIZE`` > 1), else one process.

    Args:
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.

    Raises:
        ValueError: For ``cuda`` without a GPU, or an unknown device.
    """
    import torch.distributed as dist

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no GPU is available")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = None
    if world > 1:
        backend = "nccl" if use_cuda else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    return DistInfo(rank, world, local, dev, backend)


def precision_for(setting: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """``(autocast dtype or None, use a gradient scaler)`` for ``train.precision`` on ``device``."""
    if device.type != "cuda" or setting == "fp32":
        return None, False
    if setting == "auto":
        setting = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return (torch.bfloat16, False) if setting == "bf16" else (torch.float16, True)


def lr_at(step: int, cfg: MaskSRConfig) -> float:
    """Linear warm-up to ``train.lr``, then cosine decay to ``min_lr_ratio * lr`` at ``max_steps``."""
    t = cfg.train
    if t.warmup_steps and step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    span = max(1, t.max_steps - t.warmup_steps)
    progress = min(1.0, (step - t.warmup_steps) / span)
    return t.lr * (t.min_lr_ratio + (1 - t.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def segment_samples(cfg: MaskSRConfig) -> int:
    """Training segment length in samples (a whole number of codec hops)."""
    hop = cfg.codec.hop_length
    return max(4, round(cfg.train.segment_seconds * cfg.codec.sample_rate / hop)) * hop


def random_init_metadata(cfg: MaskSRConfig) -> dict[str, Any]:
    """``{"random_init": True, "random_components": [...]}`` for a checkpoint of ``cfg``; empty when nothing is random."""
    parts = cfg.random_components()
    return {"random_init": True, "random_components": parts} if parts else {}


def check_assets(cfg: MaskSRConfig) -> None:
    """Fail before any model is built when the codec or teacher asset ``cfg`` needs is missing.

    Raises:
        AssetError: With the asset's problem and fix commands (one line).
    """
    from urgentbench.assets import AssetError, get_asset

    names = [cfg.codec.pretrained]
    if cfg.semantic.enabled:
        names.append(cfg.semantic.teacher)
    for name in names:
        if name is None:
            continue
        problem = get_asset(name).problem(deep=False)  # presence and sizes; path() hashes before loading
        if problem is not None:
            raise AssetError(f"cannot train {cfg.variant}-{cfg.size}: {problem}")


def param_digest(model: torch.nn.Module) -> str:
    """sha256 of all parameters (in state-dict order), to compare ranks or runs."""
    digest = hashlib.sha256()
    for name, p in getattr(model, "module", model).state_dict().items():
        digest.update(name.encode())
        digest.update(p.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class Trainer:
    """Trains one MaskSR / MaskSR2 model; see the module docstring.

    Args:
        cfg: The configuration (ignored for the model when resuming: the checkpoint's is used,
            with ``train.max_steps`` taken from ``cfg``).
        clean_dir: Folder of clean speech (searched recursively).
        noise_dir: Folder of noise, or None for the pipeline's generated noise types.
        out_dir: Run folder (checkpoints, logs, final model).
        resume: Resume from the newest checkpoint in ``out_dir`` when there is one; when
            False and there is one, refuse to start.
        device: ``auto``, ``cpu`` or ``cuda``.

    Raises:
        FileExistsError: When ``resume`` is False but ``out_dir`` already holds checkpoints.
    """

    def __init__(self, cfg: MaskSRConfig, clean_dir: str | Path, noise_dir: str | Path | None,
                 out_dir: str | Path, resume: bool = True, device: str = "auto"):
        from urgentbench.systems.masksr.data import PairSimulator, list_audio

        self.out = Path(out_dir)
        self.dist = init_distributed(device)
        self.ckpt_dir = self.out / "checkpoints"
        latest = latest_checkpoint(self.ckpt_dir)
        if latest is not None and not resume:
            raise FileExistsError(f"{self.ckpt_dir} already holds checkpoints; resume, or choose another --out")
        self.resumed_from = latest
        ckpt = load_checkpoint(latest) if latest is not None else None
        if ckpt is not None:
            max_steps = cfg.train.max_steps
            if ckpt.config.to_dict() | {"train": None} != cfg.to_dict() | {"train": None}:
                logger.warning("resuming %s: the checkpoint's configuration is used, not the one given", latest)
            cfg = ckpt.config
            cfg.train.max_steps = max_steps
        self.cfg = cfg
        check_assets(cfg)
        #: Recorded in every checkpoint: which frozen parts are random (empty: none).
        self.extra = random_init_metadata(cfg)
        if self.extra and self.dist.is_main:
            logger.warning(
                "%s-%s trains against a randomly initialised %s (no pretrained weights in this configuration): "
                "for tests and smoke runs only; its checkpoints record random_init and are not real %s models",
                cfg.variant, cfg.size, " and ".join(self.extra["random_components"]), cfg.variant,
            )
        self.step = ckpt.step if ckpt is not None else 0
        torch.manual_seed(cfg.train.seed)
        self.model = MaskSR(cfg).to(self.dist.device)
        self.codec = Codec.build(cfg.codec, ckpt.codec if ckpt is not None else None).to(self.dist.device)
        self.teacher = HubertTeacher.build(cfg.semantic).to(self.dist.device) if cfg.semantic.enabled else None
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.train.lr, betas=tuple(cfg.train.betas), weight_decay=cfg.train.weight_decay
        )
        self.amp_dtype, use_scaler = precision_for(cfg.train.precision, self.dist.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        if ckpt is not None:
            self.model.load_state_dict(ckpt.model, strict=True)
            if ckpt.optimizer is not None:
                self.optimizer.load_state_dict(ckpt.optimizer)
            if ckpt.scaler is not None and use_scaler:
                self.scaler.load_state_dict(ckpt.scaler)
            logger.info("resuming from %s at step %d", latest, self.step)
        self.net = self.model
        if self.dist.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        self.n_samples = segment_samples(cfg)
        self.simulator = PairSimulator(
            list_audio(clean_dir), list_audio(noise_dir) if noise_dir else [], cfg.simulation,
            self.n_samples, cfg.codec.sample_rate, cfg.semantic.teacher_rate,
        )
        torch.manual_seed(cfg.train.seed + 1 + 7919 * self.dist.rank + self.step)  # masks, null conditions

    # ----------------------------------------------------------------- data
    def _loader(self, seed_offset: int = 0):
        from urgentbench.systems.masksr.data import SimulatedStream

        stream = SimulatedStream(self.simulator, self.cfg.train.seed + seed_offset, self.dist.rank, self.step)
        workers = self.cfg.train.num_workers
        return torch.utils.data.DataLoader(
            stream, batch_size=self.cfg.train.batch_size, num_workers=workers,
            pin_memory=self.dist.device.type == "cuda", persistent_workers=workers > 0,
        )

    def _targets(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        dev = self.dist.device
        noisy = batch["noisy"].to(dev, non_blocking=True)
        codes = self.codec.encode(batch["target"].to(dev, non_blocking=True))
        sem = None
        if self.teacher is not None:
            feats = self.teacher(batch["target16"].to(dev, non_blocking=True))
            sem = self.model.semantic.targets(feats, codes.shape[-1], self.cfg.codec.hop_length, self.cfg.codec.sample_rate)
        return noisy, codes, sem

    def _prepare_kmeans(self) -> None:
        """Load or fit the k-means centroids (MaskSR2 with ``semantic.target: kmeans``) unless set."""
        head = self.model.semantic
        if head is None or self.cfg.semantic.target != "kmeans" or bool(head.fitted):
            return
        s = self.cfg.semantic
        if s.kmeans_path:
            head.set_centroids(load_centroids(s.kmeans_path))
            logger.info("k-means centroids loaded from %s", s.kmeans_path)
            return
        centroids = torch.zeros_like(head.centroids)
        if self.dist.is_main:
            logger.info("fitting %d k-means centroids on %d batches of teacher features", s.n_clusters, s.kmeans_fit_batches)
            feats = []
            loader = iter(self._loader(seed_offset=10_000))
            for _ in range(s.kmeans_fit_batches):
                batch = next(loader)
                feats.append(self.teacher(batch["target16"].to(self.dist.device)).reshape(-1, s.teacher_dim).cpu())
            centroids = fit_kmeans(torch.cat(feats), s.n_clusters, s.kmeans_iters, seed=self.cfg.train.seed).to(centroids)
        if self.dist.distributed:
            import torch.distributed as dist

            centroids = centroids.to(self.dist.device)
            dist.broadcast(centroids, src=0)
        head.set_centroids(centroids)

    # ----------------------------------------------------------------- bookkeeping
    def _log(self, record: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        with open(self.out / "train_log.jsonl", "a") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
        logger.info("step %d: %s", record["step"], ", ".join(
            f"{k} {v:.4f}" for k, v in record.items() if k not in ("step", "time") and isinstance(v, float)))

    def save(self) -> Path | None:
        """Write ``checkpoints/step_<step>.safetensors`` (rank 0) and prune old ones."""
        path = None
        if self.dist.is_main:
            path = save_checkpoint(self.ckpt_dir / f"step_{self.step:08d}.safetensors", self.cfg, self.model,
                                   self.step, optimizer=self.optimizer, codec=self.codec, scaler=self.scaler,
                                   extra=self.extra)
            for old in checkpoint_files(self.ckpt_dir)[: -self.cfg.train.keep_checkpoints]:
                old.unlink()
        self._barrier()
        return path

    def _barrier(self) -> None:
        if self.dist.distributed:
            import torch.distributed as dist

            dist.barrier()

    def _mean(self, values: dict[str, float], count: int) -> dict[str, float]:
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys] + [float(count)], dtype=torch.float64, device=self.dist.device)
        if self.dist.distributed:
            import torch.distributed as dist

            dist.all_reduce(t)
        return {k: float(t[i] / t[-1]) for i, k in enumerate(keys)}

    # ----------------------------------------------------------------- the loop
    def train(self, max_steps: int | None = None) -> dict[str, Any]:
        """Run until ``max_steps`` (default ``train.max_steps``) optimizer steps in total.

        Returns:
            ``step``, ``losses`` (the logged records of this call) and ``param_sha256``.
        """
        cfg = self.cfg
        max_steps = cfg.train.max_steps if max_steps is None else max_steps
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            import yaml

            (self.out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        self._prepare_kmeans()
        self.net.train()
        records: list[dict[str, Any]] = []
        sums: dict[str, float] = {}
        count = 0
        loader = iter(self._loader()) if self.step < max_steps else None
        start = time.time()
        while self.step < max_steps:
            noisy, codes, sem = self._targets(next(loader))
            lr = lr_at(self.step, cfg)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(device_type=self.dist.device.type, dtype=self.amp_dtype or torch.float32,
                                enabled=self.amp_dtype is not None):
                out = self.net(noisy, codes, sem)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(out["loss"]).backward()
            self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.train.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.step += 1
            for key, value in out.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            sums["grad_norm"] = sums.get("grad_norm", 0.0) + float(grad_norm)
            count += 1
            if self.step % cfg.train.log_every == 0 or self.step == max_steps:
                record = {"step": self.step, "lr": lr, "time": round(time.time() - start, 3), **self._mean(sums, count)}
                records.append(record)
                self._log(record)
                sums, count = {}, 0
            if self.step % cfg.train.checkpoint_every == 0 and self.step < max_steps:
                self.save()
        if self.resumed_from is None or records:
            self.save()
        digest = param_digest(self.model)
        if self.dist.is_main:
            save_checkpoint(self.out / "model.safetensors", cfg, self.model, self.step, codec=self.codec, extra=self.extra)
        ranks = self.out / "ranks"
        ranks.mkdir(parents=True, exist_ok=True)
        (ranks / f"rank{self.dist.rank}.json").write_text(json.dumps(
            {"rank": self.dist.rank, "world_size": self.dist.world_size, "step": self.step, "param_sha256": digest}
        ))
        self._barrier()
        return {"step": self.step, "losses": records, "param_sha256": digest}

    def close(self) -> None:
        """Leave the process group (if this trainer joined one)."""
        import torch.distributed as dist

        if self.dist.distributed and dist.is_initialized():
            dist.destroy_process_group()


def train(cfg: MaskSRConfig, clean_dir: str | Path, noise_dir: str | Path | None, out_dir: str | Path,
          max_steps: int | None = None, resume: bool = True, device: str = "auto") -> dict[str, Any]:
    """Build a :class:`Trainer`, train to ``max_steps`` and close it; see :meth:`Trainer.train`."""
    trainer = Trainer(cfg, clean_dir, noise_dir, out_dir, resume=resume, device=device)
    try:
        return trainer.train(max_steps)
    finally:
        trainer.close()
