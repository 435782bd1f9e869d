"""vggcourse.explain: feature maps, channels, saliency, Grad-CAM and the learned space.

Saliency and Grad-CAM are checked on a tiny network whose weights make the answer known: only one
region of the image can move each class's score.
"""

import keras
import numpy as np
import pytest

import vggcourse  # noqa: F401  (imports TensorFlow quietly)
from vggcourse import InvalidArgument, explain
from vggcourse.pretrained import load_trained_vgg


@pytest.fixture(scope="module")
def net():
    return load_trained_vgg()


@pytest.fixture(scope="module")
def images():
    (_, _), (x_test, y_test) = vggcourse.load_fashion_mnist(source="sample")
    return x_test[:40], y_test[:40]


# ---------------------------------------------------------------------------
# A network with a known answer.
#
# Input 8x8x1. A 1x1 convolution with kernel [+1, -1] and no bias splits the
# image into channel 0 = relu(x) (bright pixels) and channel 1 = relu(-x)
# (dark pixels). Global average pooling and an identity dense layer make
# logit 0 the mean of channel 0 and logit 1 the mean of channel 1. So only the
# bright patch can move class 0, and only the dark patch class 1.

BRIGHT = (slice(0, 2), slice(0, 3))  # rows 0-1, columns 0-2
DARK = (slice(5, 8), slice(6, 8))    # rows 5-7, columns 6-7


def known_network():
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            keras.layers.Conv2D(2, 1, activation="relu", use_bias=False, name="split"),
            keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(2, use_bias=False, name="logits"),
        ],
        name="known",
    )
    model.get_layer("split").set_weights([np.array([1.0, -1.0]).reshape(1, 1, 1, 2)])
    model.get_layer("logits").set_weights([np.eye(2)])
    return model


def known_image():
    image = np.zeros((8, 8), dtype=np.float32)
    image[BRIGHT] = 100.0
    image[DARK] = -50.0
    return image[np.newaxis, ..., np.newaxis]


def region_mask(region, shape=(8, 8)):
    mask = np.zeros(shape, dtype=bool)
    mask[region] = True
    return mask


@pytest.mark.parametrize("class_index, region", [(0, BRIGHT), (1, DARK)])
def test_saliency_is_non_zero_exactly_where_the_class_score_can_move(class_index, region):
    heat = explain.saliency(known_network(), known_image(), class_index=class_index)[0]
    mask = region_mask(region)
    assert np.unravel_index(heat.argmax(), heat.shape) in set(zip(*np.nonzero(mask)))
    # d(mean of relu(+-x)) / dx = 1/64 inside the region, and 0 outside it.
    np.testing.assert_allclose(heat[mask], 1 / 64, rtol=1e-6)
    assert not heat[~mask].any()


@pytest.mark.parametrize("class_index, region", [(0, BRIGHT), (1, DARK)])
def test_grad_cam_peaks_in_the_only_region_that_moves_the_class_score(class_index, region):
    cam = explain.grad_cam(known_network(), known_image(), "split", class_index=class_index)[0]
    mask = region_mask(region)
    # Channel weights are 1/64 for the class's channel and 0 for the other,
    # so the map is the class's channel divided by 64: the region's values.
    value = 100.0 if class_index == 0 else 50.0
    np.testing.assert_allclose(cam[mask], value / 64, rtol=1e-6)
    assert not cam[~mask].any()


def test_saliency_and_grad_cam_explain_the_predicted_class_by_default():
    model, image = known_network(), known_image()
    assert int(np.argmax(model(image))) == 0  # 600/64 for class 0 against 300/64
    np.testing.assert_array_equal(explain.saliency(model, image),
                                  explain.saliency(model, image, class_index=0))
    np.testing.assert_array_equal(explain.grad_cam(model, image, "split"),
                                  explain.grad_cam(model, image, "split", class_index=[0]))


# ---------------------------------------------------------------------------
# The trained network.


def test_feature_maps_have_the_shapes_of_each_block_and_the_last_layer_gives_the_logits(
        net, images):
    x, _ = images
    maps = explain.feature_maps(net, x, ["block1", "block3_conv2", "block5", "fc2", "predictions"],
                                batch_size=16)
    assert maps["block1"].shape == (40, 16, 16, 16)
    assert maps["block3_conv2"].shape == (40, 8, 8, 64)
    assert maps["block5"].shape == (40, 1, 1, 128)
    assert maps["fc2"].shape == (40, 1024)
    np.testing.assert_allclose(maps["predictions"], net.predict(x[..., None], verbose=0),
                               rtol=1e-4, atol=1e-4)


