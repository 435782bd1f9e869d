"""Fashion-MNIST wherever the course runs, and a tf.data pipeline that stays small.

Reference:
- [Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning
    Algorithms](https://arxiv.org/abs/1708.07747) (Xiao, Rasul and Vollgraf, 2017)

``load_fashion_mnist()`` finds the data in one of four places: a directory
you name, Debian's ``dataset-fashion-mnist`` package, the Keras cache (or a
Keras download), or a small sample that ships inside this package. Full files
are checked against the sha256 of their decompressed content, so a truncated
or corrupt file is reported by name and never trained on.

``make_dataset()`` keeps the images as compact uint8 28x28 arrays. Scaling to
[0, 1] and resizing belong in the model (see ``vggcourse.train``), where they
run on the accelerator, one batch at a time.
"""

import collections
import gzip
import hashlib
import os
import pathlib
import textwrap
import zlib

import keras
import numpy as np
import tensorflow as tf

from vggcourse._checks import check_bool, check_choice, check_int, check_labels, check_path
from vggcourse.errors import CourseError, InvalidArgument

__all__ = [
    "CLASS_NAMES",
    "DataIntegrityError",
    "DataNotFoundError",
    "load_fashion_mnist",
    "make_dataset",
    "validation_split",
]

# The label order of the official release (README of zalandoresearch/fashion-mnist).
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

SOURCES = ("auto", "dir", "debian", "keras", "sample")

# Where `apt-get install dataset-fashion-mnist` puts the four official files.
DEBIAN_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
# The mirror that `keras.datasets.fashion_mnist.load_data()` downloads from
# (keras/src/datasets/fashion_mnist.py); sharing it shares Keras' cache.
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
KERAS_CACHE_SUBDIR = os.path.join("datasets", "fashion-mnist")
DATA_DIR_VARIABLE = "VGGCOURSE_DATA_DIR"
ZALANDO_URL = "https://github.com/zalandoresearch/fashion-mnist"

# The official files. Gzip headers differ between mirrors (Debian's copies
# carry other timestamps), so the checksums cover the *decompressed* bytes.
_FileSpec = collections.namedtuple("_FileSpec", "filename num_bytes sha256 header_bytes")
_FILES = {
    "x_train": _FileSpec(
        "train-images-idx3-ubyte.gz",
        47_040_016,
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        16,
    ),
    "y_train": _FileSpec(
        "train-labels-idx1-ubyte.gz",
        60_008,
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        8,
    ),
    "x_test": _FileSpec(
        "t10k-images-idx3-ubyte.gz",
        7_840_016,
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        16,
    ),
    "y_test": _FileSpec(
        "t10k-labels-idx1-ubyte.gz",
        10_008,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        8,
    ),
}

# The embedded sample, written by scripts/make_sample.py from the official files.
SAMPLE_PATH = pathlib.Path(__file__).parent / "sample" / "fashion-mnist-sample.npz"
SAMPLE_SHA256 = "fb9b6519c0d4e1e4209d696caf4d1906e5a326753c8d222771c1168024bedbd9"


class DataIntegrityError(CourseError, ValueError):
    """A data file is truncated, corrupt or not the official release."""


class DataNotFoundError(CourseError, FileNotFoundError):
    """The source of data asked for holds no Fashion-MNIST."""


class _SourceUnavailable(Exception):
    """A source holds no data here; "auto" moves on to the next one."""


# ---------------------------------------------------------------------------
# Reading and verifying the official files.


def _read_verified(path, spec):
    """Returns the decompressed bytes of ``path`` after checking them against ``spec``."""
    try:
        with gzip.open(path, "rb") as f:
            content = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        # A truncated gzip stream raises EOFError, a damaged one BadGzipFile
        # or zlib.error. Any other OSError, such as a permission error, says
        # nothing about the content, and is not caught.
        raise DataIntegrityError(
            f"Could not decompress {path}: {e}. The file is truncated or corrupt; "
            f"delete it and get it again from {ZALANDO_URL}."
        ) from e
    digest = hashlib.sha256(content).hexdigest()
    if len(content) != spec.num_bytes or digest != spec.sha256:
        raise DataIntegrityError(
            f"{path} is not the official Fashion-MNIST file: it decompresses to "
            f"{len(content):,} bytes with sha256 {digest}, expected {spec.num_bytes:,} "
            f"bytes with sha256 {spec.sha256}. Delete it and get it again from "
            f"{ZALANDO_URL}."
        )
    return content


