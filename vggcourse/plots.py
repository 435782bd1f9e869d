"""Plots of a traced network, drawn with matplotlib.

The plots of a trace take the DataFrame returned by
``vggcourse.trace_layers``, draw one layer per bar or point in network order,
and return the matplotlib ``Axes`` they drew on, so a chapter can add to it
and then call ``plt.show()``. The training chapter's plots show images,
learning curves and a confusion matrix.

The course's look is ``STYLE``. Importing this module changes nothing in
matplotlib; a chapter calls ``use_style()`` once, after its imports, so that
its own figures and the package's look alike. Every figure that a function
here creates has the course's size and layout either way.
"""

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from vggcourse._checks import check_bool, check_int, check_labels
from vggcourse.errors import InvalidArgument
from vggcourse.trace import check_trace

__all__ = [
    "STYLE",
    "KIND_COLORS",
    "use_style",
    "plot_activation_memory",
    "plot_macs",
    "plot_params",
    "plot_shapes",
    "plot_confusion_matrix",
    "plot_history",
    "show_images",
    "plot_vgg_block",
    "plot_vgg_stack",
    "plot_receptive_fields",
    "plot_filters",
    "show_image_rows",
    "plot_feature_maps",
    "show_heatmaps",
    "plot_embedding",
    "plot_transfer",
]

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


def _title(trace, what):
    shape = trace.attrs.get("input_shape")
    where = f" on {'×'.join(map(str, shape))} inputs" if shape else ""
    return f"{trace.attrs.get('net', 'network')}{where}: {what}"


def _axes(ax):
    if ax is None:
        _, ax = _figure()
    return ax


def _layer_axis(ax, trace):
    ax.set_xticks(np.arange(len(trace)), trace["layer"], rotation=90, fontsize=8)
    ax.set_xlim(-0.6, len(trace) - 0.4)
    ax.grid(axis="x", visible=False)


def _bars(trace, values, *, ylabel, what, log, ax, hollow=None):
    """One bar per layer of ``trace``, coloured by kind; ``hollow`` marks bars drawn as outlines."""
    log = check_bool("log", log)
    ax = _axes(ax)
    colors = [KIND_COLORS.get(kind, _OTHER_COLOR) for kind in trace["kind"]]
    bars = ax.bar(np.arange(len(trace)), values, color=colors, edgecolor=colors)
    if hollow is None:
        hollow = np.zeros(len(trace), dtype=bool)
    # The legend names only the kinds that have a visible, filled bar.
    shown = ~hollow & (np.asarray(values) > 0)
    kinds = list(dict.fromkeys(trace["kind"][shown]))
    handles = [Patch(color=KIND_COLORS.get(kind, _OTHER_COLOR), label=kind) for kind in kinds]
    if hollow.any():
        for bar, empty in zip(bars, hollow):
            if empty:
                bar.set_facecolor("none")
                bar.set_hatch("///")
        handles.append(
            Patch(facecolor="none", edgecolor=_OTHER_COLOR, hatch="///", label="shares its input's memory")
        )
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(_title(trace, what))
    _layer_axis(ax, trace)
    ax.legend(handles=handles, fontsize=8, loc="best")
    return ax


def plot_params(trace, *, log=True, ax=None):
    """Draws the parameters of each layer as bars.

    Args:
        trace: the DataFrame returned by ``vggcourse.trace_layers``.
        log: use a logarithmic y axis. A linear one shows better how much
            one layer dominates.
        ax: the matplotlib ``Axes`` to draw on; a new figure if None.

    Returns:
        The ``Axes``, with one bar per layer. Layers without parameters have
        no visible bar.
    """
    trace = check_trace(trace)
    return _bars(trace, trace["params"].to_numpy(), ylabel="parameters", what="parameters per layer", log=log, ax=ax)


def plot_macs(trace, *, log=True, ax=None):
    """Draws the multiply-accumulates of each layer, for one example, as bars.

    Args:
        trace: the DataFrame returned by ``vggcourse.trace_layers``.
        log: use a logarithmic y axis.
        ax: the matplotlib ``Axes`` to draw on; a new figure if None.

    Returns:
        The ``Axes``, with one bar per layer.
    """
    trace = check_trace(trace)
    ylabel = "multiply-accumulates per example"
    return _bars(trace, trace["macs"].to_numpy(), ylabel=ylabel, what="MACs per layer", log=log, ax=ax)


