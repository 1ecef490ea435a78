"""urgentbench: an evaluation benchmark for speech enhancement and restoration (URGENT style).

The Python API (README "Python API")::

    import urgentbench

    r = urgentbench.evaluate("noisy", "demo", metrics=["pesq", "estoi"], limit=2)
    r.to_pandas()
    r = urgentbench.load_results("results", suite="demo")

Importing the package is light: the names below are loaded on first use (no numpy
pipeline, pandas or torch at import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module defining it (imported on first access).
_LAZY = {
    "evaluate": "urgentbench.api",
    "load_results": "urgentbench.api",
    "Results": "urgentbench.api",
    "ResultsError": "urgentbench.api",
    "EvaluationError": "urgentbench.api",
    "RunOptions": "urgentbench.pipeline.options",
}

__all__ = ["EvaluationError", "Results", "ResultsError", "RunOptions", "__version__", "evaluate", "load_results"]

if TYPE_CHECKING:
    from urgentbench.api import EvaluationError, Results, ResultsError, evaluate, load_results
    from urgentbench.pipeline.options import RunOptions


def __getattr__(name: str) -> Any:
    """Load a public name of the API on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'urgentbench' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
