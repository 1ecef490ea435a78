"""The pipeline's own errors: a bad request (before any work) and a metric that cannot be set up."""

from __future__ import annotations


class RunError(RuntimeError):
    """A problem found before any work starts (unknown or unavailable plug-in, bad suite or option)."""


class MetricSetupError(RuntimeError):
    """A metric could not be set up in a worker (corrupt or missing asset, broken package).

    A run-level error, not an utterance's: nothing is stored for the metric, the run
    reports it once with the fix, and the other metrics go on.
    """
