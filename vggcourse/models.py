"""VGG networks built from repeated blocks.

Reference:
- [Very Deep Convolutional Networks for Large-Scale Image Recognition](
    https://arxiv.org/abs/1409.1556) (Simonyan and Zisserman, ICLR 2015)

Layer names follow Keras' ``keras/src/applications/vgg16.py`` (``block1_conv1``,
``block1_pool``, ``fc1``, ``predictions``), so a printed summary can be matched
to the code without a map.
"""

import types

import keras

from vggcourse._checks import check_bool, check_choice, check_float, check_int, check_name
from vggcourse.errors import InvalidArgument

__all__ = [
    "HEADS",
    "VGG_ARCHS",
    "VGG",
    "VGGBlock",
    "assert_same_architecture",
    "leaf_layers",
    "min_input_size",
    "scale_arch",
    "vgg",
    "vgg_block",
    "vgg_by_name",
]

# Table 1 of the paper: configurations A, B, D and E as (num_convs, num_channels)
# per block. C (VGG-16 with some 1x1 convolutions) is left out, as in Keras.
VGG_ARCHS = types.MappingProxyType(
    {
        "vgg11": ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)),  # A
        "vgg13": ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512)),  # B
        "vgg16": ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),  # D
        "vgg19": ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),  # E
    }
)


# The classifiers that ``vgg`` can put on top of the blocks: the paper's three
# dense layers, or global average pooling and one dense layer (Lin et al., 2014).
HEADS = ("dense", "gap")


def _check_conv_arch(conv_arch):
    expected = (
        "Expected `conv_arch` to be a non-empty sequence of "
        "(num_convs, num_channels) pairs of positive integers, such as "
        "((1, 64), (1, 128)). "
    )
    if isinstance(conv_arch, (str, bytes)) or not hasattr(conv_arch, "__len__"):
        raise InvalidArgument(f"{expected}Received: conv_arch={conv_arch!r}")
    if len(conv_arch) == 0:
        raise InvalidArgument(f"{expected}Received: conv_arch={conv_arch!r}")
    checked = []
    for i, pair in enumerate(conv_arch):
        if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
            raise InvalidArgument(f"{expected}Received: conv_arch[{i}]={pair!r}")
        num_convs, num_channels = pair
        checked.append(
            (
                check_int(f"conv_arch[{i}][0] (num_convs)", num_convs),
                check_int(f"conv_arch[{i}][1] (num_channels)", num_channels),
            )
        )
    return tuple(checked)


# ---------------------------------------------------------------------------
# Input-size checks. Each block halves the image, so a network with k blocks
# needs at least 2**k pixels per side; Keras would otherwise fail inside the
# pooling op with "Computed output size would be zero or negative".


def min_input_size(conv_arch):
    """Returns the smallest image side that survives every pooling stage.

    Args:
        conv_arch: a sequence of ``(num_convs, num_channels)`` pairs.

    Returns:
        ``2 ** len(conv_arch)``: 32 for the five-block VGGs.
    """
    return 2 ** len(_check_conv_arch(conv_arch))


def _spatial_dims(input_shape):
    shape = tuple(input_shape)
    if len(shape) != 4:
        raise InvalidArgument(
            "Expected a 4D input of shape (batch, height, width, channels). "
            f"Received: input_shape={shape}"
        )
    return shape[1], shape[2]


def _check_input_size(owner, input_shape, minimum):
    height, width = _spatial_dims(input_shape)
    if input_shape[0] == 0:
        raise InvalidArgument(
            f"Expected at least one image in the input to `{owner.name}`. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    for side in (height, width):
        if side is not None and side < minimum:
            raise InvalidArgument(
                f"The input to `{owner.name}` is too small: {height}x{width} pixels. "
                f"Its {owner._num_pools} 2x2 max-pool stage(s) halve each side, so "
                f"the minimum input size is {minimum}x{minimum}. "
                f"Received: input_shape={tuple(input_shape)}"
            )


class _PoolCheckedSequential(keras.Sequential):
    """A ``keras.Sequential`` that refuses inputs too small for its pools."""

    @property
    def _num_pools(self):
        return sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in leaf_layers(self))

    def _check(self, input_shape):
        _check_input_size(self, input_shape, 2**self._num_pools)

    def build(self, input_shape=None):
        if input_shape is not None:
            self._check(input_shape)
        super().build(input_shape)

    def call(self, inputs, training=None, mask=None):
        self._check(inputs.shape)
        return super().call(inputs, training=training, mask=mask)


@keras.saving.register_keras_serializable(package="vggcourse")
class VGGBlock(_PoolCheckedSequential):
    """One VGG block: 3x3 'same' convolutions with ReLU (and optionally batch
    normalization), then a 2x2/2 max-pool."""


@keras.saving.register_keras_serializable(package="vggcourse")
class VGG(_PoolCheckedSequential):
    """A VGG network: VGG blocks, then a classifier block that outputs logits."""