def _arrays_from_files(paths):
    """Parses the four verified idx files into uint8 arrays."""
    arrays = {}
    for key, spec in _FILES.items():
        content = _read_verified(paths[key], spec)
        array = np.frombuffer(content, dtype=np.uint8, offset=spec.header_bytes)
        arrays[key] = array.reshape(-1, 28, 28) if key.startswith("x") else array
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _paths_in(directory):
    directory = pathlib.Path(directory)
    return {key: directory / spec.filename for key, spec in _FILES.items()}


def _missing(paths):
    return [str(path) for path in paths.values() if not path.is_file()]


def _describe(data):
    (x_train, _), (x_test, _) = data
    return f"{len(x_train):,} training and {len(x_test):,} test images"


# ---------------------------------------------------------------------------
# The sources, in the order that source="auto" tries them.


def _say(message):
    # Printed lines fit the book's column and a terminal; a path is never split.
    print(textwrap.fill(message, 78, break_long_words=False, break_on_hyphens=False))


def _from_dir(directory, origin):
    paths = _paths_in(directory)
    missing = _missing(paths)
    if missing:
        raise DataNotFoundError(
            f"{origin} {directory} lacks the Fashion-MNIST file(s) {', '.join(missing)}. "
            f"It should hold the four .gz files of the official release ({ZALANDO_URL})."
        )
    data = _arrays_from_files(paths)
    _say(f"Fashion-MNIST from {origin} {directory}: {_describe(data)}, sha256 verified.")
    return data


def _from_debian():
    paths = _paths_in(DEBIAN_DIR)
    if _missing(paths):
        raise _SourceUnavailable(f"Debian's dataset-fashion-mnist is not installed in {DEBIAN_DIR}")
    data = _arrays_from_files(paths)
    _say(
        f"Fashion-MNIST from Debian's dataset-fashion-mnist package ({DEBIAN_DIR}): "
        f"{_describe(data)}, sha256 verified."
    )
    return data


def _keras_cache_dir():
    # The same place as Keras' own loader: $KERAS_HOME, else ~/.keras.
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return pathlib.Path(base) / KERAS_CACHE_SUBDIR


def _from_keras():
    cache = _keras_cache_dir()
    # Deepest first, so that a failed download can remove what it created.
    created = [folder for folder in (cache, cache.parent, cache.parent.parent) if not folder.exists()]
    try:
        # Made here so that Keras downloads into exactly this folder (it
        # switches to /tmp/.keras when the folder is missing).
        cache.mkdir(parents=True, exist_ok=True)
        paths = {}
        for key, spec in _FILES.items():
            paths[key] = pathlib.Path(
                keras.utils.get_file(
                    spec.filename,
                    origin=KERAS_ORIGIN + spec.filename,
                    cache_dir=str(cache.parent.parent),
                    cache_subdir=KERAS_CACHE_SUBDIR,
                )
            )
    except Exception as e:
        # Offline, Keras raises a plain Exception ("URL fetch failure") after
        # removing the partial file, but leaves the empty folder behind.
        for folder in dict.fromkeys([cache, *created]):
            _remove_if_empty(folder)
        raise _SourceUnavailable(f"no Keras cache in {cache}, and the download failed: {e}") from e
    try:
        data = _arrays_from_files(paths)
    except DataIntegrityError:
        # Keras checks no hash, so an interrupted download can sit in its
        # cache. Remove the file whose content is wrong, and only that one,
        # so that the next call downloads it again.
        for key, spec in _FILES.items():
            try:
                _read_verified(paths[key], spec)
            except DataIntegrityError:
                paths[key].unlink()
        raise
    _say(f"Fashion-MNIST from the Keras cache {cache}: {_describe(data)}, sha256 verified.")
    return data


