"""What a trained VGG learns, and reusing it (chapter "What VGG learns, and reusing it")."""

import matplotlib.pyplot as plt
import numpy as np

from vggcourse.plots.training import _class_names

__all__ = [
    "plot_embedding",
    "plot_feature_maps",
    "plot_filters",
    "plot_transfer",
    "show_heatmaps",
    "show_image_rows",
]


def _check_stack(name, array, ndim, what):
    array = np.asarray(array, dtype=float)
    if array.ndim != ndim or array.size == 0:
        raise ValueError(f"Expected `{name}` to be {what}. Received: {name} with shape {array.shape}")
    return array


def _image_axis(ax, image, title=None, *, cmap="gray_r", fontsize=7, **kwargs):
    ax.imshow(image, cmap=cmap, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=fontsize)


def plot_filters(kernel, *, ncols=8):
    """Draws the filters of a first convolution, one small image per output channel.

    Args:
        kernel: the layer's kernel, of shape ``(height, width, 1, channels)``
            (a grey input), such as ``layer.kernel.numpy()``.
        ncols: filters per row.

    Returns:
        The matplotlib ``Figure``. All filters share one colour scale centred on
        0: red weights add the pixel's value, blue ones subtract it.
    """
    kernel = _check_stack("kernel", kernel, 4, "a kernel of shape (height, width, 1, channels)")
    if kernel.shape[2] != 1:
        raise ValueError(
            "Expected `kernel` to have one input channel (a grey image). "
            f"Received: kernel with shape {kernel.shape}"
        )
    count = kernel.shape[-1]
    ncols = min(ncols, count)
    nrows = -(-count // ncols)
    limit = np.abs(kernel).max() or 1.0
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.0 * ncols + 0.8, 1.1 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < count:
            image = ax.imshow(kernel[:, :, 0, i], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(f"filter {i}", fontsize=7)
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
    return fig


def show_image_rows(rows, *, cmap="gray_r", shared_scale=False, scale=1.0, row_label_width=1.6):
    """Draws rows of small images, each row with a label and each image with a caption.

    Args:
        rows: a dict from a row label to a list of ``(image, caption)`` pairs, or
            ``(image, caption, cmap)`` triples to give one image its own colour
            map; each image a 2D array (or ``(h, w, 1)``). Rows may differ in
            length.
        cmap: the colour map of the images that name none.
        shared_scale: scale the images of a row together, from 0 to the row's
            largest value, so that they can be compared (for feature maps);
            otherwise each image is scaled to its own range.
        scale: inches per image.
        row_label_width: inches for the row labels.

    Returns:
        The matplotlib ``Figure``.
    """
    if not isinstance(rows, dict) or not rows or any(not row for row in rows.values()):
        raise ValueError(
            "Expected `rows` to be a non-empty dict from a label to a non-empty list of "
            f"(image, caption) pairs. Received: rows={rows!r:.80}"
        )
    ncols = max(len(row) for row in rows.values())
    fig, axes = plt.subplots(
        len(rows), ncols + 1, squeeze=False,
        figsize=(row_label_width + scale * ncols, (scale + 0.3) * len(rows)),
        gridspec_kw={"width_ratios": [row_label_width / scale] + [1] * ncols},
    )
    for (label, row), line in zip(rows.items(), axes):
        line[0].axis("off")
        line[0].text(1.0, 0.5, label, ha="right", va="center", fontsize=8,
                     transform=line[0].transAxes)
        for ax in line[1:]:
            ax.axis("off")
        images = []
        for item in row:
            image = np.asarray(item[0], dtype=float)
            image = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
            if image.ndim != 2 or len(item) not in (2, 3):
                raise ValueError(
                    "Expected (image, caption) pairs of 2D images in `rows`. Received: an item "
                    f"of length {len(item)} with an image of shape {image.shape} in row {label!r}"
                )
            images.append(image)
        top = max(image.max() for image in images) if shared_scale else None
        for ax, image, item in zip(line[1:], images, row):
            limits = {"vmin": 0, "vmax": top if top and top > 0 else 1} if shared_scale else {}
            ax.axis("on")
            _image_axis(ax, image, item[1], cmap=item[2] if len(item) == 3 else cmap, **limits)
    return fig


def plot_feature_maps(image, maps, *, num_channels=8):
    """Draws one image and, for each layer, the feature maps of its most active channels.

    Args:
        image: the input image, 2D (or ``(h, w, 1)``).
        maps: a dict from a layer name to that layer's output for the image, of
            shape ``(height, width, channels)``.
        num_channels: maps per layer; the channels with the largest mean
            activation on this image are shown, in decreasing order.

    Returns:
        The matplotlib ``Figure``: one row per layer, labelled with the
        layer's name and its output shape. The maps of a layer share one
        colour scale, from 0 to their largest value.
    """
    image = np.asarray(image, dtype=float)
    image = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
    if image.ndim != 2:
        raise ValueError(f"Expected `image` to be 2D. Received: image with shape {image.shape}")
    if not isinstance(maps, dict) or not maps:
        raise ValueError(
            "Expected `maps` to be a non-empty dict from a layer name to an array of shape "
            f"(height, width, channels). Received: maps={maps!r:.80}"
        )
    rows = {"input\n28×28": [(image, None, "gray_r")]}
    for name, array in maps.items():
        array = _check_stack(f"maps[{name!r}]", array, 3, "an array of shape (height, width, channels)")
        order = np.argsort(-array.mean(axis=(0, 1)), kind="stable")[:num_channels]
        height, width, channels = array.shape
        rows[f"{name}\n{height}×{width}×{channels}"] = [
            (array[:, :, c], f"ch. {c}") for c in order
        ]
    return show_image_rows(rows, cmap="viridis", shared_scale=True, scale=0.95)


def show_heatmaps(images, heatmaps, *, titles=None):
    """Draws images with heatmaps beside them, such as saliency and Grad-CAM.

    Each heatmap is stretched over its image (smoothly, so a 4x4 Grad-CAM map
    of a 28x28 image covers it), scaled to its own maximum, and drawn over a
    faint copy of the image.

    Args:
        images: ``n`` images of shape ``(n, height, width)`` (or with a last
            axis of 1).
        heatmaps: a dict from a column title to an array of ``n`` heatmaps, of
            shape ``(n, h, w)``; each column's maps may have their own size.
        titles: one title per image (its row), or None.

    Returns:
        The matplotlib ``Figure``: one row per image, the image first.
    """
    images = np.asarray(images, dtype=float)
    images = images[..., 0] if images.ndim == 4 and images.shape[-1] == 1 else images
    images = _check_stack("images", images, 3, "an array of shape (n, height, width)")
    if not isinstance(heatmaps, dict) or not heatmaps:
        raise ValueError(
            "Expected `heatmaps` to be a non-empty dict from a column title to an array of "
            f"shape (n, h, w). Received: heatmaps={heatmaps!r:.80}"
        )
    columns = {}
    for name, maps in heatmaps.items():
        maps = _check_stack(f"heatmaps[{name!r}]", maps, 3, "an array of shape (n, h, w)")
        if len(maps) != len(images):
            raise ValueError(
                f"Expected one heatmap per image ({len(images)}) in heatmaps[{name!r}]. "
                f"Received: {len(maps)}"
            )
        columns[name] = maps
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"Expected one title per image ({len(images)}). Received: titles={titles!r}")
    n, height, width = images.shape
    fig, axes = plt.subplots(n, len(columns) + 1, squeeze=False,
                             figsize=(1.7 * (len(columns) + 1), 1.8 * n))
    for i, line in enumerate(axes):
        _image_axis(line[0], images[i], titles[i] if titles is not None else None, fontsize=8)
        for ax, (name, maps) in zip(line[1:], columns.items()):
            peak = maps[i].max()
            shown = maps[i] / peak if peak > 0 else maps[i]
            _image_axis(ax, images[i], alpha=0.35)
            ax.imshow(shown, cmap="inferno", vmin=0, vmax=1, alpha=0.75,
                      extent=(-0.5, width - 0.5, height - 0.5, -0.5), interpolation="bilinear")
            if i == 0:
                ax.set_title(name, fontsize=8)
    return fig


def plot_embedding(coords, labels, *, explained=None, class_names=None, ax=None):
    """Draws 2-D coordinates of images (a PCA of their features) coloured by class.

    Args:
        coords: an array of shape ``(n, 2)``.
        labels: the class of each point.
        explained: the share of the variance each axis explains, shown in the
            axis labels; or None.
        class_names: names indexed by class; Fashion-MNIST's by default.
        ax: the matplotlib ``Axes`` to draw on; a new figure if None.

    Returns:
        The ``Axes``.
    """
    coords = _check_stack("coords", coords, 2, "an array of shape (n, 2)")
    labels = np.asarray(labels)
    if coords.shape[1] != 2 or labels.shape != (len(coords),):
        raise ValueError(
            "Expected `coords` of shape (n, 2) and one label per point. "
            f"Received: coords with shape {coords.shape}, labels with shape {labels.shape}"
        )
    names = _class_names(class_names)
    if ax is None:
        _, ax = plt.subplots(figsize=(8.0, 5.6))
    colors = plt.get_cmap("tab10")
    for cls in np.unique(labels):
        mine = labels == cls
        ax.scatter(coords[mine, 0], coords[mine, 1], s=4, alpha=0.5, color=colors(int(cls) % 10),
                   label=names[int(cls)], rasterized=True)
    for axis, name in enumerate(("x", "y")):
        text = f"principal component {axis + 1}"
        if explained is not None:
            text += f" ({explained[axis]:.0%} of the variance)"
        getattr(ax, f"set_{name}label")(text)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=4, fontsize=8)
    return ax


