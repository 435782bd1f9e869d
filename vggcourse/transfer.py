"""Reusing a trained VGG for new classes: from scratch, frozen features, fine-tuning.

Taught in: *What VGG learns, and reusing it*.

Reference:
- [How transferable are features in deep neural networks?](https://arxiv.org/abs/1411.1792)
  (Yosinski, Clune, Bengio and Lipson, NeurIPS 2014).

The experiment, ``run_transfer_experiment``, splits Fashion-MNIST's ten
classes in two. A *source* network learns the first five. Then, for the other
five with only a few labelled images per class, three strategies are compared:

- ``scratch``: the same network, trained from random weights;
- ``frozen``: the source network's convolutional blocks kept as they are,
  with a new ``predictions`` layer for the new classes trained on block 5's
  output (the classifier's ``fc1`` and ``fc2`` are left behind, as Keras'
  ``include_top=False`` leaves VGG16's);
- ``fine-tune``: the ``frozen`` result, then every layer trained on, with a
  smaller learning rate.

Every run tries a few learning rates and keeps the weights of its best check
on a validation split, which is taken from the training images and never
overlaps the labelled ones; the test images are used once, to report the
chosen network's accuracy.

``vgg16_transfer_model`` makes the same moves with Keras' ImageNet VGG16.
"""

import dataclasses
import math
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from vggcourse._checks import check_float, check_int
from vggcourse.data import CLASS_NAMES
from vggcourse.errors import InvalidArgument
from vggcourse.imagenet import vgg16_transfer_model
from vggcourse.models import VGG_ARCHS, scale_arch, vgg
from vggcourse.train import TrainConfig

__all__ = [
    "SETUPS",
    "STRATEGIES",
    "TransferResults",
    "TransferSetup",
    "run_transfer_experiment",
    "setup_for",
    "split_classes",
    "transfer_network",
    "vgg16_transfer_model",
]

STRATEGIES = ("scratch", "frozen", "fine-tune")


@dataclasses.dataclass(frozen=True)
class TransferSetup:
    """The sizes of a transfer experiment. Arguments are checked on creation.

    Attributes:
        name: a label.
        source_classes: the classes the source network learns.
        target_classes: the new classes, as many as ``source_classes``.
        labels_per_class: the numbers of labelled target images per class to
            compare, smallest first; the smaller sets are part of the larger.
        val_per_class: validation images per class, taken from the training
            images, for the source and for the target classes.
        source_per_class: training images per source class; None for all the
            rest.
        source_epochs: epochs of the source network's training.
        target_epochs: a target run sees its labelled images at least this
            many times ...
        target_steps: ... and takes at least this many steps.
        checks: validation checks per target run, evenly spaced; the best is
            kept.
        batch_size: examples per step in the target runs.
        fine_tune_factor: fine-tuning's learning rate is the config's times this.
        lr_factors: each run tries its learning rate times each of these and
            keeps the one with the best validation accuracy.
        test_per_class: test images per target class; None for all.
        repeats: draws of the labelled images (each with another seed) per
            label count.
        seed: seeds the splits, the draws and the weights.
        run_eagerly: run the training steps eagerly instead of compiling them
            into a graph first, which is faster for a handful of steps only.
    """

    name: str
    source_classes: tuple = (0, 1, 2, 3, 4)
    target_classes: tuple = (5, 6, 7, 8, 9)
    labels_per_class: tuple = (10, 100, 1000)
    val_per_class: int = 200
    source_per_class: int | None = None
    source_epochs: int = 5
    target_epochs: int = 4
    target_steps: int = 240
    checks: int = 10
    batch_size: int = 32
    fine_tune_factor: float = 0.1
    lr_factors: tuple = (1.0, 0.25)
    test_per_class: int | None = None
    repeats: int = 1
    seed: int = 0
    run_eagerly: bool = False

    def __post_init__(self):
        for name in ("source_classes", "target_classes"):
            classes = getattr(self, name)
            if not isinstance(classes, tuple) or not classes or \
                    any(not isinstance(c, int) or not 0 <= c < len(CLASS_NAMES) for c in classes):
                raise InvalidArgument(
                    f"Expected `{name}` to be a non-empty tuple of class indices in "
                    f"[0, {len(CLASS_NAMES)}). Received: {name}={classes!r}"
                )
        if set(self.source_classes) & set(self.target_classes):
            raise InvalidArgument(
                "Expected `source_classes` and `target_classes` not to overlap. Received: "
                f"source_classes={self.source_classes!r}, target_classes={self.target_classes!r}"
            )
        counts = self.labels_per_class
        if not isinstance(counts, tuple) or not counts or list(counts) != sorted(set(counts)):
            raise InvalidArgument(
                "Expected `labels_per_class` to be a non-empty tuple of increasing counts. "
                f"Received: labels_per_class={counts!r}"
            )
        for count in counts:
            check_int("labels_per_class", count)
        for name in ("val_per_class", "source_epochs", "target_epochs", "target_steps",
                     "checks", "batch_size", "repeats"):
            check_int(name, getattr(self, name))
        check_int("source_per_class", self.source_per_class, allow_none=True)
        check_int("test_per_class", self.test_per_class, allow_none=True)
        check_float("fine_tune_factor", self.fine_tune_factor, 0, 1)
        if not isinstance(self.lr_factors, tuple) or not self.lr_factors:
            raise InvalidArgument(
                "Expected `lr_factors` to be a non-empty tuple of positive numbers. "
                f"Received: lr_factors={self.lr_factors!r}"
            )
        for factor in self.lr_factors:
            check_float("lr_factors", factor, 0, math.inf)
        check_int("seed", self.seed, minimum=0)

    def __str__(self):
        return _describe(self)