def _remove_if_empty(directory):
    try:
        directory.rmdir()
    except OSError:  # Not empty (verified files from earlier calls), or absent.
        pass


def _load_sample():
    """Returns the embedded sample after checking its checksum."""
    content = SAMPLE_PATH.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    if digest != SAMPLE_SHA256:
        raise DataIntegrityError(
            f"The embedded sample {SAMPLE_PATH} is corrupt: its sha256 is {digest}, "
            f"expected {SAMPLE_SHA256}. Reinstall vggcourse."
        )
    with np.load(SAMPLE_PATH, allow_pickle=False) as npz:
        return (npz["x_train"], npz["y_train"]), (npz["x_test"], npz["y_test"])


def _from_sample():
    data = _load_sample()
    (_, y_train), (_, y_test) = data
    per_class = (len(y_train) // len(CLASS_NAMES), len(y_test) // len(CLASS_NAMES))
    print(
        f"Fashion-MNIST SAMPLE shipped with vggcourse: {_describe(data)} "
        f"({per_class[0]} and {per_class[1]} per class), sha256 verified.\n"
        "This is NOT the full data set, and accuracy on it is not comparable with "
        "published results. For the full 60,000 + 10,000 images, do one of:\n"
        "  - connect to the internet: Keras then downloads them;\n"
        "  - on Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist;\n"
        f"  - download the four .gz files from {ZALANDO_URL} and pass data_dir=... "
        f"or set {DATA_DIR_VARIABLE}."
    )
    return data


def load_fashion_mnist(source="auto", data_dir=None):
    """Loads Fashion-MNIST as uint8 arrays and prints where it came from.

    Reference:
    - [Fashion-MNIST](https://arxiv.org/abs/1708.07747) (Xiao et al., 2017).

    With ``source="auto"`` the first of these that holds the data is used:

    1. ``data_dir``, or the directory in the ``VGGCOURSE_DATA_DIR`` environment
       variable, holding the four official ``.gz`` files;
    2. Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``);
    3. the Keras cache (``~/.keras/datasets/fashion-mnist``), or a Keras
       download into it. A failed download leaves no broken cache behind;
    4. a balanced sample of 2,500 training and 500 test images that ships
       inside this package, with a notice that it is only a sample.

    Full files are verified by the sha256 of their decompressed content.

    Args:
        source: ``"auto"``, or one source to use and nothing else: ``"dir"``
            (``data_dir`` or ``VGGCOURSE_DATA_DIR``), ``"debian"``, ``"keras"``
            or ``"sample"``.
        data_dir: a directory holding ``train-images-idx3-ubyte.gz``,
            ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
            ``t10k-labels-idx1-ubyte.gz``. Only for ``source`` "auto" or "dir".

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: images of shape ``(n, 28, 28)``
        and labels of shape ``(n,)``, all uint8. Labels index ``CLASS_NAMES``.

    Raises:
        DataIntegrityError: a file is truncated, corrupt or not the official
            one. The message names the file.
        DataNotFoundError: the source asked for holds no data (a
            ``FileNotFoundError``).
    """
    source = check_choice("source", source, SOURCES)
    data_dir = check_path("data_dir", data_dir, allow_none=True)
    if data_dir is not None and source not in ("auto", "dir"):
        raise InvalidArgument(
            '`data_dir` is only used with source="auto" or source="dir". '
            f"Received: source={source!r}, data_dir={data_dir!r}"
        )

    if source in ("auto", "dir"):
        if data_dir is not None:
            return _from_dir(data_dir, "data_dir")
        if os.environ.get(DATA_DIR_VARIABLE):
            return _from_dir(os.environ[DATA_DIR_VARIABLE], DATA_DIR_VARIABLE)
        if source == "dir":
            raise InvalidArgument(
                f'source="dir" needs `data_dir` or the {DATA_DIR_VARIABLE} environment '
                f"variable. Received: data_dir=None and no {DATA_DIR_VARIABLE}"
            )
    if source == "sample":
        return _from_sample()
    single = {"debian": _from_debian, "keras": _from_keras}
    if source in single:
        try:
            return single[source]()
        except _SourceUnavailable as e:
            raise DataNotFoundError(f"Fashion-MNIST is not available from {source!r}: {e}.") from e

    for name, load in single.items():
        try:
            return load()
        except _SourceUnavailable as e:
            print(f"Fashion-MNIST: {e}.")
    return _from_sample()


# ---------------------------------------------------------------------------
# The input pipeline.


def _check_images_and_labels(x, y, num_classes):
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or x.shape[1:3] != (28, 28) or x.shape[3:] not in ((), (1,)):
        raise InvalidArgument(
            "Expected `x` to be uint8 images of shape (n, 28, 28) or (n, 28, 28, 1), "
            "as load_fashion_mnist() returns; scaling belongs in the model. "
            f"Received: x with shape {x.shape} and dtype {x.dtype}"
        )
    if len(x) == 0:
        raise InvalidArgument(f"Expected at least one image. Received: x with shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise InvalidArgument(
            f"Expected `y` to be {len(x)} integer labels, one per image. "
            f"Received: y with shape {y.shape}"
        )
    return x.reshape(-1, 28, 28, 1), check_labels("y", y, check_int("num_classes", num_classes))


def _check_epoch(epoch, shuffle):
    if shuffle and epoch is None:
        raise InvalidArgument(
            "make_dataset(shuffle=True) needs `epoch`: a tf.Variable that the training "
            "loop sets at the start of each epoch (see vggcourse.train.EpochSeeds), or "
            "an integer for one fixed order. Received: epoch=None"
        )
    if epoch is None or isinstance(epoch, tf.Variable):
        return epoch
    return check_int("epoch", epoch, minimum=0)


MAX_SHIFT = 8


def _augment(images, seed, epoch, batch_index, flip, shift):
    """Flips and shifts each image of a uint8 batch at random, as a function of (seed, epoch, batch)."""
    key = tf.random.experimental.stateless_fold_in(tf.stack([tf.constant(seed, tf.int64), epoch]), batch_index)
    flip_key, shift_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    if flip:
        images = tf.image.stateless_random_flip_left_right(images, seed=flip_key)
    if shift:
        # Pad with black, then cut each image's own 28x28 window: a shift of
        # up to `shift` pixels in each direction, with black filling in.
        padded = tf.pad(images, [[0, 0], [shift, shift], [shift, shift], [0, 0]])
        corner = tf.random.stateless_uniform(
            [tf.shape(images)[0], 2], seed=shift_key, minval=0, maxval=2 * shift + 1, dtype=tf.int32
        )
        rows = corner[:, :1] + tf.range(28)
        columns = corner[:, 1:] + tf.range(28)
        images = tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), columns, axis=2, batch_dims=1)
    return images


