"""The benchmark and its d2l baseline: what they measure, how results are stored and read.

No test asserts on a timing: they depend on the machine and on what else runs on it.
"""

import dataclasses
import json
import pathlib

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from vggcourse import PRESETS, InvalidArgument, build_network, trace_layers
from vggcourse.bench import baseline, measure, profile, report, run, schema
from vggcourse.cli import build_parser, main

PROFILE = pathlib.Path(__file__).parent / "data" / "profile-smoke.xplane.pb"

# Seconds, not minutes: a sliver of every measurement, time to accuracy included.
# The variants are left to their own tests: compiling each one costs more than
# the whole rest of the run.
TINY = [
    "--pipeline-size", "32", "--num-examples", "256", "--num-batches", "2", "--pipeline-repeats", "1",
    "--preset", "smoke", "--train-steps", "2", "--warmup-steps", "1", "--repeats", "1", "--no-variants",
    "--matmul-size", "128", "--profile", "--time-to-accuracy", "--target-accuracy", "0.05",
    "--source", "sample",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "out" / "bench.json"
    assert main(["bench", *TINY, "--json", str(path)]) == 0
    return path


def test_bench_command_writes_results_in_the_schema_with_every_measurement(tiny_run):
    results = schema.load_results(tiny_run)
    assert results == json.loads(tiny_run.read_text())
    assert results["pipeline"]["idle_rss_mb"] > 0
    for kind in measure.PIPELINES:
        assert results["pipeline"][kind]["skipped"] is None
        assert len(results["pipeline"][kind]["runs"]) == 1
    assert set(results["train"]["ex_per_s"]) == {"ours", "ours_plain_sgd", "d2l"}
    assert results["train"]["variants_ex_per_s"] == {}
    # The smoke preset's optimizer, and train_ch6's plain SGD at the same rate.
    assert results["train"]["ours_optimizer"] == "SGD, momentum 0.9, learning rate 0.02, constant"
    assert results["train"]["d2l_optimizer"] == "SGD, learning rate 0.02, constant"
    assert {row["category"] for row in results["profile"]["categories"]} == set(profile.ORDER)
    tta = results["time_to_accuracy"]
    assert tta["preset"] == "smoke" and 0 <= tta["test_accuracy"] <= 1
    # The smoke preset validates on test images: it holds no split out.
    assert tta["val_examples"] == PRESETS["smoke"].val_examples
    assert [row["target"] for row in results["targets"]] == [key for key, *_ in report.TARGETS]


def test_each_variant_times_the_courses_path_with_its_one_change(monkeypatch, sample):
    timed = []

    def record(path, config, data, **steps):
        timed.append((path, config))
        return 1.0

    monkeypatch.setattr(run, "train_examples_per_second", record)
    config = PRESETS["smoke"]
    settings = schema.BenchSettings(preset="smoke", repeats=1, train_steps=2, warmup_steps=1)
    speeds, _ = run.measure_training(settings, config, sample, verbose=False)
    assert set(speeds.variants_ex_per_s) == set(measure.VARIANTS)
    variants = timed[-len(measure.VARIANTS):]
    for (key, change), (path, variant) in zip(measure.VARIANTS.items(), variants):
        assert path == "ours" and variant == config.replace(**change), key


def test_the_bfloat16_variant_trains_on_a_cpu(sample):
    # The one variant that no other test trains: mixed_float16 and XLA train in
    # test_train's run of the gpu preset's code path.
    config = PRESETS["smoke"].replace(**measure.VARIANTS["mixed_bfloat16"])
    assert measure.train_examples_per_second("ours", config, sample, steps=2, warmup_steps=1) > 0


def test_both_pipelines_yield_what_the_network_sees(tiny_run):
    # The same batch for both: float32 images at the requested size, so the comparison is like for like.
    pipeline = schema.load_results(tiny_run)["pipeline"]
    assert pipeline["ours"]["batch_shape"] == pipeline["d2l"]["batch_shape"] == [32, 32, 32, 1]
    assert pipeline["ours"]["batch_dtype"] == pipeline["d2l"]["batch_dtype"] == "float32"


def test_settings_record_the_presets_values_where_none_were_given(tiny_run):
    settings = schema.load_results(tiny_run)["settings"]
    smoke = PRESETS["smoke"]
    assert (settings["batch_size"], settings["image_size"], settings["ratio"]) == (
        smoke.batch_size, smoke.image_size, smoke.ratio
    )


def test_the_reference_run_shipped_with_the_package_reads_in_the_schema():
    results = schema.load_results()
    # The appendix quotes a run over the whole training set at d2l's image size.
    assert results["pipeline"]["num_examples"] == 60_000
    assert results["pipeline"]["image_size"] == 224
    tta = results["time_to_accuracy"]
    # The cpu preset as it stands, validated on its split, tested once at the end.
    assert (tta["preset"], tta["val_examples"]) == ("cpu", PRESETS["cpu"].val_split)
    assert tta["train_examples"] == 60_000 - PRESETS["cpu"].val_split
    assert len(tta["val_accuracy"]) <= PRESETS["cpu"].epochs
    # VGG-11 / 4 at 32 px with dense 1024, as traced in the tracing chapter's table.
    assert results["efficiency"]["macs_per_example"] == 10_774_528


def test_results_in_another_layout_are_refused_naming_the_file(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"machine": {}, "train": {"ours_ex_per_s": 1.0}}))
    with pytest.raises(schema.ResultsFileError, match=r"old\.json .*schema version None"):
        schema.load_results(old)
    broken = json.loads(schema.REFERENCE.read_text())
    del broken["efficiency"]["fraction_of_matmul"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(schema.ResultsFileError, match=r"broken\.json .*fraction_of_matmul"):
        schema.load_results(tmp_path / "broken.json")


def test_every_bench_setting_has_an_option_whose_default_is_the_settings_default():
    args = build_parser().parse_args(["bench"])
    fields = {field.name: getattr(args, field.name) for field in dataclasses.fields(schema.BenchSettings)}
    assert schema.BenchSettings(**fields) == schema.BenchSettings()


def test_size_is_the_training_image_size_in_bench_as_in_train():
    bench_args = build_parser().parse_args(["bench", "--size", "64", "--pipeline-size", "96"])
    train_args = build_parser().parse_args(["train", "--size", "64"])
    assert (bench_args.image_size, bench_args.pipeline_image_size, train_args.image_size) == (64, 96, 64)


def test_preprocessing_scales_to_one_and_resizes_uint8_batches():
    images = np.full((2, 28, 28, 1), 255, np.uint8)
    out = measure.preprocessing(40)(images)
    assert out.shape == (2, 40, 40, 1) and out.dtype == "float32"
    np.testing.assert_allclose(out.numpy(), 1.0)


def test_d2l_dataloader_scales_then_resizes_whole_batches_then_shuffles_the_batches():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(100, 28, 28), dtype=np.uint8)
    y = np.arange(100) % 10
    batches = list(baseline.d2l_dataloader(x, y, 32, (32, 32), train=True))
    assert sorted(len(images) for images, _ in batches) == [4, 32, 32, 32]
    expected = tf.image.resize_with_pad(tf.expand_dims(x, 3) / 255, 32, 32).numpy()
    for images, labels in batches:
        assert images.dtype == tf.float32 and images.shape[1:] == (32, 32, 1)
        # Shuffling after batching moves whole batches: each one is a run of consecutive images.
        start = int(np.flatnonzero(np.all(expected == images[0].numpy(), axis=(1, 2, 3)))[0])
        np.testing.assert_array_equal(images.numpy(), expected[start : start + len(images)])
        np.testing.assert_array_equal(labels.numpy(), y[start : start + len(images)])
    test_order = [int(labels[0]) for _, labels in baseline.d2l_dataloader(x, y, 32, (32, 32), train=False)]
    assert test_order == [0, 2, 4, 6], "test data are not shuffled"


