"""Hostile participants against the ranking: leaving out outputs, silent outputs, odd names.

The failure policy (README "Failure policy"): a missing or unusable output is the
participant's failure and never a free pass (not ranked by default; ``--missing worst``
fills it with the worst value of the other systems); a metric failing on a valid output
keeps URGENT's nan-mean and is counted. Names reach Markdown, LaTeX and CSV escaped.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from conftest import FIXTURES, TRANSCRIPTS

from urgentbench.cli import main
from urgentbench.manifest import Utterance, write_manifest
from urgentbench.report.leaderboard import (
    SystemSummary,
    build_leaderboard,
    fill_worst,
    summarize,
    to_csv,
    to_markdown,
)
from urgentbench.report.tables import build_table, latex_escape, markdown_escape, to_latex
from urgentbench.report.tables import to_markdown as table_markdown
from urgentbench.runner import (
    MetricSpec,
    ProducerSpec,
    RunOptions,
    directory_producer,
    load_inputs,
    run,
    score_key,
    silence_problem,
)
from urgentbench.store import METRIC, PARTICIPANT, ResultStore, ScoreKey, ScoreRow
from urgentbench.suites import get_suite

PESQ, ESTOI = MetricSpec("pesq"), MetricSpec("estoi")
MISSING_FILE = "no enhanced audio: AudioError: partial/{}: enhanced file not found (expected <id>.flac or <id>.wav)"


# --------------------------------------------------------------------------- stored results on the demo suite


@pytest.fixture(scope="module")
def demo():
    suite = get_suite("demo")
    return suite, [u.id for u in suite.utterances()]


def _put(store: ResultStore, suite, name: str, metric: MetricSpec, cells: dict, display: str | None = None) -> None:
    """Store one system's rows: ``utt -> value`` (a float) or ``utt -> (error, failure kind)``."""
    store.register_system(suite.name, suite.version, name, "h" + name[:6], display or name, {})
    key = score_key(suite, ProducerSpec(name=name, config_hash="h" + name[:6]), metric)
    run_id = store.start_run(suite.name, suite.version, "test", {})
    rows = []
    for utt, cell in cells.items():
        if isinstance(cell, tuple):
            rows.append(ScoreRow(key, utt, None, cell[0], 0.0, cell[1]))
        else:
            rows.append(ScoreRow(key, utt, {metric.name: cell}, None, 0.0))
    store.write(rows, run_id)


def _issue_scenario(store: ResultStore, suite, ids: list[str]) -> list[str]:
    """``full``: identical outputs to ``partial`` except that ``partial`` left out its 12 lowest-PESQ files."""
    pesq = {u: 1.0 + 0.05 * ((7 * i) % 24) for i, u in enumerate(ids)}
    estoi = {u: 0.5 + 0.01 * ((5 * i) % 24) for i, u in enumerate(ids)}
    dropped = sorted(ids, key=lambda u: pesq[u])[:12]
    for metric, values in ((PESQ, pesq), (ESTOI, estoi)):
        _put(store, suite, "full", metric, values)
        _put(store, suite, "partial", metric, {
            u: (MISSING_FILE.format(u), PARTICIPANT) if u in dropped else v for u, v in values.items()
        })
    return sorted(dropped)


def test_leaving_out_the_hardest_utterances_is_not_ranked_by_default(tmp_path: Path, demo):
    suite, ids = demo
    with ResultStore(tmp_path / "results.sqlite") as store:
        dropped = _issue_scenario(store, suite, ids)
        summaries = summarize(store, suite, [PESQ, ESTOI])
    by_name = {s.system: s for s in summaries}
    # the partial copy's mean over the outputs it chose is higher: exactly what must not win
    assert by_name["partial"].values["pesq"] > by_name["full"].values["pesq"]
    assert not by_name["partial"].complete and by_name["full"].complete
    lb = build_leaderboard(suite, summaries, [PESQ, ESTOI])
    assert [r["system"] for r in lb["rows"]] == ["full"]
    assert [r["system"] for r in lb["incomplete"]] == ["partial"]
    assert lb["incomplete"][0]["reason"] == (
        f"12 of 24 outputs missing or unusable (the system's failure), e.g. {dropped[0]}: {MISSING_FILE.format(dropped[0])}"
    )
    assert lb["incomplete"][0]["participant_failures"] == {"pesq": 12, "estoi": 12}
    assert "missing_policy" not in lb  # the default is not written: default leaderboards stay byte-identical
    md = to_markdown(lb)
    assert "Not ranked (incomplete): partial\n- partial: 12 of 24 outputs missing or unusable (the system's failure)" in md
    from urgentbench.report.html import systems_table

    html = systems_table(lb)  # the HTML page says why too
    assert "not ranked (incomplete); 12 of 24 outputs missing or unusable (the system&#x27;s failure)" in html