def make_dataset(x, y, batch_size, *, shuffle=False, seed=0, epoch=None, flip=False, shift=0,
                 num_classes=len(CLASS_NAMES)):
    """Builds a tf.data pipeline: shuffle uint8 images, then batch, (augment,) then prefetch.

    Shuffling happens *before* batching, on the compact uint8 images, so each
    batch mixes the whole data set and the shuffle holds indices, not
    images. The images stay 28x28 uint8 (47 MB for all 60,000): a model that
    starts with ``Rescaling`` and ``Resizing`` layers does the rest on the
    accelerator, one batch at a time.

    The order of an epoch is a function of ``(seed, epoch)`` only (a stateless
    shuffle), so a run resumed at epoch 5 sees exactly the order that an
    uninterrupted run sees at epoch 5. So are the random flips and shifts of
    training data (``flip``, ``shift``): each batch's come from ``(seed,
    epoch, batch)``, on the small uint8 images, before the model resizes them.

    Args:
        x: uint8 images of shape ``(n, 28, 28)`` or ``(n, 28, 28, 1)``.
        y: integer labels of shape ``(n,)``, each in ``[0, num_classes)``.
        batch_size: examples per batch; the last batch may be smaller.
        shuffle: whether to shuffle. Training data: True; test data: False.
        seed: integer seed of the shuffle.
        epoch: required when ``shuffle=True``. Either a ``tf.Variable`` that
            the training loop sets at the start of every epoch (as
            ``vggcourse.train.EpochSeeds`` does), or an integer for one fixed
            order.
        flip: flip each image left to right with probability 1/2; only with
            ``shuffle=True`` (training data).
        shift: shift each image by up to this many pixels of the 28x28 image,
            up, down, left and right independently, filling in black; 0 for
            none; only with ``shuffle=True``.
        num_classes: how many classes the labels index; Fashion-MNIST's 10.

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)`` batches: uint8 tensors of
        shape ``(batch, 28, 28, 1)`` and ``(batch,)``, with a known number of
        batches.
    """
    x, y = _check_images_and_labels(x, y, num_classes)
    batch_size = check_int("batch_size", batch_size)
    seed = check_int("seed", seed, minimum=0)
    epoch = _check_epoch(epoch, shuffle)
    flip = check_bool("flip", flip)
    shift = check_int("shift", shift, minimum=0, maximum=MAX_SHIFT)
    if (flip or shift) and not shuffle:
        raise InvalidArgument(
            "Expected flip=False and shift=0 without shuffle=True: only training data is augmented. "
            f"Received: flip={flip}, shift={shift}, shuffle={shuffle}"
        )

    num_examples = len(x)
    images, labels = tf.constant(x), tf.constant(y)
    indices = tf.data.Dataset.range(num_examples)
    if shuffle:

        def epoch_order(_):
            # Read when the epoch's first batch is requested, which Keras does
            # after `on_epoch_begin`: the variable then holds this epoch.
            current = tf.cast(epoch, tf.int64)
            order = tf.random.experimental.stateless_shuffle(
                tf.range(num_examples, dtype=tf.int64),
                seed=tf.stack([tf.constant(seed, tf.int64), current]),
            )
            return tf.data.Dataset.from_tensor_slices(order)

        indices = tf.data.Dataset.from_tensors(0).flat_map(epoch_order)
        # flat_map hides the length; Keras needs it for progress bars.
        indices = indices.apply(tf.data.experimental.assert_cardinality(num_examples))
    # Batching indices and gathering whole batches costs one op per batch,
    # not one per image: microseconds, so the map needs no parallel calls.
    batches = indices.batch(batch_size).map(
        lambda idx: (tf.gather(images, idx), tf.gather(labels, idx))
    )
    if flip or shift:
        batches = batches.enumerate().map(
            lambda i, batch: (_augment(batch[0], seed, tf.cast(epoch, tf.int64), i, flip, shift), batch[1])
        )
    return batches.prefetch(tf.data.AUTOTUNE)


