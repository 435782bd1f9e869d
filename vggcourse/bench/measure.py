"""The benchmark's measurements: the machine, memory, input pipelines, training speed, time to accuracy.

Pipelines are measured in fresh processes, ``python -m
vggcourse.bench.pipeline_probe``, so that each one's peak memory is its own.
Everything else runs here.
"""

import contextlib
import io
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import keras
import tensorflow as tf

from vggcourse._checks import check_choice, check_float, check_int
from vggcourse.bench import baseline
from vggcourse.bench.schema import Efficiency, TimeToAccuracy
from vggcourse.devices import describe_devices
from vggcourse.errors import InvalidArgument
from vggcourse.trace import totals, trace_layers
from vggcourse.train import build_network, predict_labels, preprocessing_layers, train_vgg

__all__ = [
    "FLOP_CONVENTION",
    "PIPELINES",
    "VARIANTS",
    "efficiency",
    "machine",
    "matmul_gflops",
    "measure_pipeline",
    "peak_rss_mb",
    "preprocessing",
    "time_to_accuracy",
    "train_examples_per_second",
    "training_flops",
]

MB = 1e6  # Bytes per MB. Decimal, as in "60,000 x 224 x 224 x 4 bytes = 12.0 GB".

PIPELINES = ("ours", "d2l")
TRAINING_PATHS = ("ours", "d2l")

# The course's settings for GPUs and TPUs (``auto_config``), timed here on the course's path.
VARIANTS = {
    "xla": {"jit_compile": True},
    "mixed_float16": {"precision": "mixed_float16"},
    "mixed_bfloat16": {"precision": "mixed_bfloat16"},
}

# Each FLOP count below follows this convention; it is stored with the results.
FLOP_CONVENTION = (
    "training FLOPs per example = 3 x 2 x MACs: trace_layers' multiply-accumulates of the "
    "convolutions and dense layers (pooling, activations, biases and the optimizer count 0), "
    "2 FLOPs per MAC, and a backward pass that costs twice the forward pass (gradients with "
    "respect to the inputs and to the weights)"
)


# ---------------------------------------------------------------------------
# The machine and its memory.


