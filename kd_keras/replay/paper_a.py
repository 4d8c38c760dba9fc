"""Paper A: fine-tune an ImageNet backbone with different losses on small datasets.

One run folder per (dataset, loss, seed) with ``history.csv`` (train and valid loss and
accuracy per epoch), ``predictions.npz`` (valid labels and predicted classes) and
``metrics.json``. The reported accuracy is the valid accuracy after the last epoch
("accuracy after training", as the thesis's Table 4), not the best epoch's.

Settings the thesis does not give are preset fields (``loss_*`` in
:mod:`kd_keras.presets`): Adam, learning rate, epochs, batch size, image size, and
whether the backbone is frozen; AM-softmax uses s = 30, m = 0.35 (Wang et al.).
"""

import logging
import os
import time

import keras
import numpy as np
from keras import ops

from kd_keras import data, input_pipeline, losses, models, sources
from kd_keras.replay import layout, lifecycle, run_files
from kd_keras.errors import UserError
from kd_keras.layers import lsoftmax_logits

_log = logging.getLogger(__name__)


def class_scores(head, outputs):
    """Scores whose argmax is the predicted class, for any head's outputs."""
    return lsoftmax_logits(outputs) if head == "lsoftmax" else outputs


def _accuracy_metric(head):
    def accuracy(y_true, y_pred):
        predicted = ops.argmax(class_scores(head, y_pred), axis=-1)
        return ops.cast(ops.equal(ops.argmax(y_true, axis=-1), predicted), "float32")

    return keras.metrics.MeanMetricWrapper(accuracy, name="accuracy")


def load_dataset(data_dir, preset, cache_dir, seed=0, log=None):
    """The train and valid images of one class-folder dataset, decoded once."""
    folder = sources.resolve_source(data_dir, cache_dir)
    dataset = data.split(data.scan(folder), seed=seed, need=("train", "valid"))
    limits = {"train": preset.loss_train_per_class, "valid": preset.loss_valid_per_class}
    dataset = data.subsample(dataset, limits, seed=seed)
    loaded = {}
    for split in ("train", "valid"):
        images, labels, kept, _ = input_pipeline.cached_images(
            dataset.splits[split], preset.loss_image_size, cache_dir, label=f"{dataset.name} {split}", log=log)
        if len(images) == 0:
            raise UserError(f"{data_dir}: none of the {len(dataset.splits[split])} {split} images could be read "
                            "(see the warning above for why)")
        loaded[split] = (images, labels, kept)
    dataset.splits = {s: loaded[s][2] for s in loaded}
    return dataset, loaded


def study_losses(data_dirs, loss_names, seeds, preset, runs_dir="runs", backbone=None,
                 weights="imagenet", verbose=1):
    """Trains every (dataset, loss, seed) and returns their run folders.

    Args:
        data_dirs: class-folder datasets (``DIR/<class>`` or ``DIR/{train,valid}/<class>``).
        loss_names: names from :data:`kd_keras.losses.NAMES`.
        seeds: one run per seed.
        preset: a :class:`kd_keras.presets.Preset`.
        backbone: a :func:`kd_keras.backbones.backbone` name; None takes ``preset.loss_backbone``.
        weights: ``"imagenet"``, ``"none"`` or a path.
        verbose: Keras verbosity: 0 silent, 1 progress bars, 2 a line per epoch.
    """
    for name in loss_names:
        losses.get(name)  # fail on a bad name before any training
    backbone = models.canonical_name(backbone or preset.loss_backbone)
    log = _log.info if verbose else (lambda *_: None)
    cache_dir = layout.cache_folder(runs_dir)
    size = preset.loss_image_size
    run_dirs = []
    for data_dir in data_dirs:
        dataset, loaded = load_dataset(data_dir, preset, cache_dir, log=log)
        num_classes = len(dataset.class_names)
        onehot = {s: np.eye(num_classes, dtype="float32")[loaded[s][1]] for s in loaded}
        inputs = {s: loaded[s][0] for s in loaded}
        if not preset.loss_fine_tune:
            extractor = models.backbone(backbone, weights, (size, size, 3))
            log(f"{dataset.name}: {backbone} features of {sum(len(v) for v in inputs.values())} images")
            inputs = {s: input_pipeline.predict_images(extractor, inputs[s], 32, verbose) for s in inputs}
        for loss_name in loss_names:
            for seed in seeds:
                run_dir = layout.loss_run_folder(runs_dir, preset.name, dataset.name, loss_name, seed)
                run_dirs.append(run_dir)
                settings = _settings(dataset, loss_name, seed, preset, backbone, weights)
                with lifecycle.RunLock(run_dir):  # one process at a time
                    # Settings added in a later version match a folder made before them at None.
                    if lifecycle.open_run(run_dir, settings, defaults=dict.fromkeys(settings)):
                        log(f"{run_dir}: done, reused")
                        continue
                    _train_one(run_dir, dataset, inputs, onehot, loss_name, seed, preset, backbone, weights, verbose)
    return run_dirs