# d2l calls fit() on a dataset with shuffle left at True, and Keras warns that it ignores it.
@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed:UserWarning")
def test_d2l_train_ch6_compiles_plain_sgd_on_logits_and_evaluates_after_each_epoch():
    x = np.zeros((64, 28, 28), np.uint8)
    y = np.zeros(64, np.uint8)
    train_iter = baseline.d2l_dataloader(x, y, 32, (32, 32))
    test_iter = baseline.d2l_dataloader(x[:32], y[:32], 32, (32, 32), train=False)
    recorded = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: recorded.append(epoch))
    net = baseline.train_ch6(lambda: keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10)]),
                             train_iter, test_iter, 2, 0.1, "/CPU:0", callbacks=[record])
    assert isinstance(net.optimizer, keras.optimizers.SGD) and float(net.optimizer.momentum) == 0.0
    assert net.loss.get_config()["from_logits"] is True
    assert recorded == [0, 1]


def test_efficiency_counts_three_passes_of_two_flops_per_traced_mac():
    result = measure.efficiency(PRESETS["cpu"], examples_per_second=1000.0, matmul_runs=[90.0, 100.0, 200.0],
                                matmul_size=2048)
    # VGG-11 / 4 at 32 px with dense 1024: 10,774,528 MACs per example (the reference run's figure).
    assert result.macs_per_example == 10_774_528
    assert result.train_flops_per_example == 6 * 10_774_528
    assert result.achieved_gflops == pytest.approx(1000 * 6 * 10_774_528 / 1e9)
    assert result.matmul_gflops == 100.0, "the median of the matmul runs"
    assert result.fraction_of_matmul == pytest.approx(result.achieved_gflops / 100.0)


