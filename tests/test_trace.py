"""Specifications for vggcourse.trace: counts by hand, the published VGG figures, argument checks."""

import keras
import pandas as pd
import pytest

import vggcourse
from vggcourse import (
    VGG_ARCHS,
    InvalidArgument,
    layer_macs,
    layer_params,
    receptive_field,
    scale_arch,
    totals,
    trace_layers,
    training_memory,
    vgg,
)


def _conv(filters=256, kernel_size=3, **kwargs):
    return keras.layers.Conv2D(filters, kernel_size, padding="same", **kwargs)


# ---------------------------------------------------------------------------
# One layer, by hand.


def test_conv_params_are_kernel_weights_plus_one_bias_per_filter():
    # VGG-16's block3_conv1: 128 channels in, 256 out.
    assert layer_params(_conv(256), (56, 56, 128)) == 3 * 3 * 128 * 256 + 256
    assert layer_params(_conv(256, use_bias=False), (56, 56, 128)) == 3 * 3 * 128 * 256


def test_conv_macs_are_one_kernel_per_output_value():
    assert layer_macs(_conv(256), (56, 56, 128)) == 56 * 56 * 256 * (3 * 3 * 128)


def test_conv_macs_follow_stride_and_valid_padding():
    layer = keras.layers.Conv2D(8, 5, strides=2, padding="valid")
    # (32 - 5) // 2 + 1 = 14 outputs per side.
    assert layer_macs(layer, (32, 32, 3)) == 14 * 14 * 8 * (5 * 5 * 3)


def test_dense_params_and_macs_match_hand_count():
    # VGG-16's fc1 after Flatten of 7x7x512.
    fc1 = keras.layers.Dense(4096)
    assert layer_params(fc1, (7 * 7 * 512,)) == 25088 * 4096 + 4096
    assert layer_macs(fc1, (7 * 7 * 512,)) == 25088 * 4096
    assert layer_params(fc1, (None, 25088)) == 25088 * 4096 + 4096


def test_layers_without_weights_have_no_params_and_no_macs():
    for layer in (
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
    ):
        assert layer_params(layer, (14, 14, 512)) == 0
        assert layer_macs(layer, (14, 14, 512)) == 0


@pytest.mark.parametrize(
    "layer, input_shape",
    [
        (_conv(16), (20, 20, 3)),
        (keras.layers.Conv2D(6, (5, 5), strides=2), (31, 31, 4)),
        (keras.layers.Dense(7), (11,)),
        (keras.layers.BatchNormalization(), (9, 9, 12)),
        (keras.layers.BatchNormalization(center=False), (9, 9, 12)),
    ],
)
def test_layer_params_equal_keras_count_params(layer, input_shape):
    layer.build((None, *input_shape))
    assert layer_params(layer, input_shape) == layer.count_params()


# ---------------------------------------------------------------------------
# Receptive fields.


@pytest.mark.parametrize("num_convs, expected", [(1, 3), (2, 5), (3, 7)])
def test_stacked_3x3_convs_see_3_5_7_pixels(num_convs, expected):
    assert receptive_field([_conv(1) for _ in range(num_convs)]) == expected


def test_receptive_field_grows_twice_as_fast_after_a_pool():
    # 5 after two 3x3 convs, +1 for the 2x2 window, +2*2 for a 3x3 at stride 2.
    layers = [_conv(1), _conv(1), keras.layers.MaxPooling2D(2, strides=2), _conv(1)]
    assert receptive_field(layers) == 10


def test_receptive_field_of_a_functional_model_skips_its_input_layer():
    inputs = keras.Input((16, 16, 1))
    outputs = _conv(1)(keras.layers.MaxPooling2D(2)(_conv(1)(inputs)))
    assert receptive_field(keras.Model(inputs, outputs)) == 3 + 1 + 2 * 2


def test_receptive_field_is_whole_input_after_dense():
    assert receptive_field([_conv(1), keras.layers.Flatten(), keras.layers.Dense(3)]) is None


