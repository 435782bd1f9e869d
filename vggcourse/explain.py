"""What a trained VGG has learned: feature maps, channels, saliency, Grad-CAM, its feature space.

Taught in: *What VGG learns, and reusing it*.

References:
- [Visualizing and Understanding Convolutional Networks](https://arxiv.org/abs/1311.2901)
  (Zeiler and Fergus, ECCV 2014): feature maps and the images that excite a unit.
- [Visualizing Higher-Layer Features of a Deep Network](
  https://www.researchgate.net/publication/265022827) (Erhan et al., 2009):
  an input optimised by gradient ascent to excite one unit.
- [Deep Inside Convolutional Networks](https://arxiv.org/abs/1312.6034)
  (Simonyan, Vedaldi and Zisserman, 2014): the vanilla-gradient saliency map.
- [Grad-CAM](https://arxiv.org/abs/1610.02391) (Selvaraju et al., ICCV 2017).

Every function takes a Keras model that is a stack of layers, as the course
builds them (``vggcourse.build_model``: ``rescale``, ``resize``, then the
blocks and the classifier, nested ``keras.Sequential`` models included). It
runs the model's leaf layers one by one in inference mode, so that it can keep
the output of any layer by name: a leaf layer such as ``block3_conv2`` or
``fc2``, or a nested block such as ``block3``, whose output is that of its last
layer (``block3_pool``). Images are passed as the model takes them, for the
course's models ``(n, 28, 28, 1)`` (or ``(n, 28, 28)``) with pixel values from
0 to 255; gradients are taken with respect to those pixel values.
"""

import numbers
import weakref

import keras
import numpy as np
import tensorflow as tf

from vggcourse._checks import check_float, check_int
from vggcourse.embedding import nearest_neighbors, pca_2d
from vggcourse.errors import InvalidArgument
from vggcourse.models import leaf_layers

__all__ = [
    "feature_maps",
    "grad_cam",
    "layer_names",
    "maximize_activation",
    "nearest_neighbors",
    "pca_2d",
    "saliency",
    "top_activating",
    "top_activating_each",
]


# ---------------------------------------------------------------------------
# Running a model layer by layer.


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise InvalidArgument(
            "Expected `model` to be a keras.Model, such as vggcourse.load_trained_vgg(). "
            f"Received: model of type {type(model).__name__}"
        )
    try:
        shape = tuple(model.inputs[0].shape)
    except (AttributeError, IndexError, TypeError, ValueError):
        raise InvalidArgument(
            "Expected `model` to be built with a known input shape (a keras.Input). "
            f"Received: model {model.name!r}, which has no defined input"
        ) from None
    return shape[1:]


def _names(model):
    """Maps every usable layer name to the index of the leaf layer whose output it is."""
    leaves = list(leaf_layers(model))
    index = {id(layer): i for i, layer in enumerate(leaves)}
    names = {}

    def visit(container):
        for layer in container.layers:
            if isinstance(layer, keras.Sequential):
                visit(layer)
                last = list(leaf_layers(layer))
                if last:
                    names[layer.name] = index[id(last[-1])]
            else:
                names[layer.name] = index[id(layer)]

    visit(model)
    return leaves, names


def layer_names(model):
    """Returns the names ``feature_maps`` and the other functions accept, in network order.

    Args:
        model: a Keras model built as a stack of layers.

    Returns:
        A list of names: each leaf layer (``block1_conv1``, ..., ``predictions``),
        and each nested block (``block1``, ...) right after its last layer.
    """
    _check_model(model)
    _, names = _names(model)
    return sorted(names, key=lambda name: (names[name], name not in _leaf_names(model)))


def _leaf_names(model):
    return {layer.name for layer in leaf_layers(model)}