def test_a_block_name_stands_for_its_pool(net, images):
    x, _ = images
    maps = explain.feature_maps(net, x[:3], ["block2", "block2_pool"])
    np.testing.assert_array_equal(maps["block2"], maps["block2_pool"])


def test_layer_names_lists_leaves_and_blocks_in_network_order(net):
    names = explain.layer_names(net)
    assert names[:5] == ["rescale", "resize", "block1_conv1", "block1_pool", "block1"]
    assert names.index("block5") < names.index("fc2") < names.index("predictions")


def test_top_activating_returns_the_largest_mean_activations_largest_first(net, images):
    x, _ = images
    index, values = explain.top_activating(net, x, "block3", 5, k=6)
    means = explain.feature_maps(net, x, "block3")["block3"][..., 5].mean(axis=(1, 2))
    np.testing.assert_array_equal(index, np.argsort(-means, kind="stable")[:6])
    np.testing.assert_allclose(values, means[index], rtol=1e-6)
    assert np.all(np.diff(values) <= 0)


def test_top_activating_each_ranks_every_layer_as_top_activating_does_alone(net, images):
    x, _ = images
    together = explain.top_activating_each(net, x, {"block1": 2, "block3": 5, "fc2": 7}, k=4)
    for name, channel in (("block1", 2), ("block3", 5), ("fc2", 7)):
        index, values = explain.top_activating(net, x, name, channel, k=4)
        np.testing.assert_array_equal(together[name][0], index)
        np.testing.assert_allclose(together[name][1], values, rtol=1e-6)


@pytest.mark.parametrize("channels", [{}, ["block1"], "block1"])
def test_top_activating_each_needs_a_dict_of_channels(net, images, channels):
    with pytest.raises(InvalidArgument, match=r"Expected `channels` to be a non-empty dict"):
        explain.top_activating_each(net, images[0], channels)


@pytest.mark.parametrize("layer", ["block3", "block5_conv2", "fc2", "predictions"])
def test_gradient_ascent_raises_the_channel_activation_above_its_start(net, layer):
    # A channel that is zero on the grey start has no gradient (its ReLU is
    # off everywhere), so take the channel most active on a grey image.
    grey = np.full((1, 28, 28, 1), 128.0)
    maps = explain.feature_maps(net, grey, layer)[layer][0]
    channel = int(maps.reshape(-1, maps.shape[-1]).mean(axis=0).argmax())
    image, trace = explain.maximize_activation(net, layer, channel, steps=20)
    assert image.shape == (28, 28, 1)
    assert 0 <= image.min() and image.max() <= 255
    assert len(trace) == 21
    assert trace[-1] > trace[0]
    # The trace is the channel's activation: recompute it for the final image.
    final = explain.feature_maps(net, image[None], layer)[layer][0, ..., channel].mean()
    np.testing.assert_allclose(trace[-1], final, rtol=1e-3, atol=1e-4)


def test_gradient_ascent_is_deterministic_for_a_seed_and_batches_several_channels(net):
    first, trace = explain.maximize_activation(net, "block4", 2, steps=5, seed=3)
    again, _ = explain.maximize_activation(net, "block4", 2, steps=5, seed=3)
    other, _ = explain.maximize_activation(net, "block4", 2, steps=5, seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    several, traces = explain.maximize_activation(net, "block4", [2, 9], steps=5, seed=3)
    assert several.shape == (2, 28, 28, 1) and traces.shape == (6, 2)
    assert np.all(traces[-1] > traces[0])
    np.testing.assert_allclose(traces[:, 0], trace, rtol=1e-3, atol=1e-3)


def test_grad_cam_on_the_trained_network_has_the_layers_resolution(net, images):
    x, y = images
    cams = explain.grad_cam(net, x[:4], "block4_conv2", class_index=y[:4])
    assert cams.shape == (4, 4, 4)
    assert (cams >= 0).all()
    assert explain.saliency(net, x[:4]).shape == (4, 28, 28)


# ---------------------------------------------------------------------------
# The learned space.


def test_pca_2d_finds_the_direction_of_largest_variance():
    rng = np.random.default_rng(0)
    along = rng.normal(0, 10, size=500)
    points = np.outer(along, [1, 1, 0]) / np.sqrt(2) + rng.normal(0, 0.1, size=(500, 3))
    coords, explained = explain.pca_2d(points + 5)
    assert coords.shape == (500, 2)
    assert explained[0] > 0.99 and explained[0] > explained[1]
    # The first coordinate is the position along the line (up to the mean).
    np.testing.assert_allclose(np.abs(np.corrcoef(coords[:, 0], along)[0, 1]), 1, atol=1e-3)
    np.testing.assert_allclose(coords.mean(axis=0), 0, atol=1e-9)


def test_pca_2d_matches_the_covariance_eigenvalues_and_fixes_the_signs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)) * [5, 3, 1, 1, 1]
    coords, explained = explain.pca_2d(x)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
    np.testing.assert_allclose(explained, eigenvalues[:2] / eigenvalues.sum(), rtol=1e-9)
    flipped, _ = explain.pca_2d(-x)
    # Negating the data negates the coordinates; the sign rule, not the
    # eigendecomposition, decides.
    np.testing.assert_allclose(flipped, -coords, atol=1e-9)


