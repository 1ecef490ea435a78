"""RunOptions: one options object for run, score, check and score-published (CLI > config file > defaults)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

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


# --------------------------------------------------------------------------- the command line

#: The smallest command line of each command that takes run options.
COMMANDS = {
    "run": ["run", "--system", "noisy", "--suite", "demo"],
    "score": ["score", "--suite", "demo", "--outputs", "out"],
    "check": ["check", "--suite", "demo", "--system", "noisy", "--baseline", "b.json"],
    "score-published": ["data", "score-published", "masksr2-demo"],
}
#: A value other than the default for each kind of option, as typed and as stored.
GIVEN = {"int": ("3", 3), "str": ("local:2", "local:2"), "path": ("elsewhere", Path("elsewhere")),
         "names": ("pesq, estoi", ("pesq", "estoi"))}


def _options(argv: list[str]) -> RunOptions:
    from urgentbench.cli import build_parser
    from urgentbench.cli.options import run_options

    return run_options(build_parser().parse_args(argv))


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_option_is_reachable_from_every_scoring_command(command: str, tmp_path: Path):
    from urgentbench.cli.options import flag_of

    base = COMMANDS[command]
    defaults = _options(base)
    assert defaults.jobs == (os.cpu_count() or 1)  # the command line's own default
    assert defaults.progress and _options(["-q", *base]).progress is False
    assert defaults.command.startswith("urgentbench ")
    for f in dataclasses.fields(RunOptions):
        meta = f.metadata
        if command not in meta["commands"]:
            assert f.name in ("progress", "command") or (f.name == "strict" and command in ("run", "score-published"))
            continue
        if meta["kind"] == "bool":
            options = _options([*base, flag_of(f)])
            expected = not f.default
        else:
            typed, expected = GIVEN[meta["kind"]]
            if f.name == "protocol":
                typed, expected = "urgent2025", "urgent2025"
            options = _options([*base, flag_of(f), typed])
        assert getattr(options, f.name) == expected != getattr(defaults, f.name), (command, f.name)
        if meta["config"]:  # and from a config file
            value = expected if meta["kind"] != "path" else str(expected)
            config = tmp_path / f"{f.name}.yaml"
            config.write_text(yaml.safe_dump({f.name: list(value) if isinstance(value, tuple) else value}))
            assert getattr(_options([*base, "--config", str(config)]), f.name) == expected, (command, f.name)


def test_command_line_beats_config_file_beats_defaults(tmp_path: Path):
    config = _config(tmp_path, "jobs: 5\nbatch_size: 4\nreference_cache: false\nmetrics: [pesq]\n")
    base = [*COMMANDS["run"], "--config", str(config)]
    options = _options([*base, "--jobs", "3", "--metrics", "sdr,estoi"])
    assert options.jobs == 3 and options.metrics == ("sdr", "estoi")  # command line
    assert options.batch_size == 4 and options.reference_cache is False  # config file
    assert options.limit is None and options.threads_per_worker is None  # defaults
    assert _options(base).jobs == 5 and _options(COMMANDS["run"]).jobs == (os.cpu_count() or 1)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_unknown_config_key_is_one_line_naming_the_file(command: str, tmp_path: Path, capsys):
    from urgentbench.cli import main

    config = _config(tmp_path, "jobs: 2\nbatchsize: 8\n")
    results = tmp_path / "r"
    assert main([*COMMANDS[command], "--config", str(config), "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"urgentbench: error: {config}: unknown option 'batchsize'; known: results_dir, ")
    assert err.count("\n") == 1 and not results.exists()


@pytest.fixture()
def mini(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from test_runner import make_suite

    from urgentbench.suites import SUITES

    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(make_suite(tmp_path, n=4)))
    SUITES.rescan()
    yield tmp_path
    monkeypatch.undo()
    SUITES.rescan()


def test_check_run_passes_the_options_whole(mini: Path):
    """``check --run`` used to drop the protocol, scheduler and metric-at-a-time: it now runs with every option."""
    from urgentbench.cli import main
    from urgentbench.store import ResultStore

    results = mini / "results"
    config = _config(mini, "metric_at_a_time: true\nbatch_size: 2\nprotocol: urgent2025\n")
    argv = ["-q", "check", "--suite", "mini", "--system", "noisy", "--baseline", str(mini / "b.json"),
            "--write-baseline", "--run", "--metrics", "sdr,lsd", "--limit", "2", "--jobs", "1",
            "--results-dir", str(results), "--config", str(config)]
    assert main(argv) == 0
    with ResultStore(results / "results.sqlite") as store:
        rows = store.dump()
        (run,) = store.runs()
    assert sorted((r[4], r[5]) for r in rows) == [(u, m) for u in ("mini_000", "mini_001") for m in ("lsd", "sdr")]
    provenance = run["provenance"]
    assert provenance["protocol"]["name"] == "urgent2025"  # the protocol reached the run
    sdr = next(m for m in provenance["metrics"] if m["name"] == "sdr")
    assert sdr["options"]["precision"] == "float32"  # with the protocol's pinned options
