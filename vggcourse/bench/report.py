"""Reading benchmark results: tables for the Performance appendix, the course's targets, a text report.

Every function takes the results as a dict in the layout of ``schema.Results``,
as ``run_bench`` returns them and ``load_results`` reads them.
"""

import pandas as pd

from vggcourse.bench.measure import training_flops
from vggcourse.train import PRESETS

__all__ = [
    "D2L_GPU_EXAMPLES_PER_S",
    "GPU_PEAKS",
    "TARGETS",
    "pipeline_table",
    "profile_table",
    "target_records",
    "target_table",
    "text_report",
    "throughput_bounds",
    "train_table",
]

# The course's targets: (key, what is measured, ">=" or "<=", the bound).
TARGETS = (
    ("pipeline_memory", "pipeline's own memory, d2l / ours", ">=", 50.0),
    ("pipeline_first_batch", "time to the first batch, d2l / ours", ">=", 50.0),
    ("train_speed", "training examples/s, ours / d2l", ">=", 1.0),
    ("efficiency", "training GFLOP/s / TF matmul GFLOP/s", ">=", 0.75),
    ("time_to_accuracy", "minutes to the target validation accuracy", "<=", 10.0),
)

# Published peak arithmetic throughput in TFLOP/s, dense (without structured
# sparsity): float32 on the ordinary cores, and 16-bit (float16 or bfloat16)
# on the tensor cores.
GPU_PEAKS = {
    # NVIDIA T4 datasheet: 8.1 TFLOPS single precision, 65 TFLOPS mixed precision (FP16/FP32);
    # its tensor cores have no bfloat16, so its 16-bit row is float16.
    "T4": {"float32": 8.1, "16-bit": 65.0},
    # NVIDIA A100 datasheet: 19.5 TFLOPS FP32, 312 TFLOPS BF16/FP16 tensor core (624 with sparsity).
    "A100": {"float32": 19.5, "16-bit": 312.0},
    # NVIDIA H100 datasheet, SXM: 67 TFLOPS FP32, 1,979 TFLOPS BF16 tensor core with sparsity,
    # so 989 dense (the PCIe card's figures are lower).
    "H100 SXM": {"float32": 67.0, "16-bit": 989.0},
}

# d2l release 0.17 (TensorFlow), section "Networks Using Blocks (VGG)": the
# examples per second that its training cell printed on the book's GPU
# (release 0.17.5, as built in d2l-tensorflow-colab).
D2L_GPU_EXAMPLES_PER_S = 2960.2

# Row labels of the tables: what each measured path or variant is.
_PIPELINE_LABELS = {
    "ours": "course: make_dataset + model's rescale, resize",
    "d2l": "d2l: get_dataloader",
}
_VARIANT_LABELS = {
    "xla": "course, XLA (jit_compile=True)",
    "mixed_float16": "course, mixed_float16",
    "mixed_bfloat16": "course, mixed_bfloat16",
}


def _ratio(numerator, denominator):
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _measured(results):
    """The measured value behind each target, or None where it was not measured."""
    pipeline, speeds = results["pipeline"], results["train"]["ex_per_s"]
    ours, d2l = pipeline["ours"], pipeline["d2l"]
    tta = results.get("time_to_accuracy")
    minutes = tta["seconds"] / 60 if tta and tta.get("seconds") is not None else None
    return {
        "pipeline_memory": _ratio(d2l.get("own_rss_mb"), ours.get("own_rss_mb")),
        "pipeline_first_batch": _ratio(d2l.get("first_batch_s"), ours.get("first_batch_s")),
        "train_speed": _ratio(speeds["ours"], speeds["d2l"]),
        "efficiency": results["efficiency"]["fraction_of_matmul"],
        "time_to_accuracy": minutes,
    }


def target_table(results):
    """The course's targets, what was measured, and whether each was met.

    Returns:
        A ``pandas.DataFrame`` with one row per target: ``target`` (its key),
        ``what``, ``required`` (such as ">= 50"), ``measured`` (None if not
        measured, or for a time-to-accuracy run that never reached its
        target) and ``met`` (True, False, or None if not measured; False for
        a target accuracy never reached).
    """
    measured = _measured(results)
    tta = results.get("time_to_accuracy")
    # A run that trained all its epochs without reaching the target missed it.
    never_reached = bool(tta) and tta.get("seconds") is None
    rows = []
    for key, what, sense, bound in TARGETS:
        value = measured[key]
        met = None if value is None else (value >= bound if sense == ">=" else value <= bound)
        if key == "time_to_accuracy" and never_reached:
            met = False
        rows.append({"target": key, "what": what, "required": f"{sense} {bound:g}", "measured": value, "met": met})
    return pd.DataFrame(rows)


