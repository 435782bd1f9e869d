"""What a benchmark run is asked to do (``BenchSettings``), and what it returns (``Results``).

The results travel as JSON: ``Results.to_dict()`` is what ``run_bench``
returns and ``--json`` writes, and ``load_results`` reads a file back,
checking it against these classes. Every key of the JSON is a field below,
and this module is the only place that defines one.
"""

import dataclasses
import json
import pathlib

from vggcourse._checks import check_bool, check_choice, check_float, check_int, check_path
from vggcourse.data import SOURCES
from vggcourse.errors import CourseError
from vggcourse.train import PRESETS

__all__ = [
    "REFERENCE",
    "SCHEMA_VERSION",
    "BenchSettings",
    "Efficiency",
    "Pipeline",
    "Pipelines",
    "Profile",
    "Results",
    "ResultsFileError",
    "TimeToAccuracy",
    "TrainingSpeeds",
    "load_results",
    "save_results",
]

# The reference run, shipped with the package so that the appendix can show it anywhere.
REFERENCE = pathlib.Path(__file__).resolve().parents[1] / "results" / "bench_cpu.json"

# Version 2: one entry per pipeline and per training path instead of keys made of
# their names, and `fraction_of_matmul` for the efficiency (once called `ratio`).
# Version 3: the time-to-accuracy run's `val_examples` (once `test_examples`) and
# its network's `test_accuracy`.
SCHEMA_VERSION = 3


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """What one run of the benchmark measures, and how long it tries. Checked on creation.

    Attributes:
        pipeline_image_size: pipelines: side of the images the network gets.
        batch_size: pipelines and training: images per batch; None for the preset's.
        num_examples: pipelines: training images they cover.
        num_batches: pipelines: batches pulled, the first included.
        pipeline_repeats: pipelines: fresh processes per pipeline; the medians
            count.
        preset: training: the ``PRESETS`` entry whose model is timed, and which
            the time to accuracy trains.
        image_size: training: side the images are resized to; None for the preset's.
        ratio: training: channels are divided by this; None for the preset's.
        train_steps: training: timed steps per run.
        warmup_steps: training: steps before the timing starts.
        repeats: training: runs of each path, alternating, each followed by a
            matmul; the medians count. On a shared machine the speed drifts from
            run to run; alternating exposes every path, and the matmul
            reference, to the same drift.
        variants: training: also time the course's path with each of
            ``VARIANTS``: XLA, and mixed precision in float16 and bfloat16.
        matmul_size: side of the matrices of the matmul reference.
        profile: also profile the course's training steps with TensorFlow's profiler.
        time_to_accuracy: also train ``preset`` until ``target_accuracy`` (minutes).
        target_accuracy: the validation accuracy for ``time_to_accuracy``.
        source: where to load Fashion-MNIST from (``load_fashion_mnist``).
        data_dir: a folder with the four official files, for ``source`` "auto" or "dir".
    """

    pipeline_image_size: int = 224
    batch_size: int | None = None
    num_examples: int = 60_000
    num_batches: int = 3
    pipeline_repeats: int = 3
    preset: str = "cpu"
    image_size: int | None = None
    ratio: int | None = None
    train_steps: int = 100
    warmup_steps: int = 10
    repeats: int = 5
    variants: bool = True
    matmul_size: int = 2048
    profile: bool = False
    time_to_accuracy: bool = False
    target_accuracy: float = 0.90
    source: str = "auto"
    data_dir: str | None = None

    def __post_init__(self):
        for name in ("pipeline_image_size", "num_examples", "num_batches", "pipeline_repeats",
                     "train_steps", "warmup_steps", "repeats", "matmul_size"):
            check_int(name, getattr(self, name))
        for name in ("batch_size", "image_size", "ratio"):
            check_int(name, getattr(self, name), allow_none=True)
        for name in ("variants", "profile", "time_to_accuracy"):
            check_bool(name, getattr(self, name))
        check_choice("preset", self.preset, tuple(PRESETS))
        check_float("target_accuracy", self.target_accuracy, 0, 1, high_inclusive=True)
        check_choice("source", self.source, SOURCES)
        check_path("data_dir", self.data_dir, allow_none=True)
        self.train_config()  # Checks the preset's overrides as TrainConfig does.

    def train_config(self):
        """The ``TrainConfig`` whose training is timed: the preset, with any override."""
        overrides = {"batch_size": self.batch_size, "image_size": self.image_size, "ratio": self.ratio}
        return PRESETS[self.preset].replace(**{k: v for k, v in overrides.items() if v is not None})

    def resolved(self):
        """A copy with the preset's values in place of None, as the results record it."""
        config = self.train_config()
        return dataclasses.replace(
            self, batch_size=config.batch_size, image_size=config.image_size, ratio=config.ratio
        )


@dataclasses.dataclass
class Pipeline:
    """One input pipeline, measured in fresh processes: the medians of ``runs``.

    ``own_rss_mb`` is ``peak_rss_mb`` less the idle memory (``Pipelines``). When the
    pipeline was not measured, ``skipped`` says why and the figures are None.
    Each run is a dict with ``first_batch_s``, ``peak_rss_mb``,
    ``batch_shape`` and ``batch_dtype`` (and, from runs recorded since the
    probes measure it themselves, ``idle_rss_mb``), or with ``skipped``.
    """

    first_batch_s: float | None
    peak_rss_mb: float | None
    own_rss_mb: float | None
    batch_shape: list | None
    batch_dtype: str | None
    skipped: str | None
    runs: list


