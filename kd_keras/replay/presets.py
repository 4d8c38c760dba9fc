"""Run presets: plain dataclasses with flat fields.

- ``paper``: every setting of the papers (a GPU job: 17,500 images, 100 epochs).
- ``cpu``: a reduced replay for a 2-core CPU without GPU; see the README for its minutes.
- ``gpu``: the whole shared Dogs vs. Cats set at 224 px on one GPU (JAX), sized by ``--budget-minutes``.
- ``demo``: ``make demo``, the whole pipeline learning on synthetic data in about 3 minutes.
- ``smoke``: the same pipeline in seconds to minutes, for tests.

Any field can be changed for one command with ``--set FIELD=VALUE`` (:func:`override`).

Examples:
    >>> from kd_keras.replay import presets
    >>> presets.get("cpu").student_epochs
    9
    >>> presets.override(presets.get("cpu"), ["student_epochs=3", "student_lr=1e-3"]).student_lr
    0.001
"""

import dataclasses
import typing

from kd_keras.errors import UserError


@dataclasses.dataclass(frozen=True)
class Preset:
    """All settings of one scale. ``None`` as a per-class limit keeps every image."""

    name: str
    image_size: int = 224
    train_per_class: int | None = None
    valid_per_class: int | None = None
    test_per_class: int | None = None
    batch_size: int = 32
    estimate_before_run: bool = True  # `kd-keras reproduce` prints its plan and a measured estimate first
    # "bfloat16" on GPUs (the gpu preset); on a CPU it changes the numbers for little: 1.1-1.2x float32's
    # training rate on a 2-core Xeon with bfloat16 instructions (docs/report/benchmarks.md)
    mixed_precision: str = "off"
    # Teacher: ResNet-50, Adam 1e-3 with legacy decay 0.01, flips, 25 epochs.
    teacher_backbone: str = "resnet50"
    teacher_image_size: int | None = None  # None: image_size, as the paper
    teacher_epochs: int = 25
    teacher_lr: float = 1e-3
    teacher_decay: float = 0.01
    teacher_fine_tune: bool = False
    # Students and chains: ResNet-18, Adam 1e-4, no decay, flips + 0.4 shifts, 100 epochs.
    student_epochs: int = 100
    student_lr: float = 1e-4
    student_decay: float = 0.0
    student_shift: float = 0.4
    student_bn_momentum: float = 0.99  # Keras's default, the paper's; the ResNet-18 students' batch norms
    augmented_evaluations: int = 5
    generations: int = 6
    # Timing (section 4.1): per-image latency at batch size 1.
    timing_images: int = 3750
    timing_size: int = 224
    # Loss study (paper A); the thesis gives none of these: documented assumptions.
    loss_backbone: str = "resnet50"
    loss_image_size: int = 224
    loss_epochs: int = 10
    loss_lr: float = 1e-4
    loss_batch_size: int = 32
    loss_fine_tune: bool = True
    loss_train_per_class: int | None = None
    loss_valid_per_class: int | None = None


