"""Paper B's experiments: the teacher, the three students and the recursive chains.

Each function trains one model into one run folder and returns that folder. A finished
run (one with ``metrics.json``) is reused; an interrupted one resumes from its last
completed epoch. Children (students, generations) reuse their parent's split.
"""

import dataclasses
import hashlib
import os
import shutil
import time

import keras
import numpy as np

from kd_keras import data, input_pipeline, metrics, models, sources, user_models
from kd_keras.replay import layout, lifecycle, run_files
from kd_keras.distill import Distiller
from kd_keras.errors import UserError
from kd_keras.schedules import legacy_decay


@dataclasses.dataclass
class Experiment:
    """Where data come from, where runs go, and how to train.

    Attributes:
        preset: a :class:`kd_keras.presets.Preset`.
        data_dir: a ``--data-dir`` value (a folder, ``synthetic``, ``tfds:cats_vs_dogs``).
        runs_dir: the root of all run folders.
        seed: the seed of the split; each run derives its own seed from it (:func:`run_seed`).
        weights: the teacher's backbone weights: ``"imagenet"``, ``"none"`` or a path.
        teacher_backbone: the teacher's backbone (:func:`kd_keras.backbones.backbone`);
            None takes the preset's.
        strategy: a ``tf.distribute`` strategy, or None for the default device.
        verbose: Keras's progress bar (1), a line per epoch (2) or silence (0).
        student: ``resnet18`` (the paper's), a ``keras.applications`` name or a ``.keras`` file
            (:func:`kd_keras.user_models.student_model`).
        student_size: the students' input size; None takes the preset's (a file keeps its own).
        tensorboard: also write TensorBoard logs into each run folder (needs TensorFlow).
        teacher_model: a user's trained teacher (``.keras``); :func:`teacher_run` then imports
            it instead of training one.
        budget: the students' time budget and the epochs it gave (:mod:`kd_keras.budget`),
            recorded in each student run's ``config.json``; None without ``--budget-minutes``.
    """

    preset: object
    data_dir: str = "synthetic"
    runs_dir: str = "runs"
    seed: int = 0
    weights: str = "imagenet"
    strategy: object = None
    verbose: int = 1
    teacher_backbone: str = None
    deadline: float = None  # a time.time() value: stop at the next epoch's end after it (--stop-after)
    student: str = user_models.DEFAULT_STUDENT
    teacher_model: str = None
    student_size: int = None
    tensorboard: bool = False
    budget: dict = None

    @property
    def backbone(self):
        return models.canonical_name(self.teacher_backbone or self.preset.teacher_backbone)

    @property
    def cache_dir(self):
        return layout.cache_folder(self.runs_dir)

    @property
    def seed_dir(self):
        """This seed's folder: its teacher, students, chains and timing (:mod:`~kd_keras.replay.layout`)."""
        return layout.seed_folder(self.runs_dir, self.data_dir, self.preset.name, self.seed)

    def run_dir(self, name):
        return os.path.join(self.seed_dir, name)

    def scope(self):
        return self.strategy.scope() if self.strategy else _NullScope()

    def log(self, message):
        if self.verbose:
            print(message, flush=True)


class _NullScope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


SPLITS = ("train", "valid", "test")


def prepare_split(exp, run_dir, parent_dir=None):
    """The run's split: the parent's, or the data source scanned, split and subsampled."""
    # Made (synthetic) or unpacked (a pack) once, also where a split made elsewhere is reused:
    # the students of a teacher trained on another machine read the same unpacked images.
    folder = sources.resolve_source(exp.data_dir, exp.cache_dir)
    path = os.path.join(run_dir, "split.json")
    if os.path.exists(path):
        return data.Dataset.load(path)
    if parent_dir is not None:
        dataset = data.Dataset.load(os.path.join(parent_dir, "split.json"))
    else:
        dataset = data.split(data.scan(folder), seed=exp.seed)
        p = exp.preset
        limits = {"train": p.train_per_class, "valid": p.valid_per_class, "test": p.test_per_class}
        dataset = data.subsample(dataset, limits, seed=exp.seed)
        images = load_images(exp, dataset)  # drop unreadable files before saving the split
        dataset.splits = {s: images[s][2] for s in SPLITS}
    dataset.save(path)
    return dataset


