"""Plots of a traced network: one layer per bar or point, in network order.

Each takes the DataFrame returned by ``vggcourse.trace_layers`` and returns
the matplotlib ``Axes`` it drew on.
"""

import matplotlib as mpl
import numpy as np
from matplotlib.patches import Patch

from vggcourse._checks import check_bool, check_int
from vggcourse.plots._base import _MIB, _OTHER_COLOR, KIND_COLORS, _axes
from vggcourse.trace import check_trace

__all__ = [
    "plot_activation_memory",
    "plot_macs",
    "plot_params",
    "plot_shapes",
]


def _title(trace, what):
    shape = trace.attrs.get("input_shape")
    where = f" on {'×'.join(map(str, shape))} inputs" if shape else ""
    return f"{trace.attrs.get('net', 'network')}{where}: {what}"




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
