"""Benchmarks: the course's input pipeline and training against d2l's, on the machine at hand.

``run_bench()`` (and ``python -m vggcourse bench``) measures, in one run:

- ``pipeline``: memory and time to the first batch of the course's pipeline
  (``make_dataset`` with the model's own scaling and resizing applied to each
  batch) and of d2l's (``vggcourse.baseline.d2l_dataloader``), each in a fresh
  process, at 224 px over the full training set;
- ``train``: steady-state training examples per second of the course's
  training path (``train_vgg``) and of d2l's (``d2l_dataloader`` and
  ``baseline.train_ch6``), same model, image size and batch size; also the
  course's path with d2l's optimizer, with XLA and with mixed precision;
- ``efficiency``: the training FLOP/s that the traced MACs imply, against
  TensorFlow's own matrix multiplication on the same machine;
- ``profile`` (optional): where a training step's time goes, from
  TensorFlow's profiler;
- ``time_to_accuracy`` (optional, slow): wall time for a preset to reach a
  test accuracy.

``target_table()`` checks the results against the course's targets.
``REFERENCE`` is a run on the course's 2-core CPU machine, written by
``python -m vggcourse bench --profile --time-to-accuracy --json vggcourse/results/bench_cpu.json``.
"""

import argparse
import contextlib
import io
import json
import math
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

from vggcourse._checks import check_int
from vggcourse._quiet import _stderr_to_devnull, import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402
import pandas as pd  # noqa: E402

from vggcourse import baseline  # noqa: E402
from vggcourse.data import load_fashion_mnist, make_dataset  # noqa: E402
from vggcourse.models import VGG_ARCHS, scale_arch, vgg  # noqa: E402
from vggcourse.trace import totals, trace_layers  # noqa: E402
from vggcourse.train import PRESETS, describe_devices, train_vgg  # noqa: E402

__all__ = [
    "D2L_GPU_EXAMPLES_PER_S",
    "GPU_PEAKS",
    "MAC_CATEGORIES",
    "REFERENCE",
    "TARGETS",
    "add_parser",
    "efficiency",
    "idle_rss_mb",
    "load_results",
    "machine",
    "matmul_gflops",
    "measure_pipeline",
    "pipeline_table",
    "preprocessing",
    "profile_table",
    "profile_training",
    "run_bench",
    "target_table",
    "throughput_bounds",
    "time_to_accuracy",
    "train_examples_per_second",
    "train_table",
]

# The reference run, shipped with the package so that the appendix can show it anywhere.
REFERENCE = pathlib.Path(__file__).parent / "results" / "bench_cpu.json"

MB = 1e6  # Bytes per MB. Decimal, as in "60,000 x 224 x 224 x 4 bytes = 12.0 GB".

PIPELINES = ("ours", "d2l")

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

# The course's targets: (key, what is measured, ">=" or "<=", the bound).
TARGETS = (
    ("pipeline_memory", "pipeline's own memory, d2l / ours", ">=", 50.0),
    ("pipeline_first_batch", "time to the first batch, d2l / ours", ">=", 50.0),
    ("train_speed", "training examples/s, ours / d2l", ">=", 1.0),
    ("efficiency", "training GFLOP/s / TF matmul GFLOP/s", ">=", 0.75),
    ("time_to_accuracy", "minutes to the target test accuracy", "<=", 15.0),
)


# ---------------------------------------------------------------------------
# Argument checks, in Keras' style.


def _check_preset(preset):
    if preset not in PRESETS:
        raise ValueError(
            f"Expected `preset` to be one of {', '.join(map(repr, PRESETS))}. Received: preset={preset!r}"
        )
    return PRESETS[preset]


# ---------------------------------------------------------------------------
# The machine.


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
    memory = _meminfo_bytes("MemTotal")
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


