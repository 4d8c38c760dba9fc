"""Resume after SIGKILL, the NaN guard, determinism, tf.distribute and mixed precision."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

from conftest import pooled_model_file, tiny_student
from kd_keras.replay import lifecycle, run_files
from kd_keras.errors import NonFiniteLossError

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers

STUDENT_SCRIPT = """
import dataclasses, logging, sys
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")  # the package's progress lines
from kd_keras.replay import experiment, imported_teacher, presets, students
from kd_keras import runtime
runtime.configure(deterministic={deterministic})
preset = dataclasses.replace(presets.get("smoke"), student_epochs={epochs})
exp = experiment.Experiment(preset, "synthetic", sys.argv[1], weights="none", verbose=0, student=sys.argv[3])
students.train_student(exp, "soft", imported_teacher.import_teacher(exp, sys.argv[2]))
"""


def _python(script, runs_dir, **kwargs):
    """A fresh Python process training the smoke preset's soft student. Teacher and student are small model
    files (the teacher imported, not trained): what these tests are about is the run's machinery, which
    is the same for any network."""
    code = textwrap.dedent(STUDENT_SCRIPT).format(**kwargs) if script is None else script
    folder = os.path.dirname(str(runs_dir))
    teacher, student = os.path.join(folder, "teacher.keras"), os.path.join(folder, "student.keras")
    if not os.path.exists(teacher):
        pooled_model_file(teacher)
        tiny_student((32, 32, 3)).save(student)
    return [sys.executable, "-c", code, str(runs_dir), teacher, student]


def _student_dir(runs_dir):
    return os.path.join(runs_dir, "synthetic-smoke", "seed0", "student-soft")


EPOCHS = 30  # the small student's epochs are short: enough of them that the kill lands mid-training


def test_sigkill_then_same_command_resumes_and_completes(tmp_path):
    command = _python(None, tmp_path, deterministic=False, epochs=EPOCHS)
    history = os.path.join(_student_dir(tmp_path), "history.csv")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while len(run_files.read_history(history)) < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(run_files.read_history(history))
    assert 2 <= done_before < EPOCHS, "the kill should land mid-training"
    assert not run_files.is_complete(_student_dir(tmp_path))

    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "resuming" in finished.stdout
    rows = run_files.read_history(history)
    assert [int(r["epoch"]) for r in rows] == list(range(1, EPOCHS + 1))
    for name in ("config.json", "split.json", "model.keras", "predictions.npz", "metrics.json"):
        assert os.path.exists(os.path.join(_student_dir(tmp_path), name)), name
    assert not os.path.exists(os.path.join(_student_dir(tmp_path), "checkpoint"))
    assert json.load(open(os.path.join(_student_dir(tmp_path), "metrics.json")))["best"]["epochs"] == EPOCHS


def test_two_identical_teacher_commands_at_once_one_trains_and_the_other_is_told(tmp_path):
    # Before the run lock, both wrote model.tmp.keras and left a model.keras no rerun could open.
    kd_keras = os.path.join(os.path.dirname(sys.executable), "kd-keras")
    command = [kd_keras, "teacher", "--preset", "smoke", "--weights", "none", "--runs-dir", str(tmp_path),
               "--quiet"]
    twins = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    results = sorted((p.wait(timeout=300), p.stderr.read()) for p in twins)
    assert [code for code, _ in results] == [0, 2], results
    refused = results[1][1].strip().splitlines()
    assert len(refused) == 1 and refused[0].startswith("error: ") and "is in use by PID" in refused[0]
    assert "PID ?" not in refused[0]  # the holder's PID, read even when both started together
    run = os.path.join(tmp_path, "synthetic-smoke", "seed0", "teacher")
    assert run_files.is_complete(run) and keras.models.load_model(os.path.join(run, "model.keras")) is not None
    third = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and third.stdout.strip().endswith("teacher"), third.stderr[-2000:]
    assert not [f for f in os.listdir(run) if ".tmp" in f]  # no temporary model left behind


def test_deterministic_runs_give_identical_metrics(tmp_path):
    results = []
    for attempt in ("a", "b"):
        command = _python(None, tmp_path / attempt, deterministic=True, epochs=1)
        finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert finished.returncode == 0, finished.stderr[-2000:]
        metrics = json.load(open(os.path.join(_student_dir(tmp_path / attempt), "metrics.json")))
        metrics.pop("seconds")
        metrics.pop("parent")
        results.append(metrics)
    assert results[0] == results[1]


class _PoisonWeights(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            self.model.layers[-1].kernel.assign(np.full(self.model.layers[-1].kernel.shape, np.nan))


def test_nan_loss_stops_naming_the_epoch_and_keeps_the_last_good_model(tmp_path, monkeypatch):
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    fit = model.fit
    monkeypatch.setattr(model, "fit", lambda *a, callbacks=(), **k: fit(*a, callbacks=[_PoisonWeights(), *callbacks], **k))
    with pytest.raises(NonFiniteLossError, match="epoch 3"):
        lifecycle.fit_resumable(model, _batches(x, y), _batches(x, y), 5, str(tmp_path), model.save, verbose=0)
    kept = keras.models.load_model(tmp_path / "model.keras")
    assert all(np.all(np.isfinite(w)) for w in kept.get_weights())
    assert [int(r["epoch"]) for r in run_files.read_history(tmp_path / "history.csv")] == [1, 2]


def _batches(x, y):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


STRATEGY_SCRIPT = """
import sys
import numpy as np, tensorflow as tf
if sys.argv[1] == "mirrored":  # two logical CPU devices stand in for two GPUs
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from kd_keras import losses, models, runtime
from kd_keras.distill import Distiller
strategy = runtime.configure(strategy=sys.argv[1])
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
from kd_keras.input_pipeline import ArrayBatches, preprocessing
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (32, 32, 32, 3)).astype("uint8")
y = rng.integers(0, 2, 32).astype("float32")
# kd_keras's own feed: uint8 batches, the augmentation inside the Distiller's step
train = ArrayBatches(x, {"label": y, "teacher": rng.uniform(size=32).astype("float32")}, 8, shuffle=True)
valid = ArrayBatches(x[:16], y[:16], 8)
features = ArrayBatches(rng.normal(size=(32, 16)).astype("float32"), rng.integers(0, 3, 32), 8, shuffle=True)
with strategy.scope():
    student = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3, strides=2),
                                keras.layers.BatchNormalization(), keras.layers.ReLU(),
                                keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1, activation="sigmoid")])
    distiller = Distiller(student, mode="soft", preprocessing=preprocessing(flip=True, shift=0.4, seed=1))
    distiller.compile(keras.optimizers.Adam(1e-3))
    head = keras.Sequential([keras.Input((16,)), models.cosine_head(3)])
    head.compile("adam", losses.AMSoftmax())
