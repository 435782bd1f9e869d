"""How the VGG paper trained and tested its networks, beside the course's presets.

Reference:
- [Very Deep Convolutional Networks for Large-Scale Image Recognition](
    https://arxiv.org/abs/1409.1556), Sections 3.1 (training) and 3.2
    (testing).
"""

import types

import pandas as pd

from vggcourse.errors import InvalidArgument
from vggcourse.train import PRESETS, TrainConfig

__all__ = ["PAPER_RECIPE", "recipe_table"]

# Section 3.1, "Training", and Section 3.2, "Testing", summarised; each entry
# fits a table column of 60 characters.
PAPER_RECIPE = types.MappingProxyType(
    {
        "batch size": "256",
        "loss": "multinomial logistic regression (cross-entropy)",
        "optimizer": "SGD, momentum 0.9",
        "weight decay": "5·10⁻⁴ (L2 penalty)",
        "dropout": "0.5 after fc1 and fc2",
        "learning rate": "10⁻², ÷10 when validation accuracy stalled (3 times)",
        "length": "370K iterations (74 epochs)",
        "initialisation": "N(0, variance 10⁻²) for net A; deeper nets from A's",
        "training images": "224×224 crops of images scaled to S = 256, 384 or [256, 512]",
        "augmentation": "random crops, horizontal flips, RGB colour shift",
        "validation": "ILSVRC's validation set, also the test set (Sec. 4)",
        "testing": "dense, at several scales; or 50 crops per scale",
    }
)


def _course_column(config):
    nesterov = "Nesterov " if config.nesterov else ""
    optimizer = "SGD" + (f", {nesterov}momentum {config.momentum:g}" if config.momentum else ", no momentum")
    schedule = "cosine decay to 0" if config.lr_schedule == "cosine" else "constant"
    if config.warmup_epochs:
        schedule = f"{config.warmup_epochs}-epoch warm-up, {schedule}"
    moves = ["left-right flips"] * config.flip + [f"shifts ≤ {config.shift} px"] * bool(config.shift)
    dropout = f"{config.dropout:g} after fc1 and fc2" if config.head == "dense" else "none (no fc1, fc2)"
    loss = "cross-entropy" + (f", label smoothing {config.label_smoothing:g}" if config.label_smoothing else "")
    validation = f"{config.val_split:,} training images held out" if config.val_split else "the test images"
    return {
        "batch size": f"{config.batch_size}",
        "loss": loss,
        "optimizer": optimizer,
        "weight decay": "none",
        "dropout": dropout,
        "learning rate": f"{config.learning_rate:g}, {schedule}",
        "length": f"{config.epochs} epochs",
        "initialisation": "He normal" if config.init == "he" else "Glorot uniform (Keras' default)",
        "training images": f"28×28 resized to {config.image_size}×{config.image_size}",
        "augmentation": ", ".join(moves) or "none",
        "validation": validation,
        "testing": "the whole image, once",
    }


def recipe_table(presets=None):
    """The paper's recipe beside the course's presets, one ingredient per row.

    Args:
        presets: the ``TrainConfig`` objects to show, as a mapping from column
            name to config; by default the ``gpu`` and ``cpu`` presets.

    Returns:
        A ``pandas.DataFrame`` indexed by ingredient, with the column
        ``VGG paper`` and one column per preset, its cells built from the
        configs' fields.
    """
    presets = {name: PRESETS[name] for name in ("gpu", "cpu")} if presets is None else dict(presets)
    for name, config in presets.items():
        if not isinstance(config, TrainConfig):
            raise InvalidArgument(
                f"Expected `presets` to map names to TrainConfig objects. "
                f"Received: presets[{name!r}] of type {type(config).__name__}"
            )
    columns = {"VGG paper": dict(PAPER_RECIPE)}
    columns.update({f"course: {name}": _course_column(config) for name, config in presets.items()})
    table = pd.DataFrame(columns)
    table.index.name = "ingredient"
    return table