def test_nearest_neighbors_are_nearest_first_and_leave_out_the_query():
    points = np.array([[0.0, 0], [1, 0], [3, 0], [0, 2], [10, 10]])
    np.testing.assert_array_equal(explain.nearest_neighbors(points, [0, 4], k=2),
                                  [[1, 3], [2, 3]])


# ---------------------------------------------------------------------------
# Bad arguments, in Keras' style.


@pytest.mark.parametrize("call, error, message", [
    (lambda m, x: explain.feature_maps(m, x, "block9"), ValueError,
     "Received: layer_names='block9'"),
    (lambda m, x: explain.feature_maps(m, x, []), ValueError, "Received: layer_names=[]"),
    (lambda m, x: explain.feature_maps(m, x[0], "fc2"), ValueError,
     "Received: images.shape=(28, 28)"),
    (lambda m, x: explain.feature_maps(m, x[:, :20], "fc2"), ValueError,
     "Expected `images` of shape (n, 28, 28, 1)"),
    (lambda m, x: explain.feature_maps("net", x, "fc2"), TypeError,
     "Received: model of type str"),
    (lambda m, x: explain.grad_cam(m, x[:2], "fc2"), ValueError,
     "Received: layer_name='fc2', whose output has shape (2, 1024)"),
    (lambda m, x: explain.grad_cam(m, x[:2], "block5"), ValueError,
     "a 1x1 map holds no information"),
    (lambda m, x: explain.grad_cam(m, x[:2], 3), TypeError, "Received: layer_name=3"),
    (lambda m, x: explain.saliency(m, x[:2], class_index=10), ValueError,
     "Received: class_index=10"),
    (lambda m, x: explain.saliency(m, x[:2], class_index=[1, 2, 3]), ValueError,
     "one class per image"),
    (lambda m, x: explain.top_activating(m, x, "block2", 32), ValueError,
     "layer 'block2' has 32 channels. Received: channel=32"),
    (lambda m, x: explain.top_activating(m, x, "block2", 1.5), TypeError,
     "Received: channel=1.5"),
    (lambda m, x: explain.top_activating(m, x, "block2", 1, k=0), ValueError, "Received: k=0"),
    (lambda m, x: explain.maximize_activation(m, "block2", 1, steps=0), ValueError,
     "Received: steps=0"),
    (lambda m, x: explain.maximize_activation(m, "block2", 1, step_size=-1.0), ValueError,
     "Received: step_size=-1.0"),
    (lambda m, x: explain.maximize_activation(m, "block2", []), ValueError,
     "Received: channel=[]"),
    (lambda m, x: explain.maximize_activation(m, "block2", 1, start=np.zeros((32, 32))),
     ValueError, "Expected `images` of shape"),
])
def test_bad_arguments_name_the_argument_and_what_was_received(net, images, call, error,
                                                               message):
    with pytest.raises(error, match=None) as raised:
        call(net, images[0])
    assert message in str(raised.value)


@pytest.mark.parametrize("call, message", [
    (lambda: explain.pca_2d(np.zeros(5)), "Received: features with shape (5,)"),
    (lambda: explain.pca_2d(np.zeros((1, 3))), "n >= 2"),
    (lambda: explain.nearest_neighbors(np.zeros((4, 2)), [4]), "Received: queries=[4]"),
    (lambda: explain.nearest_neighbors(np.zeros((4, 2)), [0], k=4), "Received: k=4"),
])
def test_bad_features_and_queries_are_refused(call, message):
    with pytest.raises(ValueError) as raised:
        call()
    assert message in str(raised.value)
