"""What a run computes: metrics and producers by spec, and the store key of each pair.

A :class:`MetricSpec` is a metric by canonical name with its options; a
:class:`ProducerSpec` says where enhanced audio comes from (a system plug-in or a folder
of already-enhanced files). Both are small, frozen and picklable: they travel to the
workers. :func:`score_key` is the store key of one (producer, metric) pair on a suite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from urgentbench.audio import AudioError, file_sha256
from urgentbench.layout import find_output
from urgentbench.manifest import Utterance
from urgentbench.metrics import METRICS, Metric
from urgentbench.pipeline.errors import RunError
from urgentbench.requirements import MissingRequirementError
from urgentbench.store import ScoreKey
from urgentbench.suites import Suite
from urgentbench.systems import SYSTEMS, config_hash


@dataclass(frozen=True)
class MetricSpec:
    """A metric by canonical name with its options."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def cls(self) -> type[Metric]:
        """The metric class."""
        return METRICS.get(self.name)

    def build(self) -> Metric:
        """A fresh (not set-up) instance."""
        return self.cls(**dict(self.options))

    @property
    def options_hash(self) -> str:
        """Hash of the effective options (defaults included) and of the checkpoints they load.

        The checkpoints' sha256 (:meth:`Metric.model_hashes`) are part of the hash, so scores
        made with different model files are stored apart and never ranked together. The
        options are those of :meth:`Metric.hashed_options` (a model metric's ``device`` is
        left out when it is ``"cpu"``).
        """
        options = {**self.cls.default_options(), **dict(self.options)}
        models = self.cls.model_hashes(options)
        options = self.cls.hashed_options(options)
        return config_hash({**options, "_models": models} if models else options)

    @property
    def metric_id(self) -> str:
        """``name-vVERSION-OPTIONSHASH``: names the metric's files (reference state)."""
        return f"{self.name}-v{self.cls.version}-{self.options_hash}"

    def applies_to(self, utt: Utterance) -> bool:
        """Whether the metric can run on ``utt`` (reference / transcript present)."""
        cls = self.cls
        if cls.needs_reference and not utt.has_reference:
            return False
        return not (cls.needs_transcript and not utt.text)


@dataclass(frozen=True)
class ProducerSpec:
    """Where enhanced audio comes from: a system plug-in, a directory of files or a Python function."""

    name: str
    config_hash: str
    options: tuple[tuple[str, Any], ...] = ()
    directory: str | None = None
    display_name: str = ""
    metadata: tuple[tuple[str, Any], ...] = ()
    #: Directory producers: ``(utterance id, sha256 or None)`` of each file when it was
    #: checked; a worker refuses a file whose bytes differ by then.
    digests: tuple[tuple[str, str | None], ...] = field(default=(), repr=False, compare=False)
    #: Callable producers: ``f(waveform, sample_rate) -> (waveform, sample_rate)``
    #: (:mod:`urgentbench.pipeline.callables`); None for a system plug-in or a folder.
    function: Any = field(default=None, repr=False, compare=False)

    @property
    def is_directory(self) -> bool:
        """True for scored outside outputs."""
        return self.directory is not None

    @property
    def is_callable(self) -> bool:
        """True for a Python function run as a system."""
        return self.function is not None


def system_producer(name: str, options: dict[str, Any] | None = None) -> ProducerSpec:
    """Resolve a system plug-in into a producer, failing early when it is unknown or unavailable.

    Raises:
        UnknownNameError: For an unknown system.
        MissingRequirementError: When its packages or assets are missing.
    """
    options = dict(options or {})
    spec = SYSTEMS.get(name)
    avail = spec.availability(options)
    if not avail.ok:
        raise MissingRequirementError("system", spec.card.name, avail)
    system = spec.build(**options)
    return ProducerSpec(
        name=spec.card.name,
        config_hash=system.config_hash(),
        options=tuple(sorted(system.options.items())),
        display_name=spec.card.name,
        metadata=(("description", spec.card.description), ("paper", spec.card.paper)),
    )


def directory_producer(directory: str | Path, name: str, ids: list[str], metadata: dict | None = None) -> ProducerSpec:
    """A producer reading ``<id>.flac`` (or ``.wav``) files of ``directory``.

    The config hash covers the bytes of every file for ``ids``, so re-scoring changed
    outputs never reuses stale results; the workers refuse a file whose bytes changed
    after this hash was taken. Only regular files are hashed: a special file (FIFO,
    device, directory, a link to one or out of ``directory``) is never opened, and
    counts as that utterance's unusable output (the worker stores the reason).

    Raises:
        RunError: When the directory does not exist.
    """
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise RunError(f"{directory}: outputs directory not found")
    digests = []
    recorded: list[tuple[str, str | None]] = []
    for utt_id in ids:
        path = find_output(directory, utt_id)
        if path is None:
            digest, sha = "missing", None
        else:
            try:
                digest = sha = file_sha256(path, inside=directory)
            except AudioError as exc:
                digest, sha = f"unusable ({exc.problem})", None
        digests.append(f"{utt_id}:{digest}")
        recorded.append((utt_id, sha))
    return ProducerSpec(
        name=name,
        config_hash=config_hash({"outputs": digests}),
        directory=str(directory),
        display_name=name,
        metadata=tuple(sorted((metadata or {"outputs": str(directory)}).items())),
        digests=tuple(recorded),
    )


def score_key(suite: Suite, producer: ProducerSpec, metric: MetricSpec) -> ScoreKey:
    """The store key of a producer/metric pair on a suite."""
    return ScoreKey(
        suite=suite.name,
        suite_version=suite.version,
        system=producer.name,
        config_hash=producer.config_hash,
        metric=metric.name,
        metric_version=metric.cls.version,
        metric_config=metric.options_hash,
    )
