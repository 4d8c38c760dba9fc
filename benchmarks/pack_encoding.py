"""What packing costs: one model's predictions on a pack's re-encoded images against the original files.

A pack (``kd-keras pack``) stores each image at the run's size, re-encoded (WebP at a chosen
quality) so that a whole dataset travels in one size-limited call. This decodes every image of
the chosen splits twice, from the original folder and from the pack, through the input pipeline
at the model's input size, and prints per split: how many predictions name the same class, the
mean and largest change of the predicted probability, and the accuracy on each version.

    python benchmarks/pack_encoding.py --pack gpu_in/cats_vs_dogs --data-dir ../shared/data/cats_vs_dogs \\
        --model runs/cats_vs_dogs-gpu/seed0/teacher/model.keras
"""

from kd_keras import quiet  # noqa: I001  (first: before Keras loads TensorFlow)

quiet.tensorflow_defaults()  # oneDNN on and a quiet start-up, as the kd-keras command has them

import argparse
import os

import keras
import numpy as np

from kd_keras import data, input_pipeline, metrics, sources


def paired_images(pack_dir, data_dir, split, cache_dir):
    """``(original paths, packed paths, labels)`` of the images that ``split`` of both holds, matched by name."""
    packed = data.scan(sources.resolve_source(pack_dir, cache_dir)).splits[split]
    original = data.scan(data_dir).splits[split]
    by_name = {(label, os.path.splitext(os.path.basename(path))[0]): path for path, label in packed}
    pairs = [(path, by_name[(label, os.path.splitext(os.path.basename(path))[0])], label)
             for path, label in original if (label, os.path.splitext(os.path.basename(path))[0]) in by_name]
    return [p[0] for p in pairs], [p[1] for p in pairs], np.array([p[2] for p in pairs], "float32")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", required=True)
    parser.add_argument("--data-dir", required=True, help="the original folder the pack was made from")
    parser.add_argument("--model", required=True, help="a trained .keras model with one sigmoid output")
    parser.add_argument("--split", action="append", help="train, valid, test (repeatable; default: all three)")
    parser.add_argument("--cache-dir", default="runs/.cache")
    args = parser.parse_args()
    model = keras.models.load_model(args.model)
    size = model.input_shape[1]
    print(f"{args.model} at {size} px; pack {args.pack}")
    for split in args.split or ["train", "valid", "test"]:
        originals, packed, labels = paired_images(args.pack, args.data_dir, split, args.cache_dir)
        p = {}
        for version, paths in (("original", originals), ("packed", packed)):
            images, kept, skipped = input_pipeline.decode_images(paths, size, log=lambda *_: None)
            if skipped:
                raise SystemExit(f"error: {len(skipped)} {version} {split} images unreadable: {skipped[0]}")
            p[version] = input_pipeline.predict_images(model, images).reshape(-1)
        same = np.mean((p["original"] > 0.5) == (p["packed"] > 0.5))
        change = np.abs(p["original"] - p["packed"])
        print(f"{split}: {len(labels)} images; the same class for {100 * same:.2f} %; |change of p| mean "
              f"{change.mean():.4f}, largest {change.max():.4f}; accuracy {metrics.accuracy(p['original'], labels):.4f} "
              f"on the originals, {metrics.accuracy(p['packed'], labels):.4f} on the pack", flush=True)


if __name__ == "__main__":
    main()