def test_missing_worst_ranks_the_partial_copy_level_with_the_full_one_never_above(tmp_path: Path, demo):
    suite, ids = demo
    with ResultStore(tmp_path / "results.sqlite") as store:
        _issue_scenario(store, suite, ids)
        summaries = summarize(store, suite, [PESQ, ESTOI])
    lb = build_leaderboard(suite, summaries, [PESQ, ESTOI], missing="worst")
    rows = {r["system"]: r for r in lb["rows"]}
    # the only other system is the full copy, so every filled value is its own: bit-identical means
    assert rows["partial"]["values"] == rows["full"]["values"]
    assert rows["partial"]["overall"] == rows["full"]["overall"] == 1.0
    assert rows["partial"]["filled"] == {"pesq": 12, "estoi": 12}
    assert "filled" not in rows["full"]
    assert [r["system"] for r in lb["rows"]] == ["full", "partial"]  # a tie lists the complete system first
    assert lb["missing_policy"] == "worst" and lb["incomplete"] == []
    assert "- partial: pesq 12, estoi 12 value(s) filled; pesq: " in to_markdown(lb)


def test_allow_partial_is_worst_fill_not_a_free_pass(tmp_path: Path, demo):
    suite, ids = demo
    with ResultStore(tmp_path / "results.sqlite") as store:
        _issue_scenario(store, suite, ids)
        summaries = summarize(store, suite, [PESQ, ESTOI])
    lb = build_leaderboard(suite, summaries, [PESQ, ESTOI], allow_partial=True)
    rows = {r["system"]: r for r in lb["rows"]}
    assert lb["missing_policy"] == "worst"
    assert rows["partial"]["values"]["pesq"] == rows["full"]["values"]["pesq"]
    assert rows["partial"]["ranks"] == {"pesq": 1.0, "estoi": 1.0}


def test_worst_fill_takes_the_worst_other_value_in_each_direction():
    lsd = MetricSpec("lsd")

    def summary(name: str, pesq: dict, lsd_values: dict, missing: set[str]) -> SystemSummary:
        s = SystemSummary(name, "h", name, {})
        s.per_utterance = {
            "pesq": {u: {"pesq": v} for u, v in pesq.items() if u not in missing},
            "lsd": {u: {"lsd": v} for u, v in lsd_values.items() if u not in missing},
        }
        s.participant_ids = {"pesq": set(missing), "lsd": set(missing)}
        s.expected = {"pesq": 3, "lsd": 3}
        return s

    a = summary("a", {"u1": 2.0, "u2": 3.0, "u3": 2.0}, {"u1": 1.0, "u2": 4.0, "u3": 1.0}, set())
    b = summary("b", {"u1": 4.0, "u2": 1.5, "u3": 2.0}, {"u1": 3.0, "u2": 2.0, "u3": 1.0}, set())
    c = summary("c", {"u1": 4.5, "u2": 4.5, "u3": 4.5}, {"u1": 0.5, "u2": 0.5, "u3": 0.5}, {"u2"})
    filled = fill_worst([a, b, c], [PESQ, lsd])
    # PESQ (higher is better): the lowest other value on u2 (b's 1.5); LSD (lower is better): the highest (a's 4.0)
    assert filled[2].per_utterance["pesq"]["u2"] == {"pesq": 1.5}
    assert filled[2].per_utterance["lsd"]["u2"] == {"lsd": 4.0}
    assert filled[2].values == {"pesq": pytest.approx((4.5 + 1.5 + 4.5) / 3), "lsd": pytest.approx((0.5 + 4.0 + 0.5) / 3)}
    assert filled[2].filled == {"pesq": 1, "lsd": 1}
    assert filled[0].filled == {} and filled[0].values == a.values  # complete systems are untouched
    assert c.per_utterance["pesq"].keys() == {"u1", "u3"}  # the caller's summaries are not modified


