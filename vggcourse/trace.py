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

from vggcourse import _layers
from vggcourse._checks import check_int, check_shape
from vggcourse._layers import layer_macs, layer_params
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


def _check_input_shape(input_shape):
    """Returns the shape of one example: ``input_shape`` without its batch axis."""
    shape = check_shape("input_shape", input_shape, ranks=(3, 4), example=(224, 224, 1), batch_axis=True)
    return shape[-3:]


# ---------------------------------------------------------------------------
# A network as a graph: a list of steps ``(layer, inputs)`` in the order they
# run, where ``inputs`` are the indices of the steps whose outputs the layer
# takes, and -1 is the network's input. A Sequential model is a chain; a
# functional model (ResNet's residual connections) may branch and join.


def _chain(net):
    layers = [layer for layer in leaf_layers(net) if not isinstance(layer, keras.layers.InputLayer)]
    return [(_layers.check_layer(layer), (i - 1,)) for i, layer in enumerate(layers)]


def _as_list(tensors):
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


def _functional_graph(net):
    if len(net.inputs) != 1 or len(net.outputs) != 1:
        raise InvalidArgument(
            f"Expected `net` to have one input and one output. Received: net `{net.name}` "
            f"with {len(net.inputs)} inputs and {len(net.outputs)} outputs"
        )
    made_by = {id(net.inputs[0]): -1}
    steps = []
    for layer in net.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        _layers.check_layer(layer)
        if len(layer._inbound_nodes) != 1:
            raise InvalidArgument(
                f"Cannot trace layer `{layer.name}`: it is called {len(layer._inbound_nodes)} times "
                f"in `{net.name}`, and a trace has one row per call. Received: net `{net.name}`"
            )
        inputs = tuple(made_by[id(tensor)] for tensor in _as_list(layer.input))
        steps.append((layer, inputs))
        made_by[id(layer.output)] = len(steps) - 1
    return steps


def _graph(net):
    """Returns the steps of ``net``: its leaf layers with the steps they read."""
    if isinstance(net, keras.Sequential):
        steps = _chain(net)
    elif isinstance(net, keras.Model) and getattr(net, "inputs", None):
        steps = _functional_graph(net)
    else:
        raise InvalidArgument(
            "Expected `net` to be a keras.Sequential model, such as one built by "
            "vggcourse.vgg(), or a functional keras.Model, such as "
            "keras.applications.ResNet50(weights=None). "
            f"Received: net={net!r} of type {type(net).__name__}"
        )
    if not steps:
        raise InvalidArgument(f"Expected `net` to have at least one layer. Received: net={net!r}")
    return steps


def _inputs_of(inputs, outputs, network_input):
    return [network_input if i == -1 else outputs[i] for i in inputs]


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
        steps = _graph(layers)
    else:
        if isinstance(layers, keras.layers.Layer):
            layers = [layers]
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise InvalidArgument(
                "Expected `layers` to be a Keras model or a sequence of Keras layers. "
                f"Received: layers={layers!r} of type {type(layers).__name__}"
            )
        layers = [layer for layer in layers if not isinstance(layer, keras.layers.InputLayer)]
        steps = [(_layers.check_layer(layer), (i - 1,)) for i, layer in enumerate(layers)]
    return _receptive_fields(steps)[-1][0] if steps else 1


def _receptive_fields(steps):
    """The ``(field, jump)`` after each step."""
    fields = []
    for layer, inputs in steps:
        fields.append(_layers.step_receptive_field(layer, _inputs_of(inputs, fields, (1, 1))))
    return fields


# ---------------------------------------------------------------------------
# A whole network.


def _first_misfit(steps, shape):
    """Returns ``(layer, shape)`` for the first layer whose window is larger
    than the ``(height, width, channels)`` that reach it, or None if all fit.

    Only the arithmetic of ``_layers.side_after`` is used, never Keras."""
    shapes = []  # Per step: (height, width, channels), or None once positions end.
    for layer, inputs in steps:
        reaching = _inputs_of(inputs, shapes, shape)
        if None in reaching or isinstance(layer, _layers.ENDS_POSITIONS):
            shapes.append(None)
            continue
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            return None  # Left to Keras.
        first = reaching[0]
        sides = tuple(_layers.side_after(layer, side, axis) for axis, side in enumerate(first[:2]))
        if None in sides:
            return layer, first
        shapes.append((*sides, _channels_after(layer, reaching)))
    return None


