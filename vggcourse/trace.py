"""Shapes, parameters, multiply-accumulates, activations and receptive fields.

Every count here is worked out from each layer's configuration and the shape
that reaches it (``layer.compute_output_shape``), never from its weights. A
network can therefore be traced before it is built, or at a size other than
the one it was built for: the counts describe the network that ``net`` would
be on inputs of ``input_shape``.

Conventions, as in the CS231n notes on ConvNets (Karpathy, Johnson and Li,
https://cs231n.github.io/convolutional-networks/):

- A multiply-accumulate (MAC) is one multiplication and one addition; only
  convolutions and dense layers do them. Pooling, activation functions and
  bias additions count as 0.
- Activations are the values a layer writes, for one example.
- Parameters include the biases, as in Keras' ``count_params``.
"""

import math

import keras
import pandas as pd

from vggcourse._checks import check_int, check_shape
from vggcourse.errors import InvalidArgument
from vggcourse.models import leaf_layers

__all__ = [
    "check_trace",
    "layer_macs",
    "layer_params",
    "receptive_field",
    "totals",
    "trace_layers",
    "training_memory",
]

# Layers that change the values but not the shape, with no parameters and no MACs.
_ELEMENTWISE = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.Rescaling,
)
# Layers whose output is their input seen differently: a reshape, or Dropout,
# which is the identity at inference. They write no new memory.
_VIEWS = (
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Dropout,
)
_POOLS = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
)
_GLOBAL_POOLS = (
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
)
# Layers that keep the shape but have parameters of their own: batch norm's
# scale and offset, and its moving mean and variance (Keras counts all four in
# count_params; only the first two are trained). At inference they are an
# affine map that can be folded into the convolution before it, so they are
# counted with no MACs, as the activations are.
_NORMALIZATIONS = (keras.layers.BatchNormalization,)
_SUPPORTED = (
    keras.layers.Conv2D,
    keras.layers.Dense,
    *_POOLS,
    *_GLOBAL_POOLS,
    *_VIEWS,
    *_ELEMENTWISE,
    *_NORMALIZATIONS,
)

COLUMNS = (
    "layer",
    "kind",
    "output_shape",
    "params",
    "macs",
    "activations",
    "new_tensor",
    "receptive_field",
)
# The column types of a trace; receptive_field is nullable (<NA> after a Dense layer).
_DTYPES = {
    "layer": str,
    "kind": str,
    "params": "int64",
    "macs": "int64",
    "activations": "int64",
    "new_tensor": bool,
    "receptive_field": "Int64",
}


def _check_layer(layer):
    if not isinstance(layer, keras.layers.Layer):
        raise InvalidArgument(
            "Expected `layer` to be a Keras layer, such as keras.layers.Conv2D(...). "
            f"Received: layer={layer!r} of type {type(layer).__name__}"
        )
    if not isinstance(layer, _SUPPORTED):
        names = ", ".join(sorted(cls.__name__ for cls in _SUPPORTED))
        raise InvalidArgument(
            f"Cannot count layer `{layer.name}` of type {type(layer).__name__}. "
            f"Expected one of: {names}. Received: layer={layer!r}"
        )
    return layer


def _check_input_shape(input_shape):
    """Returns the shape of one example: ``input_shape`` without its batch axis."""
    shape = check_shape("input_shape", input_shape, ranks=(3, 4), example=(224, 224, 1), batch_axis=True)
    return shape[-3:]


