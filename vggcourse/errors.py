"""The course's own errors, which the command line reports in one line.

Everything the course checks itself raises one of these, with a message in
Keras' style: the argument, what was expected, what was received. Any other
exception comes from somewhere else (TensorFlow, the operating system, a bug)
and keeps its traceback.
"""

__all__ = ["CourseError", "InvalidArgument", "TrainingDiverged"]


class CourseError(Exception):
    """An error that the course detected and explained itself."""


class InvalidArgument(CourseError, ValueError, TypeError):
    """An argument of the wrong type or value, refused before any work.

    It is both a ``ValueError`` and a ``TypeError``, so code that caught
    either before still catches it, whatever the mistake was.
    """


class TrainingDiverged(CourseError, ArithmeticError):
    """The training loss stopped being a finite number; nothing of the failing epoch was saved."""
