"""Paper B's teacher: trained (its head on cached ImageNet features, or fine-tuned), or a user's model imported
(:mod:`~kd_keras.replay.imported_teacher`).

Each function trains or imports into the seed's ``teacher`` run folder and returns it; a
finished run is reused, an interrupted one resumes from its last completed epoch.
"""

import os
import time

import keras
import numpy as np

from kd_keras import input_pipeline, models
from kd_keras.replay import layout, lifecycle
from kd_keras.replay.evaluation import augmented_draws, one_per_image, score_and_finish
from kd_keras.replay.experiment import SPLITS, adam, class_count, class_labels, load_images, prepare_split, start_run
from kd_keras.replay.programs import Program
from kd_keras.replay.training import train_on_images

def features(backbone, images, label, exp):
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
    run_dir, seed, finished = start_run(exp, name, {
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
    if p.teacher_fine_tune:  # the whole network on flipped images, through the Distiller on the true labels
        def build():
            return models.teacher(exp.weights, False, (size, size, 3), backbone_name=exp.backbone,
                                  num_classes=num_classes)

        program = Program(exp, build, num_classes, p.teacher_lr, p.teacher_decay, shift=0.0, model=model)
        return train_on_images(exp, run_dir, seed, program, images, labels, p.teacher_epochs, started,
                               {"kind": "teacher"})
    backbone = models.teacher_backbone(model)
    feats = {s: features(backbone, images[s][0], s, exp) for s in SPLITS}
    mirror = {s: features(backbone, images[s][0][:, :, ::-1], f"{s} (mirrored)", exp) for s in ("train", "test")}
    if normalize:
        model.get_layer("head_normalization").adapt(np.concatenate([feats["train"], mirror["train"]]))
    with exp.scope():
        head = models.teacher_head(model)
        loss = "binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy"
        head.compile(adam(p.teacher_lr, p.teacher_decay), loss, metrics=["accuracy"])

    def train(epochs_done):  # each epoch, each image or its mirror image at random
        return input_pipeline.ArrayBatches(feats["train"], labels["train"], p.batch_size, shuffle=True,
                                           seed=lifecycle.resumed_seed(seed, epochs_done), mirrored=mirror["train"])

    valid = input_pipeline.ArrayBatches(feats["valid"], labels["valid"], p.batch_size)
    history = lifecycle.fit_resumable(head, train, valid, p.teacher_epochs, run_dir,
                                 save_best=lambda path: model.save(path), verbose=exp.verbose,
                                 deadline=exp.deadline, tensorboard=exp.tensorboard)
    best = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    best_head = models.teacher_head(best)
    predictions = {s: one_per_image(best_head.predict(feats[s], verbose=0)) for s in SPLITS}
    rng = np.random.default_rng(seed)

    def augmented():
        def draw():
            flip = rng.random(len(feats["test"])) < 0.5
            mixed = np.where(flip[:, None], mirror["test"], feats["test"])
            return one_per_image(best_head.predict(mixed, verbose=0))
        return augmented_draws(draw, p.augmented_evaluations)

    return score_and_finish(exp, run_dir, predictions, labels, history, {"kind": "teacher"}, started, augmented=augmented)


def teacher_run(exp):
    """The teacher's run folder: ``exp.teacher_model`` imported (:mod:`~kd_keras.replay.imported_teacher`),
    or the preset's teacher trained."""
    if exp.teacher_model:
        from kd_keras.replay.imported_teacher import import_teacher

        return import_teacher(exp, exp.teacher_model, exp.teacher_weights)
    return train_teacher(exp)