def validation_split(x, y, num_val=5000, *, seed=0, num_classes=len(CLASS_NAMES)):
    """Holds out a stratified validation split from training images.

    Decisions (a learning rate, a number of epochs, one network against
    another) are made on the validation images, so that the test images
    measure the chosen model once, at the end, without having steered it.

    Args:
        x: uint8 training images of shape ``(n, 28, 28)`` or ``(n, 28, 28, 1)``.
        y: their integer labels, each in ``[0, num_classes)``.
        num_val: validation images, a multiple of ``num_classes``: each class
            gives ``num_val / num_classes`` of its images.
        seed: seeds which images of each class are held out.
        num_classes: how many classes the labels index.

    Returns:
        ``((x_train, y_train), (x_val, y_val))``: the rest of the images in
        their original order, and the held-out ones, class by class in
        a seeded random order.
    """
    x = np.asarray(x)
    _, y = _check_images_and_labels(x, y, num_classes)
    num_val = check_int("num_val", num_val)
    per_class = num_val // num_classes
    counts = np.bincount(y, minlength=num_classes)
    if num_val % num_classes or per_class >= counts.min():
        raise InvalidArgument(
            f"Expected `num_val` to be a multiple of {num_classes} that leaves training images "
            f"of every class (the rarest class has {counts.min():,}). Received: num_val={num_val}"
        )
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    held = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in range(num_classes)])
    held = held[rng.permutation(len(held))]
    keep = np.ones(len(y), bool)
    keep[held] = False
    return (x[keep], y[keep]), (x[held], y[held])