def test_vgg16_receptive_field_at_last_pool_is_212():
    # A standard figure for VGG-16's pool5 (e.g. Araujo et al., Distill 2019).
    trace = trace_layers(vgg(VGG_ARCHS["vgg16"]), (224, 224, 3))
    assert trace.set_index("layer").loc["block5_pool", "receptive_field"] == 212


def test_receptive_field_of_a_block_adds_its_pool():
    # Three 3x3 convolutions see 7 pixels; the 2x2 pool adds one.
    assert receptive_field(vggcourse.vgg_block(3, 8)) == 8


# ---------------------------------------------------------------------------
# Whole networks: the published figures.


@pytest.fixture(scope="module")
def vgg16_imagenet():
    return trace_layers(vgg(VGG_ARCHS["vgg16"], num_classes=1000), (224, 224, 3))


def test_vgg16_totals_match_published_figures(vgg16_imagenet):
    total = totals(vgg16_imagenet)
    assert total["params"] == 138_357_544
    # About 15.47 GMACs (e.g. the figure most FLOP counters print for VGG-16).
    assert round(total["macs"] / 1e9, 2) == 15.47
    # CS231n's per-layer rows add up to about 15.2M values, input included.
    assert round(total["activations"] / 1e6, 1) == 15.2


def test_vgg16_macs_equal_the_sum_of_its_layers_by_hand(vgg16_imagenet):
    # (side, channels in, channels out) of VGG-16's 13 convolutions; then fc1, fc2, predictions.
    convs = [(224, 3, 64), (224, 64, 64), (112, 64, 128), (112, 128, 128)]
    convs += [(56, 128, 256)] + [(56, 256, 256)] * 2 + [(28, 256, 512)] + [(28, 512, 512)] * 2
    convs += [(14, 512, 512)] * 3
    by_hand = sum(side * side * c_out * 9 * c_in for side, c_in, c_out in convs)
    by_hand += 25088 * 4096 + 4096 * 4096 + 4096 * 1000
    assert totals(vgg16_imagenet)["macs"] == by_hand


def test_trace_has_one_row_per_leaf_layer_in_order(vgg16_imagenet):
    net = vgg(VGG_ARCHS["vgg16"], num_classes=1000)
    assert list(vgg16_imagenet["layer"]) == [layer.name for layer in vggcourse.leaf_layers(net)]
    assert {"layer", "output_shape", "params", "macs", "activations", "receptive_field"} <= set(
        vgg16_imagenet.columns
    )
    row = vgg16_imagenet.set_index("layer").loc["block1_conv1"]
    assert row["output_shape"] == (224, 224, 64)
    assert row["activations"] == 224 * 224 * 64
    assert row["macs"] == 224 * 224 * 64 * 3 * 3 * 3


def test_vgg16_fc1_holds_most_parameters(vgg16_imagenet):
    params = vgg16_imagenet.set_index("layer")["params"]
    assert params.idxmax() == "fc1"
    assert params["fc1"] == 7 * 7 * 512 * 4096 + 4096


@pytest.mark.parametrize(
    "arch, expected",
    [("vgg11", 132_863_336), ("vgg13", 133_047_848), ("vgg19", 143_667_240)],
)
def test_family_params_match_paper_table2(arch, expected):
    assert totals(trace_layers(vgg(VGG_ARCHS[arch], num_classes=1000), (224, 224, 3)))["params"] == expected


@pytest.mark.parametrize(
    "arch, ratio, input_shape, num_classes, options",
    [
        ("vgg11", 1, (224, 224, 1), 10, {}),
        ("vgg11", 4, (96, 96, 1), 10, {}),
        ("vgg11", 4, (32, 32, 1), 10, {}),
        ("vgg16", 8, (64, 48, 3), 7, {}),
        ("vgg19", 16, (40, 40, 2), 5, {}),
        ("vgg16", 4, (32, 32, 1), 10, dict(batch_norm=True)),
        ("vgg16", 4, (64, 64, 3), 10, dict(head="gap")),
        ("vgg11", 8, (48, 40, 1), 10, dict(batch_norm=True, head="gap")),
    ],
)
def test_trace_params_equal_keras_count_params(arch, ratio, input_shape, num_classes, options):
    net = vgg(scale_arch(VGG_ARCHS[arch], ratio), num_classes=num_classes, **options)
    net.build((None, *input_shape))
    assert totals(trace_layers(net, input_shape))["params"] == net.count_params()


