"""The base of metrics whose numbers come from model files: :class:`ModelMetric`.

What every checkpoint-based metric (DNSMOS, NISQA, UTMOS, SpeechBERTScore, LPS, speaker
similarity, Whisper WER) shares, written once:

- the inference-thread option (``threads``, or another name) resolved against
  ``$URGENTBENCH_THREADS`` (:func:`~urgentbench.metrics._threads.resolve_threads`) and handed
  to torch;
- the assets these options load (:meth:`ModelMetric.assets_for`: the class's :attr:`asset`,
  none when a ``model_dir`` option names a local folder instead) and their digests, the
  folder's file digests for a ``model_dir`` (:func:`model_dir_hashes`), both part of the
  results key;
- the sha256-verified asset folder to load from (:meth:`ModelMetric.asset_folder`);
- the ``device`` option (``"cpu"``, ``"cuda"``, ``"cuda:N"``) checked when the metric is
  built and resolved at set-up (:func:`parse_device`, :func:`resolve_device`,
  :meth:`ModelMetric.use_device`), left out of the options hash when it is ``"cpu"``
  (:meth:`ModelMetric.hashed_options`), so that adding the option kept every stored key;
- provenance: the model's identity, the device and the thread count.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from urgentbench.assets import get_asset
from urgentbench.hashing import sha256_file
from urgentbench.metrics._threads import resolve_threads
from urgentbench.metrics.base import Metric, MetricError


def mono_audio(waveform: np.ndarray, role: str) -> np.ndarray:
    """``waveform`` as float32 after checking that a speaker or quality model can take it.

    Args:
        waveform: The audio.
        role: Which signal it is, for messages (``"enhanced"``, ``"reference"``).

    Raises:
        MetricError: For an empty or non-mono waveform, or one with NaN or Inf samples.
    """
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise MetricError(f"{role} audio must be a non-empty mono waveform, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise MetricError(f"{role} audio contains NaN or Inf samples")
    return x


def set_torch_threads(threads: int) -> None:
    """Give torch ``threads`` intra-op threads (0 leaves torch's setting alone)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


#: The device kinds a model metric runs on.
DEVICE_KINDS = ("cpu", "cuda")


def parse_device(value: Any, owner: str = "metric") -> str:
    """The canonical form of a ``device`` option: ``"cpu"`` or ``"cuda:N"`` (``"cuda"`` is ``"cuda:0"``).

    Args:
        value: The option as given.
        owner: Who asks, for the message (the metric's name).

    Raises:
        ValueError: For anything but cpu, cuda or cuda:N (one line).
    """
    text = value.strip().lower() if isinstance(value, str) else ""
    kind, sep, index = text.partition(":")
    if kind not in DEVICE_KINDS or (sep and (kind == "cpu" or not index.isdigit())):
        raise ValueError(f"{owner}: device must be 'cpu', 'cuda' or 'cuda:N', got {value!r}")
    return "cpu" if kind == "cpu" else f"cuda:{int(index or 0)}"


def resolve_device(value: Any, owner: str = "metric", cuda_devices: int | None = None) -> str:
    """:func:`parse_device`, then check that the CUDA device asked for exists here.

    Args:
        value: The ``device`` option.
        owner: Who asks, for messages.
        cuda_devices: CUDA devices the backend sees; None asks torch
            (``torch.cuda.device_count()`` when ``torch.cuda.is_available()``).

    Returns:
        ``"cpu"`` or ``"cuda:N"``.

    Raises:
        ValueError: For a malformed value.
        RuntimeError: When CUDA is asked for but not available (the message names the fix).
    """
    device = parse_device(value, owner)
    if device == "cpu":
        return device
    if cuda_devices is None:
        import torch

        cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.split(":")[1])
    if cuda_devices == 0:
        raise RuntimeError(
            f"{owner}: device={value!r} asks for CUDA, but no CUDA device is available here "
            "(CPU-only torch build, no GPU or no driver); fix: use device='cpu', or install a CUDA build of "
            "torch on a GPU machine"
        )
    if index >= cuda_devices:
        raise RuntimeError(
            f"{owner}: device={value!r} but only {cuda_devices} CUDA device(s) are visible; "
            f"fix: use cuda:0 to cuda:{cuda_devices - 1}"
        )
    return device


