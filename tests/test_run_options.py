"""RunOptions: one options object for run, score, check and score-published (CLI > config file > defaults)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from urgentbench.pipeline.errors import RunError
from urgentbench.pipeline.options import ConfigError, RunOptions, read_config


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scoring.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_normalised_values():
    options = RunOptions()
    assert options.results_dir == Path("results") and options.jobs == 1 and options.batch_size == 1
    assert options.metrics == () and options.metric_names is None
    assert options.reference_cache and options.strict and options.progress and not options.fail_on_missing
    named = RunOptions(results_dir="out", metrics=" pesq, estoi ,")
    assert named.results_dir == Path("out") and named.metrics == ("pesq", "estoi")
    assert RunOptions(metrics=["sdr"]).metric_names == ["sdr"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.jobs = 4  # type: ignore[misc]
    assert options.replace(jobs=4).jobs == 4 and options.jobs == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"jobs": 0}, "jobs must be a positive integer, got 0"),
        ({"limit": -1}, "limit must be a positive integer, got -1"),
        ({"batch_size": 1.5}, "batch size must be a positive integer, got 1.5"),
        ({"threads_per_worker": True}, "threads per worker must be a positive integer, got True"),
        ({"scheduler": "local:0"}, "--scheduler 'local:0': expected local:N with N >= 1 workers, e.g. local:4"),
    ],
)
def test_bad_values_are_refused_when_made(fields, message):
    with pytest.raises(RunError) as info:
        RunOptions(**fields)
    assert str(info.value) == message
    with pytest.raises(RunError):
        RunOptions().replace(**fields)


def test_config_file_values_are_checked_and_named(tmp_path: Path):
    path = _config(tmp_path, "jobs: 3\nbatch_size: 8\nmetrics: [pesq, estoi]\nreference_cache: false\n"
                             "protocol: urgent2025\nlimit: null\nresults_dir: /tmp/r\n")
    assert read_config(path) == {"jobs": 3, "batch_size": 8, "metrics": ("pesq", "estoi"), "reference_cache": False,
                                 "protocol": "urgent2025", "limit": None, "results_dir": "/tmp/r"}
    assert read_config(_config(tmp_path, "metrics: pesq,sdr\n"))["metrics"] == ("pesq", "sdr")
    assert read_config(_config(tmp_path, "# nothing yet\n")) == {}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("jobs: 2\nbatch-size: 4\n", "unknown option 'batch-size'; known: results_dir, metrics, protocol"),
        ("bogus: 1\n", "unknown option 'bogus'; known: "),
        ("command: urgentbench run\n", "unknown option 'command'"),  # provenance is never configured
        ("batch_size: 0\n", "batch_size must be a positive integer, got 0"),
        ("jobs: two\n", "jobs must be a positive integer, got 'two'"),
        ("retry_errors: yes please\n", "retry_errors must be true or false, got 'yes please'"),
        ("metrics: [pesq, 3]\n", "metrics must be a list of names, got ['pesq', 3]"),
        ("- jobs\n- 2\n", "expected option: value lines (a YAML mapping), got list"),
        ("jobs: [1\n", "not valid YAML ("),
    ],
)
def test_a_bad_config_file_is_one_line_naming_the_file(tmp_path: Path, text: str, problem: str):
    path = _config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        RunOptions.merged({}, path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_a_missing_config_file_is_one_line(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        read_config(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: cannot read the config file (No such file or directory)"


def test_given_values_beat_the_config_file_which_beats_the_defaults(tmp_path: Path):
    path = _config(tmp_path, "jobs: 5\nbatch_size: 4\nskip_unavailable: true\n")
    options = RunOptions.merged({"jobs": 2}, path, defaults={"jobs": 16, "limit": 7})
    assert options.jobs == 2  # given
    assert options.batch_size == 4 and options.skip_unavailable  # config file
    assert options.limit == 7  # defaults
    assert options.metric_at_a_time is False  # the field's own default
    assert RunOptions.merged({}, None, defaults={"jobs": 16}).jobs == 16
