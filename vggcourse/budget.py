"""Training for a fixed time, to compare networks at equal cost.

Two networks that differ in size also differ in speed: compared after the
same number of epochs, the faster one has had less computation. Given the
same seconds of training instead, each gets as many steps as its speed
allows, and the validation accuracy says which uses the time better.
"""

import dataclasses
import math
import time

import keras
import pandas as pd
import tensorflow as tf

from vggcourse._checks import check_float
from vggcourse._quiet import fresh_models
from vggcourse.callbacks import EpochSeeds
from vggcourse.data import make_dataset
from vggcourse.errors import InvalidArgument
from vggcourse.initialization import initialize
from vggcourse.train import TrainConfig, _compile, build_model

__all__ = ["BudgetRun", "train_for"]


class _StopAfter(keras.callbacks.Callback):
    """Stops training once the training steps have taken ``seconds``, and logs each epoch.

    Only the steps count: the time spent on validation is not training.
    """

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.trained = 0.0
        self.steps = 0
        self.epochs = []

    def on_train_batch_begin(self, batch, logs=None):
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.trained += time.perf_counter() - self._started
        self.steps += 1
        if self.trained >= self.seconds:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epochs.append(
            {
                "seconds": self.trained,
                "steps": self.steps,
                "accuracy": float(logs.get("accuracy", math.nan)),
                "val_accuracy": float(logs.get("val_accuracy", math.nan)),
            }
        )


@dataclasses.dataclass(frozen=True)
class BudgetRun:
    """One network trained for a fixed time.

    Attributes:
        config: the ``TrainConfig`` it was trained with.
        params: the network's parameters.
        seconds: the time its training steps took.
        steps: training steps done in that time.
        val_accuracy: accuracy on the validation images at the end.
        curve: a ``pandas.DataFrame`` with one row per epoch (the last one
            possibly cut short by the budget): ``seconds``, ``steps``,
            ``accuracy`` (training, during the epoch) and ``val_accuracy``.
    """

    config: TrainConfig
    params: int
    seconds: float
    steps: int
    val_accuracy: float
    curve: pd.DataFrame


def train_for(config, train, val, seconds, *, start=None):
    """Trains ``config``'s network for ``seconds`` of training steps.

    The learning rate is constant (``config.learning_rate``, with
    ``config.momentum``, no warm-up): a schedule would need the number of
    steps, which the budget decides. The rest of ``config``'s recipe holds:
    its augmentation and label smoothing. Each epoch ends with an evaluation
    on ``val``.

    Args:
        config: a ``TrainConfig``: the network, image size, batch size,
            optimizer and seed. ``epochs`` caps the run if the budget is
            not used up first.
        train: ``(x_train, y_train)``, uint8 images and their labels.
        val: ``(x_val, y_val)``, held out from the training images (see
            ``vggcourse.validation_split``), never the test images.
        seconds: the time budget of the training steps.
        start: a key of ``vggcourse.initialization.STARTS`` other than
            ``"vgg11_copy"``, to draw the weights from; by default Keras'
            own initialisers (Glorot uniform).

    Returns:
        A ``BudgetRun``.
    """
    if not isinstance(config, TrainConfig):
        raise InvalidArgument(
            f"Expected `config` to be a TrainConfig. Received: config of type {type(config).__name__}"
        )
    seconds = check_float("seconds", seconds, 0, math.inf)
    config = config.replace(lr_schedule="constant", warmup_epochs=0)
    keras.utils.set_random_seed(config.seed)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    train_ds = make_dataset(*train, config.batch_size, shuffle=True, seed=config.seed, epoch=epoch,
                            flip=config.flip, shift=config.shift)
    model = build_model(config)
    if start is not None:
        initialize(model, start, seed=config.seed)
    _compile(model, config, steps_per_epoch=int(train_ds.cardinality()))
    clock = _StopAfter(seconds)
    with fresh_models():
        model.fit(
            train_ds,
            validation_data=make_dataset(*val, 256),
            epochs=config.epochs,
            shuffle=False,  # make_dataset shuffles, seeded by (seed, epoch)
            verbose=0,
            callbacks=[EpochSeeds(epoch, config.seed), clock],
        )
    curve = pd.DataFrame(clock.epochs, index=pd.RangeIndex(1, len(clock.epochs) + 1, name="epoch"))
    return BudgetRun(
        config=config,
        params=model.count_params(),
        seconds=clock.trained,
        steps=clock.steps,
        val_accuracy=float(curve["val_accuracy"].iloc[-1]),
        curve=curve,
    )
