"""Scoring: one metric on the prepared items of a batch (the second half of a job).

:func:`score` is the only scoring path, whatever the batch size (a job alone is a batch
of one). Each item is handed to the metric at its working rate (resampled once per rate,
shared by all metrics of the item). A metric with a batched backend
(:attr:`~urgentbench.metrics.base.Metric.batch_size` > 1) gets all the items at once;
the others get them one by one. A metric whose reference-side work can be kept
(:attr:`~urgentbench.metrics.base.Metric.reference_state_cacheable`) gets each item's
reference state from the :class:`~urgentbench.reference_cache.ReferenceStateCache`
in both cases, so it is computed once per utterance for every system.

Each item's outcome is a result dict or the recorded reason, with the seconds spent on
it: its own kernel time one by one, an equal share of the batch time when batched, plus
the resampling it triggered.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from typing import Any

from urgentbench.errors import one_line
from urgentbench.metrics import Metric, MetricError
from urgentbench.metrics.base import BatchItem
from urgentbench.pipeline.prepare import Prepared
from urgentbench.pipeline.specs import MetricSpec
from urgentbench.reference_cache import ReferenceStateCache

#: One logger for the pipeline: users see "urgentbench.pipeline" whichever stage speaks.
logger = logging.getLogger(__package__)

#: One item's outcome: ``(result, error, seconds)``, exactly one of result and error set.
Outcome = tuple[dict[str, Any] | None, str | None, float]


def score(metric: Metric, metric_id: str, items: Sequence[Prepared], states: ReferenceStateCache) -> list[Outcome]:
    """Score ``items`` (prepared, without error) with the set-up ``metric``.

    Args:
        metric: The set-up metric.
        metric_id: ``name-vVERSION-OPTIONSHASH`` (names its reference-state files).
        items: The prepared jobs to score, in order.
        states: The worker's reference-state cache.

    Returns:
        One :data:`Outcome` per item, in order; a failure of one item never fails the others.
    """
    n = len(items)
    seconds = [0.0] * n
    failed: dict[int, BaseException] = {}
    inputs: list[BatchItem | None] = [None] * n
    state: list[dict | None] = [None] * n
    for k, item in enumerate(items):
        t0 = time.perf_counter()
        try:
            rate = metric.working_rate(item.utt.sample_rate)
            est, ref = item.at_rate(rate)
            inputs[k] = BatchItem(est, ref, rate, item.utt.text)
            if ref is not None and metric.reference_state_cacheable:
                state[k] = states.get(metric, metric_id, item.utt.id, ref, rate)
        except Exception as exc:  # a reference that cannot be analysed fails only its item
            failed[k] = exc
        seconds[k] = time.perf_counter() - t0
    outcomes: list[dict[str, Any] | BaseException | None] = [failed.get(k) for k in range(n)]
    with_state = [k for k in range(n) if k not in failed and state[k] is not None]
    plain = [k for k in range(n) if k not in failed and state[k] is None]
    for group, stateful in ((with_state, True), (plain, False)):
        if len(group) > 1 and metric.batch_size > 1:  # all at once
            t0 = time.perf_counter()
            batch = [inputs[k] for k in group]
            results = run_batch(metric, batch, [state[k] for k in group] if stateful else None)  # type: ignore[misc]
            share = (time.perf_counter() - t0) / len(group)
            for k, result in zip(group, results):
                outcomes[k] = result
                seconds[k] += share
            continue
        for k in group:  # one by one
            t0 = time.perf_counter()
            outcomes[k] = _compute(metric, inputs[k], state[k])  # type: ignore[arg-type]
            seconds[k] += time.perf_counter() - t0
    return [_outcome(result, s) for result, s in zip(outcomes, seconds)]


def _compute(metric: Metric, item: BatchItem, state: dict | None) -> dict[str, Any] | BaseException:
    """One item through ``compute`` (or ``compute_with_state``): the result or the exception."""
    try:
        if state is not None:
            return metric.compute_with_state(item.estimate, item.reference, state, item.sample_rate,
                                             transcript=item.transcript)
        return metric.compute(item.estimate, item.reference, item.sample_rate, transcript=item.transcript)
    except Exception as exc:  # a crashing metric is recorded (by _outcome), the run goes on
        return exc


def run_batch(
    metric: Metric, items: Sequence[BatchItem], states: Sequence[dict] | None = None
) -> list[dict[str, Any] | Exception]:
    """``metric.compute_batch(items)`` (or ``compute_batch_with_state``), one at a time when the batched call itself fails.

    Returns:
        One entry per item: the result dict or the exception recorded for it.
    """
    if not items:
        return []
    try:
        out = list(metric.compute_batch(items) if states is None else metric.compute_batch_with_state(items, states))
        if len(out) != len(items):
            raise RuntimeError(f"compute_batch returned {len(out)} results for {len(items)} utterances")
        return out
    except Exception:
        logger.warning(
            "metric %s: batched scoring failed; scoring the %d utterances one at a time",
            getattr(metric, "name", "?"),
            len(items),
            exc_info=logger.isEnabledFor(logging.DEBUG),
        )
        if states is None:
            return Metric.compute_batch(metric, items)
        return Metric.compute_batch_with_state(metric, items, states)


def _outcome(result: dict[str, Any] | BaseException | None, seconds: float) -> Outcome:
    """An :data:`Outcome` from a result dict or the exception recorded for it."""
    if isinstance(result, MetricError):
        text = str(result).strip()
        return None, str(result).splitlines()[0] if text else "MetricError", seconds
    if isinstance(result, BaseException):
        logger.debug("metric crashed: %s", "".join(traceback.format_exception(result)))
        return None, one_line(result), seconds
    return result, None, seconds


def setup_failure_message(spec: MetricSpec, exc: BaseException) -> str:
    """One line saying that metric ``spec`` could not be set up, why, and the command that fixes it.

    An asset error carries its own fix (``urgentbench assets fetch ...``/``assets add ...``);
    anything else points to the checks, and to the repair commands of the metric's assets.
    """
    text = one_line(exc)
    line = f"metric {spec.name} could not be set up: {text}"
    if "fix:" in text:
        return line
    fixes = []
    try:
        for asset in spec.cls.assets_for({**spec.cls.default_options(), **dict(spec.options)}):
            repair = getattr(asset, "repair_fix", None)
            if repair is not None:
                fixes.append(repair())
    except Exception:  # listing the assets must not hide the original failure
        logger.debug("cannot list the assets of %s", spec.name, exc_info=True)
    repair = f"; its model files are repaired with {', or '.join(fixes)}" if fixes else ""
    return f"{line}; check it with `urgentbench ls metrics` and `urgentbench assets verify`{repair}"