# ---------------------------------------------------------------------------
# Builders.


def vgg_block(num_convs, num_channels, *, batch_norm=False, name="block1"):
    """Builds one VGG block.

    Reference:
    - [Very Deep Convolutional Networks for Large-Scale Image Recognition](
        https://arxiv.org/abs/1409.1556), Section 2.1.
    - [Batch Normalization: Accelerating Deep Network Training by Reducing
        Internal Covariate Shift](https://arxiv.org/abs/1502.03167) (Ioffe and
        Szegedy, 2015), for ``batch_norm=True``.

    Args:
        num_convs: number of 3x3 convolutions in the block.
        num_channels: output channels of every convolution in the block.
        batch_norm: put batch normalization between each convolution and its
            ReLU, as torchvision's ``vgg16_bn`` does. The convolutions keep
            their biases, so the parameter counts match torchvision's.
        name: the block's name, which prefixes its layers' names:
            ``block1_conv1``, ..., ``block1_pool``.

    Returns:
        A ``keras.Sequential`` (a ``VGGBlock``) of ``num_convs`` Conv2D layers
        (3x3, padding 'same', ReLU) followed by MaxPooling2D(2, strides=2). The
        convolutions keep height and width; the pool halves them. With
        ``batch_norm=True`` each convolution is followed by BatchNormalization
        (``block1_bn1``) and ReLU (``block1_relu1``) layers instead of
        having a ReLU activation of its own.
    """
    num_convs = check_int("num_convs", num_convs)
    num_channels = check_int("num_channels", num_channels)
    batch_norm = check_bool("batch_norm", batch_norm)
    name = check_name("name", name)
    layers = []
    for i in range(1, num_convs + 1):
        layers.append(
            keras.layers.Conv2D(
                num_channels,
                kernel_size=3,
                padding="same",
                activation=None if batch_norm else "relu",
                name=f"{name}_conv{i}",
            )
        )
        if batch_norm:
            layers.append(keras.layers.BatchNormalization(name=f"{name}_bn{i}"))
            layers.append(keras.layers.ReLU(name=f"{name}_relu{i}"))
    layers.append(keras.layers.MaxPooling2D(pool_size=2, strides=2, name=f"{name}_pool"))
    return VGGBlock(layers, name=name)


