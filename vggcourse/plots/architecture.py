"""Architecture diagrams and receptive fields (chapter "The VGG block")."""

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

from vggcourse.plots._base import _OTHER_COLOR, KIND_COLORS

__all__ = [
    "plot_receptive_fields",
    "plot_vgg_block",
    "plot_vgg_stack",
]


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
