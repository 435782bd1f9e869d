"""The training loop's own Keras callbacks: exact resume, throughput, and a stop on divergence.

``train_vgg`` adds all three to every run, with ``vggcourse.backup.SafeBackup``.
"""

import math
import time

import keras
import numpy as np

from vggcourse.errors import TrainingDiverged
from vggcourse.models import leaf_layers

__all__ = ["EpochSeeds", "StopOnNaN", "Throughput"]


class EpochSeeds(keras.callbacks.Callback):
    """Makes each epoch's randomness a function of ``(seed, epoch)``.

    At the start of every epoch it stores the epoch number in the variable
    that ``make_dataset(shuffle=True, epoch=...)`` reads to shuffle, and
    re-seeds every Dropout layer. A backup (``vggcourse.backup.SafeBackup``,
    like Keras' ``BackupAndRestore``) restores weights, optimizer state and
    the epoch counter, but neither of these random
    states; with this callback a resumed run replays nothing and skips
    nothing, and ends bit-identical to an uninterrupted one (given
    ``tf.config.experimental.enable_op_determinism()``).

    Args:
        epoch_variable: the ``tf.Variable`` given to ``make_dataset``.
        seed: an integer.
    """

    def __init__(self, epoch_variable, seed):
        super().__init__()
        self.epoch_variable = epoch_variable
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_variable.assign(epoch)
        dropouts = [
            layer
            for layer in leaf_layers(self.model)
            if getattr(layer, "seed_generator", None) is not None
        ]
        for i, layer in enumerate(dropouts):
            # SeedSequence turns (seed, epoch, layer) into a well-mixed seed.
            (state,) = np.random.SeedSequence([self.seed, epoch, i]).generate_state(1)
            layer.seed_generator.state.assign(np.array([state, 0], dtype=np.int64))


class Throughput(keras.callbacks.Callback):
    """Measures training examples per second, epoch by epoch.

    Each epoch's figure, ``examples_per_second``, appears in the logs and so in
    the history. The time runs from the start of the epoch to the end of its
    training steps; validation is left out. The ``examples_per_second``
    attribute averages all epochs but the first, whose time includes tracing
    and compiling the training step.

    Args:
        examples_per_epoch: training examples in one epoch.
    """

    def __init__(self, examples_per_epoch):
        super().__init__()
        self.examples_per_epoch = examples_per_epoch
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._train_end = None

    def on_test_begin(self, logs=None):
        if self._train_end is None:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        end = self._train_end if self._train_end is not None else time.perf_counter()
        self.seconds.append(end - self._start)
        if logs is not None:
            logs["examples_per_second"] = self.examples_per_epoch / self.seconds[-1]

    @property
    def examples_per_second(self):
        """Mean over the epochs after the first, or None if there was only one."""
        if len(self.seconds) < 2:
            return None
        return self.examples_per_epoch * (len(self.seconds) - 1) / sum(self.seconds[1:])


class StopOnNaN(keras.callbacks.Callback):
    """Stops a run as soon as its loss is no longer a finite number, by raising ``TrainingDiverged``.

    Keras' ``TerminateOnNaN`` only asks the run to stop: the epoch then ends,
    and every callback that saves at the end of an epoch (a backup, a
    checkpoint) saves the broken weights, and the run looks like a success.
    Raising ends ``fit`` at once, before any of that.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"Training diverged: the loss became {float(loss)} at step {batch + 1} of epoch "
                f"{self.epoch + 1}, and nothing of that epoch was saved"
            )
