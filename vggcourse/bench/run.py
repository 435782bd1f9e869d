"""The whole benchmark, stage by stage: ``run_bench(BenchSettings(...))``."""

import contextlib
import dataclasses
import io
import statistics

from vggcourse._quiet import stderr_to_devnull
from vggcourse.bench.measure import (
    IDLE_PROCESS,
    PIPELINES,
    VARIANTS,
    efficiency,
    machine,
    matmul_gflops,
    measure_pipeline,
    time_to_accuracy,
    train_examples_per_second,
)
from vggcourse.bench.profile import profile_training
from vggcourse.bench.report import target_records
from vggcourse.bench.schema import SCHEMA_VERSION, BenchSettings, Pipeline, Pipelines, Results, TrainingSpeeds
from vggcourse.data import load_fashion_mnist
from vggcourse.errors import InvalidArgument
from vggcourse.train import PRESETS

__all__ = ["quick_settings", "run_bench"]

# A run small enough for a notebook: a sixth of the images, so that d2l's
# pipeline needs about 2 GB (a Colab session has about 12), and fewer steps
# and repeats; no profile and no time to accuracy. The `smoke` preset's
# network gets a run of seconds.
_QUICK = dict(num_examples=10_000, train_steps=50, repeats=3)
_QUICK_SMOKE = dict(
    image_size=32, num_examples=256, num_batches=2, pipeline_repeats=1, train_steps=2,
    warmup_steps=1, repeats=1, variants=False, matmul_size=128,
)


def _log(message, verbose):
    if verbose:
        print(message, flush=True)


def _median_pipeline(runs, idle_rss):
    measured = [run for run in runs if "skipped" not in run]
    if not measured:
        return Pipeline(None, None, None, None, None, skipped=runs[0]["skipped"], runs=runs)
    peak = statistics.median(run["peak_rss_mb"] for run in measured)
    return Pipeline(
        first_batch_s=statistics.median(run["first_batch_s"] for run in measured),
        peak_rss_mb=peak,
        own_rss_mb=peak - idle_rss,
        batch_shape=measured[0]["batch_shape"],
        batch_dtype=measured[0]["batch_dtype"],
        skipped=None,
        runs=runs,
    )


def measure_pipelines(settings, batch_size, verbose):
    """Both pipelines, each ``settings.pipeline_repeats`` times, alternating.

    A pipeline's own memory is its peak less the median of every probe's peak
    before it loaded any data (``pipeline_probe``).
    """
    _log(f"Pipelines at {settings.pipeline_image_size} px over {settings.num_examples:,} images, each "
         f"in a fresh process, {settings.pipeline_repeats} time(s)...", verbose)
    runs = {kind: [] for kind in PIPELINES}
    for _ in range(settings.pipeline_repeats):
        # Alternating, like the training runs, so that a slow spell hits both.
        for kind in PIPELINES:
            runs[kind].append(measure_pipeline(
                kind, image_size=settings.pipeline_image_size, batch_size=batch_size,
                num_examples=settings.num_examples, num_batches=settings.num_batches,
                source=settings.source, data_dir=settings.data_dir,
            ))
            _log(f"  {kind}: {runs[kind][-1]}", verbose)
    idle_runs = [run["idle_rss_mb"] for kind in PIPELINES for run in runs[kind] if "skipped" not in run]
    idle = statistics.median(idle_runs)
    return Pipelines(
        image_size=settings.pipeline_image_size,
        batch_size=batch_size,
        num_examples=settings.num_examples,
        num_batches=settings.num_batches,
        idle_process=IDLE_PROCESS,
        idle_rss_mb=idle,
        idle_runs=idle_runs,
        ours=_median_pipeline(runs["ours"], idle),
        d2l=_median_pipeline(runs["d2l"], idle),
    )


def _training_paths(config):
    """The course's path three ways: its own recipe; with d2l's optimizer (SGD
    without momentum, constant learning rate), which isolates the pipeline and
    the training loop; and d2l's."""
    return {
        "ours": ("ours", config),
        "ours_plain_sgd": ("ours", config.replace(momentum=0.0, nesterov=False, lr_schedule="constant",
                                                  warmup_epochs=0)),
        "d2l": ("d2l", config),
    }