def _resolve(model, layer_name, argument="layer_name"):
    if not isinstance(layer_name, str):
        raise InvalidArgument(
            f"Expected `{argument}` to be a layer name (str). "
            f"Received: {argument}={layer_name!r} of type {type(layer_name).__name__}"
        )
    leaves, names = _names(model)
    if layer_name not in names:
        raise InvalidArgument(
            f"Expected `{argument}` to name a layer of the model {model.name!r}, one of "
            f"{', '.join(layer_names(model))}. Received: {argument}={layer_name!r}"
        )
    return leaves, names[layer_name]


def _check_images(model, images):
    expected = _check_model(model)
    array = np.asarray(images)
    if array.ndim == len(expected) and expected[-1] == 1:
        array = array[..., np.newaxis]  # (n, 28, 28) -> (n, 28, 28, 1)
    if array.ndim != len(expected) + 1 or array.shape[1:] != expected or len(array) == 0:
        readable = ", ".join(str(side) for side in expected)
        raise InvalidArgument(
            f"Expected `images` of shape (n, {readable}), with n >= 1, as the model "
            f"{model.name!r} takes them. Received: images.shape={np.shape(images)}"
        )
    if not np.issubdtype(array.dtype, np.number):
        raise InvalidArgument(
            f"Expected `images` to hold numbers (pixel values). Received: images of dtype {array.dtype}"
        )
    return array.astype("float32")


def _run(leaves, x, keep=()):
    """Runs ``x`` through ``leaves``; returns the outputs at the indices in ``keep`` and the last."""
    kept = {}
    for i, layer in enumerate(leaves):
        x = layer(x, training=False)
        if i in keep:
            kept[i] = x
    return kept, x


# Compiled forward passes, per model and per (last layer, kept layers): a new
# tf.function for every call would be traced again every time.
_COMPILED = weakref.WeakKeyDictionary()


def _compiled_forward(model, leaves, stop, keep):
    cache = _COMPILED.setdefault(model, {})
    key = ("forward", stop, keep)
    if key not in cache:
        @tf.function(reduce_retracing=True)
        def forward(batch):
            kept, _ = _run(leaves[:stop], batch, keep=set(keep))
            return [kept[i] for i in keep]

        cache[key] = forward
    return cache[key]


def _batches(n, batch_size):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _check_batch_size(batch_size):
    return check_int("batch_size", batch_size)


# ---------------------------------------------------------------------------
# Feature maps and channels.


def feature_maps(model, images, layer_names, *, batch_size=256):
    """Returns the outputs of the named layers for ``images``.

    Reference:
    - [Visualizing and Understanding Convolutional Networks](https://arxiv.org/abs/1311.2901)
      (Zeiler and Fergus, 2014).

    Taught in: *What VGG learns, and reusing it*.

    Args:
        model: a Keras model built as a stack of layers, such as
            ``vggcourse.load_trained_vgg()``.
        images: an array of shape ``(n, 28, 28, 1)`` or ``(n, 28, 28)`` for the
            course's models (whatever the model's input is), pixel values 0-255.
        layer_names: a layer name or a list of them; see ``layer_names(model)``.
        batch_size: images per forward pass.

    Returns:
        A dict from each name to a float32 NumPy array: ``(n, height, width,
        channels)`` for a convolution, a pool or a block, ``(n, units)`` for a
        dense layer.
    """
    x = _check_images(model, images)
    if isinstance(layer_names, str):
        layer_names = [layer_names]
    if not hasattr(layer_names, "__len__") or len(layer_names) == 0:
        raise InvalidArgument(
            "Expected `layer_names` to be a layer name or a non-empty list of them. "
            f"Received: layer_names={layer_names!r}"
        )
    batch_size = _check_batch_size(batch_size)
    indices = {}
    for name in layer_names:
        leaves, indices[name] = _resolve(model, name, "layer_names")
    stop = max(indices.values()) + 1
    keep = tuple(sorted(set(indices.values())))
    # Compiled: eager layer calls are several times slower on a CPU.
    forward = _compiled_forward(model, leaves, stop, keep)

    chunks = {name: [] for name in indices}
    for part in _batches(len(x), batch_size):
        outputs = dict(zip(keep, forward(tf.constant(x[part]))))
        for name, i in indices.items():
            chunks[name].append(outputs[i].numpy())
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def _check_channel(model, layer_name, channel, num_channels):
    if isinstance(channel, bool) or not isinstance(channel, numbers.Integral):
        raise InvalidArgument(
            f"Expected `channel` to be an integer. Received: channel={channel!r} "
            f"of type {type(channel).__name__}"
        )
    if not 0 <= channel < num_channels:
        raise InvalidArgument(
            f"Expected `channel` to be in [0, {num_channels}): layer {layer_name!r} has "
            f"{num_channels} channels. Received: channel={channel}"
        )
    return int(channel)


