"""d2l's TensorFlow input pipeline and training loop: the baseline the course measures itself against.

Reference:
- Zhang, Lipton, Li and Smola, [Dive into Deep Learning](https://d2l.ai), and its
    repository https://github.com/d2l-ai/d2l-en, file ``d2l/tensorflow.py``.

Both pieces are re-implemented faithfully, with the same operations in the
same order, so that a comparison with them is fair:

- ``d2l_dataloader`` is ``FashionMNIST.get_dataloader`` of d2l 1.0. It scales
  the whole uint8 array to float32 at once, batches, resizes each batch with
  ``tf.image.resize_with_pad``, and only then shuffles, with a buffer of
  ``len(data)`` *elements*. An element is a batch, so the buffer holds every
  resized batch: the whole training set at the model's image size, built
  before the first batch comes out. (d2l 0.17's ``load_data_fashion_mnist``
  shuffled the batches before resizing them, which keeps the buffer at 28x28,
  but shuffles whole batches, so their composition never changes.)
- ``train_ch6`` and ``TrainCallback`` are those of d2l 0.17, whose VGG section
  (TensorFlow tab) printed 2,960.2 examples/s on its GPU (release 0.17.5):
  Keras ``compile`` with plain SGD and a cross-entropy on logits, and ``fit``
  inside a ``tf.distribute.OneDeviceStrategy``. The network takes images that
  the pipeline has already resized.

Only two things differ from d2l, and neither changes what is computed:
``TrainCallback`` records its metrics in a list instead of drawing them with
d2l's ``Animator``, and ``train_ch6`` accepts extra Keras callbacks, which the
benchmark uses to time the steps.
"""

import time

import keras
import tensorflow as tf

from vggcourse._checks import check_int, check_shape
from vggcourse.errors import InvalidArgument

__all__ = ["TrainCallback", "d2l_dataloader", "train_ch6", "try_gpu"]


def d2l_dataloader(x, y, batch_size, resize, *, train=True):
    """d2l 1.0's ``FashionMNIST.get_dataloader``: scale, batch, resize, then shuffle.

    Reference:
    - d2l-en, ``d2l/tensorflow.py``, ``FashionMNIST.get_dataloader`` (d2l 1.0):

      .. code-block:: python

          process = lambda X, y: (tf.expand_dims(X, axis=3) / 255,
                                  tf.cast(y, dtype='int32'))
          resize_fn = lambda X, y: (tf.image.resize_with_pad(X, *self.resize), y)
          shuffle_buf = len(data[0]) if train else 1
          return tf.data.Dataset.from_tensor_slices(process(*data)).batch(
              self.batch_size).map(resize_fn).shuffle(shuffle_buf)

    ``x`` is the uint8 NumPy array that ``keras.datasets.fashion_mnist`` (or
    ``vggcourse.load_fashion_mnist``) returns, so ``X / 255`` makes a float32
    copy of the whole data set at once, before anything is batched.

    Args:
        x: uint8 images of shape ``(n, 28, 28)``.
        y: integer labels of shape ``(n,)``.
        batch_size: examples per batch; the last batch may be smaller.
        resize: ``(height, width)`` that every image is resized (and padded) to.
        train: shuffle, with a buffer of ``len(x)`` elements, as d2l does for
            training data; test data are not shuffled (a buffer of 1).

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)``: float32 images of shape
        ``(batch, height, width, 1)`` in [0, 1], and int32 labels.
    """
    if getattr(x, "ndim", None) != 3:
        raise InvalidArgument(
            "Expected `x` to be images of shape (n, 28, 28), as keras.datasets.fashion_mnist "
            f"returns them. Received: x with shape {getattr(x, 'shape', None)}"
        )
    batch_size = check_int("batch_size", batch_size)
    resize = check_shape("resize", resize, ranks=(2,), example=(224, 224))
    process = lambda X, y: (tf.expand_dims(X, axis=3) / 255, tf.cast(y, dtype="int32"))  # noqa: E731
    resize_fn = lambda X, y: (tf.image.resize_with_pad(X, *resize), y)  # noqa: E731
    shuffle_buf = len(x) if train else 1
    return (
        tf.data.Dataset.from_tensor_slices(process(x, y))
        .batch(batch_size)
        .map(resize_fn)
        .shuffle(shuffle_buf)
    )