def device_tensor(array: np.ndarray, device: str) -> Any:
    """``array`` as a torch tensor on ``device`` (shares memory on the CPU)."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor if device == "cpu" else tensor.to(device)


def equal_length_groups(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped by equal length, at most ``batch_size`` per group, in first-seen order.

    For models whose result for an item depends on the padding of a batch (a group
    normalisation over time, attention without a mask): only items of one length share a
    forward pass, so a batched value equals the one-by-one value to float rounding.
    """
    groups: dict[int, list[list[int]]] = {}
    order: list[list[int]] = []
    for i, n in enumerate(lengths):
        chunks = groups.setdefault(int(n), [])
        if not chunks or len(chunks[-1]) >= batch_size:
            chunks.append([])
            order.append(chunks[-1])
        chunks[-1].append(i)
    return order


def forward_equal_lengths(waves: Sequence[Any], forward: Callable[[Any], Sequence[Any]], batch_size: int) -> list[Any]:
    """``forward`` on stacks of the equal-length tensors of ``waves``: one result per wave, in order.

    Args:
        waves: Tensors ``(..., time)`` (one per item, already on the model's device).
        forward: Takes a stack ``(items, ..., time)`` and returns one result per item.
        batch_size: Most items per stack.
    """
    import torch

    out: list[Any] = [None] * len(waves)
    for group in equal_length_groups([int(w.shape[-1]) for w in waves], batch_size):
        rows = forward(torch.stack([waves[k] for k in group]))
        for k, row in zip(group, rows):
            out[k] = row
    return out


def finite_score(value: float, label: str) -> float:
    """``value`` when finite, else a MetricError naming the model (``label``)."""
    if not np.isfinite(value):
        raise MetricError(f"{label} produced a non-finite score ({value})")
    return float(value)


def scalar_scores(
    items: Sequence[Any], wave_of: Callable[[Any], Any], model: Callable[[Any], Sequence[Any]], batch_size: int,
    label: str,
) -> list[float | Exception]:
    """One score per item from a model giving one scalar per wave of a stack (UTMOS, SCOREQ).

    ``wave_of(item)`` gives the item's model input (a tensor on the model's device) or raises
    :class:`MetricError`, which becomes that item's result; waves of equal length share a
    forward pass (:func:`forward_equal_lengths`); a non-finite score is a MetricError.
    """
    import torch

    out: list[float | Exception | None] = [None] * len(items)
    ready: list[tuple[int, Any]] = []
    for i, item in enumerate(items):
        try:
            ready.append((i, wave_of(item)))
        except MetricError as exc:
            out[i] = exc
    with torch.inference_mode():
        values = forward_equal_lengths([w for _, w in ready], model, batch_size)
    for (i, _), value in zip(ready, values):
        try:
            out[i] = finite_score(float(value), label)
        except MetricError as exc:
            out[i] = exc
    return out  # type: ignore[return-value]