def _describe(setup):
    def classes(indices):
        return ", ".join(CLASS_NAMES[i] for i in indices)

    counts = ", ".join(f"{count:,}" for count in setup.labels_per_class)
    factors = ", ".join(f"{factor:g}" for factor in setup.lr_factors)
    return "\n".join([
        f"TransferSetup {setup.name!r}",
        f"  source classes:   {classes(setup.source_classes)}",
        f"  target classes:   {classes(setup.target_classes)}",
        f"  labels per class: {counts} ({setup.repeats} draw(s) of each)",
        f"  validation:       {setup.val_per_class} training images per class",
        f"  source network:   {setup.source_epochs} epoch(s)",
        f"  target runs:      at least {setup.target_epochs} epoch(s) and "
        f"{setup.target_steps} steps,",
        f"                    {setup.checks} validation checks, the best kept",
        f"  learning rates:   the strategy's times {factors}, the best kept",
    ])


SETUPS = {
    # Minutes on two CPU cores with the cpu preset's network.
    "full": TransferSetup("full", repeats=3),
    # Seconds: a sliver of every split, enough to run every code path.
    "smoke": TransferSetup(
        "smoke",
        labels_per_class=(5, 10, 20),
        val_per_class=10,
        source_per_class=20,
        source_epochs=1,
        target_epochs=1,
        target_steps=1,
        checks=1,
        test_per_class=10,
        lr_factors=(1.0,),
        run_eagerly=True,
    ),
}


def setup_for(config):
    """The ``smoke`` setup for the ``smoke`` training preset, ``full`` otherwise."""
    return SETUPS["smoke" if config.name == "smoke" else "full"]


# ---------------------------------------------------------------------------
# Data.


