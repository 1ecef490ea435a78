"""Every option of a run or a scoring, in one frozen dataclass built once.

:class:`RunOptions` is passed whole to :func:`urgentbench.runner.run`,
:func:`urgentbench.submission.score_submission`, the regression gate's ``check --run``
and :func:`urgentbench.data.masksr2_demo.score_published`. Its values come from, in order
of precedence: the command line, a YAML config file (``--config FILE``, the field names
below as keys), and the defaults. Each field carries its command-line help in its
metadata, so the command line adds every option from the fields (one function,
:func:`urgentbench.cli.options.add_run_options`): adding an option means adding a field.

A config file::

    results_dir: /data/results
    metrics: [pesq, estoi, dnsmos]
    jobs: 8
    batch_size: 8
    reference_cache: true
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from urgentbench.errors import squash
from urgentbench.pipeline.errors import RunError
from urgentbench.validation import require_int

#: The commands that take run options (``data score-published`` is ``score-published``).
COMMANDS = ("run", "score", "check", "score-published")


class ConfigError(ValueError):
    """A config file that cannot be used; the message is one line naming the file."""


def _option(
    default: Any,
    help: str,
    kind: str,
    *,
    flag: str | None = None,
    minimum: int = 1,
    metavar: str | None = None,
    commands: tuple[str, ...] = COMMANDS,
    cli_default: Callable[[], Any] | None = None,
    config: bool = True,
    help_for: dict[str, str] | None = None,
) -> Any:
    """A :class:`RunOptions` field and how it appears on the command line and in config files.

    Args:
        default: The library default.
        help: The command-line help.
        kind: ``bool``, ``int``, ``str``, ``path`` or ``names`` (a comma-separated list).
        flag: The command-line flag (default ``--field-name``; ``--no-...`` for a bool
            that defaults to True); None with ``commands=()`` for no flag.
        minimum: Smallest value of an ``int``.
        metavar: The value's name in the help.
        commands: The commands whose parser has the flag.
        cli_default: The command line's default when it differs from the library's
            (``jobs``: one per CPU core on the command line, 1 in the library).
        config: Whether a config file may set it.
        help_for: Command -> the help there, where the option means more (``check --limit``).
    """
    meta = {
        "help": help, "kind": kind, "flag": flag, "minimum": minimum, "metavar": metavar,
        "commands": commands, "cli_default": cli_default, "config": config, "help_for": help_for or {},
    }
    return field(default=default, metadata=meta)


def _cores() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class RunOptions:
    """How a run enhances and scores: where, with what parallelism, and what to recompute.

    Values are checked when the object is made (a bad integer or scheduler is a
    :class:`~urgentbench.pipeline.errors.RunError` before anything runs); ``metrics`` may
    be given as a comma-separated string or a list, and is kept as a tuple.
    """

    results_dir: Path = _option(
        Path("results"), "results folder: store, cached inputs and enhanced audio (default ./results); with a "
        "remote Dask cluster it must be on a file system the workers share", "path", metavar="DIR")
    metrics: tuple[str, ...] = _option(
        (), "comma-separated metrics (default: the protocol's, else the suite's)", "names", metavar="NAMES")
    protocol: str | None = _option(
        None, "pin the metric set and options of an URGENT edition (urgent2024, urgent2025, urgent2026; "
        "see `urgentbench protocols show NAME`)", "str", metavar="NAME")
    skip_unavailable: bool = _option(False, "skip metrics whose packages are missing", "bool")
    jobs: int = _option(1, "worker processes (default: one per CPU core)", "int", cli_default=_cores)
    limit: int | None = _option(
        None, "only the first K utterances", "int", metavar="K",
        help_for={"check": "gate on the suite's first K utterances only (recorded in the baseline; must match it); "
                           "with --run/--outputs only those are scored"})
    retry_errors: bool = _option(False, "recompute rows stored as failures", "bool")
    scheduler: str | None = _option(
        None, "run on Dask: tcp://HOST:8786 (an existing cluster), a scheduler JSON file, or local:N (a local "
        "cluster of N workers); default: a local process pool", "str", metavar="ADDRESS")
    metric_at_a_time: bool = _option(
        False, "load one heavy model at a time (metrics in the outer loop), for small machines", "bool")
    batch_size: int = _option(
        1, "utterances a worker scores at once; DNSMOS, spk_sim and WER then run their models on batches "
        "(same values within 1e-6, identical transcripts); default 1", "int", metavar="N")
    threads_per_worker: int | None = _option(
        None, "model-inference threads of each local worker (ONNX Runtime, CTranslate2, torch); default: the "
        "CPU cores divided by the workers", "int", metavar="N")
    reference_cache: bool = _option(
        True, "recompute reference-only metric state (MCD's reference mel-cepstra) for every system instead of "
        "keeping it in RESULTS_DIR/reference-state/ (values are identical either way)", "bool")
    strict: bool = _option(
        True, "score even when validation finds problems (bad files become missing values)", "bool",
        commands=("score", "check"))
    fail_on_missing: bool = _option(
        False, "exit 1 when any utterance or metric failed (recorded as missing)", "bool")
    #: The command line's ``-q`` turns it off.
    progress: bool = _option(True, "show progress bars", "bool", commands=())
    #: Set by the command line (for provenance); never from a config file.
    command: str = _option("", "the command line, recorded in the run's provenance", "str", commands=(), config=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "results_dir", Path(self.results_dir))
        object.__setattr__(self, "metrics", split_names(self.metrics))
        require_int(self.batch_size, "batch size", error=RunError)
        if self.threads_per_worker is not None:
            require_int(self.threads_per_worker, "threads per worker", error=RunError)
        require_int(self.jobs, "jobs", error=RunError)
        if self.limit is not None:
            require_int(self.limit, "limit", error=RunError)
        if self.scheduler:  # a malformed value fails before anything is written
            parse_scheduler(self.scheduler)

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    @property
    def metric_names(self) -> list[str] | None:
        """``metrics`` as a list, or None for the default set."""
        return list(self.metrics) or None

    @classmethod
    def merged(
        cls,
        given: Mapping[str, Any] | None = None,
        config_file: str | os.PathLike | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> RunOptions:
        """Options from the command line (``given``) over a config file over ``defaults`` over the fields' defaults.

        Raises:
            ConfigError: For an unreadable config file or a bad key or value in it.
            RunError: For a bad value given directly.
        """
        values = dict(defaults or {})
        if config_file is not None:
            values.update(read_config(config_file))
        values.update(given or {})
        return cls(**values)


def split_names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"a, b"`` or ``["a", "b"]`` -> ``("a", "b")`` (blank items dropped)."""
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    return tuple(str(v).strip() for v in items if str(v).strip())


