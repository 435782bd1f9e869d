"""Counting one layer: its parameters, its MACs, its window and stride.

The whole-network trace of ``vggcourse.trace`` is built from these, with the
conventions its docstring states.
"""

import math

import keras

from vggcourse._checks import check_shape
from vggcourse.errors import InvalidArgument

# Layers that change the values but not the shape, with no parameters and no MACs.
ELEMENTWISE = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.Rescaling,
)
# Layers whose output is their input seen differently: a reshape, or Dropout,
# which is the identity at inference. They write no new memory.
VIEWS = (
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Dropout,
)
POOLS = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
)
GLOBAL_POOLS = (
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
)
# Layers that keep the shape but have parameters of their own: batch norm's
# scale and offset, and its moving mean and variance (Keras counts all four in
# count_params; only the first two are trained). At inference they are an
# affine map that can be folded into the convolution before it, so they are
# counted with no MACs, as the activations are.
NORMALIZATIONS = (keras.layers.BatchNormalization,)
# Convolutions: the ordinary one, and the depthwise one of MobileNet, which
# filters each input channel on its own.
CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
# Layers that join branches: a residual connection adds, Inception concatenates.
# Their additions are not multiply-accumulates, so they count 0 MACs.
MERGES = (keras.layers.Add, keras.layers.Concatenate)
SUPPORTED = (
    *CONVS,
    keras.layers.Dense,
    keras.layers.ZeroPadding2D,
    *POOLS,
    *GLOBAL_POOLS,
    *VIEWS,
    *ELEMENTWISE,
    *NORMALIZATIONS,
    *MERGES,
)


def check_layer(layer):
    """Returns ``layer`` if it is a Keras layer of a kind the course counts."""
    if not isinstance(layer, keras.layers.Layer):
        raise InvalidArgument(
            "Expected `layer` to be a Keras layer, such as keras.layers.Conv2D(...). "
            f"Received: layer={layer!r} of type {type(layer).__name__}"
        )
    if not isinstance(layer, SUPPORTED):
        names = ", ".join(sorted(cls.__name__ for cls in SUPPORTED))
        raise InvalidArgument(
            f"Cannot count layer `{layer.name}` of type {type(layer).__name__}. "
            f"Expected one of: {names}. Received: layer={layer!r}"
        )
    return layer


def output_shape(layer, shapes):
    """Output shape of ``layer`` for one example, given its inputs' shapes."""
    if isinstance(layer, MERGES):
        return tuple(layer.compute_output_shape([(1, *shape) for shape in shapes]))[1:]
    return tuple(layer.compute_output_shape((1, *shapes[0])))[1:]


def _channels_axis(layer):
    return 0 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1


