"""Which frozen backbone the cpu loss study should use: chosen on the train images only.

For each setting (backbone, image size, whether the training features include each
image's horizontal mirror) it extracts frozen ImageNet features once, then trains the loss
study's head (Adam, the preset's learning rate, epochs and batch) with each loss in a
K-fold cross-validation on the **train** split and prints the mean held-out accuracy.
The valid split, which the loss study reports, is printed last and apart, for the record;
choose by the cross-validation column:

    python benchmarks/loss_backbone_probe.py --data-dir ../shared/data/weather \\
        --setting efficientnet-lite0:224:noflip --setting efficientnet-lite0:224:flip \\
        --setting efficientnet-lite2:260:noflip --setting efficientnet-lite2:260:flip
"""

from kd_keras import quiet  # noqa: I001  (first: before Keras loads TensorFlow)

quiet.tensorflow_defaults()  # oneDNN on and a quiet start-up, as the kd-keras command has them

import argparse
import time

import keras
import numpy as np

from kd_keras import data, input_pipeline, losses, models
from kd_keras.replay import paper_a, presets


def train_head(loss_name, train_x, train_y, test_x, preset, num_classes, seed):
    """Valid-style predictions of one head trained as :mod:`kd_keras.loss_study` trains it."""
    keras.utils.set_random_seed(seed)
    spec = losses.get(loss_name)
    x_in = keras.Input(train_x.shape[1:])
    model = keras.Model(x_in, models.classifier_head(spec.head, num_classes)(x_in))
    model.compile(keras.optimizers.Adam(preset.loss_lr), spec.loss)
    model.fit(train_x, np.eye(num_classes, dtype="float32")[train_y], batch_size=preset.loss_batch_size,
              epochs=preset.loss_epochs, verbose=0, shuffle=True)
    return np.argmax(np.asarray(paper_a.class_scores(spec.head, model.predict(test_x, verbose=0))), -1)


def features(extractor, images, flip):
    """Features of the images and, with ``flip``, of their mirrors after them."""
    out = input_pipeline.predict_images(extractor, images, 32)
    return np.concatenate([out, input_pipeline.predict_images(extractor, images[:, :, ::-1], 32)]) if flip else out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--setting", action="append", required=True, help="BACKBONE:SIZE:flip|noflip, repeatable")
    parser.add_argument("--losses", nargs="+", default=["softmax", "cosine", "am-softmax"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--cache-dir", default="runs/.cache")
    args = parser.parse_args()
    preset = presets.get(args.preset)
    dataset = data.split(data.scan(args.data_dir), seed=0, need=("train", "valid"))
    num_classes = len(dataset.class_names)
    for setting in args.setting:
        name, size, flip = setting.split(":")
        size, flip = int(size), flip == "flip"
        train_im, train_y, _, _ = input_pipeline.cached_images(dataset.splits["train"], size, args.cache_dir, "train")
        valid_im, valid_y, _, _ = input_pipeline.cached_images(dataset.splits["valid"], size, args.cache_dir, "valid")
        started = time.perf_counter()
        extractor = models.backbone(name, "imagenet", (size, size, 3))
        train_f = features(extractor, train_im, flip)
        plain_train_f = train_f[:len(train_im)]
        valid_f = features(extractor, valid_im, False)
        seconds = time.perf_counter() - started
        folds = np.random.default_rng(0).permutation(len(train_im)) % args.folds
        cv, valid = {}, {}
        for loss_name in args.losses:
            correct = 0
            for k in range(args.folds):
                fit_idx = np.flatnonzero(folds != k)
                fit_idx = np.concatenate([fit_idx, fit_idx + len(train_im)]) if flip else fit_idx
                held = folds == k
                predicted = train_head(loss_name, train_f[fit_idx], np.tile(train_y, 2 if flip else 1)[fit_idx],
                                       plain_train_f[held], preset, num_classes, seed=k)
                correct += int(np.sum(predicted == train_y[held]))
            cv[loss_name] = correct / len(train_im)
            full_y = np.tile(train_y, 2 if flip else 1)
            valid[loss_name] = float(np.mean(
                train_head(loss_name, train_f, full_y, valid_f, preset, num_classes, seed=0) == valid_y))
        print(f"{setting}: features {len(train_f) + len(valid_f)} images in {seconds:.0f} s; "
              f"{args.folds}-fold CV on train: " + ", ".join(f"{k} {v:.3f}" for k, v in cv.items())
              + f" (mean {np.mean(list(cv.values())):.3f}) | valid, for the record: "
              + ", ".join(f"{k} {v:.3f}" for k, v in valid.items()), flush=True)


if __name__ == "__main__":
    main()
