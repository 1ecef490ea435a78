"""Audio I/O with validation, soxr resampling and the 16-bit grid used for stored audio.

All audio inside urgentbench is mono float32 in [-1, 1]. Files are checked when read:
an unreadable, empty, non-mono or non-finite file raises :class:`AudioError` with a
one-line message naming the file and the problem.

Only regular files are read. What a path is gets checked with ``lstat``/``stat``
*before* anything is opened (a FIFO would block ``open``, ``/dev/zero`` would never end),
the file is then opened without following links and non-blocking, and ``fstat`` on the
open descriptor confirms it is still a regular file. A symbolic link is followed only when
its target is a regular file (and, where a folder is given, stays inside that folder).

Cached audio (rendered inputs, systems' enhanced outputs) is written atomically with its
sha256 in a sidecar file (``x.flac.sha256``, ``sha256sum`` format) and verified on every
read (:func:`write_flac` with ``record_checksum``, :func:`read_checked_flac`); the bytes
are hashed as they are written and as they are read for decoding, so checking costs no
extra pass over the file.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from urgentbench.hashing import sha256_stream

PCM16_SCALE = 32768.0


class AudioError(ValueError):
    """A file or waveform that cannot be used, with a one-line reason naming it."""

    def __init__(self, source: str | os.PathLike, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class ChecksumError(AudioError):
    """A cached file whose bytes are not the ones recorded when it was written (or with no record)."""


class MissingChecksumError(ChecksumError):
    """A cached file with no sha256 record (written by an older urgentbench, or a crash between the writes)."""


#: Suffix of the sidecar holding a cached file's sha256 (``<name>.sha256``).
CHECKSUM_SUFFIX = ".sha256"

#: Encodings that lose information, by soundfile subtype, with the name used in messages.
LOSSY_SUBTYPES = {
    "MPEG_LAYER_I": "MPEG layer I",
    "MPEG_LAYER_II": "MP2",
    "MPEG_LAYER_III": "MP3",
    "VORBIS": "Ogg Vorbis",
    "OPUS": "Ogg Opus",
    "ALAW": "A-law",
    "ULAW": "mu-law",
    "IMA_ADPCM": "IMA ADPCM",
    "MS_ADPCM": "MS ADPCM",
    "VOX_ADPCM": "VOX ADPCM",
    "GSM610": "GSM 6.10",
    "G721_32": "G.721 ADPCM",
    "G723_24": "G.723 ADPCM",
    "G723_40": "G.723 ADPCM",
    "NMS_ADPCM_16": "NMS ADPCM",
    "NMS_ADPCM_24": "NMS ADPCM",
    "NMS_ADPCM_32": "NMS ADPCM",
}

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def _resolve_checked(path: Path, inside: Path | None) -> tuple[Path | None, str | None]:
    """The regular file ``path`` stands for, or ``(None, problem)``; nothing is opened.

    ``lstat`` tells what ``path`` itself is; a symbolic link is resolved (loops and broken
    links are problems) and its target must be a regular file, inside ``inside`` when given.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, "file not found"
    except OSError as exc:
        return None, f"cannot be examined ({exc.strerror or exc})"
    target = path
    if stat.S_ISLNK(st.st_mode):
        try:
            target = path.resolve(strict=True)
        except FileNotFoundError:
            return None, f"is a broken symbolic link (to {os.readlink(path)!r}, which does not exist)"
        except (RuntimeError, OSError) as exc:  # Python < 3.13 raises RuntimeError for a loop
            if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:
                return None, "is a symbolic link loop"
            return None, f"is a symbolic link that cannot be resolved ({exc.strerror or exc})"
        if inside is not None and not _inside(target, inside.resolve()):
            return None, f"is a symbolic link to {str(target)!r}, outside {str(inside)!r}; refused"
        try:
            st = os.stat(target)
        except OSError as exc:
            return None, f"is a symbolic link whose target cannot be examined ({exc.strerror or exc})"
        if not stat.S_ISREG(st.st_mode):
            return None, f"is a symbolic link to {_kind(st.st_mode)} ({str(target)!r}), not a regular file"
    elif not stat.S_ISREG(st.st_mode):
        return None, f"is {_kind(st.st_mode)}, not a regular file"
    if st.st_size == 0:
        return None, "file is empty (0 bytes)"
    return target, None


def file_problem(path: str | os.PathLike, *, inside: str | os.PathLike | None = None) -> str | None:
    """Why ``path`` cannot be read as an audio file, or None; decided with ``lstat``/``stat`` only.

    Args:
        path: The file.
        inside: When given, a symbolic link must resolve to a location inside this folder.

    Returns:
        A one-line reason without the file name (``"is a named pipe (FIFO), not a regular
        file"``, ``"file is empty (0 bytes)"``...), or None for a non-empty regular file.
    """
    return _resolve_checked(Path(path), None if inside is None else Path(inside))[1]


