"""Test helpers for real runs: the command line as a user runs it, and interruptions from inside a run."""

import keras

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