def plot_activation_memory(trace, *, bytes_per_value=4, log=True, ax=None):
    """Draws the memory of each layer's output, for one example, in MiB.

    Args:
        trace: the DataFrame returned by ``vggcourse.trace_layers``.
        bytes_per_value: 4 for float32, 2 for float16.
        log: use a logarithmic y axis: the first block's outputs are
            hundreds of times larger than the last ones'.
        ax: the matplotlib ``Axes`` to draw on; a new figure if None.

    Returns:
        The ``Axes``, with one bar per layer. Layers whose output shares its
        input's memory (Flatten, Dropout at inference) are drawn hatched.
    """
    trace = check_trace(trace)
    bytes_per_value = check_int("bytes_per_value", bytes_per_value)
    return _bars(
        trace,
        trace["activations"].to_numpy() * bytes_per_value / _MIB,
        ylabel=f"MiB per example ({bytes_per_value} bytes per value)",
        what="activation memory per layer",
        log=log,
        ax=ax,
        hollow=~trace["new_tensor"].to_numpy(dtype=bool),
    )


def plot_shapes(trace, *, ax=None):
    """Draws the spatial size and the channels of each layer's output.

    Both go on one base-2 logarithmic axis: every pool halves the spatial
    size (one step down) and VGG doubles the channels after it (one step up).
    A dense layer's features count as channels; it has no spatial size.

    Args:
        trace: the DataFrame returned by ``vggcourse.trace_layers``.
        ax: the matplotlib ``Axes`` to draw on; a new figure if None.

    Returns:
        The ``Axes``, with two lines, "height (= width)" and "channels", each
        with one point per layer (NaN where a layer has no spatial size). A
        third line, "width", appears if the input is not square.
    """
    trace = check_trace(trace)
    ax = _axes(ax)
    shapes = list(trace["output_shape"])
    height = np.array([shape[0] if len(shape) == 3 else np.nan for shape in shapes], dtype=float)
    width = np.array([shape[1] if len(shape) == 3 else np.nan for shape in shapes], dtype=float)
    channels = np.array([shape[-1] for shape in shapes], dtype=float)
    x = np.arange(len(trace))
    square = np.array_equal(height, width, equal_nan=True)
    ax.plot(x, height, "o-", color="tab:purple", label="height (= width)" if square else "height")
    if not square:
        ax.plot(x, width, "^-", color="tab:pink", label="width")
    ax.plot(x, channels, "s-", color="tab:green", label="channels (features)")
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(mpl.ticker.ScalarFormatter())
    ax.set_ylabel("size (log scale)")
    ax.set_title(_title(trace, "output size per layer"))
    _layer_axis(ax, trace)
    ax.legend(fontsize=8, loc="best")
    return ax


# ---------------------------------------------------------------------------
# Training: examples, learning curves and errors (chapter "Training VGG on a GPU").


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


