"""Training: examples, learning curves, the recipe's ablation and errors.

Taught in: *Training VGG (on a GPU, or a CPU)*.
"""

import numpy as np

from vggcourse._checks import check_int, check_labels
from vggcourse.errors import InvalidArgument
from vggcourse.plots._base import _figure

__all__ = [
    "plot_ablation",
    "plot_confusion_matrix",
    "plot_history",
    "show_images",
]


def _class_names(class_names):
    if class_names is None:
        from vggcourse.data import CLASS_NAMES

        return CLASS_NAMES
    return tuple(class_names)


def show_images(images, labels, *, predictions=None, class_names=None, ncols=8, scale=1.2):
    """Draws a grid of images, each titled with its class.

    Args:
        images: uint8 or float images of shape ``(n, 28, 28)`` or ``(n, 28, 28, 1)``.
        labels: the true class of each image.
        predictions: the predicted class of each image, or None. When given,
            each title reads "predicted (true)", in red where they differ.
        class_names: names indexed by class; Fashion-MNIST's by default.
        ncols: images per row.
        scale: inches per image.

    Returns:
        The matplotlib ``Figure``, with one ``Axes`` per image.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or len(images) == 0 or len(labels) != len(images):
        raise InvalidArgument(
            "Expected `images` of shape (n, height, width) with n >= 1 and one label per image. "
            f"Received: images with shape {images.shape} and {len(labels)} labels"
        )
    ncols = check_int("ncols", ncols)
    names = _class_names(class_names)
    labels = check_labels("labels", labels, len(names))
    if predictions is not None:
        predictions = check_labels("predictions", predictions, len(names))
    ncols = min(ncols, len(images))
    nrows = -(-len(images) // ncols)
    fig, axes = _figure(
        nrows=nrows, ncols=ncols, figsize=(scale * ncols, scale * nrows + 0.3 * nrows), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        ax.imshow(images[i], cmap="gray_r")
        title, color = names[labels[i]], "black"
        if predictions is not None:
            title = f"{names[predictions[i]]}\n({names[labels[i]]})"
            color = "tab:red" if predictions[i] != labels[i] else "black"
        ax.set_title(title, fontsize=7, color=color)
    return fig


def plot_history(history, *, val_label="validation"):
    """Draws the loss and the accuracy per epoch, on training and validation data.

    Args:
        history: a ``keras.callbacks.History`` or its ``.history`` dict, with
            ``loss`` and ``accuracy`` and, optionally, ``val_loss`` and
            ``val_accuracy``.
        val_label: the legend's name for the ``val_`` curves: "test" for a
            run that was evaluated on test images after every epoch.

    Returns:
        The matplotlib ``Figure``, with two ``Axes``: loss, then accuracy.
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not {"loss", "accuracy"} <= set(logs):
        raise InvalidArgument(
            "Expected `history` to be a keras History, or a dict, with 'loss' and 'accuracy'. "
            f"Received: history of type {type(history).__name__}"
        )
    if not isinstance(val_label, str):
        raise InvalidArgument(f"Expected `val_label` to be a string. Received: val_label={val_label!r}")
    epochs = np.arange(1, len(logs["loss"]) + 1)
    fig, axes = _figure(ncols=2, figsize=(8.0, 3.0))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, logs[metric], "o-", label="training")
        if f"val_{metric}" in logs:
            ax.plot(epochs, logs[f"val_{metric}"], "s-", label=val_label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_xticks(epochs)
        ax.legend()
    return fig


def plot_confusion_matrix(y_true, y_pred, *, class_names=None, ax=None):
    """Draws how often each class (rows) is predicted as each class (columns).

    Args:
        y_true: the true classes.
        y_pred: the predicted classes.
        class_names: names indexed by class; Fashion-MNIST's by default.
        ax: the matplotlib ``Axes`` to draw on; a new figure if None.

    Returns:
        The ``Axes``. Each cell shows a count; each row is coloured by the
        share of that true class, so the diagonal shows per-class recall.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise InvalidArgument(
            "Expected `y_true` and `y_pred` to be 1D and of the same length. "
            f"Received: y_true with shape {y_true.shape}, y_pred with shape {y_pred.shape}"
        )
    names = _class_names(class_names)
    k = len(names)
    y_true, y_pred = check_labels("y_true", y_true, k), check_labels("y_pred", y_pred, k)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    if ax is None:
        _, ax = _figure(figsize=(6.4, 5.6))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        if count:
            ax.text(j, i, count, ha="center", va="center", fontsize=7,
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(np.arange(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(np.arange(k), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.grid(False)
    ax.set_title("Confusion matrix")
    return ax


def plot_ablation(results, *, ax=None):
    """Draws each row of an ablation: the validation accuracy it reached, and its minutes of training.

    Args:
        results: ablation results, as ``vggcourse.ablation.run_ablation`` or
            ``load_ablation`` return them.
        ax: the matplotlib ``Axes`` to draw on; a new figure if None.

    Returns:
        The ``Axes``: one horizontal bar per row, first row at the top, each
        labelled with its accuracy and minutes; the rows of ingredients that
        were dropped are grey.
    """
    rows = results.get("rows") if isinstance(results, dict) else None
    if not rows:
        raise InvalidArgument(
            "Expected ablation results with at least one row, as vggcourse.ablation.run_ablation "
            f"returns. Received: results of type {type(results).__name__}"
        )
    labels = [row["label"] for row in rows]
    accuracy = np.array([row["val_accuracy"][-1] for row in rows])
    minutes = np.array([row["seconds"] / 60 for row in rows])
    kept = [row.get("kept", True) for row in rows]
    if ax is None:
        _, ax = _figure(figsize=(6.4, 0.5 * len(rows) + 1.2))
    positions = np.arange(len(rows))[::-1]
    ax.barh(positions, accuracy, color=["tab:blue" if keep else "lightgrey" for keep in kept])
    for y, value, time, keep in zip(positions, accuracy, minutes, kept):
        note = "" if keep else ", dropped"
        ax.text(value, y, f" {value:.3f}, {time:.1f} min{note}", va="center", fontsize=8)
    ax.set_yticks(positions, labels, fontsize=8)
    low = max(0.0, accuracy.min() - 0.05)
    ax.set_xlim(low, min(1.0, accuracy.max() + 0.06))
    ax.set_xlabel("validation accuracy after the last epoch")
    ax.set_title("The recipe, one ingredient at a time")
    return ax
