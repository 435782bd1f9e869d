"""A fully convolutional VGG: the paper's dense evaluation.

At test time the VGG paper turns the dense layers into convolutions: "the
first FC layer to a 7 × 7 conv. layer, the last two FC layers to 1 × 1 conv.
layers". The network then takes an image of any size and returns a map of
class scores, one per position, and "the class score map is spatially
averaged (sum-pooled)" into one vector (Simonyan and Zisserman, 2015, Section
3.2). No weight is retrained: each dense layer's weights are reshaped.

Reference:
- [Very Deep Convolutional Networks for Large-Scale Image Recognition](
    https://arxiv.org/abs/1409.1556), Section 3.2.
"""

import keras
import numpy as np

from vggcourse._checks import check_shape
from vggcourse.errors import InvalidArgument
from vggcourse.models import VGG, vgg_block

__all__ = ["dense_evaluation", "fully_convolutional"]


def _check_dense_vgg(net):
    if not isinstance(net, VGG):
        raise InvalidArgument(
            "Expected `net` to be a VGG built by vggcourse.vgg(). "
            f"Received: net={net!r} of type {type(net).__name__}"
        )
    *blocks, classifier = net.layers
    names = [layer.name for layer in classifier.layers]
    if "fc1" not in names or not net.built:
        raise InvalidArgument(
            "Expected `net` to be a built VGG with the dense head (head='dense'), whose "
            "fc1, fc2 and predictions layers become convolutions. "
            f"Received: a {'built' if net.built else 'not built'} net with classifier layers {names}"
        )
    return blocks, {layer.name: layer for layer in classifier.layers}


def _copy_block(block):
    """A copy of ``block`` with its weights, for images of any height and width."""
    convs = [layer for layer in block.layers if isinstance(layer, keras.layers.Conv2D)]
    batch_norm = any(isinstance(layer, keras.layers.BatchNormalization) for layer in block.layers)
    copy = vgg_block(len(convs), convs[0].filters, batch_norm=batch_norm, name=block.name)
    copy.build((None, None, None, convs[0].kernel.shape[2]))
    copy.set_weights(block.get_weights())
    return copy


def _as_conv(dense, side, channels, name, **kwargs):
    """A ``side`` x ``side`` convolution that computes what ``dense`` computes on a flattened map."""
    kernel, bias = dense.get_weights()
    # Flatten reads a (side, side, channels) map in row-major order, so the
    # dense kernel's rows are the convolution kernel's positions and channels.
    conv = keras.layers.Conv2D(dense.units, side, padding="valid", name=name, **kwargs)
    conv.build((None, side, side, channels))
    conv.set_weights([kernel.reshape(side, side, channels, dense.units), bias])
    return conv


def fully_convolutional(net, input_shape):
    """Turns a trained VGG's dense layers into convolutions, with the same weights.

    Args:
        net: a built VGG with the dense head (``vggcourse.vgg(...)``).
        input_shape: the image size it was trained on, ``(height, width,
            channels)``. fc1 becomes a convolution as large as the map that
            reaches it at this size (7x7 at 224 px, 1x1 at 32 px).

    Returns:
        A ``keras.Sequential`` named ``<net>_fully_conv``: copies of the
        blocks, then ``fc1`` (a k x k convolution with ReLU), ``fc2`` (1x1,
        ReLU) and ``predictions`` (1x1, float32). On the training size it
        outputs a ``(1, 1, num_classes)`` map whose values are ``net``'s
        logits; on a larger image, a map with one vector of class scores per
        position. Dropout is left out: it is the identity at inference.
    """
    blocks, head = _check_dense_vgg(net)
    height, width, channels = check_shape("input_shape", input_shape, ranks=(3,), example=(224, 224, 3))
    if height != width:
        raise InvalidArgument(
            "Expected a square training size, so that fc1 becomes a square convolution. "
            f"Received: input_shape={(height, width, channels)}"
        )
    # Each block keeps the size through its padded convolutions and halves it
    # (rounding down) in its 2x2 pool.
    side = height
    for _ in blocks:
        side //= 2
    if side < 1:
        raise InvalidArgument(
            f"Expected an input_shape at least {2 ** len(blocks)} pixels square, so that a map "
            f"reaches fc1. Received: input_shape={(height, width, channels)}"
        )
    maps = [layer for layer in blocks[-1].layers if isinstance(layer, keras.layers.Conv2D)][-1].filters
    if head["fc1"].kernel.shape[0] != side * side * maps:
        raise InvalidArgument(
            f"Expected the size `net` was built for: its fc1 reads {head['fc1'].kernel.shape[0]:,} values, "
            f"but at input_shape={(height, width, channels)} a {side}x{side}x{maps} map reaches it"
        )
    units = head["fc1"].units
    layers = [
        keras.Input((None, None, channels)),
        *(_copy_block(block) for block in blocks),
        _as_conv(head["fc1"], side, maps, "fc1", activation="relu"),
        _as_conv(head["fc2"], 1, units, "fc2", activation="relu"),
        _as_conv(head["predictions"], 1, head["fc2"].units, "predictions", dtype="float32"),
    ]
    return keras.Sequential(layers, name=f"{net.name}_fully_conv")


def dense_evaluation(fully_conv, images):
    """The paper's dense evaluation: the class score map, averaged over positions.

    Args:
        fully_conv: a network from ``fully_convolutional``.
        images: float images of shape ``(n, height, width, channels)``, as
            large as the training size or larger, already scaled as the
            network expects.

    Returns:
        ``(scores, score_map)``: NumPy arrays of shape ``(n, num_classes)``
        and ``(n, h, w, num_classes)``; ``scores`` is the mean of
        ``score_map`` over its ``h x w`` positions.
    """
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4:
        raise InvalidArgument(
            "Expected `images` of shape (n, height, width, channels). "
            f"Received: images of shape {images.shape}"
        )
    score_map = np.asarray(fully_conv.predict(images, verbose=0))
    return score_map.mean(axis=(1, 2)), score_map
