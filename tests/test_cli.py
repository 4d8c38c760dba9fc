"""Every bad input ends in one line ``error: ...`` and exit code 2, without a traceback."""

import json
import os

import pytest
from PIL import Image

from conftest import run_cli
from kd_keras import cli

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers


def _folder(root, classes, per_class=2):
    for c in classes:
        os.makedirs(root / c, exist_ok=True)
        for i in range(per_class):
            Image.new("RGB", (12, 12), (i * 40, 90, 30)).save(root / c / f"{i}.jpg")
    return root


@pytest.fixture
def folders(tmp_path):
    (tmp_path / "empty").mkdir()
    _folder(tmp_path / "one", ["cats"])
    _folder(tmp_path / "ok", ["cats", "dogs"], per_class=10)
    _folder(tmp_path / "no-train" / "valid", ["cats", "dogs"])
    _folder(tmp_path / "no-train" / "test", ["cats", "dogs"])
    _folder(tmp_path / "lopsided", ["cats"], per_class=10)
    _folder(tmp_path / "lopsided", ["dogs"], per_class=1)
    for c in ("cats", "dogs"):  # image names, no images in them
        os.makedirs(tmp_path / "garbage" / c)
        for i in range(10):
            (tmp_path / "garbage" / c / f"{i}.jpg").write_bytes(b"not a jpeg " * i)
    return tmp_path


BAD = {
    "unknown loss": ["losses", "--data-dir", "{ok}", "--loss", "hinge2", "--runs-dir", "{runs}"],
    "unknown preset": ["teacher", "--preset", "huge", "--data-dir", "{ok}", "--runs-dir", "{runs}"],
    "generations < 1": ["recursive", "--generations", "0", "--runs-dir", "{runs}"],
    "reproduce generations < 1": ["reproduce", "--generations", "-1", "--runs-dir", "{runs}"],
    "batch size < 1": ["teacher", "--batch-size", "0", "--data-dir", "{ok}", "--runs-dir", "{runs}"],
    "missing data folder": ["data", "{tmp}/nope"],
    "empty data folder": ["data", "{empty}"],
    "a class with one image": ["teacher", "--preset", "smoke", "--data-dir", "{lopsided}", "--weights", "none",
                               "--runs-dir", "{runs}"],
    "split folders without train": ["losses", "--preset", "smoke", "--data-dir", "{tmp}/no-train", "--weights",
                                    "none", "--runs-dir", "{runs}"],
    "one class": ["teacher", "--preset", "smoke", "--data-dir", "{one}", "--weights", "none", "--runs-dir", "{runs}"],
    "missing teacher run": ["student", "--mode", "hard", "--teacher", "{tmp}/no-run", "--preset", "smoke",
                            "--runs-dir", "{runs}"],
    "missing weights file": ["bench", "--weights", "{tmp}/missing.h5", "--preset", "smoke", "--data-dir", "{ok}",
                             "--runs-dir", "{runs}"],
    "unknown option": ["teacher", "--colour", "red"],
    "bad mode": ["student", "--mode", "medium"],
    "bad synthetic spec": ["data", "synthetic:x"],
    "images < 1": ["bench", "--images", "0"],
    "no readable image": ["teacher", "--preset", "smoke", "--data-dir", "{garbage}", "--weights", "none",
                          "--runs-dir", "{runs}", "--quiet"],
    "stop-after nan": ["teacher", "--stop-after", "nan", "--data-dir", "{ok}", "--runs-dir", "{runs}"],
    "budget-minutes nan": ["recursive", "--budget-minutes", "nan", "--data-dir", "{ok}", "--runs-dir", "{runs}"],
    "budget-minutes 0": ["reproduce", "--budget-minutes", "0", "--data-dir", "{ok}", "--runs-dir", "{runs}"],
    "set an unknown field": ["teacher", "--set", "colour=red", "--data-dir", "{ok}", "--runs-dir", "{runs}"],
    "set a value of the wrong type": ["losses", "--data-dir", "{ok}", "--set", "loss_epochs=many", "--runs-dir",
                                      "{runs}"],
    "stop-after inf": ["teacher", "--stop-after", "inf", "--data-dir", "{ok}", "--runs-dir", "{runs}"],
    "max-mib nan": ["pack", "{ok}", "--image-size", "16", "--max-mib", "nan", "--out", "{tmp}/packed",
                    "--runs-dir", "{runs}"],
    "pack image size 16384": ["pack", "{ok}", "--image-size", "16384", "--max-mib", "1", "--out", "{tmp}/packed",
                              "--runs-dir", "{runs}"],
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_error_line_and_exit_2(case, folders, capsys):
    names = {"tmp": folders, "ok": folders / "ok", "one": folders / "one", "empty": folders / "empty",
             "garbage": folders / "garbage", "runs": folders / "runs", "lopsided": folders / "lopsided"}
    before = _tree(folders, skip="runs")
    code, out, err = run_cli(capsys, *[a.format(**names) for a in BAD[case]])
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in err, err
    if case == "missing weights file":
        assert "weights file not found" in lines[-1]
    if case == "a class with one image":
        assert "class 'dogs' of lopsided has 1 image: too few" in lines[-1]
    assert _tree(folders, skip="runs") == before  # nothing written into (or removed from) the datasets


def _tree(root, skip):
    """Every file under ``root`` (except ``root/skip``) with its size and modification time."""
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) != os.path.join(root, skip)]
        for name in files + dirs:
            path = os.path.join(folder, name)
            found[path] = (os.path.getsize(path) if name in files else None, os.stat(path).st_mtime_ns)
    return found