def load_images(exp, dataset, size=None):
    """Split -> (uint8 images, labels, kept items) at ``size`` (the preset's), decoded once into the cache."""
    loaded = {}
    for s in SPLITS:
        images, labels, kept, _ = input_pipeline.cached_images(
            dataset.splits[s], size or exp.preset.image_size, exp.cache_dir, label=s, log=exp.log)
        if len(images) == 0:
            raise UserError(f"{exp.data_dir}: none of the {len(dataset.splits[s])} {s} images could be read "
                            "(see the warning above for why)")
        loaded[s] = (images, labels, kept)
    return loaded


def class_count(exp, run_dir):
    """K, from the run's saved split or else from the class folders (scanned, nothing decoded)."""
    path = os.path.join(run_dir, "split.json")
    if os.path.exists(path):
        return len(data.Dataset.load(path).class_names)
    return len(data.scan(sources.resolve_source(exp.data_dir, exp.cache_dir)).class_names)


def class_labels(images, num_classes):
    """Labels per split as the models take them: 0/1 floats for two classes (the paper's sigmoid),
    class indices for K > 2."""
    dtype = "float32" if num_classes == 2 else "int32"
    return {s: images[s][1].astype(dtype) for s in SPLITS}


def _squeeze(p):
    """One probability per image for a sigmoid output, rows of K probabilities otherwise."""
    p = np.asarray(p)
    return p.reshape(-1) if p.shape[-1] == 1 else p


def run_seed(seed, name):
    """The seed of one run: initialisation, data order and augmentation draws.

    Derived from the experiment's seed and the run's name, so every student and every
    generation of a chain is an independent draw (the paper trains a new network at each
    step), while the same command gives the same runs again.
    """
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:4], "little") % (2**31 - 1)


def _start(exp, name, config, parent_dir=None):
    """Opens the run ``name`` of ``exp`` (:func:`~kd_keras.replay.lifecycle.open_run`): ``(run_dir, run seed, finished)``.

    Its settings are the preset, the data, the seed and ``config``; preset fields added in a
    later version match a folder made before them at their defaults.
    """
    run_dir = exp.run_dir(name)
    seed = run_seed(exp.seed, name)
    settings = {"name": name, "preset": dataclasses.asdict(exp.preset), "data_dir": exp.data_dir,
                "seed": exp.seed, "run_seed": seed, "parent": parent_dir, **config}
    defaults = {"preset": dataclasses.asdict(type(exp.preset)(name=exp.preset.name))}
    finished = lifecycle.open_run(run_dir, settings, defaults, exp.deadline)
    keras.utils.set_random_seed(seed)
    return run_dir, seed, finished


def _adam(lr, decay):
    return keras.optimizers.Adam(legacy_decay(lr, decay) if decay else lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7)


def _predict_splits(model, images_by_split):
    """Predictions per split from one ``predict`` call (one trace instead of one per split)."""
    names = list(images_by_split)
    p = _squeeze(input_pipeline.predict_images(model, np.concatenate([images_by_split[s] for s in names])))
    ends = np.cumsum([len(images_by_split[s]) for s in names])
    return dict(zip(names, np.split(p, ends[:-1])))


def augmented_draws(predict_augmented, repeats):
    """``repeats`` predictions of the test set, each with a new draw of the training augmentation."""
    return [predict_augmented() for _ in range(repeats)]


def score_draws(draws, labels):
    """The paper's "test with augmentation" over K draws, with what it hides.

    The paper reports the best loss and the best accuracy of several draws, each on its
    own: an optimistic statistic. Every draw is kept, with the best (``loss`` = min,
    ``accuracy`` = max, as the paper) and the mean and standard deviation of the draws.
    """
    scores = [{"accuracy": metrics.accuracy(p, labels), "loss": metrics.crossentropy(p, labels)}
              for p in draws]
    acc, loss = np.array([d["accuracy"] for d in scores]), np.array([d["loss"] for d in scores])
    return {"accuracy": float(acc.max()), "loss": float(loss.min()), "repeats": len(draws), "draws": scores,
            "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
            "loss_mean": float(loss.mean()), "loss_std": float(loss.std(ddof=1)) if len(loss) > 1 else 0.0}