def measure_training(settings, config, data, verbose):
    """Training speed of every path, alternating with a matmul; returns speeds and matmul runs."""
    _log(f"Training {config.arch}, channels / {config.ratio}, {config.image_size} px, dense "
         f"{config.dense_units}, batch {config.batch_size}: {settings.repeats} x "
         f"{settings.train_steps} steps per path...", verbose)
    steps = dict(steps=settings.train_steps, warmup_steps=settings.warmup_steps)
    paths = _training_paths(config)
    plain = paths["ours_plain_sgd"][1]
    runs = {key: [] for key in paths}
    matmul_runs = []
    for _ in range(settings.repeats):
        # Alternating, so that a slow spell on a shared machine hits every path.
        for key, (path, path_config) in paths.items():
            runs[key].append(train_examples_per_second(path, path_config, data, **steps))
            _log(f"  {key}: {runs[key][-1]:,.1f} examples/s", verbose)
        matmul_runs.append(matmul_gflops(settings.matmul_size))
        _log(f"  matmul: {matmul_runs[-1]:,.1f} GFLOP/s", verbose)
    variants = {}
    for key, change in (VARIANTS.items() if settings.variants else ()):
        # On a CPU without float16 kernels oneDNN logs, as an error, that it
        # falls back to Eigen; the speed says the same thing.
        with stderr_to_devnull():
            variants[key] = train_examples_per_second("ours", config.replace(**change), data, **steps)
        _log(f"  ours with {key}: {variants[key]:,.1f} examples/s", verbose)
    speeds = TrainingSpeeds(
        arch=config.arch, ratio=config.ratio, image_size=config.image_size,
        dense_units=config.dense_units, batch_size=config.batch_size,
        ours_optimizer=f"{config.optimizer_text}, {config.schedule_text}",
        # train_ch6's SGD at the configuration's rate, as the plain-SGD path runs it.
        d2l_optimizer=f"{plain.optimizer_text}, {plain.schedule_text}",
        steps=settings.train_steps, warmup_steps=settings.warmup_steps,
        ex_per_s={key: statistics.median(speeds) for key, speeds in runs.items()},
        runs=runs, variants_ex_per_s=variants,
    )
    return speeds, matmul_runs


def _settings(settings, fields):
    if settings is None:
        return BenchSettings(**fields)
    if not isinstance(settings, BenchSettings) or fields:
        raise InvalidArgument(
            "Expected either `settings`, a BenchSettings, or its fields as keyword arguments. "
            f"Received: settings of type {type(settings).__name__} and fields {sorted(fields)}"
        )
    return settings


def quick_settings(preset):
    """The settings of a short benchmark run with the network of ``preset``.

    Args:
        preset: a key of ``PRESETS``, such as ``auto_config().name``.

    Returns:
        A ``BenchSettings``: 10,000 images for the pipelines, three runs of
        50 steps per training path, no profile and no time to accuracy; for
        the ``smoke`` preset, a few images and steps.
    """
    sizes = _QUICK_SMOKE if preset == "smoke" else _QUICK
    return BenchSettings(preset=preset, **sizes)


def run_bench(settings=None, *, verbose=True, **fields):
    """Runs the benchmark and returns its results.

    Args:
        settings: a ``BenchSettings``; or leave it out and pass its fields as
            keyword arguments, such as ``run_bench(num_examples=10_000)``.
        verbose: print progress.

    Returns:
        The results as a JSON-ready dict in the layout of ``schema.Results``:
        ``machine``, ``settings``, ``pipeline``, ``train``, ``efficiency``,
        ``profile`` and ``time_to_accuracy`` (None unless asked for), and
        ``targets``.
    """
    settings = _settings(settings, fields).resolved()
    config = settings.train_config()
    about = machine()
    _log(f"Machine: {about['cpu']}, {about['cores']} cores; {about['device']}", verbose)
    pipelines = measure_pipelines(settings, config.batch_size, verbose)
    with contextlib.redirect_stdout(io.StringIO()):
        data = load_fashion_mnist(source=settings.source, data_dir=settings.data_dir)
    speeds, matmul_runs = measure_training(settings, config, data, verbose)
    achieved = efficiency(config, speeds.ex_per_s["ours"], matmul_runs, settings.matmul_size)
    _log(f"Efficiency: {achieved.achieved_gflops:.1f} GFLOP/s training, "
         f"{achieved.matmul_gflops:.1f} GFLOP/s matmul", verbose)
    profile = tta = None
    if settings.profile:
        _log("Profiling the course's training steps...", verbose)
        profile = profile_training(config, data, steps=min(settings.train_steps, 10),
                                   warmup_steps=settings.warmup_steps)
    if settings.time_to_accuracy:
        _log(f"Training preset {settings.preset!r} until validation accuracy {settings.target_accuracy}...", verbose)
        tta = time_to_accuracy(PRESETS[settings.preset], data, settings.target_accuracy)
        _log(f"  {tta.seconds} s", verbose)
    about["load_average_1min_at_end"] = machine()["load_average_1min"]
    results = Results(
        schema_version=SCHEMA_VERSION, machine=about, settings=dataclasses.asdict(settings),
        pipeline=pipelines, train=speeds, efficiency=achieved, profile=profile,
        time_to_accuracy=tta, targets=[],
    )
    results.targets = target_records(results.to_dict())
    return results.to_dict()
