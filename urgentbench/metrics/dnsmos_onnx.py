"""The ONNX side of DNSMOS: the official P.835 graph split in three, and onnxruntime's providers.

:func:`split_p835` cuts ``sig_bak_ovr.onnx`` in memory into *spectrum* (frames -> log power
spectrum), *convolutions* (-> the fourth convolution's output) and *head* (one 900-frame
window -> raw SIG, BAK, OVRL); every node of the official graph is in exactly one part,
except the framing, which :meth:`urgentbench.metrics.dnsmos_features.Stretch.frames` does
in numpy. :func:`split_p835_cached` keeps the three parts in the cache folder, so that a
scoring worker loads them without importing the ``onnx`` package (about 1.5 s of CPU per
worker). :func:`execution_providers` maps the ``device`` option to onnxruntime's execution providers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from urgentbench.metrics.dnsmos_features import FRAMES, P835_FRAME

__all__ = [
    "DEVICES",
    "T_CONV",
    "T_FRAMES",
    "T_INPUT",
    "T_LOGSPEC",
    "T_OUTPUT",
    "execution_providers",
    "split_p835",
    "split_p835_cached",
]

logger = logging.getLogger(__name__)

#: Version of the split's layout; part of the cache folder's name (raise it when split_p835 changes).
SPLIT_VERSION = "1"
_PARTS = ("spectrum", "convs", "head")

#: Tensors of sig_bak_ovr.onnx where the graph is split.
T_INPUT = "input_1"
T_FRAMES = "mos_estimator_logpow/concat:0"
T_LOGSPEC = "mos_estimator_logpow/truediv:0"
T_CONV = "mos_estimator_logpow/conv2d_3/Relu:0"
T_OUTPUT = "Identity:0"

DEVICES = ("cpu", "cuda")


def execution_providers(device: Any, available: Sequence[str]) -> tuple[list[Any], str]:
    """The onnxruntime execution providers for the ``device`` option, and the device's canonical name.

    Raises:
        ValueError: For a device other than cpu, cuda, cuda:N.
        RuntimeError: For CUDA where onnxruntime has no CUDA execution provider.
    """
    text = str(device).strip().lower() if isinstance(device, str) else ""
    kind, _, index = text.partition(":")
    if kind not in DEVICES or (index and (kind == "cpu" or not index.isdigit())):
        raise ValueError(f"DNSMOS device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if kind == "cpu":
        return ["CPUExecutionProvider"], "cpu"
    if "CUDAExecutionProvider" not in available:
        raise RuntimeError(
            f"DNSMOS device={device!r} needs onnxruntime's CUDAExecutionProvider, but this "
            f"onnxruntime has only {', '.join(available)}; "
            "fix: pip install onnxruntime-gpu (or use device='cpu')"
        )
    device_id = int(index or 0)
    return [("CUDAExecutionProvider", {"device_id": device_id}), "CPUExecutionProvider"], f"cuda:{device_id}"


def split_p835(path: Any) -> tuple[bytes, bytes, bytes]:
    """The official P.835 graph as three serialised models: spectrum, convolutions, head.

    spectrum: frames (N, T, 320) -> log10 power spectrum (N, T, 161); convolutions:
    (N, T, 161) -> the fourth convolution's ReLU output (N, 32, T, 161); head:
    (N, 32, 900, 161) -> raw (SIG, BAK, OVRL). The framing nodes before the spectrum
    (Slice, Reshape, Concat) are replaced by :meth:`Stretch.frames`.

    Raises:
        RuntimeError: When the graph does not have the expected tensors (another model file).
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    initializers = {init.name: init for init in graph.initializer}
    for name in (T_FRAMES, T_LOGSPEC, T_CONV, T_OUTPUT):
        if name not in producer:
            raise RuntimeError(
                f"DNSMOS model {path}: tensor {name!r} not found; is it the official P.835 model?"
            )

    def part(source: str, target: str, in_shape: list[Any], out_shape: list[Any]) -> tuple[bytes, set[int]]:
        needed: set[int] = set()
        stack = [target]
        while stack:
            tensor = stack.pop()
            if tensor == source or tensor in initializers:
                continue
            node = producer.get(tensor)
            if node is None:
                raise RuntimeError(f"DNSMOS model {path}: {target!r} depends on {tensor!r} beyond {source!r}")
            if id(node) not in needed:
                needed.add(id(node))
                stack.extend(node.input)
        nodes = [node for node in graph.node if id(node) in needed]
        used = {name for node in nodes for name in node.input}
        sub = helper.make_graph(
            nodes,
            f"dnsmos_p835_{target}",
            [helper.make_tensor_value_info(source, TensorProto.FLOAT, in_shape)],
            [helper.make_tensor_value_info(target, TensorProto.FLOAT, out_shape)],
            [init for name, init in initializers.items() if name in used],
        )
        sub_model = helper.make_model(sub, opset_imports=model.opset_import, ir_version=model.ir_version)
        return sub_model.SerializeToString(), needed

    spectrum, a = part(T_FRAMES, T_LOGSPEC, ["N", "T", P835_FRAME], ["N", "T", 161])
    convs, b = part(T_LOGSPEC, T_CONV, ["N", "T", 161], ["N", 32, "T", 161])
    head, c = part(T_CONV, T_OUTPUT, ["N", 32, FRAMES, 161], ["N", 3])
    framing = {id(node) for node in graph.node} - a - b - c
    kinds = sorted(node.op_type for node in graph.node if id(node) in framing)
    if a & b or b & c or a & c or kinds != ["Concat", "Reshape", "Reshape", "Slice", "Slice"]:
        raise RuntimeError(
            f"DNSMOS model {path}: unexpected graph structure ({kinds}); is it the official P.835 model?"
        )
    return spectrum, convs, head


def split_p835_cached(path: Any, model_sha256: str, cache: Path | None = None) -> tuple[bytes, bytes, bytes]:
    """:func:`split_p835` of the verified model ``model_sha256``, kept in the cache folder.

    The parts are stored in ``<cache>/dnsmos-split/<model sha256>-v<SPLIT_VERSION>/`` beside
    a ``parts.json`` holding each part's sha256; every load checks them, and a missing,
    damaged or altered part is split again from the model and rewritten atomically. A cache
    that cannot be written (read-only folder) only costs the split.

    Args:
        path: The official ``sig_bak_ovr.onnx`` (its sha256 already checked by the caller).
        model_sha256: That sha256 (names the cache entry).
        cache: The cache folder (default: urgentbench's, ``$URGENTBENCH_CACHE``).
    """
    from urgentbench.assets.pins import cache_dir

    folder = (cache or cache_dir()) / "dnsmos-split" / f"{model_sha256}-v{SPLIT_VERSION}"
    index = folder / "parts.json"
    try:
        expected = json.loads(index.read_text())
        parts = tuple((folder / f"{name}.onnx").read_bytes() for name in _PARTS)
        if [hashlib.sha256(p).hexdigest() for p in parts] == [expected[name] for name in _PARTS]:
            return parts  # type: ignore[return-value]
        logger.warning("DNSMOS: cached graph parts in %s do not match their sha256; splitting again", folder)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("DNSMOS: cached graph parts in %s unreadable (%s); splitting again", folder, exc)
    parts = split_p835(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in zip(_PARTS, parts):
            _write_atomic(folder / f"{name}.onnx", data)
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in zip(_PARTS, parts)}
        _write_atomic(index, json.dumps(digests, indent=1).encode())
    except OSError as exc:
        logger.info("DNSMOS: could not cache the split graph in %s (%s)", folder, exc)
    return parts


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
