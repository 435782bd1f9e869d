"""How VGG was trained, and what came after (chapter "How VGG was trained, and what came after")."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vggcourse.errors import InvalidArgument
from vggcourse.plots._base import _axes, _figure
from vggcourse.plots.training import _class_names

__all__ = [
    "plot_accuracy_vs_macs",
    "plot_activation_scales",
    "plot_budget_curves",
    "plot_first_steps",
    "plot_score_map",
]


def _check_frame(name, value, columns=()):
    if not isinstance(value, pd.DataFrame) or value.empty:
        raise InvalidArgument(
            f"Expected `{name}` to be a non-empty pandas DataFrame. Received: {name} of type {type(value).__name__}"
        )
    missing = [column for column in columns if column not in value.columns]
    if missing:
        raise InvalidArgument(
            f"Expected `{name}` to have the columns {list(columns)}. "
            f"Received: columns {list(value.columns)}"
        )
    return value


def plot_activation_scales(scales, *, ax=None):
    """The spread of each layer's output at initialisation, one line per start.

    Args:
        scales: a ``pandas.DataFrame`` indexed by layer name, in network
            order, with one column per starting point (as
            ``vggcourse.initialization.activation_scales`` returns one
            ``Series``).
        ax: draw on this matplotlib ``Axes``; by default a new figure.

    Returns:
        The ``Axes``, with a logarithmic y axis.
    """
    scales = _check_frame("scales", scales)
    ax = _axes(ax)
    x = np.arange(len(scales))
    for column in scales.columns:
        values = scales[column].to_numpy(dtype=float)
        # A scale of exactly 0 (underflow) cannot be drawn on a log axis.
        shown = np.where(values > 0, values, np.nan)
        ax.plot(x, shown, marker="o", markersize=3, label=column)
    ax.set_yscale("log")
    ax.set_xticks(x, scales.index, rotation=90, fontsize=8)
    ax.set_ylabel("std of the layer's output")
    ax.set_title("Scale of the activations at initialisation")
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_first_steps(losses, *, ax=None, ylim=(0.0, 4.0)):
    """The training loss of the first steps from each start, with the plateau at ln 10.

    Args:
        losses: a mapping from a start's label to a ``pandas.Series`` of
            losses indexed by step (``vggcourse.initialization.first_steps``).
            A run that diverged is shorter: a cross marks its last finite
            loss, at the top of the axis if the loss is above it, and the
            legend gives that loss and the step at which it diverged.
        ax: draw on this matplotlib ``Axes``; by default a new figure.
        ylim: the range of the loss axis.

    Returns:
        The ``Axes``.
    """
    if not isinstance(losses, dict) or not losses:
        raise InvalidArgument(
            "Expected `losses` to be a non-empty dict of pandas Series, one per start. "
            f"Received: losses of type {type(losses).__name__}"
        )
    ax = _axes(ax)
    longest = max(len(series) for series in losses.values())
    for label, series in losses.items():
        (line,) = ax.plot(series.index, series.to_numpy(), linewidth=1.2, label=label)
        if len(series) < longest:
            last = series.iloc[-1] if len(series) else math.nan
            y = min(max(last, ylim[0]), ylim[1] * 0.97)
            ax.plot(series.index[-1] if len(series) else 1, y, "x", color=line.get_color(), markersize=9)
            line.set_label(f"{label} (loss {last:.0e} at step {len(series)}, then diverged)")
    ax.axhline(math.log(10), color="black", linestyle="--", linewidth=0.8)
    ax.annotate("ln 10: a uniform guess", (longest, math.log(10)), textcoords="offset points",
                xytext=(-4, 4), ha="right", fontsize=8)
    ax.set_ylim(*ylim)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss")
    ax.set_title("The first training steps of VGG-16 from each start")
    ax.legend(fontsize=8, loc="lower left")
    return ax


def plot_budget_curves(runs, *, ax=None):
    """Validation accuracy against training time, one line per network.

    Args:
        runs: a mapping from a label to a ``vggcourse.budget.BudgetRun``.
        ax: draw on this matplotlib ``Axes``; by default a new figure.

    Returns:
        The ``Axes``.
    """
    if not isinstance(runs, dict) or not runs:
        raise InvalidArgument(
            f"Expected `runs` to be a non-empty dict of BudgetRun objects. Received: runs of type {type(runs).__name__}"
        )
    ax = _axes(ax)
    for label, run in runs.items():
        curve = run.curve
        ax.plot(curve["seconds"] / 60, curve["val_accuracy"], marker="o", markersize=4,
                label=f"{label}: {run.params:,} parameters")
    ax.set_xlim(left=0)
    ax.set_xlabel("minutes of training (a point at the end of each epoch and of the budget)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Two heads on the same time budget")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_score_map(image, score_map, *, window, labels=None, class_names=None):
    """An image divided into the windows of a fully convolutional network, each with its top class.

    Args:
        image: a 2D grey image of shape ``(height, width)``.
        score_map: the network's class scores for it, of shape ``(h, w,
            num_classes)``; position ``(i, j)`` is drawn over the window
            that starts ``window`` pixels times ``(i, j)`` into the image.
        window: the stride of the map in pixels of ``image``.
        labels: optional true class of each window, of shape ``(h, w)``;
            a wrong top class is then shown in red.
        class_names: names of the classes; Fashion-MNIST's by default.

    Returns:
        The ``Figure``.
    """
    image = np.asarray(image, dtype=float)
    score_map = np.asarray(score_map, dtype=float)
    if image.ndim != 2 or score_map.ndim != 3:
        raise InvalidArgument(
            "Expected `image` of shape (height, width) and `score_map` of shape (h, w, num_classes). "
            f"Received: image of shape {image.shape}, score_map of shape {score_map.shape}"
        )
    names = _class_names(class_names)
    rows, cols, _ = score_map.shape
    fig, ax = _figure(figsize=(1.9 * cols + 0.4, 1.9 * rows + 0.4))
    ax.imshow(image, cmap="gray_r")
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])
    top = score_map.argmax(axis=-1)
    for i in range(rows):
        for j in range(cols):
            ax.add_patch(plt.Rectangle((j * window - 0.5, i * window - 0.5), window, window, fill=False,
                                       edgecolor="tab:blue", linewidth=1))
            wrong = labels is not None and int(np.asarray(labels)[i, j]) != top[i, j]
            ax.text(j * window + 1, i * window + 1, names[top[i, j]], fontsize=8, va="top",
                    color="white", backgroundcolor="tab:red" if wrong else "tab:blue")
    return fig


def plot_accuracy_vs_macs(table, *, ax=None):
    """ImageNet top-1 accuracy against multiply-accumulates, one point per network.

    Args:
        table: a ``pandas.DataFrame`` indexed by network name with the
            columns ``macs``, ``params`` and ``top1`` (a fraction); the
            area of each point grows with its parameters.
        ax: draw on this matplotlib ``Axes``; by default a new figure.

    Returns:
        The ``Axes``, with a logarithmic x axis.
    """
    table = _check_frame("table", table, ("macs", "params", "top1"))
    ax = _axes(ax)
    sizes = 600 * table["params"] / table["params"].max()
    ax.scatter(table["macs"] / 1e9, table["top1"] * 100, s=sizes, alpha=0.5, color="tab:blue", edgecolor="tab:blue")
    for name, row in table.iterrows():
        ax.annotate(f"{name}\n{row['params'] / 1e6:.1f}M parameters", (row["macs"] / 1e9, row["top1"] * 100),
                    textcoords="offset points", xytext=(0, 14), ha="center", fontsize=8)
    ax.set_xscale("log")
    low, high = table["top1"].min() * 100, table["top1"].max() * 100
    ax.set_ylim(low - 2, high + 3)
    ax.set_xlim(table["macs"].min() / 1e9 / 2.5, table["macs"].max() / 1e9 * 2.5)
    ax.set_xlabel("multiply-accumulates per 224×224 image (billions, log scale)")
    ax.set_ylabel("ImageNet top-1 accuracy (%)")
    ax.set_title("Accuracy against cost")
    return ax
