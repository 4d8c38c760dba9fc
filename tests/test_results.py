"""results/ is re-derived from the committed run archive, and the README's numbers come from it."""

import filecmp
import glob
import json
import os
import re

import pytest

from kd_keras import report

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)
RESULTS = os.path.join(ROOT, "results")
ARCHIVE = os.path.join(RESULTS, "runs")
README = os.path.join(ROOT, "README.md")


def _tables(folder):
    """Every .md and .csv under ``folder``, relative to it, the archive left out."""
    found = glob.glob(os.path.join(folder, "**", "*.md"), recursive=True) + glob.glob(
        os.path.join(folder, "**", "*.csv"), recursive=True)
    return sorted(os.path.relpath(p, folder) for p in found if not os.path.relpath(p, folder).startswith("runs"))


def _results_text():
    return "\n".join(open(os.path.join(RESULTS, t), encoding="utf-8").read() for t in _tables(RESULTS))


def test_the_report_from_the_archive_rewrites_results_byte_for_byte(tmp_path):
    assert os.path.isdir(ARCHIVE), "results/runs, the run archive, is missing"
    report.write_report(ARCHIVE, str(tmp_path / "results"), None, log=lambda *_: None)  # tables only
    committed, rebuilt = _tables(RESULTS), _tables(str(tmp_path / "results"))
    assert committed == rebuilt
    for table in committed:
        assert filecmp.cmp(os.path.join(RESULTS, table), os.path.join(tmp_path, "results", table), shallow=False), table


def test_every_archived_run_names_the_code_that_made_it():
    configs = glob.glob(os.path.join(ARCHIVE, "**", "config.json"), recursive=True)
    assert configs
    for path in configs:
        code = json.load(open(path))["code"]
        assert re.fullmatch(r"[0-9a-f]{40}", code["git_commit"] or ""), path
        assert isinstance(code["git_dirty"], bool) and code["kd_keras"] and code["keras"], path


def test_archiving_the_archive_again_changes_no_byte(tmp_path):
    from kd_keras.replay import archive

    copied = archive.archive_runs(ARCHIVE, str(tmp_path / "again"), log=lambda *_: None)
    assert len(copied) >= 100
    for run in copied:
        names = sorted(os.listdir(os.path.join(ARCHIVE, run)))
        assert names == sorted(os.listdir(tmp_path / "again" / run)), run
        for name in names:
            assert filecmp.cmp(os.path.join(ARCHIVE, run, name), tmp_path / "again" / run / name, shallow=False), name


def test_archive_files_are_small_and_hold_no_model():
    for path in glob.glob(os.path.join(ARCHIVE, "*", "**", "*"), recursive=True):  # its README.md aside
        if os.path.isfile(path):
            assert os.path.getsize(path) <= 5 * 1024 * 1024, path
            assert os.path.basename(path) in ("config.json", "split.json.gz", "history.csv", "metrics.json",
                                              "predictions.npz"), path


def test_paper_b_has_at_least_six_claims_each_over_three_seeds():
    import pandas as pd

    claims = pd.read_csv(os.path.join(RESULTS, "claims.csv"), dtype=str)
    paper_b = claims[claims["claim"].str.startswith("B (")]
    seeds = paper_b["replicates"].str.extract(r"^(\d+) seeds$")[0].dropna().astype(int)
    assert (seeds >= 3).sum() >= 6, paper_b[["claim", "replicates"]]


def _readme_section(title):
    text = open(README, encoding="utf-8").read()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start: end if end > 0 else len(text)]


def test_the_readmes_summary_table_is_results_summary():
    rows = [line for line in open(os.path.join(RESULTS, "summary.md"), encoding="utf-8") if line.startswith("| ")]
    section = _readme_section("Results")
    assert len(rows) > 3 and all(row in section for row in rows)


def test_every_number_the_readme_states_about_results_is_in_results():
    section = _readme_section("Results")
    section = re.sub(r"```.*?```", "", section, flags=re.S)  # commands, not results
    section = re.sub(r"\]\([^)]*\)", "]", section)  # link targets
    results = _results_text()
    missing = sorted({n for n in re.findall(r"\d+\.\d+", section) if n not in results})
    assert not missing, f"numbers in the README's Results that no table in results/ holds: {missing}"


@pytest.mark.parametrize("stale", ["3.3 points", "within a few points", "3-5x slower", "reduces to the paper's at K = 2",
                                   "have not been run", "has not been run"])
def test_stale_sentences_stay_out_of_the_readme(stale):
    assert stale not in open(README, encoding="utf-8").read()
