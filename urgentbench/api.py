"""The Python API: evaluate a system on a suite and read the results as DataFrames, leaderboards and tables.

::

    import urgentbench

    r = urgentbench.evaluate("noisy", "demo", metrics=["pesq", "estoi"], limit=2)
    r.to_pandas()        # one row per utterance x system x metric output, with the utterance's tags
    r.summary()          # system means, as the leaderboard shows them
    r.leaderboard()      # the typed Leaderboard of urgentbench.report.schema
    print(r.table())     # a paper table (Markdown or LaTeX)

    # a model in a training loop: f(waveform, sample_rate) -> (waveform, sample_rate)
    r = urgentbench.evaluate(model_fn, "demo", name="my-model", config_hash=f"step{step}")

    r = urgentbench.load_results("results", suite="demo")    # results already stored

:func:`evaluate` runs the same pipeline as ``urgentbench run`` / ``urgentbench score``
(:func:`urgentbench.runner.run` with one :class:`~urgentbench.pipeline.options.RunOptions`):
same store, resume, validation and failure policy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from urgentbench.layout import store_path
from urgentbench.manifest import Utterance
from urgentbench.metrics import METRICS
from urgentbench.pipeline.callables import callable_producer, describe, pickle_problem
from urgentbench.pipeline.errors import RunError
from urgentbench.pipeline.options import RunOptions
from urgentbench.pipeline.resolve import metrics_for, resolve_metrics
from urgentbench.pipeline.results import RunReport, results_line
from urgentbench.pipeline.specs import MetricSpec, ProducerSpec, system_producer
from urgentbench.report.summary import SystemSummary, summarize, unique_names
from urgentbench.store import ResultStore
from urgentbench.suites import Suite, get_suite
from urgentbench.systems import SYSTEMS

if TYPE_CHECKING:
    import pandas

    from urgentbench.report.schema import Leaderboard

logger = logging.getLogger(__name__)

#: What :func:`evaluate` scores: a registered system's name, a folder (or zip) of outputs, or a callable.
SystemLike = Union[str, "os.PathLike[str]", Callable[..., Any]]


class ResultsError(ValueError):
    """Results that are not stored (no store, another suite, an unknown system); one line naming what is stored."""


class EvaluationError(RunError):
    """A metric could not be set up (nothing was stored for it); ``results`` holds what was stored."""

    def __init__(self, message: str, results: Results):
        super().__init__(message)
        self.results = results


@dataclass
class Results:
    """Stored results of some systems on a suite: a view of the results store, read on demand.

    Made by :func:`evaluate` and :func:`load_results`; every method reads the store again,
    so results computed later (a resumed run) show up.

    Attributes:
        suite: The suite.
        metrics: The metrics shown.
        results_dir: The results folder (``results.sqlite`` inside).
        systems: ``(system, config hash)`` of the configurations shown.
        limit: Only the suite's first ``limit`` utterances (None: all).
        report: What the run did (:func:`evaluate` only): rows written, seconds, errors.
        skipped: Metrics not computed, one line each with why (:func:`evaluate` only).
        warnings: Warnings of the validation of outputs (folders of outputs only).
    """

    suite: Suite
    metrics: list[MetricSpec]
    results_dir: Path
    systems: list[tuple[str, str]]
    limit: int | None = None
    report: RunReport | None = None
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        names = ", ".join(f"{s}[{c}]" for s, c in self.systems)
        scope = f", first {self.limit} utterances" if self.limit else ""
        return (f"Results(suite={self.suite.key!r}{scope}, systems=[{names}], "
                f"metrics=[{', '.join(m.name for m in self.metrics)}], store={str(self.store_path)!r})")

    @property
    def store_path(self) -> Path:
        """The results store (``<results_dir>/results.sqlite``)."""
        return store_path(self.results_dir)

    @property
    def utterances(self) -> list[Utterance]:
        """The utterances the results cover (the first ``limit`` of the suite, or all)."""
        return self.suite.utterances(self.limit)

    def _store(self) -> ResultStore:
        if not self.store_path.exists():
            raise ResultsError(f"{self.store_path}: no results store here")
        return ResultStore(self.store_path)

    def _summaries(self, store: ResultStore) -> list[SystemSummary]:
        wanted = set(self.systems)
        utterances = self.utterances if self.limit else None
        names = sorted({s for s, _ in self.systems})
        summaries = summarize(store, self.suite, self.metrics, systems=names, utterances=utterances)
        return [s for s in summaries if (s.system, s.config_hash) in wanted]

    def to_pandas(self) -> pandas.DataFrame:
        """One row per utterance x system x metric output (the long table of ``urgentbench export --format csv``).

        Columns: suite, system, display name and config hash; utterance id and sample rate;
        metric, version, options hash, output, aggregation and direction; ``value`` (NaN when
        missing, never 0), ``status`` (``ok``, ``failed``, ``not scored``, ``no value``),
        ``failure`` (``participant`` or ``metric``), ``error`` (the reason), ``seconds``
        (kernel time), ``details`` (JSON of the row's other fields, e.g. WER counts); the
        provenance of the run that wrote the row; and the utterance's tags as ``tag_<name>``
        for breakdowns (``df.groupby("tag_condition")``). See :mod:`urgentbench.report.export`.
        """
        from urgentbench.report.export import collect, results_frame

        with self._store() as store:
            wanted = set(self.systems)
            names = sorted({s for s, _ in self.systems})
            results = [r for r in collect(store, self.suite, self.metrics, names)
                       if (r.summary.system, r.summary.config_hash) in wanted]
            frame = results_frame(results, self.suite, self.metrics, store.runs())
        if self.limit:
            ids = {u.id for u in self.utterances}
            frame = frame[frame["utt_id"].isin(ids)].reset_index(drop=True)
        return frame

    def summary(self) -> pandas.DataFrame:
        """System means per metric output, as the leaderboard shows them (one row per system configuration).

        Index: the name a leaderboard shows (``name [config hash]`` when a name has several
        configurations); columns: ``config_hash``, then every output of the metrics (the
        metric's own aggregate: nan-mean over utterances with a value, corpus-level for
        WER/CER; None when no utterance has a value).
        """
        import pandas as pd

        with self._store() as store:
            summaries = self._summaries(store)
        names = unique_names(summaries)
        outputs = [o.name for m in self.metrics for o in m.cls.outputs]
        records = [{"system": names[id(s)], "config_hash": s.config_hash, **{o: s.values.get(o) for o in outputs}}
                   for s in summaries]
        frame = pd.DataFrame.from_records(records, columns=["system", "config_hash", *outputs])
        for o in outputs:
            frame[o] = frame[o].astype("float64")
        return frame.set_index("system")

    def leaderboard(self, *, tie: str = "dense", missing: str = "unranked", protocol: str | None = None) -> Leaderboard:
        """The leaderboard of these systems (:func:`urgentbench.report.publish.leaderboard_report`).

        Args:
            tie: ``dense`` (URGENT's rule) or ``min``.
            missing: ``unranked`` (a system with missing or unusable outputs is listed, not
                ranked) or ``worst`` (README "Failure policy").
            protocol: Rank an URGENT edition's categories (``urgent2025``).

        Returns:
            A :class:`~urgentbench.report.schema.Leaderboard` (``to_json()``,
            ``urgentbench.report.render.to_markdown``); with ``limit``, ranked on those utterances.
        """
        from urgentbench.report import publish

        with self._store() as store:
            report = publish.leaderboard_report(
                store, self.suite, self.metrics, systems=sorted({s for s, _ in self.systems}), tie=tie,
                missing=missing, protocol=protocol, categories=publish.protocol_categories(protocol),
                configs=self.systems, utterances=self.utterances if self.limit else None,
            )
        return report.leaderboard

    def table(
        self,
        outputs: Sequence[str] | None = None,
        *,
        format: str = "markdown",
        ci: bool = False,
        reference: str | None = None,
        test: str = "permutation",
        alpha: float = 0.05,
        digits: int = 3,
        missing: str = "unranked",
    ) -> str:
        """A paper table of these systems (``urgentbench table``): Markdown or LaTeX text.

        Args:
            outputs: Columns: metric outputs (``pesq``, ``dnsmos_ovrl``) or metric names (all
                their outputs); default every output of the metrics.
            format: ``markdown`` or ``latex``.
            ci: Add ± half the width of the 95 % bootstrap interval.
            reference: Mark values that differ significantly from this system's.
            test: Paired test for ``reference`` (``permutation`` or ``wilcoxon``).
            alpha: Significance level.
            digits: Decimals.
            missing: ``unranked`` or ``worst`` (as :meth:`leaderboard`).
        """
        from urgentbench.report import publish
        from urgentbench.report.tables import build_table, render, resolve_outputs

        names = list(outputs) if outputs else [o.name for m in self.metrics for o in m.cls.outputs]
        columns = resolve_outputs(names, [m.cls for m in self.metrics])
        used = {cls for _, cls in columns}
        specs = [m for m in self.metrics if m.cls in used]
        with self._store() as store:
            rows = publish.select_systems(self._summaries(store), None, self.suite)
        table = build_table(self.suite, rows, columns, show_ci=ci, reference=publish.resolve_reference(reference, rows),
                            test=test, alpha=alpha, digits=digits, missing=missing, metrics=specs)
        return render(table, format)


def _system_kind(system: Any) -> str:
    """``system``, ``outputs`` or ``callable``.

    Raises:
        ValueError: For a name that is neither a registered system nor an existing path.
    """
    if isinstance(system, os.PathLike):
        return "outputs"
    if isinstance(system, str):
        registered = system in SYSTEMS
        if registered and Path(system).exists():
            logger.warning("%r is a registered system and also a path here: scoring the system "
                           "(pass pathlib.Path(%r) to score the folder)", system, system)
        if registered:
            return "system"
        if Path(system).exists():
            return "outputs"
        raise ValueError(
            f"system {system!r}: no registered system of that name and no such folder or zip of outputs; "
            f"registered systems: {', '.join(SYSTEMS.names())}"
        )
    if callable(system):
        return "callable"
    raise ValueError(
        f"system must be a registered name, a folder of outputs or a callable f(waveform, sample_rate), "
        f"got {type(system).__name__}"
    )


def evaluate(
    system: SystemLike,
    suite: str | Suite,
    metrics: Sequence[str] | str | None = None,
    protocol: str | None = None,
    jobs: int | None = None,
    results_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    options: RunOptions | None = None,
    name: str | None = None,
    config_hash: str | None = None,
    sample_rate: int | None = None,
    **system_args: Any,
) -> Results:
    """Enhance (or read) and score ``suite`` with ``system``, computing only what the store misses.

    Args:
        system: A registered system's name (``"noisy"``, see ``urgentbench ls systems``); a
            folder of ``<utterance id>.flac`` files or an URGENT submission zip (a
            :class:`pathlib.Path`, or a string that is not a system's name), validated and
            scored as ``urgentbench score`` does; or a callable
            ``f(waveform, sample_rate) -> (waveform, sample_rate)`` taking a mono float32 numpy
            array (a torch tensor may be returned). A callable's failure on an utterance (an
            exception, NaN, the wrong length, audio at another rate than it returns) is
            stored as that utterance's failure with the reason; the run goes on.
        suite: The suite's name (``urgentbench ls suites``) or a :class:`~urgentbench.suites.Suite`.
        metrics: Metric names (default: the protocol's, else the suite's).
        protocol: Pin the metrics and options of an URGENT edition (``urgent2025``).
        jobs: Worker processes (default 1: everything in this process). A callable runs in
            workers only when it pickles (a module-level function or a picklable object);
            otherwise in this process, with a warning saying why.
        results_dir: The results folder (default ``results``).
        limit: Only the suite's first ``limit`` utterances.
        options: Every other run option (:class:`~urgentbench.pipeline.options.RunOptions`:
            batch size, metric at a time, scheduler, ...); the arguments above override it.
        name: Callable: the name its results are stored and shown under (required). Folder:
            the name shown (default: the team in README.yaml).
        config_hash: Callable: the configuration its results are keyed by (letters, digits,
            ``._+-``), e.g. ``f"step{step}"``; default derived from ``name``. Results stored under
            the same name and config hash are reused, so give a new one when the model changes.
        sample_rate: Callable: the rate it takes (inputs are resampled to it and its outputs
            back); default each utterance's own rate.
        **system_args: Options of a registered system (``atten_lim_db=12``).

    Returns:
        The :class:`Results` of this system configuration on the utterances scored.

    Raises:
        ValueError: For an unknown system or suite, arguments that do not fit the kind of
            system, or a bad option value.
        RunError: When a metric is unavailable (unless ``skip_unavailable`` in ``options``).
        SubmissionError: For a folder of outputs with problems (unless ``strict=False``).
        EvaluationError: When a metric could not be set up; nothing was stored for it, the
            other metrics' results are in ``exc.results``.
    """
    from urgentbench.runner import run

    kind = _system_kind(system)
    given: dict[str, Any] = {"metrics": metrics, "protocol": protocol, "jobs": jobs, "results_dir": results_dir,
                             "limit": limit}
    options = (options or RunOptions()).replace(**{k: v for k, v in given.items() if v is not None})
    label = describe(system) if kind == "callable" else str(system)
    if not options.command:
        options = options.replace(command=f"urgentbench.evaluate({label!r}, {getattr(suite, 'name', suite)!r})")
    _check_arguments(kind, name, config_hash, sample_rate, system_args)
    suite, specs, skipped = prepare_scoring(suite, options)
    warnings: list[str] = []
    if kind == "outputs":
        from urgentbench.submission import score_submission

        scored = score_submission(system, suite, name, specs, options)  # type: ignore[arg-type]
        producer, report, warnings = scored.producer, scored.report, scored.warnings
    else:
        if kind == "system":
            producer = system_producer(str(system), system_args)
        else:
            producer = _callable(system, name, config_hash, sample_rate)  # type: ignore[arg-type]
            problem = pickle_problem(system) if (options.jobs > 1 or options.scheduler) else None
            if problem:
                logger.warning("running %s in this process instead of %s: %s", producer.name,
                               options.scheduler or f"{options.jobs} worker processes", problem)
                options = options.replace(jobs=1, scheduler=None)
        report = run(suite, [producer], specs, options)
    for line in skipped:
        logger.warning("not computed: %s", line)
    results = Results(suite, specs, options.results_dir.resolve(), [(producer.name, producer.config_hash)],
                      options.limit, report, skipped, list(warnings))
    logger.info("%s", results_line(options.results_dir, suite.name, options.protocol))
    if report.setup_failures:
        raise EvaluationError("; ".join(f"{message}; nothing was stored for it" for message in
                                        report.setup_failures.values()), results)
    return results


def prepare_scoring(suite: str | Suite, options: RunOptions) -> tuple[Suite, list[MetricSpec], list[str]]:
    """The suite (verified, corpora prepared) and the metrics ``options`` ask for, before any work.

    Returns:
        ``(suite, metrics, skipped)``: ``skipped`` has one line per metric not computed (why,
        and the command that enables it).

    Raises:
        UnknownNameError: For an unknown suite or metric.
        SuiteError: For a modified manifest; CorpusNotPreparedError: for a corpus to prepare.
        RunError: For an unavailable metric (unless ``options.skip_unavailable``).
    """
    suite = suite if isinstance(suite, Suite) else get_suite(suite)
    suite.verify()
    suite.check_corpora()
    skipped: list[str] = []
    return suite, metrics_for(suite, options, skipped), skipped


def _check_arguments(kind: str, name: str | None, config: str | None, rate: int | None, system_args: dict) -> None:
    """Refuse arguments that do not apply to this kind of system (before any work).

    Raises:
        ValueError: Naming the argument and what it applies to.
    """
    if system_args and kind != "system":
        raise ValueError(f"options {sorted(system_args)} apply to a registered system only")
    if kind == "system" and name is not None:
        raise ValueError("name= applies to a callable or a folder of outputs; a registered system is stored under its own name")
    if kind != "callable" and config is not None:
        raise ValueError("config_hash= applies to a callable (a system's comes from its options, a folder's from its files)")
    if kind != "callable" and rate is not None:
        raise ValueError("sample_rate= applies to a callable (a registered system works at its card's rate)")
    if kind == "callable" and not name:
        raise ValueError("a callable system needs name=...: its results are stored and shown under it "
                         "(and config_hash=... tells its versions apart)")


def _callable(function: Callable[..., Any], name: str, config: str | None, rate: int | None) -> ProducerSpec:
    """The producer of a callable, refusing the name of a registered system."""
    if name in SYSTEMS:
        raise ValueError(f"name {name!r} is a registered system; choose another name for the callable")
    return callable_producer(function, name, config, rate)


def load_results(
    results_dir: str | os.PathLike[str] = "results",
    suite: str | Suite | None = None,
    systems: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    protocol: str | None = None,
) -> Results:
    """The results already stored for ``suite`` (nothing is computed).

    Args:
        results_dir: The results folder (``results.sqlite`` inside).
        suite: The suite (name or :class:`~urgentbench.suites.Suite`); may be left out when
            the store holds one suite only.
        systems: Only these systems (stored or display names); default every stored one,
            every configuration of each.
        metrics: Metric names (default: every metric with stored results that is available
            here, the protocol's or the suite's first).
        protocol: The metrics and options of an URGENT edition.

    Raises:
        ResultsError: When there is no store, nothing stored for the suite (version), or a
            system asked for is not stored; the message names what is stored.
    """
    results_dir = Path(results_dir)
    db = store_path(results_dir)
    if not db.exists():
        raise ResultsError(f"{db}: no results store here (run urgentbench.evaluate or `urgentbench run` first)")
    with ResultStore(db) as store:
        stored = store.suites()
        suite = _stored_suite(suite, stored, db)
        infos = store.systems(suite.name, suite.version)
        chosen = _stored_systems(systems, infos, suite, db)
        specs = _stored_metrics(store, suite, metrics, protocol)
    return Results(suite, specs, results_dir.resolve(), chosen)


def _stored_suite(suite: str | Suite | None, stored: list[tuple[str, str]], db: Path) -> Suite:
    """The suite asked for, when the store has results of its current version."""
    listing = ", ".join(f"{s} v{v}" for s, v in stored) or "none"
    if suite is None:
        names = sorted({s for s, _ in stored})
        if len(names) != 1:
            raise ResultsError(f"{db}: name the suite (suite=...); stored suites: {listing}")
        suite = names[0]
    suite = suite if isinstance(suite, Suite) else get_suite(suite)
    if (suite.name, suite.version) not in stored:
        versions = [v for s, v in stored if s == suite.name]
        if versions:
            raise ResultsError(
                f"{db}: {suite.name} is stored for version(s) {', '.join(versions)} only, not its current "
                f"version {suite.version} (results of another version are never mixed); stored suites: {listing}"
            )
        raise ResultsError(f"{db}: nothing stored for suite {suite.name!r}; stored suites: {listing}")
    return suite


def _stored_systems(wanted: Sequence[str] | None, infos: list[dict[str, Any]], suite: Suite, db: Path) -> list[tuple[str, str]]:
    """``(system, config hash)`` of the stored configurations asked for (a stored or display name matches)."""
    if isinstance(wanted, str):
        wanted = [wanted]
    if not wanted:
        return [(i["system"], i["config_hash"]) for i in infos]
    unknown = [w for w in wanted if not any(w in (i["system"], i["display_name"]) for i in infos)]
    if unknown:
        names = ", ".join(sorted({i["system"] for i in infos})) or "none"
        raise ResultsError(f"{db}: nothing stored for system(s) {', '.join(repr(u) for u in unknown)} on "
                           f"{suite.name} v{suite.version}; stored systems: {names}")
    return [(i["system"], i["config_hash"]) for i in infos if any(w in (i["system"], i["display_name"]) for w in wanted)]


def _stored_metrics(store: ResultStore, suite: Suite, names: Sequence[str] | None, protocol: str | None) -> list[MetricSpec]:
    """The metrics asked for, or every available metric with stored results (the protocol's or suite's first)."""
    if names:
        return resolve_metrics(list(names), suite, skip_unavailable=True, protocol=protocol)
    candidates = resolve_metrics(None, suite, skip_unavailable=True, protocol=protocol)
    if not protocol:  # then every other registered metric, in name order
        known = {m.name for m in candidates}
        for entry in METRICS:
            if entry.name in known:
                continue
            try:
                candidates += resolve_metrics([entry.name], suite, skip_unavailable=True)
            except Exception:  # a broken third-party metric has no results to show
                logger.debug("metric %s cannot be loaded", entry.name, exc_info=True)
    keys = store.stored_metrics(suite.name, suite.version)
    return [m for m in candidates if (m.name, m.cls.version, m.options_hash) in keys]