class ModelMetric(Metric):
    """A metric computed by a model loaded from checkpoint files.

    Subclasses name the asset their default options load (:attr:`asset`), or override
    :meth:`asset_name` when an option picks it; they load the model in :meth:`setup`,
    calling :meth:`use_threads` and :meth:`asset_folder`.
    """

    #: The asset the metric loads (None: none, or chosen by an option in :meth:`asset_name`).
    asset: ClassVar[str | None] = None
    #: The option holding the inference thread count (None: ``$URGENTBENCH_THREADS`` or the default).
    threads_option: ClassVar[str] = "threads"
    #: Whether provenance records the device the model ran on.
    records_device: ClassVar[bool] = True
    #: Whether ``device="cpu"`` stays in the options hash: True only for metrics whose
    #: ``device`` option is older than the rule of :meth:`hashed_options` (their stored keys
    #: already hash it).
    hash_cpu_device: ClassVar[bool] = False

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._threads = 0
        self._device = "cpu"
        if "device" in self.options:  # a malformed value fails here, before any model is loaded
            parse_device(self.options["device"], self.name)

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """``threads`` (None: ``$URGENTBENCH_THREADS`` or torch's default) and ``device`` (cpu, cuda, cuda:N)."""
        return {"threads": None, "device": "cpu"}

    @classmethod
    def hashed_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options as hashed: ``device`` left out when it is ``"cpu"``, canonical otherwise.

        Scores made on the CPU keep the keys they had before the option existed; GPU
        scores are not bit-identical to CPU ones, so a CUDA device is part of the key.
        """
        out = dict(options)
        if "device" in out:
            try:
                device = parse_device(out["device"], cls.name)
            except ValueError:
                return out  # hashed as given; building the metric reports the bad value
            if device == "cpu" and not cls.hash_cpu_device:
                del out["device"]
            elif device != "cpu":
                out["device"] = device
        return out

    def use_device(self, cuda_devices: int | None = None) -> str:
        """Resolve the ``device`` option (:func:`resolve_device`) and record it for provenance.

        Returns:
            ``"cpu"`` or ``"cuda:N"``.

        Raises:
            ValueError: For a malformed value.
            RuntimeError: When CUDA is asked for but not available here.
        """
        self._device = resolve_device(self.options.get("device", "cpu"), self.name, cuda_devices)
        return self._device

    @classmethod
    def asset_name(cls, options: Mapping[str, Any]) -> str | None:
        """The asset that complete ``options`` load (default :attr:`asset`)."""
        return cls.asset

    @classmethod
    def assets(cls) -> Sequence[Any]:
        """The assets of the default options (see :meth:`assets_for`)."""
        return cls.assets_for(cls.default_options())

    @classmethod
    def assets_for(cls, options: Mapping[str, Any]) -> Sequence[Any]:
        """The asset these options load; none when a ``model_dir`` option names a local folder."""
        opts = {**cls.default_options(), **(options or {})}
        if opts.get("model_dir"):
            return ()
        name = cls.asset_name(opts)
        return (get_asset(name),) if name else ()

    @classmethod
    def model_hashes(cls, options: Mapping[str, Any]) -> dict[str, str]:
        """The asset digests (:meth:`Metric.model_hashes`), or the digest of the files of ``model_dir``."""
        opts = {**cls.default_options(), **(options or {})}
        return model_dir_hashes(opts.get("model_dir")) or super().model_hashes(opts)

    def use_threads(self, torch: bool = True) -> int:
        """Resolve the thread option (or ``$URGENTBENCH_THREADS``) and, with ``torch``, hand it to torch.

        Returns:
            The thread count, 0 meaning the library's default.

        Raises:
            ValueError: When the option or the environment variable is not a positive integer.
        """
        self._threads = resolve_threads(self.options[self.threads_option])
        if torch:
            set_torch_threads(self._threads)
        return self._threads

    def asset_folder(self, name: str | None = None) -> Path:
        """The folder of asset ``name`` (default: the one these options load), every file sha256-verified.

        Raises:
            AssetError: When the asset is missing or corrupt (the message holds the fix commands).
        """
        return get_asset(name or self.asset_name(self.options)).path()

    def model_provenance(self) -> dict[str, Any] | None:
        """The identity of the model these options load: the asset's provenance (None: nothing to name)."""
        assets = self.assets_for(self.options)
        return assets[0].provenance() if assets else None

    def provenance(self) -> dict[str, Any]:
        """Version, options, library versions, the model's identity, the device and the thread count."""
        prov = super().provenance()
        model = self.model_provenance()
        if model is not None:
            prov["model"] = model
        if self.records_device:
            prov["device"] = self._device
        prov["threads"] = self._threads or "default"
        return prov


# --------------------------------------------------------------------------- local model folders

_FOLDER_HASHES: dict[tuple[str, tuple[tuple[str, int, int], ...]], dict[str, str]] = {}
_FOLDER_LOCK = threading.Lock()


def folder_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file in ``folder`` (relative path -> digest), cached while sizes and mtimes stay."""
    paths = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    stamp = tuple((p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    key = (str(Path(folder).resolve()), stamp)
    with _FOLDER_LOCK:
        if key in _FOLDER_HASHES:
            return dict(_FOLDER_HASHES[key])
    hashes = {p.relative_to(folder).as_posix(): sha256_file(p) for p in paths}
    with _FOLDER_LOCK:
        _FOLDER_HASHES[key] = hashes
    return dict(hashes)


def digest_of(files: Mapping[str, str]) -> str:
    """One sha256 over the sorted ``name digest`` lines of a folder's files."""
    lines = "".join(f"{name} {digest}\n" for name, digest in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def model_dir_hashes(model_dir: str | None) -> dict[str, str]:
    """``{"model_dir PATH": digest}`` of a user-given model folder (empty when none or unreadable).

    Goes into the results key, so scores from different local checkpoints are never mixed.
    """
    if not model_dir:
        return {}
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        return {}
    return {f"model_dir {folder}": digest_of(folder_hashes(folder))}
