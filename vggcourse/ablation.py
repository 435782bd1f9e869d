"""The ``cpu`` preset's recipe, one ingredient at a time: an ablation measured on a validation split.

Each row trains a fresh network with the row before's configuration and one
more ingredient: the first row is d2l's recipe at the ``cpu`` preset's image
size, the last row is the ``cpu`` preset itself. Every row holds out the same
stratified validation split of the training images and is judged on it; the
test images are used once, by the last row, at the end.

``python -m vggcourse ablate --json PATH`` runs it; its results ship as
``vggcourse/results/ablation_cpu.json`` once a full run is recorded, and
``load_ablation()`` reads them.
"""

import dataclasses
import json
import pathlib
import tempfile
import types

import pandas as pd

from vggcourse._checks import check_int
from vggcourse.errors import InvalidArgument
from vggcourse.train import PRESETS, TrainConfig, predict_labels, train_vgg

__all__ = ["ABLATION_STEPS", "SCHEMA_VERSION", "ablation_configs", "ablation_table", "load_ablation",
           "run_ablation", "save_ablation", "tiny_rows"]

SCHEMA_VERSION = 1
REFERENCE = pathlib.Path(__file__).parent / "results" / "ablation_cpu.json"

# Each step: what the row adds to the row before, in a few words, and the
# TrainConfig fields it changes. The first row is d2l's recipe (the gpu
# preset) at the cpu preset's image size; the steps must end at the cpu preset.
ABLATION_STEPS = (
    ("d2l's recipe: dense 4096, SGD at 0.05, 10 epochs", types.MappingProxyType({})),
    ("hidden dense layers of 1,024", types.MappingProxyType({"dense_units": 1024})),
    ("momentum 0.9 and a cosine decay from 0.02",
     types.MappingProxyType({"momentum": 0.9, "lr_schedule": "cosine", "learning_rate": 0.02})),
    ("15 epochs", types.MappingProxyType({"epochs": 15})),
)


def ablation_configs(final=None, steps=ABLATION_STEPS, *, val_split=5000):
    """Each row's label and ``TrainConfig``: d2l's recipe, then one step more per row.

    Args:
        final: the configuration the last row must be, by default the ``cpu``
            preset; its image size is every row's.
        steps: ``(label, changes)`` pairs, as in ``ABLATION_STEPS``.
        val_split: training images every row holds out for validation.

    Returns:
        A list of ``(label, config)``.

    Raises:
        InvalidArgument: the steps do not end at ``final``.
    """
    final = PRESETS["cpu"] if final is None else final
    if not isinstance(final, TrainConfig):
        raise InvalidArgument(f"Expected `final` to be a TrainConfig. Received: final of type {type(final).__name__}")
    val_split = check_int("val_split", val_split)
    config = PRESETS["gpu"].replace(image_size=final.image_size, val_split=val_split)
    rows = []
    for i, (label, changes) in enumerate(steps):
        config = config.replace(name=f"ablation-{i}", **changes)
        rows.append((label, config))
    if not rows or config != final.replace(name=config.name, val_split=val_split):
        raise InvalidArgument(
            f"Expected the steps to end at the {final.name!r} configuration, so that the last row is "
            f"what the course trains. Received: {len(rows)} step(s), the last row being {config!r}"
        )
    return rows


def tiny_rows(rows):
    """The same rows, each cut to seconds: a narrow network, a few hundred images, one epoch."""
    return [
        (label, config.replace(ratio=8, dense_units=min(config.dense_units, 64), batch_size=32,
                               train_examples=256, val_split=50, epochs=1, warmup_epochs=0))
        for label, config in rows
    ]


def run_ablation(rows, data, *, verbose=1):
    """Trains every row and records what the validation split says of it.

    Args:
        rows: ``(label, config)`` pairs, as ``ablation_configs()`` returns.
        data: ``((x_train, y_train), (x_test, y_test))``.
        verbose: 1 prints a line per row; 0 nothing.

    Returns:
        A dict in this module's schema: ``rows``, each with its ``label``,
        ``config`` (every field), per-epoch ``val_accuracy`` and ``accuracy``,
        and ``seconds`` of training; and ``test_accuracy``, the last row's
        network on the test images, measured once.
    """
    results = {"schema_version": SCHEMA_VERSION, "rows": [], "test_accuracy": None}
    model = None
    for label, config in rows:
        with tempfile.TemporaryDirectory() as backup_dir:
            history = train_vgg(config, data, backup_dir=backup_dir, verbose=0)
        model = history.model
        row = {
            "label": label,
            "config": dataclasses.asdict(config),
            "val_accuracy": [float(v) for v in history.history["val_accuracy"]],
            "accuracy": [float(v) for v in history.history["accuracy"]],
            "seconds": history.seconds,
        }
        results["rows"].append(row)
        if verbose:
            print(f"{label}: validation accuracy {row['val_accuracy'][-1]:.4f} "
                  f"in {history.seconds / 60:.1f} min", flush=True)
    if model is not None:
        (_, _), (x_test, y_test) = data
        results["test_accuracy"] = float((predict_labels(model, x_test) == y_test).mean())
    return results


def save_ablation(results, path, machine=None):
    """Writes ``results`` as JSON to ``path``, with a description of the machine they come from."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**results, "machine": machine or {}}, indent=2) + "\n")
    return path


def load_ablation(path=None):
    """Reads ablation results; by default the recorded full run that ships with the package."""
    path = REFERENCE if path is None else pathlib.Path(path)
    results = json.loads(path.read_text())
    if results.get("schema_version") != SCHEMA_VERSION or "rows" not in results:
        raise InvalidArgument(
            f"Expected ablation results of schema version {SCHEMA_VERSION}. Received: {path} "
            f"with schema version {results.get('schema_version')}"
        )
    return results


def ablation_table(results):
    """One row per step: the validation accuracy it reached, its minutes, and the test accuracy of the last.

    Returns:
        A ``pandas.DataFrame`` indexed by the steps' labels, with columns
        ``validation accuracy``, ``minutes`` and ``test accuracy`` (empty but
        for the last row: the test set judges only the recipe chosen).
    """
    rows = results["rows"]
    table = pd.DataFrame(
        {
            "validation accuracy": [row["val_accuracy"][-1] for row in rows],
            "minutes": [row["seconds"] / 60 for row in rows],
            "test accuracy": [None] * (len(rows) - 1) + [results["test_accuracy"]],
        },
        index=pd.Index([row["label"] for row in rows], name="recipe"),
    )
    return table
