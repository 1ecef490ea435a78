"""A Python function as a system: ``f(waveform, sample_rate) -> (waveform, sample_rate)``.

:func:`callable_producer` turns a function (a model in a training loop, a notebook's
enhancer) into a :class:`~urgentbench.pipeline.specs.ProducerSpec`, so that its outputs
are scored like any system's: same store, resume and failure policy. Its results are
keyed by the name and a config hash the caller gives (derived from the name otherwise):
give a new config hash (or name) whenever the function changes, or the stored results
are reused.

:class:`CallableSystem` is the :class:`~urgentbench.systems.base.System` a worker runs:
it hands the function a mono float32 numpy array and its rate, and checks what comes
back. Anything unusable (an exception, a value that is not ``(waveform, rate)``, NaN, the
wrong length, audio at another rate than the one returned) raises with the reason, which
the pipeline stores as that utterance's failure (the participant's); the run goes on.
A torch tensor (on any device, with or without gradient) is accepted and converted, as
are leading or trailing axes of size 1 (``(1, T)``).

A function runs in worker processes only when it can be pickled and unpickled there
(:func:`pickle_problem`: a module-level function of an importable module, or a picklable
object); otherwise it runs in the calling process.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from urgentbench.audio import AudioError, check_waveform
from urgentbench.errors import one_line
from urgentbench.pipeline.specs import ProducerSpec
from urgentbench.systems.base import System, SystemCard, config_hash

#: What a callable name or config hash may contain (both become part of a folder name).
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")

#: A function taking and returning ``(waveform, sample_rate)``.
Enhancer = Callable[[np.ndarray, int], Any]


def describe(function: Any) -> str:
    """``module.qualname`` of a function or callable object (for provenance and messages)."""
    target = function if hasattr(function, "__qualname__") else type(function)
    module = getattr(target, "__module__", None) or "?"
    return f"{module}.{getattr(target, '__qualname__', type(function).__name__)}"


def check_label(value: str, what: str) -> str:
    """``value`` when it is a usable name or config hash (letters, digits, ``._+-``; at most 64).

    Raises:
        ValueError: Naming ``what`` and the rule.
    """
    if not isinstance(value, str) or not _SAFE.match(value):
        raise ValueError(
            f"{what} {value!r}: use 1 to 64 letters, digits, '.', '_', '+' or '-', starting with a letter or "
            "digit (it names the folder of the enhanced files)"
        )
    return value


def callable_producer(
    function: Enhancer, name: str, config: str | None = None, sample_rate: int | None = None
) -> ProducerSpec:
    """A producer whose enhanced audio comes from ``function``.

    Args:
        function: ``f(waveform, sample_rate) -> (waveform, sample_rate)``.
        name: The name its results are stored and shown under.
        config: The config hash its results are keyed by (default: derived from ``name``
            and ``sample_rate``); change it when the function changes.
        sample_rate: The rate ``function`` takes (inputs are resampled to it, outputs back);
            default: each utterance's own rate.

    Raises:
        ValueError: For something that is not callable, or an unusable name, config hash
            or rate.
    """
    if not callable(function):
        raise ValueError(f"system must be a registered name, a folder of outputs or a callable, got {type(function).__name__}")
    check_label(name, "name")
    if sample_rate is not None and (isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1):
        raise ValueError(f"sample_rate of the callable must be a positive integer in Hz, got {sample_rate!r}")
    if config is None:
        config = config_hash({"callable": name, "sample_rate": sample_rate})
    else:
        check_label(config, "config_hash")
    options = () if sample_rate is None else (("sample_rate", sample_rate),)
    return ProducerSpec(
        name=name,
        config_hash=config,
        options=options,
        display_name=name,
        metadata=(("callable", describe(function)),),
        function=function,
    )


def pickle_problem(function: Any) -> str | None:
    """Why ``function`` cannot run in a spawned worker process, or None when it can.

    It must pickle here and unpickle in a fresh worker, which is tried (one spawned
    process): a function of ``__main__`` pickles by name, and a worker that imports the
    main script again runs no ``if __name__ == "__main__":`` block (nor anything of
    ``python -c``, stdin or a notebook), so such a function is not found there.
    """
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    from multiprocessing import get_context

    try:
        data = pickle.dumps(function)
    except Exception as exc:  # lambdas, local functions, objects holding locks or open files
        return f"it cannot be pickled ({one_line(exc)})"
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if b"__main__" in data and not (main_file and os.path.isfile(main_file)):
        return "it is defined in an interactive __main__ (python -c, stdin, a notebook), which worker processes cannot import"
    try:
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            pool.submit(_unpickles, data).result()
    except BrokenProcessPool:
        return "a worker process could not be started to unpickle it"
    except Exception as exc:
        return f"a worker process cannot unpickle it ({one_line(exc)})"
    return None


def _unpickles(data: bytes) -> None:
    """Unpickle ``data`` (in a spawned worker, for :func:`pickle_problem`)."""
    pickle.loads(data)


def to_array(value: Any, source: str) -> np.ndarray:
    """A waveform returned by a callable as a 1-D numpy array.

    A torch tensor (or anything with ``detach``/``cpu``/``numpy``) is detached, moved to
    the CPU and converted (half precision as float32); axes of size 1 are dropped, so
    ``(1, T)`` and ``(T, 1)`` are mono.

    Raises:
        AudioError: For something that is not an array of samples, or several channels.
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        tensor = value.detach().cpu()
        if getattr(tensor, "is_floating_point", lambda: False)() and tensor.dtype.itemsize < 4:
            tensor = tensor.float()  # numpy has no bfloat16
        value = tensor.numpy()
    if not isinstance(value, np.ndarray):
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
            value = np.asarray(value, dtype=np.float64)
        else:
            raise AudioError(source, f"the waveform it returned is a {type(value).__name__}, not an array of samples")
    if value.ndim > 1 and sum(1 for d in value.shape if d > 1) <= 1:
        value = value.reshape(-1)
    return check_waveform(value, source)