def _settings(dataset, loss_name, seed, preset, backbone, weights):
    """What makes a loss-study run: compared with a run folder's ``config.json`` before it is reused."""
    return {"kind": "loss", "dataset": dataset.name, "loss": loss_name, "seed": seed, "backbone": backbone,
            "weights": str(weights), "preset": preset.name, "fine_tune": preset.loss_fine_tune,
            "image_size": preset.loss_image_size, "epochs": preset.loss_epochs, "lr": preset.loss_lr,
            "batch_size": preset.loss_batch_size, "class_names": dataset.class_names,
            "train_per_class": preset.loss_train_per_class, "valid_per_class": preset.loss_valid_per_class}


def _train_one(run_dir, dataset, inputs, onehot, loss_name, seed, preset, backbone, weights, verbose):
    started = time.time()
    dataset.save(os.path.join(run_dir, "split.json"))
    keras.utils.set_random_seed(seed)
    spec = losses.get(loss_name)
    num_classes = len(dataset.class_names)
    size = preset.loss_image_size
    if preset.loss_fine_tune:
        x_in = keras.Input((size, size, 3))
        features = models.backbone(backbone, weights, (size, size, 3))(x_in)
    else:
        x_in = keras.Input(inputs["train"].shape[1:])
        features = x_in
        if not models.is_pretrained(weights):  # see models.teacher(normalize_features=...)
            normalization = keras.layers.Normalization(name="feature_normalization")
            normalization.adapt(inputs["train"])
            features = normalization(features)
    outputs = models.classifier_head(spec.head, num_classes)(features)
    model = keras.Model(x_in, outputs, name=f"{loss_name}_classifier")
    model.compile(keras.optimizers.Adam(preset.loss_lr), spec.loss, metrics=[_accuracy_metric(spec.head)])
    batch = preset.loss_batch_size
    scale = 1.0 / 255.0 if preset.loss_fine_tune else None  # images in [0, 1]; features as they are

    def train(epochs_done):
        return input_pipeline.ArrayBatches(inputs["train"], onehot["train"], batch, shuffle=True,
                                           seed=lifecycle.resumed_seed(seed, epochs_done), scale=scale)

    valid = input_pipeline.ArrayBatches(inputs["valid"], onehot["valid"], batch, scale=scale)
    _log.info(f"training {loss_name} on {dataset.name}, seed {seed}")
    history = lifecycle.fit_resumable(model, train, valid, preset.loss_epochs, run_dir,
                                 save_best=lambda path: model.save(path), verbose=verbose)
    outputs = model.predict(input_pipeline.ArrayBatches(inputs["valid"], None, batch, scale=scale), verbose=0)
    predicted = np.argmax(np.asarray(class_scores(spec.head, outputs)), axis=-1)
    labels = np.argmax(onehot["valid"], axis=-1)
    last = history[-1]
    lifecycle.finish_run(run_dir, {"label": labels, "predicted": predicted}, {
        "valid_accuracy": float(np.mean(predicted == labels)), "valid_loss": last["val_loss"],
        "train_loss": last["loss"], "train_accuracy": last["accuracy"],
        "best": run_files.best_of_history(history), "n_valid": int(len(labels)),
        "seconds": round(time.time() - started, 1)})
