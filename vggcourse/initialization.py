"""Where training starts: initial weights, the scale of activations, and the first steps.

The VGG paper's hardest lesson is a training problem: deep nets started from
random weights of a fixed spread would not learn. The authors trained their
shallowest configuration, A (VGG-11), first and copied its layers into the
deeper nets (Simonyan and Zisserman, 2015, Section 3.1). This module sets up
each starting point, measures how the scale of the activations changes layer
after layer at the start, and records the loss of the first training steps.

Reference:
- [Very Deep Convolutional Networks for Large-Scale Image Recognition](
    https://arxiv.org/abs/1409.1556), Section 3.1.
- [Understanding the difficulty of training deep feedforward neural networks](
    https://proceedings.mlr.press/v9/glorot10a.html) (Glorot and Bengio, 2010).
- [Delving Deep into Rectifiers](https://arxiv.org/abs/1502.01852) (He et al.,
    2015), Section 2.2.
"""

import math

import keras
import numpy as np
import pandas as pd

from vggcourse._checks import check_choice, check_int
from vggcourse._quiet import fresh_models
from vggcourse.data import make_dataset
from vggcourse.errors import InvalidArgument
from vggcourse.models import VGG, leaf_layers
from vggcourse.train import TrainConfig, _compile, build_model

__all__ = [
    "PAPER_COPIED_LAYERS",
    "STARTS",
    "activation_scales",
    "copy_layers",
    "first_steps",
    "initialize",
]

# The starting points, as (label, what it does). Every bias starts at zero.
STARTS = {
    "normal_0.01": (
        "N(0, 0.01²)",
        "normal weights of standard deviation 0.01, the example of a fixed "
        "spread with which He et al. (2015) say very deep nets hardly converge",
    ),
    "normal_0.1": (
        "N(0, 0.1²)",
        "normal weights of variance 10⁻², as Section 3.1 of the paper writes it",
    ),
    "glorot": (
        "Glorot uniform",
        "Keras' default: uniform, of variance 2 / (fan_in + fan_out), a "
        "compromise between the forward and the backward signal",
    ),
    "he": (
        "He normal",
        "Keras' HeNormal: a normal cut at two standard deviations, of variance "
        "2 / fan_in, which keeps a ReLU net's scale",
    ),
    "vgg11_copy": (
        "copied from VGG-11",
        "N(0, 0.01²), with the layers of PAPER_COPIED_LAYERS copied from a "
        "trained VGG-11, as the paper initialised its deeper nets (which "
        "layers received them is this course's reading)",
    ),
}

# "We initialised the first four convolutional layers and the last three
# fully-connected layers with the layers of net A" (Section 3.1). A's first
# four convolutions are the first of blocks 1 and 2 and both of block 3; in a
# deeper VGG the layers of the same name have the same shapes, and the
# layers between them (block1_conv2, block2_conv2, ...) stay random.
PAPER_COPIED_LAYERS = (
    "block1_conv1",
    "block2_conv1",
    "block3_conv1",
    "block3_conv2",
    "fc1",
    "fc2",
    "predictions",
)

_WEIGHTED = (keras.layers.Conv2D, keras.layers.Dense)


def _vgg_of(model, name):
    if isinstance(model, VGG):
        return model
    if isinstance(model, keras.Model):
        for layer in model.layers:
            if isinstance(layer, VGG):
                return layer
    raise InvalidArgument(
        f"Expected `{name}` to be a VGG network or a model that holds one, such as "
        f"vggcourse.build_model(config). Received: {name}={model!r}"
    )


def _weighted_layers(net):
    return [layer for layer in leaf_layers(net) if isinstance(layer, _WEIGHTED)]


def _initializer(start, seed):
    """Keras' initializer for a start; one seed generator draws every layer in turn."""
    if start == "glorot":
        return keras.initializers.GlorotUniform(seed=seed)
    if start == "he":
        return keras.initializers.HeNormal(seed=seed)
    return keras.initializers.RandomNormal(0.0, 0.1 if start == "normal_0.1" else 0.01, seed=seed)


def copy_layers(net, source, names=PAPER_COPIED_LAYERS):
    """Copies the weights of the layers called ``names`` from ``source`` into ``net``.

    Args:
        net: the VGG to initialise, or a model that holds one.
        source: a trained VGG, or a model that holds one, such as
            ``vggcourse.load_trained_vgg()``.
        names: the layers to copy; by default the paper's choice.

    Returns:
        ``names``, as a tuple.

    Raises:
        InvalidArgument: a layer is missing from either network, or its
            weights have other shapes in the two.
    """
    ours = {layer.name: layer for layer in leaf_layers(_vgg_of(net, "net"))}
    theirs = {layer.name: layer for layer in leaf_layers(_vgg_of(source, "source"))}
    for name in names:
        if name not in ours or name not in theirs:
            raise InvalidArgument(
                f"Cannot copy layer `{name}`: both networks must have it. "
                f"Received: names={tuple(names)!r}"
            )
        shapes = [w.shape for w in ours[name].get_weights()]
        given = [w.shape for w in theirs[name].get_weights()]
        if shapes != given:
            raise InvalidArgument(
                f"Cannot copy layer `{name}`: its weights have shapes {given} in `source` "
                f"and {shapes} in `net`. Received: names={tuple(names)!r}"
            )
        ours[name].set_weights(theirs[name].get_weights())
    return tuple(names)