@dataclasses.dataclass
class Pipelines:
    """The course's pipeline (``ours``) and d2l's, and the idle memory they are measured against.

    ``idle_process`` says where ``idle_rss_mb`` was measured: the median of
    ``idle_runs``, each the peak memory of the same imports with no data loaded.
    """

    image_size: int
    batch_size: int
    num_examples: int
    num_batches: int
    idle_process: str
    idle_rss_mb: float
    idle_runs: list
    ours: Pipeline
    d2l: Pipeline


@dataclasses.dataclass
class TrainingSpeeds:
    """Steady-state training examples per second of each path and variant.

    ``ex_per_s`` and ``runs`` are keyed by path: ``ours`` (the course's
    ``train_vgg``), ``ours_plain_sgd`` (the same with d2l's optimizer) and
    ``d2l`` (``baseline.train_ch6``); ``ex_per_s`` holds the medians of
    ``runs``. ``variants_ex_per_s`` is keyed by the names in ``VARIANTS``.
    ``ratio`` is the channel ratio of the network, as in ``TrainConfig``.
    """

    arch: str
    ratio: int
    image_size: int
    dense_units: int
    batch_size: int
    ours_optimizer: str
    d2l_optimizer: str
    steps: int
    warmup_steps: int
    ex_per_s: dict
    runs: dict
    variants_ex_per_s: dict


@dataclasses.dataclass
class Efficiency:
    """Training FLOP/s against TensorFlow's own matmul; ``convention`` says how FLOPs are counted."""

    convention: str
    macs_per_example: int
    train_flops_per_example: int
    achieved_gflops: float
    matmul_gflops: float
    fraction_of_matmul: float
    matmul_size: int
    matmul_runs: list


@dataclasses.dataclass
class Profile:
    """Where a training step's op time goes: by category of op, and by layer.

    ``categories``: ``{category, ms_per_step, share}`` per category;
    ``layers``: ``{layer, forward_gflop, forward_ms, backward_ms,
    forward_gflops, backward_gflops}`` per convolution and dense layer.
    """

    steps: int
    wall_ms_per_step: float
    op_ms_per_step: float
    categories: list
    layers: list


@dataclasses.dataclass
class TimeToAccuracy:
    """Wall time for a preset to reach a validation accuracy; ``seconds`` is None if it never did.

    ``val_examples`` counts the images validated on after each epoch;
    ``test_accuracy`` is the trained network's, measured once on the test
    images when training stopped.
    """

    preset: str
    target: float
    train_examples: int
    val_examples: int
    seconds: float | None
    test_accuracy: float
    epochs: int
    val_accuracy: list
    epoch_end_s: list


@dataclasses.dataclass
class Results:
    """Everything one run measured.

    ``machine`` is the dict of ``measure.machine()`` (with the load average
    at the end added); ``settings`` the run's resolved ``BenchSettings``;
    ``targets`` the rows of ``report.target_table``. ``profile`` and
    ``time_to_accuracy`` are None unless they were asked for.
    """

    schema_version: int
    machine: dict
    settings: dict
    pipeline: Pipelines
    train: TrainingSpeeds
    efficiency: Efficiency
    profile: Profile | None
    time_to_accuracy: TimeToAccuracy | None
    targets: list

    def to_dict(self):
        """The results as a JSON-ready dict, with the fields above as keys."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        """Builds ``Results`` from ``to_dict()``'s layout; raises ``TypeError`` if it differs."""
        pipeline = data["pipeline"]
        optional = {
            "profile": Profile,
            "time_to_accuracy": TimeToAccuracy,
        }
        return cls(
            **{
                **data,
                "pipeline": Pipelines(
                    **{**pipeline, "ours": Pipeline(**pipeline["ours"]), "d2l": Pipeline(**pipeline["d2l"])}
                ),
                "train": TrainingSpeeds(**data["train"]),
                "efficiency": Efficiency(**data["efficiency"]),
                **{key: None if data[key] is None else part(**data[key]) for key, part in optional.items()},
            }
        )


class ResultsFileError(CourseError, ValueError):
    """A results file that is not in the layout of ``Results`` of this version."""


def load_results(path=REFERENCE):
    """Reads results that ``run_bench`` (or ``--json``) wrote; by default the reference run.

    Returns:
        The results as a dict, in the layout of ``Results``.

    Raises:
        ResultsFileError: the file is not in this version's layout.
    """
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise ResultsFileError(
            f"{path} holds benchmark results of schema version {version}; this version of "
            f"vggcourse reads version {SCHEMA_VERSION}. Run the benchmark again to get them."
        )
    try:
        return Results.from_dict(data).to_dict()
    except (KeyError, TypeError) as e:
        raise ResultsFileError(f"{path} is not in the layout of vggcourse.bench.Results: {e}") from e


def save_results(results, path):
    """Writes ``results`` (a ``Results`` or its dict) to ``path`` as JSON, creating its folder."""
    if isinstance(results, Results):
        results = results.to_dict()
    path = pathlib.Path(check_path("path", path))
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(Results.from_dict(results).to_dict(), indent=2)
    path.write_text(text + "\n", encoding="utf-8")
    return path