def _finish(exp, run_dir, predictions, labels, history, extra, started, teacher_labels=None, augmented=None):
    """Scores the run and finishes it (:func:`~kd_keras.replay.lifecycle.finish_run`: non-finite predictions refused)."""
    result = {"best": run_files.best_of_history(history), "seconds": round(time.time() - started, 1), **extra}
    result["eval"] = {s: metrics.summary(predictions[s], labels[s]) for s in SPLITS}
    if augmented is not None:
        draws = augmented()
        result["test_augmented"] = score_draws(draws, labels["test"])
        if teacher_labels is not None:
            result["test_teacher_labels"] = {
                "accuracy": metrics.accuracy(predictions["test"], teacher_labels),
                "loss": metrics.crossentropy(predictions["test"], teacher_labels)}
            result["test_teacher_labels_augmented"] = score_draws(draws, teacher_labels)
    lifecycle.finish_run(run_dir, {**predictions, **{f"label_{s}": labels[s] for s in SPLITS}}, result)
    exp.log(f"{os.path.relpath(run_dir, exp.runs_dir)}: test accuracy {result['eval']['test']['accuracy']:.4f}")
    return run_dir


def _features(backbone, images, label, exp):
    exp.log(f"features of {label}: {len(images)} images")
    return input_pipeline.predict_images(backbone, images, 64, exp.verbose)


def train_teacher(exp):
    """The teacher: Adam 1e-3, legacy decay 0.01, horizontal flips, batch 32.

    One process at a time: another one on the same run folder is refused (:class:`lifecycle.RunLock`).

    Its backbone is ``exp.backbone``: the paper's ResNet-50, or EfficientNet-Lite0 whose
    ImageNet weights install offline. With a frozen backbone (the default) the features of every training image
    and of its mirror image are computed once and the head trains on them, each epoch
    seeing each image or its mirror at random: exactly flip augmentation, far cheaper.
    With ``preset.teacher_fine_tune`` the whole network trains on images instead.
    """
    with lifecycle.RunLock(exp.run_dir(layout.TEACHER)):
        return _train_teacher(exp)


def _train_teacher(exp):
    p = exp.preset
    name = layout.TEACHER
    run_dir, seed, finished = _start(exp, name, {
        "kind": "teacher", "backbone": exp.backbone, "weights": str(exp.weights), "fine_tune": p.teacher_fine_tune,
        "normalized_features": not p.teacher_fine_tune and not models.is_pretrained(exp.weights)})
    if finished:
        exp.log(f"{run_dir}: done, reused")
        return run_dir
    started = time.time()
    size = p.teacher_image_size or p.image_size
    num_classes = class_count(exp, run_dir)
    with exp.scope():  # first, so that missing weights fail before minutes of decoding
        normalize = not p.teacher_fine_tune and not models.is_pretrained(exp.weights)
        model = models.teacher(exp.weights, not p.teacher_fine_tune, (size, size, 3),
                               normalize_features=normalize, backbone_name=exp.backbone, num_classes=num_classes)
    dataset = prepare_split(exp, run_dir)
    images = load_images(exp, dataset, size)
    labels = class_labels(images, num_classes)
    with exp.scope():
        if p.teacher_fine_tune:
            return _train_on_images(exp, run_dir, seed, model, images, labels, p.teacher_lr, p.teacher_decay,
                                    p.teacher_epochs, shift=0.0, started=started, extra={"kind": "teacher"})
    backbone = models.teacher_backbone(model)
    feats = {s: _features(backbone, images[s][0], s, exp) for s in SPLITS}
    mirror = {s: _features(backbone, images[s][0][:, :, ::-1], f"{s} (mirrored)", exp) for s in ("train", "test")}
    if normalize:
        model.get_layer("head_normalization").adapt(np.concatenate([feats["train"], mirror["train"]]))
    with exp.scope():
        head = models.teacher_head(model)
        loss = "binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy"
        head.compile(_adam(p.teacher_lr, p.teacher_decay), loss, metrics=["accuracy"])

    def train(epochs_done):  # each epoch, each image or its mirror image at random
        return input_pipeline.ArrayBatches(feats["train"], labels["train"], p.batch_size, shuffle=True,
                                           seed=lifecycle.resumed_seed(seed, epochs_done), mirrored=mirror["train"])

    valid = input_pipeline.ArrayBatches(feats["valid"], labels["valid"], p.batch_size)
    history = lifecycle.fit_resumable(head, train, valid, p.teacher_epochs, run_dir,
                                 save_best=lambda path: model.save(path), verbose=exp.verbose,
                                 deadline=exp.deadline, tensorboard=exp.tensorboard)
    best = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    best_head = models.teacher_head(best)
    predictions = {s: _squeeze(best_head.predict(feats[s], verbose=0)) for s in SPLITS}
    rng = np.random.default_rng(seed)

    def augmented():
        def draw():
            flip = rng.random(len(feats["test"])) < 0.5
            mixed = np.where(flip[:, None], mirror["test"], feats["test"])
            return _squeeze(best_head.predict(mixed, verbose=0))
        return augmented_draws(draw, p.augmented_evaluations)

    return _finish(exp, run_dir, predictions, labels, history, {"kind": "teacher"}, started, augmented=augmented)


