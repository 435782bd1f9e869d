"""Specifications for how VGG was trained and what came after: starting points, dense evaluation, the recipe."""

import math

import keras
import numpy as np
import pandas as pd
import pytest

import vggcourse
from vggcourse import VGG_ARCHS, InvalidArgument, budget, fully_conv, initialization, recipe, scale_arch, vgg


def _small_vgg(arch="vgg11", ratio=8, head="dense", batch_norm=False, size=32, seed=0):
    keras.utils.set_random_seed(seed)
    net = vgg(
        scale_arch(VGG_ARCHS[arch], ratio), num_classes=10, dense_units=32, head=head, batch_norm=batch_norm
    )
    net.build((None, size, size, 1))
    return net


def _model(arch="vgg16", ratio=8, batch_norm=False):
    config = vggcourse.PRESETS["smoke"].replace(arch=arch, ratio=ratio, batch_norm=batch_norm)
    model = vggcourse.build_model(config)
    model.build((None, 28, 28, 1))
    return model


# ---------------------------------------------------------------------------
# A fully convolutional VGG.


def test_fully_convolutional_vgg_gives_the_same_logits_at_the_training_size():
    net = _small_vgg()
    images = np.random.default_rng(0).random((4, 32, 32, 1), dtype="float32")
    fc = fully_conv.fully_convolutional(net, (32, 32, 1))
    scores, score_map = fully_conv.dense_evaluation(fc, images)
    assert score_map.shape == (4, 1, 1, 10)
    np.testing.assert_allclose(scores, net.predict(images, verbose=0), rtol=1e-5, atol=1e-5)


def test_fully_convolutional_fc1_is_a_convolution_as_large_as_the_map_it_reads():
    net = _small_vgg(size=64)
    fc = fully_conv.fully_convolutional(net, (64, 64, 1))
    kernels = {layer.name: layer.kernel.shape for layer in fc.layers if layer.name in ("fc1", "fc2", "predictions")}
    channels = VGG_ARCHS["vgg11"][-1][1] // 8
    assert kernels == {"fc1": (2, 2, channels, 32), "fc2": (1, 1, 32, 32), "predictions": (1, 1, 32, 10)}
    images = np.random.default_rng(1).random((2, 64, 64, 1), dtype="float32")
    np.testing.assert_allclose(
        fully_conv.dense_evaluation(fc, images)[0], net.predict(images, verbose=0), rtol=1e-5, atol=1e-5
    )


def test_a_larger_image_gives_a_map_of_class_scores_and_dense_evaluation_averages_it():
    # Five pools: each position of the map is 32 pixels further on. Its
    # convolutions also see some pixels of the neighbouring windows.
    net = _small_vgg()
    mosaic = np.random.default_rng(2).random((2, 64, 96, 1), dtype="float32")
    scores, score_map = fully_conv.dense_evaluation(fully_conv.fully_convolutional(net, (32, 32, 1)), mosaic)
    assert score_map.shape == (2, 2, 3, 10)
    np.testing.assert_allclose(scores, score_map.mean(axis=(1, 2)), rtol=1e-6)
    # A map of one position per window, each different.
    assert len({tuple(np.round(v, 6)) for v in score_map[0].reshape(6, 10)}) == 6


def test_fully_convolutional_keeps_batch_norm_statistics():
    net = _small_vgg(batch_norm=True)
    for layer in vggcourse.leaf_layers(net):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.1, "float32"))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 2.0, "float32"))
    images = np.random.default_rng(3).random((3, 32, 32, 1), dtype="float32")
    fc = fully_conv.fully_convolutional(net, (32, 32, 1))
    np.testing.assert_allclose(
        fully_conv.dense_evaluation(fc, images)[0], net.predict(images, verbose=0), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda: keras.Sequential([keras.layers.Dense(3)]), "Expected `net` to be a VGG built by vggcourse.vgg()"),
        (lambda: _small_vgg(head="gap"), r"with the dense head \(head='dense'\)"),
        (lambda: vgg(scale_arch(VGG_ARCHS["vgg11"], 8), num_classes=10), "Received: a not built net"),
    ],
)
def test_fully_convolutional_refuses_networks_without_a_dense_head(make, says):
    with pytest.raises(InvalidArgument, match=says):
        fully_conv.fully_convolutional(make(), (32, 32, 1))


