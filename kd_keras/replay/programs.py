"""Compile once, train many: one compiled student program per shape, reset for every run of that shape.

The teacher's targets are data, not code: true labels, the teacher's hard labels and its soft
probabilities are each just a target array of the same shape for the same student
(:func:`kd_keras.distill.offline_targets`). So one Distiller training on given targets, with its
train, eval and predict steps traced and compiled once, serves the three students and every
generation of both chains of a seed, and every seed after it.

What a run must not inherit from the one before is reset explicitly by :meth:`Program.start`:
its initial weights (those a fresh student drawn with the run's seed would have), the optimizer's
state (the step counter, Adam's moments), and the augmentation's random streams (those of the
run's data seed). The :class:`Programs` that holds them is made by the replay and passed down;
nothing outlives the replay.

Examples:
    >>> programs = Programs()
    >>> program = programs.student(exp, (64, 64, 3), num_classes=2)  # doctest: +SKIP
    >>> program.start(exp, run_seed=7, data_seed=7).distiller.fit(train, epochs=9)  # doctest: +SKIP
"""

import keras

from kd_keras import input_pipeline, user_models
from kd_keras.distill import Distiller
from kd_keras.replay.experiment import adam


class Program:
    """A network, its Distiller (Adam, the augmentation inside the step) and its augmented predictor.

    Args:
        exp: the :class:`~kd_keras.replay.experiment.Experiment` (its scope).
        build: ``build()`` makes the network afresh, drawing its initial weights from Keras's seed.
        num_classes: K (2: one sigmoid unit).
        lr, decay, shift: Adam's learning rate and legacy decay, the augmentation's shift.
        model: the network of the first run, when it is built already (``build()`` otherwise).

    Attributes:
        model: the network; each run's best weights are loaded into it at the run's end.
        distiller: the compiled :class:`~kd_keras.distill.Distiller` (``mode="soft"``, on each run's
            :func:`~kd_keras.distill.offline_targets`).
        preprocessing: the augmentation and /255 layers inside its step.
        predictor: the network behind the training augmentation, for the augmented test draws.
    """

    def __init__(self, exp, build, num_classes, lr, decay, shift, model=None):
        self.build, self.num_classes, self.shift = build, num_classes, shift
        with exp.scope():
            self.model = model if model is not None else build()
            self.preprocessing = input_pipeline.preprocessing(flip=True, shift=shift, seed=0)
            self.distiller = Distiller(self.model, mode="soft", preprocessing=self.preprocessing)
            self.distiller.compile(adam(lr, decay))
            self.distiller.optimizer.build(self.model.trainable_variables)
        self._initial_optimizer = [keras.ops.convert_to_numpy(v) for v in self.distiller.optimizer.variables]
        self.predictor = input_pipeline.augmented_predictor(self.model, self.preprocessing)
        self.runs = 0

    def start(self, exp, run_seed, data_seed):
        """Resets the program for a new run, as if it were built afresh for it.

        Args:
            run_seed: draws the network's initial weights (those a fresh one drawn with it has). The
                program's first run keeps the network it was made with (drawn with that run's seed).
            data_seed: seeds the augmentation's streams (as :func:`kd_keras.input_pipeline.preprocessing`).
        """
        if self.runs:
            keras.utils.set_random_seed(run_seed)
            with exp.scope():
                fresh = self.build()  # built, never traced: its initial weights and random states are used
            for variable, value in zip(self.model.variables, fresh.variables):
                variable.assign(value.value)
            for variable, value in zip(self.distiller.optimizer.variables, self._initial_optimizer):
                variable.assign(value)
        streams = input_pipeline.preprocessing(flip=True, shift=self.shift, seed=data_seed)
        for layer, seeded in zip(self.preprocessing.layers, streams.layers):
            if hasattr(layer, "generator"):
                layer.generator.state.assign(seeded.generator.state.value)
        self.runs += 1
        return self


class Programs:
    """The compiled student programs of one replay, one per shape, made on first use.

    The shape is everything a compiled step depends on: the student, its input shape and
    classes, the batch size, the precision policy, and the optimizer's settings.
    """

    def __init__(self):
        self._programs = {}

    def student(self, exp, shape, num_classes):
        """The program for ``exp``'s student at ``shape`` and ``num_classes``, made the first time it is asked for.

        Made, it holds a student drawn with Keras's seed of the moment: the first run's, set by
        :func:`~kd_keras.replay.experiment.start_run`.
        """
        p = exp.preset
        key = (exp.student, tuple(shape), num_classes, p.batch_size, keras.mixed_precision.dtype_policy().name,
               p.student_lr, p.student_decay, p.student_shift, p.student_bn_momentum, id(exp.strategy))
        if key not in self._programs:
            def build():
                return user_models.student_model(exp.student, tuple(shape), num_classes, p.student_bn_momentum)

            self._programs[key] = Program(exp, build, num_classes, p.student_lr, p.student_decay, p.student_shift)
        return self._programs[key]

    def __len__(self):
        return len(self._programs)
