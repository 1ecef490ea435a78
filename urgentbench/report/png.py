"""A small PNG encoder (8-bit RGB or palette images) for the HTML leaderboard's spectrograms."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def png_bytes(pixels: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """Encode an image as a PNG file.

    Args:
        pixels: ``(height, width, 3)`` uint8 RGB, or ``(height, width)`` uint8 palette indices.
        palette: ``(n, 3)`` uint8 colours (n <= 256) for an index image.

    Raises:
        ValueError: For arrays of another shape or type, or an index image without a palette.
    """
    indexed = pixels.ndim == 2
    if pixels.dtype != np.uint8 or not (indexed or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"png_bytes needs (h, w, 3) or (h, w) uint8 pixels, got {pixels.shape} {pixels.dtype}")
    if indexed and (palette is None or palette.ndim != 2 or palette.shape[1] != 3 or len(palette) > 256):
        raise ValueError("an index image needs a palette of at most 256 RGB colours")
    h, w = pixels.shape[:2]
    raw = b"".join(b"\x00" + pixels[i].tobytes() for i in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 3 if indexed else 2, 0, 0, 0)
    body = chunk(b"IHDR", header)
    if indexed:
        body += chunk(b"PLTE", np.asarray(palette, dtype=np.uint8).tobytes())
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