def test_step_timer_leaves_out_the_warm_up_steps():
    timer = measure.StepTimer(batch_size=10, warmup_steps=2)
    timer.ends = [5.0, 6.0, 6.5, 7.0, 7.5]  # Two slow warm-up steps, then 0.5 s per step.
    assert timer.examples_per_second == pytest.approx(20.0)


# ---------------------------------------------------------------------------
# The profile, read from a small recorded one (scripts/record_profile_fixture.py).


def test_profile_reader_keeps_the_ops_of_the_compute_threads_and_skips_executor_events():
    ops = profile.op_times(PROFILE)
    assert list(ops.columns) == ["name", "type", "seconds"]
    assert len(ops) == 333
    assert not ops["type"].str.contains("::").any() and (ops["seconds"] > 0).all()
    counts = ops["type"].value_counts()
    # The smoke network has 8 convolutions: each runs forward and gets a weight
    # gradient, but the first needs no gradient with respect to its input.
    assert counts["_MklNativeFusedConv2D"] == 8
    assert counts["_MklNativeConv2DBackpropFilterWithBias"] == 8
    assert counts["_MklNativeConv2DBackpropInput"] == 7
    assert counts["ResizeBilinear"] == 1


def test_profile_reader_reads_the_last_trace_of_a_folder(tmp_path):
    (tmp_path / "run" / "a.xplane.pb").parent.mkdir()
    (tmp_path / "run" / "a.xplane.pb").write_bytes(b"")
    (tmp_path / "run" / "b.xplane.pb").write_bytes(PROFILE.read_bytes())
    assert len(profile.op_times(tmp_path)) == 333
    with pytest.raises(FileNotFoundError, match="no trace"):
        profile.op_times(tmp_path / "run" / "empty")


@pytest.mark.parametrize(
    "op_name, op_type, expected",
    [
        ("StatefulPartitionedCall/sgd/Mul_30", "Mul", "optimizer update (SGD)"),
        ("StatefulPartitionedCall/m/resize_1/resize/ResizeBilinear", "ResizeBilinear", profile.PREPROCESSING),
        ("StatefulPartitionedCall/m/vgg_1/block1_1/block1_conv1_1/Relu", "_MklNativeFusedConv2D",
         "convolution, forward"),
        ("gradient_tape/m/block3_conv2_1/convolution/Conv2DBackpropFilter", "_MklNativeConv2DBackpropFilterWithBias",
         "convolution, weight gradient"),
        ("gradient_tape/m/block3_conv2_1/convolution/Conv2DBackpropInput", "_MklNativeConv2DBackpropInput",
         "convolution, input gradient"),
        ("StatefulPartitionedCall/m/fc1_1/MatMul", "_MklMatMul", "dense (matmul)"),
        ("StatefulPartitionedCall/m/block1_pool_1/MaxPool", "_MklNativeMaxPool", "pooling"),
        ("StatefulPartitionedCall/m/fc1_dropout_1/stateless_dropout", "StatelessRandomUniformV2",
         "dropout random numbers"),
        ("StatefulPartitionedCall/m/block1_conv1_1/Relu", "ReluGrad", profile.OTHER),
    ],
)
def test_each_op_counts_under_what_it_does(op_name, op_type, expected):
    assert profile.category(op_name, op_type) == expected


def test_an_op_belongs_to_the_layer_of_its_name_scope_and_to_no_layer_of_a_longer_name():
    names = ["block1_conv1", "block1_conv10"]
    assert profile.layer_of("m/block1_conv1_1/convolution", names) == "block1_conv1"
    assert profile.layer_of("m/block1_conv10/convolution", names) == "block1_conv10"
    assert profile.layer_of("m/block1_conv1x/convolution", names) is None


def test_profile_summary_adds_up_the_recorded_steps_op_time_by_category_and_layer():
    ops = profile.op_times(PROFILE)
    smoke = PRESETS["smoke"]
    trace = trace_layers(build_network(smoke), (smoke.image_size, smoke.image_size, 1))
    summary = profile.summarize(ops, trace, steps=1, batch_size=8, wall_ms_per_step=10.0)
    categories = pd.DataFrame(summary.categories).set_index("category")
    assert list(categories.index) == profile.ORDER
    assert summary.op_ms_per_step == pytest.approx(ops["seconds"].sum() * 1e3)
    assert categories["share"].sum() == pytest.approx(1.0)
    conv_types = ops["type"].str.contains("Conv2D") & ~ops["type"].str.contains("Backprop")
    assert categories.loc["convolution, forward", "ms_per_step"] == pytest.approx(
        ops.loc[conv_types, "seconds"].sum() * 1e3
    )
    layers = pd.DataFrame(summary.layers).set_index("layer")
    assert list(layers.index) == list(trace.loc[trace["macs"] > 0, "layer"])
    assert (layers["forward_ms"] > 0).all() and (layers["backward_ms"] > 0).all()
    fc1_macs = trace.set_index("layer").loc["fc1", "macs"]
    assert layers.loc["fc1", "forward_gflop"] == pytest.approx(2 * fc1_macs * 8 / 1e9)


