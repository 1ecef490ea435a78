"""Outside submissions in URGENT's format: check everything first, then score.

A submission is a zip archive (or a folder) holding::

    README.yaml          team name, data used, pre-trained models used, ...
    enhanced/<id>.flac   one mono file per utterance, at the utterance's rate and exactly
                         as long as its noisy input (``.wav`` is accepted too)

A single top-level folder wrapping both is tolerated, and macOS debris (``__MACOSX/``,
``.DS_Store``, ``._*``) is ignored. A plain folder of ``<id>.flac`` files (the layout of
``urgentbench score --outputs DIR``) is a submission without README.

Archives are untrusted: :func:`open_submission` refuses unsafe entries (absolute paths,
``..`` components, symbolic links and other special files, duplicate names) and archives
that are too large, hold too many files or compress suspiciously well, before writing
anything; it then extracts into a fresh folder of its own, enforcing the same limits
while decompressing (a zip bomb can lie about sizes in its headers).

:func:`validate_submission` reports every problem at once (missing, extra and duplicate
outputs, wrong rate, channels or length, unreadable or non-finite audio, a missing or
malformed README.yaml), one line per problem naming the file. :func:`score_submission`
opens, validates (aborting before any scoring when ``strict``), scores with the runner
and removes the extracted files.

Modules: :mod:`.archive` (archive safety), :mod:`.readme` (README.yaml), :mod:`.opening`
(a folder or an archive as a :class:`Submission`), :mod:`.validate` (output validation)
and :mod:`.scoring`; every public name is importable from here.
"""

from __future__ import annotations

from urgentbench.submission.archive import (
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_TOTAL_BYTES,
    SubmissionError,
    UnsafeArchiveError,
    extract_archive,
)
from urgentbench.submission.opening import Submission, open_submission
from urgentbench.submission.readme import read_readme, readme_metadata
from urgentbench.submission.scoring import SubmissionRun, score_submission
from urgentbench.submission.validate import check_output_file, expected_length, validate_submission

__all__ = [
    "DEFAULT_MAX_FILES",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_TOTAL_BYTES",
    "Submission",
    "SubmissionError",
    "SubmissionRun",
    "UnsafeArchiveError",
    "check_output_file",
    "expected_length",
    "extract_archive",
    "open_submission",
    "read_readme",
    "readme_metadata",
    "score_submission",
    "validate_submission",
]