h = distiller.fit(train, validation_data=valid, epochs=2, verbose=0)
assert np.isfinite(h.history["loss"]).all() and np.isfinite(h.history["val_loss"]).all(), h.history
assert np.isfinite(head.fit(features, epochs=1, verbose=0).history["loss"]).all()
print(sys.argv[1], "ok", strategy.num_replicas_in_sync)
print("weights", float(sum(np.abs(w.numpy()).sum() for w in distiller.student.trainable_weights)))
"""


def _strategy_worker(strategy, env=None):
    return subprocess.Popen([sys.executable, "-c", STRATEGY_SCRIPT, strategy], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finished_ok(worker, strategy):
    out, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err[-3000:]
    assert f"{strategy} ok 2" in out
    return out


def test_mirrored_strategy_on_two_logical_cpus_trains_distiller_and_custom_loss():
    _finished_ok(_strategy_worker("mirrored"), "mirrored")


def _free_ports(n):
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multiworker_strategy_trains_distiller_and_custom_loss_with_two_worker_processes():
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    workers = [_strategy_worker("multiworker", dict(os.environ, TF_CONFIG=json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": index}}))) for index in range(2)]
    outputs = [_finished_ok(worker, "multiworker") for worker in workers]
    # synchronous data-parallel training: both workers end with the same trainable weights
    checksums = [out.split("weights ")[1].strip() for out in outputs]
    assert checksums[0] == checksums[1]


def test_mixed_precision_runs_networks_in_bfloat16_with_float32_outputs_and_losses():
    from kd_keras import losses, models, runtime
    from kd_keras.distill import Distiller

    try:
        runtime.configure(mixed_precision="bfloat16")
        resnet = models.resnet18((32, 32, 3))
        assert resnet.get_layer("conv1_conv").compute_dtype == "bfloat16"
        x = np.random.default_rng(0).uniform(size=(8, 32, 32, 3)).astype("float32")
        assert resnet(x).dtype == "float32"
        student = tiny_student()  # convolution and batch norm in bfloat16 too; faster to trace than ResNet-18
        assert student.layers[1].compute_dtype == "bfloat16" and student(x).dtype == "float32"
        distiller = Distiller(student, mode="soft")
        distiller.compile(keras.optimizers.Adam(1e-3))
        history = distiller.fit(x, {"label": np.ones(8), "teacher": np.full(8, 0.7)}, batch_size=4, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert losses.AMSoftmax()(np.array([0, 1]), np.array([[0.1, 0.2], [0.3, 0.1]], "float16")).dtype == "float32"
    finally:
        runtime.configure()


def test_configure_hides_only_tensorflows_retracing_warnings():
    import logging

    import tensorflow as tf

    from kd_keras import runtime

    runtime.configure()
    runtime.configure()  # idempotent: one filter
    logger = tf.get_logger()

    def record(message):
        return logging.LogRecord("tensorflow", logging.WARNING, __file__, 1, message, None, None)

    assert not logger.filter(record("5 out of the last 12 calls to <f> triggered tf.function retracing. ..."))
    assert logger.filter(record("some other TensorFlow warning"))
    assert sum(isinstance(f, runtime._RetracingFilter) for f in logger.filters) == 1


def _recorded_pipeline(seen, seed):
    """The students' shuffled batches over 48 images that carry their index; each batch served is logged."""
    from kd_keras import input_pipeline

    class Recorded(input_pipeline.ArrayBatches):
        def __getitem__(self, index):
            x, y = super().__getitem__(index)
            seen.setdefault(self.epoch, {})[index] = tuple(int(v) for v in x[:, 0, 0, 0])
            return x / 255.0, y

    x = np.repeat(np.arange(48, dtype="uint8"), 8 * 8 * 3).reshape(48, 8, 8, 3)
    y = (np.arange(48) % 2).astype("float32")
    return Recorded(x, y, 8, shuffle=True, seed=seed)


