"""What must work on every Keras backend: the pack round trip and the replay, run by CI on
TensorFlow and, in an environment without TensorFlow, on JAX (``make test-jax``)."""

import json
import os
import tarfile

import keras
import numpy as np
import pytest

from conftest import pooled_model_file, tiny_student
from kd_keras import cli, data, input_pipeline, pack, sources
from kd_keras.errors import UserError
from kd_keras.files import sha256_of


def _listing(folder):
    return sorted((os.path.relpath(os.path.join(d, f), folder), os.path.getsize(os.path.join(d, f)))
                  for d, _, files in os.walk(folder) for f in files)


def _data_json(capsys, source, runs_dir):
    cli.main(["data", source, "--json", "--runs-dir", runs_dir])
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_pack_reads_like_its_folder_in_shards_under_the_cap(tmp_path, capsys):
    runs_dir = str(tmp_path / "runs")
    source = sources.resolve_source("synthetic:3:12", os.path.join(runs_dir, ".cache"))
    renamed = tmp_path / "three classes"
    os.rename(source, renamed)
    os.rename(renamed / "train" / "synthetic_0", renamed / "train" / "class a")  # a space in a class name
    for split in ("valid", "test"):
        os.rename(renamed / split / "synthetic_0", renamed / split / "class a")
    before = _listing(renamed)
    out = tmp_path / "packed"
    cap = 0.02  # MiB
    cli.main(["pack", str(renamed), "--image-size", "24", "--max-mib", str(cap), "--out", str(out),
              "--runs-dir", runs_dir])
    manifest = json.loads((out / "pack.json").read_text())
    assert len(manifest["shards"]) > 1
    for shard in manifest["shards"]:
        assert os.path.getsize(out / shard["file"]) == shard["bytes"] <= cap * 2**20
    original = _data_json(capsys, str(renamed), runs_dir)
    packed = _data_json(capsys, str(out), runs_dir)
    assert packed["splits"] == original["splits"] and sum(original["splits"]["train"].values()) > 0
    assert set(original["splits"]["train"]) == {"class a", "synthetic_1", "synthetic_2"}
    assert _listing(renamed) == before  # nothing written into the dataset
    pack_listing = _listing(out)
    folder = sources.resolve_source(str(out), os.path.join(runs_dir, ".cache"))
    assert _listing(out) == pack_listing and os.path.basename(folder) == "three classes"
    # Each image is the pipeline's nearest-neighbour resize of its source, through a lossy encoder
    # (WebP smooths the synthetic noise): like its source, unlike its mirror image.
    item = sorted(data.scan(renamed).splits["train"])[0]
    twin = os.path.join(folder, "train", "class a", os.path.splitext(os.path.basename(item[0]))[0] + ".webp")
    a, b = input_pipeline.decode_file(item[0], 24).astype(float), input_pipeline.decode_file(twin, 24).astype(float)
    assert a.shape == b.shape == (24, 24, 3)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.6 > np.corrcoef(a[:, ::-1].ravel(), b.ravel())[0, 1] + 0.3


def test_a_damaged_or_foreign_pack_is_refused(tmp_path):
    out = tmp_path / "packed"
    manifest = pack.pack(sources.resolve_source("synthetic:2:7", str(tmp_path / "cache")), str(out), 16, 1.0,
                         log=lambda *_: None)
    shard = out / manifest["shards"][0]["file"]
    raw = bytearray(shard.read_bytes())
    raw[700] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="not the shard"):
        pack.unpack(str(out), str(tmp_path / "cache2"))
    shard.unlink()
    with pytest.raises(UserError, match="missing"):
        pack.unpack(str(out), str(tmp_path / "cache2"))
    evil = tmp_path / "evil"
    evil.mkdir()
    with tarfile.open(evil / "shard-000.tar", "w") as tar:
        info = tarfile.TarInfo("../../escaped.webp")
        tar.addfile(info)
    size = os.path.getsize(evil / "shard-000.tar")
    (evil / "pack.json").write_text(json.dumps({**manifest, "shards": [
        {"file": "shard-000.tar", "bytes": size, "sha256": sha256_of(evil / "shard-000.tar"), "images": 1}]}))
    with pytest.raises(UserError, match="never does"):
        pack.unpack(str(evil), str(tmp_path / "cache3"))
    assert not (tmp_path / "escaped.webp").exists()
    with pytest.raises(UserError, match="not an empty folder"):
        pack.pack(sources.resolve_source("synthetic:2:7", str(tmp_path / "cache")), str(out), 16, 1.0)


@pytest.mark.skipif(keras.backend.backend() == "tensorflow",
                    reason="test_pipeline.py replays the smoke preset on TensorFlow")
def test_smoke_replay_with_two_generations_and_its_report(tmp_path):
    # Small networks as the teacher (imported) and the students: the replay's machinery on this backend is
    # the subject; ResNet-18 trains on it in test_distill.py and kd_keras.distill's example, and the timing
    # run below still builds the paper's pair.
    teacher, student = pooled_model_file(tmp_path / "teacher.keras"), str(tmp_path / "student.keras")
    tiny_student((32, 32, 3)).save(student)
    runs_dir = str(tmp_path / "runs")
    cli.main(["reproduce", "--preset", "smoke", "--weights", "none", "--generations", "2", "--teacher-model", teacher,
              "--student", student, "--runs-dir", runs_dir, "--quiet"])  # the CLI as a user runs it, on this backend
    group = os.path.join(runs_dir, "synthetic-smoke", "seed0")
    names = ["teacher", "student-classic", "student-hard", "student-soft",
             "hard-chain-1", "hard-chain-2", "soft-chain-1", "soft-chain-2"]
    for name in names:
        config = json.load(open(os.path.join(group, name, "config.json")))
        assert config["backend"] == keras.backend.backend()
        metrics = json.load(open(os.path.join(group, name, "metrics.json")))
        assert 0.0 <= metrics["eval"]["test"]["accuracy"] <= 1.0
        assert name == "teacher" or len(metrics["test_augmented"]["draws"]) == 2  # an imported teacher has none
    assert json.load(open(os.path.join(group, "soft-chain-2", "config.json")))["parent"].endswith("soft-chain-1")
    child = np.load(os.path.join(group, "soft-chain-2", "predictions.npz"))
    assert child["test"].shape == child["label_test"].shape
    assert json.load(open(os.path.join(group, "timing", "metrics.json")))["backend"] == keras.backend.backend()
    table = open(os.path.join(runs_dir, "results", "synthetic-smoke", "chains.csv")).read()
    assert table.count("\n") >= 3