def scale_arch(conv_arch, ratio):
    """Divides every block's channel count by ``ratio``, as d2l's ``small_conv_arch``.

    Args:
        conv_arch: a sequence of ``(num_convs, num_channels)`` pairs.
        ratio: a positive integer; channels become ``num_channels // ratio``.

    Returns:
        A new ``conv_arch`` tuple with the same number of convolutions.
    """
    conv_arch = _check_conv_arch(conv_arch)
    ratio = check_int("ratio", ratio)
    smallest = min(channels for _, channels in conv_arch)
    if smallest // ratio == 0:
        raise InvalidArgument(
            f"`ratio` is too large: it would leave a block with {smallest} // {ratio} = 0 "
            f"channels. Expected `ratio` <= {smallest}. Received: ratio={ratio}"
        )
    return tuple((num_convs, channels // ratio) for num_convs, channels in conv_arch)


def vgg(
    conv_arch,
    num_classes=10,
    *,
    dense_units=4096,
    dropout=0.5,
    batch_norm=False,
    head="dense",
    name="vgg",
):
    """Builds a VGG network from a block configuration.

    Reference:
    - [Very Deep Convolutional Networks for Large-Scale Image Recognition](
        https://arxiv.org/abs/1409.1556), Table 1.
    - [Network In Network](https://arxiv.org/abs/1312.4400) (Lin et al.,
        2014), Section 3.2, for ``head="gap"``.

    Args:
        conv_arch: a sequence of ``(num_convs, num_channels)`` pairs, one per
            block, such as ``VGG_ARCHS["vgg11"]``.
        num_classes: number of output logits.
        dense_units: width of the two hidden fully connected layers of the
            ``"dense"`` head.
        dropout: dropout rate after each hidden fully connected layer of the
            ``"dense"`` head.
        batch_norm: batch normalization after every convolution, before its
            ReLU (see ``vgg_block``).
        head: ``"dense"`` for the paper's classifier, or ``"gap"`` for global
            average pooling followed by one Dense layer, which has no hidden
            dense layers (so ``dense_units`` and ``dropout`` are not used).
        name: the model's name.

    Returns:
        A ``keras.Sequential`` (a ``VGG``) whose ``.layers`` are the blocks
        ``block1`` ... ``blockN`` followed by one ``classifier`` block. The
        ``"dense"`` classifier is Flatten, Dense+ReLU (``fc1``), Dropout,
        Dense+ReLU (``fc2``), Dropout and Dense(num_classes)
        (``predictions``); the ``"gap"`` classifier is
        GlobalAveragePooling2D (``avg_pool``) and ``predictions``. The last
        layer outputs **logits**: pair it with
        ``SparseCategoricalCrossentropy(from_logits=True)``. It computes in
        float32 even under a mixed-precision policy, so that the softmax in
        the loss stays numerically stable.
    """
    conv_arch = _check_conv_arch(conv_arch)
    num_classes = check_int("num_classes", num_classes)
    dense_units = check_int("dense_units", dense_units)
    dropout = check_float("dropout", dropout, 0, 1, low_inclusive=True)
    batch_norm = check_bool("batch_norm", batch_norm)
    head = check_choice("head", head, HEADS)
    blocks = [
        vgg_block(num_convs, num_channels, batch_norm=batch_norm, name=f"block{i}")
        for i, (num_convs, num_channels) in enumerate(conv_arch, start=1)
    ]
    predictions = keras.layers.Dense(num_classes, name="predictions", dtype="float32")
    if head == "gap":
        layers = [keras.layers.GlobalAveragePooling2D(name="avg_pool"), predictions]
    else:
        layers = [
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(dense_units, activation="relu", name="fc1"),
            keras.layers.Dropout(dropout, name="fc1_dropout"),
            keras.layers.Dense(dense_units, activation="relu", name="fc2"),
            keras.layers.Dropout(dropout, name="fc2_dropout"),
            predictions,
        ]
    classifier = keras.Sequential(layers, name="classifier")
    return VGG([*blocks, classifier], name=name)


def vgg_by_name(
    arch,
    ratio=1,
    num_classes=10,
    *,
    dense_units=4096,
    dropout=0.5,
    batch_norm=False,
    head="dense",
    name=None,
):
    """Builds the VGG of ``VGG_ARCHS[arch]``, with every block's channels divided by ``ratio``.

    Taught in: *The VGG family*; the training chapter builds its networks
    this way, through ``vggcourse.train.build_network``.

    Args:
        arch: a key of ``VGG_ARCHS``, such as ``"vgg11"``.
        ratio: divide every block's channels by this (``scale_arch``); d2l uses 4.
        num_classes, dense_units, dropout, batch_norm, head: as for ``vgg``.
        name: the model's name; by default ``arch``, with ``_bn`` appended
            when ``batch_norm`` is set (as torchvision's ``vgg16_bn``).

    Returns:
        ``vgg(scale_arch(VGG_ARCHS[arch], ratio), ...)``.
    """
    check_choice("arch", arch, tuple(VGG_ARCHS))
    batch_norm = check_bool("batch_norm", batch_norm)
    conv_arch = scale_arch(VGG_ARCHS[arch], ratio)
    return vgg(
        conv_arch,
        num_classes,
        dense_units=dense_units,
        dropout=dropout,
        batch_norm=batch_norm,
        head=head,
        name=name or (f"{arch}_bn" if batch_norm else arch),
    )


# ---------------------------------------------------------------------------
# Comparing architectures.


def leaf_layers(net):
    """Yields the layers of ``net`` that hold no other layers, in order."""
    for layer in net.layers:
        if isinstance(layer, keras.Sequential):
            yield from leaf_layers(layer)
        else:
            yield layer


# Config entries that say how a layer was made rather than what it computes.
_IGNORED_CONFIG = {
    "name", "dtype", "trainable", "seed",
    "kernel_initializer", "bias_initializer",
}


def _layer_spec(layer):
    config = {k: v for k, v in layer.get_config().items() if k not in _IGNORED_CONFIG}
    return type(layer).__name__, config


def assert_same_architecture(net, reference, input_shape):
    """Raises ``AssertionError`` unless two networks compute the same function shape.

    The leaf layers must match one for one: the same class, the same
    configuration (names, dtypes and initializers aside), and the same output
    shape for an input of ``input_shape``.

    Args:
        net: a Keras model, for example one built by hand in a chapter.
        reference: the model to compare with, for example ``vgg(...)``.
        input_shape: the input shape, batch included, such as ``(1, 224, 224, 1)``.
    """
    ours, theirs = list(leaf_layers(net)), list(leaf_layers(reference))
    if len(ours) != len(theirs):
        raise AssertionError(
            f"{net.name} has {len(ours)} leaf layers, {reference.name} has {len(theirs)}"
        )
    shape_a = shape_b = tuple(input_shape)
    for a, b in zip(ours, theirs):
        spec_a, spec_b = _layer_spec(a), _layer_spec(b)
        if spec_a != spec_b:
            raise AssertionError(f"layer {a.name} differs from {b.name}: {spec_a} != {spec_b}")
        shape_a, shape_b = a.compute_output_shape(shape_a), b.compute_output_shape(shape_b)
        if tuple(shape_a) != tuple(shape_b):
            raise AssertionError(
                f"layer {a.name} outputs {shape_a}, {b.name} outputs {shape_b}"
            )