def _open_regular(path: Path, inside: Path | None) -> tuple[int, os.stat_result]:
    """A read-only descriptor of the regular file ``path`` stands for, checked before and after opening.

    Raises:
        AudioError: For anything but a non-empty regular file (or a link to one, inside
            ``inside``), or a file that cannot be opened.
    """
    target, problem = _resolve_checked(path, inside)
    if target is None:
        raise AudioError(path, problem or "not a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(target, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AudioError(path, "became a symbolic link while being checked; refused") from exc
        raise AudioError(path, f"cannot be read ({exc.strerror or exc})") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # replaced between the check and the open
        os.close(fd)
        raise AudioError(path, f"is {_kind(st.st_mode)}, not a regular file")
    return fd, st


def read_file_bytes(
    path: str | os.PathLike, *, inside: str | os.PathLike | None = None, max_bytes: int | None = None
) -> bytes:
    """The bytes of a regular file, refusing special files before opening them.

    Args:
        path: The file (a symbolic link is followed only to a regular file).
        inside: When given, a symbolic link must resolve inside this folder.
        max_bytes: Refuse a larger file (its size is checked before reading).

    Raises:
        AudioError: One line naming the file and the problem (not found, a directory, a
            FIFO, a device, a socket, a broken or escaping link, empty, too large,
            permission denied).
    """
    path = Path(path)
    fd, st = _open_regular(path, None if inside is None else Path(inside))
    with os.fdopen(fd, "rb") as f:
        if max_bytes is not None and st.st_size > max_bytes:
            raise AudioError(path, f"{st.st_size} bytes, more than the {max_bytes} allowed for this file")
        try:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        except OSError as exc:
            raise AudioError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if max_bytes is not None and len(data) > max_bytes:
        raise AudioError(path, f"more than the {max_bytes} bytes allowed for this file")
    if not data:
        raise AudioError(path, "file is empty (0 bytes)")
    return data


def file_sha256(path: str | os.PathLike, *, inside: str | os.PathLike | None = None) -> str:
    """sha256 of a regular file, streamed, refusing special files before opening them.

    Raises:
        AudioError: As :func:`read_file_bytes`.
    """
    path = Path(path)
    fd, _ = _open_regular(path, None if inside is None else Path(inside))
    with os.fdopen(fd, "rb") as f:
        try:
            return sha256_stream(f)
        except OSError as exc:
            raise AudioError(path, f"cannot be read ({exc.strerror or exc})") from exc


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file's header declares (nothing decoded yet)."""

    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def lossy(self) -> str | None:
        """The lossy encoding's name (``"MP3"``, ``"Ogg Vorbis"``...), None for lossless content."""
        return LOSSY_SUBTYPES.get(self.subtype)


def libsndfile_reason(exc: BaseException) -> str:
    """A soundfile/libsndfile error as one short line, without its ``Error opening <...>:`` prefix."""
    text = re.sub(r"^Error opening .*?>: |^Error : ", "", " ".join(str(exc).split()))
    return text[:200] or type(exc).__name__


def probe_audio(data: bytes, source: str | os.PathLike) -> AudioInfo:
    """The header of in-memory audio bytes (format found from the content, not the name).

    Raises:
        AudioError: When the bytes are no audio format libsndfile reads.
    """
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise AudioError(source, f"not a readable audio file ({libsndfile_reason(exc)})") from exc
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames), str(info.format), str(info.subtype))


def lossy_problem(info: AudioInfo, path: str | os.PathLike) -> str | None:
    """``"lossy MP3 content in a .flac file; ..."`` for lossy content, else None."""
    if info.lossy is None:
        return None
    suffix = Path(path).suffix or "extension-less"
    return f"lossy {info.lossy} content in a {suffix} file; outputs must be lossless FLAC or WAV"


def decode_audio(
    data: bytes, source: str | os.PathLike, *, max_frames: int | None = None, allow_silence: bool = True
) -> tuple[np.ndarray, int]:
    """Decode in-memory audio bytes into a mono float32 waveform.

    Args:
        data: The file's bytes.
        source: Names the file in messages.
        max_frames: Refuse a header declaring more frames, before allocating anything (a
            forged header can declare billions of samples).
        allow_silence: Accept an all-zero waveform.

    Returns:
        ``(waveform, sample_rate)``.

    Raises:
        AudioError: For unreadable, empty, multichannel or non-finite audio, or too many frames.
    """
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            if f.channels != 1:
                raise AudioError(source, f"expected mono audio, got {f.channels} channels")
            if max_frames is not None and f.frames > max_frames:
                raise AudioError(source, f"header declares {f.frames} samples, more than the {max_frames} expected")
            x = f.read(dtype="float32", always_2d=True)
            sr = int(f.samplerate)
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise AudioError(source, f"not a readable audio file ({libsndfile_reason(exc)})") from exc
    return check_waveform(x[:, 0], source, allow_silence=allow_silence), sr