def test_stop_after_past_its_deadline_exits_3_and_names_the_resume(folders, capsys):
    code, out, err = run_cli(capsys, "teacher", "--preset", "smoke", "--weights", "none", "--data-dir",
                          str(folders / "ok"), "--runs-dir", str(folders / "runs"), "--stop-after", "0.00001")
    assert code == 3 and len(err.strip().splitlines()) == 1 and err.startswith("stopped: "), err
    run = folders / "runs" / "ok-smoke" / "seed0" / "teacher"
    # Stopped before the run, or at the end of its first epoch (if the deadline had not passed yet).
    from kd_keras.replay import run_files

    assert len(run_files.read_history(run / "history.csv")) <= 1 and not run_files.is_complete(str(run))


def test_incomplete_teacher_run_is_an_error(folders, capsys):
    run = folders / "runs" / "teacher"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    code, _, err = run_cli(capsys, "student", "--mode", "soft", "--teacher", str(run), "--preset", "smoke",
                        "--data-dir", str(folders / "ok"), "--runs-dir", str(folders / "runs"))
    assert code == 2 and "incomplete" in err


def test_data_json_counts_and_skips(folders, capsys):
    (folders / "ok" / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    code, out, _ = run_cli(capsys, "data", str(folders / "ok"), "--json")
    assert code == 0
    report = json.loads(out.strip().splitlines()[-1])
    assert report["splits"] == {"all": {"cats": 10, "dogs": 10}}
    assert len(report["skipped"]) == 1 and report["skipped"][0].startswith(str(folders / "ok" / "dogs" / "broken.jpg"))


def test_seeds_list_expands_to_repeated_seed_options():
    assert cli.expand_seeds(["reproduce", "--seeds", "0", "1", "2", "--preset", "cpu"]) == [
        "reproduce", "--seed", "0", "--seed", "1", "--seed", "2", "--preset", "cpu"]


def test_bench_json_ends_with_latencies_and_their_ratio(folders, capsys):
    code, out, _ = run_cli(capsys, "bench", "--json", "--weights", "none", "--preset", "smoke", "--images", "2",
                        "--data-dir", str(folders / "ok"), "--runs-dir", str(folders / "runs"), "--quiet")
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["device"] == "CPU" and result["cpu_model"] and "cpu_threads" in result
    assert result["teacher_efficientnet-lite0_ms"] > 0  # the smoke teacher's own backbone, beside the paper's pair
    assert result["teacher_ms"] > 0 and result["student_ms"] > 0
    assert result["speedup"] == pytest.approx(result["teacher_ms"] / result["student_ms"])
    assert result["images"] == 2


def test_input_errors_are_answered_before_tensorflow_loads(tmp_path):
    import subprocess
    import sys

    script = ("import sys; from kd_keras import cli\n"
              "for args in (['data', '/no/such'], ['reproduce', '--preset', 'nope'], ['losses', '--data-dir', 'x',"
              " '--loss', 'nope'], ['teacher', '--data-dir', '/no/such'], ['bench', '--threads', '0']):\n"
              "    try:\n        cli.main(args)\n    except SystemExit as exit:\n        assert exit.code == 2\n"
              "print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 5 and all(line.startswith("error: ") for line in lines), lines


@pytest.mark.parametrize("error", [OSError(28, "No space left on device", "runs/x/model.keras"),
                                   OSError("Unable to create file (file write failed: errno = 28)"),
                                   PermissionError(13, "Permission denied", "/readonly/runs")])
def test_a_full_or_forbidden_disk_is_one_error_line(error, capsys, monkeypatch):
    from kd_keras.cli import commands

    def report(**_):
        raise error

    monkeypatch.setattr(commands.report_command, "callback", report)
    code, _, err = run_cli(capsys, "report", "--runs-dir", "runs")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "run the same command" in err


def test_other_os_errors_are_not_hidden(capsys, monkeypatch):
    from kd_keras.cli import commands

    def report(**_):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(commands.report_command, "callback", report)
    with pytest.raises(OSError):
        cli.main(["report"])


def test_set_changes_any_preset_field_for_one_command(monkeypatch, capsys, tmp_path):
    from kd_keras.replay import teacher

    seen = []
    monkeypatch.setattr(teacher, "train_teacher", lambda exp: seen.append(exp) or "no run")
    code, out, err = run_cli(capsys, "teacher", "--preset", "smoke", "--set", "teacher_epochs=1", "--set",
                             "train_per_class=none", "--set", "teacher_lr=3e-4", "--batch-size", "8", "--seed", "4",
                             "--weights", "none", "--runs-dir", tmp_path)
    assert code == 0, err
    preset = seen[0].preset
    assert (preset.name, preset.teacher_epochs, preset.train_per_class, preset.teacher_lr, preset.batch_size) == (
        "smoke", 1, None, 3e-4, 8)
    assert seen[0].seed == 4 and seen[0].runs_dir == str(tmp_path)


def test_python_dash_m_runs_the_command(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "kd_keras.cli", "data", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == f"error: data folder not found: {tmp_path / 'nowhere'}"
