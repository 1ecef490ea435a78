"""Reproducible Ogg files: the stream serial number fixed, page checksums (CRC-32) recomputed."""

from __future__ import annotations

#: CRC-32 of Ogg pages: polynomial 0x04C11DB7, MSB first, initial value 0, no final xor.
_OGG_CRC_TABLE = []
for _byte in range(256):
    _crc = _byte << 24
    for _ in range(8):
        _crc = ((_crc << 1) ^ 0x04C11DB7) if _crc & 0x80000000 else (_crc << 1)
    _OGG_CRC_TABLE.append(_crc & 0xFFFFFFFF)


def ogg_crc(data: bytes) -> int:
    """CRC-32 of an Ogg page (its checksum field zeroed), as libogg computes it."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC_TABLE[((crc >> 24) ^ b) & 0xFF]
    return crc


def fixed_ogg_serial(data: bytes, serial: int = 1) -> bytes:
    """Ogg bytes with every page's stream serial number set to ``serial`` (CRCs recomputed).

    libvorbis' encoder is deterministic but libsndfile draws a random serial number per
    file, so the same leaderboard would differ byte for byte on every regeneration.
    Single-stream files only (which is what :func:`soundfile.write` produces).

    Raises:
        ValueError: If ``data`` is not a well-formed Ogg stream.
    """
    out = bytearray(data)
    pos = 0
    while pos < len(out):
        if out[pos : pos + 4] != b"OggS" or pos + 27 > len(out):
            raise ValueError(f"not an Ogg page at byte {pos}")
        n_segments = out[pos + 26]
        header_len = 27 + n_segments
        page_len = header_len + sum(out[pos + 27 : pos + header_len])
        if pos + page_len > len(out):
            raise ValueError(f"truncated Ogg page at byte {pos}")
        out[pos + 14 : pos + 18] = serial.to_bytes(4, "little")
        out[pos + 22 : pos + 26] = b"\0\0\0\0"
        out[pos + 22 : pos + 26] = ogg_crc(bytes(out[pos : pos + page_len])).to_bytes(4, "little")
        pos += page_len
    return bytes(out)
