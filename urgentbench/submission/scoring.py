"""Scoring a submission: open, validate (stopping before any scoring when strict), score, clean up."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from urgentbench.layout import submissions_dir
from urgentbench.pipeline.options import RunOptions
from urgentbench.pipeline.results import RunReport
from urgentbench.pipeline.specs import MetricSpec, ProducerSpec, directory_producer
from urgentbench.runner import run
from urgentbench.submission.archive import (
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_TOTAL_BYTES,
    SubmissionError,
)
from urgentbench.submission.opening import open_submission
from urgentbench.submission.validate import validate_submission
from urgentbench.suites import Suite

#: One logger for the package: users see "urgentbench.submission" whichever module speaks.
logger = logging.getLogger(__package__)


@dataclass
class SubmissionRun:
    """What :func:`score_submission` did."""

    producer: ProducerSpec
    report: RunReport
    problems: list[str]
    warnings: list[str]
    metadata: dict[str, str]


def _problem_message(source: Path, problems: list[str]) -> str:
    lines = [f"{source}: {len(problems)} problem(s), nothing was scored (use --no-strict to score anyway):"]
    lines.extend(f"  {p}" for p in problems)
    return "\n".join(lines)


def score_submission(
    path: str | os.PathLike,
    suite: Suite,
    name: str | None,
    metrics: list[MetricSpec],
    options: RunOptions,
    *,
    workdir: str | os.PathLike | None = None,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> SubmissionRun:
    """Open, validate and score a submission (zip archive or folder).

    Args:
        path: The zip archive or folder.
        suite: The suite (verified here).
        name: Name shown on the leaderboard; None uses README.yaml's team name.
        metrics: Metrics to compute (:func:`urgentbench.pipeline.resolve.resolve_metrics`).
        options: The run's options (:class:`~urgentbench.pipeline.options.RunOptions`), passed
            whole to :func:`urgentbench.runner.run`. ``strict``: abort before scoring when any
            problem is found; otherwise score anyway, per-utterance problems becoming missing
            values with their reason. ``jobs`` also sets the threads checking files, and
            ``limit`` the utterances expected.
        workdir: Parent of the archive's extraction folder (default
            ``<results_dir>/submissions``); the folder is removed afterwards (results
            are keyed by the files' content hash, so re-scoring recomputes nothing).
        max_total_bytes: Cap on the archive's total uncompressed size.
        max_files: Cap on the archive's number of files.
        max_ratio: Cap on one archive entry's compression ratio.

    Returns:
        A :class:`SubmissionRun` (producer, runner report, problems, warnings, metadata).

    Raises:
        SubmissionError: With every problem, one per line (strict), or when no name is known.
        UnsafeArchiveError: When the archive is refused (always, strict or not).
    """
    suite.verify()
    suite.check_corpora()
    results_dir = options.results_dir.resolve()
    workdir = Path(workdir) if workdir is not None else submissions_dir(results_dir)
    submission = open_submission(
        path,
        suite,
        workdir=workdir,
        max_total_bytes=max_total_bytes,
        max_files=max_files,
        max_ratio=max_ratio,
    )
    with submission:
        display = name or submission.team
        if not display:
            if submission.readme_problem:  # say what is wrong with README.yaml, not just that no name came of it
                raise SubmissionError(
                    f"{submission.readme_problem} (so no team name could be read from it; pass --name)"
                )
            raise SubmissionError(f"{submission.source}: no name given and README.yaml has no team name")
        problems = validate_submission(
            submission, suite, limit=options.limit, results_dir=results_dir, jobs=options.jobs
        )
        for line in submission.warnings:
            logger.warning(line)
        if problems and options.strict:
            raise SubmissionError(_problem_message(submission.source, problems), problems)
        for line in problems:
            logger.warning(line)
        ids = [u.id for u in suite.utterances(options.limit)]
        producer = directory_producer(submission.enhanced_dir, display, ids, metadata=submission.leaderboard_metadata())
        report = run(suite, [producer], metrics, options.replace(results_dir=results_dir))
    metadata = submission.leaderboard_metadata()
    return SubmissionRun(producer, report, problems, list(submission.warnings), metadata)