def _channels_after(layer, reaching):
    if isinstance(layer, keras.layers.Conv2D):
        return layer.filters
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return reaching[0][2] * layer.depth_multiplier
    if isinstance(layer, keras.layers.Concatenate):
        return sum(shape[2] for shape in reaching)
    return reaching[0][2]


def _smallest_side(steps, channels):
    """The smallest square input side that every layer accepts, or None."""
    for side in range(1, 4097):
        if _first_misfit(steps, (side, side, channels)) is None:
            return side
    return None


def _check_input_fits(net, steps, input_shape):
    misfit = _first_misfit(steps, _check_input_shape(input_shape))
    if misfit is None:
        return
    layer, reaching = misfit
    smallest = _smallest_side(steps, _check_input_shape(input_shape)[-1])
    hint = f" The smallest square input it takes is {smallest}x{smallest}." if smallest else ""
    raise InvalidArgument(
        f"The input is too small for `{net.name}`: layer `{layer.name}` would get "
        f"shape {reaching}, which is smaller than its window.{hint} "
        f"Received: input_shape={tuple(input_shape)}"
    )


def trace_layers(net, input_shape):
    """Traces a network layer by layer: shapes, parameters, MACs, activations.

    Args:
        net: a ``keras.Sequential`` model, such as one built by
            ``vggcourse.vgg()``, whose nested Sequential blocks are opened
            up; or a functional ``keras.Model`` with one input and one output,
            whose branches may split and join, such as
            ``keras.applications.ResNet50(weights=None)``. It may be unbuilt,
            or built for another input size.
        input_shape: the input's shape, ``(height, width, channels)`` or with a
            batch axis, ``(batch, height, width, channels)``, as in the
            ``(1, 224, 224, 1)`` of a shape trace. The batch size is ignored:
            every count is for one example.

    Returns:
        A ``pandas.DataFrame`` with one row per leaf layer, in the order the
        layers run, and the columns:

        - ``layer``: the layer's name; ``kind``: its class name;
        - ``output_shape``: the output's shape for one example;
        - ``params``: parameters, biases included;
        - ``macs``: multiply-accumulates for one example;
        - ``activations``: values in the output, for one example;
        - ``new_tensor``: False for layers whose output shares its input's
          memory (Flatten and Reshape; Dropout, the identity at inference);
        - ``receptive_field``: side of the input patch one output value
          depends on (where branches join, the widest branch's), ``<NA>``
          once every output depends on the whole input.

        ``trace.attrs`` holds ``net`` (the network's name) and
        ``input_shape`` (for one example). ``totals(trace)`` adds it all up.

    Raises:
        InvalidArgument: if ``net`` is neither a ``keras.Sequential`` nor a
            functional model, if ``input_shape`` is malformed or too small for
            the network's windows, or if a layer is of a kind that cannot be
            counted.
    """
    steps = _graph(net)
    example_shape = _check_input_shape(input_shape)
    _check_input_fits(net, steps, input_shape)
    fields = _receptive_fields(steps)
    shapes, rows = [], []
    for (layer, inputs), (field, _) in zip(steps, fields):
        reaching = _inputs_of(inputs, shapes, example_shape)
        shape = _layers.output_shape(layer, reaching)
        shapes.append(shape)
        rows.append(
            {
                "layer": layer.name,
                "kind": type(layer).__name__,
                "output_shape": shape,
                "params": layer_params(layer, reaching[0]),
                "macs": layer_macs(layer, reaching[0]),
                "activations": math.prod(shape),
                "new_tensor": not isinstance(layer, _layers.VIEWS),
                "receptive_field": field,
            }
        )
    trace = pd.DataFrame(rows, columns=list(COLUMNS)).astype(_DTYPES)
    trace.attrs = {"net": net.name, "input_shape": example_shape}
    return trace

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