# ---------------------------------------------------------------------------
# Targets.


def results_with(**measured):
    """Minimal results whose target measurements are the given ratios and minutes."""
    return {
        "pipeline": {
            "ours": {"own_rss_mb": 1.0, "first_batch_s": 1.0},
            "d2l": {"own_rss_mb": measured["memory"], "first_batch_s": measured["first_batch"]},
        },
        "train": {"ex_per_s": {"ours": measured["speed"], "d2l": 1.0}},
        "efficiency": {"fraction_of_matmul": measured["efficiency"]},
        # minutes=None: trained all its epochs without reaching the target; "absent": not run.
        "time_to_accuracy": None if measured["minutes"] == "absent" else {
            "seconds": None if measured["minutes"] is None else measured["minutes"] * 60},
    }


def test_targets_are_met_at_their_bounds_and_missed_just_beyond():
    met = report.target_table(results_with(memory=50, first_batch=50, speed=1.0, efficiency=0.75, minutes=10))
    assert met["met"].tolist() == [True] * 5
    missed = report.target_table(
        results_with(memory=49.9, first_batch=49.9, speed=0.99, efficiency=0.749, minutes=10.1)
    )
    assert missed["met"].tolist() == [False] * 5


def test_a_target_that_was_not_measured_is_neither_met_nor_missed():
    results = results_with(memory=60, first_batch=60, speed=1.1, efficiency=0.8, minutes="absent")
    assert report.target_table(results).set_index("target").loc["time_to_accuracy", "met"] is None


def test_a_target_accuracy_never_reached_is_missed():
    results = results_with(memory=60, first_batch=60, speed=1.1, efficiency=0.8, minutes=None)
    row = report.target_table(results).set_index("target").loc["time_to_accuracy"]
    assert row["met"] == False and pd.isna(row["measured"])  # noqa: E712 (a numpy bool)
    record = report.target_records(results)[-1]
    assert (record["target"], record["measured"], record["met"]) == ("time_to_accuracy", None, False)


def test_bad_arguments_are_refused_at_the_door():
    with pytest.raises(InvalidArgument, match=r"Received: kind='tpu'"):
        measure.measure_pipeline("tpu")
    with pytest.raises(InvalidArgument, match=r"Received: preset='fast'"):
        schema.BenchSettings(preset="fast")
    with pytest.raises(InvalidArgument, match=r"Received: num_examples=0"):
        schema.BenchSettings(num_examples=0)
    with pytest.raises(InvalidArgument, match=r"Received: source='web'"):
        schema.BenchSettings(source="web")
    with pytest.raises(InvalidArgument, match=r"Received: image_size=16"):
        schema.BenchSettings(preset="smoke", image_size=16)
    with pytest.raises(InvalidArgument, match=r"Received: image_size='224'"):
        measure.preprocessing("224")


@pytest.mark.parametrize("preset", ["cpu", "gpu", "gpu_recipe", "smoke"])
def test_a_short_run_is_each_presets_training_cut_to_one_epoch(preset):
    run_config = measure.short_run(PRESETS[preset], steps=5, warmup_steps=2, kind="bench")
    assert (run_config.epochs, run_config.train_examples) == (1, 7 * PRESETS[preset].batch_size)
    kept = ("name", "epochs", "warmup_epochs", "train_examples", "val_examples")
    assert run_config.replace(**{field: getattr(PRESETS[preset], field) for field in kept}) == PRESETS[preset]


@pytest.mark.parametrize("preset", ["cpu", "gpu", "gpu_recipe", "smoke"])
def test_the_plain_sgd_path_is_each_presets_network_with_d2ls_optimizer(preset):
    paths = run._training_paths(PRESETS[preset])
    path, plain = paths["ours_plain_sgd"]
    assert path == "ours"
    assert (plain.momentum, plain.nesterov, plain.lr_schedule, plain.warmup_epochs) == (0.0, False, "constant", 0)
    assert plain.replace(momentum=0.9) == PRESETS[preset].replace(
        momentum=0.9, nesterov=plain.nesterov, lr_schedule="constant", warmup_epochs=0)