def _channel_score(output, channel):
    """One number per image: the channel's mean over positions (a map) or the unit (a vector)."""
    values = output[..., channel]
    if len(values.shape) > 1:
        values = tf.reduce_mean(values, axis=tuple(range(1, len(values.shape))))
    return values


def top_activating(model, images, layer_name, channel, *, k=8, batch_size=256):
    """Finds the images that excite one channel of one layer the most.

    Reference:
    - [Visualizing and Understanding Convolutional Networks](https://arxiv.org/abs/1311.2901)
      (Zeiler and Fergus, 2014), Section 4.

    Taught in: *What VGG learns, and reusing it*.

    Args:
        model: a Keras model built as a stack of layers.
        images: the images to search, as ``feature_maps`` takes them.
        layer_name: the layer; see ``layer_names(model)``.
        channel: the channel (for a dense layer, the unit) to rank by.
        k: how many images to return.
        batch_size: images per forward pass.

    Returns:
        ``(indices, values)``: the indices into ``images`` of the ``k`` images
        whose activation is largest, largest first, and those activations. An
        image's activation is the channel's mean over all positions of its map
        (for a dense layer, the unit's value). Ties keep the lower index first.
    """
    if not isinstance(layer_name, str):
        raise InvalidArgument(f"Expected `layer_name` to be a layer name. Received: layer_name={layer_name!r}")
    return top_activating_each(model, images, {layer_name: channel}, k=k, batch_size=batch_size)[layer_name]


def top_activating_each(model, images, channels, *, k=8, batch_size=256):
    """``top_activating`` for one channel of each of several layers, in one pass over ``images``.

    Args:
        channels: a dict from layer name to channel, such as ``{"block1": 3, "block5": 40}``.
        model, images, k, batch_size: as for ``top_activating``.

    Returns:
        A dict from each layer name to ``top_activating``'s ``(indices, values)``.
    """
    if not isinstance(channels, dict) or not channels:
        raise InvalidArgument(
            f"Expected `channels` to be a non-empty dict from layer name to channel. Received: channels={channels!r}"
        )
    k = check_int("k", k)
    maps = feature_maps(model, images, list(channels), batch_size=batch_size)
    top = {}
    for name, channel in channels.items():
        channel = _check_channel(model, name, channel, maps[name].shape[-1])
        scores = np.asarray(_channel_score(tf.constant(maps[name]), channel))
        order = np.argsort(-scores, kind="stable")[:k]
        top[name] = order, scores[order]
    return top