def plot_history(history):
    """Draws the loss and the accuracy per epoch, on training and validation data.

    Args:
        history: a ``keras.callbacks.History`` or its ``.history`` dict, with
            ``loss`` and ``accuracy`` and, optionally, ``val_loss`` and
            ``val_accuracy``.

    Returns:
        The matplotlib ``Figure``, with two ``Axes``: loss, then accuracy.
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not {"loss", "accuracy"} <= set(logs):
        raise InvalidArgument(
            "Expected `history` to be a keras History, or a dict, with 'loss' and 'accuracy'. "
            f"Received: history of type {type(history).__name__}"
        )
    epochs = np.arange(1, len(logs["loss"]) + 1)
    fig, axes = _figure(ncols=2, figsize=(8.0, 3.0))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, logs[metric], "o-", label="training")
        if f"val_{metric}" in logs:
            ax.plot(epochs, logs[f"val_{metric}"], "s-", label="test")
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


# ---------------------------------------------------------------------------
# Architecture diagrams and receptive fields (chapter "The VGG block").

_SIDE_SHAPE = "Expected `input_shape` to be (height, width, channels) of positive integers"


def _check_image_shape(input_shape):
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if (
        shape is None
        or len(shape) != 3
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in shape)
    ):
        raise ValueError(f"{_SIDE_SHAPE}, such as (224, 224, 1). Received: input_shape={input_shape!r}")
    return tuple(int(v) for v in shape)


def _check_layers(name, model):
    layers = getattr(model, "layers", None)
    if not layers:
        raise TypeError(
            f"Expected `{name}` to be a Keras model with layers, such as vggcourse.vgg_block(2, 128). "
            f"Received: {name} of type {type(model).__name__}"
        )
    return list(layers)


def _shape_text(shape):
    return "×".join(str(int(v)) for v in shape[1:])


def _layer_text(layer):
    """A layer in the paper's words: "conv 3×3, 128, ReLU", "max-pool 2×2, stride 2"."""
    config = layer.get_config()
    kind = type(layer).__name__
    if "filters" in config:
        kernel = "×".join(map(str, config["kernel_size"]))
        activation = config.get("activation")
        return f"conv {kernel}, {config['filters']}" + (", ReLU" if activation == "relu" else "")
    if "pool_size" in config:
        window = "×".join(map(str, config["pool_size"]))
        return f"max-pool {window}, stride {config['strides'][0]}"
    if "units" in config:
        return f"dense {config['units']}" + (", ReLU" if config.get("activation") == "relu" else "")
    return kind


def _box(ax, x, y, width, height, text, color, *, fontsize=8):
    ax.add_patch(mpl.patches.FancyBboxPatch(
        (x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02",
        facecolor=mpl.colors.to_rgba(color, 0.18), edgecolor=color, linewidth=1.2,
    ))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _blank(ax):
    ax.set_aspect("auto")
    ax.axis("off")
    ax.grid(False)


def plot_vgg_block(block, input_shape, *, ax=None):
    """Draws one VGG block as a column of its layers, with the shape between each two.

    Args:
        block: a VGG block, such as ``vggcourse.vgg_block(2, 128, name="block2")``.
        input_shape: the block's input, ``(height, width, channels)``.
        ax: the matplotlib ``Axes`` to draw on; a new figure if None.

    Returns:
        The ``Axes``: one box per layer, labelled with its settings, and the
        tensor's shape before the first layer and after each one.
    """
    layers = _check_layers("block", block)
    shape = (None, *_check_image_shape(input_shape))
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 1.1 * len(layers) + 1.0))
    _blank(ax)
    step = 2.0  # a shape, then a layer, top to bottom
    top = step * len(layers)
    ax.text(0, top, _shape_text(shape), ha="center", va="center", fontsize=9, weight="bold")
    for i, layer in enumerate(layers):
        y = top - step * i - step / 2
        color = KIND_COLORS.get(type(layer).__name__, _OTHER_COLOR)
        _box(ax, 0, y, 2.6, 0.7, f"{layer.name}\n{_layer_text(layer)}", color)
        shape = layer.compute_output_shape(shape)
        for start, end in ((y + step / 2 - 0.22, y + 0.4), (y - 0.4, y - step / 2 + 0.22)):
            ax.annotate("", xy=(0, end), xytext=(0, start),
                        arrowprops={"arrowstyle": "->", "color": "0.3"})
        ax.text(0, y - step / 2, _shape_text(shape), ha="center", va="center", fontsize=9,
                weight="bold")
    ax.set_xlim(-1.6, 1.6)
    ax.set_ylim(-0.4, top + 0.4)
    ax.set_title(f"{block.name}, shapes as height×width×channels", fontsize=9)
    return ax