def split_classes(data, setup):
    """Splits Fashion-MNIST into the experiment's sets.

    Args:
        data: ``((x_train, y_train), (x_test, y_test))`` from ``load_fashion_mnist()``.
        setup: a ``TransferSetup``.

    Returns:
        A dict of ``(images, labels)`` pairs, labels renumbered 0, 1, ... in
        the order of the setup's classes: ``source_train``, ``source_val``,
        ``target_pool`` (the labelled images to draw from: for each class,
        ``max(labels_per_class)`` images in a seeded random order),
        ``target_val`` and ``target_test``. Validation images come from the
        training images and overlap neither the source training images nor
        the pool.
    """
    (x_train, y_train), (x_test, y_test) = data
    rng = np.random.default_rng(setup.seed)
    largest = setup.labels_per_class[-1]
    needed = [(setup.source_classes, setup.val_per_class + (setup.source_per_class or 1)),
              (setup.target_classes, setup.val_per_class + largest)]
    for classes, count in needed:
        for cls in classes:
            have = int((y_train == cls).sum())
            if have < count:
                raise InvalidArgument(
                    f"The data has {have} training images of class {CLASS_NAMES[cls]!r}; the "
                    f"setup {setup.name!r} needs {count}. Load the full data set, or use a "
                    "smaller setup."
                )

    def take(x, y, classes, start, count, what):
        images, labels = [], []
        for new, cls in enumerate(classes):
            index = np.flatnonzero(y == cls)
            index = index[rng.permutation(len(index))] if what != "test" else index
            stop = len(index) if count is None else start + count
            if stop > len(index):
                raise InvalidArgument(
                    f"The data has {len(index)} {what} images of class {CLASS_NAMES[cls]!r}; "
                    f"the setup {setup.name!r} needs {stop}. Load the full data set, or use a "
                    "smaller setup."
                )
            chosen = index[start:stop]
            images.append(x[chosen])
            labels.append(np.full(len(chosen), new, dtype=np.uint8))
        return images, labels

    def joined(images, labels):
        return np.concatenate(images), np.concatenate(labels)

    # Each class's first val_per_class shuffled images validate; the rest train.
    source = [take(x_train, y_train, setup.source_classes, 0, None, "training")]
    source_x, source_y = source[0]
    val = setup.val_per_class
    train_part = setup.source_per_class
    target_x, target_y = take(x_train, y_train, setup.target_classes, 0, None, "training")
    split = {
        "source_val": joined([x[:val] for x in source_x], [y[:val] for y in source_y]),
        "source_train": joined(
            [x[val:val + train_part] if train_part else x[val:] for x in source_x],
            [y[val:val + train_part] if train_part else y[val:] for y in source_y],
        ),
        "target_val": joined([x[:val] for x in target_x], [y[:val] for y in target_y]),
        "target_pool": joined([x[val:val + largest] for x in target_x],
                              [y[val:val + largest] for y in target_y]),
        "target_test": joined(*take(x_test, y_test, setup.target_classes, 0,
                                    setup.test_per_class, "test")),
    }
    return split


def _labelled(split, setup, count, repeat):
    """``count`` labelled images per class, the first ones of a per-repeat order."""
    x, y = split["target_pool"]
    rng = np.random.default_rng([setup.seed, repeat])
    chosen = []
    for cls in range(len(setup.target_classes)):
        index = np.flatnonzero(y == cls)
        chosen.append(index[rng.permutation(len(index))][:count])
    chosen = np.sort(np.concatenate(chosen))
    return x[chosen], y[chosen]


# ---------------------------------------------------------------------------
# Networks.


def transfer_network(config, num_classes, *, name="vgg"):
    """The network of ``config`` (as ``vggcourse.build_model`` builds it) for ``num_classes``.

    Args:
        config: a ``TrainConfig``: its architecture, channel ratio, image size,
            dense units and dropout are used.
        num_classes: the number of output logits.
        name: the name of the VGG part (the model's last layer).

    Returns:
        A built ``keras.Sequential``: ``rescale``, ``resize``, then the VGG.
    """
    if not isinstance(config, TrainConfig):
        raise InvalidArgument(
            f"Expected `config` to be a TrainConfig. Received: config of type {type(config).__name__}"
        )
    num_classes = check_int("num_classes", num_classes)
    net = vgg(scale_arch(VGG_ARCHS[config.arch], config.ratio), num_classes=num_classes,
              dense_units=config.dense_units, dropout=config.dropout, name=name)
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1), dtype="uint8", name="images"),
            keras.layers.Rescaling(1 / 255, name="rescale"),
            keras.layers.Resizing(config.image_size, config.image_size, name="resize"),
            net,
        ],
        name=f"{config.arch}_{name}",
    )


