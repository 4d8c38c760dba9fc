"""Datasets: find the images and labels of a folder, and split them.

Layouts (:func:`kd_keras.sources.resolve_source` first turns any ``--data-dir`` value into a folder):

- a folder per class, ``DIR/<class>/*``, or split folders ``DIR/{train,valid,test}/<class>/*``
  (Weather, Fruits, Covid-19, PetImages' ``Cat/`` and ``Dog/``, any user dataset);
- Kaggle Dogs vs. Cats' flat layout, ``DIR/cat.123.jpg`` or ``DIR/train/dog.9.jpg``;
- ``synthetic[:CLASSES[:IMAGES_PER_CLASS]]``, the package's synthetic dataset;
- ``tfds:cats_vs_dogs`` when ``tensorflow_datasets`` and its data are available;
- a pack made by ``kd-keras pack`` (:mod:`kd_keras.pack`), unpacked once into the cache.

Labels follow the sorted class names, so ``cats`` = 0 and ``dogs`` = 1 (dog = 1, as in
the paper). Nothing is ever written into a user's dataset folder.
"""

import dataclasses
import json
import logging
import os
import random
import re

from kd_keras.errors import UserError

_log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
SPLIT_NAMES = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid", "test": "test"}
_KAGGLE_NAME = re.compile(r"^(cat|dog)\.", re.IGNORECASE)


@dataclasses.dataclass
class Dataset:
    """Labelled image files per split.

    Attributes:
        name: the dataset's name in runs and tables (its folder name).
        class_names: sorted class names; a label is an index into this list.
        splits: split name -> list of ``(path, label)``.
    """

    name: str
    class_names: list
    splits: dict

    def counts(self):
        """Split -> class name -> number of files."""
        table = {}
        for split, items in self.splits.items():
            per_class = {name: 0 for name in self.class_names}
            for _, label in items:
                per_class[self.class_names[label]] += 1
            table[split] = per_class
        return table

    def to_json(self):
        return {"name": self.name, "class_names": self.class_names,
                "splits": {s: [[p, int(y)] for p, y in items] for s, items in self.splits.items()}}

    @classmethod
    def from_json(cls, blob):
        return cls(blob["name"], list(blob["class_names"]),
                   {s: [(p, int(y)) for p, y in items] for s, items in blob["splits"].items()})

    def save(self, path):
        from kd_keras.files import write_json

        write_json(path, self.to_json())

    @classmethod
    def load(cls, path):
        with open(path) as f:
            return cls.from_json(json.load(f))


def _image_files(folder):
    return sorted(
        os.path.join(folder, name) for name in os.listdir(folder)
        if name.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, name))
    )


def _scan_split(folder):
    """Class name -> files, for class folders or Kaggle's flat cat.N / dog.N layout."""
    classes = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not name.startswith("."):
            files = _image_files(path)
            if files:
                classes[name] = files
    flat = [f for f in _image_files(folder) if _KAGGLE_NAME.match(os.path.basename(f))]
    for path in flat:
        animal = _KAGGLE_NAME.match(os.path.basename(path)).group(1).lower()
        classes.setdefault(animal + "s", []).append(path)
    return classes


def scan(data_dir, name=None):
    """Finds the labelled images of a folder.

    Args:
        data_dir: a folder in one of the layouts in this module's docstring.
        name: the dataset's name; defaults to the folder's name.

    Returns:
        A :class:`Dataset`; a folder without split folders is the single split ``all``.

    Raises:
        UserError: a missing or empty folder, one class only, or a split with a class
            that train does not have.
    """
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise UserError(f"data folder not found: {data_dir}")
    split_dirs = {SPLIT_NAMES[n.lower()]: os.path.join(data_dir, n) for n in sorted(os.listdir(data_dir))
                  if n.lower() in SPLIT_NAMES and os.path.isdir(os.path.join(data_dir, n))}
    scanned = {split: _scan_split(path) for split, path in split_dirs.items()} or {"all": _scan_split(data_dir)}
    scanned = {split: classes for split, classes in scanned.items() if classes}
    if not scanned:
        raise UserError(f"no images found in {data_dir} (expected class folders of "
                        f"{'/'.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)} files)")
    first = "train" if "train" in scanned else next(iter(scanned))
    class_names = sorted(scanned[first])
    if len(class_names) < 2:
        raise UserError(f"{data_dir} has one class only ({class_names[0]}); classification needs two or more")
    for split, classes in scanned.items():
        unknown = sorted(set(classes) - set(class_names))
        if unknown:
            raise UserError(f"split {split!r} of {data_dir} has classes that {first} lacks: {', '.join(unknown)}")
    splits = {split: [(path, class_names.index(c)) for c in sorted(classes) for path in classes[c]]
              for split, classes in scanned.items()}
    name = name or os.path.basename(os.path.normpath(data_dir)) or "data"
    return Dataset(name, class_names, splits)