def _conv_weights_per_output(layer, shape):
    """Weights that one output value of a convolution combines: its MACs."""
    kh, kw = layer.kernel_size
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return kh * kw
    return kh * kw * (shape[_channels_axis(layer)] // layer.groups)


def layer_params(layer, input_shape):
    """Counts a layer's parameters, biases included, from its configuration.

    Args:
        layer: a Keras layer: Conv2D, DepthwiseConv2D, Dense,
            BatchNormalization, or a layer without parameters (pooling,
            padding, Flatten, Dropout, Activation, ReLU, Rescaling, Add,
            Concatenate).
        input_shape: the shape of the layer's input for one example, such as
            ``(56, 56, 128)``, or with a leading batch axis.

    Returns:
        The number of parameters the layer has when it takes inputs of
        ``input_shape``: for a Conv2D, ``kh * kw * c_in / groups * filters``
        weights plus ``filters`` biases; for a DepthwiseConv2D, ``kh * kw *
        c_in * depth_multiplier`` weights plus one bias per output channel;
        for a Dense layer, ``in_features * units`` weights plus ``units``
        biases; for a BatchNormalization, a scale and an offset (if the layer
        has them) and a moving mean and variance per channel, as Keras'
        ``count_params``.
    """
    check_layer(layer)
    shape = _check_layer_input_shape(input_shape)
    if isinstance(layer, CONVS):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            filters = shape[_channels_axis(layer)] * layer.depth_multiplier
        else:
            filters = layer.filters
        weights = _conv_weights_per_output(layer, shape) * filters
        return weights + (filters if layer.use_bias else 0)
    if isinstance(layer, keras.layers.Dense):
        return shape[-1] * layer.units + (layer.units if layer.use_bias else 0)
    if isinstance(layer, NORMALIZATIONS):
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        # Keras counts a positive axis with the batch axis; ``shape`` has none.
        channels = math.prod(shape[axis - 1 if axis > 0 else axis] for axis in axes)
        return channels * (2 + int(layer.scale) + int(layer.center))
    return 0


def layer_macs(layer, input_shape):
    """Counts the multiply-accumulates a layer does for one example.

    Args:
        layer: a Keras layer, as for ``layer_params``. A merge layer (Add,
            Concatenate) counts 0, so its input shape may be any one of its
            inputs'.
        input_shape: the shape of the layer's input for one example, such as
            ``(56, 56, 128)``, or with a leading batch axis.

    Returns:
        For a convolution, every output value costs the weights it combines
        (``kh * kw * c_in / groups`` for a Conv2D, ``kh * kw`` for a
        DepthwiseConv2D), so the layer costs that times the values of its
        output. For a Dense layer, ``in_features * units`` (times any extra
        leading axes). Every other layer: 0.
    """
    check_layer(layer)
    shape = _check_layer_input_shape(input_shape)
    if isinstance(layer, CONVS):
        outputs = math.prod(output_shape(layer, [shape]))
        return outputs * _conv_weights_per_output(layer, shape)
    if isinstance(layer, keras.layers.Dense):
        return math.prod(output_shape(layer, [shape])) * shape[-1]
    return 0


def _check_layer_input_shape(input_shape):
    # Single layers take any rank (a Dense layer takes (features,)).
    return check_shape("input_shape", input_shape, example=(56, 56, 128), batch_axis=True)


# ---------------------------------------------------------------------------
# Receptive fields. A layer with window k and stride s, fed by outputs whose
# neighbours are `jump` input pixels apart, widens the field by (k - 1) * jump
# and multiplies the jump by s (CS231n; Luo et al., 2016, call it the
# theoretical receptive field). Where branches join, an output sees what the
# widest branch sees.


def _window(layer):
    """Returns (window, stride) of a spatial layer, or None if it keeps positions."""
    if isinstance(layer, CONVS):
        sizes = [d * (k - 1) + 1 for k, d in zip(layer.kernel_size, layer.dilation_rate)]
        strides = list(layer.strides)
    elif isinstance(layer, POOLS):
        sizes, strides = list(layer.pool_size), list(layer.strides)
    else:
        return None
    if sizes[0] != sizes[1] or strides[0] != strides[1]:
        raise InvalidArgument(
            f"Receptive fields are computed for square windows and strides only. "
            f"Received: layer `{layer.name}` with window {tuple(sizes)} and strides {tuple(strides)}"
        )
    return sizes[0], strides[0]


def step_receptive_field(layer, fields):
    """One step of the recurrence, from the ``(field, jump)`` of each input.

    A field of None means 'the whole input'.
    """
    if any(field is None for field, _ in fields):
        return None, None
    if isinstance(layer, (keras.layers.Dense, *GLOBAL_POOLS)):
        return None, None
    field, jump = max(fields)
    window = _window(layer)
    if window is None:
        return field, jump
    size, stride = window
    return field + (size - 1) * jump, jump * stride


# ---------------------------------------------------------------------------
# Input sizes, worked out with the arithmetic of Keras' convolution, padding
# and pooling ops rather than by asking Keras: how a given Keras version
# computes a pooled shape that comes out empty differs (some raise, some
# return 0), so the check runs first and the message is the same on every
# version.

# Layers after which positions no longer exist.
ENDS_POSITIONS = (keras.layers.Flatten, keras.layers.Reshape, keras.layers.Dense, *GLOBAL_POOLS)


def side_after(layer, side, axis):
    """One spatial side after ``layer``, or None if the layer's window does not fit."""
    if isinstance(layer, keras.layers.ZeroPadding2D):
        return side + sum(layer.padding[axis])
    if isinstance(layer, CONVS):
        window = layer.dilation_rate[axis] * (layer.kernel_size[axis] - 1) + 1
    elif isinstance(layer, POOLS):
        window = layer.pool_size[axis]
    else:
        return side
    stride = layer.strides[axis]
    if layer.padding == "same":
        return -(-side // stride)
    return (side - window) // stride + 1 if side >= window else None