def _meminfo_bytes(field):
    """A field of /proc/meminfo in bytes, or None where there is no /proc."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _peak_rss_mb():
    """This process's peak resident memory so far, in MB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``, the high-water mark
    of this process's own memory. ``getrusage``'s ``ru_maxrss`` would not do
    in a fresh process: Linux carries it over from the parent through fork
    and exec, so a child of a large process reports the parent's size.
    """
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # macOS reports bytes, other systems KiB.
    return peak / MB if sys.platform == "darwin" else peak * 1024 / MB


# ---------------------------------------------------------------------------
# Input pipelines, each measured in a fresh process.


def preprocessing(image_size):
    """The model's own preprocessing: the ``rescale`` and ``resize`` layers of ``build_model``.

    ``vggcourse.train.build_model`` puts these two layers in front of the
    network; applied to a batch of ``make_dataset``, they give what the
    network sees.

    Args:
        image_size: side in pixels of the resized images.

    Returns:
        A ``keras.Sequential`` from uint8 ``(batch, 28, 28, 1)`` to float32
        ``(batch, image_size, image_size, 1)`` in [0, 1].
    """
    check_int("image_size", image_size)
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1), dtype="uint8", name="images"),
            keras.layers.Rescaling(1 / 255, name="rescale"),
            keras.layers.Resizing(image_size, image_size, name="resize"),
        ],
        name="preprocessing",
    )


def _first_batches(kind, x, y, image_size, batch_size, num_batches):
    """Builds pipeline ``kind`` on in-memory arrays and pulls ``num_batches`` model-ready batches.

    Returns the seconds to the first batch and the last batch's images. The
    clock starts when the pipeline is built on the in-memory uint8 arrays. The
    model's layers exist before that, as they do when training starts.
    """
    prepare = preprocessing(image_size) if kind == "ours" else None
    start = time.perf_counter()
    if kind == "ours":
        # Shuffled like a training epoch; the model's layers scale and resize each batch.
        dataset = make_dataset(x, y, batch_size, shuffle=True, seed=0, epoch=0)
    else:
        dataset = baseline.d2l_dataloader(x, y, batch_size, (image_size, image_size), train=True)
    first_batch_s = None
    for images, _ in dataset.take(num_batches):
        if prepare is not None:
            images = prepare(images, training=False)
        # Reading one value waits until the whole batch exists, without
        # adding a NumPy copy of it to the memory being measured.
        images[-1, -1, -1, -1].numpy()
        if first_batch_s is None:
            first_batch_s = time.perf_counter() - start
    return first_batch_s, images


def _pipeline_probe(kind, image_size, batch_size, num_examples, num_batches, source="auto"):
    """Runs in a fresh process: loads the data, measures one pipeline, returns a dict."""
    with contextlib.redirect_stdout(io.StringIO()):
        (x, y), _ = load_fashion_mnist(source=source)
    x, y = x[:num_examples], y[:num_examples]
    first_batch_s, images = _first_batches(kind, x, y, image_size, batch_size, num_batches)
    return {
        "first_batch_s": first_batch_s,
        "peak_rss_mb": _peak_rss_mb(),
        "batch_shape": list(images.shape),
        "batch_dtype": images.dtype.name,
    }


_PROBE_SCRIPT = """\
import json, sys
from vggcourse.bench import _pipeline_probe
print(json.dumps(_pipeline_probe(**json.loads(sys.argv[1]))))
"""

# Imports TensorFlow (and Keras, which TensorFlow 2.16+ imports with it), nothing
# else, then reports its peak memory as _peak_rss_mb does.
_IDLE_SCRIPT = """\
import json, os, resource, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow, keras
try:
    status = open("/proc/self/status").read()
    peak = int(status.split("VmHWM:")[1].split()[0]) * 1024
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = peak if sys.platform == "darwin" else peak * 1024
print(json.dumps({"peak_rss_mb": peak / 1e6}))
"""


def _run_child(script, *args):
    """Runs ``script`` in a fresh Python; returns the JSON on its last line of output."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        how = "was killed (out of memory?)" if result.returncode < 0 else f"exited with {result.returncode}"
        raise RuntimeError(f"The measuring process {how}:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def idle_rss_mb():
    """Peak resident memory, in MB, of a fresh process that only imports TensorFlow."""
    return _run_child(_IDLE_SCRIPT)["peak_rss_mb"]


def _d2l_bytes(image_size, num_examples):
    # The float32 copy of the 28x28 images, and the shuffle buffer of resized images.
    return num_examples * 4 * (28 * 28 + image_size * image_size)


def measure_pipeline(kind, *, image_size=224, batch_size=128, num_examples=60_000, num_batches=3, source="auto"):
    """Measures one input pipeline in a fresh process.

    The process loads Fashion-MNIST, builds the pipeline on the first
    ``num_examples`` training images, and pulls ``num_batches`` batches as
    the network sees them: for ``"ours"``, ``make_dataset`` followed by the
    model's ``rescale`` and ``resize`` layers; for ``"d2l"``,
    ``baseline.d2l_dataloader``.

    d2l's pipeline is skipped, with the reason in the result, when it would
    need more memory than the machine has available: it would otherwise be
    killed, or take other processes with it.

    Args:
        kind: ``"ours"`` or ``"d2l"``.
        image_size: side in pixels of the images the network gets.
        batch_size: images per batch.
        num_examples: training images the pipeline covers.
        num_batches: batches to pull.
        source: passed to ``load_fashion_mnist``.

    Returns:
        A dict with ``first_batch_s`` (seconds from building the pipeline on
        in-memory arrays to the first batch ready), ``peak_rss_mb`` (the
        process's peak resident memory, TensorFlow included), and the shape
        and dtype of a batch; or with ``skipped``.
    """
    if kind not in PIPELINES:
        raise ValueError(f"Expected `kind` to be one of {PIPELINES}. Received: kind={kind!r}")
    for name, value in (
        ("image_size", image_size),
        ("batch_size", batch_size),
        ("num_examples", num_examples),
        ("num_batches", num_batches),
    ):
        check_int(name, value)
    if kind == "d2l":
        needed, available = _d2l_bytes(image_size, num_examples), _meminfo_bytes("MemAvailable")
        if available is not None and needed > 0.9 * available:
            return {
                "skipped": f"d2l's pipeline needs about {needed / 1e9:.1f} GB here and only "
                f"{available / 1e9:.1f} GB are available; try a smaller --num-examples"
            }
    arguments = dict(
        kind=kind,
        image_size=image_size,
        batch_size=batch_size,
        num_examples=num_examples,
        num_batches=num_batches,
        source=source,
    )
    return _run_child(_PROBE_SCRIPT, json.dumps(arguments))


# ---------------------------------------------------------------------------
# Training speed.


class _StepTimer(keras.callbacks.Callback):
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
def _quiet_training():
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


def _d2l_net_fn(config):
    """d2l's ``net = lambda: vgg(small_conv_arch)``, with the configuration's widths."""
    arch = scale_arch(VGG_ARCHS[config.arch], config.ratio)
    return lambda: vgg(arch, dense_units=config.dense_units, dropout=config.dropout)


def train_examples_per_second(path, config, data, *, steps=50, warmup_steps=10):
    """Steady-state training speed of one training path.

    Runs one epoch of ``warmup_steps + steps`` full batches and times the
    ``steps`` after the warm-up (which traces and compiles the step).

    Args:
        path: ``"ours"``, the course's ``train_vgg(config, ...)``: uint8
            batches from ``make_dataset``, scaled and resized inside the model;
            or ``"d2l"``: ``baseline.d2l_dataloader`` at ``config.image_size``
            and ``baseline.train_ch6`` with SGD at ``config.learning_rate``,
            on the same network (``vgg`` with the configuration's widths).
        config: a ``TrainConfig``; its model, image size and batch size are used.
        data: ``((x_train, y_train), (x_test, y_test))``.
        steps: timed steps.
        warmup_steps: steps before the timing starts; at least 1.

    Returns:
        Examples per second.
    """
    if path not in PIPELINES:
        raise ValueError(f"Expected `path` to be one of {PIPELINES}. Received: path={path!r}")
    check_int("steps", steps)
    check_int("warmup_steps", warmup_steps)
    (x_train, y_train), (x_test, y_test) = data
    batch_size = config.batch_size
    num_examples = (warmup_steps + steps) * batch_size
    if num_examples > len(x_train):
        raise ValueError(
            f"Expected (warmup_steps + steps) * batch_size <= {len(x_train)} training images. "
            f"Received: warmup_steps={warmup_steps}, steps={steps}, batch_size={batch_size}"
        )
    timer = _StepTimer(batch_size, warmup_steps)
    keras.utils.set_random_seed(config.seed)
    with _quiet_training():
        if path == "ours":
            run = config.replace(
                name=f"bench-{config.name}", epochs=1, train_examples=num_examples, val_examples=batch_size
            )
            with tempfile.TemporaryDirectory() as backup_dir:
                train_vgg(run, data, backup_dir=backup_dir, callbacks=[timer], verbose=0)
        else:
            size = (config.image_size, config.image_size)
            train_iter = baseline.d2l_dataloader(x_train[:num_examples], y_train[:num_examples], batch_size, size)
            test_iter = baseline.d2l_dataloader(
                x_test[:batch_size], y_test[:batch_size], batch_size, size, train=False
            )
            baseline.train_ch6(
                _d2l_net_fn(config), train_iter, test_iter, 1, config.learning_rate, callbacks=[timer]
            )
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


def _training_flops(config):
    """(MACs, training FLOPs) per example of ``config``'s network, by ``FLOP_CONVENTION``."""
    net = vgg(
        scale_arch(VGG_ARCHS[config.arch], config.ratio), dense_units=config.dense_units, dropout=config.dropout
    )
    macs = int(totals(trace_layers(net, (config.image_size, config.image_size, 1)))["macs"])
    return macs, 3 * 2 * macs


def efficiency(config, examples_per_second, reference_gflops):
    """Training FLOP/s implied by a measured speed, against a reference speed.

    Args:
        config: the ``TrainConfig`` that was timed.
        examples_per_second: its measured training speed.
        reference_gflops: the machine's matmul GFLOP/s (``matmul_gflops()``).

    Returns:
        A dict: the convention (``FLOP_CONVENTION``), MACs and training FLOPs
        per example, achieved GFLOP/s, the reference, and their ratio.
    """
    macs, flops = _training_flops(config)
    achieved = examples_per_second * flops / 1e9
    return {
        "convention": FLOP_CONVENTION,
        "macs_per_example": macs,
        "train_flops_per_example": flops,
        "achieved_gflops": achieved,
        "matmul_gflops": reference_gflops,
        "ratio": achieved / reference_gflops,
    }


# ---------------------------------------------------------------------------
# An estimate for GPUs.

# Published peak arithmetic throughput in TFLOP/s, dense (without structured
# sparsity): float32 on the ordinary cores, and 16-bit (float16 or bfloat16)
# on the tensor cores.
GPU_PEAKS = {
    # NVIDIA T4 datasheet: 8.1 TFLOPS single precision, 65 TFLOPS mixed precision (FP16/FP32).
    "T4": {"float32": 8.1, "16-bit": 65.0},
    # NVIDIA A100 datasheet: 19.5 TFLOPS FP32, 312 TFLOPS BF16/FP16 tensor core (624 with sparsity).
    "A100": {"float32": 19.5, "16-bit": 312.0},
    # NVIDIA H100 datasheet, SXM: 67 TFLOPS FP32, 1,979 TFLOPS BF16 tensor core with sparsity,
    # so about 990 dense.
    "H100": {"float32": 67.0, "16-bit": 989.0},
}

# d2l (TensorFlow, v0.17), section "Networks Using Blocks (VGG)": examples per
# second on its GPU, lowest and highest over the book's builds.
D2L_GPU_EXAMPLES_PER_S = (2931, 2960)


def throughput_bounds(config=None, peaks=None):
    """An ESTIMATE: the training examples per second that each GPU's peak FLOP/s would allow.

    The bound is peak FLOP/s divided by the training FLOPs per example
    (``FLOP_CONVENTION``). No real run reaches it: memory bandwidth, the
    layers that do no multiply-accumulates, the input pipeline and the
    launch of thousands of small kernels all take their share.

    Args:
        config: the ``TrainConfig`` whose network is counted; by default
            ``PRESETS["gpu"]``, d2l's VGG-11 with a quarter of the channels
            at 224 px.
        peaks: ``{gpu: {precision: TFLOP/s}}``; by default ``GPU_PEAKS``.

    Returns:
        A ``pandas.DataFrame`` with one row per GPU and precision: the peak
        in TFLOP/s and the bound in examples per second.
    """
    config = PRESETS["gpu"] if config is None else config
    peaks = GPU_PEAKS if peaks is None else peaks
    _, flops = _training_flops(config)
    rows = [
        {"GPU": gpu, "precision": precision, "peak TFLOP/s": peak, "bound (examples/s)": peak * 1e12 / flops}
        for gpu, by_precision in peaks.items()
        for precision, peak in by_precision.items()
    ]
    table = pd.DataFrame(rows).set_index(["GPU", "precision"])
    table.attrs["train_flops_per_example"] = flops
    return table


# ---------------------------------------------------------------------------
# Where the time goes: TensorFlow's profiler.

# What a profiled op does, from its type (after the ":" in its name; oneDNN's
# kernels carry an _Mkl prefix): (category, words in the type, words not in it).
_OP_CATEGORIES = (
    ("convolution, forward", ("Conv2D",), ("Backprop",)),
    ("convolution, weight gradient", ("Conv2DBackpropFilter",), ()),
    ("convolution, input gradient", ("Conv2DBackpropInput",), ()),
    ("dense (matmul)", ("MatMul",), ()),
    ("pooling", ("MaxPool",), ()),
    ("dropout random numbers", ("StatelessRandom",), ()),
)
# The categories whose ops do the multiply-accumulates that trace_layers counts.
MAC_CATEGORIES = tuple(name for name, _, _ in _OP_CATEGORIES[:4])
# Categories read from the name scope instead, whatever the op's type.
_OPTIMIZER = "optimizer update (SGD)"
_PREPROCESSING = "scaling and resizing (the model's first layers)"
_OTHER = "everything else (ReLU gradients, dropout masks, loss, metrics, ...)"
_ORDER = [name for name, _, _ in _OP_CATEGORIES] + [_OPTIMIZER, _PREPROCESSING, _OTHER]


def _category(op_name, op_type):
    scopes = op_name.split("/")
    if any(scope == "sgd" or scope.startswith("sgd_") for scope in scopes):
        return _OPTIMIZER
    if _layer_of(op_name, ("rescale", "resize")) is not None:
        return _PREPROCESSING
    for name, include, exclude in _OP_CATEGORIES:
        if any(word in op_type for word in include) and not any(word in op_type for word in exclude):
            return name
    return _OTHER


def _op_times(logdir):
    """(op name, op type, seconds) of every TensorFlow op that ran on the host's compute threads."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = sorted(pathlib.Path(logdir).rglob("*.xplane.pb"))
    if not paths:
        raise RuntimeError(f"TensorFlow's profiler wrote no trace into {logdir}")
    space = xplane_pb2.XSpace()
    space.ParseFromString(paths[-1].read_bytes())
    ops = []
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                # Ops are named "<name scope>:<op type>". The executor's own
                # events, which contain them, are named like C++ methods
                # ("ExecutorState::Process") or have no ":" at all.
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and "::" not in name:
                    op_name, op_type = name.rsplit(":", 1)
                    ops.append((op_name, op_type, event.duration_ps * 1e-12))
    return ops


class _ProfileSteps(keras.callbacks.Callback):
    def __init__(self, logdir, first, last):
        super().__init__()
        self.logdir, self.first, self.last = logdir, first, last

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.first:
            tf.profiler.experimental.start(self.logdir)

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.last:
            tf.profiler.experimental.stop()


def profile_training(config, data, *, steps=10, warmup_steps=10):
    """Profiles the course's training steps with TensorFlow's profiler, on a CPU.

    Runs ``train_vgg`` for ``warmup_steps + steps`` steps, records the last
    ``steps`` with ``tf.profiler.experimental``, and adds up the time of
    every op that ran. TensorFlow runs independent ops side by side, so op
    time per step can exceed the step's wall time.

    Args:
        config: a ``TrainConfig``.
        data: ``((x_train, y_train), (x_test, y_test))``.
        steps: profiled steps.
        warmup_steps: steps before the profile starts.

    Returns:
        A dict: ``wall_ms_per_step``; ``op_ms_per_step``; ``categories``, a
        list of ``{category, ms_per_step, share}`` (share of op time), by
        what the ops do; and ``layers``, a list per convolution and dense
        layer of its traced forward GFLOP per step and the milliseconds of
        its forward and backward ops per step, with the GFLOP/s they imply.
    """
    check_int("steps", steps)
    check_int("warmup_steps", warmup_steps)
    batch_size = config.batch_size
    num_examples = (warmup_steps + steps) * batch_size
    run = config.replace(name=f"profile-{config.name}", epochs=1, train_examples=num_examples,
                         val_examples=batch_size)
    timer = _StepTimer(batch_size, warmup_steps)
    with tempfile.TemporaryDirectory() as logdir, tempfile.TemporaryDirectory() as backup_dir:
        profiler = _ProfileSteps(logdir, warmup_steps, warmup_steps + steps - 1)
        with _quiet_training():
            train_vgg(run, data, backup_dir=backup_dir, callbacks=[timer, profiler], verbose=0)
        ops = pd.DataFrame(_op_times(logdir), columns=["name", "type", "seconds"])
    wall = (timer.ends[-1] - timer.ends[warmup_steps - 1]) / steps

    ops["category"] = [_category(name, op_type) for name, op_type in zip(ops["name"], ops["type"])]
    per_step_ms = ops.groupby("category")["seconds"].sum() * 1e3 / steps
    per_step_ms = per_step_ms.reindex(_ORDER, fill_value=0.0)
    categories = [
        {"category": name, "ms_per_step": ms, "share": ms / per_step_ms.sum()}
        for name, ms in per_step_ms.items()
    ]

    net = vgg(scale_arch(VGG_ARCHS[config.arch], config.ratio), dense_units=config.dense_units,
              dropout=config.dropout)
    trace = trace_layers(net, (config.image_size, config.image_size, 1))
    ops["layer"] = ops["name"].map(lambda name: _layer_of(name, trace["layer"]))
    ops["backward"] = ops["name"].str.contains("gradient_tape/", regex=False)
    layers = []
    for row in trace[trace["macs"] > 0].itertuples():
        mine = ops[(ops["layer"] == row.layer) & ops["category"].isin([name for name, _, _ in _OP_CATEGORIES])]
        forward_ms = mine.loc[~mine["backward"], "seconds"].sum() * 1e3 / steps
        backward_ms = mine.loc[mine["backward"], "seconds"].sum() * 1e3 / steps
        gflop = 2 * row.macs * batch_size / 1e9
        layers.append({
            "layer": row.layer,
            "forward_gflop": gflop,
            "forward_ms": forward_ms,
            "backward_ms": backward_ms,
            "forward_gflops": gflop / (forward_ms / 1e3) if forward_ms else None,
            "backward_gflops": 2 * gflop / (backward_ms / 1e3) if backward_ms else None,
        })
    return {
        "steps": steps,
        "wall_ms_per_step": wall * 1e3,
        "op_ms_per_step": float(per_step_ms.sum()),
        "categories": categories,
        "layers": layers,
    }


def _layer_of(op_name, layer_names):
    """The leaf layer an op belongs to, or None.

    A layer's ops sit under a name scope ``<layer>`` or ``<layer>_<k>``, as in
    ``.../block3_conv2_1/convolution/Conv2DBackpropFilter``.
    """
    scopes = op_name.split("/")
    for name in layer_names:
        if name in scopes or any(scope.startswith(name + "_") and scope[len(name) + 1:].isdigit()
                                 for scope in scopes):
            return name
    return None


# ---------------------------------------------------------------------------
# Time to accuracy.


class _AccuracyClock(keras.callbacks.Callback):
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
    """Wall time for ``train_vgg(config, data)`` to reach a test accuracy.

    The clock starts before the model is built and stops at the end of the
    first epoch whose validation accuracy (on the test images, as
    ``train_vgg`` validates) is at least ``target``; training stops there.

    Args:
        config: a ``TrainConfig``, such as ``PRESETS["cpu"]``.
        data: ``((x_train, y_train), (x_test, y_test))``; the full data set
            for a result comparable with published ones.
        target: the test accuracy to reach.

    Returns:
        A dict: ``seconds`` (None if the run ended before reaching the
        target), ``epochs``, and per epoch the accuracy and the time.
    """
    if not 0 < target <= 1:
        raise ValueError(f"Expected `target` to be in (0, 1]. Received: target={target!r}")
    start = time.perf_counter()
    clock = _AccuracyClock(target, start)
    with tempfile.TemporaryDirectory() as backup_dir:
        train_vgg(config, data, backup_dir=backup_dir, callbacks=[clock], verbose=0)
    return {
        "preset": config.name,
        "target": target,
        "train_examples": len(data[0][0]) if config.train_examples is None else config.train_examples,
        "test_examples": len(data[1][0]) if config.val_examples is None else config.val_examples,
        "seconds": clock.seconds,
        "epochs": len(clock.val_accuracy),
        "val_accuracy": clock.val_accuracy,
        "epoch_end_s": clock.epoch_end_s,
    }


# ---------------------------------------------------------------------------
# The whole benchmark.


def _log(message, verbose):
    if verbose:
        print(message, flush=True)


def run_bench(
    *,
    image_size=224,
    batch_size=None,
    num_examples=60_000,
    num_batches=3,
    pipeline_repeats=3,
    preset="cpu",
    train_image_size=None,
    ratio=None,
    train_steps=100,
    warmup_steps=10,
    repeats=5,
    variants=True,
    matmul_size=2048,
    with_profile=False,
    with_time_to_accuracy=False,
    target_accuracy=0.90,
    source="auto",
    verbose=True,
):
    """Runs the benchmark and returns its results as a JSON-ready dict.

    Args:
        image_size: pipelines: side of the images the network gets.
        batch_size: pipelines and training: images per batch; by default
            the preset's.
        num_examples: pipelines: training images they cover.
        num_batches: pipelines: batches pulled, the first included.
        pipeline_repeats: pipelines: fresh processes per pipeline, and for
            the idle process; the medians count.
        preset: training: the ``PRESETS`` entry whose model is timed, and
            which ``time_to_accuracy`` trains.
        train_image_size: training: image size, instead of the preset's.
        ratio: training: channel ratio, instead of the preset's.
        train_steps: training: timed steps per run.
        warmup_steps: training: steps before the timing starts.
        repeats: training: runs of each path, alternating, each followed by
            a matmul measurement; the medians count. On a shared machine the
            speed drifts from run to run; alternating exposes every path, and
            the matmul reference, to the same drift.
        variants: training: also time the course's path with each of
            ``VARIANTS``: XLA, and mixed precision with float16 (as on GPUs
            with tensor cores) and with bfloat16 (as on TPUs).
        matmul_size: side of the matrices of the matmul reference.
        with_profile: also profile the course's training steps with
            TensorFlow's profiler (``profile_training``).
        with_time_to_accuracy: also train ``preset`` on the full data until
            ``target_accuracy`` (minutes).
        target_accuracy: for ``with_time_to_accuracy``.
        source: where to load Fashion-MNIST from (``load_fashion_mnist``).
        verbose: print progress.

    Returns:
        A dict with the keys ``machine``, ``settings``, ``pipeline``,
        ``train``, ``efficiency``, ``profile`` and ``time_to_accuracy`` (None
        unless asked for), and ``targets``.
    """
    base = _check_preset(preset)
    batch_size = base.batch_size if batch_size is None else batch_size
    for name, value in (
        ("image_size", image_size),
        ("batch_size", batch_size),
        ("num_examples", num_examples),
        ("num_batches", num_batches),
        ("pipeline_repeats", pipeline_repeats),
        ("train_steps", train_steps),
        ("warmup_steps", warmup_steps),
        ("repeats", repeats),
        ("matmul_size", matmul_size),
    ):
        check_int(name, value)
    changes = {"batch_size": batch_size}
    if train_image_size is not None:
        changes["image_size"] = train_image_size
    if ratio is not None:
        changes["ratio"] = ratio
    config = base.replace(**changes)  # Checks the overrides.
    settings = dict(
        image_size=image_size,
        batch_size=batch_size,
        num_examples=num_examples,
        num_batches=num_batches,
        pipeline_repeats=pipeline_repeats,
        preset=preset,
        train_image_size=config.image_size,
        ratio=config.ratio,
        train_steps=train_steps,
        warmup_steps=warmup_steps,
        repeats=repeats,
        variants=variants,
        matmul_size=matmul_size,
        profile=with_profile,
        time_to_accuracy=with_time_to_accuracy,
        target_accuracy=target_accuracy,
        source=source,
    )
    results = {"machine": machine(), "settings": settings}
    _log(f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores; "
         f"{results['machine']['device']}", verbose)

    _log(f"Pipelines at {image_size} px over {num_examples:,} images, each in a fresh process, "
         f"{pipeline_repeats} time(s)...", verbose)
    idle_runs = [idle_rss_mb() for _ in range(pipeline_repeats)]
    pipeline = {"image_size": image_size, "batch_size": batch_size, "num_examples": num_examples,
                "num_batches": num_batches, "idle_rss_mb": statistics.median(idle_runs), "idle_runs": idle_runs}
    for _ in range(pipeline_repeats):
        # Alternating, like the training runs below.
        for kind in PIPELINES:
            run = measure_pipeline(
                kind, image_size=image_size, batch_size=batch_size, num_examples=num_examples,
                num_batches=num_batches, source=source,
            )
            pipeline.setdefault(f"{kind}_runs", []).append(run)
            _log(f"  {kind}: {run}", verbose)
    for kind in PIPELINES:
        runs = pipeline[f"{kind}_runs"]
        measured = [run for run in runs if "skipped" not in run]
        if not measured:
            pipeline[kind] = runs[0]
            continue
        pipeline[kind] = {
            "first_batch_s": statistics.median(run["first_batch_s"] for run in measured),
            "peak_rss_mb": statistics.median(run["peak_rss_mb"] for run in measured),
            "batch_shape": measured[0]["batch_shape"],
            "batch_dtype": measured[0]["batch_dtype"],
        }
        pipeline[kind]["own_rss_mb"] = pipeline[kind]["peak_rss_mb"] - pipeline["idle_rss_mb"]
    results["pipeline"] = pipeline

    with contextlib.redirect_stdout(io.StringIO()):
        data = load_fashion_mnist(source=source)
    _log(f"Training {config.arch}, channels / {config.ratio}, {config.image_size} px, dense "
         f"{config.dense_units}, batch {batch_size}: {repeats} x {train_steps} steps per path...", verbose)
    # The course's path three ways: its own recipe; with d2l's optimizer (SGD
    # without momentum, constant learning rate), which isolates the pipeline
    # and the training loop; and d2l's.
    paths = {
        "ours": ("ours", config),
        "ours_plain_sgd": ("ours", config.replace(momentum=0.0, lr_schedule="constant")),
        "d2l": ("d2l", config),
    }
    runs = {key: [] for key in paths}
    matmul_runs = []
    for _ in range(repeats):
        # Alternating, so that a slow spell on a shared machine hits every path.
        for key, (path, path_config) in paths.items():
            runs[key].append(
                train_examples_per_second(path, path_config, data, steps=train_steps, warmup_steps=warmup_steps)
            )
            _log(f"  {key}: {runs[key][-1]:,.1f} examples/s", verbose)
        matmul_runs.append(matmul_gflops(matmul_size))
        _log(f"  matmul: {matmul_runs[-1]:,.1f} GFLOP/s", verbose)
    train = {
        "arch": config.arch,
        "ratio": config.ratio,
        "image_size": config.image_size,
        "dense_units": config.dense_units,
        "batch_size": batch_size,
        "ours_optimizer": f"SGD, momentum {config.momentum:g}, learning rate {config.lr_schedule}",
        "d2l_optimizer": "SGD, momentum 0, learning rate constant",
        "steps": train_steps,
        "warmup_steps": warmup_steps,
        **{f"{key}_ex_per_s": statistics.median(speeds) for key, speeds in runs.items()},
        **{f"{key}_runs": speeds for key, speeds in runs.items()},
    }
    if variants:
        for key, change in VARIANTS.items():
            # On a CPU without float16 kernels oneDNN logs, as an error, that it
            # falls back to Eigen; the speed below says the same thing.
            with _stderr_to_devnull():
                speed = train_examples_per_second(
                    "ours", config.replace(**change), data, steps=train_steps, warmup_steps=warmup_steps
                )
            train[f"ours_{key}_ex_per_s"] = speed
            _log(f"  ours with {key}: {speed:,.1f} examples/s", verbose)
    results["train"] = train

    results["efficiency"] = efficiency(config, train["ours_ex_per_s"], statistics.median(matmul_runs))
    results["efficiency"]["matmul_size"] = matmul_size
    results["efficiency"]["matmul_runs"] = matmul_runs
    _log(f"Efficiency: {results['efficiency']['achieved_gflops']:.1f} GFLOP/s training, "
         f"{results['efficiency']['matmul_gflops']:.1f} GFLOP/s matmul", verbose)

    results["profile"] = None
    if with_profile:
        _log("Profiling the course's training steps...", verbose)
        results["profile"] = profile_training(config, data, steps=min(train_steps, 10), warmup_steps=warmup_steps)

    results["time_to_accuracy"] = None
    if with_time_to_accuracy:
        _log(f"Training preset {preset!r} until test accuracy {target_accuracy}...", verbose)
        results["time_to_accuracy"] = time_to_accuracy(base, data, target_accuracy)
        _log(f"  {results['time_to_accuracy']['seconds']} s", verbose)
    results["machine"]["load_average_1min_at_end"] = machine()["load_average_1min"]
    results["targets"] = target_table(results).to_dict(orient="records")
    return results


# ---------------------------------------------------------------------------
# Reading the results.


def load_results(path=REFERENCE):
    """Reads results that ``run_bench`` (or ``--json``) wrote; by default the reference run."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _ratio(numerator, denominator):
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _measured(results):
    """The measured value behind each target, or None where it was not measured."""
    pipeline, train = results["pipeline"], results["train"]
    ours, d2l = pipeline["ours"], pipeline["d2l"]
    tta = results.get("time_to_accuracy")
    minutes = tta["seconds"] / 60 if tta and tta.get("seconds") is not None else None
    return {
        "pipeline_memory": _ratio(d2l.get("own_rss_mb"), ours.get("own_rss_mb")),
        "pipeline_first_batch": _ratio(d2l.get("first_batch_s"), ours.get("first_batch_s")),
        "train_speed": _ratio(train["ours_ex_per_s"], train["d2l_ex_per_s"]),
        "efficiency": results["efficiency"]["ratio"],
        "time_to_accuracy": minutes,
    }


def target_table(results):
    """The course's targets, what was measured, and whether each was met.

    Returns:
        A ``pandas.DataFrame`` with one row per target: ``target`` (its key),
        ``what``, ``required`` (such as ">= 50"), ``measured`` (None if not
        measured) and ``met`` (True, False, or None if not measured).
    """
    measured = _measured(results)
    rows = []
    for key, what, sense, bound in TARGETS:
        value = measured[key]
        met = None if value is None else (value >= bound if sense == ">=" else value <= bound)
        rows.append({"target": key, "what": what, "required": f"{sense} {bound:g}", "measured": value, "met": met})
    return pd.DataFrame(rows)


def pipeline_table(results):
    """Both pipelines side by side: first batch, peak and own memory, and the batch they yield."""
    pipeline = results["pipeline"]
    rows = {}
    for kind, label in (("ours", "course: make_dataset + model's rescale, resize"), ("d2l", "d2l: get_dataloader")):
        entry = pipeline[kind]
        rows[label] = {
            "first batch (s)": entry.get("first_batch_s"),
            "peak RSS (MB)": entry.get("peak_rss_mb"),
            "own RSS (MB)": entry.get("own_rss_mb"),
            "batch": " x ".join(map(str, entry["batch_shape"])) + " " + entry["batch_dtype"]
            if "batch_shape" in entry else entry.get("skipped"),
        }
    table = pd.DataFrame(rows).T
    table.index.name = f"{pipeline['num_examples']:,} images at {pipeline['image_size']} px"
    return table


def train_table(results):
    """Training speeds: both paths, and the course's with XLA and with mixed precision."""
    train = results["train"]
    rows = {
        f"course: train_vgg ({train['ours_optimizer']})": train["ours_ex_per_s"],
        f"course: train_vgg, d2l's optimizer ({train['d2l_optimizer']})": train["ours_plain_sgd_ex_per_s"],
        f"d2l: d2l_dataloader + train_ch6 ({train['d2l_optimizer']})": train["d2l_ex_per_s"],
    }
    labels = {"xla": "course, XLA (jit_compile=True)", "mixed_float16": "course, mixed_float16",
              "mixed_bfloat16": "course, mixed_bfloat16"}
    for key, label in labels.items():
        if f"ours_{key}_ex_per_s" in train:
            rows[label] = train[f"ours_{key}_ex_per_s"]
    table = pd.DataFrame({"examples/s": rows})
    table["vs d2l"] = table["examples/s"] / train["d2l_ex_per_s"]
    table.index.name = (
        f"{train['arch']} / {train['ratio']}, {train['image_size']} px, dense {train['dense_units']}, "
        f"batch {train['batch_size']}"
    )
    return table


def profile_table(results):
    """Where the profiled training step spends its op time, by what the ops do."""
    profile = results["profile"]
    categories = pd.DataFrame(profile["categories"]).set_index("category")
    table = pd.DataFrame(
        {"ms per step": categories["ms_per_step"], "% of op time": 100 * categories["share"]}
    )
    table.index.name = (
        f"{profile['wall_ms_per_step']:.1f} ms per step, {profile['op_ms_per_step']:.1f} ms of op time"
    )
    return table


def _report(results):
    """A readable summary of ``results`` for the terminal."""
    lines = [
        "machine: " + ", ".join(f"{key} {value}" for key, value in results["machine"].items()),
        "",
        pipeline_table(results).to_string(float_format=lambda v: f"{v:,.2f}"),
        f"idle process (imports TensorFlow only): {results['pipeline']['idle_rss_mb']:,.1f} MB peak RSS",
        "",
        train_table(results).to_string(float_format=lambda v: f"{v:,.2f}"),
        "",
        f"efficiency: {results['efficiency']['achieved_gflops']:.1f} GFLOP/s training "
        f"({results['efficiency']['train_flops_per_example'] / 1e6:.1f} MFLOP per example), "
        f"{results['efficiency']['matmul_gflops']:.1f} GFLOP/s TF matmul "
        f"({results['efficiency']['matmul_size']}x{results['efficiency']['matmul_size']} float32)",
        f"  convention: {results['efficiency']['convention']}",
    ]
    if results.get("profile"):
        lines += ["", profile_table(results).to_string(float_format=lambda v: f"{v:,.3f}")]
    tta = results.get("time_to_accuracy")
    if tta:
        reached = f"{tta['seconds']:.0f} s" if tta["seconds"] is not None else "not reached"
        lines += ["", f"time to test accuracy {tta['target']} with preset {tta['preset']!r}: {reached} "
                      f"({tta['epochs']} epochs: {', '.join(f'{a:.3f}' for a in tta['val_accuracy'])})"]
    lines += ["", target_table(results).to_string(index=False, float_format=lambda v: f"{v:,.3f}")]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The command line: `python -m vggcourse bench`.


def add_parser(subparsers):
    """Adds the ``bench`` subcommand to ``subparsers`` (an argparse sub-parsers action)."""
    parser = subparsers.add_parser(
        "bench",
        help="measure the course's pipeline and training against d2l's on this machine",
        description=(
            "Measures, in one run: the memory and time to the first batch of the course's input "
            "pipeline and of d2l's (each in a fresh process); steady-state training speed of both "
            "on the same model; training FLOP/s against TensorFlow's own matmul; and optionally "
            "the time a preset takes to reach a test accuracy. Prints a table and the targets."
        ),
        epilog=(
            "examples:\n"
            "  python -m vggcourse bench --json bench.json\n"
            "  python -m vggcourse bench --num-examples 10000 --time-to-accuracy\n"
            "d2l's pipeline needs about 12 GB of RAM at 224 px over 60,000 images; with less, "
            "it is skipped (or lower --num-examples)."
        ),
        formatter_class=lambda prog: argparse.ArgumentDefaultsHelpFormatter(prog, width=100),
    )
    pipes = parser.add_argument_group("input pipelines")
    pipes.add_argument("--size", "--image-size", dest="image_size", type=int, default=224,
                       help="side in pixels of the images the network gets")
    pipes.add_argument("--batch-size", type=int, default=None,
                       help="images per batch, for the pipelines and training; by default the preset's")
    pipes.add_argument("--num-examples", type=int, default=60_000, help="training images the pipelines cover")
    pipes.add_argument("--num-batches", type=int, default=3, help="batches pulled from each pipeline")
    pipes.add_argument("--pipeline-repeats", type=int, default=3,
                       help="fresh processes per pipeline, alternating; the medians count")
    training = parser.add_argument_group("training")
    training.add_argument("--preset", choices=tuple(PRESETS), default="cpu",
                          help="the model timed, and trained by --time-to-accuracy")
    training.add_argument("--train-size", dest="train_image_size", type=int, default=None,
                          help="image size for the timed training, instead of the preset's")
    training.add_argument("--ratio", type=int, default=None, help="channel ratio, instead of the preset's")
    training.add_argument("--train-steps", type=int, default=100, help="timed steps per run")
    training.add_argument("--warmup-steps", type=int, default=10, help="steps before the timing starts")
    training.add_argument("--repeats", type=int, default=5,
                          help="runs of each path, alternating with a matmul; the medians count")
    training.add_argument("--no-variants", dest="variants", action="store_false",
                          help="skip timing the course's path with XLA and with mixed precision")
    training.add_argument("--matmul-size", type=int, default=2048, help="side of the reference matmul")
    training.add_argument("--profile", action="store_true",
                          help="also profile the course's training steps with TensorFlow's profiler")
    training.add_argument("--time-to-accuracy", action="store_true",
                          help="also train the preset on the full data until --target-accuracy (minutes)")
    training.add_argument("--target-accuracy", type=float, default=0.90, help="for --time-to-accuracy")
    parser.add_argument("--source", default="auto", help="where to load Fashion-MNIST from (load_fashion_mnist)")
    parser.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    parser.set_defaults(run=run_command)
    return parser


def run_command(args):
    """Runs ``bench`` with parsed arguments; prints the report, writes ``--json``; returns 0."""
    results = run_bench(
        image_size=args.image_size,
        batch_size=args.batch_size,
        num_examples=args.num_examples,
        num_batches=args.num_batches,
        pipeline_repeats=args.pipeline_repeats,
        preset=args.preset,
        train_image_size=args.train_image_size,
        ratio=args.ratio,
        train_steps=args.train_steps,
        warmup_steps=args.warmup_steps,
        repeats=args.repeats,
        variants=args.variants,
        matmul_size=args.matmul_size,
        with_profile=args.profile,
        with_time_to_accuracy=args.time_to_accuracy,
        target_accuracy=args.target_accuracy,
        source=args.source,
    )
    print()
    print(_report(results))
    if args.json:
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\nResults written to {path}")
    return 0