def test_worst_fill_of_corpus_wer_adds_the_transcript_with_most_edits():
    wer = MetricSpec("wer")

    def row(edits: int, words: int = 10) -> dict:
        return {"wer": edits / words, "wer_edits": edits, "wer_ref_words": words,
                "cer": edits / 50, "cer_edits": edits, "cer_ref_chars": 50, "hypothesis": f"h{edits}"}

    a, b, c = (SystemSummary(n, "h", n, {}) for n in "abc")
    a.per_utterance = {"wer": {"u1": row(1), "u2": row(2)}}
    b.per_utterance = {"wer": {"u1": row(0), "u2": row(7)}}
    c.per_utterance = {"wer": {"u1": row(0)}}
    c.participant_ids = {"wer": {"u2"}}
    filled = fill_worst([a, b, c], [wer])[2]
    # corpus WER: (0 + 7 edits) / (10 + 10 words); the filled utterance counts as b's transcript
    assert filled.values["wer"] == pytest.approx(7 / 20)
    assert filled.values["cer"] == pytest.approx(7 / 100)
    assert filled.per_utterance["wer"]["u2"]["wer_edits"] == 7


def test_utterance_no_other_system_has_stays_missing(tmp_path: Path, demo):
    suite, ids = demo
    with ResultStore(tmp_path / "results.sqlite") as store:
        _put(store, suite, "a", PESQ, {u: (2.0 if u != ids[0] else ("PESQ failed: No utterances detected", METRIC)) for u in ids})
        _put(store, suite, "b", PESQ, {u: (3.0 if u != ids[0] else (MISSING_FILE.format(u), PARTICIPANT)) for u in ids})
        summaries = summarize(store, suite, [PESQ])
    lb = build_leaderboard(suite, summaries, [PESQ], missing="worst", categories={"intrusive": ["pesq"]})
    rows = {r["system"]: r for r in lb["rows"]}
    # a has no value on ids[0] either (a metric failure), so b's missing value cannot be filled
    assert rows["b"]["values"]["pesq"] == 3.0
    assert rows["b"]["filled"] == {}
    assert rows["b"]["participant_failures"] == {"pesq": 1}
    assert rows["a"]["failures"] == {"pesq": 1}


def test_metric_failures_keep_the_nan_mean_and_are_counted(tmp_path: Path, demo):
    suite, ids = demo
    with ResultStore(tmp_path / "results.sqlite") as store:
        _put(store, suite, "sys", PESQ, {
            u: (("PESQ failed: NoUtterancesError: b'No utterances detected'", METRIC) if u == ids[3] else 2.0)
            for u in ids
        })
        summaries = summarize(store, suite, [PESQ])
    assert summaries[0].complete
    lb = build_leaderboard(suite, summaries, [PESQ], categories={"intrusive": ["pesq"]})
    row = lb["rows"][0]
    assert row["values"]["pesq"] == 2.0 and row["n_valid"]["pesq"] == 23
    assert row["failures"] == {"pesq": 1}
    assert "participant_failures" not in row
    assert (
        "Missing values (failures are excluded from means, never counted as 0):\n"
        f"- sys: pesq failed on 1 utterance(s), e.g. {ids[3].replace('_', chr(92) + '_')}: "
        "PESQ failed: NoUtterancesError: b'No utterances detected'\n"
    ) in to_markdown(lb)


# --------------------------------------------------------------------------- the store records whose failure it is


def test_score_row_kind_defaults_and_rejects_unknown_kinds():
    key = score_key(get_suite("demo"), ProducerSpec(name="s", config_hash="c"), PESQ)
    assert ScoreRow(key, "u", {"pesq": 1.0}, None, 0.0, PARTICIPANT).failure is None
    assert ScoreRow(key, "u", None, "PESQ failed", 0.0).failure == METRIC
    with pytest.raises(ValueError, match=r"^unknown failure kind 'mine'; use one of participant, metric$"):
        ScoreRow(key, "u", None, "x", 0.0, "mine")


