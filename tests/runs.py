"""Test helpers for real runs: the command line as a user runs it, interruptions from inside a run, and
images that say which they are."""

import keras
import numpy as np

from vggcourse.cli import main


def run_cli(argv):
    """Runs ``python -m vggcourse`` in this process; returns its exit status, argparse's exits included."""
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


class Disconnect(Exception):
    """Stands in for a lost Colab session."""


class InterruptAfterEpoch(keras.callbacks.Callback):
    """Raises ``exception`` at the end of epoch ``epoch`` (0-based), once that epoch is backed up.

    A ``KeyboardInterrupt`` is what Ctrl-C raises; ``Disconnect`` stands in for a lost session.
    """

    def __init__(self, epoch, exception=KeyboardInterrupt):
        super().__init__()
        self.epoch = epoch
        self.exception = exception

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise self.exception(f"lost the session after epoch {epoch + 1}")


def with_callbacks(train_vgg, *extra):
    """``train_vgg`` with ``extra`` callbacks after the caller's, to patch ``vggcourse.train.train_vgg`` with."""

    def patched(config, data, *, callbacks=(), **kwargs):
        return train_vgg(config, data, callbacks=[*callbacks, *extra], **kwargs)

    return patched


def numbered_data(per_class_train=60, per_class_test=10):
    """Fashion-MNIST-shaped data whose images' first two pixels spell a number unique to each.

    Returns ``((x_train, y_train), (x_test, y_test))``, ten classes of equal size; ``image_ids`` reads
    the numbers back, so that an image that lands in two places is found.
    """
    def make(per_class, offset):
        labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
        index = np.arange(len(labels)) + offset
        images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
        images[:, 0, 0], images[:, 0, 1] = index // 256, index % 256
        return images, labels

    return make(per_class_train, 0), make(per_class_test, 10_000)


def image_ids(images):
    """The numbers that ``numbered_data`` wrote into ``images``, as a set."""
    return set((images[:, 0, 0].astype(int) * 256 + images[:, 0, 1]).tolist())
