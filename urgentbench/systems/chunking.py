"""Chunks of a long input and the crossfade that joins them, shared by the chunking systems.

A system that processes long inputs in overlapping chunks cuts them with :func:`chunk_bounds`
and blends each overlap with :func:`crossfade_weights`: the later chunk's weight is 0 while it
warms up, rises as a raised cosine, and is 1 over the tail of the overlap.
"""

from __future__ import annotations

import numpy as np


def chunk_bounds(n: int, chunk: int, step: int) -> list[tuple[int, int]]:
    """``(start, end)`` of chunks of ``chunk`` samples starting every ``step`` samples, the last ending at ``n``.

    One chunk ``(0, n)`` when ``n <= chunk``; ``0 < step < chunk`` makes consecutive chunks overlap
    by ``chunk - step`` samples.
    """
    if n <= chunk:
        return [(0, n)]
    bounds, start = [], 0
    while True:
        end = min(start + chunk, n)
        bounds.append((start, end))
        if end == n:
            return bounds
        start += step  # the next chunk reaches past ``end``, as ``end < n``


def crossfade_weights(overlap: int, fade: int, tail: int) -> np.ndarray:
    """Weight of the later chunk over an ``overlap``-sample region: 0, a ``fade``-sample raised cosine, then 1 for ``tail``."""
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)
    return np.concatenate([np.zeros(overlap - fade - tail), ramp, np.ones(tail)])