def _stratified(items, fractions, seed):
    """Splits ``(path, label)`` items per class in the given fractions, deterministically."""
    by_class = {}
    for item in sorted(items):
        by_class.setdefault(item[1], []).append(item)
    parts = [[] for _ in fractions]
    for label in sorted(by_class):
        group = by_class[label]
        random.Random(f"{seed}-{label}").shuffle(group)
        start = 0
        for i, fraction in enumerate(fractions):
            end = len(group) if i == len(fractions) - 1 else start + int(round(fraction * len(group)))
            parts[i].extend(group[start:end])
            start = end
    return parts


def split(dataset, seed=0, need=("train", "valid", "test")):
    """Gives ``dataset`` the splits in ``need``, keeping the folder's own split where it has one.

    A dataset with one split (``all`` or ``train`` only) is split 70/15/15, stratified by
    class and seeded; one with ``train`` and ``test`` but no ``valid`` (Kaggle Fruits) gives
    15 % of train to valid and keeps its test; a missing test split is cut from valid, half and half.
    """
    splits = dict(dataset.splits)
    if "train" not in splits and "all" not in splits:
        raise UserError(f"{dataset.name} has {' and '.join(sorted(splits))} folders but no train folder; add "
                        "train/<class>/ images, or put the class folders at the top to have them split")
    given = set(splits) & set(need)  # the folder's own splits; the others are cut here
    if "valid" in need and "valid" not in splits:
        source = splits.pop("all", None) or splits.pop("train")
        cut_test = "test" in need and "test" not in splits  # a folder's own test split is kept as given
        fractions = (0.70, 0.15, 0.15) if cut_test else (0.85, 0.15)
        parts = _stratified(source, fractions, seed)
        splits.update(zip(("train", "valid", "test"), parts))
    if "test" in need and "test" not in splits:
        splits["valid"], splits["test"] = _stratified(splits["valid"], (0.5, 0.5), seed)
    splits = {s: splits[s] for s in need}
    for name, items in splits.items():
        if not items:
            raise UserError(f"the {name} split of {dataset.name} is empty")
    _check_every_class_in_every_split(dataset, splits, given)
    return Dataset(dataset.name, dataset.class_names, splits)


def _check_every_class_in_every_split(dataset, splits, given):
    """A class absent from a split cut here (too few images) is an error; from a folder's own split, a warning."""
    present = {name: {label for _, label in items} for name, items in splits.items()}
    for label, class_name in enumerate(dataset.class_names):
        missing = [name for name in splits if label not in present[name]]
        if not missing:
            continue
        total = sum(1 for items in dataset.splits.values() for _, y in items if y == label)
        if "train" in missing or set(missing) - given:
            raise UserError(f"class {class_name!r} of {dataset.name} has {total} image{'s' if total != 1 else ''}: "
                            f"too few to give the {' and '.join(missing)} split{'s' if len(missing) > 1 else ''} "
                            "one (add images, or give the folder its own train/valid/test split)")
        _log.warning(f"class {class_name!r} has no images in the {' and '.join(missing)} split of {dataset.name}; "
                     "its accuracy there cannot be measured")


def subsample(dataset, limits, seed=0):
    """Keeps at most ``limits[split]`` images per class in each split (None keeps all)."""
    splits = {}
    for name, items in dataset.splits.items():
        limit = limits.get(name)
        if limit is None:
            splits[name] = items
            continue
        kept = []
        for label in range(len(dataset.class_names)):
            group = sorted(item for item in items if item[1] == label)
            random.Random(f"{seed}-{name}-{label}").shuffle(group)
            kept.extend(sorted(group[:limit]))
        splits[name] = kept
    return Dataset(dataset.name, dataset.class_names, splits)
