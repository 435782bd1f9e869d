"""Argument checks in Keras' style, shared by the package's modules.

Each check names the argument, says what was expected and ends with what was
received, and returns the value in its plain Python type.
"""

import numbers


def check_int(name, value, minimum=1, allow_none=False):
    """Returns ``value`` as an ``int`` if it is an integer >= ``minimum`` (or None if allowed)."""
    if value is None and allow_none:
        return None
    expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if allow_none:
        expected += " or None"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"Expected `{name}` to be {expected}. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    if value < minimum:
        raise ValueError(f"Expected `{name}` to be {expected}. Received: {name}={value!r}")
    return int(value)


def check_float(name, value, low, high, low_inclusive=False):
    """Returns ``value`` as a ``float`` if it is a real number in (low, high), or [low, high)."""
    expected = f"a float in {'[' if low_inclusive else '('}{low}, {high})"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Expected `{name}` to be {expected}. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    if not (low <= value if low_inclusive else low < value) or not value < high:
        raise ValueError(f"Expected `{name}` to be {expected}. Received: {name}={value!r}")
    return float(value)


def check_choice(name, value, choices):
    """Returns ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(
            f"Expected `{name}` to be one of {', '.join(map(repr, choices))}. "
            f"Received: {name}={value!r}"
        )
    return value
