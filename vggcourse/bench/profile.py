"""Where a training step's time goes, from TensorFlow's profiler.

``profile_training`` records a few of the course's training steps with
``tf.profiler.experimental``. ``op_times`` reads the recorded trace (an
``.xplane.pb`` file), and ``summarize`` adds the ops' times up by what the
ops do (``OP_CATEGORIES``) and by the layer they belong to.
"""

import pathlib
import tempfile

import keras
import pandas as pd
import tensorflow as tf

from vggcourse._checks import check_int
from vggcourse.bench.measure import StepTimer, quiet_training, short_run
from vggcourse.bench.schema import Profile
from vggcourse.trace import trace_layers
from vggcourse.train import build_network, train_vgg

__all__ = ["MAC_CATEGORIES", "OP_CATEGORIES", "category", "layer_of", "op_times", "profile_training", "summarize"]

# What a profiled op does, from its type (after the ":" in its name; oneDNN's
# kernels carry an _Mkl prefix): (category, words in the type, words not in it).
OP_CATEGORIES = (
    ("convolution, forward", ("Conv2D",), ("Backprop",)),
    ("convolution, weight gradient", ("Conv2DBackpropFilter",), ()),
    ("convolution, input gradient", ("Conv2DBackpropInput",), ()),
    ("dense (matmul)", ("MatMul",), ()),
    ("pooling", ("MaxPool",), ()),
    ("dropout random numbers", ("StatelessRandom",), ()),
)
# The categories whose ops do the multiply-accumulates that trace_layers counts.
MAC_CATEGORIES = tuple(name for name, _, _ in OP_CATEGORIES[:4])
# Categories read from the name scope instead, whatever the op's type.
OPTIMIZER = "optimizer update (SGD)"
PREPROCESSING = "scaling and resizing (the model's first layers)"
OTHER = "everything else (ReLU gradients, dropout masks, loss, metrics, ...)"
ORDER = [name for name, _, _ in OP_CATEGORIES] + [OPTIMIZER, PREPROCESSING, OTHER]


def layer_of(op_name, layer_names):
    """The leaf layer an op belongs to, or None.

    A layer's ops sit under a name scope ``<layer>`` or ``<layer>_<k>``, as in
    ``.../block3_conv2_1/convolution/Conv2DBackpropFilter``.
    """
    scopes = op_name.split("/")
    for name in layer_names:
        if name in scopes or any(
            scope.startswith(name + "_") and scope[len(name) + 1 :].isdigit() for scope in scopes
        ):
            return name
    return None


def category(op_name, op_type):
    """Which entry of ``ORDER`` an op's time counts under."""
    scopes = op_name.split("/")
    if any(scope == "sgd" or scope.startswith("sgd_") for scope in scopes):
        return OPTIMIZER
    if layer_of(op_name, ("rescale", "resize")) is not None:
        return PREPROCESSING
    for name, include, exclude in OP_CATEGORIES:
        if any(word in op_type for word in include) and not any(word in op_type for word in exclude):
            return name
    return OTHER


def op_times(path):
    """The TensorFlow ops that ran on the host's compute threads, from a profiler trace.

    Args:
        path: an ``.xplane.pb`` file, or a folder that holds one (the last
            one found, in name order, is read).

    Returns:
        A ``pandas.DataFrame`` with one row per op that ran: ``name`` (its
        name scope), ``type`` and ``seconds``.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = pathlib.Path(path)
    files = [path] if path.is_file() else sorted(path.rglob("*.xplane.pb"))
    if not files:
        raise FileNotFoundError(f"TensorFlow's profiler wrote no trace into {path}")
    space = xplane_pb2.XSpace()
    space.ParseFromString(files[-1].read_bytes())
    rows = []
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
                    rows.append((op_name, op_type, event.duration_ps * 1e-12))
    return pd.DataFrame(rows, columns=["name", "type", "seconds"])


def _layer_times(ops, trace, steps, batch_size):
    """Per convolution and dense layer: its traced forward GFLOP and its ops' milliseconds, per step."""
    mac_ops = ops[ops["category"].isin([name for name, _, _ in OP_CATEGORIES])]
    layers = []
    for row in trace[trace["macs"] > 0].itertuples():
        mine = mac_ops[mac_ops["layer"] == row.layer]
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
    return layers


def summarize(ops, trace, *, steps, batch_size, wall_ms_per_step):
    """Adds up profiled op times by category and by layer.

    Args:
        ops: ``op_times()``'s table.
        trace: ``trace_layers()`` of the profiled network; names its layers.
        steps: how many training steps the profile covers.
        batch_size: examples per step.
        wall_ms_per_step: the steps' measured wall time.

    Returns:
        A ``schema.Profile``. TensorFlow runs independent ops side by side,
        so op time per step can exceed the wall time.
    """
    ops = ops.assign(
        category=[category(name, op_type) for name, op_type in zip(ops["name"], ops["type"])],
        layer=ops["name"].map(lambda name: layer_of(name, trace["layer"])),
        backward=ops["name"].str.contains("gradient_tape/", regex=False),
    )
    per_step_ms = (ops.groupby("category")["seconds"].sum() * 1e3 / steps).reindex(ORDER, fill_value=0.0)
    total = float(per_step_ms.sum())
    return Profile(
        steps=steps,
        wall_ms_per_step=wall_ms_per_step,
        op_ms_per_step=total,
        categories=[
            {"category": name, "ms_per_step": float(ms), "share": float(ms) / total if total else 0.0}
            for name, ms in per_step_ms.items()
        ],
        layers=_layer_times(ops, trace, steps, batch_size),
    )


class _ProfileSteps(keras.callbacks.Callback):
    """Starts TensorFlow's profiler before step ``first`` and stops it after step ``last``."""

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
    ``steps``, and adds up the time of every op that ran (``summarize``).

    Args:
        config: a ``TrainConfig``.
        data: ``((x_train, y_train), (x_test, y_test))``.
        steps: profiled steps.
        warmup_steps: steps before the profile starts.

    Returns:
        A ``schema.Profile``.
    """
    run = short_run(config, check_int("steps", steps), check_int("warmup_steps", warmup_steps), "profile")
    timer = StepTimer(config.batch_size, warmup_steps)
    with tempfile.TemporaryDirectory() as logdir, tempfile.TemporaryDirectory() as backup_dir:
        profiler = _ProfileSteps(logdir, warmup_steps, warmup_steps + steps - 1)
        with quiet_training():
            train_vgg(run, data, backup_dir=backup_dir, callbacks=[timer, profiler], verbose=0)
        ops = op_times(logdir)
    wall_ms = (timer.ends[-1] - timer.ends[warmup_steps - 1]) / steps * 1e3
    trace = trace_layers(build_network(config), (config.image_size, config.image_size, 1))
    return summarize(ops, trace, steps=steps, batch_size=config.batch_size, wall_ms_per_step=wall_ms)