PRESETS = {
    "paper": Preset("paper"),
    # About 50 minutes per seed on 2 cores (docs/report/benchmarks.md): an EfficientNet-Lite0 teacher with ImageNet weights
    # (offline) on 224 px features, students and chains at 64 px (benchmarks/student_budget.py).
    "cpu": Preset(
        "cpu", image_size=64, train_per_class=1000, valid_per_class=150, test_per_class=500,
        teacher_backbone="efficientnet-lite0", teacher_image_size=224, teacher_epochs=25,
        student_epochs=9, augmented_evaluations=5, timing_images=100,
        loss_backbone="efficientnet-lite0", loss_image_size=224, loss_epochs=30, loss_lr=1e-3,
        loss_fine_tune=False,
    ),
    # Paper B at full data on one GPU, on Keras's JAX backend: every shared Dogs vs. Cats image
    # (7,600 train), students at 224 px as the paper, bfloat16, XLA; meant to run with
    # --budget-minutes, which replaces the 20 epochs by as many as fit the slot. Batch 256 keeps a
    # GPU of the H100/H200 class busy (a ResNet-18 step on 32 images is too small to fill it), and
    # Adam's learning rate goes with the square root of the batch (Malladi et al. 2022, the scaling
    # rule for adaptive methods): 1e-4 x sqrt(256 / 32), about 3e-4.
    "gpu": Preset(
        "gpu", image_size=224, teacher_backbone="efficientnet-lite0", batch_size=256, student_lr=3e-4,
        student_epochs=20, augmented_evaluations=5, timing_images=300, mixed_precision="bfloat16",
        loss_backbone="efficientnet-lite0", loss_epochs=30, loss_lr=1e-3, loss_fine_tune=False,
    ),
    # `make demo`: the whole pipeline seen learning in about 3 minutes on 2 CPU cores, offline, on the
    # synthetic stripes: the Lite0 teacher's head on 64 px ImageNet features, students and both chains
    # of 3 at 32 px (280 training images, 3 epochs each in batches of 8, Adam 1e-3). A ResNet-18 step
    # costs about the same at 8 or 32 images here (per-op overhead): steps, not images, set the time,
    # and a student needs about 100 of them to hand its chain accurate, confident targets. With 36
    # steps (batches of 32, 4 epochs) the soft chain faded to chance by generation 5 (0.65, 0.52, 0.50)
    # and with 54 (batches of 16) the hard chain too; so the demo keeps 105 steps a student and runs 3
    # generations of each chain instead of the paper's 6. The students' batch norms use momentum 0.9:
    # with Keras's 0.99 their moving statistics still carried a quarter of their initial values after
    # 140 steps, one hard generation stayed at chance in inference mode while it trained to 1.0, and the
    # rest of its chain learned its one-class labels. At Adam 1e-4 the soft chain faded (0.73, 0.62 after
    # two generations): each generation fitted its teacher's probabilities too loosely.
    "demo": Preset(
        "demo", image_size=32, batch_size=8, estimate_before_run=False, teacher_backbone="efficientnet-lite0",
        teacher_image_size=64, teacher_epochs=10, student_epochs=3, student_lr=1e-3, student_bn_momentum=0.9,
        augmented_evaluations=2, generations=3, timing_images=20, timing_size=64, loss_backbone="efficientnet-lite0",
        loss_image_size=64, loss_epochs=10, loss_lr=1e-3, loss_fine_tune=False,
    ),
    "smoke": Preset(
        "smoke", image_size=32, train_per_class=24, valid_per_class=8, test_per_class=8,
        batch_size=16, estimate_before_run=False, teacher_backbone="efficientnet-lite0", teacher_epochs=2, student_epochs=2, augmented_evaluations=2,
        timing_images=3, timing_size=64, loss_image_size=32, loss_epochs=2, loss_lr=1e-3,
        loss_fine_tune=False, loss_train_per_class=20, loss_valid_per_class=10,
    ),
}


def get(name):
    """The preset called ``name``; a :class:`UserError` names the choices otherwise."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def _field_type(field):
    """``(type, optional)`` of a preset field: ``int | None`` is ``(int, True)``."""
    kind = field.type
    if isinstance(kind, type):
        return kind, False
    args = typing.get_args(kind)
    return next(a for a in args if a is not type(None)), type(None) in args


def _parse(field, text):
    """``text`` as a value of ``field``'s type (``none`` for an optional one)."""
    kind, optional = _field_type(field)
    if optional and text.lower() == "none":
        return None
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError("true or false")
        return text.lower() in ("true", "1", "yes")
    value = kind(text)
    if kind in (int, float) and not (value == value and abs(value) != float("inf")):
        raise ValueError("a finite number")
    return value


def _type_name(field):
    kind, optional = _field_type(field)
    return kind.__name__ + (" or none" if optional else "")


def override(preset, assignments):
    """``preset`` with ``FIELD=VALUE`` assignments applied (``--set``), each checked against the field's type.

    Args:
        preset: a :class:`Preset`.
        assignments: strings such as ``"student_epochs=3"``, ``"train_per_class=none"``.

    Raises:
        UserError: an unknown field, a malformed assignment, a value of the wrong type, or the name.
    """
    fields = {f.name: f for f in dataclasses.fields(Preset)}
    changes = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise UserError(f"--set {assignment!r}: give FIELD=VALUE, e.g. --set student_epochs=3")
        if name not in fields or name == "name":
            raise UserError(f"--set {assignment!r}: no preset field {name!r}; the fields are "
                            f"{', '.join(f for f in fields if f != 'name')}")
        try:
            changes[name] = _parse(fields[name], text.strip())
        except ValueError as exc:
            raise UserError(f"--set {assignment!r}: {name} takes {_type_name(fields[name])}"
                            f"{f' ({exc})' if str(exc) in ('true or false', 'a finite number') else ''}") from None
    return dataclasses.replace(preset, **changes)