def target_records(results):
    """``target_table(results)`` as a list of dicts for JSON: a value not measured is None, not NaN."""
    table = target_table(results)
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


def _batch(entry):
    if entry.get("batch_shape") is None:
        return entry.get("skipped")
    return " x ".join(map(str, entry["batch_shape"])) + " " + entry["batch_dtype"]


def pipeline_table(results):
    """Both pipelines side by side: first batch, peak and own memory, and the batch they yield."""
    pipeline = results["pipeline"]
    rows = {
        label: {
            "first batch (s)": pipeline[kind].get("first_batch_s"),
            "peak RSS (MB)": pipeline[kind].get("peak_rss_mb"),
            "own RSS (MB)": pipeline[kind].get("own_rss_mb"),
            "batch": _batch(pipeline[kind]),
        }
        for kind, label in _PIPELINE_LABELS.items()
    }
    table = pd.DataFrame(rows).T
    table.index.name = f"{pipeline['num_examples']:,} images at {pipeline['image_size']} px"
    return table


def train_table(results):
    """Training speeds: both paths, and the course's with XLA and with mixed precision."""
    train = results["train"]
    speeds = train["ex_per_s"]
    rows = {
        f"course: train_vgg ({train['ours_optimizer']})": speeds["ours"],
        f"course: train_vgg, d2l's optimizer ({train['d2l_optimizer']})": speeds["ours_plain_sgd"],
        f"d2l: d2l_dataloader + train_ch6 ({train['d2l_optimizer']})": speeds["d2l"],
    }
    for key, speed in train["variants_ex_per_s"].items():
        rows[_VARIANT_LABELS.get(key, f"course, {key}")] = speed
    table = pd.DataFrame({"examples/s": rows})
    table["vs d2l"] = table["examples/s"] / speeds["d2l"]
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


def _efficiency_lines(efficiency):
    return [
        f"efficiency: {efficiency['achieved_gflops']:.1f} GFLOP/s training "
        f"({efficiency['train_flops_per_example'] / 1e6:.1f} MFLOP per example), "
        f"{efficiency['matmul_gflops']:.1f} GFLOP/s TF matmul "
        f"({efficiency['matmul_size']}x{efficiency['matmul_size']} float32)",
        f"  convention: {efficiency['convention']}",
    ]


def _time_to_accuracy_lines(tta):
    if not tta:
        return []
    reached = f"{tta['seconds']:.0f} s" if tta["seconds"] is not None else "not reached"
    accuracies = ", ".join(f"{a:.3f}" for a in tta["val_accuracy"])
    return ["", f"time to validation accuracy {tta['target']} with preset {tta['preset']!r}: {reached} "
                f"({tta['epochs']} epochs: {accuracies}); then test accuracy {tta['test_accuracy']:.4f}"]


def text_report(results):
    """A readable summary of ``results`` for the terminal."""
    two_places = lambda v: f"{v:,.2f}"  # noqa: E731
    lines = [
        "machine: " + ", ".join(f"{key} {value}" for key, value in results["machine"].items()),
        "",
        pipeline_table(results).to_string(float_format=two_places),
        f"idle memory ({results['pipeline']['idle_process']}): "
        f"{results['pipeline']['idle_rss_mb']:,.1f} MB peak RSS",
        "",
        train_table(results).to_string(float_format=two_places),
        "",
        *_efficiency_lines(results["efficiency"]),
    ]
    if results.get("profile"):
        lines += ["", profile_table(results).to_string(float_format=lambda v: f"{v:,.3f}")]
    lines += _time_to_accuracy_lines(results.get("time_to_accuracy"))
    lines += ["", target_table(results).to_string(index=False, float_format=lambda v: f"{v:,.3f}")]
    return "\n".join(lines)


def throughput_bounds(config=None, peaks=None):
    """An ESTIMATE: the training examples per second that each GPU's peak FLOP/s would allow.

    The bound is peak FLOP/s divided by the training FLOPs per example
    (``measure.FLOP_CONVENTION``). No real run reaches it: memory bandwidth,
    the layers that do no multiply-accumulates, the input pipeline and the
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
    _, flops = training_flops(config)
    rows = [
        {"GPU": gpu, "precision": precision, "peak TFLOP/s": peak, "bound (examples/s)": peak * 1e12 / flops}
        for gpu, by_precision in peaks.items()
        for precision, peak in by_precision.items()
    ]
    table = pd.DataFrame(rows).set_index(["GPU", "precision"])
    table.attrs["train_flops_per_example"] = flops
    return table