def _with_new_head(source, config, num_classes, seed):
    """The source network's blocks, copied and frozen, under a new ``predictions`` layer.

    The classifier (``fc1``, ``fc2``) is left behind, as Keras'
    ``include_top=False`` does: block 5's output, flattened, feeds the new layer.
    """
    keras.utils.set_random_seed(seed)
    fresh = transfer_network(config, num_classes)
    blocks = [layer for layer in fresh.get_layer("vgg").layers if layer.name != "classifier"]
    for block in blocks:
        block.set_weights(source.get_layer("vgg").get_layer(block.name).get_weights())
        block.trainable = False
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1), dtype="uint8", name="images"),
            fresh.get_layer("rescale"),
            fresh.get_layer("resize"),
            *blocks,
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(num_classes, name="predictions"),
        ],
        name="transfer",
    )


def _unfreeze(model):
    for layer in model.layers:
        layer.trainable = True


# ---------------------------------------------------------------------------
# Training with a validation split.


class _KeepBest(keras.callbacks.Callback):
    """Keeps the weights of the check with the best validation accuracy (the first, on ties)."""

    def __init__(self):
        super().__init__()
        self.best, self.best_epoch, self.weights = -1.0, None, None

    def on_epoch_end(self, epoch, logs=None):
        accuracy = (logs or {}).get("val_accuracy")
        if accuracy is not None and accuracy > self.best:
            self.best, self.best_epoch = float(accuracy), epoch
            self.weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.model.set_weights(self.weights)