def test_store_of_an_older_version_is_migrated_in_place(tmp_path: Path):
    db = tmp_path / "results.sqlite"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE scores (suite TEXT NOT NULL, suite_version TEXT NOT NULL, system TEXT NOT NULL, "
        "config_hash TEXT NOT NULL, utt_id TEXT NOT NULL, metric TEXT NOT NULL, metric_version TEXT NOT NULL, "
        "metric_config TEXT NOT NULL, result_json TEXT, error TEXT, seconds REAL NOT NULL, run_id INTEGER NOT NULL, "
        "PRIMARY KEY (suite, suite_version, system, config_hash, utt_id, metric, metric_version, metric_config))"
    )
    old = [("u1", '{"pesq": 2.0}', None), ("u2", None, "no enhanced audio: AudioError: x: file not found"),
           ("u3", None, "PESQ failed: No utterances detected")]
    for utt, result, error in old:
        con.execute("INSERT INTO scores VALUES ('demo','1.0','s','c',?,'pesq','1','cfg',?,?,0.5,1)", (utt, result, error))
    con.commit()
    con.close()
    for _ in range(2):  # the second open finds the column and changes nothing
        with ResultStore(db) as store:
            rows = store.rows(ScoreKey("demo", "1.0", "s", "c", "pesq", "1", "cfg"))
        assert [(r.utt_id, r.failure) for r in rows] == [("u1", None), ("u2", PARTICIPANT), ("u3", METRIC)]


# --------------------------------------------------------------------------- silent and broken outputs, scored for real


def _mini_suite(root: Path, bad_clean: int | None = None) -> Path:
    folder = root / "suites" / "hostile"
    utts = []
    for i in range(4):
        speaker = "ab"[i % 2]
        clean = FIXTURES / f"speech_{speaker}_22k.flac" if i != bad_clean else root / "gone.flac"
        utts.append(Utterance(id=f"h_{i}", sample_rate=16000, clean=str(clean), text=TRANSCRIPTS[speaker],
                              speaker=speaker, seed=i, degradations=[], tags={}))
    sha = write_manifest(folder / "manifest.jsonl", utts)
    card = {"name": "hostile", "version": "1", "description": "hostile test suite", "sample_rate": 16000,
            "manifest": "manifest.jsonl", "manifest_sha256": sha, "metrics": ["pesq", "estoi", "sdr"],
            "categories": {"intrusive": ["pesq", "estoi", "sdr"]}}
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return folder.parent


@pytest.fixture()
def hostile_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    from urgentbench.suites import SUITES

    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(_mini_suite(tmp_path)))
    SUITES.rescan()
    suite = get_suite("hostile")
    results = tmp_path / "results"
    inputs = {u.id: load_inputs(u, suite.folder, results, suite.key)[0] for u in suite.utterances()}
    yield suite, inputs, results
    monkeypatch.undo()
    SUITES.rescan()


def _outputs(folder: Path, inputs: dict, special: dict) -> Path:
    folder.mkdir(parents=True)
    for utt, x in inputs.items():
        y, subtype = special.get(utt, (x, "PCM_16"))
        sf.write(folder / f"{utt}.flac", y, 16000, subtype=subtype)
    return folder


def test_silence_threshold_is_half_a_16_bit_step():
    assert silence_problem(np.zeros(100, np.float32)) == "silent output (all samples zero)"
    quiet = np.tile(np.float32([1e-5, -1e-5]), 50)
    assert silence_problem(quiet) == "silent output (peak 1e-05: every sample rounds to zero at 16 bit)"
    assert silence_problem(np.float32([0.0, 1.0 / 32768])) is None  # one 16-bit step is a signal
    assert silence_problem(np.float32([0.0, 0.5 / 32768])) is not None  # half a step rounds to zero


