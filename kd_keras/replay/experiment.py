"""One seed of Paper B: the :class:`Experiment` (where data come from, where runs go, how to train),
its split and images, and the opening of each of its runs.

Each run of the seed has its own seed (:func:`run_seed`) and its own folder
(:mod:`~kd_keras.replay.layout`); children (students, generations) reuse their parent's split.
"""

import dataclasses
import hashlib
import logging
import os

import keras

from kd_keras import data, input_pipeline, models, sources, user_models
from kd_keras.errors import UserError
from kd_keras.replay import layout, lifecycle
from kd_keras.schedules import legacy_decay

_log = logging.getLogger(__name__)


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
        teacher_model: a user's trained teacher (``.keras``), or a list of them for an ensemble;
            :func:`~kd_keras.replay.teacher.teacher_run` then imports it instead of training one.
        teacher_weights: the ensemble's weights (equal when None).
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
    teacher_model: object = None
    teacher_weights: tuple = None
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
            _log.info(message)


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


def run_seed(seed, name):
    """The seed of one run: initialisation, data order and augmentation draws.

    Derived from the experiment's seed and the run's name, so every student and every
    generation of a chain is an independent draw (the paper trains a new network at each
    step), while the same command gives the same runs again.
    """
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:4], "little") % (2**31 - 1)


def start_run(exp, name, config, parent_dir=None):
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


def adam(lr, decay):
    return keras.optimizers.Adam(legacy_decay(lr, decay) if decay else lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