def test_fully_convolutional_refuses_a_training_size_that_is_not_square():
    with pytest.raises(InvalidArgument, match=r"square training size.*input_shape=\(32, 64, 1\)"):
        fully_conv.fully_convolutional(_small_vgg(), (32, 64, 1))
    with pytest.raises(InvalidArgument, match=r"at least 32 pixels square.*input_shape=\(16, 16, 1\)"):
        fully_conv.fully_convolutional(_small_vgg(), (16, 16, 1))
    with pytest.raises(InvalidArgument, match=r"fc1 reads 64 values, but at input_shape=\(64, 64, 1\) a 2x2x64"):
        fully_conv.fully_convolutional(_small_vgg(), (64, 64, 1))


def test_dense_evaluation_wants_a_batch_of_images():
    fc = fully_conv.fully_convolutional(_small_vgg(), (32, 32, 1))
    with pytest.raises(InvalidArgument, match=r"Received: images of shape \(32, 32, 1\)"):
        fully_conv.dense_evaluation(fc, np.zeros((32, 32, 1)))


# ---------------------------------------------------------------------------
# Starting points.


def _kernels(model):
    return {
        layer.name: layer.get_weights()
        for layer in vggcourse.leaf_layers(model.get_layer("vgg"))
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
    }


@pytest.mark.parametrize(
    "start, std_of",
    [
        ("normal_0.01", lambda fan_in, fan_out: 0.01),
        ("normal_0.1", lambda fan_in, fan_out: 0.1),
        ("he", lambda fan_in, fan_out: math.sqrt(2 / fan_in)),
        ("glorot", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out))),
    ],
)
def test_initialize_draws_each_kernel_with_its_spread_and_zero_biases(start, std_of):
    model = initialization.initialize(_model(ratio=4), start, seed=0)
    for name, (kernel, bias) in _kernels(model).items():
        fan_in = math.prod(kernel.shape[:-1])
        fan_out = kernel.shape[-1] * math.prod(kernel.shape[:-2])
        assert np.all(bias == 0), name
        assert abs(kernel.mean()) < 5 * std_of(fan_in, fan_out) / math.sqrt(kernel.size), name
        assert kernel.std() == pytest.approx(std_of(fan_in, fan_out), rel=0.1), name


def test_initialize_is_seeded():
    first = _kernels(initialization.initialize(_model(), "he", seed=3))
    again = _kernels(initialization.initialize(_model(), "he", seed=3))
    other = _kernels(initialization.initialize(_model(), "he", seed=4))
    assert all(np.array_equal(first[name][0], again[name][0]) for name in first)
    assert not np.array_equal(first["block1_conv1"][0], other["block1_conv1"][0])


def test_vgg11_copy_takes_the_papers_seven_layers_from_the_source_and_draws_the_rest():
    source = _model(arch="vgg11")
    initialization.initialize(source, "he", seed=1)
    model = initialization.initialize(_model(arch="vgg16"), "vgg11_copy", seed=0, source=source)
    theirs, ours = _kernels(source), _kernels(model)
    for name in ours:
        copied = all(np.array_equal(a, b) for a, b in zip(ours[name], theirs.get(name, [None, None])))
        assert copied == (name in initialization.PAPER_COPIED_LAYERS), name
    # The paper's "first four convolutional layers" of net A, and its three dense layers.
    vgg11_convs = [name for name in theirs if "conv" in name]
    assert list(initialization.PAPER_COPIED_LAYERS[:4]) == vgg11_convs[:4]
    assert initialization.PAPER_COPIED_LAYERS[4:] == ("fc1", "fc2", "predictions")
    assert ours["block1_conv2"][0].std() == pytest.approx(0.01, rel=0.1)


