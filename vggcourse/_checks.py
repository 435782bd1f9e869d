"""Argument checks in Keras' style, shared by the package's modules.

Each check names the argument, says what was expected and ends with what was
received. It raises ``InvalidArgument`` for a wrong type and a wrong value
alike, and returns the value in its plain Python type (a NumPy integer comes
back as an ``int``).
"""

import numbers
import os

import numpy as np

from vggcourse.errors import InvalidArgument


def _received(name, value):
    return f"Received: {name}={value!r} of type {type(value).__name__}"


def check_int(name, value, minimum=1, maximum=None, allow_none=False):
    """Returns ``value`` as an ``int`` if it is an integer in ``[minimum, maximum]``."""
    if value is None and allow_none:
        return None
    expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if maximum is not None:
        expected = f"an integer in [{minimum}, {maximum}]"
    if allow_none:
        expected += " or None"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgument(f"Expected `{name}` to be {expected}. {_received(name, value)}")
    if value < minimum or (maximum is not None and value > maximum):
        raise InvalidArgument(f"Expected `{name}` to be {expected}. Received: {name}={value!r}")
    return int(value)


def check_float(name, value, low, high, low_inclusive=False, high_inclusive=False):
    """Returns ``value`` as a ``float`` if it is a real number between ``low`` and ``high``.

    The bounds are excluded unless ``low_inclusive`` or ``high_inclusive``.
    """
    expected = f"a float in {'[' if low_inclusive else '('}{low}, {high}{']' if high_inclusive else ')'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgument(f"Expected `{name}` to be {expected}. {_received(name, value)}")
    above_low = low <= value if low_inclusive else low < value
    below_high = value <= high if high_inclusive else value < high
    if not (above_low and below_high):
        raise InvalidArgument(f"Expected `{name}` to be {expected}. Received: {name}={value!r}")
    return float(value)


def check_bool(name, value):
    """Returns ``value`` if it is True or False (a NumPy bool comes back as a ``bool``)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgument(f"Expected `{name}` to be True or False. {_received(name, value)}")
    return bool(value)


def check_choice(name, value, choices):
    """Returns ``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidArgument(
            f"Expected `{name}` to be one of {', '.join(map(repr, choices))}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_name(name, value):
    """Returns ``value`` if it is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"Expected `{name}` to be a non-empty string. Received: {name}={value!r}")
    return value


def check_path(name, value, allow_none=False):
    """Returns ``value`` as a ``str`` if it is a path (``str`` or ``os.PathLike``)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        expected = "a path (str or os.PathLike)" + (" or None" if allow_none else "")
        raise InvalidArgument(f"Expected `{name}` to be {expected}. {_received(name, value)}")
    return os.fspath(value)


def check_shape(name, shape, *, ranks=None, example=(224, 224, 3), batch_axis=False):
    """Returns ``shape`` as a tuple of ``int`` if every size in it is a positive integer.

    Args:
        name: the argument's name, for the message.
        shape: a sequence of sizes.
        ranks: the allowed lengths, counting a batch axis; any length if None.
        example: a valid shape, shown in the message.
        batch_axis: drop the first size if it is None (a batch of any size).
    """
    expected = f"Expected `{name}` to be a tuple of positive integers, such as {example}"
    if batch_axis:
        expected += ", with an optional leading batch size (None for any)"
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__"):
        raise InvalidArgument(f"{expected}. Received: {name}={shape!r}")
    shape = tuple(shape)
    if ranks is not None and len(shape) not in ranks:
        lengths = " or ".join(map(str, ranks))
        raise InvalidArgument(f"{expected}, of length {lengths}. Received: {name}={shape}")
    sizes = shape[1:] if batch_axis and shape and shape[0] is None else shape
    if not sizes or any(
        isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1 for size in sizes
    ):
        raise InvalidArgument(f"{expected}. Received: {name}={shape}")
    return tuple(int(size) for size in sizes)


def check_labels(name, labels, num_classes):
    """Returns ``labels`` as a 1D integer NumPy array if every label is a class in ``[0, num_classes)``."""
    labels = np.asarray(labels)
    expected = f"Expected `{name}` to be integer class labels in [0, {num_classes})"
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InvalidArgument(f"{expected}. Received: {name} of shape {labels.shape} and dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise InvalidArgument(f"{expected}. Received: {name} with values from {labels.min()} to {labels.max()}")
    return labels