def maximize_activation(model, layer_name, channel, *, steps=100, step_size=2.0, seed=0,
                        start=None):
    """Optimises an input image, by gradient ascent, to excite one channel.

    Starting from grey with a little seeded noise, each step moves every pixel
    by ``step_size`` times the gradient of the channel's mean activation,
    divided by the gradient's root mean square (so that the step does not
    depend on the gradient's scale), and clips the pixels to [0, 255]. The
    same arguments give the same image. A channel whose ReLU is off at every
    position of the starting image has no gradient and stays at 0: start
    from another image (``start``) or another ``seed``.

    Reference:
    - [Visualizing Higher-Layer Features of a Deep Network](
      https://www.researchgate.net/publication/265022827) (Erhan et al., 2009).

    Taught in: *What VGG learns, and reusing it*.

    Args:
        model: a Keras model built as a stack of layers.
        layer_name: the layer; see ``layer_names(model)``.
        channel: the channel (for a dense layer, the unit) to excite, or a
            list of channels of the layer: one image is then optimised for
            each, all in one batch.
        steps: number of gradient steps.
        step_size: the step, in pixel values, of a pixel whose gradient is the
            root mean square of its image's gradients.
        seed: seeds the starting noise; every image starts from the same one.
        start: an image to start from instead, shaped like one of the model's
            inputs, pixel values 0-255.

    Returns:
        ``(image, activations)``: the optimised image, float32 of the model's
        input shape, and the channel's mean activation before the first step
        and after each step (``steps + 1`` values). For a list of ``k``
        channels, ``k`` images and an array of shape ``(steps + 1, k)``.
    """
    shape = _check_model(model)
    leaves, stop = _resolve(model, layer_name)
    steps = check_int("steps", steps)
    step_size = check_float("step_size", step_size, 0, np.inf)
    seed = check_int("seed", seed, minimum=0)
    several = not isinstance(channel, numbers.Integral) and hasattr(channel, "__len__")
    channels = list(channel) if several else [channel]
    if several and not channels:
        raise InvalidArgument(f"Expected `channel` to be a channel or a non-empty list of them. "
                         f"Received: channel={channel!r}")
    if start is None:
        noise = np.random.default_rng(seed).normal(0, 8, size=shape)
        first = np.clip(128 + noise, 0, 255)[np.newaxis]
    else:
        first = _check_images(model, np.asarray(start)[np.newaxis])
    probe = leaves[: stop + 1]
    width = _run(probe, tf.constant(first, tf.float32))[1].shape[-1]
    channels = [_check_channel(model, layer_name, c, width) for c in channels]
    x = tf.constant(np.repeat(first, len(channels), axis=0), tf.float32)
    pick = tf.one_hot(channels, width)  # image i follows channel channels[i]
    step = _ascent_step(model, probe, stop)
    history = []
    for _ in range(steps):
        values, x = step(x, pick, tf.constant(step_size, tf.float32))
        history.append(values.numpy())
    history.append(step(x, pick, tf.constant(0.0))[0].numpy())
    images, history = x.numpy(), np.array(history, dtype=np.float32)
    return (images, history) if several else (images[0], history[:, 0])


def _ascent_step(model, probe, stop):
    """One compiled step of gradient ascent, cached per model and layer."""
    cache = _COMPILED.setdefault(model, {})
    key = ("ascent", stop)
    if key not in cache:
        @tf.function(reduce_retracing=True)
        def step(images, pick, step_size):
            with tf.GradientTape() as tape:
                tape.watch(images)
                output = _run(probe, images)[1]
                if len(output.shape) > 2:  # the mean over positions
                    output = tf.reduce_mean(output, axis=tuple(range(1, len(output.shape) - 1)))
                values = tf.reduce_sum(output * pick, axis=-1)
                total = tf.reduce_sum(values)  # images do not interact: one gradient each
            grad = tape.gradient(total, images)
            axes = tuple(range(1, len(grad.shape)))
            rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=axes, keepdims=True)) + 1e-12
            return values, tf.clip_by_value(images + step_size * grad / rms, 0.0, 255.0)

        cache[key] = step
    return cache[key]


# ---------------------------------------------------------------------------
# Where the network looks.


def _check_class_index(class_index, n, num_classes):
    if class_index is None:
        return None
    values = np.broadcast_to(np.asarray(class_index), (n,)) if np.ndim(class_index) == 0 \
        else np.asarray(class_index)
    if values.shape != (n,) or not np.issubdtype(values.dtype, np.integer) \
            or values.min() < 0 or values.max() >= num_classes:
        raise InvalidArgument(
            f"Expected `class_index` to be None (the predicted class), or one class or one "
            f"class per image, each in [0, {num_classes}). Received: class_index={class_index!r}"
        )
    return values.astype(np.int64)


