"""The report's run record: per seed, the code and machine that made it and the minutes its runs took."""

import json
import os

from kd_keras import report
from kd_keras.report.run_record import run_record_table


def _run(seed_dir, name, seconds=None, commit="ab" * 20, dirty=False, **metrics):
    os.makedirs(os.path.join(seed_dir, name))
    with open(os.path.join(seed_dir, name, "config.json"), "w") as f:
        json.dump({"code": {"git_commit": commit, "git_dirty": dirty}}, f)
    with open(os.path.join(seed_dir, name, "metrics.json"), "w") as f:
        json.dump({**({"seconds": seconds} if seconds is not None else {}), **metrics}, f)


def test_each_seed_names_its_commits_its_machine_and_its_runs_minutes(tmp_path):
    group = tmp_path / "cats_vs_dogs-cpu"
    first, second = str(group / "seed0"), str(group / "seed1")
    _run(first, "teacher", 90.0)
    for k, seconds in enumerate([170.0, 180.0, 200.0]):
        _run(first, f"student-{('classic', 'hard', 'soft')[k]}", seconds)
    _run(first, "timing", cpu_model="Some CPU", cpu_threads=2)
    _run(second, "teacher", 30.0, commit="cd" * 20)
    _run(second, "student-soft", 600.0, commit="ef" * 20, dirty=True)  # resumed by another commit
    seeds = report.kd_groups(str(tmp_path))["cats_vs_dogs-cpu"]

    rows = {row[0]: row for row in run_record_table(seeds, "").rows}

    assert rows["seed0"] == ["seed0", "abababa", "Some CPU, 2 threads", "1.5", "3",
                             f"{(170 + 180 + 200) / 60:.1f}", f"{(170 + 180 + 200) / 3 / 60:.1f}"]
    assert rows["seed1"][1] == "efefefe +dirty, cdcdcdc"  # every commit that made a run, in run-name order
    assert rows["seed1"][2] == "not recorded" and rows["seed1"][3:] == ["0.5", "1", "10.0", "10.0"]
