"""Training VGG on Fashion-MNIST with whatever hardware TensorFlow sees.

One call, ``auto_config()``, looks at the devices and picks a preset:

- ``gpu``: d2l's setting (Zhang et al., *Dive into Deep Learning*, section
  "Networks Using Blocks (VGG)"): VGG-11 with a quarter of the channels, 224 px,
  SGD with learning rate 0.05, batch 128, 10 epochs, with 5,000 training images
  held out for validation. Mixed precision where the
  GPU has tensor cores (compute capability 7.0 or more) and XLA.
- ``cpu``: the same network at 32 px with 1,024-unit dense layers, trained for
  about ten minutes on two cores: He initialisation, SGD with Nesterov
  momentum, a warm-up and a cosine decay, with 5,000 training images held out
  to judge it.
- ``smoke``: a few seconds, for tests. ``VGGCOURSE_SMOKE=1`` forces it.

``train_vgg()`` builds the model inside the right ``tf.distribute`` strategy,
backs up every epoch so that a disconnected run resumes where it stopped, and
makes each epoch's randomness (data order, dropout masks) a function of the
seed and the epoch number, so that a resumed run is bit-identical to one that
never stopped.
"""

import dataclasses
import math
import os
import time
import types

import keras
import numpy as np
import tensorflow as tf

from vggcourse import backup
from vggcourse._checks import check_bool, check_choice, check_float, check_int, check_name
from vggcourse.callbacks import EpochSeeds, StopOnNaN, Throughput
from vggcourse.data import CLASS_NAMES, MAX_SHIFT, make_dataset, validation_split
from vggcourse.devices import Devices, choose_strategy, describe_devices
from vggcourse.errors import InvalidArgument, TrainingDiverged
from vggcourse.models import HEADS, VGG_ARCHS, min_input_size, scale_arch, vgg_by_name
from vggcourse.trace import trace_layers, training_memory

__all__ = [
    "PRESETS",
    "RECIPE_FIELDS",
    "SMOKE_VARIABLE",
    "experiment_size",
    "TrainConfig",
    "auto_config",
    "hardware_config",
    "learning_rate_schedule",
    "SmoothedSparseCrossentropy",
    "build_model",
    "build_network",
    "predict_labels",
    "preprocessing_layers",
    "train_vgg",
    "with_recipe",
]

SMOKE_VARIABLE = "VGGCOURSE_SMOKE"
# Far above what VGG was made for (224) and what a batch of it fits in on
# common hardware; train_vgg also refuses, with an estimate, a run that cannot
# fit in a CPU-only machine's memory.
MAX_IMAGE_SIZE = 1024
_PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
_SCHEDULES = ("constant", "cosine")
_INITS = ("glorot", "he")