def test_trace_of_a_net_built_at_another_size_counts_the_traced_size():
    net = vgg(scale_arch(VGG_ARCHS["vgg11"], 4))
    net.build((None, 224, 224, 1))
    small = vgg(scale_arch(VGG_ARCHS["vgg11"], 4))
    small.build((None, 32, 32, 1))
    assert totals(trace_layers(net, (1, 32, 32, 1)))["params"] == small.count_params()


def test_trace_shapes_match_a_forward_pass():
    net = vgg(scale_arch(VGG_ARCHS["vgg11"], 16))
    X = keras.random.uniform((1, 64, 64, 1), seed=0)
    shapes = []
    for layer in vggcourse.leaf_layers(net):
        X = layer(X)
        shapes.append(tuple(X.shape[1:]))
    assert list(trace_layers(net, (None, 64, 64, 1))["output_shape"]) == shapes


def test_macs_scale_with_pixels_for_the_convolutions():
    arch = scale_arch(VGG_ARCHS["vgg11"], 4)
    small, large = (trace_layers(vgg(arch), (side, side, 1)) for side in (32, 224))
    conv = lambda trace: trace.loc[trace["kind"] == "Conv2D", "macs"].sum()  # noqa: E731
    assert conv(large) == (224 // 32) ** 2 * conv(small)


def test_totals_count_the_input_and_skip_views():
    net = keras.Sequential([_conv(2), keras.layers.Flatten(), keras.layers.Dropout(0.5), keras.layers.Dense(3)])
    total = totals(trace_layers(net, (4, 4, 1)))
    # Input 16, conv output 32, Dense output 3; Flatten and Dropout write nothing new.
    assert total["activations"] == 16 + 32 + 3
    assert total["macs"] == 4 * 4 * 2 * 9 + 32 * 3


def test_training_memory_adds_weights_gradients_optimizer_state_and_batch_activations():
    trace = trace_layers(keras.Sequential([_conv(2), keras.layers.Flatten(), keras.layers.Dense(3)]), (4, 4, 1))
    total = totals(trace)
    memory = training_memory(trace, batch_size=8, optimizer_slots=2, bytes_per_value=2)
    assert memory["weights"] == memory["gradients"] == total["params"] * 2
    assert memory["optimizer_state"] == 2 * total["params"] * 2
    assert memory["activations"] == 8 * total["activations"] * 2
    assert memory["total"] == memory.drop("total").sum()


# ---------------------------------------------------------------------------
# Argument checks.


def test_trace_rejects_what_is_not_a_sequential_model():
    with pytest.raises(InvalidArgument, match=r"`net`.*Received: net="):
        trace_layers("vgg11", (224, 224, 1))
    with pytest.raises(InvalidArgument, match="keras.Sequential"):
        trace_layers(keras.layers.Dense(3), (224, 224, 1))


@pytest.mark.parametrize(
    "input_shape",
    [(224, 224), (1, 1, 224, 224, 1), (0, 224, 1), (224, 224, -1), (224.0, 224, 1), (224, None, 1), (True, 32, 1)],
)
def test_trace_rejects_malformed_input_shape(input_shape):
    with pytest.raises(InvalidArgument, match=r"Received: input_shape="):
        trace_layers(vgg(VGG_ARCHS["vgg11"]), input_shape)


def test_trace_rejects_input_shape_that_is_not_a_sequence():
    with pytest.raises(InvalidArgument, match=r"Received: input_shape=224"):
        trace_layers(vgg(VGG_ARCHS["vgg11"]), 224)


def test_trace_names_the_minimum_size_when_input_is_too_small():
    with pytest.raises(InvalidArgument, match=r"smallest square input it takes is 32x32.*input_shape=\(31, 31, 1\)"):
        trace_layers(vgg(VGG_ARCHS["vgg11"]), (31, 31, 1))
    assert len(trace_layers(vgg(VGG_ARCHS["vgg11"]), (32, 32, 1))) == 19


@pytest.mark.parametrize(
    "arch",
    [*VGG_ARCHS.values(), ((1, 8),), ((1, 8), (2, 16), (1, 16))],
    ids=[*VGG_ARCHS, "one_block", "three_blocks"],
)
def test_trace_minimum_input_is_min_input_size_for_every_vgg(arch):
    smallest = vggcourse.min_input_size(arch)
    net = vgg(arch)
    with pytest.raises(ValueError, match=rf"smallest square input it takes is {smallest}x{smallest}\."):
        trace_layers(net, (smallest - 1, smallest - 1, 1))
    assert trace_layers(net, (smallest, smallest, 1))["output_shape"].iloc[-1] == (10,)


def test_trace_names_the_layer_and_the_pixels_that_do_not_fit_a_non_square_input():
    # Height 64 halves to 4 before block5; width 31 is down to 1 pixel there.
    with pytest.raises(ValueError, match=r"layer `block5_pool` would get shape \(4, 1, 512\), which is smaller"):
        trace_layers(vgg(VGG_ARCHS["vgg11"]), (1, 64, 31, 1))


def test_trace_checks_the_input_size_before_keras_computes_any_shape(monkeypatch):
    # How Keras computes a pooled shape that comes out empty depends on its
    # version: 3.15 raises, 3.10 returns zeros, which then failed elsewhere
    # with a message about (0, 0, 512). Neither may decide the message.
    def empty_pool(self, input_shape):
        return (input_shape[0], 0, 0, input_shape[-1])

    monkeypatch.setattr(keras.layers.MaxPooling2D, "compute_output_shape", empty_pool)
    with pytest.raises(ValueError, match=r"smallest square input it takes is 32x32.*input_shape=\(31, 31, 1\)"):
        trace_layers(vgg(VGG_ARCHS["vgg11"]), (31, 31, 1))


def test_trace_minimum_follows_strides_windows_and_padding_of_any_sequential():
    # Two valid 3x3 convolutions need 5 pixels, then a 3x3/3 valid pool needs 3 of what is left.
    net = keras.Sequential([
        keras.layers.Conv2D(4, 3, padding="valid", name="c1"),
        keras.layers.Conv2D(4, 3, padding="valid", name="c2"),
        keras.layers.MaxPooling2D(3, strides=3, name="pool"),
        keras.layers.Flatten(),
        keras.layers.Dense(2),
    ])
    with pytest.raises(ValueError, match=r"`pool` would get shape \(2, 2, 4\).*smallest square input it takes is 7x7"):
        trace_layers(net, (6, 6, 1))
    assert trace_layers(net, (7, 7, 1))["output_shape"].tolist()[:3] == [(5, 5, 4), (3, 3, 4), (1, 1, 4)]


def test_trace_rejects_layers_it_cannot_count():
    net = keras.Sequential([keras.layers.UpSampling2D(), keras.layers.Dense(3)])
    with pytest.raises(InvalidArgument, match="UpSampling2D"):
        trace_layers(net, (4, 4, 1))


def test_layer_helpers_reject_bad_arguments():
    with pytest.raises(InvalidArgument, match=r"`layer`.*Received: layer="):
        layer_params("conv", (3, 3, 1))
    with pytest.raises(InvalidArgument, match=r"Received: input_shape="):
        layer_macs(_conv(1), (3, 0, 1))
    with pytest.raises(InvalidArgument, match=r"`layers`"):
        receptive_field(3)


def test_totals_and_training_memory_reject_bad_arguments():
    trace = trace_layers(vgg(VGG_ARCHS["vgg11"]), (32, 32, 1))
    with pytest.raises(InvalidArgument, match="`trace`"):
        totals(pd.DataFrame({"params": [1]}))
    stripped = trace.copy()
    stripped.attrs = {}
    with pytest.raises(InvalidArgument, match="input_shape"):
        totals(stripped)
    with pytest.raises(InvalidArgument, match=r"Received: batch_size=0"):
        training_memory(trace, batch_size=0)


# ---------------------------------------------------------------------------
# Functional models: branches that split and join.


def _residual_net():
    # conv (3x3 'same', 1 -> 4), then two branches that join by addition: a
    # 3x3 conv (4 -> 4) and the identity; then a 2x2 pool and a dense layer.
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    branch = keras.layers.Conv2D(4, 3, padding="same", name="branch")(x)
    x = keras.layers.Add(name="join")([x, branch])
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, outputs, name="residual")


