"""Specifications for vggcourse.models: the paper's numbers, Keras parity, and argument checks."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import vggcourse
from vggcourse import VGG_ARCHS, InvalidArgument, scale_arch, vgg, vgg_block


def _built(net, input_shape):
    net.build(input_shape)
    return net


@functools.cache
def _imagenet_vgg(arch):
    """``arch`` as the paper and Keras' applications have it: 224x224x3 in, 1000 classes out.

    Built once per test process: each is half a gigabyte of weights to draw.
    """
    return _built(vgg(VGG_ARCHS[arch], num_classes=1000), (None, 224, 224, 3))


@pytest.fixture(scope="module", autouse=True)
def _free_imagenet_vggs():
    yield
    _imagenet_vgg.cache_clear()


# Paper Table 2 (133 / 133 / 138 / 144 M) to the last parameter, biases included, at
# 224x224x3 with 1000 classes; the same counts as keras.applications.
@pytest.mark.parametrize(
    "arch, expected",
    [
        ("vgg11", 132_863_336),
        ("vgg13", 133_047_848),
        ("vgg16", 138_357_544),
        ("vgg19", 143_667_240),
    ],
)
def test_parameter_count_matches_paper_table2(arch, expected):
    assert _imagenet_vgg(arch).count_params() == expected


def _trainable_params(net):
    return sum(int(np.prod(w.shape)) for w in net.trainable_weights)


def test_vgg16_with_batch_norm_counts_like_torchvision_vgg16_bn():
    # torchvision's vgg16_bn: 138,365,992 parameters, all trained; batch norm
    # adds a scale and an offset per channel of each of its 13 convolutions.
    net = _built(vgg(VGG_ARCHS["vgg16"], num_classes=1000, batch_norm=True), (None, 224, 224, 3))
    assert _trainable_params(net) == 138_365_992
    convs = sum(n for n, _ in VGG_ARCHS["vgg16"])
    channels = sum(n * c for n, c in VGG_ARCHS["vgg16"])
    assert convs == 13
    # Keras also counts the moving mean and variance, which are not trained.
    assert net.count_params() == 138_357_544 + 4 * channels


def test_batch_norm_block_is_conv_then_bn_then_relu_then_pool():
    block = vgg_block(2, 8, batch_norm=True, name="block3")
    names = [layer.name for layer in block.layers]
    assert names == [
        "block3_conv1", "block3_bn1", "block3_relu1",
        "block3_conv2", "block3_bn2", "block3_relu2",
        "block3_pool",
    ]
    assert all(layer.get_config()["activation"] == "linear" for layer in block.layers[::3][:2])
    assert vggcourse.vgg_by_name("vgg16", batch_norm=True).name == "vgg16_bn"


def test_gap_head_replaces_fc1_and_fc2_with_global_average_pooling():
    net = _built(vgg(VGG_ARCHS["vgg16"], num_classes=1000, head="gap"), (None, 224, 224, 3))
    convs = 14_714_688  # VGG-16's 13 convolutions (Keras' include_top=False)
    assert net.count_params() == convs + 512 * 1000 + 1000 == 15_227_688
    assert [layer.name for layer in net.layers[-1].layers] == ["avg_pool", "predictions"]
    # Global pooling takes any input size of at least 32 px.
    assert net(np.zeros((1, 64, 48, 3), "float32")).shape == (1, 1000)


def test_default_options_build_the_same_network_as_before():
    assert vgg(VGG_ARCHS["vgg11"]).get_config() == vgg(
        VGG_ARCHS["vgg11"], batch_norm=False, head="dense"
    ).get_config()


def test_vgg_archs_are_paper_table1_configurations():
    assert VGG_ARCHS["vgg11"] == ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
    conv_layers = {name: sum(n for n, _ in arch) for name, arch in VGG_ARCHS.items()}
    # Weight layers in Table 1 are these convolutions plus three fully connected layers.
    assert {name: n + 3 for name, n in conv_layers.items()} == {
        "vgg11": 11, "vgg13": 13, "vgg16": 16, "vgg19": 19,
    }


def test_vgg_archs_cannot_be_changed():
    with pytest.raises(TypeError, match="does not support item assignment"):
        VGG_ARCHS["vgg11"] = ((1, 8),)


def test_vgg11_block_by_block_shapes_match_seed_table():
    net = vgg(VGG_ARCHS["vgg11"])
    X = tf.random.uniform((1, 224, 224, 1))
    shapes = []
    for blk in net.layers:
        X = blk(X)
        shapes.append((blk.name, tuple(X.shape)))
    assert shapes == [
        ("block1", (1, 112, 112, 64)),
        ("block2", (1, 56, 56, 128)),
        ("block3", (1, 28, 28, 256)),
        ("block4", (1, 14, 14, 512)),
        ("block5", (1, 7, 7, 512)),
        ("classifier", (1, 10)),
    ]


def test_vgg_layers_are_blocks_then_one_classifier_that_outputs_logits():
    net = vgg(VGG_ARCHS["vgg11"])
    assert [layer.name for layer in net.layers] == [
        "block1", "block2", "block3", "block4", "block5", "classifier",
    ]
    classifier = net.layers[-1]
    assert [type(layer).__name__ for layer in classifier.layers] == [
        "Flatten", "Dense", "Dropout", "Dense", "Dropout", "Dense",
    ]
    assert [layer.name for layer in classifier.layers] == [
        "flatten", "fc1", "fc1_dropout", "fc2", "fc2_dropout", "predictions",
    ]
    predictions = classifier.layers[-1]
    assert predictions.activation is keras.activations.linear
    assert predictions.dtype_policy.compute_dtype == "float32"


def test_vgg_block_layers_and_names_follow_keras_vgg16():
    blk = vgg_block(2, 128, name="block2")
    assert [layer.name for layer in blk.layers] == ["block2_conv1", "block2_conv2", "block2_pool"]
    for conv in blk.layers[:-1]:
        assert conv.kernel_size == (3, 3)
        assert conv.padding == "same"
        assert conv.filters == 128
        assert conv.activation is keras.activations.relu
    pool = blk.layers[-1]
    assert pool.pool_size == (2, 2) and pool.strides == (2, 2)
    assert tuple(blk(tf.zeros((1, 56, 56, 64))).shape) == (1, 28, 28, 128)


@pytest.mark.parametrize(
    "arch, application",
    [("vgg16", keras.applications.VGG16), ("vgg19", keras.applications.VGG19)],
)
def test_matches_keras_applications_layer_by_layer(arch, application):
    reference = application(weights=None)
    ours = _imagenet_vgg(arch)
    theirs = [layer for layer in reference.layers if not isinstance(layer, keras.layers.InputLayer)]
    ours_leaves = [layer for layer in vggcourse.leaf_layers(ours) if not isinstance(layer, keras.layers.Dropout)]
    # Keras' fc layers carry no dropout; everything else matches one for one, by name too.
    assert [layer.name for layer in ours_leaves] == [layer.name for layer in theirs]
    shape = (1, 224, 224, 3)
    for mine, keras_layer in zip(ours_leaves, theirs):
        shape = mine.compute_output_shape(shape)
        assert tuple(shape)[1:] == tuple(keras_layer.output.shape)[1:], mine.name
        assert mine.count_params() == keras_layer.count_params(), mine.name
    assert ours.count_params() == reference.count_params()


def test_scale_arch_divides_channels_like_d2l_small_conv_arch():
    assert scale_arch(VGG_ARCHS["vgg11"], 4) == ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))
    assert scale_arch([[1, 64]], 1) == ((1, 64),)


def test_min_input_size_is_two_to_the_number_of_pools():
    assert vggcourse.min_input_size(VGG_ARCHS["vgg11"]) == 32
    assert vggcourse.min_input_size(((1, 8), (1, 8))) == 4


def test_assert_same_architecture_catches_a_different_layer():
    vggcourse.assert_same_architecture(vgg_block(2, 8), vgg_block(2, 8, name="other"), (1, 8, 8, 3))
    with pytest.raises(AssertionError, match="differs"):
        vggcourse.assert_same_architecture(vgg_block(2, 8), vgg_block(2, 16), (1, 8, 8, 3))
    with pytest.raises(AssertionError, match="leaf layers"):
        vggcourse.assert_same_architecture(vgg_block(2, 8), vgg_block(1, 8), (1, 8, 8, 3))


def test_model_round_trips_through_keras_saving(tmp_path):
    net = vgg(scale_arch(VGG_ARCHS["vgg11"], 16), dense_units=32)
    X = np.random.default_rng(0).uniform(size=(2, 32, 32, 1)).astype("float32")
    expected = net(X)
    path = tmp_path / "net.keras"
    net.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(restored(X), expected)


# --- Bad arguments are caught at the door, with Keras-style messages. -------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_convs=0, num_channels=8), "Expected `num_convs` to be a positive integer. Received: num_convs=0"),
        (dict(num_convs=-1, num_channels=8), "Received: num_convs=-1"),
        (dict(num_convs=1.5, num_channels=8), "Received: num_convs=1.5 of type float"),
        (dict(num_convs="2", num_channels=8), "Received: num_convs='2' of type str"),
        (dict(num_convs=True, num_channels=8), "Received: num_convs=True of type bool"),
        (
            dict(num_convs=2, num_channels=0),
            "Expected `num_channels` to be a positive integer. Received: num_channels=0",
        ),
        (dict(num_convs=2, num_channels=None), "Received: num_channels=None of type NoneType"),
        (dict(num_convs=2, num_channels=8, name=""), "Received: name=''"),
        (dict(num_convs=2, num_channels=8, batch_norm=None), "Received: batch_norm=None"),
    ],
)
def test_vgg_block_rejects_bad_arguments(kwargs, message):
    with pytest.raises(InvalidArgument) as info:
        vgg_block(**kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "conv_arch, message",
    [
        ((), "Received: conv_arch=()"),
        ([], "Received: conv_arch=[]"),
        (None, "Received: conv_arch=None"),
        ("vgg11", "Received: conv_arch='vgg11'"),
        (64, "Received: conv_arch=64"),
        (((1, 64), (2,)), "Received: conv_arch[1]=(2,)"),
        (((1, 64), (1, 2, 3)), "Received: conv_arch[1]=(1, 2, 3)"),
        (((1, 64), 5), "Received: conv_arch[1]=5"),
        (((0, 64),), "Received: conv_arch[0][0] (num_convs)=0"),
        (((1, -64),), "Received: conv_arch[0][1] (num_channels)=-64"),
        (((1, 64.0),), "Received: conv_arch[0][1] (num_channels)=64.0 of type float"),
    ],
)
def test_vgg_rejects_malformed_conv_arch(conv_arch, message):
    with pytest.raises(InvalidArgument) as info:
        vgg(conv_arch)
    assert "Expected `conv_arch`" in str(info.value) or "Expected `conv_arch[" in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_classes=0), "Expected `num_classes` to be a positive integer. Received: num_classes=0"),
        (dict(num_classes=10.0), "Received: num_classes=10.0 of type float"),
        (dict(dense_units=0), "Expected `dense_units` to be a positive integer. Received: dense_units=0"),
        (dict(dense_units="4096"), "Received: dense_units='4096' of type str"),
        (dict(dropout=1.0), "Expected `dropout` to be a float in [0, 1). Received: dropout=1.0"),
        (dict(dropout=-0.1), "Received: dropout=-0.1"),
        (dict(dropout="0.5"), "Received: dropout='0.5' of type str"),
        (dict(dropout=None), "Received: dropout=None of type NoneType"),
        (dict(batch_norm=1), "Expected `batch_norm` to be True or False. Received: batch_norm=1"),
        (dict(batch_norm="yes"), "Received: batch_norm='yes' of type str"),
        (dict(head="max"), "Expected `head` to be one of 'dense', 'gap'. Received: head='max'"),
        (dict(head=None), "Received: head=None"),
    ],
)
def test_vgg_rejects_bad_classifier_arguments(kwargs, message):
    with pytest.raises(InvalidArgument) as info:
        vgg(VGG_ARCHS["vgg11"], **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "ratio, message",
    [
        (0, "Expected `ratio` to be a positive integer. Received: ratio=0"),
        (2.5, "Received: ratio=2.5 of type float"),
        (128, "64 // 128 = 0 channels. Expected `ratio` <= 64. Received: ratio=128"),
    ],
)
def test_scale_arch_rejects_bad_ratio(ratio, message):
    with pytest.raises(InvalidArgument) as info:
        scale_arch(VGG_ARCHS["vgg11"], ratio)
    assert message in str(info.value)


def test_scale_arch_accepts_largest_ratio_that_keeps_a_channel():
    assert scale_arch(VGG_ARCHS["vgg11"], 64)[0] == (1, 1)


def test_input_too_small_for_five_pools_names_minimum_size_when_called():
    net = vgg(VGG_ARCHS["vgg11"])
    with pytest.raises(InvalidArgument, match=r"too small: 16x16 pixels.*minimum input size is 32x32"):
        net(tf.zeros((1, 16, 16, 1)))


def test_input_too_small_for_five_pools_names_minimum_size_when_built():
    net = vgg(VGG_ARCHS["vgg11"])
    with pytest.raises(InvalidArgument, match=r"minimum input size is 32x32.*input_shape=\(None, 31, 64, 1\)"):
        net.build((None, 31, 64, 1))


def test_input_too_small_is_caught_after_building_at_a_valid_size():
    net = _built(vgg(VGG_ARCHS["vgg11"]), (None, 32, 32, 1))
    with pytest.raises(InvalidArgument, match="minimum input size is 32x32"):
        net(tf.zeros((1, 16, 16, 1)))


def test_block_by_block_call_names_the_block_that_runs_out_of_pixels():
    net = vgg(VGG_ARCHS["vgg11"])
    X = tf.zeros((1, 16, 16, 1))
    with pytest.raises(InvalidArgument, match=r"input to `block5` is too small: 1x1"):
        for blk in net.layers:
            X = blk(X)


def test_smallest_valid_input_runs():
    net = vgg(scale_arch(VGG_ARCHS["vgg11"], 16), dense_units=16)
    assert tuple(net(tf.zeros((2, 32, 32, 1))).shape) == (2, 10)


def test_non_4d_input_is_rejected_with_its_shape():
    net = vgg(VGG_ARCHS["vgg11"])
    with pytest.raises(InvalidArgument, match=r"Expected a 4D input.*Received: input_shape=\(224, 224, 1\)"):
        net.build((224, 224, 1))