# ---------------------------------------------------------------------------
# Configuration.


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Arguments are checked on creation.

    Attributes:
        name: a label, used in printouts and for the default backup folder.
        arch: a key of ``VGG_ARCHS``, such as ``"vgg11"``.
        ratio: channels are divided by this (``scale_arch``); d2l uses 4.
        image_size: side in pixels that the model resizes the 28x28 images to.
        dense_units: width of the two hidden dense layers.
        dropout: dropout rate after each hidden dense layer.
        batch_norm: batch normalization after every convolution (``vgg``).
        head: ``"dense"``, the paper's three dense layers, or ``"gap"``,
            global average pooling and one dense layer (``vgg``).
        init: the starting weights of the convolutions and dense layers:
            ``"glorot"``, Keras' default (Glorot uniform), or ``"he"``, He et
            al.'s normal (2015), which keeps the scale of the signal through
            ReLU layers (``vggcourse.initialization``). Biases start at 0.
        learning_rate: SGD's (initial) learning rate.
        momentum: SGD's momentum; 0 is plain SGD.
        nesterov: Nesterov's form of momentum (Sutskever et al., 2013).
        lr_schedule: ``"constant"``, or ``"cosine"`` to decay the learning
            rate to 0 over the run.
        warmup_epochs: raise the learning rate linearly from 0 over this many
            first epochs, then follow ``lr_schedule`` over the rest.
        label_smoothing: train towards ``1 - label_smoothing`` for the true
            class, with the rest spread over all ten classes (Szegedy et al.,
            2016); 0 for one-hot targets.
        flip: flip training images left to right at random (``make_dataset``).
        shift: shift training images at random by up to this many pixels of
            the 28x28 image (``make_dataset``); 0 for none.
        batch_size: examples per step, summed over all replicas.
        epochs: passes over the training set.
        train_examples: train on only the first this-many images; None for all.
        val_split: training images to hold out for validation, stratified
            and seeded by ``seed`` (``validation_split``); the run then never
            sees the test images, which measure the trained model once, at
            the end. 0 validates on the test images, as d2l does.
        val_examples: validate on only the first this-many validation images
            after each epoch; None for all.
        precision: the Keras dtype policy: ``"float32"``, ``"mixed_float16"``
            or ``"mixed_bfloat16"``.
        jit_compile: compile each training step with XLA.
        seed: seeds the weights, the data order and the dropout masks.
    """

    name: str
    arch: str = "vgg11"
    ratio: int = 4
    image_size: int = 224
    dense_units: int = 4096
    dropout: float = 0.5
    batch_norm: bool = False
    head: str = "dense"
    init: str = "glorot"
    learning_rate: float = 0.05
    momentum: float = 0.0
    nesterov: bool = False
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    flip: bool = False
    shift: int = 0
    batch_size: int = 128
    epochs: int = 10
    train_examples: int | None = None
    val_split: int = 0
    val_examples: int | None = None
    precision: str = "float32"
    jit_compile: bool = False
    seed: int = 0

    def __post_init__(self):
        conv_arch = VGG_ARCHS[check_choice("arch", self.arch, tuple(VGG_ARCHS))]
        ratio = check_int("ratio", self.ratio)
        scale_arch(conv_arch, ratio)  # Refuses a ratio that leaves 0 channels.
        checked = dict(
            name=check_name("name", self.name),
            ratio=ratio,
            image_size=check_int("image_size", self.image_size, min_input_size(conv_arch), MAX_IMAGE_SIZE),
            dense_units=check_int("dense_units", self.dense_units),
            dropout=check_float("dropout", self.dropout, 0, 1, low_inclusive=True),
            batch_norm=check_bool("batch_norm", self.batch_norm),
            head=check_choice("head", self.head, HEADS),
            learning_rate=check_float("learning_rate", self.learning_rate, 0, math.inf),
            momentum=check_float("momentum", self.momentum, 0, 1, low_inclusive=True),
            init=check_choice("init", self.init, _INITS),
            nesterov=check_bool("nesterov", self.nesterov),
            lr_schedule=check_choice("lr_schedule", self.lr_schedule, _SCHEDULES),
            warmup_epochs=check_int("warmup_epochs", self.warmup_epochs, minimum=0),
            label_smoothing=check_float("label_smoothing", self.label_smoothing, 0, 1, low_inclusive=True),
            flip=check_bool("flip", self.flip),
            shift=check_int("shift", self.shift, minimum=0, maximum=MAX_SHIFT),
            batch_size=check_int("batch_size", self.batch_size),
            epochs=check_int("epochs", self.epochs),
            train_examples=check_int("train_examples", self.train_examples, allow_none=True),
            val_split=check_int("val_split", self.val_split, minimum=0),
            val_examples=check_int("val_examples", self.val_examples, allow_none=True),
            precision=check_choice("precision", self.precision, _PRECISIONS),
            jit_compile=check_bool("jit_compile", self.jit_compile),
            # NumPy's and so Keras' seeding take seeds below 2**32.
            seed=check_int("seed", self.seed, minimum=0, maximum=2**32 - 1),
        )
        if checked["warmup_epochs"] >= checked["epochs"]:
            raise InvalidArgument(
                f"Expected `warmup_epochs` to be fewer than the {checked['epochs']} epochs, so that some "
                f"follow the schedule. Received: warmup_epochs={self.warmup_epochs}"
            )
        if checked["nesterov"] and not checked["momentum"]:
            raise InvalidArgument(
                "Expected a momentum above 0 with nesterov=True: Nesterov's is a form of momentum. "
                f"Received: nesterov=True, momentum={self.momentum}"
            )
        if checked["val_split"] % len(CLASS_NAMES):
            raise InvalidArgument(
                f"Expected `val_split` to be a multiple of {len(CLASS_NAMES)}, the number of classes, "
                f"so that every class gives as many images. Received: val_split={self.val_split}"
            )
        # Plain Python values from here on (a NumPy integer would fail inside
        # Keras); a frozen dataclass is changed this way only here.
        for field, value in checked.items():
            object.__setattr__(self, field, value)

    def replace(self, **changes):
        """Returns a copy with some fields changed, checked like a new config."""
        return dataclasses.replace(self, **changes)

    @property
    def optimizer_text(self):
        """The optimizer in words, such as 'SGD, Nesterov momentum 0.9'."""
        if not self.momentum:
            return "SGD"
        return f"SGD, {'Nesterov ' if self.nesterov else ''}momentum {self.momentum:g}"

    @property
    def schedule_text(self):
        """The learning rate in words, such as 'learning rate 0.02 after 1 warm-up epoch(s), cosine decay to 0'."""
        rate = f"learning rate {self.learning_rate:g}"
        if self.warmup_epochs:
            rate += f" after {self.warmup_epochs} warm-up epoch(s)"
        return rate + (", cosine decay to 0" if self.lr_schedule == "cosine" else ", constant")

    def __str__(self):
        arch = self.arch.replace("vgg", "VGG-")
        examples = "all" if self.train_examples is None else f"the first {self.train_examples:,}"
        examples += " training images"
        if self.val_split:
            examples = examples.replace("all", "the") + " not held out"
        val = "all" if self.val_examples is None else f"the first {self.val_examples:,}"
        if self.val_split:
            val = f"{self.val_split:,} training images held out (stratified),"
            if self.val_examples is not None:
                val = f"the first {self.val_examples:,} of {val}"
        else:
            val = f"{val} test images"
        model = f"{arch}, channels / {self.ratio}, "
        if self.head == "gap":
            model += "global average pooling head"
        else:
            model += f"dense {self.dense_units}, dropout {self.dropout:g}"
        if self.batch_norm:
            model += ", batch norm"
        if self.init == "he":
            model += ", He init"
        recipe = []
        if self.flip or self.shift:
            moves = ["left-right flips"] * self.flip + [f"shifts of up to {self.shift} px"] * bool(self.shift)
            recipe.append(f"  augmented:  random {', '.join(moves)}")
        if self.label_smoothing:
            recipe.append(f"  targets:    label smoothing {self.label_smoothing:g}")
        return "\n".join(
            [
                f"TrainConfig {self.name!r}",
                f"  model:      {model}",
                f"  images:     {self.image_size}x{self.image_size} (resized from 28x28 inside the model)",
                f"  optimizer:  {self.optimizer_text}",
                f"  schedule:   {self.schedule_text}",
                *recipe,
                f"  training:   {self.epochs} epochs of {examples}, "
                f"batch {self.batch_size}",
                f"  validation: {val} after each epoch",
                f"  precision:  {self.precision}, XLA {'on' if self.jit_compile else 'off'}",
                f"  seed:       {self.seed}",
            ]
        )


# The fields of a configuration that make up its training recipe, as opposed
# to its network, images, batch size, epochs and data.
RECIPE_FIELDS = ("init", "learning_rate", "momentum", "nesterov", "lr_schedule", "warmup_epochs",
                 "label_smoothing", "flip", "shift")


def with_recipe(config, recipe, *, name=None):
    """``config``'s network, images, batch size and epochs, trained with ``recipe``'s recipe.

    Args:
        config: a ``TrainConfig`` whose other fields are kept.
        recipe: a ``TrainConfig`` whose ``RECIPE_FIELDS`` are taken: its
            initialisation, optimizer, learning-rate schedule, augmentation
            and loss.
        name: the new configuration's name; by default ``config``'s.

    Returns:
        A ``TrainConfig``.
    """
    for arg, value in (("config", config), ("recipe", recipe)):
        if not isinstance(value, TrainConfig):
            raise InvalidArgument(
                f"Expected `{arg}` to be a TrainConfig. Received: {arg} of type {type(value).__name__}"
            )
    return config.replace(name=name or config.name, **{f: getattr(recipe, f) for f in RECIPE_FIELDS})


_PRESETS = {
    # d2l's VGG section (TF version): small_conv_arch with ratio 4, 224 px,
    # lr 0.05, 10 epochs, batch 128. d2l evaluates on the test images
    # after every epoch; here 5,000 training images are held out instead.
    "gpu": TrainConfig("gpu", image_size=224, learning_rate=0.05, batch_size=128, epochs=10,
                       val_split=5000),
    # About ten minutes on two cores without native bfloat16 (about 700
    # examples/s, so 6 epochs of the 55,000 images left after the
    # validation split). Each ingredient is kept because the validation
    # split says it helps; `python -m vggcourse ablate` measures them,
    # and also random flips and shifts and label smoothing, which it
    # drops: in 6 epochs they cost more than they give.
    "cpu": TrainConfig(
        "cpu",
        image_size=32,
        dense_units=1024,
        init="he",
        learning_rate=0.02,
        momentum=0.9,
        nesterov=True,
        lr_schedule="cosine",
        warmup_epochs=1,
        batch_size=128,
        epochs=6,
        val_split=5000,
    ),
    # Seconds: a sliver of the data through a narrow network, with just
    # enough steps for the loss to leave VGG's initial plateau.
    "smoke": TrainConfig(
        "smoke",
        ratio=8,
        image_size=32,
        dense_units=64,
        learning_rate=0.02,
        momentum=0.9,
        batch_size=32,
        epochs=3,
        train_examples=2048,
        val_examples=256,
    ),
}
# d2l's network, images and epochs (the gpu preset) trained with the cpu
# preset's recipe, whose learning rate the ablation chose at 32 px on a CPU.
_PRESETS["gpu_recipe"] = with_recipe(_PRESETS["gpu"], _PRESETS["cpu"], name="gpu_recipe")
PRESETS = types.MappingProxyType(_PRESETS)


def _smoke_requested():
    return os.environ.get(SMOKE_VARIABLE, "").strip() not in ("", "0")


def experiment_size(full, *, smoke):
    """The size of an experiment in a chapter: ``full``, or ``smoke`` for a seconds-long run.

    ``smoke`` when the ``VGGCOURSE_SMOKE`` environment variable is set (to
    anything but 0), as ``auto_config`` picks the ``smoke`` preset then.

    Args:
        full: the size of the experiment whose outputs a chapter shows, such
            as a number of training steps or seconds.
        smoke: the size of the same experiment when it only has to run.

    Returns:
        ``full`` or ``smoke``.
    """
    return smoke if _smoke_requested() else full


def auto_config(devices=None, *, verbose=True):
    """Picks the preset for the hardware, adapts it, and prints it.

    ``smoke`` if the ``VGGCOURSE_SMOKE`` environment variable is set (to
    anything but 0), else ``gpu`` on a GPU or TPU, else ``cpu``. On a GPU of
    compute capability 7.0 or more (tensor cores) the run uses the
    ``mixed_float16`` policy (Micikevicius et al., 2018), and on a TPU, or a
    CPU with bfloat16 instructions (``Devices.native_bfloat16``),
    ``mixed_bfloat16``; a CPU without them stays in float32, which it computes
    faster. XLA is used on GPUs only: on a CPU it makes VGG training slower.

    Args:
        devices: a ``Devices``; by default ``describe_devices()``.
        verbose: print the choice and the configuration.

    Returns:
        A ``TrainConfig``.
    """
    devices = devices or describe_devices()
    if _smoke_requested():
        name, reason = "smoke", f"{SMOKE_VARIABLE} is set"
        config = _adapted(PRESETS["smoke"], devices)
    else:
        config = hardware_config(devices)
        name = config.name
        reason = (
            f"TensorFlow sees a {devices.kind}" if name == "gpu" else "TensorFlow sees no GPU or TPU"
        )
    if verbose:
        print(f"Device: {devices}\nPreset {name!r}, because {reason}.\n{config}")
    return config


def hardware_config(devices):
    """The configuration ``auto_config`` picks for ``devices``, whatever the environment says.

    ``gpu`` on a GPU or TPU, ``cpu`` otherwise, with the precision and XLA
    setting of the hardware (see ``auto_config``). It needs no such hardware
    to be present, so it shows what a run would do elsewhere.

    Args:
        devices: a ``Devices``.
    """
    if not isinstance(devices, Devices):
        raise InvalidArgument(
            f"Expected `devices` to be a vggcourse.Devices. Received: devices={devices!r}"
        )
    name = "gpu" if devices.kind in ("GPU", "TPU") else "cpu"
    return _adapted(PRESETS[name], devices)


def _adapted(config, devices):
    if devices.kind == "GPU":
        cc = devices.compute_capability
        tensor_cores = cc is not None and tuple(cc) >= (7, 0)
        return config.replace(
            precision="mixed_float16" if tensor_cores else "float32", jit_compile=True
        )
    if devices.kind == "TPU":
        # A TPU compiles every step with XLA anyway.
        return config.replace(precision="mixed_bfloat16")
    if devices.native_bfloat16:
        return config.replace(precision="mixed_bfloat16")
    return config


# ---------------------------------------------------------------------------
# The model.


def preprocessing_layers(image_size):
    """The model's first layers: scale uint8 pixels to [0, 1], then resize to ``image_size``.

    Doing this in the model, on the accelerator and one batch at a time,
    keeps the input pipeline's memory at one byte per pixel of the original
    28x28 images.

    Args:
        image_size: side in pixels of the resized images.

    Returns:
        A list of two layers, ``rescale`` and ``resize``, from uint8
        ``(batch, 28, 28, 1)`` to float ``(batch, image_size, image_size, 1)``.
    """
    image_size = check_int("image_size", image_size)
    return [
        keras.layers.Rescaling(1 / 255, name="rescale"),
        keras.layers.Resizing(image_size, image_size, name="resize"),
    ]


def build_network(config):
    """The network that ``config`` trains, without its preprocessing: ``vgg_by_name``.

    Args:
        config: a ``TrainConfig``; its ``arch``, ``ratio``, ``dense_units``,
            ``dropout``, ``batch_norm`` and ``head`` are used.

    Returns:
        A ``VGG`` named ``vgg``, with one logit per class of ``CLASS_NAMES``.
    """
    return vgg_by_name(
        config.arch,
        config.ratio,
        num_classes=len(CLASS_NAMES),
        dense_units=config.dense_units,
        dropout=config.dropout,
        batch_norm=config.batch_norm,
        head=config.head,
        name="vgg",
    )


def build_model(config):
    """Builds the model to train: ``preprocessing_layers``, then ``build_network``.

    The model takes uint8 images of shape ``(batch, 28, 28, 1)``, as
    ``make_dataset()`` yields them. Under ``config.precision`` it computes in
    that dtype policy, without changing Keras' global policy.

    Call it inside ``strategy.scope()`` when training with a strategy.

    Args:
        config: a ``TrainConfig``.

    Returns:
        A built ``keras.Sequential`` whose layers are ``rescale``, ``resize``
        and the ``VGG`` network itself (its last layer is named ``vgg``; the
        chapters' ``vgg()`` contract is unchanged inside it), its weights
        drawn as ``config.init`` says. Outputs logits.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        model = keras.Sequential(
            [
                keras.Input(shape=(28, 28, 1), dtype="uint8", name="images"),
                *preprocessing_layers(config.image_size),
                build_network(config),
            ],
            name=f"{config.arch}_fashion_mnist",
        )
    finally:
        keras.config.set_dtype_policy(previous)
    if config.init != "glorot":  # Keras' default needs no redrawing
        from vggcourse.initialization import initialize  # it imports this module

        initialize(model, config.init, seed=config.seed)
    return model


def learning_rate_schedule(config, steps_per_epoch):
    """The learning rate of ``config``, step by step: a float, or a Keras schedule.

    A warm-up rises linearly from 0 to ``config.learning_rate`` over
    ``config.warmup_epochs``; the cosine schedule then decays it to 0 by the
    last step, and the constant one keeps it.
    """
    if config.lr_schedule == "constant" and not config.warmup_epochs:
        return config.learning_rate
    warmup_steps = config.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else config.learning_rate,
        decay_steps=(config.epochs - config.warmup_epochs) * steps_per_epoch,
        # alpha=1: the "decay" ends where it starts, a constant rate.
        alpha=0.0 if config.lr_schedule == "cosine" else 1.0,
        warmup_target=config.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


@keras.saving.register_keras_serializable(package="vggcourse")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy between integer labels, smoothed, and logits.

    Keras' ``SparseCategoricalCrossentropy`` has no label smoothing; this is
    ``CategoricalCrossentropy(from_logits=True, label_smoothing=...)`` on the
    one-hot labels, without making one-hot labels in the input pipeline.
    """

    def __init__(self, label_smoothing=0.0, name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = check_float("label_smoothing", label_smoothing, 0, 1, low_inclusive=True)

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def _compile(model, config, steps_per_epoch):
    if config.label_smoothing:
        loss = SmoothedSparseCrossentropy(config.label_smoothing)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # Under "mixed_float16", compile() wraps the optimizer in a
    # LossScaleOptimizer, so that small float16 gradients do not underflow.
    model.compile(
        optimizer=keras.optimizers.SGD(
            learning_rate_schedule(config, steps_per_epoch), momentum=config.momentum, nesterov=config.nesterov
        ),
        loss=loss,
        metrics=["accuracy"],
        jit_compile=config.jit_compile,
    )


def _format_seconds(seconds):
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _summary(config, folder, history, epochs_run):
    """'Trained 3 epoch(s) in 12 s; ...', or why nothing was left to train."""
    if not epochs_run:
        return (
            f"Nothing left to train: the backup in {folder} already holds {history.restored_epochs} epoch(s), "
            f"and the configuration asks for {config.epochs}. The model is restored from it, and the backup "
            "is kept; ask for more epochs to train on, or restart to start over."
        )
    if history.throughput is None:
        speed = "one epoch only, so no throughput without its warm-up"
    else:
        speed = f"{history.throughput:,.0f} examples/s after the first epoch's warm-up"
    return f"Trained {epochs_run} epoch(s) in {_format_seconds(history.seconds)}; {speed}."


def _used_data(config, data):
    """The part of ``data`` that ``config`` trains and validates on: ``((x, y), (x_val, y_val))``."""
    try:
        (x_train, y_train), (x_test, y_test) = data
    except (TypeError, ValueError):
        raise InvalidArgument(
            "Expected `data` to be ((x_train, y_train), (x_test, y_test)), as "
            f"load_fashion_mnist() returns. Received: data of type {type(data).__name__}"
        ) from None
    if config.val_split:
        (x_train, y_train), (x_val, y_val) = validation_split(x_train, y_train, config.val_split, seed=config.seed)
    else:
        x_val, y_val = x_test, y_test
    train_part, val_part = slice(config.train_examples), slice(config.val_examples)
    return (x_train[train_part], y_train[train_part]), (x_val[val_part], y_val[val_part])


def _check_memory(config, devices, strategy):
    """Refuses, before any work, a run whose training step cannot fit in a CPU-only machine's memory.

    An accelerator's memory is not known before TensorFlow uses it, so only
    runs on the CPU are checked, against ``training_memory``'s lower bound.
    """
    if devices.kind != "CPU" or not hasattr(os, "sysconf"):
        return
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    trace = trace_layers(build_network(config), (config.image_size, config.image_size, 1))
    batch = -(-config.batch_size // strategy.num_replicas_in_sync)
    needed = int(training_memory(trace, batch, optimizer_slots=1 if config.momentum else 0)["total"])
    if needed > memory:
        raise InvalidArgument(
            f"A training step of this configuration needs about {needed / 1e9:,.1f} GB "
            f"(vggcourse.training_memory, a lower bound), and this machine has {memory / 1e9:,.1f} GB "
            f"of memory. Expected a smaller image_size or batch_size. Received: "
            f"image_size={config.image_size}, batch_size={config.batch_size}"
        )


def train_vgg(config, data, *, backup_dir=None, restart=False, strategy=None, callbacks=(), verbose=2):
    """Trains a fresh model for ``config`` on ``data``, resuming a backed-up run.

    Args:
        config: a ``TrainConfig``, for example from ``auto_config()``.
        data: ``((x_train, y_train), (x_test, y_test))`` as
            ``load_fashion_mnist()`` returns them. The run validates after
            each epoch on ``config.val_split`` images held out of the training
            images, or, when that is 0, on the test images (see also
            ``config.val_examples``).
        backup_dir: the folder to back the run up in, after every epoch; by
            default ``backup.default_backup_dir()``, in the temporary
            directory. The run uses a folder of its own inside it,
            ``backup.backup_folder(backup_dir, config)``, and touches nothing
            else there. Put it on persistent storage (in Colab, a Google
            Drive folder) to survive a disconnect. A run that finds its
            backup resumes from it, if it is of the same configuration and
            data; a run that finishes deletes it.
        restart: delete a backup of this configuration's name first, even one
            of other settings, and start afresh.
        strategy: a ``tf.distribute.Strategy``; by default ``choose_strategy()``.
        callbacks: more Keras callbacks, called after the built-in ones.
        verbose: passed to ``model.fit``; 2 prints one line per epoch, then
            the time and throughput of the run; 0 prints nothing.

    Returns:
        The ``keras.callbacks.History`` of the run. The trained model is
        ``history.model``; ``history.history`` holds per-epoch ``loss``,
        ``accuracy``, ``val_loss``, ``val_accuracy`` and ``examples_per_second``;
        ``history.seconds`` is the wall time of ``fit``, ``history.throughput``
        the examples per second after the first epoch (None after one epoch),
        and ``history.restored_epochs`` the epochs restored from a backup.

    Raises:
        InvalidArgument: a bad argument, or labels, or a run too large for
            this machine's memory; all before any work.
        vggcourse.backup.BackupError: the backup folder cannot be used, before
            any work, or a backup could not be written (the previous one is kept).
        TrainingDiverged: the loss stopped being finite; the last complete
            epoch's backup is kept, and nothing of the failing epoch is saved.
    """
    if not isinstance(config, TrainConfig):
        raise InvalidArgument(
            f"Expected `config` to be a TrainConfig. Received: config of type {type(config).__name__}"
        )
    used = (x_train, y_train), (x_val, y_val) = _used_data(config, data)
    devices = describe_devices()
    strategy = strategy or choose_strategy(devices)
    _check_memory(config, devices, strategy)
    keras.utils.set_random_seed(config.seed)
    # Created outside the strategy's scope: it lives with the input pipeline
    # on the host, not on the replicas.
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    train_ds = make_dataset(x_train, y_train, config.batch_size, shuffle=True, seed=config.seed, epoch=epoch,
                            flip=config.flip, shift=config.shift)
    val_ds = make_dataset(x_val, y_val, config.batch_size)
    backup_dir = backup.default_backup_dir() if backup_dir is None else backup_dir
    with backup.opened(backup_dir, config, used, restart=restart) as folder:
        with strategy.scope():
            model = build_model(config)
            _compile(model, config, steps_per_epoch=int(train_ds.cardinality()))
        throughput, saver = Throughput(len(x_train)), backup.SafeBackup(folder, config.epochs)
        own = [EpochSeeds(epoch, config.seed), throughput, StopOnNaN(), saver]
        start = time.perf_counter()
        try:
            # shuffle=False: the order comes from make_dataset's stateless shuffle.
            history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, shuffle=False,
                                verbose=verbose, callbacks=[*own, *callbacks])
        except TrainingDiverged as error:
            done = backup.epochs_backed_up(folder)
            kept = f"the backup of epoch {done} is kept in {folder}" if done else "no epoch was backed up"
            raise TrainingDiverged(f"{error}; {kept}. Try a lower learning rate.") from None
    history.seconds = time.perf_counter() - start
    history.throughput = throughput.examples_per_second
    history.restored_epochs = saver.restored_epochs
    if verbose:
        print(_summary(config, folder, history, len(throughput.seconds)))
    return history


def predict_labels(model, x, batch_size=256):
    """Returns the predicted class of every image in ``x`` (uint8, 28x28)."""
    logits = model.predict(make_dataset(x, np.zeros(len(x), np.uint8), batch_size), verbose=0)
    return np.argmax(logits, axis=1).astype(np.uint8)