def test_copy_layers_refuses_layers_of_other_shapes_and_missing_layers():
    narrow, wide = _model(arch="vgg11", ratio=8), _model(arch="vgg16", ratio=4)
    with pytest.raises(InvalidArgument, match=r"Cannot copy layer `block1_conv1`: its weights have shapes"):
        initialization.copy_layers(wide, narrow)
    with pytest.raises(InvalidArgument, match=r"Cannot copy layer `block3_conv3`: both networks must have it"):
        initialization.copy_layers(_model(arch="vgg11"), _model(arch="vgg16"), names=["block3_conv3"])


@pytest.mark.parametrize(
    "kwargs, says",
    [
        (dict(start="lecun"), r"Expected `start` to be one of .*Received: start='lecun'"),
        (dict(start="vgg11_copy"), r"Expected `source` \(a trained VGG-11\) with start='vgg11_copy'"),
        (dict(start="he", source="model"), r"Received: start='he', source=a model"),
        (dict(start="he", seed=-1), r"Received: seed=-1"),
    ],
)
def test_initialize_refuses_bad_arguments(kwargs, says):
    with pytest.raises(InvalidArgument, match=says):
        initialization.initialize(_model(), **kwargs)


def test_initialize_wants_a_vgg():
    with pytest.raises(InvalidArgument, match=r"Expected `net` to be a VGG network or a model that holds one"):
        initialization.initialize(keras.Sequential([keras.layers.Dense(2)]), "he")


def test_activation_scales_shrink_layer_after_layer_from_a_fixed_small_spread_and_not_from_he():
    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28), dtype=np.uint8)
    small = initialization.activation_scales(initialization.initialize(_model(ratio=4), "normal_0.01"), images)
    he = initialization.activation_scales(initialization.initialize(_model(ratio=4), "he"), images)
    assert list(small.index) == list(_kernels(_model(ratio=4)))
    assert len(small) == 16
    # Each layer of N(0, 0.01^2) multiplies the scale by about 0.01 * sqrt(fan_in / 2) < 1.
    assert (small.diff().dropna() < 0).all()
    assert small.iloc[-1] < 1e-12 * small.iloc[0]
    assert 0.1 < he.iloc[-1] / he.iloc[0] < 10


def test_first_steps_from_a_small_spread_sit_at_ln_10_and_he_leaves_it():
    images = np.random.default_rng(0).integers(0, 256, (256, 28, 28), dtype=np.uint8)
    labels = np.arange(256) % 10
    data = ((images, labels), None)
    # A warm-up in the config does not apply: a few steps run at its rate.
    config = vggcourse.PRESETS["smoke"].replace(arch="vgg16", ratio=8, warmup_epochs=1)
    losses = initialization.first_steps(config, data, "normal_0.01", steps=4)
    assert list(losses.index) == [1, 2, 3, 4]
    # Only the output layer's biases move: the logits stay within a hair of 0.
    np.testing.assert_allclose(losses, math.log(10), atol=2e-3)
    he = initialization.first_steps(config, data, "he", steps=4)
    assert np.abs(he.to_numpy() - math.log(10)).max() > 5e-2


def test_first_steps_stop_at_the_first_loss_that_is_not_finite():
    images = np.random.default_rng(0).integers(0, 256, (256, 28, 28), dtype=np.uint8)
    data = ((images, np.arange(256) % 10), None)
    # N(0, 0.1^2) makes each layer of VGG-16 / 4 multiply the scale by up to
    # 0.1 * sqrt(fan_in / 2) = 3.4: the first update is huge.
    config = vggcourse.PRESETS["cpu"].replace(arch="vgg16", batch_size=32)
    losses = initialization.first_steps(config, data, "normal_0.1", steps=8)
    assert len(losses) < 8
    assert np.isfinite(losses).all()


def test_first_steps_refuse_more_steps_than_one_epoch():
    data = ((np.zeros((64, 28, 28), np.uint8), np.zeros(64, int)), None)
    with pytest.raises(InvalidArgument, match=r"Received: steps=3"):
        initialization.first_steps(vggcourse.PRESETS["smoke"], data, "he", steps=3)


# ---------------------------------------------------------------------------
# The paper's recipe beside the presets.


