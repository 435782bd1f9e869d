"""The course's look, and the figure and axes every plot starts from."""

import matplotlib as mpl
import matplotlib.pyplot as plt

STYLE = {
    "figure.figsize": [8.0, 3.6],
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.alpha": 0.3,
    "font.size": 10,
    "axes.titlesize": 11,
    "legend.frameon": False,
}

# One colour per kind of layer, in every plot of the course.
KIND_COLORS = {
    "Conv2D": "tab:blue",
    "MaxPooling2D": "tab:orange",
    "AveragePooling2D": "tab:orange",
    "Dense": "tab:green",
}
_OTHER_COLOR = "tab:gray"
_MIB = 2**20


def use_style():
    """Makes ``STYLE`` matplotlib's default for the rest of the session.

    Taught in: every chapter calls it once, after its imports. Nothing else
    in the package changes matplotlib's settings; to use the style for a few
    figures only, draw them inside ``with matplotlib.rc_context(STYLE):``.
    """
    mpl.rcParams.update(STYLE)


def _figure(**kwargs):
    """A new figure with the course's size and layout, whatever the global settings."""
    kwargs.setdefault("figsize", STYLE["figure.figsize"])
    return plt.subplots(dpi=STYLE["figure.dpi"], layout="constrained", **kwargs)


def _axes(ax):
    if ax is None:
        _, ax = _figure()
    return ax
