"""Numbers that a chapter computes, handed to its prose.

A chapter computes a number in a cell and calls ``glue("name", value)``; its
Markdown then writes ``{glue:text}`name:,.0f``` where the number belongs. The
book shows the value stored in the cell's output, and ``pytest --nbval``
compares that output with a fresh run, so the prose cannot drift from the code.
"""

import numpy as np

from vggcourse.errors import InvalidArgument

__all__ = ["glue"]

# myst-nb's marker for a value stored for the prose but not shown in the cell.
_RECORD = "application/papermill.record/"


def glue(name, value):
    """Stores ``value`` under ``name`` for the chapter's prose, without showing it.

    With myst-nb installed (building the book, running its tests) this is
    ``myst_nb.glue(name, value, display=False)``. Without it, as in Colab, the
    same record is written, so a chapter runs anywhere.

    Args:
        name: the key the prose uses, ``{glue:text}`name```: letters, digits
            and underscores.
        value: the value; the prose shows its plain-text form, formatted by
            the role's format spec (``name:,.0f``, ``name:.1%``). NumPy
            scalars are stored as the Python numbers they hold, which the
            format specs understand.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidArgument(
            "Expected `name` to be a string of letters, digits and underscores, "
            f"such as 'vgg16_params'. Received: name={name!r}"
        )
    if isinstance(value, np.generic):
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        from IPython.core.formatters import format_display_data
        from IPython.display import display

        bundle, metadata = format_display_data(value)
        metadata["scrapbook"] = {"name": name, "mime_prefix": _RECORD}
        display({_RECORD + key: data for key, data in bundle.items()}, raw=True, metadata=metadata)
    else:
        myst_glue(name, value, display=False)