def _class_scores(logits, class_index):
    if class_index is None:
        class_index = tf.argmax(logits, axis=1)
    return tf.gather(logits, class_index, axis=1, batch_dims=1)


def saliency(model, images, class_index=None):
    """Vanilla-gradient saliency: how much each pixel moves a class score.

    The map of an image is the absolute value of the gradient of the class's
    logit with respect to the input pixels, its largest over the input's
    channels.

    Reference:
    - [Deep Inside Convolutional Networks: Visualising Image Classification
      Models and Saliency Maps](https://arxiv.org/abs/1312.6034) (Simonyan,
      Vedaldi and Zisserman, 2014), Section 3.

    Taught in: *What VGG learns, and reusing it*.

    Args:
        model: a Keras model that outputs logits, built as a stack of layers.
        images: as ``feature_maps`` takes them.
        class_index: None for each image's predicted class, one class for all
            images, or one class per image.

    Returns:
        A float32 array of shape ``(n, height, width)``: one map per image, at
        the input's resolution.
    """
    x = tf.constant(_check_images(model, images))
    leaves, _ = _names(model)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = _run(leaves, x)[1]
        classes = _check_class_index(class_index, len(x), logits.shape[-1])
        score = tf.reduce_sum(_class_scores(logits, classes))
    grad = tape.gradient(score, x)
    return np.max(np.abs(grad.numpy()), axis=-1)


def grad_cam(model, images, layer_name, class_index=None):
    """Grad-CAM: which positions of a layer's feature maps raise a class score.

    Each channel of the layer is weighted by the mean, over positions, of the
    gradient of the class's logit with respect to it; the heatmap is the ReLU
    of the weighted sum of the channels.

    Reference:
    - [Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
      Localization](https://arxiv.org/abs/1610.02391) (Selvaraju et al., ICCV
      2017), Section 3, equations 1 and 2.

    Taught in: *What VGG learns, and reusing it*.

    Args:
        model: a Keras model that outputs logits, built as a stack of layers.
        images: as ``feature_maps`` takes them.
        layer_name: a layer with spatial feature maps of at least 2x2, such as
            ``block4_conv2``; see ``layer_names(model)``.
        class_index: None for each image's predicted class, one class for all
            images, or one class per image.

    Returns:
        A float32 array of shape ``(n, height, width)`` at the layer's
        resolution: one non-negative heatmap per image. Upsample it to the
        image to overlay it (``vggcourse.plots.show_heatmaps`` does).
    """
    x = tf.constant(_check_images(model, images))
    leaves, index = _resolve(model, layer_name)
    shape = tuple(leaves[index].compute_output_shape(
        _output_shape_before(leaves, index, tuple(x.shape))))
    if len(shape) != 4:
        raise InvalidArgument(
            f"Expected `layer_name` to name a layer with spatial feature maps, of shape "
            f"(batch, height, width, channels). Received: layer_name={layer_name!r}, whose "
            f"output has shape {shape}"
        )
    if shape[1] < 2 and shape[2] < 2:
        raise InvalidArgument(
            f"Expected `layer_name` to name a layer whose feature maps are at least 2x2: "
            f"a 1x1 map holds no information about where in the image. "
            f"Received: layer_name={layer_name!r}, whose output has shape {shape}"
        )
    with tf.GradientTape() as tape:
        maps = _run(leaves[: index + 1], x)[1]
        tape.watch(maps)
        logits = _run(leaves[index + 1:], maps)[1]
        classes = _check_class_index(class_index, len(x), logits.shape[-1])
        score = tf.reduce_sum(_class_scores(logits, classes))
    grads = tape.gradient(score, maps)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1)).numpy()


def _output_shape_before(leaves, index, input_shape):
    shape = input_shape
    for layer in leaves[:index]:
        shape = layer.compute_output_shape(shape)
    return shape