def test_a_resumed_run_does_not_replay_the_batches_it_trained_on(tmp_path):
    # Before: a seeded pipeline built anew in the resuming process started its shuffle and
    # augmentation over, so the epoch after a resume replayed epoch 1's exact batches (and the
    # cpu preset's students memorised the repeats: train accuracy 0.95, valid at chance).
    from conftest import tiny_student

    def run(run_dir, seen, deadline=None):
        keras.utils.set_random_seed(0)
        model = tiny_student((8, 8, 3))
        model.compile("adam", "binary_crossentropy")
        train = lambda done: _recorded_pipeline(seen, lifecycle.resumed_seed(3, done))  # noqa: E731
        return lifecycle.fit_resumable(model, train, None, 3, str(run_dir), model.save, verbose=0, deadline=deadline)

    logs = [{}, {}, {}]
    run(tmp_path / "a", logs[0])
    with pytest.raises(lifecycle.DeadlineReached, match="after epoch 1"):
        run(tmp_path / "b", logs[1], deadline=time.time())  # stops after epoch 1, as if killed there
    run(tmp_path / "b", logs[2])
    # The epochs trained: Keras also fetches a batch or two to build the model before epoch 1.
    uninterrupted, first, resumed = ([batch for epoch in sorted(log) if len(log[epoch]) == 6
                                      for _, batch in sorted(log[epoch].items())] for log in logs)
    assert len(uninterrupted) == 18 and len(first) == 6 and len(resumed) == 12  # 6 batches an epoch
    assert first == uninterrupted[:6]  # resumed_seed(seed, 0) is the seed: a fresh run is unchanged
    epochs = [first, resumed[:6], resumed[6:]]
    assert all(sorted(sum(e, ())) == list(range(48)) for e in epochs)  # each epoch sees every image once
    assert epochs[1] != epochs[0] and epochs[2] != epochs[0] and epochs[1] != epochs[2]
    rows = run_files.read_history(tmp_path / "b" / "history.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert not os.path.exists(tmp_path / "b" / "checkpoint")  # removed once complete


def test_resumed_seed_is_the_seed_for_a_fresh_run_and_new_for_each_resume_point():
    assert lifecycle.resumed_seed(7, 0) == 7
    seeds = {lifecycle.resumed_seed(7, k) for k in range(1, 50)} | {lifecycle.resumed_seed(8, k) for k in range(1, 50)}
    assert len(seeds) == 98 and 7 not in seeds and 8 not in seeds
    assert lifecycle.resumed_seed(7, 3) == lifecycle.resumed_seed(7, 3)


def test_a_resume_restores_the_weights_and_the_optimizer_state(tmp_path, monkeypatch):
    from conftest import tiny_student

    restored = {}
    original = keras.callbacks.BackupAndRestore.on_train_begin

    def on_train_begin(self, logs=None):  # what the model holds once Keras has restored its state
        original(self, logs)
        restored["weights"] = [np.array(v) for v in self.model.trainable_variables]
        restored["iterations"] = int(self.model.optimizer.iterations)
        restored["moments"] = [np.array(v) for v in self.model.optimizer.variables
                               if "momentum" in v.path or "velocity" in v.path]

    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "on_train_begin", on_train_begin)

    def attempt(init_seed):
        keras.utils.set_random_seed(init_seed)  # a different initialisation in each attempt
        model = tiny_student((8, 8, 3))
        model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy", metrics=["accuracy"])
        train = lambda done: _recorded_pipeline({}, lifecycle.resumed_seed(3, done))  # noqa: E731
        with pytest.raises(lifecycle.DeadlineReached):
            lifecycle.fit_resumable(model, train, _recorded_pipeline({}, 5), 3, str(tmp_path), model.save, verbose=0,
                               deadline=time.time())
        return model

    first = attempt(0)
    assert restored["iterations"] == 0 and not any(np.any(m) for m in restored["moments"])  # a fresh start
    stopped = ([np.array(v) for v in first.trainable_variables], int(first.optimizer.iterations),
               [np.array(v) for v in first.optimizer.variables if "momentum" in v.path or "velocity" in v.path])
    assert stopped[1] == 6  # 48 images in batches of 8
    attempt(1)
    # The resumed attempt starts from epoch 1's weights (not its own new initialisation), its step
    # counter at 6 and Adam's moment estimates as they were.
    for a, b in zip(stopped[0], restored["weights"]):
        np.testing.assert_array_equal(a, b)
    assert restored["iterations"] == 6
    assert len(stopped[2]) == len(restored["moments"]) > 0
    for a, b in zip(stopped[2], restored["moments"]):
        np.testing.assert_array_equal(a, b)
    assert [int(r["epoch"]) for r in run_files.read_history(tmp_path / "history.csv")] == [1, 2]