def test_recipe_table_sets_the_paper_beside_each_preset():
    table = recipe.recipe_table()
    assert list(table.columns) == ["VGG paper", "course: gpu", "course: cpu"]
    assert table.loc["batch size", "VGG paper"] == "256"
    assert table.loc["batch size", "course: cpu"] == str(vggcourse.PRESETS["cpu"].batch_size)
    assert table.loc["length", "VGG paper"] == "370K iterations (74 epochs)"
    assert table.loc["length", "course: gpu"] == f"{vggcourse.PRESETS['gpu'].epochs} epochs"
    assert not table.isna().any().any()


def test_recipe_table_describes_a_gap_head_without_dropout():
    table = recipe.recipe_table({"gap": vggcourse.PRESETS["cpu"].replace(head="gap")})
    assert table.loc["dropout", "course: gap"] == "none (no fc1, fc2)"
    assert isinstance(table, pd.DataFrame)


def test_recipe_table_wants_train_configs():
    with pytest.raises(InvalidArgument, match=r"Received: presets\['cpu'\] of type dict"):
        recipe.recipe_table({"cpu": {}})


# ---------------------------------------------------------------------------
# Training for a fixed time.


def _tiny_data(n=64):
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10)


def test_train_for_runs_every_epoch_when_the_budget_allows_and_logs_each():
    config = vggcourse.PRESETS["smoke"].replace(epochs=2, batch_size=32, warmup_epochs=1, flip=True)
    run = budget.train_for(config, _tiny_data(), _tiny_data(20), seconds=1e6)
    assert run.steps == 4
    assert list(run.curve.index) == [1, 2]
    assert list(run.curve["steps"]) == [2, 4]
    assert run.val_accuracy == run.curve["val_accuracy"].iloc[-1]
    assert 0 <= run.val_accuracy <= 1
    assert run.params == vggcourse.build_model(config).count_params()
    # A constant rate, from the first step: the budget decides the steps.
    assert (run.config.lr_schedule, run.config.warmup_epochs, run.config.flip) == ("constant", 0, True)


def test_train_for_draws_the_weights_of_the_start_it_is_given(monkeypatch):
    starts = []

    def spy(model, start, *, seed=0, source=None):
        starts.append((start, seed))
        return model

    monkeypatch.setattr(budget, "initialize", spy)
    config = vggcourse.PRESETS["smoke"].replace(epochs=1, batch_size=32, seed=5)
    budget.train_for(config, _tiny_data(), _tiny_data(20), seconds=1e-9, start="he")
    assert starts == [("he", 5)]


def test_train_for_stops_at_the_first_step_that_ends_past_the_budget_and_still_validates():
    config = vggcourse.PRESETS["smoke"].replace(epochs=3, batch_size=8)
    run = budget.train_for(config, _tiny_data(), _tiny_data(20), seconds=1e-9)
    assert run.steps == 1
    assert len(run.curve) == 1 and not math.isnan(run.val_accuracy)


@pytest.mark.parametrize(
    "config, seconds, says",
    [
        ({}, 1.0, r"Expected `config` to be a TrainConfig. Received: config of type dict"),
        (vggcourse.PRESETS["smoke"], 0, r"Received: seconds=0"),
        (vggcourse.PRESETS["smoke"], "60", r"Received: seconds='60'"),
    ],
)
def test_train_for_refuses_bad_arguments(config, seconds, says):
    with pytest.raises(InvalidArgument, match=says):
        budget.train_for(config, _tiny_data(), _tiny_data(20), seconds)


def test_experiment_size_is_the_full_one_unless_the_smoke_variable_is_set(monkeypatch):
    monkeypatch.setenv(vggcourse.SMOKE_VARIABLE, "0")
    assert vggcourse.experiment_size(150, smoke=3) == 150
    monkeypatch.setenv(vggcourse.SMOKE_VARIABLE, "1")
    assert vggcourse.experiment_size(150, smoke=3) == 3


def test_the_papers_recipe_fits_a_table_column_of_60_characters():
    assert max(len(value) for value in recipe.PAPER_RECIPE.values()) <= 60
