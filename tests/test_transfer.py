"""vggcourse.transfer: the transfer experiment and Keras' ImageNet VGG16 with a new head."""

import dataclasses

import keras
import numpy as np
import pytest
from runs import image_ids as ids
from runs import numbered_data

import vggcourse
from vggcourse import transfer

SMOKE = vggcourse.PRESETS["smoke"]


def test_the_splits_do_not_overlap_and_hold_the_sizes_asked_for():
    setup = dataclasses.replace(transfer.SETUPS["smoke"], labels_per_class=(3, 6),
                                val_per_class=5, source_per_class=20, test_per_class=4)
    split = transfer.split_classes(numbered_data(), setup)
    sets = {name: ids(x) for name, (x, _) in split.items()}
    names = list(sets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not sets[a] & sets[b], f"{a} and {b} share images"
    sizes = {name: np.bincount(y).tolist() for name, (_, y) in split.items()}
    assert sizes == {"source_val": [5] * 5, "source_train": [20] * 5, "target_val": [5] * 5,
                     "target_pool": [6] * 5, "target_test": [4] * 5}


def test_each_repeat_draws_its_own_labelled_images_from_the_pool_per_class():
    setup = transfer.SETUPS["smoke"]
    split = transfer.split_classes(numbered_data(), setup)
    pool = {image.tobytes() for image in split["target_pool"][0]}
    draws = [transfer._labelled(split, setup, 3, repeat) for repeat in (0, 1, 0)]
    for x, y in draws:
        assert np.bincount(y).tolist() == [3] * len(setup.target_classes)
        assert {image.tobytes() for image in x} <= pool
    (first, _), (second, _), (again, _) = draws
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)


def test_too_little_data_for_a_setup_is_reported():
    with pytest.raises(ValueError, match="Load the full data set"):
        transfer.split_classes(numbered_data(per_class_train=30), transfer.SETUPS["full"])


def test_the_frozen_network_copies_the_source_blocks_and_fine_tuning_leaves_the_source_alone():
    source = transfer.transfer_network(SMOKE, 5)
    model = transfer._with_new_head(source, SMOKE, 5, seed=0)
    for name in ("block1", "block5"):
        for ours, theirs in zip(model.get_layer(name).get_weights(),
                                source.get_layer("vgg").get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    head = model.get_layer("predictions")
    assert [w.name for w in model.trainable_weights] == [w.name for w in head.weights]
    transfer._unfreeze(model)
    assert len(model.trainable_weights) == len(model.weights)
    before = source.get_layer("vgg").get_layer("block1").get_weights()[0].copy()
    model.get_layer("block1").get_layer("block1_conv1").kernel.assign(
        np.zeros_like(before))
    np.testing.assert_array_equal(source.get_layer("vgg").get_layer("block1").get_weights()[0],
                                  before)


def test_the_experiment_runs_every_strategy_at_every_label_count():
    setup = dataclasses.replace(transfer.SETUPS["smoke"], labels_per_class=(2, 4))
    results = transfer.run_transfer_experiment(SMOKE, numbered_data(), setup, verbose=False)
    runs = results.runs
    assert len(runs) == 2 * 3
    counts = runs.groupby(["labels_per_class", "strategy"]).size()
    assert set(counts) == {1} and len(counts) == 6
    assert runs[["val_accuracy", "test_accuracy"]].apply(lambda c: c.between(0, 1)).all().all()
    assert list(results.summary().columns) == list(transfer.STRATEGIES)
    assert 0 <= results.source_val_accuracy <= 1


@pytest.mark.parametrize("changes, message", [
    ({"target_classes": (4, 5, 6, 7, 8)}, "not to overlap"),
    ({"labels_per_class": (100, 10)}, "increasing counts"),
    ({"source_classes": (0, 1, 10)}, "class indices in [0, 10)"),
    ({"checks": 0}, "Received: checks=0"),
    ({"fine_tune_factor": 2.0}, "Received: fine_tune_factor=2.0"),
])
def test_a_bad_setup_is_refused(changes, message):
    with pytest.raises(ValueError) as raised:
        dataclasses.replace(transfer.SETUPS["full"], **changes)
    assert message in str(raised.value)


def test_the_setup_follows_the_training_preset():
    assert transfer.setup_for(SMOKE).name == "smoke"
    assert transfer.setup_for(vggcourse.PRESETS["cpu"]).name == "full"


# ---------------------------------------------------------------------------
# Keras' VGG16, with random weights: the code path of the chapter's Colab cell.


@pytest.fixture(scope="module")
def vgg16_model():
    return transfer.vgg16_transfer_model(5, image_size=32, weights=None)


def test_vgg16_base_is_frozen_and_only_the_new_head_trains(vgg16_model):
    model, base = vgg16_model
    assert base.name == "vgg16" and not base.trainable
    assert base.count_params() == 14_714_688  # keras.applications.VGG16(include_top=False)
    head = model.get_layer("predictions")
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == (512 + 1) * 5
    assert [w.name for w in model.trainable_weights] == [w.name for w in head.weights]


def test_vgg16_sees_what_preprocess_input_makes_of_the_grey_image(vgg16_model):
    model, base = vgg16_model
    x = np.random.default_rng(0).integers(0, 256, size=(2, 28, 28, 1), dtype=np.uint8)
    grey = keras.layers.Resizing(32, 32)(x.astype("float32"))
    rgb = keras.ops.concatenate([grey, grey, grey], axis=-1)
    features = base(keras.applications.vgg16.preprocess_input(rgb), training=False)
    expected = model.get_layer("predictions")(features)
    # Random weights and 0-255 inputs make large activations: compare to their scale.
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(model(x), expected, rtol=0, atol=1e-2 * scale)
    # Without preprocess_input, the base would see other numbers.
    raw = model.get_layer("predictions")(base(rgb, training=False))
    assert np.abs(np.asarray(raw) - np.asarray(expected)).max() > 0.1 * scale


def test_vgg16_fine_tuning_unfreezes_the_base(vgg16_model):
    model, base = transfer.vgg16_transfer_model(3, image_size=32, weights=None, pooling="max")
    base.trainable = True
    assert len(model.trainable_weights) == len(model.weights)
    model.compile(keras.optimizers.Adam(1e-5),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.zeros((4, 28, 28, 1), dtype=np.uint8)
    history = model.fit(x, np.arange(4) % 3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("kwargs, message", [
    ({"weights": "places365"}, "Received: weights='places365'"),
    ({"pooling": "sum"}, "Received: pooling='sum'"),
    ({"image_size": 16}, "Received: image_size=16"),
    ({"num_classes": 0}, "Received: num_classes=0"),
])
def test_vgg16_bad_arguments_are_refused(kwargs, message):
    arguments = {"num_classes": 5, "weights": None, **kwargs}
    with pytest.raises(ValueError) as raised:
        transfer.vgg16_transfer_model(**arguments)
    assert message in str(raised.value)
