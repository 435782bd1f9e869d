"""The benchmark and its d2l baseline: what they measure, and that the command writes every result.

No test asserts on a timing: they depend on the machine and on what else runs on it.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from vggcourse import PRESETS, assert_same_architecture, baseline, bench, build_model, totals, trace_layers, vgg
from vggcourse.models import VGG_ARCHS, scale_arch

# Seconds, not minutes: a sliver of every measurement, time to accuracy included.
TINY = [
    "--size", "32", "--num-examples", "256", "--num-batches", "2", "--pipeline-repeats", "1",
    "--preset", "smoke", "--train-steps", "2", "--warmup-steps", "1", "--repeats", "1",
    "--matmul-size", "128", "--profile", "--time-to-accuracy", "--target-accuracy", "0.05",
]
TOP_KEYS = {"machine", "settings", "pipeline", "train", "efficiency", "profile", "time_to_accuracy", "targets"}


def check_every_key(results):
    assert TOP_KEYS <= set(results)
    assert {"cpu", "cores", "tensorflow", "device"} <= set(results["machine"])
    pipeline = results["pipeline"]
    assert pipeline["idle_rss_mb"] > 0
    for kind in ("ours", "d2l"):
        assert {"first_batch_s", "peak_rss_mb", "own_rss_mb", "batch_shape", "batch_dtype"} <= set(pipeline[kind])
    assert {"ours_ex_per_s", "ours_plain_sgd_ex_per_s", "d2l_ex_per_s"} <= set(results["train"])
    assert all(f"ours_{key}_ex_per_s" in results["train"] for key in bench.VARIANTS)
    assert {"convention", "macs_per_example", "achieved_gflops", "matmul_gflops", "ratio"} <= set(
        results["efficiency"]
    )
    assert {"wall_ms_per_step", "categories", "layers"} <= set(results["profile"])
    assert {"seconds", "target", "val_accuracy"} <= set(results["time_to_accuracy"])
    assert [row["target"] for row in results["targets"]] == [key for key, *_ in bench.TARGETS]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from vggcourse.cli import main

    path = tmp_path_factory.mktemp("bench") / "out" / "bench.json"
    assert main(["bench", *TINY, "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_bench_command_writes_every_key_of_the_results(tiny_run):
    check_every_key(tiny_run)


def test_both_pipelines_yield_what_the_network_sees(tiny_run):
    # The same batch for both: float32 images at the requested size, so the comparison is like for like.
    ours, d2l = tiny_run["pipeline"]["ours"], tiny_run["pipeline"]["d2l"]
    assert ours["batch_shape"] == d2l["batch_shape"] == [32, 32, 32, 1]
    assert ours["batch_dtype"] == d2l["batch_dtype"] == "float32"


def test_the_reference_run_shipped_with_the_package_has_every_key():
    results = bench.load_results()
    check_every_key(results)
    # The appendix quotes a run over the whole training set at d2l's image size.
    assert results["pipeline"]["num_examples"] == 60_000
    assert results["pipeline"]["image_size"] == 224
    assert results["time_to_accuracy"]["preset"] == "cpu"


def test_preprocessing_is_the_models_own_rescale_and_resize():
    config = PRESETS["smoke"]
    model = build_model(config)
    assert [layer.name for layer in model.layers[:2]] == ["rescale", "resize"]
    theirs = keras.Sequential([keras.Input((28, 28, 1), dtype="uint8"), *model.layers[:2]])
    assert_same_architecture(bench.preprocessing(config.image_size), theirs, (1, 28, 28, 1))


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
    net_fn = lambda: keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10)])  # noqa: E731
    recorded = []
    net = baseline.train_ch6(net_fn, train_iter, test_iter, 2, 0.1, "/CPU:0",
                             callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: recorded.append(e))])
    assert isinstance(net.optimizer, keras.optimizers.SGD) and float(net.optimizer.momentum) == 0.0
    assert net.loss.get_config()["from_logits"] is True
    assert recorded == [0, 1]


def test_efficiency_counts_three_passes_of_two_flops_per_traced_mac():
    config = PRESETS["cpu"]
    result = bench.efficiency(config, examples_per_second=1000.0, reference_gflops=100.0)
    net = vgg(scale_arch(VGG_ARCHS["vgg11"], config.ratio), dense_units=config.dense_units)
    macs = int(totals(trace_layers(net, (32, 32, 1)))["macs"])
    assert result["macs_per_example"] == macs
    assert result["train_flops_per_example"] == 6 * macs
    assert result["achieved_gflops"] == pytest.approx(1000 * 6 * macs / 1e9)
    assert result["ratio"] == pytest.approx(result["achieved_gflops"] / 100.0)


def test_step_timer_leaves_out_the_warm_up_steps():
    timer = bench._StepTimer(batch_size=10, warmup_steps=2)
    timer.ends = [5.0, 6.0, 6.5, 7.0, 7.5]  # Two slow warm-up steps, then 0.5 s per step.
    assert timer.examples_per_second == pytest.approx(20.0)


def results_with(**measured):
    """Minimal results whose target measurements are the given ratios and minutes."""
    return {
        "pipeline": {
            "ours": {"own_rss_mb": 1.0, "first_batch_s": 1.0},
            "d2l": {"own_rss_mb": measured["memory"], "first_batch_s": measured["first_batch"]},
        },
        "train": {"ours_ex_per_s": measured["speed"], "d2l_ex_per_s": 1.0},
        "efficiency": {"ratio": measured["efficiency"]},
        "time_to_accuracy": {"seconds": None if measured["minutes"] is None else measured["minutes"] * 60},
    }


def test_targets_are_met_at_their_bounds_and_missed_just_beyond():
    met = bench.target_table(results_with(memory=50, first_batch=50, speed=1.0, efficiency=0.75, minutes=15))
    assert met["met"].tolist() == [True] * 5
    missed = bench.target_table(
        results_with(memory=49.9, first_batch=49.9, speed=0.99, efficiency=0.749, minutes=15.1)
    )
    assert missed["met"].tolist() == [False] * 5


def test_a_target_that_was_not_measured_is_neither_met_nor_missed():
    table = bench.target_table(results_with(memory=60, first_batch=60, speed=1.1, efficiency=0.8, minutes=None))
    assert table.set_index("target").loc["time_to_accuracy", "met"] is None


def test_bad_arguments_are_refused_at_the_door():
    with pytest.raises(ValueError, match=r"Received: kind='tpu'"):
        bench.measure_pipeline("tpu")
    with pytest.raises(ValueError, match=r"Received: preset='fast'"):
        bench.run_bench(preset="fast")
    with pytest.raises(ValueError, match=r"Received: num_examples=0"):
        bench.run_bench(num_examples=0)
    with pytest.raises(TypeError, match=r"Received: image_size='224'"):
        bench.preprocessing("224")