def _dataset(x, y, batch_size, *, seed=None):
    ds = tf.data.Dataset.from_tensor_slices((x[..., np.newaxis], y))
    if seed is not None:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).repeat()
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _fit(model, train, val, *, learning_rate, momentum, total_steps, checks, batch_size,
         seed, run_eagerly):
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=momentum),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        run_eagerly=run_eagerly,
    )
    keep = _KeepBest()
    steps = max(1, total_steps // checks)
    model.fit(_dataset(*train, batch_size, seed=seed), validation_data=_dataset(*val, 256),
              epochs=checks, steps_per_epoch=steps, verbose=0, callbacks=[keep],
              shuffle=False)  # the dataset shuffles, seeded
    return keep.best, (keep.best_epoch + 1) * steps


def _accuracy(model, x, y):
    # evaluate() reuses the test step that fit() compiled for validation.
    return float(model.evaluate(_dataset(x, y, 256), verbose=0, return_dict=True)["accuracy"])


def _train_source(config, split, setup):
    keras.utils.set_random_seed(setup.seed)
    model = transfer_network(config, len(setup.source_classes))
    x, y = split["source_train"]
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    best, step = _fit(model, (x, y), split["source_val"], learning_rate=config.learning_rate,
                      momentum=config.momentum, total_steps=setup.source_epochs * steps_per_epoch,
                      checks=setup.source_epochs, batch_size=config.batch_size,
                      seed=setup.seed, run_eagerly=setup.run_eagerly)
    return model, best, step


@dataclasses.dataclass
class TransferResults:
    """What ``run_transfer_experiment`` measured.

    Attributes:
        source_val_accuracy: the source network's accuracy on its validation
            images (its own five classes).
        source_seconds: the time to train the source network.
        runs: one row per target run: ``labels_per_class``, ``repeat``,
            ``strategy``, the ``learning_rate`` chosen, ``val_accuracy`` (of
            the kept check), ``steps`` (the step it was taken at),
            ``test_accuracy`` and ``seconds`` (all learning rates tried).
    """

    source_val_accuracy: float
    source_seconds: float
    runs: pd.DataFrame

    def summary(self):
        """Mean test accuracy per label count (rows) and strategy (columns)."""
        table = self.runs.pivot_table(index="labels_per_class", columns="strategy",
                                      values="test_accuracy", aggfunc="mean")
        return table[list(STRATEGIES)]


def _starting_model(strategy, config, setup, source, frozen, seed):
    """A fresh model for ``strategy``, and the learning rate its factors multiply."""
    num_classes = len(setup.target_classes)
    if strategy == "scratch":
        keras.utils.set_random_seed(seed)
        return transfer_network(config, num_classes), config.learning_rate
    model = _with_new_head(source, config, num_classes, seed)
    if strategy == "frozen":
        return model, config.learning_rate
    # Fine-tune what the chosen frozen run learned.
    model.set_weights(frozen.get_weights())
    _unfreeze(model)
    return model, config.learning_rate * setup.fine_tune_factor


def _reuse(config, setup, split, source, count, repeat, verbose):
    """Runs every strategy on one draw of ``count`` labelled images per class; returns their rows."""
    train = _labelled(split, setup, count, repeat)
    steps = max(setup.target_steps, setup.target_epochs * math.ceil(len(train[0]) / setup.batch_size))
    seed = setup.seed + 1000 * repeat + count
    fit = dict(total_steps=steps, checks=setup.checks, batch_size=setup.batch_size,
               seed=seed, momentum=config.momentum, run_eagerly=setup.run_eagerly)
    rows, frozen = [], None
    for strategy in STRATEGIES:
        began = time.perf_counter()
        best = None
        for factor in setup.lr_factors:
            model, base_lr = _starting_model(strategy, config, setup, source, frozen, seed)
            val_accuracy, at_step = _fit(model, train, split["target_val"],
                                         learning_rate=base_lr * factor, **fit)
            if best is None or val_accuracy > best[1]:
                best = (model, val_accuracy, at_step, base_lr * factor)
        model, val_accuracy, at_step, lr = best
        if strategy == "frozen":
            frozen = model
        test_accuracy = _accuracy(model, *split["target_test"])
        seconds = time.perf_counter() - began
        rows.append({"labels_per_class": count, "repeat": repeat,
                     "strategy": strategy, "learning_rate": lr,
                     "val_accuracy": val_accuracy, "steps": at_step,
                     "test_accuracy": test_accuracy, "seconds": seconds})
        if verbose:
            print(f"{count:>5} per class, draw {repeat + 1}, {strategy:<9}: "
                  f"lr {lr:<6.4g} val {val_accuracy:.3f}  test {test_accuracy:.3f}"
                  f"  {seconds:.0f} s")
    return rows


def run_transfer_experiment(config, data, setup, *, verbose=True):
    """Trains a source network on some classes and reuses it for the others.

    Taught in: *What VGG learns, and reusing it*.

    Args:
        config: a ``TrainConfig`` whose network and optimizer (learning rate,
            momentum, batch size for the source) are used, such as
            ``vggcourse.auto_config()``.
        data: ``((x_train, y_train), (x_test, y_test))`` from ``load_fashion_mnist()``.
        setup: a ``TransferSetup``, such as ``setup_for(config)``.
        verbose: print one line per run.

    Returns:
        A ``TransferResults``.
    """
    if not isinstance(setup, TransferSetup):
        raise InvalidArgument(
            f"Expected `setup` to be a TransferSetup. Received: setup of type {type(setup).__name__}"
        )
    if len(setup.source_classes) != len(setup.target_classes):
        raise InvalidArgument(
            "Expected as many target classes as source classes, so that the networks match. "
            f"Received: {len(setup.source_classes)} and {len(setup.target_classes)}"
        )
    split = split_classes(data, setup)
    start = time.perf_counter()
    source, source_val, _ = _train_source(config, split, setup)
    source_seconds = time.perf_counter() - start
    if verbose:
        print(f"source network: validation accuracy {source_val:.3f} "
              f"on its own classes, {source_seconds:.0f} s")
    rows = []
    for count in setup.labels_per_class:
        for repeat in range(setup.repeats):
            rows += _reuse(config, setup, split, source, count, repeat, verbose)
    return TransferResults(source_val, source_seconds, pd.DataFrame(rows))
