"""Figures of a benchmark run, for the Performance appendix.

Every function takes the results as a dict in the layout of ``schema.Results``
(what ``run_bench`` returns and ``load_results`` reads), draws with matplotlib
in the course's style, and returns the ``Figure`` or ``Axes`` it drew on.
"""

import numpy as np

from vggcourse.bench.profile import MAC_CATEGORIES
from vggcourse.errors import InvalidArgument
from vggcourse.plots._base import _figure

__all__ = [
    "plot_layer_rates",
    "plot_pipelines",
    "plot_profile",
    "plot_time_to_accuracy",
    "plot_train_speeds",
]

_OURS, _D2L, _VARIANT = "tab:blue", "tab:orange", "tab:gray"
# Short names of the training paths and variants, as the bars show them.
_PATHS = {
    "ours": "course",
    "ours_plain_sgd": "course, d2l's optimizer",
    "d2l": "d2l",
}
_VARIANTS = {
    "xla": "course, XLA",
    "mixed_float16": "course, mixed_float16",
    "mixed_bfloat16": "course, mixed_bfloat16",
}


def _section(results, key, what):
    if not isinstance(results, dict) or not results.get(key):
        raise InvalidArgument(
            f"Expected `results` to be benchmark results with a {key!r} section ({what}), "
            "as bench.load_results() returns them. "
            f"Received: results of type {type(results).__name__}"
            + (f" with sections {sorted(results)}" if isinstance(results, dict) else "")
        )
    return results[key]


def _label_bars(ax, bars, values, fmt):
    ax.bar_label(bars, labels=[fmt(value) for value in values], padding=3, fontsize=8)


def plot_pipelines(results):
    """Draws both input pipelines' own memory and time to the first batch, as bars.

    Returns:
        The ``Figure``, with two ``Axes`` on a log scale: memory in MB, then
        seconds. Each bar is labelled with its value.
    """
    pipeline = _section(results, "pipeline", "memory and first batch")
    names = ("course", "d2l")
    fig, axes = _figure(ncols=2, figsize=(8.0, 2.6))
    for ax, key, xlabel, fmt in (
        (axes[0], "own_rss_mb", "the pipeline's own peak memory (MB)", lambda v: f"{v:,.0f} MB"),
        (axes[1], "first_batch_s", "time to the first batch (s)", lambda v: f"{v:.2f} s"),
    ):
        values = [pipeline[kind][key] for kind in ("ours", "d2l")]
        bars = ax.barh(names, values, color=[_OURS, _D2L])
        ax.set_xscale("log")
        ax.set_xlim(min(values) / 3, max(values) * 8)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        _label_bars(ax, bars, values, fmt)
    fig.suptitle(
        f"{pipeline['num_examples']:,} images at {pipeline['image_size']} px, "
        f"batch {pipeline['batch_size']}",
        fontsize=10,
    )
    return fig


def plot_train_speeds(results, *, ax=None):
    """Draws training examples per second of every path and variant, as bars.

    The course's and d2l's paths show the median over their runs, with a line
    from the slowest run to the fastest; the variants ran once each.

    Returns:
        The ``Axes``.
    """
    train = _section(results, "train", "training speeds")
    if ax is None:
        _, ax = _figure(figsize=(8.0, 2.8))
    names, values, colors, low, high = [], [], [], [], []
    for key, name in _PATHS.items():
        runs = train["runs"][key]
        names.append(name)
        values.append(train["ex_per_s"][key])
        colors.append(_D2L if key == "d2l" else _OURS)
        low.append(values[-1] - min(runs))
        high.append(max(runs) - values[-1])
    for key, speed in train["variants_ex_per_s"].items():
        names.append(_VARIANTS.get(key, f"course, {key}"))
        values.append(speed)
        colors.append(_VARIANT)
        low.append(0)
        high.append(0)
    bars = ax.barh(names, values, color=colors, xerr=[low, high], capsize=3)
    ax.invert_yaxis()
    ax.set_xlim(0, max(values) * 1.25)
    ax.set_xlabel("training examples per second")
    ax.set_title(
        f"{train['arch'].replace('vgg', 'VGG-')} / {train['ratio']}, {train['image_size']} px, "
        f"dense {train['dense_units']}, batch {train['batch_size']}"
    )
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=6, fontsize=8)
    return ax


