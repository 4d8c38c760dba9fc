"""Training a network on augmented images through a :class:`~kd_keras.distill.Distiller`, resumable.

The students and chains train so, and the teacher when it fine-tunes its backbone.
"""

import os

from kd_keras import input_pipeline, metrics
from kd_keras.distill import Distiller
from kd_keras.replay import lifecycle, run_files
from kd_keras.replay.evaluation import augmented_draws, one_per_image, predict_splits, score_and_finish
from kd_keras.replay.experiment import SPLITS, adam

def compiled_distiller(exp, model, mode, seed, lr, decay, shift):
    """``(Distiller, its preprocessing)`` for ``model``: flips, ``shift`` and /255 in the step, Adam(lr, decay)."""
    with exp.scope():
        preprocessing = input_pipeline.preprocessing(flip=True, shift=shift, seed=seed)
        distiller = Distiller(model, mode=mode, preprocessing=preprocessing)
        distiller.compile(adam(lr, decay))
    return distiller, preprocessing


def train_on_images(exp, run_dir, seed, model, images, labels, lr, decay, epochs, shift, started, extra,
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
    predictions = predict_splits(best, {s: images[s][0] for s in SPLITS})

    def augmented():  # the training augmentation, its stream continued, on the test images
        predictor = input_pipeline.augmented_predictor(best, preprocessing)
        test = input_pipeline.ArrayBatches(images["test"][0], None, 64)
        return augmented_draws(lambda: one_per_image(predictor.predict(test, verbose=0)), p.augmented_evaluations)

    teacher_labels = None
    if targets is not None and mode != "classic":
        parent_predictions = run_files.read_predictions(os.path.join(extra["parent"], "predictions.npz"), ["test"])
        teacher_labels = metrics.hard_labels(parent_predictions["test"])
    return score_and_finish(exp, run_dir, predictions, labels, history, extra, started,
                   teacher_labels=teacher_labels, augmented=augmented)