def try_gpu(i=0):
    """d2l's ``try_gpu``: the name of GPU ``i`` if there is one, else of the CPU."""
    if len(tf.config.list_physical_devices("GPU")) >= i + 1:
        return f"/GPU:{i}"
    return "/CPU:0"


class TrainCallback(keras.callbacks.Callback):
    """d2l 0.17's ``TrainCallback``: times each epoch and evaluates on the test set after it.

    Reference:
    - d2l-en v0.17, ``d2l/tensorflow.py``, ``TrainCallback``. d2l draws the
      metrics with its ``Animator``; here they are kept in ``self.metrics``.

    Args:
        net: the model being trained.
        train_iter: the training dataset.
        test_iter: the test dataset, evaluated after every epoch.
        num_epochs: epochs of the run; after the last one the callback prints
            the final metrics and examples per second, as d2l does.
        device_name: printed with the speed.
    """

    def __init__(self, net, train_iter, test_iter, num_epochs, device_name):
        super().__init__()
        self.net = net
        self.train_iter = train_iter
        self.test_iter = test_iter
        self.num_epochs = num_epochs
        self.device_name = device_name
        self.times = []
        self.metrics = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)
        test_acc = self.net.evaluate(self.test_iter, verbose=0, return_dict=True)["accuracy"]
        metrics = (logs["loss"], logs["accuracy"], test_acc)
        self.metrics.append(metrics)
        if epoch == self.num_epochs - 1:
            batch_size = next(iter(self.train_iter))[0].shape[0]
            num_examples = batch_size * tf.data.experimental.cardinality(self.train_iter).numpy()
            average = sum(self.times) / len(self.times)
            print(f"loss {metrics[0]:.3f}, train acc {metrics[1]:.3f}, test acc {metrics[2]:.3f}")
            print(f"{num_examples / average:.1f} examples/sec on {self.device_name}")


def train_ch6(net_fn, train_iter, test_iter, num_epochs, lr, device_name=None, *, callbacks=()):
    """d2l 0.17's ``train_ch6``: Keras ``compile`` and ``fit`` on one device.

    Reference:
    - d2l-en v0.17, ``d2l/tensorflow.py``, ``train_ch6``:

      .. code-block:: python

          strategy = tf.distribute.OneDeviceStrategy(device_name)
          with strategy.scope():
              optimizer = tf.keras.optimizers.SGD(learning_rate=lr)
              loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
              net = net_fn()
              net.compile(optimizer=optimizer, loss=loss, metrics=['accuracy'])
          callback = TrainCallback(net, train_iter, test_iter, num_epochs, device_name)
          net.fit(train_iter, epochs=num_epochs, verbose=0, callbacks=[callback])
          return net

    Args:
        net_fn: a function that returns a fresh, uncompiled Keras model.
        train_iter: the training dataset, such as ``d2l_dataloader(..., train=True)``.
        test_iter: the test dataset.
        num_epochs: passes over ``train_iter``.
        lr: SGD's learning rate.
        device_name: such as ``"/GPU:0"``; by default ``try_gpu()``.
        callbacks: more Keras callbacks, after d2l's own (not in d2l).

    Returns:
        The trained model.
    """
    device_name = device_name or try_gpu()
    strategy = tf.distribute.OneDeviceStrategy(device_name)
    with strategy.scope():
        optimizer = keras.optimizers.SGD(learning_rate=lr)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        net = net_fn()
        net.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    callback = TrainCallback(net, train_iter, test_iter, num_epochs, device_name)
    net.fit(train_iter, epochs=num_epochs, verbose=0, callbacks=[callback, *callbacks])
    return net