def _proc_kib_field(path, field):
    """A ``field: <n> kB`` line of a /proc file, in bytes; None where there is no /proc."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_mb():
    """This process's peak resident memory so far, in MB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``, the high-water mark
    of this process's own memory. ``getrusage``'s ``ru_maxrss`` would not do
    in a fresh process: Linux carries it over from the parent through fork
    and exec, so a child of a large process reports the parent's size.
    """
    peak = _proc_kib_field("/proc/self/status", "VmHWM")
    if peak is not None:
        return peak / MB
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # macOS reports bytes, other systems KiB.
    return peak / MB if sys.platform == "darwin" else peak * 1024 / MB


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    """Describes the machine: CPU model, cores, memory, Python, TensorFlow, Keras and device."""
    memory = _proc_kib_field("/proc/meminfo", "MemTotal")
    return {
        "cpu": _cpu_model(),
        # Other work on a shared machine slows a benchmark down; this says how much there was.
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "cores": os.cpu_count(),
        "memory_gb": round(memory / 1e9, 1) if memory else None,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "device": str(describe_devices()),
    }


# ---------------------------------------------------------------------------
# Input pipelines, each measured in a fresh process.

IDLE_PROCESS = "each pipeline probe, after its imports and before it loads any data"


def preprocessing(image_size):
    """The model's own preprocessing, ``vggcourse.train.preprocessing_layers``, as a model of its own.

    Applied to a batch of ``make_dataset``, it gives what the network sees.

    Returns:
        A built ``keras.Sequential`` from uint8 ``(batch, 28, 28, 1)`` to
        float32 ``(batch, image_size, image_size, 1)`` in [0, 1].
    """
    return keras.Sequential(
        [keras.Input(shape=(28, 28, 1), dtype="uint8", name="images"), *preprocessing_layers(image_size)],
        name="preprocessing",
    )


def run_probe(probe, arguments=None):
    """Runs ``python -m vggcourse.bench.<probe> [JSON]``; returns the JSON on its last line of output."""
    command = [sys.executable, "-m", f"vggcourse.bench.{probe}"]
    if arguments is not None:
        command.append(json.dumps(arguments))
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        how = "was killed (out of memory?)" if result.returncode < 0 else f"exited with {result.returncode}"
        raise RuntimeError(f"The measuring process {' '.join(command[1:3])} {how}:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _d2l_bytes(image_size, num_examples):
    # The float32 copy of the 28x28 images, and the shuffle buffer of resized images.
    return num_examples * 4 * (28 * 28 + image_size * image_size)


def measure_pipeline(kind, *, image_size=224, batch_size=128, num_examples=60_000, num_batches=3,
                     source="auto", data_dir=None):
    """Measures one input pipeline in a fresh process (``vggcourse.bench.pipeline_probe``).

    The process loads Fashion-MNIST, builds the pipeline on the first
    ``num_examples`` training images, and pulls ``num_batches`` batches as
    the network sees them: for ``"ours"``, ``make_dataset`` followed by the
    model's ``rescale`` and ``resize`` layers; for ``"d2l"``,
    ``baseline.d2l_dataloader``.

    d2l's pipeline is skipped, with the reason in the result, when it would
    need more memory than the machine has available: it would otherwise be
    killed, or take other processes with it.

    Returns:
        A dict with ``first_batch_s`` (seconds from building the pipeline on
        in-memory arrays to the first batch ready), ``peak_rss_mb`` (the
        process's peak resident memory, TensorFlow included),
        ``idle_rss_mb`` (its peak after its imports, before it loaded any
        data: the baseline of the pipeline's own memory), and the shape and
        dtype of a batch; or with ``skipped``.
    """
    arguments = dict(
        kind=check_choice("kind", kind, PIPELINES),
        image_size=check_int("image_size", image_size),
        batch_size=check_int("batch_size", batch_size),
        num_examples=check_int("num_examples", num_examples),
        num_batches=check_int("num_batches", num_batches),
        source=source,
        data_dir=data_dir,
    )
    if kind == "d2l":
        needed = _d2l_bytes(image_size, num_examples)
        available = _proc_kib_field("/proc/meminfo", "MemAvailable")
        if available is not None and needed > 0.9 * available:
            return {
                "skipped": f"d2l's pipeline needs about {needed / 1e9:.1f} GB here and only "
                f"{available / 1e9:.1f} GB are available; try a smaller --num-examples"
            }
    return run_probe("pipeline_probe", arguments)


# ---------------------------------------------------------------------------
# Training speed.


class StepTimer(keras.callbacks.Callback):
    """Records when each training step ends; the rate leaves out the warm-up steps."""

    def __init__(self, batch_size, warmup_steps):
        super().__init__()
        self.batch_size = batch_size
        self.warmup_steps = warmup_steps
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            float(logs["loss"])  # On a GPU, waits for the step to finish.
        self.ends.append(time.perf_counter())

    @property
    def examples_per_second(self):
        timed = self.ends[self.warmup_steps - 1 :]
        return self.batch_size * (len(timed) - 1) / (timed[-1] - timed[0])


@contextlib.contextmanager
def quiet_training():
    """Hides what repeated short runs make Keras and TensorFlow say, and their own printouts.

    Each run builds a new model, so TensorFlow warns about retracing, and
    ``fit`` warns that d2l's call leaves ``shuffle`` at its default of True
    on a dataset. Both runs print a summary line; the benchmark reports its
    own figures.
    """
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.setLevel(level)


def short_run(config, steps, warmup_steps, kind):
    """``config`` cut to one epoch of ``warmup_steps + steps`` batches, validated on one batch.

    The learning rate's warm-up, which changes no step's cost, is left out:
    a one-epoch run has no epoch after it.
    """
    return config.replace(
        name=f"{kind}-{config.name}",
        epochs=1,
        warmup_epochs=0,
        train_examples=(warmup_steps + steps) * config.batch_size,
        val_examples=config.batch_size,
    )


def _train_d2l(config, data, num_examples, timer):
    """d2l's path: ``d2l_dataloader`` and ``train_ch6`` on the configuration's network."""
    (x_train, y_train), (x_test, y_test) = data
    batch_size, size = config.batch_size, (config.image_size, config.image_size)
    train_iter = baseline.d2l_dataloader(x_train[:num_examples], y_train[:num_examples], batch_size, size)
    test_iter = baseline.d2l_dataloader(x_test[:batch_size], y_test[:batch_size], batch_size, size, train=False)
    # d2l's `net = lambda: vgg(small_conv_arch)`, with the configuration's widths.
    baseline.train_ch6(lambda: build_network(config), train_iter, test_iter, 1, config.learning_rate,
                       callbacks=[timer])


def train_examples_per_second(path, config, data, *, steps=50, warmup_steps=10):
    """Steady-state training speed of one training path.

    Runs one epoch of ``warmup_steps + steps`` full batches and times the
    ``steps`` after the warm-up (which traces and compiles the step).

    Args:
        path: ``"ours"``, the course's ``train_vgg(config, ...)``: uint8
            batches from ``make_dataset``, scaled and resized inside the model;
            or ``"d2l"``: ``baseline.d2l_dataloader`` at ``config.image_size``
            and ``baseline.train_ch6`` with SGD at ``config.learning_rate``,
            on the same network (``build_network(config)``).
        config: a ``TrainConfig``; its model, image size and batch size are used.
        data: ``((x_train, y_train), (x_test, y_test))``.
        steps: timed steps.
        warmup_steps: steps before the timing starts; at least 1.

    Returns:
        Examples per second.
    """
    check_choice("path", path, TRAINING_PATHS)
    run = short_run(config, check_int("steps", steps), check_int("warmup_steps", warmup_steps), "bench")
    if run.train_examples > len(data[0][0]):
        raise InvalidArgument(
            f"Expected (warmup_steps + steps) * batch_size <= {len(data[0][0])} training images. "
            f"Received: warmup_steps={warmup_steps}, steps={steps}, batch_size={config.batch_size}"
        )
    timer = StepTimer(config.batch_size, warmup_steps)
    keras.utils.set_random_seed(config.seed)
    with quiet_training():
        if path == "ours":
            with tempfile.TemporaryDirectory() as backup_dir:
                train_vgg(run, data, backup_dir=backup_dir, callbacks=[timer], verbose=0)
        else:
            _train_d2l(config, data, run.train_examples, timer)
    return timer.examples_per_second


# ---------------------------------------------------------------------------
# Efficiency.


def matmul_gflops(n=2048, repeats=10):
    """TensorFlow's float32 matrix multiplication speed on this machine, in GFLOP/s.

    The best of ``repeats`` products of two ``n x n`` matrices, at
    ``2 n**3`` FLOPs each.
    """
    check_int("n", n)
    check_int("repeats", repeats)
    a = tf.random.stateless_normal((n, n), seed=(0, 1))
    b = tf.random.stateless_normal((n, n), seed=(0, 2))
    matmul = tf.function(tf.linalg.matmul)
    matmul(a, b).numpy()  # Traces the function and warms up the threads.
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def training_flops(config):
    """(MACs, training FLOPs) per example of ``config``'s network, by ``FLOP_CONVENTION``."""
    trace = trace_layers(build_network(config), (config.image_size, config.image_size, 1))
    macs = int(totals(trace)["macs"])
    return macs, 3 * 2 * macs


def efficiency(config, examples_per_second, matmul_runs, matmul_size):
    """Training FLOP/s implied by a measured speed, against the machine's matmul.

    Args:
        config: the ``TrainConfig`` that was timed.
        examples_per_second: its measured training speed.
        matmul_runs: ``matmul_gflops()`` measurements; their median is the reference.
        matmul_size: the side of their matrices.

    Returns:
        A ``schema.Efficiency``.
    """
    macs, flops = training_flops(config)
    achieved = examples_per_second * flops / 1e9
    reference = statistics.median(matmul_runs)
    return Efficiency(
        convention=FLOP_CONVENTION,
        macs_per_example=macs,
        train_flops_per_example=flops,
        achieved_gflops=achieved,
        matmul_gflops=reference,
        fraction_of_matmul=achieved / reference,
        matmul_size=matmul_size,
        matmul_runs=list(matmul_runs),
    )


# ---------------------------------------------------------------------------
# Time to accuracy.


class AccuracyClock(keras.callbacks.Callback):
    """Notes when validation accuracy first reaches ``target``, and stops the run there."""

    def __init__(self, target, start):
        super().__init__()
        self.target = target
        self.start = start
        self.val_accuracy = []
        self.epoch_end_s = []
        self.seconds = None

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_end_s.append(time.perf_counter() - self.start)
        self.val_accuracy.append(float(logs["val_accuracy"]))
        if self.seconds is None and self.val_accuracy[-1] >= self.target:
            self.seconds = self.epoch_end_s[-1]
            self.model.stop_training = True


def time_to_accuracy(config, data, target=0.90):
    """Wall time for ``train_vgg(config, data)`` to reach a validation accuracy.

    The clock starts before the model is built and stops at the end of the
    first epoch whose validation accuracy is at least ``target``; training
    stops there, or after the config's epochs, and the network is then
    measured once on the test images. ``train_vgg`` validates on the ``config.val_split`` images
    it holds out of the training images, as the presets do, or on the test
    images of a config without a split.

    Args:
        config: a ``TrainConfig``, such as ``PRESETS["cpu"]``.
        data: ``((x_train, y_train), (x_test, y_test))``; the full data set
            for a result comparable with published ones.
        target: the validation accuracy to reach.

    Returns:
        A ``schema.TimeToAccuracy``.
    """
    target = check_float("target", target, 0, 1, high_inclusive=True)
    clock = AccuracyClock(target, time.perf_counter())
    with tempfile.TemporaryDirectory() as backup_dir:
        history = train_vgg(config, data, backup_dir=backup_dir, callbacks=[clock], verbose=0)
    (x_train, _), (x_test, y_test) = data
    validated_on = range(config.val_split) if config.val_split else x_test
    return TimeToAccuracy(
        preset=config.name,
        target=target,
        train_examples=len(x_train[config.val_split:][: config.train_examples]),
        val_examples=len(validated_on[: config.val_examples]),
        seconds=clock.seconds,
        test_accuracy=float((predict_labels(history.model, x_test) == y_test).mean()),
        epochs=len(clock.val_accuracy),
        val_accuracy=clock.val_accuracy,
        epoch_end_s=clock.epoch_end_s,
    )