def teacher_run(exp):
    """The teacher's run folder: ``exp.teacher_model`` imported, or the preset's teacher trained."""
    return import_teacher(exp, exp.teacher_model) if exp.teacher_model else train_teacher(exp)


def import_teacher(exp, model_file):
    """A user's trained teacher as the teacher run, its predictions made once on the plain images.

    The model (a ``.keras`` file, loaded in safe mode; see :mod:`kd_keras.user_models`) sees
    every split at its own input size, scaled to [0, 1]. Its run folder is laid out as a
    trained teacher's (``split.json``, ``predictions.npz``, ``metrics.json``; no history and no
    augmented test), so students and chains use it unchanged.
    """
    with lifecycle.RunLock(exp.run_dir(layout.TEACHER)):
        return _import_teacher(exp, model_file)


def _import_teacher(exp, model_file):
    what = f"--teacher-model {model_file}"
    model = user_models.load_model_file(model_file, "--teacher-model")
    size = user_models.input_size(model, what)
    # Checked before the run folder exists: a wrong file leaves nothing behind.
    num_classes = class_count(exp, exp.run_dir(layout.TEACHER))
    units = user_models.check_classes(model, num_classes, what)
    with open(model_file, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    run_dir, _, finished = _start(exp, layout.TEACHER, {"kind": "teacher", "model_file": os.path.abspath(model_file),
                                                        "sha256": digest, "image_size": size})
    if finished:
        exp.log(f"{run_dir}: done, reused")
        return run_dir
    started = time.time()
    dataset = prepare_split(exp, run_dir)
    images = load_images(exp, dataset, size)
    labels = class_labels(images, num_classes)
    predictions = _predict_splits(model, {s: images[s][0] for s in SPLITS})
    sums = predictions["train"].sum(axis=-1) if units > 1 else None
    everything = np.concatenate([np.ravel(p) for p in predictions.values()])
    if (not np.all(np.isfinite(everything)) or everything.min() < 0 or everything.max() > 1
            or (sums is not None and not np.allclose(sums, 1, atol=1e-3))):
        shutil.rmtree(run_dir)  # made just now, holds nothing else: the fixed file starts afresh
        raise UserError(f"{what}: its outputs are not probabilities, or not finite (end the model in a sigmoid or "
                        "a softmax)")
    if num_classes == 2 and units == 2:  # a two-unit softmax: the paper's p is the second class's
        predictions = {s: p[:, 1] for s, p in predictions.items()}
    return _finish(exp, run_dir, predictions, labels, [], {"kind": "teacher", "imported": True}, started)


def compiled_distiller(exp, model, mode, seed, lr, decay, shift):
    """``(Distiller, its preprocessing)`` for ``model``: flips, ``shift`` and /255 in the step, Adam(lr, decay)."""
    with exp.scope():
        preprocessing = input_pipeline.preprocessing(flip=True, shift=shift, seed=seed)
        distiller = Distiller(model, mode=mode, preprocessing=preprocessing)
        distiller.compile(_adam(lr, decay))
    return distiller, preprocessing


def _train_on_images(exp, run_dir, seed, model, images, labels, lr, decay, epochs, shift, started, extra,
                     targets=None, mode="classic"):
    """Trains ``model`` (wrapped in a Distiller) on augmented images; writes the run's results.

    ``seed`` is the run's own: it drew ``model``'s initial weights (see :func:`_start`) and
    here it seeds the data order and the augmentation. A resumed run draws new ones
    (:func:`kd_keras.runs.resumed_seed`): it must not replay the batches it trained on.
    """
    p = exp.preset
    data_seed = lifecycle.resumed_seed(seed, lifecycle.completed_epochs(run_dir))
    distiller, preprocessing = compiled_distiller(exp, model, mode, data_seed, lr, decay, shift)
    y = {"label": labels["train"], "teacher": targets if targets is not None else labels["train"]}
    train = input_pipeline.ArrayBatches(images["train"][0], y, p.batch_size, shuffle=True, seed=data_seed)
    valid = input_pipeline.ArrayBatches(images["valid"][0], labels["valid"], p.batch_size)
    history = lifecycle.fit_resumable(distiller, train, valid, epochs, run_dir,
                                 save_best=lambda path: model.save(path), verbose=exp.verbose,
                                 deadline=exp.deadline, tensorboard=exp.tensorboard)
    best = model
    best.load_weights(os.path.join(run_dir, "model.keras"))  # same model: its traced predict is reused
    predictions = _predict_splits(best, {s: images[s][0] for s in SPLITS})

    def augmented():  # the training augmentation, its stream continued, on the test images
        predictor = input_pipeline.augmented_predictor(best, preprocessing)
        test = input_pipeline.ArrayBatches(images["test"][0], None, 64)
        return augmented_draws(lambda: _squeeze(predictor.predict(test, verbose=0)), p.augmented_evaluations)

    teacher_labels = None
    if targets is not None and mode != "classic":
        parent_predictions = run_files.read_predictions(os.path.join(extra["parent"], "predictions.npz"), ["test"])
        teacher_labels = metrics.hard_labels(parent_predictions["test"])
    return _finish(exp, run_dir, predictions, labels, history, extra, started,
                   teacher_labels=teacher_labels, augmented=augmented)


def train_student(exp, mode, parent_dir, name=None, generation=0):
    """A student (the paper's ResNet-18 by default): Adam 1e-4, no decay, flips and 0.4 shifts, batch 32.

    Args:
        exp: the :class:`Experiment`.
        mode: ``"classic"`` (true labels), ``"hard"`` (formula 13) or ``"soft"`` (formula 14).
        parent_dir: the teacher's run folder (or the previous generation's); its split is
            reused and its training predictions are the targets.
        name: the run's name; ``student-<mode>`` by default.
        generation: the step in a recursive chain (0 for the students themselves).

    One process at a time: another one on the same run folder is refused (:class:`lifecycle.RunLock`).
    """
    with lifecycle.RunLock(exp.run_dir(name or layout.student_run(mode))):
        return _train_student(exp, mode, parent_dir, name, generation)


def _train_student(exp, mode, parent_dir, name, generation):
    p = exp.preset
    if not run_files.is_complete(parent_dir):
        raise UserError(f"teacher run {parent_dir} is missing or incomplete (no metrics.json)")
    name = name or layout.student_run(mode)
    extra = {"kind": "student", "mode": mode, "generation": generation, "parent": parent_dir}
    if exp.student != user_models.DEFAULT_STUDENT or exp.student_size:  # recorded only when not the paper's
        extra.update(student=exp.student, student_size=exp.student_size)
    if exp.budget is not None:
        extra["budget"] = exp.budget
    run_dir, seed, finished = _start(exp, name, extra, parent_dir)
    if finished:
        exp.log(f"{run_dir}: done, reused")
        return run_dir
    started = time.time()
    exp.log(f"training {name}")
    dataset = prepare_split(exp, run_dir, parent_dir)
    num_classes = len(dataset.class_names)
    size = exp.student_size or p.image_size
    with exp.scope():
        student = user_models.student_model(exp.student, (size, size, 3), num_classes, p.student_bn_momentum)
    size = student.inputs[0].shape[1] or size  # a student file keeps its own input size
    images = load_images(exp, dataset, size)
    labels = class_labels(images, num_classes)
    targets = run_files.read_predictions(os.path.join(parent_dir, "predictions.npz"), ["train"])["train"].astype("float32")
    if len(targets) != len(labels["train"]):
        raise UserError(f"{parent_dir} has predictions for {len(targets)} training images, the split has "
                        f"{len(labels['train'])}; re-run the parent")
    return _train_on_images(exp, run_dir, seed, student, images, labels, p.student_lr, p.student_decay,
                            p.student_epochs, p.student_shift, started, extra, targets=targets, mode=mode)


def train_chain(exp, chain, start_dir, generations):
    """Recursive distillation: generation k learns from generation k-1's predictions.

    Args:
        chain: ``"hard"`` (formula 13 at every step) or ``"soft"`` (formula 14).
        start_dir: the hard or soft student's run folder (generation 0).
        generations: how many new students.

    Returns:
        The run folders of generations 0..N.
    """
    if generations < 1:
        raise UserError(f"generations must be >= 1, got {generations}")
    chain_dirs = [start_dir]
    for k in range(1, generations + 1):
        chain_dirs.append(train_student(exp, chain, chain_dirs[-1], name=layout.chain_run(chain, k), generation=k))
    return chain_dirs