def _check_net(net):
    if not isinstance(net, keras.Sequential):
        raise InvalidArgument(
            "Expected `net` to be a keras.Sequential model, such as one built by "
            f"vggcourse.vgg(). Received: net={net!r} of type {type(net).__name__}"
        )
    layers = [
        _check_layer(layer)
        for layer in leaf_layers(net)
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    if not layers:
        raise InvalidArgument(f"Expected `net` to have at least one layer. Received: net={net!r}")
    return layers


def check_trace(trace):
    """Returns ``trace`` if it is a table made by ``trace_layers``, with at least one layer.

    ``totals``, ``training_memory`` and every plot of ``vggcourse.plots`` check
    their ``trace`` argument with this.

    Raises:
        InvalidArgument: if ``trace`` lacks a column or ``trace.attrs`` of
            ``trace_layers``' result, or has no rows.
    """
    expected = "Expected `trace` to be the DataFrame returned by vggcourse.trace_layers(net, input_shape)"
    if not isinstance(trace, pd.DataFrame) or not set(COLUMNS) <= set(trace.columns):
        raise InvalidArgument(f"{expected}. Received: trace of type {type(trace).__name__}")
    if "input_shape" not in trace.attrs:
        raise InvalidArgument(
            f"{expected}, which carries trace.attrs['input_shape']; a copy made without its "
            f"attrs lost it. Received: trace.attrs={trace.attrs!r}"
        )
    if len(trace) == 0:
        raise InvalidArgument(f"{expected}, with at least one layer. Received: an empty trace")
    return trace


# ---------------------------------------------------------------------------
# One layer.


def _output_shape(layer, shape):
    """Output shape of ``layer`` for a batch of one with example shape ``shape``."""
    return tuple(layer.compute_output_shape((1, *shape)))[1:]


def _channels_axis(layer):
    return 0 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1


def layer_params(layer, input_shape):
    """Counts a layer's parameters, biases included, from its configuration.

    Args:
        layer: a Keras layer: Conv2D, Dense, BatchNormalization, or a layer
            without parameters (pooling, Flatten, Dropout, Activation, ReLU,
            Rescaling).
        input_shape: the shape of the layer's input for one example, such as
            ``(56, 56, 128)``, or with a leading batch axis.

    Returns:
        The number of parameters the layer has when it takes inputs of
        ``input_shape``: for a Conv2D, ``kh * kw * c_in / groups * filters``
        weights plus ``filters`` biases; for a Dense layer,
        ``in_features * units`` weights plus ``units`` biases; for a
        BatchNormalization, a scale and an offset (if the layer has them) and
        a moving mean and variance per channel, as Keras' ``count_params``.
    """
    _check_layer(layer)
    shape = _check_layer_input_shape(input_shape)
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        in_channels = shape[_channels_axis(layer)]
        weights = kh * kw * (in_channels // layer.groups) * layer.filters
        return weights + (layer.filters if layer.use_bias else 0)
    if isinstance(layer, keras.layers.Dense):
        return shape[-1] * layer.units + (layer.units if layer.use_bias else 0)
    if isinstance(layer, _NORMALIZATIONS):
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        channels = math.prod(shape[axis] for axis in axes)
        return channels * (2 + int(layer.scale) + int(layer.center))
    return 0


def layer_macs(layer, input_shape):
    """Counts the multiply-accumulates a layer does for one example.

    Args:
        layer: a Keras layer, as for ``layer_params``.
        input_shape: the shape of the layer's input for one example, such as
            ``(56, 56, 128)``, or with a leading batch axis.

    Returns:
        For a Conv2D, every output value costs ``kh * kw * c_in / groups``
        MACs, so the layer costs ``out_h * out_w * filters * kh * kw * c_in /
        groups``. For a Dense layer, ``in_features * units`` (times any extra
        leading axes). Every other layer: 0.
    """
    _check_layer(layer)
    shape = _check_layer_input_shape(input_shape)
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        in_channels = shape[_channels_axis(layer)]
        outputs = math.prod(_output_shape(layer, shape))
        return outputs * kh * kw * (in_channels // layer.groups)
    if isinstance(layer, keras.layers.Dense):
        return math.prod(_output_shape(layer, shape)) * shape[-1]
    return 0


def _check_layer_input_shape(input_shape):
    # Single layers take any rank (a Dense layer takes (features,)).
    return check_shape("input_shape", input_shape, example=(56, 56, 128), batch_axis=True)


# ---------------------------------------------------------------------------
# Receptive fields. A layer with window k and stride s, fed by outputs whose
# neighbours are `jump` input pixels apart, widens the field by (k - 1) * jump
# and multiplies the jump by s (CS231n; Luo et al., 2016, call it the
# theoretical receptive field).


def _window(layer):
    """Returns (window, stride) of a spatial layer, or None if it keeps positions."""
    if isinstance(layer, keras.layers.Conv2D):
        sizes = [d * (k - 1) + 1 for k, d in zip(layer.kernel_size, layer.dilation_rate)]
        strides = list(layer.strides)
    elif isinstance(layer, _POOLS):
        sizes, strides = list(layer.pool_size), list(layer.strides)
    else:
        return None
    if sizes[0] != sizes[1] or strides[0] != strides[1]:
        raise InvalidArgument(
            f"Receptive fields are computed for square windows and strides only. "
            f"Received: layer `{layer.name}` with window {tuple(sizes)} and strides {tuple(strides)}"
        )
    return sizes[0], strides[0]


def _step_receptive_field(layer, field, jump):
    """One step of the recurrence; ``field`` None means 'the whole input'."""
    if field is None or isinstance(layer, (keras.layers.Dense, *_GLOBAL_POOLS)):
        return None, None
    window = _window(layer)
    if window is None:
        return field, jump
    size, stride = window
    return field + (size - 1) * jump, jump * stride


def receptive_field(layers):
    """Returns the side of the input patch that one output value depends on.

    Reference:
    - [Understanding the Effective Receptive Field in Deep Convolutional Neural
        Networks](https://arxiv.org/abs/1701.04128) (Luo et al., NeurIPS 2016):
        this is the theoretical receptive field.

    Args:
        layers: a Keras model, or a sequence of layers applied in order. Only
            convolutions and pools widen the field.

    Returns:
        An ``int``: 3 for one 3x3 convolution, 5 for two, 7 for three; 10 for
        two 3x3 convolutions, a 2x2/2 pool and one more 3x3 convolution. None
        if an output depends on the whole input (after a Dense layer or a
        global pool).
    """
    if isinstance(layers, keras.Model):
        layers = list(leaf_layers(layers))
    elif isinstance(layers, keras.layers.Layer):
        layers = [layers]
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise InvalidArgument(
            "Expected `layers` to be a Keras model or a sequence of Keras layers. "
            f"Received: layers={layers!r} of type {type(layers).__name__}"
        )
    field, jump = 1, 1
    for layer in layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        field, jump = _step_receptive_field(_check_layer(layer), field, jump)
    return field


# ---------------------------------------------------------------------------
# A whole network.


# Input sizes, worked out with the arithmetic of Keras' convolution and
# pooling ops rather than by asking Keras: how a given Keras version computes
# a pooled shape that comes out empty differs (some raise, some return 0), so
# the check runs first and the message is the same on every version.


def _side_after(layer, side, axis):
    """One spatial side after ``layer``, or None if the layer's window does not fit."""
    if isinstance(layer, keras.layers.Conv2D):
        window = layer.dilation_rate[axis] * (layer.kernel_size[axis] - 1) + 1
    elif isinstance(layer, _POOLS):
        window = layer.pool_size[axis]
    else:
        return side
    stride = layer.strides[axis]
    if layer.padding == "same":
        return -(-side // stride)
    return (side - window) // stride + 1 if side >= window else None


def _first_misfit(layers, shape):
    """Returns ``(layer, shape)`` for the first layer whose window is larger
    than the ``(height, width, channels)`` that reach it, or None if all fit."""
    for layer in layers:
        keeps_positions = (*_ELEMENTWISE, *_NORMALIZATIONS, keras.layers.Dropout)
        if not isinstance(layer, (keras.layers.Conv2D, *_POOLS, *keeps_positions)):
            return None  # Flatten, Dense, a global pool: positions end here.
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            return None  # Left to Keras.
        sides = tuple(_side_after(layer, side, axis) for axis, side in enumerate(shape[:2]))
        if None in sides:
            return layer, shape
        channels = layer.filters if isinstance(layer, keras.layers.Conv2D) else shape[2]
        shape = (*sides, channels)
    return None


def _smallest_side(layers, channels):
    """The smallest square input side that every layer accepts, or None."""
    for side in range(1, 4097):
        if _first_misfit(layers, (side, side, channels)) is None:
            return side
    return None


def _check_input_fits(net, layers, input_shape):
    shape = _check_input_shape(input_shape)
    misfit = _first_misfit(layers, shape)
    if misfit is None:
        return
    layer, reaching = misfit
    raise _too_small(net, layers, layer, reaching, input_shape)


def trace_layers(net, input_shape):
    """Traces a network layer by layer: shapes, parameters, MACs, activations.

    Args:
        net: a ``keras.Sequential`` model, such as one built by
            ``vggcourse.vgg()``. Nested Sequential blocks are opened up. It may
            be unbuilt, or built for another input size.
        input_shape: the input's shape, ``(height, width, channels)`` or with a
            batch axis, ``(batch, height, width, channels)``, as in the
            ``(1, 224, 224, 1)`` of a shape trace. The batch size is ignored:
            every count is for one example.

    Returns:
        A ``pandas.DataFrame`` with one row per leaf layer, in order, and the
        columns:

        - ``layer``: the layer's name; ``kind``: its class name;
        - ``output_shape``: the output's shape for one example;
        - ``params``: parameters, biases included;
        - ``macs``: multiply-accumulates for one example;
        - ``activations``: values in the output, for one example;
        - ``new_tensor``: False for layers whose output shares its input's
          memory (Flatten and Reshape; Dropout, the identity at inference);
        - ``receptive_field``: side of the input patch one output value
          depends on, ``<NA>`` once every output depends on the whole input.

        ``trace.attrs`` holds ``net`` (the network's name) and
        ``input_shape`` (for one example). ``totals(trace)`` adds it all up.

    Raises:
        InvalidArgument: if ``net`` is not a ``keras.Sequential``, if
            ``input_shape`` is malformed or too small for the network's
            pools, or if a layer is of a kind that cannot be counted.
    """
    layers = _check_net(net)
    example_shape = shape = _check_input_shape(input_shape)
    rows = []
    field, jump = 1, 1
    _check_input_fits(net, layers, input_shape)
    for layer in layers:
        output_shape = _output_shape(layer, shape)
        field, jump = _step_receptive_field(layer, field, jump)
        rows.append(
            {
                "layer": layer.name,
                "kind": type(layer).__name__,
                "output_shape": output_shape,
                "params": layer_params(layer, shape),
                "macs": layer_macs(layer, shape),
                "activations": math.prod(output_shape),
                "new_tensor": not isinstance(layer, _VIEWS),
                "receptive_field": field,
            }
        )
        shape = output_shape
    trace = pd.DataFrame(rows, columns=list(COLUMNS)).astype(_DTYPES)
    trace.attrs = {"net": net.name, "input_shape": example_shape}
    return trace


def _too_small(net, layers, layer, shape, input_shape):
    """The error for an input that leaves ``layer`` less than its window, naming the smallest that fits."""
    smallest = _smallest_side(layers, _check_input_shape(input_shape)[-1])
    hint = f" The smallest square input it takes is {smallest}x{smallest}." if smallest else ""
    return InvalidArgument(
        f"The input is too small for `{net.name}`: layer `{layer.name}` would get "
        f"shape {shape}, which is smaller than its window.{hint} "
        f"Received: input_shape={tuple(input_shape)}"
    )


def totals(trace):
    """Adds up a trace for one example.

    Args:
        trace: the DataFrame returned by ``trace_layers``.

    Returns:
        A ``pandas.Series`` of integers:

        - ``params``: all parameters;
        - ``macs``: all multiply-accumulates for one example;
        - ``activations``: every value a forward pass writes for one example,
          **input included**, as in the CS231n VGG-16 table: the input plus
          the outputs of the layers with ``new_tensor`` True.
    """
    trace = check_trace(trace)
    inputs = math.prod(trace.attrs["input_shape"])
    return pd.Series(
        {
            "params": int(trace["params"].sum()),
            "macs": int(trace["macs"].sum()),
            "activations": inputs + int(trace.loc[trace["new_tensor"], "activations"].sum()),
        },
        name=trace.attrs.get("net"),
        dtype="int64",
    )


def training_memory(trace, batch_size, *, optimizer_slots=1, bytes_per_value=4):
    """Estimates the memory one training step needs, in bytes.

    The model of memory is deliberately simple, and a lower bound: it leaves
    out the framework's working space and the transient gradients of the
    activations during the backward pass.

    - ``weights``: every parameter;
    - ``gradients``: one gradient per parameter;
    - ``optimizer_state``: ``optimizer_slots`` values per parameter (1 for
      SGD with momentum, 2 for Adam, 0 for plain SGD);
    - ``activations``: backpropagation needs each layer's forward output, so
      the forward activations of ``totals(trace)`` are kept for every example
      in the batch.

    Args:
        trace: the DataFrame returned by ``trace_layers``.
        batch_size: examples per training step.
        optimizer_slots: values the optimizer keeps per parameter.
        bytes_per_value: 4 for float32, 2 for float16.

    Returns:
        A ``pandas.Series`` of bytes with the four parts above and their
        ``total``.
    """
    count = totals(trace)
    batch_size = check_int("batch_size", batch_size)
    optimizer_slots = check_int("optimizer_slots", optimizer_slots, minimum=0)
    bytes_per_value = check_int("bytes_per_value", bytes_per_value)
    parts = {
        "weights": count["params"] * bytes_per_value,
        "gradients": count["params"] * bytes_per_value,
        "optimizer_state": optimizer_slots * count["params"] * bytes_per_value,
        "activations": batch_size * count["activations"] * bytes_per_value,
    }
    parts["total"] = sum(parts.values())
    return pd.Series(parts, name=trace.attrs.get("net"), dtype="int64")
