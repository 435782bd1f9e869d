"""Import TensorFlow without its start-up banner.

TensorFlow writes "All log messages before absl::InitializeLog() ..." and a
oneDNN notice straight to file descriptor 2 while it is imported, before any
Python logging exists. ``TF_CPP_MIN_LOG_LEVEL`` does not stop them, and
``TF_ENABLE_ONEDNN_OPTS=0`` does but halves CPU training speed. So the import
runs with descriptor 2 pointed at /dev/null, and the descriptor is restored
afterwards: errors raised later still reach the user.
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def stderr_to_devnull():
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # No real descriptor 2, nothing to silence.
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def import_tensorflow():
    """Returns the ``tensorflow`` module, imported without its banner."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    # Level 2 hides INFO and WARNING from TensorFlow's C++ core for the whole
    # session; errors still show. A user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_to_devnull():
        # Keras 3 picks its backend on import; import it here too so that its
        # first use does not trigger more C++ start-up logging.
        import keras  # noqa: F401
        import tensorflow
    return tensorflow


@contextlib.contextmanager
def fresh_models():
    """Silences TensorFlow's retracing warning while code trains one fresh model after another.

    Each new Keras model traces its own training step, which is what an
    experiment that compares starting points or heads is meant to do; after
    five such traces TensorFlow warns about "retracing" in general.
    """
    import logging

    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