def test_trace_follows_the_branches_of_a_functional_model():
    trace = trace_layers(_residual_net(), (8, 8, 1)).set_index("layer")
    assert list(trace.index) == ["stem", "branch", "join", "pool", "flatten", "logits"]
    assert trace.loc["join", "output_shape"] == (8, 8, 4)
    assert trace.loc["stem", "params"] == 9 * 4 + 4
    assert trace.loc["branch", "macs"] == 8 * 8 * 4 * 9 * 4
    assert trace.loc["join", ["params", "macs"]].tolist() == [0, 0]
    # The join sees what its widest branch sees: two 3x3 convolutions.
    assert trace.loc["join", "receptive_field"] == 5
    assert trace.loc["pool", "receptive_field"] == 6


def test_trace_counts_resnet50_as_keras_does():
    net = keras.applications.ResNet50(weights=None)
    trace = trace_layers(net, (224, 224, 3))
    assert totals(trace)["params"] == net.count_params() == 25_636_712
    assert trace["kind"].value_counts()["Add"] == 16
    assert trace["output_shape"].iloc[-1] == (1000,)


def test_trace_counts_mobilenet_v2_depthwise_convolutions():
    # Sandler et al. (2018), Table 4: MobileNetV2 (1.0) at 224 px does 300M
    # multiply-adds and has 3.4M parameters without its 1000-way classifier.
    net = keras.applications.MobileNetV2(weights=None)
    total = totals(trace_layers(net, (224, 224, 3)))
    assert total["params"] == net.count_params()
    assert 299e6 < total["macs"] < 302e6