def checksum_path(path: str | os.PathLike) -> Path:
    """The sidecar recording the sha256 of a cached file (``x.flac`` -> ``x.flac.sha256``)."""
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _recorded_sha256(path: Path) -> str:
    """The sha256 recorded beside a cached file.

    Raises:
        MissingChecksumError: When there is no record.
        ChecksumError: When the record is unreadable or malformed.
    """
    record = checksum_path(path)
    try:
        text = read_file_bytes(record, max_bytes=4096).decode("ascii")
    except (AudioError, UnicodeDecodeError) as exc:
        reason = exc.problem if isinstance(exc, AudioError) else "not ASCII text"
        if reason == "file not found":
            raise MissingChecksumError(path, "no sha256 recorded when it was written") from exc
        raise ChecksumError(path, f"its checksum record {record.name} is unusable ({reason})") from exc
    digest = text.split()[0] if text.split() else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ChecksumError(path, f"its checksum record {record.name} is malformed")
    return digest


def read_checked_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a cached file, verified against the sha256 recorded when it was written.

    Raises:
        AudioError: When the file is missing or not a regular file.
        ChecksumError: When the bytes differ from the recorded sha256 (the file was
            damaged or replaced); :class:`MissingChecksumError` when none was recorded.
    """
    path = Path(path)
    expected = _recorded_sha256(path)
    data = read_file_bytes(path)
    if hashlib.sha256(data).hexdigest() != expected:
        raise ChecksumError(path, "sha256 differs from the one recorded when it was written (damaged or replaced)")
    return data


def read_checked_flac(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a cached file written by :func:`write_flac` with ``record_checksum``, verifying it.

    The file is read once: the same bytes are hashed and decoded.

    Returns:
        ``(waveform, sample_rate)``.

    Raises:
        AudioError: For a missing or unreadable file.
        ChecksumError: For a file whose bytes are not the ones recorded.
    """
    data = read_checked_bytes(path)
    return decode_audio(data, path)


def check_waveform(x: np.ndarray, source: str | os.PathLike, *, allow_silence: bool = True) -> np.ndarray:
    """Validate a waveform and return it as contiguous mono float32.

    Raises:
        AudioError: When it is not 1-D, empty, contains NaN/Inf, or (unless allowed) is silent.
    """
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        channels = x.shape[1] if x.ndim == 2 else "?"
        raise AudioError(source, f"expected mono audio, got {channels} channels (shape {x.shape})")
    if x.size == 0:
        raise AudioError(source, "audio is empty (0 samples)")
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioError(source, f"expected floating-point samples, got {x.dtype}")
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise AudioError(source, f"{bad} NaN or Inf samples")
    if not allow_silence and not np.any(x):
        raise AudioError(source, "audio is pure silence (all samples are zero)")
    return np.ascontiguousarray(x, dtype=np.float32)


def read_audio(path: str | os.PathLike, *, allow_silence: bool = True) -> tuple[np.ndarray, int]:
    """Read a mono audio file as float32.

    Returns:
        ``(waveform, sample_rate)``.

    Raises:
        AudioError: For a missing, unreadable, empty, multichannel or non-finite file, or
            anything but a regular file (checked before opening it).
    """
    path = Path(path)
    return decode_audio(read_file_bytes(path), path, allow_silence=allow_silence)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample with soxr at high quality ("HQ", URGENT's choice); identity when rates match."""
    if sr_in == sr_out:
        return x
    import soxr

    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad or trim ``x`` to exactly ``n`` samples."""
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros(n - len(x), dtype=x.dtype)])


def to_pcm16_grid(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Round a waveform to the 16-bit PCM grid, so writing it to 16-bit FLAC is lossless.

    Returns:
        ``(rounded waveform, number of samples that had to be clipped)``.
    """
    scaled = np.round(np.asarray(x, dtype=np.float64) * PCM16_SCALE)
    clipped = int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
    scaled = np.clip(scaled, -32768, 32767)
    return (scaled / PCM16_SCALE).astype(np.float32), clipped


def write_flac(path: str | os.PathLike, x: np.ndarray, sample_rate: int, *, record_checksum: bool = False) -> str:
    """Write a waveform already on the 16-bit grid as 16-bit FLAC, atomically.

    The file is encoded in memory, written to a temporary name in the same folder and
    renamed, so a crash never leaves a half-written file under the final name.

    Args:
        path: The FLAC file.
        x: The waveform.
        sample_rate: Its rate.
        record_checksum: Also write the bytes' sha256 to ``<path>.sha256`` (atomically,
            after the audio), for :func:`read_checked_flac`. A crash between the two
            writes leaves a record that does not match, so the file is never trusted.

    Returns:
        The sha256 of the bytes written.
    """
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    sf.write(buffer, x, sample_rate, subtype="PCM_16", format="FLAC")
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    _atomic_write(path, data)
    if record_checksum:
        _atomic_write(checksum_path(path), f"{digest}  {path.name}\n".encode())
    return digest
