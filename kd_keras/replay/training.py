"""Training a network on augmented images through a :class:`~kd_keras.distill.Distiller`, resumable.

The students and chains train so, through the compiled programs of :mod:`kd_keras.replay.programs`,
and the teacher when it fine-tunes its backbone.
"""

import os

from kd_keras import input_pipeline, metrics
from kd_keras.distill import offline_targets
from kd_keras.replay import lifecycle, run_files
from kd_keras.replay.evaluation import augmented_draws, one_per_image, predict_splits, score_and_finish
from kd_keras.replay.experiment import SPLITS


def train_on_images(exp, run_dir, seed, program, images, labels, epochs, started, extra, targets=None,
                    mode="classic"):
    """Trains ``program``'s network on augmented images for ``mode``'s targets; writes the run's results.

    ``seed`` is the run's own: it drew the network's initial weights (see
    :func:`~kd_keras.replay.experiment.start_run`) and here it seeds the data order and the
    augmentation. A resumed run draws new ones (:func:`~kd_keras.replay.lifecycle.resumed_seed`):
    it must not replay the batches it trained on.

    Args:
        program: the compiled :class:`~kd_keras.replay.programs.Program`, reset here for this run.
        targets: the parent's predictions on the training images (None for ``classic``).
        mode: ``classic``, ``hard`` or ``soft``: which targets (:func:`~kd_keras.distill.offline_targets`).
    """
    p = exp.preset
    data_seed = lifecycle.resumed_seed(seed, lifecycle.completed_epochs(run_dir))
    program.start(exp, seed, data_seed)
    model = program.model
    y = {"label": labels["train"],
         "teacher": offline_targets(mode, labels["train"], targets, program.num_classes)}
    train = input_pipeline.ArrayBatches(images["train"][0], y, p.batch_size, shuffle=True, seed=data_seed)
    valid = input_pipeline.ArrayBatches(images["valid"][0], labels["valid"], p.batch_size)
    best = {}

    def save_best(path):  # the best epoch's model on disk, and its weights in memory to evaluate it
        model.save(path)
        best["weights"] = model.get_weights()

    history = lifecycle.fit_resumable(program.distiller, train, valid, epochs, run_dir, save_best=save_best,
                                      verbose=exp.verbose, deadline=exp.deadline, tensorboard=exp.tensorboard)
    if "weights" in best:  # the best epoch's weights, into the same model: its compiled predict is reused
        model.set_weights(best["weights"])
    else:  # a resumed run whose best epoch came before this attempt
        model.load_weights(os.path.join(run_dir, "model.keras"))
    predictions = predict_splits(model, {s: images[s][0] for s in SPLITS})

    def augmented():  # the training augmentation, its stream continued, on the test images
        test = input_pipeline.ArrayBatches(images["test"][0], None, 64)
        return augmented_draws(lambda: one_per_image(program.predictor.predict(test, verbose=0)),
                               p.augmented_evaluations)

    teacher_labels = None
    if targets is not None and mode != "classic":
        parent_predictions = run_files.read_predictions(os.path.join(extra["parent"], "predictions.npz"), ["test"])
        teacher_labels = metrics.hard_labels(parent_predictions["test"])
    return score_and_finish(exp, run_dir, predictions, labels, history, extra, started,
                            teacher_labels=teacher_labels, augmented=augmented)