def plot_transfer(runs, *, ax=None):
    """Draws test accuracy against labelled images per class, one line per strategy.

    Args:
        runs: a DataFrame with the columns ``labels_per_class``, ``strategy``
            and ``test_accuracy``, one row per run, such as
            ``vggcourse.transfer.run_transfer_experiment(...).runs``.
        ax: the matplotlib ``Axes`` to draw on; a new figure if None.

    Returns:
        The ``Axes``: each strategy's mean over its runs as a line, each run as
        a dot, on a logarithmic axis of labels per class.
    """
    needed = {"labels_per_class", "strategy", "test_accuracy"}
    if not hasattr(runs, "columns") or not needed <= set(runs.columns) or len(runs) == 0:
        raise ValueError(
            f"Expected `runs` to be a DataFrame with the columns {sorted(needed)}. "
            f"Received: runs of type {type(runs).__name__}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 4.0))
    markers = {"scratch": "o", "frozen": "s", "fine-tune": "^"}
    for i, (strategy, rows) in enumerate(runs.groupby("strategy", sort=False)):
        color = plt.get_cmap("tab10")(i)
        means = rows.groupby("labels_per_class")["test_accuracy"].mean()
        ax.plot(means.index, means.values, marker=markers.get(strategy, "o"), color=color,
                label=strategy)
        ax.scatter(rows["labels_per_class"], rows["test_accuracy"], color=color, s=12,
                   alpha=0.4)
    ax.set_xscale("log")
    counts = sorted(runs["labels_per_class"].unique())
    ax.set_xticks(counts, [f"{count:,}" for count in counts])
    ax.minorticks_off()
    ax.set_xlabel("labelled images per new class")
    ax.set_ylabel("test accuracy on the new classes")
    ax.legend()
    return ax