def test_native_stderr_is_silenced_inside_the_block_and_restored_after_it(tmp_path):
    # In a child process whose fd 2 is a file: native writes inside the block vanish, after it they land,
    # also when the block raises.
    script = textwrap.dedent("""
        import os
        from kd_keras import quiet
        os.write(2, b"before\\n")
        with quiet.native_stderr_silenced():
            os.write(2, b"inside\\n")
        try:
            with quiet.native_stderr_silenced():
                os.write(2, b"inside again\\n")
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        os.write(2, b"after\\n")
    """)
    with open(tmp_path / "err", "wb") as err:
        subprocess.run([sys.executable, "-c", script], stderr=err, check=True, timeout=60)
    assert (tmp_path / "err").read_bytes() == b"before\nafter\n"


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute and TensorFlow op determinism")
def test_strategy_and_deterministic_reach_the_experiment_through_the_cli(tmp_path):
    # A child process: op determinism stays on for the rest of the process that enables it.
    script = textwrap.dedent("""
        import sys
        from tensorflow.python.framework import config
        from kd_keras import cli
        from kd_keras.replay import teacher

        def train_teacher(exp):
            print(type(exp.strategy).__name__, config.is_op_determinism_enabled())
            return "no run"

        teacher.train_teacher = train_teacher
        cli.main(["teacher", "--preset", "smoke", "--weights", "none", "--strategy", "mirrored",
                  "--deterministic", "--runs-dir", sys.argv[1]])
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0] == "MirroredStrategy True"