def option_fields() -> dict[str, dataclasses.Field]:
    """The fields of :class:`RunOptions` by name."""
    return {f.name: f for f in dataclasses.fields(RunOptions)}


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The options of a YAML config file (keys: :class:`RunOptions` field names), checked.

    Raises:
        ConfigError: One line naming the file: unreadable, not YAML, not a mapping, an
            unknown key, or a value of the wrong type.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{path}: cannot read the config file ({reason})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({squash(str(exc))[:200]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected option: value lines (a YAML mapping), got {type(data).__name__}")
    fields = {name: f for name, f in option_fields().items() if f.metadata["config"]}
    out = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"{path}: unknown option {str(key)!r}; known: {', '.join(fields)}")
        out[key] = _config_value(path, key, value, fields[key])
    return out


def _config_value(path: Path, key: str, value: Any, f: dataclasses.Field) -> Any:
    """A config file's value for field ``f``, checked against its kind."""
    kind = f.metadata["kind"]
    if value is None and f.default is None:
        return None
    if kind == "int":
        return require_int(value, f"{path}: {key}", f.metadata["minimum"], error=ConfigError)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind in ("str", "path") and isinstance(value, str) and value.strip():
        return value
    if kind == "names" and (isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value))):
        return split_names(value)
    expected = {"bool": "true or false", "str": "a text value", "path": "a folder path",
                "names": "a list of names"}[kind]
    raise ConfigError(f"{path}: {key} must be {expected}, got {value!r}")


def parse_scheduler(value: str) -> tuple[str, Any]:
    """Classify a ``--scheduler`` value.

    Returns:
        ``("local", n_workers)``, ``("file", path)`` for a scheduler JSON file, or
        ``("address", address)``.

    Raises:
        RunError: For ``local:`` without a positive worker count, or an unknown form.
    """
    value = value.strip()
    if value == "local" or value.startswith("local:"):
        _, _, count = value.partition(":")
        try:
            n = int(count)
        except ValueError:
            n = 0
        if n < 1:
            raise RunError(f"--scheduler {value!r}: expected local:N with N >= 1 workers, e.g. local:4")
        return "local", n
    if "://" in value:
        return "address", value
    if value.endswith(".json"):
        if not Path(value).is_file():
            raise RunError(f"{value}: Dask scheduler file not found")
        return "file", value
    raise RunError(
        f"--scheduler {value!r}: expected a scheduler address (tcp://HOST:8786), a scheduler "
        "JSON file, or local:N"
    )
