"""The same moves as ``vggcourse.transfer``, with Keras' VGG16 trained on ImageNet.

Taught in: *What VGG learns, and reusing it*, in a cell for Colab (the
ImageNet weights are a download).
"""

import keras

from vggcourse._checks import check_choice, check_int
from vggcourse.errors import InvalidArgument

__all__ = ["vgg16_transfer_model"]


def vgg16_transfer_model(num_classes, *, image_size=64, weights="imagenet", pooling="avg"):
    """Keras' VGG16 without its top, frozen, under a new head, for 28x28 grey images.

    The model takes uint8 images of shape ``(n, 28, 28, 1)``, resizes them,
    repeats the grey channel three times, and applies VGG16's own
    ``preprocess_input`` (RGB to BGR, minus the ImageNet mean of each colour),
    as the ImageNet weights expect. Then come the frozen convolutional base and
    a new ``Dense(num_classes)`` layer that outputs logits. To fine-tune, set
    ``base.trainable = True`` and compile again with a small learning rate.

    Reference:
    - [Keras: transfer learning and fine-tuning](
      https://keras.io/guides/transfer_learning/).

    Taught in: *What VGG learns, and reusing it*.

    Args:
        num_classes: the number of new classes.
        image_size: the side the images are resized to; 32 at least.
        weights: ``"imagenet"`` (downloads 58 MB the first time) or None
            (random weights, for a quick check of the code).
        pooling: ``"avg"`` or ``"max"``: how the base's last feature maps
            become one vector.

    Returns:
        ``(model, base)``: the whole model, and VGG16's base inside it.
    """
    num_classes = check_int("num_classes", num_classes)
    image_size = check_int("image_size", image_size, minimum=32)
    if weights not in ("imagenet", None):
        raise InvalidArgument(
            f"Expected `weights` to be 'imagenet' or None. Received: weights={weights!r}"
        )
    pooling = check_choice("pooling", pooling, ("avg", "max"))
    base = keras.applications.VGG16(include_top=False, weights=weights,
                                    input_shape=(image_size, image_size, 3), pooling=pooling)
    base.trainable = False
    inputs = keras.Input(shape=(28, 28, 1), dtype="uint8", name="images")
    x = keras.layers.Resizing(image_size, image_size, name="resize")(inputs)
    x = keras.layers.Concatenate(name="grey_to_rgb")([x, x, x])
    x = keras.applications.vgg16.preprocess_input(x)
    # training=False keeps the base in inference mode even when it is unfrozen later.
    x = base(x, training=False)
    outputs = keras.layers.Dense(num_classes, name="predictions")(x)
    return keras.Model(inputs, outputs, name="vgg16_transfer"), base