def plot_profile(results, *, ax=None):
    """Draws where a profiled training step's op time goes, as horizontal bars.

    The ops that do the counted multiply-accumulates are blue, the rest grey.

    Returns:
        The ``Axes``.
    """
    profile = _section(results, "profile", "a profile of training steps")
    categories = sorted(profile["categories"], key=lambda row: row["ms_per_step"])
    if ax is None:
        _, ax = _figure(figsize=(8.0, 3.2))
    names = [row["category"] for row in categories]
    names = [name if len(name) <= 40 else name[: name.index(" (")] for name in names]
    values = [row["ms_per_step"] for row in categories]
    colors = [_OURS if row["category"] in MAC_CATEGORIES else _VARIANT for row in categories]
    bars = ax.barh(names, values, color=colors)
    ax.bar_label(
        bars,
        labels=[f"{row['share']:.0%}" if row["share"] >= 0.01 else f"{row['share']:.1%}"
                for row in categories],
        padding=3,
        fontsize=8,
    )
    ax.set_xlim(0, max(values) * 1.15)
    ax.set_xlabel("ms of op time per training step")
    ax.set_title(
        f"{profile['wall_ms_per_step']:.1f} ms per step, {profile['op_ms_per_step']:.1f} ms of op time "
        "on two cores"
    )
    return ax


def plot_layer_rates(results, *, ax=None):
    """Draws each profiled layer's GFLOP/s, forward and backward, as grouped bars.

    Returns:
        The ``Axes``, with a dashed line at TensorFlow's own matmul rate.
    """
    profile = _section(results, "profile", "a profile of training steps")
    efficiency = _section(results, "efficiency", "the matmul's rate")
    layers = profile["layers"]
    if ax is None:
        _, ax = _figure(figsize=(8.0, 3.0))
    x = np.arange(len(layers))
    ax.bar(x - 0.2, [row["forward_gflops"] for row in layers], 0.4, label="forward", color=_OURS)
    ax.bar(x + 0.2, [row["backward_gflops"] for row in layers], 0.4, label="backward",
           color=_D2L)
    ax.axhline(efficiency["matmul_gflops"], color="black", linestyle="--", linewidth=1,
               label="TF matmul")
    ax.set_xticks(x, [row["layer"] for row in layers], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("GFLOP/s")
    ax.legend(ncols=3, loc="upper left")
    ax.set_ylim(0, efficiency["matmul_gflops"] * 1.25)
    return ax


def plot_time_to_accuracy(results, *, ax=None):
    """Draws a preset's accuracy after each epoch against the minutes it took.

    Returns:
        The ``Axes``, with the target accuracy as a dashed line and the time at
        which it was first reached marked.
    """
    tta = _section(results, "time_to_accuracy", "a timed training run")
    if ax is None:
        _, ax = _figure(figsize=(8.0, 3.0))
    minutes = np.asarray(tta["epoch_end_s"]) / 60
    accuracy = np.asarray(tta["val_accuracy"])
    ax.plot(minutes, accuracy, "o-", color=_OURS, label=f"preset {tta['preset']!r}")
    ax.axhline(tta["target"], color="black", linestyle="--", linewidth=1,
               label=f"target {tta['target']:g}")
    if tta.get("seconds") is not None:
        ax.axvline(tta["seconds"] / 60, color=_VARIANT, linewidth=1)
        ax.annotate(f"{tta['seconds'] / 60:.1f} min", (tta["seconds"] / 60, accuracy.min()),
                    xytext=(-4, 0), textcoords="offset points", ha="right", fontsize=8)
    ax.set_xlim(0, None)
    ax.set_xlabel("minutes of training")
    ax.set_ylabel("validation accuracy")
    ax.legend(loc="upper left")
    return ax