class CallableSystem(System):
    """A Python function run as a system (see the module docstring).

    Args:
        function: ``f(waveform, sample_rate) -> (waveform, sample_rate)``.
        name: Its name (messages and the card).
        sample_rate: The rate it takes; None: each utterance's own rate.
    """

    def __init__(self, function: Enhancer, name: str, sample_rate: int | None = None):
        self.function = function
        self.fixed_rate = sample_rate
        card = SystemCard(name=name, description=f"Python callable {describe(function)}",
                          sample_rate=sample_rate or 16000, entry=f"{describe(function)}:__call__")
        super().__init__(card)

    @property
    def native_rate_follows_input(self) -> bool:  # type: ignore[override]
        """True without a fixed rate: the function gets each utterance at its own rate."""
        return self.fixed_rate is None

    def enhance(self, waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Call the function on a copy of ``waveform`` and check what it returns.

        Raises:
            RuntimeError: When the function raised (or called ``sys.exit``), with its message.
            AudioError: When it returned something unusable, with the reason.
        """
        source = f"callable {self.card.name!r}"
        try:
            out = self.function(np.array(waveform, dtype=np.float32, copy=True), int(sample_rate))
        except (Exception, SystemExit) as exc:  # one failing utterance never ends the run
            text = str(exc).strip().splitlines()
            raise RuntimeError(
                f"{source} raised {type(exc).__name__}" + (f": {text[0]}" if text else "")
            ) from exc
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise AudioError(source, f"must return (waveform, sample_rate), got {_kind(out)}")
        y, rate = out
        rate = _rate(rate, source)
        y = to_array(y, source)
        expected = len(waveform) * rate / sample_rate
        tolerance = int(np.ceil(rate / min(rate, sample_rate))) + 1
        if abs(len(y) - expected) > tolerance:
            raise AudioError(
                source,
                f"returned {len(y)} samples at the {rate} Hz it declares ({len(y) / rate:.3f} s) for "
                f"{len(waveform)} input samples at {sample_rate} Hz ({len(waveform) / sample_rate:.3f} s): the "
                "output must be as long as the input, at the rate returned with it",
            )
        if rate == sample_rate and len(y) != len(waveform):
            raise AudioError(source, f"returned {len(y)} samples for {len(waveform)} input samples at {rate} Hz; "
                                     "outputs must be exactly as long as the input")
        return y, rate


def _kind(value: Any) -> str:
    """``a tuple of 3``, ``an ndarray``: what a callable returned, for messages."""
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape}"
    name = type(value).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name} of {len(value)}" if isinstance(value, (tuple, list)) else f"{article} {name}"


def _rate(value: Any, source: str) -> int:
    """The sample rate a callable returned, as a positive int."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()  # a numpy or torch scalar
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value != int(value) or value < 1):
        raise AudioError(source, f"the sample rate it returned, {value!r}, is not a positive whole number of Hz")
    return int(value)