def plot_vgg_stack(net, input_shape, *, ax=None):
    """Draws a VGG network as its stack of blocks, left to right, with the shape after each.

    Each block's box is as tall as the base-2 logarithm of its output's side, so every
    pool is one equal step down.

    Args:
        net: a network built by ``vggcourse.vgg``.
        input_shape: the input, ``(height, width, channels)``.
        ax: the matplotlib ``Axes`` to draw on; a new figure if None.

    Returns:
        The ``Axes``: the input, one box per block (its convolutions and pool), and
        the classifier, with the output shape written under each.
    """
    blocks = _check_layers("net", net)
    shape = (None, *_check_image_shape(input_shape))
    if ax is None:
        _, ax = plt.subplots(figsize=(8.0, 2.8))
    _blank(ax)
    columns = [("input", shape, "tab:gray", np.log2(shape[1]))]
    for blk in blocks:
        inner = _check_layers(blk.name, blk)
        for layer in inner:
            shape = layer.compute_output_shape(shape)
        convs = [layer for layer in inner if "filters" in layer.get_config()]
        if convs:
            text = f"{blk.name}\n{len(convs)}× conv\n3×3, {convs[0].get_config()['filters']}\n+ pool"
            columns.append((text, shape, KIND_COLORS["Conv2D"], np.log2(shape[1])))
        else:
            dense = [layer for layer in inner if "units" in layer.get_config()]
            units = ", ".join(str(layer.get_config()["units"]) for layer in dense)
            columns.append((f"{blk.name}\ndense\n{units}", shape, KIND_COLORS["Dense"], 1.5))
    for x, (text, out_shape, color, height) in enumerate(columns):
        height = max(height, 1.5)
        _box(ax, x, height / 2, 0.8, height, text, color, fontsize=7)
        ax.text(x, -0.6, _shape_text(out_shape), ha="center", va="top", fontsize=7.5,
                weight="bold")
        if x:
            ax.annotate("", xy=(x - 0.42, 0.5), xytext=(x - 0.58, 0.5),
                        arrowprops={"arrowstyle": "->", "color": "0.3"})
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(-1.6, max(column[3] for column in columns) + 0.4)
    ax.set_title(f"{net.name} on {_shape_text((None, *input_shape))} inputs: the shape after each part")
    return ax


def plot_receptive_fields(maps, *, titles=None, ax=None):
    """Draws gradient maps as heatmaps: how much each input pixel moves one output pixel.

    Args:
        maps: a sequence of 2D arrays, such as the gradient of the centre output of
            1, 2 and 3 stacked 3x3 convolutions with respect to their input.
        titles: one title per map, or None.
        ax: a sequence of one matplotlib ``Axes`` per map; a new figure if None.

    Returns:
        The ``Axes``, one per map. Each shows its map divided by its largest value,
        with the value in each non-zero cell when the map is small enough to read.
    """
    if isinstance(maps, np.ndarray) and maps.ndim == 2:
        maps = [maps]
    arrays = [np.asarray(m, dtype=float) for m in maps] if hasattr(maps, "__len__") else []
    if not arrays or any(a.ndim != 2 or a.size == 0 for a in arrays):
        raise ValueError(
            "Expected `maps` to be a non-empty sequence of 2D arrays. "
            f"Received: maps with shapes {[np.shape(m) for m in maps] if arrays else maps!r}"
        )
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(
            f"Expected one title per map ({len(arrays)}). Received: titles={titles!r}"
        )
    if ax is None:
        _, ax = plt.subplots(1, len(arrays), figsize=(2.7 * len(arrays), 2.9), squeeze=False)
        ax = ax[0]
    for i, (axis, grad) in enumerate(zip(ax, arrays)):
        peak = np.abs(grad).max()
        shown = np.abs(grad) / peak if peak else np.abs(grad)
        axis.imshow(shown, cmap="Blues", vmin=0, vmax=1)
        if max(grad.shape) <= 11:
            for (r, c), value in np.ndenumerate(grad):
                if value:
                    axis.text(c, r, f"{value:g}", ha="center", va="center", fontsize=7,
                              color="white" if shown[r, c] > 0.6 else "black")
        axis.set_xticks([])
        axis.set_yticks([])
        axis.grid(False)
        if titles is not None:
            axis.set_title(titles[i], fontsize=9)
    return ax


# ---------------------------------------------------------------------------
# What a trained VGG learns, and reusing it (chapter "What VGG learns, and reusing it").


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
