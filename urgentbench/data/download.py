"""HTTP(S) downloads that resume, retry and are verified before they get their final name.

:func:`download` streams into ``<dest>.part``. When a ``.part`` file is already there
(an interrupted earlier run) it asks the server for the rest with ``Range: bytes=N-``
and appends when the server answers ``206 Partial Content``; a server that answers
``200`` instead sends the whole file again, which replaces the partial one. Connection
problems, timeouts and ``5xx`` / ``429`` answers are retried a few times with an
exponential back-off, resuming each time. Only a file whose size and sha256 match is
renamed (atomically) to ``dest``; a mismatch deletes the ``.part`` file and raises
:class:`DownloadError` naming the URL, the file and both checksums.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from urgentbench import __version__
from urgentbench.manifest import file_sha256

__all__ = ["DownloadError", "download", "file_sha256"]

logger = logging.getLogger(__name__)

#: Bytes read per chunk.
CHUNK_SIZE = 1 << 16
#: Seconds a connection attempt or a read may stall before it counts as failed.
DEFAULT_TIMEOUT = 60.0
#: Further attempts after the first one, for transient errors.
DEFAULT_RETRIES = 4
#: Delay before the first retry, doubled for every further one (seconds).
DEFAULT_BACKOFF = 2.0
#: HTTP statuses worth retrying.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = f"urgentbench/{__version__} (Python urllib)"

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")


class DownloadError(RuntimeError):
    """A download that failed for good: the message names the URL and what went wrong."""

    def __init__(self, url: str, problem: str):
        self.url = url
        self.problem = problem
        super().__init__(f"download of {url} failed: {problem}")


class _TransientError(Exception):
    """A failure worth retrying (dropped connection, timeout, 5xx); internal."""


def part_path(dest: str | os.PathLike) -> Path:
    """The temporary file a download of ``dest`` is written to (``<dest>.part``)."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
) -> Path:
    """Download ``url`` to ``dest``, resuming a partial download and verifying the result.

    Args:
        url: An ``http://`` or ``https://`` URL.
        dest: Final path; its folder is created. An existing ``dest`` is replaced.
        sha256: Expected hex digest; checked before the rename when given.
        size: Expected size in bytes; checked before the rename when given (and used to
            skip the request when the ``.part`` file is already complete).
        progress: Show a tqdm progress bar.
        timeout: Socket timeout in seconds for connecting and for each read.
        retries: Further attempts after transient errors (each resumes where it stopped).
        backoff: Seconds before the first retry, doubled for each further one.

    Returns:
        ``dest``.

    Raises:
        DownloadError: For a permanent HTTP error, too many transient errors, or a size or
            sha256 mismatch (the ``.part`` file is then deleted).
    """
    dest = Path(dest)
    part = part_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        try:
            _fetch(url, part, size=size, timeout=timeout, progress=progress, label=dest.name)
            break
        except _TransientError as exc:
            attempt += 1
            if attempt > retries:
                raise DownloadError(url, f"{exc} (gave up after {attempt} attempts)") from exc
            delay = backoff * 2 ** (attempt - 1)
            logger.warning(
                "%s: %s; retrying in %.1f s (attempt %d of %d)", url, exc, delay, attempt + 1, retries + 1
            )
            time.sleep(delay)
    _verify(url, part, dest, sha256=sha256, size=size)
    os.replace(part, dest)
    logger.debug("downloaded %s to %s", url, dest)
    return dest


def _fetch(url: str, part: Path, *, size: int | None, timeout: float, progress: bool, label: str) -> None:
    """One attempt: request the missing bytes and append (206) or rewrite (200) ``part``.

    Raises:
        _TransientError: For errors worth retrying; what arrived stays in ``part``.
        DownloadError: For permanent errors.
    """
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        logger.info("%s: partial file larger than expected (%d > %d bytes); restarting", part, offset, size)
        part.unlink()
        offset = 0
    if size is not None and offset == size and offset > 0:
        return  # complete already; verification decides
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset > 0:
            return  # nothing after `offset`: the partial file is complete (verification decides)
        if exc.code in RETRY_STATUSES:
            raise _TransientError(f"HTTP {exc.code} {exc.reason}") from exc
        raise DownloadError(url, f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise _TransientError(f"cannot connect ({reason})") from exc

    with response:
        status = getattr(response, "status", None)
        if status == 206:
            start = _range_start(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink(missing_ok=True)
                raise _TransientError(
                    f"server resumed at byte {start} instead of {offset}; restarting from the beginning"
                )
            mode = "ab"
        else:
            if offset:
                logger.info("%s: server does not resume (HTTP %s); downloading from the start", url, status)
            offset = 0
            mode = "wb"
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        total = offset + length if length is not None else size
        received = 0
        with open(part, mode) as f, tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=label,
            disable=not progress,
            leave=False,
        ) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK_SIZE)
                except (OSError, http.client.HTTPException) as exc:
                    raise _TransientError(f"connection lost after {offset + received} bytes ({exc})") from exc
                if not chunk:
                    break
                f.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if length is not None and received < length:
        raise _TransientError(f"connection closed after {offset + received} of {offset + length} bytes")


def _range_start(content_range: str | None) -> int | None:
    """First byte of a ``Content-Range: bytes A-B/N`` header, or None when absent or malformed."""
    match = _CONTENT_RANGE.match(content_range or "")
    return int(match.group(1)) if match else None


def _verify(url: str, part: Path, dest: Path, *, sha256: str | None, size: int | None) -> None:
    """Check size and sha256 of the finished ``.part`` file; delete it on a mismatch.

    Raises:
        DownloadError: Naming the URL, the file, the expected and the actual values.
    """
    if not part.is_file():
        raise DownloadError(url, f"{dest}: nothing was downloaded")
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        part.unlink(missing_ok=True)
        expected = f" (expected sha256 {sha256})" if sha256 else ""
        raise DownloadError(
            url,
            f"{dest}: got {actual_size} bytes, expected {size}{expected}; the partial file was deleted, "
            f"run again to retry",
        )
    if sha256:
        actual = file_sha256(part)
        if actual != sha256.lower():
            part.unlink(missing_ok=True)
            raise DownloadError(
                url,
                f"{dest}: sha256 {actual} does not match the expected {sha256.lower()}; the partial file "
                f"was deleted, run again to retry",
            )