def test_trace_rejects_a_functional_model_that_calls_a_layer_twice():
    inputs = keras.Input((8, 8, 1))
    shared = keras.layers.Conv2D(1, 3, padding="same", name="shared")
    outputs = keras.layers.Flatten()(shared(shared(inputs)))
    with pytest.raises(InvalidArgument, match=r"`shared`: it is called 2 times"):
        trace_layers(keras.Model(inputs, outputs), (8, 8, 1))


def test_trace_rejects_a_functional_model_with_two_inputs():
    a, b = keras.Input((4, 4, 1)), keras.Input((4, 4, 1))
    net = keras.Model([a, b], keras.layers.Add()([a, b]), name="two")
    with pytest.raises(InvalidArgument, match=r"one input and one output.*2 inputs"):
        trace_layers(net, (4, 4, 1))


def test_trace_names_the_minimum_size_of_a_functional_model():
    with pytest.raises(InvalidArgument, match=r"smallest square input it takes is 2x2"):
        trace_layers(_residual_net(), (1, 1, 1))


def test_depthwise_conv_filters_each_channel_on_its_own():
    layer = keras.layers.DepthwiseConv2D(3, padding="same")
    assert layer_params(layer, (8, 8, 4)) == 3 * 3 * 4 + 4
    assert layer_macs(layer, (8, 8, 4)) == 8 * 8 * 4 * (3 * 3)