def initialize(net, start, *, seed=0, source=None):
    """Sets the weights of every convolution and dense layer of ``net`` for a start.

    Args:
        net: a built VGG, or a built model that holds one.
        start: a key of ``STARTS``.
        seed: seeds the random weights.
        source: for ``"vgg11_copy"`` only: the trained VGG-11 to copy from,
            such as ``vggcourse.load_trained_vgg()``.

    Returns:
        ``net``, with new weights. Biases are zero; batch normalization
        layers keep their own start (scale 1, offset 0).
    """
    start = check_choice("start", start, tuple(STARTS))
    seed = check_int("seed", seed, minimum=0)
    if (start == "vgg11_copy") != (source is not None):
        raise InvalidArgument(
            "Expected `source` (a trained VGG-11) with start='vgg11_copy', and only then. "
            f"Received: start={start!r}, source={'None' if source is None else 'a model'}"
        )
    draw = _initializer(start, keras.random.SeedGenerator(seed))
    for layer in _weighted_layers(_vgg_of(net, "net")):
        layer.kernel.assign(draw(layer.kernel.shape, dtype=layer.kernel.dtype))
        layer.bias.assign(np.zeros(layer.bias.shape, layer.bias.dtype))
    if source is not None:
        copy_layers(net, source)
    return net


def activation_scales(model, images):
    """Measures the standard deviation of every convolution's and dense layer's output.

    Args:
        model: a model from ``build_model``: preprocessing, then a VGG.
        images: uint8 images of shape ``(n, 28, 28)`` or ``(n, 28, 28, 1)``.

    Returns:
        A ``pandas.Series`` indexed by layer name, in order, of the standard
        deviation of that layer's output over the images (after its ReLU,
        if it has one).
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    x = keras.ops.convert_to_tensor(images)
    scales = {}
    for layer in model.layers:
        if isinstance(layer, VGG):
            for leaf in leaf_layers(layer):
                x = leaf(x, training=False)
                if isinstance(leaf, _WEIGHTED):
                    scales[leaf.name] = float(keras.ops.std(keras.ops.cast(x, "float32")))
        else:
            x = layer(x, training=False)
    return pd.Series(scales, name="std", dtype="float64")


class _StepLosses(keras.callbacks.Callback):
    """Keeps the loss of every training step.

    Keras logs the running mean of the epoch's losses after each step;
    ``k * mean_k - (k - 1) * mean_(k - 1)`` recovers step k's own loss.
    """

    def __init__(self):
        super().__init__()
        self.means = []

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])
        self.means.append(loss)
        if not math.isfinite(loss):
            self.model.stop_training = True

    def losses(self):
        means = np.asarray(self.means)
        totals = means * np.arange(1, len(means) + 1)
        return np.diff(totals, prepend=0.0)


_EAGER_STEPS = 10


def first_steps(config, data, start, *, steps, source=None):
    """Trains a fresh model from a start for a few steps and returns every step's loss.

    Args:
        config: a ``TrainConfig``: the network, image size, batch size,
            learning rate and momentum (neither schedule nor warm-up is used:
            the rate is constant), augmentation, label smoothing, and the
            seed of the weights and of the data order.
        data: ``((x_train, y_train), _)`` as ``load_fashion_mnist()`` returns it.
        start: a key of ``STARTS``.
        steps: training steps, at most one epoch of ``x_train``.
        source: the trained VGG-11 for ``start="vgg11_copy"``.

    Returns:
        A ``pandas.Series`` of losses indexed by step, from 1. It stops at
        the first loss that is not finite: a run that diverges is shorter.
    """
    if not isinstance(config, TrainConfig):
        raise InvalidArgument(
            f"Expected `config` to be a TrainConfig. Received: config of type {type(config).__name__}"
        )
    (x_train, y_train), _ = data
    steps = check_int("steps", steps, maximum=math.ceil(len(x_train) / config.batch_size))
    keras.utils.set_random_seed(config.seed)
    model = build_model(config)
    initialize(model, start, seed=config.seed, source=source)
    # The course's optimizer and loss, at a constant rate: a few steps have
    # no schedule and no warm-up.
    _compile(model, config.replace(lr_schedule="constant", warmup_epochs=0), steps_per_epoch=steps)
    # Tracing the training step costs seconds; a handful of steps run sooner eagerly.
    model.run_eagerly = steps <= _EAGER_STEPS
    dataset = make_dataset(x_train, y_train, config.batch_size, shuffle=True, seed=config.seed, epoch=0,
                           flip=config.flip, shift=config.shift)
    recorder = _StepLosses()
    with fresh_models():
        model.fit(dataset.take(steps), epochs=1, verbose=0, shuffle=False, callbacks=[recorder])
    losses = recorder.losses()
    finite = np.isfinite(losses)
    if not finite.all():
        losses = losses[: int(np.argmin(finite))]
    return pd.Series(losses, index=pd.RangeIndex(1, len(losses) + 1, name="step"), name=start)
