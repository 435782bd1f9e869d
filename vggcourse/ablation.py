"""The ``cpu`` preset's recipe, one ingredient at a time: an ablation measured on a validation split.

Each row trains a fresh network: the recipe kept so far, with one more
ingredient. The first row is d2l's recipe at the ``cpu`` preset's image size
and epochs. An ingredient is kept when its row's validation accuracy beats the
recipe kept so far by more than a standard error, and dropped otherwise: the next row then builds on the
recipe without it. The recipe kept at the end is the ``cpu`` preset. Every row
holds out the same stratified validation split of the training images and is
judged on it; the test images are used once, by the preset's network, at the
end.

``python -m vggcourse ablate --json PATH`` runs it; its results ship as
``vggcourse/results/ablation_cpu.json`` once a full run is recorded, and
``load_ablation()`` reads them. With ``--reuse PATH``, rows whose
configuration an earlier run already measured keep those measurements, so
that a new step costs one row's training, and the recipe kept trains again.
"""

import dataclasses
import json
import math
import pathlib
import tempfile
import types
import typing

import pandas as pd

from vggcourse._checks import check_int
from vggcourse.errors import InvalidArgument
from vggcourse.train import PRESETS, TrainConfig, predict_labels, train_vgg

__all__ = ["ABLATION_STEPS", "SCHEMA_VERSION", "Row", "Step", "ablation_configs", "ablation_table", "load_ablation",
           "run_ablation", "save_ablation", "standard_error", "tiny_rows",
           "validation_decisions"]

SCHEMA_VERSION = 2
REFERENCE = pathlib.Path(__file__).parent / "results" / "ablation_cpu.json"


class Step(typing.NamedTuple):
    """One row of the ablation: what it adds, the fields it changes, whether the preset keeps it, and why.

    ``key`` is a short name for the row, unique among the steps, by which
    its results can be looked up (the book names its glued values with it).
    ``purpose`` is ``"accuracy"`` for an ingredient meant to raise the
    validation accuracy, or ``"speed"`` for one meant to train faster.
    """

    key: str
    label: str
    changes: types.MappingProxyType
    kept: bool = True
    purpose: str = "accuracy"


def _step(key, label, kept=True, purpose="accuracy", **changes):
    return Step(key, label, types.MappingProxyType(changes), kept, purpose)


# The first row is d2l's recipe (the gpu preset) at the cpu preset's image
# size and number of epochs; the kept steps must end at the cpu preset.
ABLATION_STEPS = (
    _step("d2l", "d2l: dense 4096, SGD at 0.05, no momentum", epochs=6),
    _step("dense", "+ dense layers of 1,024 units", purpose="speed", dense_units=1024),
    _step("he", "+ He initialisation", init="he"),
    _step("schedule", "+ Nesterov momentum, warm-up, cosine decay", momentum=0.9, nesterov=True,
          lr_schedule="cosine", learning_rate=0.02, warmup_epochs=1),
    _step("augment", "+ random flips and shifts of up to 2 px", kept=False, flip=True, shift=2),
    _step("smooth", "+ label smoothing 0.1", kept=False, label_smoothing=0.1),
)


class Row(typing.NamedTuple):
    """One row to train: its step's key and label, the full ``TrainConfig``, whether it is kept, and what for."""

    key: str
    label: str
    config: TrainConfig
    kept: bool
    purpose: str


def ablation_configs(final=None, steps=ABLATION_STEPS, *, val_split=5000):
    """Each row's ``Row``: d2l's recipe, then one step more per row.

    A row adds its step to the last kept row's configuration, so a dropped
    step is left out of every row after it.

    Args:
        final: the configuration the kept steps must end at, by default the
            ``cpu`` preset; its image size is every row's.
        steps: ``Step`` objects, as in ``ABLATION_STEPS``.
        val_split: training images every row holds out for validation.

    Returns:
        A list of ``Row``.

    Raises:
        InvalidArgument: the kept steps do not end at ``final``, or two steps
            share a key.
    """
    final = PRESETS["cpu"] if final is None else final
    if not isinstance(final, TrainConfig):
        raise InvalidArgument(f"Expected `final` to be a TrainConfig. Received: final of type {type(final).__name__}")
    val_split = check_int("val_split", val_split)
    keys = [step.key for step in steps]
    if len(set(keys)) != len(keys):
        raise InvalidArgument(f"Expected every step to have a key of its own. Received: keys {keys}")
    recipe = PRESETS["gpu"].replace(image_size=final.image_size, val_split=val_split)
    rows = []
    for i, step in enumerate(steps):
        config = recipe.replace(name=f"ablation-{i}", **step.changes)
        rows.append(Row(step.key, step.label, config, step.kept, step.purpose))
        if step.kept or i == 0:
            recipe = config
    if not rows or recipe != final.replace(name=recipe.name, val_split=val_split):
        raise InvalidArgument(
            f"Expected the kept steps to end at the {final.name!r} configuration, so that the recipe "
            f"kept is what the course trains. Received: {len(rows)} step(s), the recipe kept being {recipe!r}"
        )
    return rows