def test_silent_and_broken_outputs_are_the_participants_failure_for_every_metric(hostile_suite, tmp_path: Path):
    suite, inputs, results = hostile_suite
    n1, n2, n3 = (len(inputs[u]) for u in ("h_1", "h_2", "h_3"))
    quiet = np.tile(np.float32([1e-5, -1e-5]), n2 // 2 + 1)[:n2]
    out = _outputs(tmp_path / "out", inputs, {
        "h_1": (np.zeros(n1, np.float32), "PCM_16"),   # digital silence
        "h_2": (quiet, "PCM_24"),                      # below half a 16-bit step
        "h_3": (inputs["h_3"][:-5], "PCM_16"),         # 5 samples short
    })
    metrics = [PESQ, ESTOI, MetricSpec("sdr")]
    producer = directory_producer(out, "quiet-team", [u.id for u in suite.utterances()])
    run(suite, [producer], metrics, RunOptions(results_dir=results, progress=False))
    with ResultStore(results / "results.sqlite") as store:
        got = {
            (r.utt_id, m.name): (r.error, r.failure, r.result)
            for m in metrics for r in store.rows(score_key(suite, producer, m))
        }
        summaries = summarize(store, suite, metrics)
    for m in metrics:
        assert got[("h_1", m.name)] == ("silent output (all samples zero)", PARTICIPANT, None)
        assert got[("h_2", m.name)] == (
            "silent output (peak 1e-05: every sample rounds to zero at 16 bit)", PARTICIPANT, None
        )
        assert got[("h_3", m.name)] == (
            f"no enhanced audio: AudioError: {out / 'h_3.flac'}: {n3 - 5} samples, expected exactly the "
            f"input's {n3} (outputs are never trimmed or padded)", PARTICIPANT, None
        )
        assert got[("h_0", m.name)][:2] == (None, None) and got[("h_0", m.name)][2][m.name] is not None
    lb = build_leaderboard(suite, summaries, metrics)
    assert lb["rows"] == []
    assert lb["incomplete"][0]["reason"] == (
        "3 of 4 outputs missing or unusable (the system's failure), e.g. h_1: silent output (all samples zero)"
    )


def test_an_input_that_cannot_be_rendered_is_not_the_participants_failure(tmp_path: Path, monkeypatch):
    from urgentbench.suites import SUITES

    monkeypatch.setenv("URGENTBENCH_SUITES_PATH", str(_mini_suite(tmp_path, bad_clean=3)))
    SUITES.rescan()
    try:
        suite = get_suite("hostile")
        results = tmp_path / "results"
        inputs = {u.id: load_inputs(u, suite.folder, results, suite.key)[0] for u in suite.utterances()[:3]}
        out = _outputs(tmp_path / "out", inputs, {})
        producer = directory_producer(out, "team", [u.id for u in suite.utterances()])
        run(suite, [producer], [PESQ], RunOptions(results_dir=results, progress=False))
        with ResultStore(results / "results.sqlite") as store:
            rows = {r.utt_id: r for r in store.rows(score_key(suite, producer, PESQ))}
            summaries = summarize(store, suite, [PESQ])
    finally:
        monkeypatch.undo()
        SUITES.rescan()
    assert rows["h_3"].failure == METRIC
    assert rows["h_3"].error.startswith("no input audio: AudioError: ") and rows["h_3"].error.endswith("file not found")
    assert summaries[0].complete  # nan-mean over the three rendered utterances; the system is ranked
    assert build_leaderboard(suite, summaries, [PESQ])["rows"][0]["failures"] == {"pesq": 1}


# --------------------------------------------------------------------------- names and CLI values


HOSTILE = "evil | <script>alert(1)</script> `x`\nnext"


def test_leaderboard_markdown_escapes_hostile_names(tmp_path: Path, demo):
    suite, ids = demo
    with ResultStore(tmp_path / "results.sqlite") as store:
        _put(store, suite, "evil", PESQ, {u: 2.0 for u in ids}, display=HOSTILE)
        _put(store, suite, "*bold*", PESQ, {u: 1.0 for u in ids})
        summaries = summarize(store, suite, [PESQ])
    lb = build_leaderboard(suite, summaries, [PESQ], categories={"intrusive": ["pesq"]})
    md = to_markdown(lb)
    assert "| 1 | evil \\| &lt;script&gt;alert(1)&lt;/script&gt; \\`x\\` next | 2.000 (1) | 1.00 | **1.000** |\n" in md
    assert "| 2 | \\*bold\\* | 1.000 (2) | 2.00 | **2.000** |\n" in md
    assert "<script>" not in md and "next |" in md
    # every table line keeps its 6 cell borders: the name's own | is escaped, its newline gone
    table_lines = [line for line in md.splitlines() if line.startswith("|")]
    assert [line.replace("\\|", "").count("|") for line in table_lines] == [6, 6, 6, 6]


def test_markdown_escape_exact():
    assert markdown_escape("a|b<c>&d`e*f_g[h]i#j~k\\l\r\n\tm") == (
        "a\\|b&lt;c&gt;&amp;d\\`e\\*f\\_g\\[h\\]i\\#j\\~k\\\\l   m"
    )


def test_latex_escapes_every_special_and_keeps_one_line():
    assert latex_escape("R&D_50% $#{x}~^\\ok\n\nend") == (
        r"R\&D\_50\% \$\#\{x\}\textasciitilde{}\textasciicircum{}\textbackslash{}ok  end"
    )


def test_paper_tables_escape_names_and_the_reference(tmp_path: Path, demo):
    suite, ids = demo
    with ResultStore(tmp_path / "results.sqlite") as store:
        _put(store, suite, "a", PESQ, {u: 2.0 + 0.01 * i for i, u in enumerate(ids)}, display="A&B_<i>|")
        _put(store, suite, "b", PESQ, {u: 1.0 + 0.01 * i for i, u in enumerate(ids)}, display="x`\ny")
        summaries = summarize(store, suite, [PESQ])
    rows = {s.display_name: s for s in summaries}
    table = build_table(suite, rows, [("pesq", PESQ.cls)], reference="A&B_<i>|", n_resamples=50)
    md = table_markdown(table)
    assert "| A&amp;B\\_&lt;i&gt;\\| | **2.115** |\n" in md
    assert "| x\\` y | 1.115 † |\n" in md
    assert "† differs significantly from A&amp;B\\_&lt;i&gt;\\| (two-sided" in md
    tex = to_latex(table)
    assert "A\\&B\\_\\textless{}i\\textgreater{}\\textbar{} & \\textbf{2.115} \\\\\n" in tex
    assert "x` y & 1.115$^{\\dagger}$ \\\\\n" in tex


def test_table_never_marks_a_partial_system_best(tmp_path: Path, demo):
    suite, ids = demo
    with ResultStore(tmp_path / "results.sqlite") as store:
        _issue_scenario(store, suite, ids)
        summaries = summarize(store, suite, [PESQ, ESTOI])
    rows = {s.display_name: s for s in summaries}
    columns = [("pesq", PESQ.cls)]
    md = table_markdown(build_table(suite, rows, columns))
    full, partial = rows["full"].values["pesq"], rows["partial"].values["pesq"]
    assert partial > full
    assert f"| full | **{full:.3f}** |\n| partial | {partial:.3f} |\n" in md
    assert "Note: partial is not comparable (12 of 24 outputs missing or unusable" in md
    worst = table_markdown(build_table(suite, rows, columns, missing="worst", metrics=[PESQ, ESTOI]))
    assert f"| full | **{full:.3f}** |\n| partial | **{full:.3f}** |\n" in worst
    assert "Note: partial: missing values filled with the worst of the other systems (pesq 12, estoi 12)." in worst


def test_csv_cells_are_never_spreadsheet_formulas(tmp_path: Path, demo):
    suite, ids = demo
    with ResultStore(tmp_path / "results.sqlite") as store:
        _put(store, suite, "f", PESQ, {u: 2.0 for u in ids}, display='=HYPERLINK("http://x","y")')
        summaries = summarize(store, suite, [PESQ])
    text = to_csv(build_leaderboard(suite, summaries, [PESQ], categories={"intrusive": ["pesq"]}))
    assert text.splitlines()[1].startswith('1,"\'=HYPERLINK(""http://x"",""y"")",hf,2,1.0,')


@pytest.fixture()
def scenario_store(tmp_path: Path, demo) -> Path:
    suite, ids = demo
    results = tmp_path / "results"
    with ResultStore(results / "results.sqlite") as store:
        _issue_scenario(store, suite, ids)
    return results


def test_leaderboard_unknown_system_is_a_one_line_error(scenario_store: Path, tmp_path: Path, capsys):
    code = main(["-q", "leaderboard", "--suite", "demo", "--results-dir", str(scenario_store), "--metrics", "pesq",
                 "--systems", "nosuch,full", "--output-dir", str(tmp_path / "lb")])
    assert code == 2
    assert capsys.readouterr().err == (
        f"urgentbench: error: --systems: nothing stored for 'nosuch' on demo v1.0 in "
        f"{scenario_store / 'results.sqlite'}; stored systems: full, partial\n"
    )
    assert not (tmp_path / "lb").exists()


def test_allow_partial_contradicting_missing_unranked_is_refused(scenario_store: Path, tmp_path: Path, capsys):
    code = main(["-q", "leaderboard", "--suite", "demo", "--results-dir", str(scenario_store), "--metrics", "pesq",
                 "--allow-partial", "--missing", "unranked", "--output-dir", str(tmp_path / "lb")])
    assert code == 2
    assert capsys.readouterr().err == (
        "urgentbench: error: --allow-partial ranks systems with missing values (it means --missing worst); "
        "it contradicts --missing unranked\n"
    )


def test_cli_records_the_policy_and_selects_by_name(scenario_store: Path, tmp_path: Path):
    out = tmp_path / "lb"
    args = ["-q", "leaderboard", "--suite", "demo", "--results-dir", str(scenario_store), "--metrics", "pesq,estoi",
            "--output-dir", str(out)]
    assert main(args) == 0
    lb = json.loads((out / "demo" / "leaderboard.json").read_text())
    assert "missing_policy" not in lb and [r["system"] for r in lb["rows"]] == ["full"]
    assert main(args + ["--missing", "worst", "--systems", "partial"]) == 0
    lb = json.loads((out / "demo" / "leaderboard.json").read_text())
    # alone, nobody else has a value for the 12 left-out utterances: nothing to fill from, still never a free pass
    assert lb["missing_policy"] == "worst"
    assert [r["system"] for r in lb["rows"]] == ["partial"] and lb["rows"][0]["filled"] == {}
    assert lb["rows"][0]["participant_failures"] == {"pesq": 12, "estoi": 12}


# --------------------------------------------------------------------------- the issue's reproduction, end to end


@pytest.mark.slow
def test_issue_reproduction_partial_copy_never_ranks_above_the_full_one(tmp_path: Path):
    results, sim = tmp_path / "results", tmp_path / "sim"
    assert main(["-q", "simulate", "--suite", "demo", "--output", str(sim), "--results-dir", str(results)]) == 0
    full, partial = tmp_path / "full", tmp_path / "partial"
    full.mkdir()
    for f in (sim / "noisy").iterdir():
        (full / f.name).write_bytes(f.read_bytes())
    common = ["--suite", "demo", "--metrics", "pesq,estoi", "--results-dir", str(results)]
    assert main(["-q", "score", "--outputs", str(full), "--name", "full", *common]) == 0
    suite = get_suite("demo")
    with ResultStore(results / "results.sqlite") as store:
        producer = next(ProducerSpec(name=i["system"], config_hash=i["config_hash"])
                        for i in store.systems(suite.name, suite.version))
        pesq = {r.utt_id: r.result["pesq"] for r in store.rows(score_key(suite, producer, PESQ))}
    dropped = sorted(pesq, key=pesq.get)[:12]
    partial.mkdir()
    for f in full.iterdir():
        if f.stem not in dropped:
            (partial / f.name).write_bytes(f.read_bytes())
    assert main(["-q", "score", "--outputs", str(partial), "--name", "partial", "--no-strict", *common]) == 0
    out = tmp_path / "lb"
    lb_args = ["-q", "leaderboard", "--output-dir", str(out), *common]
    assert main(lb_args) == 0
    lb = json.loads((out / "demo" / "leaderboard.json").read_text())
    assert [r["system"] for r in lb["rows"]] == ["full"]
    assert lb["rows"][0]["values"]["pesq"] == pytest.approx(1.449, abs=5e-4)
    assert lb["incomplete"][0]["system"] == "partial"
    assert lb["incomplete"][0]["reason"].startswith("12 of 24 outputs missing or unusable (the system's failure), e.g. ")
    assert main(lb_args + ["--missing", "worst"]) == 0
    lb = json.loads((out / "demo" / "leaderboard.json").read_text())
    rows = {r["system"]: r for r in lb["rows"]}
    assert [r["system"] for r in lb["rows"]] == ["full", "partial"]
    assert rows["partial"]["values"] == rows["full"]["values"]
    assert rows["partial"]["overall"] == rows["full"]["overall"]