def tiny_rows(rows):
    """The same rows, each cut to seconds: a narrow network, a few hundred images, one epoch."""
    return [
        row._replace(config=row.config.replace(
            ratio=8, dense_units=min(row.config.dense_units, 64), batch_size=32,
            train_examples=256, val_split=50, epochs=1, warmup_epochs=0))
        for row in rows
    ]


def _unnamed(config):
    return {key: value for key, value in config.items() if key != "name"}


def run_ablation(rows, data, *, reuse=None, verbose=1):
    """Trains every row and records what the validation split says of it.

    Args:
        rows: ``Row`` objects, as ``ablation_configs()`` returns.
        data: ``((x_train, y_train), (x_test, y_test))``.
        reuse: earlier results in this module's schema, or None. A row
            whose configuration they hold (its name aside) takes their
            measurements instead of training again, marked ``"reused"``;
            all but the last kept row, whose network the test images measure.
        verbose: 1 prints a line per row; 0 nothing.

    Returns:
        A dict in this module's schema: ``rows``, each with its ``key``, ``label``,
        ``config`` (every field), ``kept``, ``purpose``, per-epoch ``val_accuracy`` and
        ``accuracy``, ``seconds`` of training and whether it was ``reused``;
        and ``test_accuracy``, the last kept row's network on the test
        images, measured once.
    """
    results = {"schema_version": SCHEMA_VERSION, "rows": [], "test_accuracy": None}
    earlier = {json.dumps(_unnamed(row["config"]), sort_keys=True): row
               for row in (reuse or {}).get("rows", [])}
    last_kept = max((i for i, row in enumerate(rows) if row.kept or i == 0), default=None)
    chosen = None
    for i, row in enumerate(rows):
        config = dataclasses.asdict(row.config)
        stored = earlier.get(json.dumps(_unnamed(config), sort_keys=True))
        reused = stored is not None and i != last_kept
        if reused:
            measured = {key: stored[key] for key in ("val_accuracy", "accuracy", "seconds")}
        else:
            with tempfile.TemporaryDirectory() as backup_dir:
                history = train_vgg(row.config, data, backup_dir=backup_dir, verbose=0)
            if i == last_kept:
                chosen = history.model
            measured = {"val_accuracy": [float(v) for v in history.history["val_accuracy"]],
                        "accuracy": [float(v) for v in history.history["accuracy"]],
                        "seconds": history.seconds}
        results["rows"].append({"key": row.key, "label": row.label, "config": config, "kept": bool(row.kept),
                                "purpose": row.purpose, **measured, "reused": reused})
        if verbose:
            again = " (measured earlier)" if reused else ""
            print(f"{row.label}: validation accuracy {measured['val_accuracy'][-1]:.4f} "
                  f"in {measured['seconds'] / 60:.1f} min{again}", flush=True)
    if chosen is not None:
        (_, _), (x_test, y_test) = data
        results["test_accuracy"] = float((predict_labels(chosen, x_test) == y_test).mean())
    return results


def validation_decisions(results):
    """Whether the measurements say to keep each row's ingredient.

    An ingredient for accuracy is worth keeping when its row's validation
    accuracy after the last epoch beats that of the recipe kept so far by
    more than one standard error of that accuracy, ``sqrt(p (1 - p) / n)``
    on ``n`` validation images: a smaller gain is one that the split cannot
    tell from chance. An ingredient for speed is worth keeping when its row
    trains in less time than the recipe kept so far. The first row, the
    starting recipe, is always kept.

    Returns:
        A list of bools, one per row.
    """
    decisions, best = [], None
    for row in results["rows"]:
        accuracy, seconds = row["val_accuracy"][-1], row["seconds"]
        if best is None:
            keep = True
        elif row.get("purpose", "accuracy") == "speed":
            keep = seconds < best["seconds"]
        else:
            keep = accuracy > best["val_accuracy"][-1] + standard_error(best)
        decisions.append(keep)
        if keep:
            best = row
    return decisions


def standard_error(row):
    """The standard error of a row's last validation accuracy, ``sqrt(p (1 - p) / n)``; 0 without ``n``."""
    config = row.get("config", {})
    # The images validated on: the split, or its first val_examples.
    n = min(filter(None, (config.get("val_split"), config.get("val_examples"))), default=0)
    p = row["val_accuracy"][-1]
    return math.sqrt(p * (1 - p) / n) if n else 0.0


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
    """One row per step: the validation accuracy it reached, its minutes, whether it was kept, and the test accuracy.

    Returns:
        A ``pandas.DataFrame`` indexed by the steps' labels, with columns
        ``validation accuracy``, ``minutes``, ``kept`` and ``test accuracy``
        (empty but for the last kept row: the test set judges only the recipe
        chosen).
    """
    rows = results["rows"]
    kept = [row.get("kept", True) for row in rows]
    last_kept = max(i for i, keep in enumerate(kept) if keep)
    table = pd.DataFrame(
        {
            "validation accuracy": [row["val_accuracy"][-1] for row in rows],
            "minutes": [row["seconds"] / 60 for row in rows],
            "kept": ["yes" if keep else "no" for keep in kept],
            "test accuracy": [results["test_accuracy"] if i == last_kept else None for i in range(len(rows))],
        },
        index=pd.Index([row["label"] for row in rows], name="recipe"),
    )
    return table
